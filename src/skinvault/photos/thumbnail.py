"""Small previews and image dimensions, decoded from already-scrubbed bytes.

    >>> preview = thumbnail(scrubbed_jpeg, 320)        # doctest: +SKIP
    >>> preview.width <= 320 and preview.data[:2] == b"\\xff\\xd8"
    True

The thumbnail is a fresh JPEG written by Pillow with no metadata at all (the
orientation is applied to the pixels), so it never carries anything the
scrubbed original does not.
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
    data: bytes
    width: int
    height: int


def _open(data: bytes) -> Image.Image:
    import pillow_heif  # noqa: PLC0415 - registers HEIF with Pillow on first use only

    pillow_heif.register_heif_opener()
    try:
        with warnings.catch_warnings():
            # The scrubber already refused anything over MAX_PIXELS; Pillow warns earlier.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DamagedFile(f"the image data cannot be decoded ({exc})") from exc
    return image


def dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) as displayed, i.e. after the EXIF orientation."""
    with _open(data) as image:
        upright = ImageOps.exif_transpose(image)
        return upright.size


def thumbnail(data: bytes, size: int) -> Preview:
    """A JPEG no larger than ``size`` × ``size``, upright, without metadata."""
    with _open(data) as image:
        upright = ImageOps.exif_transpose(image)
        upright.thumbnail((size, size))
        if upright.mode not in ("RGB", "L"):
            upright = upright.convert("RGBA").convert("RGB")
        out = io.BytesIO()
        upright.save(out, "JPEG", quality=_QUALITY)
        return Preview(out.getvalue(), upright.width, upright.height)
