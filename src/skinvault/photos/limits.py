"""Size limits that guard against decompression bombs and memory exhaustion."""

from __future__ import annotations

import functools
import io
from typing import TYPE_CHECKING

from skinvault.errors import TooLarge

if TYPE_CHECKING:
    from PIL import Image

#: Same threshold at which Pillow refuses an image outright by default (2 x 89.5 MP).
MAX_PIXELS = 178_956_970
#: What Pillow may open: the formats skinvault takes (its JPEG opener also returns the
#: multi-picture JPEGs it calls MPO). No other plugin sees the bytes (EPS starts Ghostscript).
OPEN_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "HEIF", "AVIF")
#: Largest file read into memory; phone photos are 2–15 MB, TIFF scans can be larger.
MAX_FILE_BYTES = 512 * 1024 * 1024


def check_pixels(width: int, height: int) -> None:
    """Raise :class:`TooLarge` when the declared image size is over :data:`MAX_PIXELS`."""
    if width * height > MAX_PIXELS:
        raise TooLarge(
            f"declares {width} × {height} pixels ({width * height / 1e6:,.0f} MP), more than"
            f" the {MAX_PIXELS / 1e6:.0f} MP limit: refusing a possible decompression bomb"
        )


@functools.cache
def _configure_pillow() -> None:
    """Once per process, before the first photo is opened: HEIF, and the pixel limit."""
    import pillow_heif  # noqa: PLC0415 - loaded with the first photo opened
    from PIL import Image  # noqa: PLC0415

    pillow_heif.register_heif_opener()
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def open_image(data: bytes) -> Image.Image:
    """``Image.open`` of ``data`` (the header only), refused with :class:`TooLarge` over
    :data:`MAX_PIXELS` before any pixel is decoded. Pillow's own errors on a damaged header
    reach the caller, which words them for its reader.

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` and refuses above twice that. By default it
    warns from 89.5 MP, on photos this limit accepts, and silencing the warning takes
    ``warnings.catch_warnings``, which swaps the filters of the whole process: beside other
    threads it undoes their own silencing (FastAPI's, as it builds a route's parameters). So
    Pillow is told to warn only where :func:`check_pixels` refuses anyway, and nothing here
    silences warnings. Every photo is opened here, so the setting is in place before any is,
    and so is HEIF (pillow-heif registers itself with Pillow once per process, here).
    """
    from PIL import Image  # noqa: PLC0415 - the lossless scrubber never decodes pixels

    _configure_pillow()
    try:
        image = Image.open(io.BytesIO(data), formats=OPEN_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # the warning arrives as an exception only when warnings are errors (as in the tests)
        raise TooLarge(f"is too large to decode safely ({exc})") from exc
    try:
        check_pixels(*image.size)
    except TooLarge:
        image.close()
        raise
    return image


def check_file_size(size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise TooLarge(
            f"is {size / 2**20:,.0f} MiB, more than the {MAX_FILE_BYTES // 2**20} MiB limit"
        )
