"""Reading TIFF-structured directories (IFDs), shared by EXIF blocks and TIFF files.

Every offset is bounds-checked and every directory is visited at most once, so
damaged or hostile files (offsets past the end, IFD loops) raise
:class:`~skinvault.errors.DamagedFile` instead of hanging or crashing.

    >>> t = TiffReader(b"II*\\x00\\x08\\x00\\x00\\x00" + b"\\x00\\x00" + bytes(4))
    >>> t.read_ifd(t.first_ifd_offset).entries
    {}
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from skinvault.errors import DamagedFile

#: Size in bytes of one value of each TIFF field type.
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_UNSIGNED = {1: "B", 3: "H", 4: "I", 13: "I"}
_SIGNED = {6: "b", 8: "h", 9: "i"}
_FLOATS = {11: "f", 12: "d"}
MAX_ENTRIES = 4096  # real directories hold well under 500 entries

# Pointer tags to sub-directories.
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
INTEROP_IFD = 0xA005


@dataclass(frozen=True)
class Entry:
    tag: int
    type: int
    count: int
    value: bytes  # the raw value bytes, already bounds-checked
    value_offset: int  # where those bytes sit in the TIFF data (inline values: in the entry)


@dataclass(frozen=True)
class Ifd:
    offset: int
    entries: dict[int, Entry]
    next_offset: int


class TiffReader:
    """Random access to a TIFF structure held in memory."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 8:
            raise DamagedFile("TIFF/EXIF header is truncated")
        if data[:2] == b"II":
            self.order = "<"
        elif data[:2] == b"MM":
            self.order = ">"
        else:
            raise DamagedFile("TIFF/EXIF header has no byte-order mark")
        magic, self.first_ifd_offset = struct.unpack(self.order + "HI", data[2:8])
        if magic != 42:
            raise DamagedFile(f"TIFF/EXIF header has magic number {magic}, expected 42")
        self.data = data

    def read_ifd(self, offset: int) -> Ifd:
        data, order = self.data, self.order
        if offset < 8 or offset + 2 > len(data):
            raise DamagedFile(f"an IFD offset ({offset}) points past the end of the data")
        (count,) = struct.unpack(order + "H", data[offset : offset + 2])
        end = offset + 2 + 12 * count
        if count > MAX_ENTRIES or end > len(data):
            raise DamagedFile(f"an IFD at offset {offset} claims {count} entries past the end")
        entries: dict[int, Entry] = {}
        for pos in range(offset + 2, end, 12):
            tag, typ, n = struct.unpack(order + "HHI", data[pos : pos + 8])
            size = TYPE_SIZES.get(typ)
            if size is None:
                continue  # unknown field type: skip the entry, as readers must
            length = size * n
            if length <= 4:
                start = pos + 8
            else:
                (start,) = struct.unpack(order + "I", data[pos + 8 : pos + 12])
                if start + length > len(data):
                    continue  # value past the end: unusable, treated as absent
            entries.setdefault(tag, Entry(tag, typ, n, data[start : start + length], start))
        next_offset = 0
        if end + 4 <= len(data):
            (next_offset,) = struct.unpack(order + "I", data[end : end + 4])
        return Ifd(offset, entries, next_offset)

    def numbers(self, entry: Entry) -> tuple[float, ...]:
        """Numeric values of an entry (rationals as floats; zero denominators as 0)."""
        t, order, raw = entry.type, self.order, entry.value
        if t in _UNSIGNED or t in _SIGNED or t in _FLOATS:
            code = _UNSIGNED.get(t) or _SIGNED.get(t) or _FLOATS[t]
            return tuple(struct.unpack(f"{order}{entry.count}{code}", raw))
        if t in (5, 10):
            code = "I" if t == 5 else "i"
            parts = struct.unpack(f"{order}{2 * entry.count}{code}", raw)
            return tuple(
                (parts[i] / parts[i + 1]) if parts[i + 1] else 0.0 for i in range(0, len(parts), 2)
            )
        if t == 7:
            return tuple(raw)
        return ()

    def integer(self, entry: Entry | None, default: int = 0) -> int:
        if entry is None:
            return default
        values = self.numbers(entry)
        return int(values[0]) if values else default

    @staticmethod
    def text(entry: Entry) -> str:
        raw = entry.value
        if entry.type == 7 and raw[:8] in (b"ASCII\x00\x00\x00", b"UNICODE\x00", b"\x00" * 8):
            # EXIF UserComment: 8-byte character-code prefix.
            codec = "utf-16" if raw[:8] == b"UNICODE\x00" else "latin-1"
            raw = raw[8:]
            return raw.decode(codec, "replace").strip("\x00 ").strip()
        if entry.type == 1 and entry.count % 2 == 0 and b"\x00" in raw[1::2]:
            # Windows XP* tags: UTF-16LE in a BYTE array.
            return raw.decode("utf-16-le", "replace").strip("\x00 ").strip()
        return raw.split(b"\x00", 1)[0].decode("utf-8", "replace").strip()


@dataclass(frozen=True)
class Directories:
    """The named directories of an EXIF block (each optional)."""

    ifd0: Ifd | None
    exif: Ifd | None
    gps: Ifd | None
    interop: Ifd | None
    ifd1: Ifd | None


def walk(reader: TiffReader) -> Directories:
    """Read IFD0, its EXIF/GPS/Interop sub-directories and IFD1, never revisiting one."""
    seen: set[int] = set()

    def visit(offset: int) -> Ifd | None:
        if offset == 0 or offset in seen:
            return None
        seen.add(offset)
        try:
            return reader.read_ifd(offset)
        except DamagedFile:
            return None

    ifd0 = visit(reader.first_ifd_offset)
    if ifd0 is None:
        return Directories(None, None, None, None, None)

    def pointer(ifd: Ifd | None, tag: int) -> Ifd | None:
        if ifd is None or tag not in ifd.entries:
            return None
        return visit(reader.integer(ifd.entries[tag]))

    exif = pointer(ifd0, EXIF_IFD)
    return Directories(
        ifd0=ifd0,
        exif=exif,
        gps=pointer(ifd0, GPS_IFD),
        interop=pointer(exif, INTEROP_IFD),
        ifd1=visit(ifd0.next_offset),
    )
