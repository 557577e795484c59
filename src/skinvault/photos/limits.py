"""Size limits that guard against decompression bombs and memory exhaustion."""

from __future__ import annotations

from skinvault.errors import TooLarge

#: Same threshold at which Pillow refuses an image outright (2 x 89.5 MP).
MAX_PIXELS = 178_956_970
#: Largest file read into memory; phone photos are 2–15 MB, TIFF scans can be larger.
MAX_FILE_BYTES = 512 * 1024 * 1024


def check_pixels(width: int, height: int) -> None:
    """Raise :class:`TooLarge` when the declared image size is over :data:`MAX_PIXELS`."""
    if width * height > MAX_PIXELS:
        raise TooLarge(
            f"declares {width} × {height} pixels ({width * height / 1e6:,.0f} MP), more than"
            f" the {MAX_PIXELS / 1e6:.0f} MP limit: refusing a possible decompression bomb"
        )


def check_file_size(size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise TooLarge(
            f"is {size / 2**20:,.0f} MiB, more than the {MAX_FILE_BYTES // 2**20} MiB limit"
        )
