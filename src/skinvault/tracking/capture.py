"""The date a photo was taken, read from its own metadata before scrubbing removes it."""

from __future__ import annotations

from datetime import date

from skinvault.errors import TooLarge
from skinvault.photos.limits import open_image

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_DATETIME_DIGITIZED = 0x9004
_DATETIME = 0x0132


def _parse(value: object) -> date | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        y, m, d = int(value[0:4]), int(value[5:7]), int(value[8:10])
        found = date(y, m, d)
    except ValueError:
        return None
    return found if 1990 <= found.year <= 2100 else None


def capture_date(data: bytes) -> date | None:
    """DateTimeOriginal (else digitised, else DateTime) as a date; None if absent or unreadable.

    Only the day is kept: the time of day is not needed to order a series.
    """
    try:
        with open_image(data) as im:
            exif = im.getexif()
    except (OSError, ValueError, SyntaxError, TooLarge):
        return None
    sub = exif.get_ifd(_EXIF_IFD)
    for value in (sub.get(_DATETIME_ORIGINAL), sub.get(_DATETIME_DIGITIZED), exif.get(_DATETIME)):
        found = _parse(value)
        if found is not None:
            return found
    return None
