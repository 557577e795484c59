"""Small previews and image dimensions, decoded from already-scrubbed bytes.

    >>> preview = thumbnail(scrubbed_jpeg, 320)        # doctest: +SKIP
    >>> preview.width <= 320 and preview.data[:2] == b"\\xff\\xd8"
    True
    >>> preview.source_width, preview.source_height    # the full photo, upright
    (3000, 4000)

The thumbnail is a fresh JPEG written by Pillow with no metadata at all (the
orientation is applied to the pixels), so it never carries anything the
scrubbed original does not. An upload decodes the pixels once (at thumbnail
scale) to refuse a file that does not decode; the thumbnail itself is made by the
``thumbnail`` job (services/thumbnails.py) with :func:`thumbnail_of` — from those same
pixels when the job runs in the process that took the upload — and
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


@dataclass(frozen=True)
class Decoded:
    """A photo decoded at about thumbnail scale: proof that its pixels decode, its
    displayed (upright) size, and the upright pixels a thumbnail is made from."""

    width: int
    height: int
    image: Image.Image


def decode(data: bytes, size: int) -> Decoded:
    """Decode the pixels (refusing a file whose pixels do not decode) at the scale a
    ``size`` × ``size`` thumbnail needs.

    An upload is refused here, where the uploader can be told, when its pixels cannot be
    decoded. JPEGs decode at reduced scale (libjpeg's DCT scaling through Pillow's
    ``draft``: 1/8 for a 12 MP photo), which still reads every coded block; other
    formats decode in full. :func:`thumbnail_of` makes the thumbnail from the result.
    """
    with _open(data) as image:
        try:
            width, height = _upright_size(image)
        except MemoryError:
            raise
        except Exception as exc:  # a damaged EXIF block Pillow trips over
            raise DamagedFile(f"the image data cannot be decoded (its header: {exc})") from exc
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image.draft("RGB", (size, size))  # no-op for formats without scaled decoding
                upright = ImageOps.exif_transpose(image)  # loads the pixels (a copy)
        except MemoryError:
            raise
        except Exception as exc:
            # Pillow's decoders fail in many ways (OSError, EOFError, struct.error, ValueError
            # and more) on a file whose structure the scrubber accepted: each one means the
            # pixels cannot be decoded, which is the uploader's file, never a server fault.
            raise DamagedFile(f"the image data cannot be decoded ({exc})") from exc
        return Decoded(width, height, upright)


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
    return thumbnail_of(decode(data, size), size)


def thumbnail_of(decoded: Decoded, size: int) -> Preview:
    """The thumbnail of pixels :func:`decode` read (``decoded`` is left unchanged)."""
    try:
        small = decoded.image.copy()
        small.thumbnail((size, size))
        if small.mode not in ("RGB", "L"):
            small = small.convert("RGBA").convert("RGB")
        out = io.BytesIO()
        small.save(out, "JPEG", quality=_QUALITY)
    except MemoryError:
        raise
    except Exception as exc:  # an image mode JPEG cannot hold, and the like
        raise DamagedFile(f"the image data cannot be decoded ({exc})") from exc
    return Preview(out.getvalue(), small.width, small.height, decoded.width, decoded.height)
