"""Small previews and image dimensions, decoded from already-scrubbed bytes.

    >>> preview = thumbnail(scrubbed_jpeg, 320)        # doctest: +SKIP
    >>> preview.width <= 320 and preview.data[:2] == b"\\xff\\xd8"
    True
    >>> preview.source_width, preview.source_height    # the full photo, upright
    (3000, 4000)

The thumbnail is a fresh JPEG written by Pillow with no metadata (the
orientation is applied to the pixels) except the photo's ICC colour profile, as
the scrubber rebuilt it (colour tags byte for byte, neutral text:
:func:`skinvault.photos.icc.rebuild`), so it never carries anything the
scrubbed original does not. The profile is kept rather than the pixels
converted to sRGB, as in the display version (photos/derivative.py): a
colour-managing browser shows an iPhone's Display P3 thumbnail in P3, and the
thumbnail and the display copy of a photo show the same colours. A profile
that does not fit the thumbnail's mode (a CMYK or grey profile on pixels
written as RGB) is left out. An upload decodes the pixels once (at thumbnail
scale) to refuse a file that does not decode — unless it is a JPEG whose structure
proves its pixels decode (photos/jpeg_structure.py), when it reads only the size with
:func:`upright_size`; the thumbnail itself is made by the
``thumbnail`` job (services/thumbnails.py) with :func:`thumbnail_of` — from those same
pixels when the job runs in the process that took the upload — and
:func:`placeholder` stands in for it until then.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from skinvault.errors import DamagedFile
from skinvault.photos import icc
from skinvault.photos.limits import open_image

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
    try:
        return open_image(data)  # the scrubber already refused anything over MAX_PIXELS
    except (OSError, SyntaxError, ValueError) as exc:
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
    #: The photo's ICC profile, rebuilt as the scrubber writes it, or None.
    icc_profile: bytes | None = None


def upright_size(data: bytes) -> tuple[int, int]:
    """The displayed (upright) width and height, read from the header alone: for a JPEG
    whose structure already proves its pixels decode (the scrubber's ``decodable``),
    the upload needs no more (refusing a header Pillow cannot read)."""
    with _open(data) as image:
        width, height, _ = _header(image)
        return width, height


def _header(image: Image.Image) -> tuple[int, int, bytes | None]:
    """Upright width, height and ICC profile from an opened image's header."""
    try:
        return (*_upright_size(image), _profile(image))
    except MemoryError:
        raise
    except Exception as exc:  # a damaged EXIF block Pillow trips over
        raise DamagedFile(f"the image data cannot be decoded (its header: {exc})") from exc


def _profile(image: Image.Image) -> bytes | None:
    """The image's ICC profile as the scrubber writes it (rebuilding a scrubbed profile
    gives the same bytes), or None when it has none or it is not a valid profile."""
    raw = image.info.get("icc_profile")
    if not raw:
        return None
    try:
        return icc.rebuild(bytes(raw))
    except icc.NotAProfile:
        return None


#: The ICC colour space (header bytes 16-19) each thumbnail mode can carry.
_SPACES = {"RGB": b"RGB ", "L": b"GRAY"}


def decode(data: bytes, size: int) -> Decoded:
    """Decode the pixels (refusing a file whose pixels do not decode) at the scale a
    ``size`` × ``size`` thumbnail needs.

    An upload is refused here, where the uploader can be told, when its pixels cannot be
    decoded. JPEGs decode at reduced scale (libjpeg's DCT scaling through Pillow's
    ``draft``: 1/8 for a 12 MP photo), which still reads every coded block; other
    formats decode in full. :func:`thumbnail_of` makes the thumbnail from the result.
    """
    with _open(data) as image:
        width, height, profile = _header(image)
        try:
            image.draft("RGB", (size, size))  # no-op for formats without scaled decoding
            upright = ImageOps.exif_transpose(image)  # loads the pixels (a copy)
        except MemoryError:
            raise
        except Exception as exc:
            # Pillow's decoders fail in many ways (OSError, EOFError, struct.error, ValueError
            # and more) on a file whose structure the scrubber accepted: each one means the
            # pixels cannot be decoded, which is the uploader's file, never a server fault.
            raise DamagedFile(f"the image data cannot be decoded ({exc})") from exc
        return Decoded(width, height, upright, profile)


_PLACEHOLDER = """<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240" \
viewBox="0 0 320 240" role="img" aria-label="{text}"><rect width="320" height="240" \
fill="#eceff1"/><text x="160" y="126" font-family="sans-serif" font-size="17" \
text-anchor="middle" fill="#37474f">{text}</text></svg>"""
PLACEHOLDER_TEXTS = {
    "waiting": "Preview being prepared",
    "failed": "No preview could be made",
    "unavailable": "Preview delayed: the clinic will retry",
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
        profile = decoded.icc_profile
        extra = {}
        if profile and profile[16:20] == _SPACES.get(small.mode):
            extra["icc_profile"] = profile
        out = io.BytesIO()
        small.info = {}  # nothing from the source reaches the encoder but the above
        small.save(out, "JPEG", quality=_QUALITY, **extra)
    except MemoryError:
        raise
    except Exception as exc:  # an image mode JPEG cannot hold, and the like
        raise DamagedFile(f"the image data cannot be decoded ({exc})") from exc
    return Preview(out.getvalue(), small.width, small.height, decoded.width, decoded.height)
