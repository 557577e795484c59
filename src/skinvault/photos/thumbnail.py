"""Small previews and image dimensions, decoded from already-scrubbed bytes.

    >>> preview = thumbnail(scrubbed_jpeg, 320)        # doctest: +SKIP
    >>> preview.width <= 320 and preview.data[:2] == b"\\xff\\xd8"
    True
    >>> preview.source_width, preview.source_height    # the full photo, upright
    (3000, 4000)

The thumbnail is a fresh JPEG written by Pillow with no metadata at all (the
orientation is applied to the pixels), so it never carries anything the
scrubbed original does not. Uploads only read :func:`dimensions` (the header); the
thumbnail itself is made by the ``thumbnail`` job (services/thumbnails.py), and
:func:`placeholder` stands in for it until then.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from skinvault.errors import DamagedFile

_QUALITY = 85


@dataclass(frozen=True)
class Preview:
    """The thumbnail's JPEG bytes and size, and the displayed size of the full photo."""

    data: bytes
    width: int
    height: int
    source_width: int
    source_height: int


def _open(data: bytes) -> Image.Image:
    """Open without decoding pixels (only the header is read)."""
    import pillow_heif  # noqa: PLC0415 - registers HEIF with Pillow on first use only

    pillow_heif.register_heif_opener()
    try:
        with warnings.catch_warnings():
            # The scrubber already refused anything over MAX_PIXELS; Pillow warns earlier.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DamagedFile(f"the image data cannot be decoded ({exc})") from exc


_TRANSPOSED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


def _upright_size(image: Image.Image) -> tuple[int, int]:
    orientation = image.getexif().get(0x0112, 1)
    width, height = image.size
    return (height, width) if orientation in _TRANSPOSED else (width, height)


def dimensions(data: bytes) -> tuple[int, int]:
    """The displayed (upright) width and height, once the pixels are known to decode.

    The thumbnail is made later by a job, but a file whose pixels cannot be decoded is
    refused here, at upload, where the uploader can be told. JPEGs decode at 1/8 scale
    (Pillow's draft mode), which reads every coded block at a fraction of the cost.
    """
    with _open(data) as image:
        try:
            size = _upright_size(image)
        except MemoryError:
            raise
        except Exception as exc:  # a damaged EXIF block Pillow trips over
            raise DamagedFile(f"the image data cannot be decoded (its header: {exc})") from exc
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
        except MemoryError:
            raise
        except Exception as exc:  # truncated or corrupt coded data: the uploader's file
            raise DamagedFile(f"the image data cannot be decoded ({exc})") from exc
        return size


_PLACEHOLDER = """<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240" \
viewBox="0 0 320 240" role="img" aria-label="{text}"><rect width="320" height="240" \
fill="#eceff1"/><text x="160" y="126" font-family="sans-serif" font-size="17" \
text-anchor="middle" fill="#37474f">{text}</text></svg>"""
PLACEHOLDER_TEXTS = {
    "waiting": "Preview being prepared",
    "failed": "No preview could be made",
}


def placeholder(state: str) -> bytes:
    """A small SVG saying the preview is being prepared (or could not be made): what a
    page shows until the thumbnail job has run. Fixed text, no script."""
    text = PLACEHOLDER_TEXTS.get(state, PLACEHOLDER_TEXTS["waiting"])
    return _PLACEHOLDER.format(text=text).encode()


def thumbnail(data: bytes, size: int) -> Preview:
    """A JPEG no larger than ``size`` × ``size``, upright, without metadata.

    JPEGs are decoded at reduced scale (libjpeg's DCT scaling through
    ``Image.draft``), so a 12 MP photo never has to be decoded in full.
    """
    with _open(data) as image:
        try:
            width, height = _upright_size(image)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image.draft("RGB", (size, size))  # no-op for formats without scaled decoding
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((size, size))
                if upright.mode not in ("RGB", "L"):
                    upright = upright.convert("RGBA").convert("RGB")
                out = io.BytesIO()
                upright.save(out, "JPEG", quality=_QUALITY)
        except MemoryError:
            raise
        except Exception as exc:
            # Pillow's decoders fail in many ways (OSError, EOFError, struct.error, ValueError
            # and more) on a file whose structure the scrubber accepted: each one means the
            # pixels cannot be decoded, which is the uploader's file, never a server fault.
            raise DamagedFile(f"the image data cannot be decoded ({exc})") from exc
        return Preview(out.getvalue(), upright.width, upright.height, width, height)
