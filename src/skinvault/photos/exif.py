"""Findings from an EXIF block, its Orientation, and the minimal EXIF we write back.

An EXIF block is a TIFF structure (``II*\\0``/``MM\\0*`` header plus IFDs). The
same reader serves JPEG APP1, PNG eXIf, WebP EXIF and the HEIF Exif item.

    >>> orientation(minimal_exif(6))
    6
"""

from __future__ import annotations

import struct

from skinvault.errors import DamagedFile
from skinvault.photos.findings import Category, Finding
from skinvault.photos.ifd import Directories, Entry, Ifd, TiffReader, walk

ORIENTATION = 0x0112

# tag -> (category, label, sentence template); "{v}" is the tag's text value.
_TEXT_TAGS: dict[int, tuple[Category, str, str]] = {
    0x010F: (Category.DEVICE, "Camera make", "Camera make {v} — narrows down whose device took it"),
    0x0110: (
        Category.DEVICE,
        "Camera model",
        "Camera model {v} — narrows down whose device took it",
    ),
    0xA431: (
        Category.DEVICE,
        "Serial number",
        "Camera serial number {v} — identifies the exact device",
    ),
    0xC62F: (
        Category.DEVICE,
        "Serial number",
        "Camera serial number {v} — identifies the exact device",
    ),
    0xA435: (
        Category.DEVICE,
        "Lens serial number",
        "Lens serial number {v} — identifies the exact lens",
    ),
    0xA434: (Category.DEVICE, "Lens model", "Lens {v}"),
    0xA433: (Category.DEVICE, "Lens make", "Lens make {v}"),
    0xA420: (
        Category.DEVICE,
        "Unique image ID",
        "Unique image ID {v} — can link this photo to others",
    ),
    0x013B: (Category.PERSON, "Artist", "Artist / author name “{v}”"),
    0x8298: (Category.PERSON, "Copyright", "Copyright holder “{v}”"),
    0xA430: (Category.PERSON, "Owner name", "Camera owner name “{v}”"),
    0x9C9D: (Category.PERSON, "Author (Windows)", "Author name “{v}”"),
    0x0131: (
        Category.SOFTWARE,
        "Software",
        "Software “{v}” — shows how the photo was made or edited",
    ),
    0x013C: (Category.SOFTWARE, "Host computer", "Computer or phone name “{v}”"),
    0x000B: (Category.SOFTWARE, "Processing software", "Processing software “{v}”"),
    0x010E: (Category.COMMENT, "Description", "Image description “{v}”"),
    0x9286: (Category.COMMENT, "User comment", "User comment “{v}”"),
    0x9C9C: (Category.COMMENT, "Comment (Windows)", "Comment “{v}”"),
    0x9C9B: (Category.COMMENT, "Title (Windows)", "Title “{v}”"),
    0x9C9F: (Category.COMMENT, "Subject (Windows)", "Subject “{v}”"),
    0x9C9E: (Category.COMMENT, "Keywords (Windows)", "Keywords “{v}”"),
    0x010D: (Category.COMMENT, "Document name", "Document name “{v}”"),
}
_TIME_TAGS = {0x9003: "taken", 0x9004: "digitised", 0x0132: "last changed"}
_MAKER_NOTE = 0x927C
_THUMB_OFFSET, _THUMB_LENGTH = 0x0201, 0x0202
_MAX_SHOWN = 60


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _degrees(reader: TiffReader, entry: Entry | None) -> float | None:
    if entry is None:
        return None
    try:
        parts = reader.numbers(entry)
    except struct.error:
        return None
    if not parts:
        return None
    d, m, s = (*parts, 0.0, 0.0)[:3]
    return d + m / 60 + s / 3600


def _gps_findings(reader: TiffReader, gps: Ifd, where: str) -> list[Finding]:
    e = gps.entries
    lat, lon = _degrees(reader, e.get(2)), _degrees(reader, e.get(4))
    if lat is not None and lon is not None and (lat or lon):
        lat_ref = TiffReader.text(e[1]) if 1 in e else "N"
        lon_ref = TiffReader.text(e[3]) if 3 in e else "E"
        text = f"{lat:.2f} {lat_ref or 'N'}, {lon:.2f} {lon_ref or 'E'}"
        return [
            Finding(
                Category.LOCATION,
                "GPS position",
                where,
                f"GPS position ≈ {text} — shows where the photo was taken",
            )
        ]
    if e:
        return [
            Finding(
                Category.LOCATION,
                "GPS block",
                where,
                f"GPS block with {len(e)} fields (no usable position) — may hold"
                " altitude, heading or satellite time",
            )
        ]
    return []


