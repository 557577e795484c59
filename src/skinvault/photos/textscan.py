"""Capture times and serial numbers written as text inside blocks we do not otherwise parse.

Vendor blocks (Casio QVCI, Olympus PictureInfo, unknown APPn) often carry the
capture time as plain text; we report it so the user learns what is removed.

    >>> [f.description for f in dates_in(b"x 1998.10.24.12.08.57 y", "APP1")]
    ['Date and time 1998-10-24 12:08:57 — shows when']
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from skinvault.photos.findings import Category, Finding

_DATETIME = re.compile(
    rb"((?:19|20)\d\d)[:./-]([01]\d)[:./-]([0-3]\d)[ T.:_-]([0-2]\d)[:.]([0-5]\d)[:.]([0-5]\d)"
)
_UNIX = re.compile(rb"TimeDate=(\d{9,10})")
_SERIAL = re.compile(rb"Serial(?:#|No|Number)?=([ -~]{1,40})")
_SCAN_LIMIT = 1 << 20


def dates_in(blob: bytes, where: str) -> list[Finding]:
    """TIME findings for date-times, DEVICE findings for serial numbers, written as text."""
    seen: list[str] = []
    head = blob[:_SCAN_LIMIT]
    for m in _DATETIME.finditer(head):
        y, mo, d, h, mi, s = (int(g) for g in m.groups())
        if 1 <= mo <= 12 and 1 <= d <= 31 and h < 24:
            seen.append(f"{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    for m in _UNIX.finditer(head):
        seen.append(datetime.fromtimestamp(int(m.group(1)), UTC).strftime("%Y-%m-%d %H:%M:%S"))
    found = [
        Finding(Category.TIME, "Date and time", where, f"Date and time {when} — shows when")
        for when in dict.fromkeys(seen)
    ]
    for m in _SERIAL.finditer(head):
        serial = m.group(1).decode("ascii").strip()
        found.append(
            Finding(
                Category.DEVICE,
                "Serial number",
                where,
                f"Camera serial number {serial} — identifies the exact device",
            )
        )
    return found