def findings(block: bytes, where: str = "EXIF") -> list[Finding]:
    """Plain-language findings for one EXIF block. A damaged block is a finding, not an error."""
    try:
        reader = TiffReader(block)
        dirs = walk(reader)
    except DamagedFile:
        return [Finding(Category.OTHER, "EXIF block", where, "An unreadable (damaged) EXIF block")]
    if dirs.ifd0 is None:
        return [Finding(Category.OTHER, "EXIF block", where, "An EXIF block with no readable tags")]
    out: list[Finding] = []
    counted = 0
    for ifd in (dirs.ifd0, dirs.exif):
        if ifd is None:
            continue
        for tag, entry in ifd.entries.items():
            if tag == ORIENTATION:
                continue  # kept on purpose: it is what keeps the photo upright
            counted += 1
            try:
                if tag in _TEXT_TAGS:
                    category, label, template = _TEXT_TAGS[tag]
                    value = _short(TiffReader.text(entry))
                    if value:
                        out.append(Finding(category, label, where, template.format(v=value)))
                elif tag in _TIME_TAGS:
                    value = _short(TiffReader.text(entry))
                    if value.strip(" :0"):
                        out.append(
                            Finding(
                                Category.TIME,
                                "Date and time",
                                where,
                                f"Date and time {_TIME_TAGS[tag]}: {value} — shows when",
                            )
                        )
                elif tag == _MAKER_NOTE:
                    out.append(
                        Finding(
                            Category.DEVICE,
                            "Maker notes",
                            where,
                            f"Camera maker notes ({len(entry.value):,} bytes) — private"
                            " manufacturer data that can hold serial numbers and owner names",
                        )
                    )
            except (struct.error, ValueError):
                continue
    if dirs.gps is not None:
        out.extend(_gps_findings(reader, dirs.gps, where))
    thumb = _thumbnail(reader, dirs, where)
    if thumb is not None:
        out.append(thumb)
    known = len(out)
    if counted > known:
        out.append(
            Finding(
                Category.OTHER,
                "Other EXIF tags",
                where,
                f"{counted - known} other EXIF fields (exposure, lens and camera settings)",
            )
        )
    return out


def _thumbnail(reader: TiffReader, dirs: Directories, where: str) -> Finding | None:
    ifd1 = dirs.ifd1
    if ifd1 is None:
        return None
    length = reader.integer(ifd1.entries.get(_THUMB_LENGTH))
    strips = reader.integer(ifd1.entries.get(0x0117))
    size = length or strips
    if not size and not ifd1.entries:
        return None
    return Finding(
        Category.THUMBNAIL,
        "Embedded thumbnail",
        where,
        f"An embedded thumbnail image ({size:,} bytes) — may show the original before"
        " cropping or editing",
    )


def orientation(block: bytes) -> int:
    """The EXIF Orientation (1–8) of a block; 1 when absent or unreadable."""
    try:
        reader = TiffReader(block)
        ifd0 = reader.read_ifd(reader.first_ifd_offset)
        value = reader.integer(ifd0.entries.get(ORIENTATION), 1)
    except (DamagedFile, struct.error):
        return 1
    return value if 1 <= value <= 8 else 1


def minimal_exif(orient: int) -> bytes:
    """A TIFF structure holding only IFD0 with one Orientation entry (26 bytes)."""
    if not 1 <= orient <= 8:
        raise ValueError(f"orientation must be 1–8, got {orient}")
    return (
        b"MM\x00\x2a\x00\x00\x00\x08"  # big-endian header, IFD0 at offset 8
        + struct.pack(">H", 1)
        + struct.pack(">HHIHH", ORIENTATION, 3, 1, orient, 0)
        + b"\x00\x00\x00\x00"  # no next IFD (no thumbnail)
    )
