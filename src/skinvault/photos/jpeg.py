"""JPEG: segment-level, lossless scrubbing.

The entropy-coded image data is copied byte for byte, so the decoded pixels are
identical. Kept (an allowlist): the frame and scan structure (SOFn, DHT, DQT,
DRI, DAC, DNL, SOS + entropy-coded data, RSTn), APP0 JFIF (rewritten without
its thumbnail), APP14 Adobe (CMYK/YCCK colour transform) and APP2 ICC_PROFILE
chunks in order. Everything else goes: EXIF, XMP and extended XMP, IPTC and
Photoshop blocks, MPF, other APPn, comments, and any data after EOI. When the
EXIF Orientation is not 1, a minimal EXIF holding only Orientation is written
so the photo still displays upright.

    >>> cleaned = clean(open("photo.jpg", "rb").read())   # doctest: +SKIP
    >>> cleaned.lossless
    True
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from skinvault.errors import DamagedFile
from skinvault.photos import ciff, exif, icc, iptc, jpeg_structure, residue, textscan, xmp
from skinvault.photos.findings import Category, Cleaned, Finding
from skinvault.photos.limits import check_pixels

SOI, EOI, SOS, COM = 0xD8, 0xD9, 0xDA, 0xFE
APP0, APP1, APP2, APP13, APP14 = 0xE0, 0xE1, 0xE2, 0xED, 0xEE
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RST0-7 carry no length
# findings() reads only through indexing, slicing and find: an mmap works too.
ACCEPTS_BUFFERS = True

_SOF = {*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}
# Markers needed to decode the image; kept byte for byte.
_STRUCTURAL = _SOF | {0xC4, 0xCC, 0xDB, 0xDC, 0xDD, 0xDF}

_EXIF = b"Exif\x00"
_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_EXT = b"http://ns.adobe.com/xmp/extension/\x00"
_ICC = b"ICC_PROFILE\x00"
_PHOTOSHOP = b"Photoshop 3.0\x00"
# The end of entropy-coded data: 0xFF followed by a marker code (0xC0-0xFE
# except the restart markers RST0-7), or by a code no marker has (0x01-0xBF): libjpeg
# ends the scan there too, and then stops with an error, unless the scan restarts
# (DRI), when it may resync at the next restart marker, or the code is TEM (0x01),
# after which it skips to the next marker — such a pair then stays inside the scan
# and is copied verbatim. Stuffed 0xFF00 and fill bytes stay inside the scan. A
# compiled pattern keeps the scan in C, which is most of the scrubber's speed.
_ECS_END = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")


@dataclass(frozen=True)
class Segment:
    marker: int
    start: int  # offset of the 0xFF of the marker
    end: int  # offset just past the segment (for SOS: past its entropy-coded data)

    def payload(self, data: bytes) -> bytes:
        """The segment's bytes after marker and length."""
        return data[self.start + 4 : self.end] if self.marker != SOS else b""


@dataclass(frozen=True)
class Parsed:
    segments: tuple[Segment, ...]
    trailer_start: int  # offset just past EOI
    strays: int = 0  # byte pairs that are no marker inside scans that restart


def parse(data: bytes, opaque: tuple[tuple[int, int], ...] = ()) -> Parsed:
    """Split a JPEG into segments, checking every length against the data.

    ``opaque`` names entropy-coded ranges already scanned (see
    :attr:`Cleaned.opaque`): their contents are not scanned again, but each
    must end exactly where a marker starts.
    """
    known = dict(opaque)
    if data[:2] != b"\xff\xd8":
        raise DamagedFile("not a JPEG: no start-of-image marker")
    segments: list[Segment] = []
    pos, size, seen_frame = 2, len(data), False
    restarts, strays = False, 0  # whether a DRI with an interval is in force
    while True:
        if pos >= size:
            raise DamagedFile("truncated: the JPEG ends before its end-of-image marker")
        if data[pos] != 0xFF:
            raise DamagedFile(f"damaged: expected a JPEG marker at byte {pos}")
        while pos + 1 < size and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes before a marker are allowed
        if pos + 1 >= size:
            raise DamagedFile("truncated: the JPEG ends inside a marker")
        marker = data[pos + 1]
        if marker == EOI:
            if not seen_frame:
                raise DamagedFile("damaged: the JPEG has no image data before its end marker")
            return Parsed(tuple(segments), pos + 2, strays)
        if marker in _STANDALONE:
            segments.append(Segment(marker, pos, pos + 2))
            pos += 2
            continue
        if marker in (SOI, 0x00):
            raise DamagedFile(f"damaged: unexpected marker 0xFF{marker:02X} at byte {pos}")
        if pos + 4 > size:
            raise DamagedFile("truncated: the JPEG ends inside a segment header")
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > size:
            raise DamagedFile(
                f"damaged: a segment at byte {pos} claims {length} bytes,"
                " past the end of the file (truncated or corrupt)"
            )
        if marker in _SOF:
            _check_frame(data, pos, length)
            seen_frame = True
        if marker == 0xDD and length >= 4:  # DRI
            restarts = data[pos + 4 : pos + 6] != b"\x00\x00"
        if marker == SOS:
            if not seen_frame:
                raise DamagedFile("damaged: image data (SOS) before the frame header (SOF)")
            if end in known:
                end += known[end]
                found = _ECS_END.match(data, end)
                if found is None or data[end + 1] < 0xC0:
                    raise DamagedFile("damaged: copied image data does not end at a marker")
            else:
                end, seen = _scan_end(data, end, restarts)
                strays += seen
        segments.append(Segment(marker, pos, end))
        pos = end


def _scan_end(data: bytes, start: int, restarts: bool) -> tuple[int, int]:
    """Where the entropy-coded data from ``start`` ends, and how many byte pairs that are no
    marker it holds (a TEM, or any in a scan that restarts; elsewhere one is refused)."""
    strays = 0
    while True:
        found = _ECS_END.search(data, start)
        if found is None:
            raise DamagedFile("truncated: the image data ends without an end-of-image marker")
        at = found.start()
        if data[at + 1] >= 0xC0:
            return at, strays
        if not restarts and data[at + 1] != 0x01:  # libjpeg skips on after a TEM
            raise DamagedFile(
                f"damaged: the image data is cut at byte {at} by 0xFF{data[at + 1]:02X},"
                " which is no JPEG marker (decoders stop there)"
            )
        strays += 1
        start = at + 2


def _check_frame(data: bytes, pos: int, length: int) -> None:
    if length < 8:
        raise DamagedFile("damaged: the frame header (SOF) is too short")
    height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
    check_pixels(width, height)


def _app_findings(data: bytes, seg: Segment) -> list[Finding]:
    body = seg.payload(data)
    n = seg.marker - APP0
    if seg.marker == APP1 and body.startswith(_EXIF):
        return exif.findings(body[6:], "EXIF")
    if seg.marker == APP1 and body.startswith(_XMP):
        return xmp.findings(body[len(_XMP) :], "XMP")
    if seg.marker == APP1 and body.startswith(_XMP_EXT):
        return xmp.findings(body[len(_XMP_EXT) + 40 :], "Extended XMP")
    if seg.marker == APP13 and body.startswith(_PHOTOSHOP):
        return iptc.photoshop_findings(body[len(_PHOTOSHOP) :], "Photoshop/IPTC")
    if seg.marker == APP2 and body.startswith(b"MPF\x00"):
        return [
            Finding(
                Category.THUMBNAIL,
                "Multi-picture index",
                "MPF",
                "A multi-picture index pointing at extra images stored after the photo"
                " (large previews, depth maps)",
            )
        ]
    if seg.marker == APP0 and body.startswith(b"JFIF\x00"):
        return _jfif_thumbnail(body)
    if seg.marker == APP0 and body.startswith(b"JFXX\x00"):
        return [
            Finding(
                Category.THUMBNAIL,
                "JFIF thumbnail",
                "JFXX",
                f"A JFIF extension thumbnail ({len(body):,} bytes) — may show the original",
            )
        ]
    if seg.marker == APP1 and body.startswith(b"QVCI\x00"):
        return [
            *textscan.dates_in(body, "Casio QVCI"),
            Finding(
                Category.DEVICE,
                "Camera information",
                "Casio QVCI",
                "A Casio camera information block (camera model and manufacture codes)",
            ),
        ]
    if seg.marker == APP0 and ciff.is_ciff(body):
        return [*ciff.findings(body, "CIFF"), _block_finding(body, n)]
    return [*textscan.dates_in(body, f"APP{n}"), _block_finding(body, n)]


def _block_finding(body: bytes, n: int) -> Finding:
    name = body[:20].split(b"\x00", 1)[0].decode("latin-1")
    name = "".join(ch for ch in name if ch.isprintable())[:20] or "unnamed"
    return Finding(
        Category.OTHER,
        f"APP{n} block",
        f"APP{n}",
        f"An application block “{name}” ({len(body):,} bytes) written by a camera or app",
    )


def _jfif_thumbnail(body: bytes) -> list[Finding]:
    if len(body) >= 14 and body[12] and body[13]:
        return [
            Finding(
                Category.THUMBNAIL,
                "JFIF thumbnail",
                "JFIF",
                f"A {body[12]}×{body[13]} JFIF thumbnail — may show the original",
            )
        ]
    return []


def _afcp_iptc(trailer: bytes) -> list[Finding]:
    """IPTC records inside an AFCP trailer (ends with "AXS!"), written by some photo tools."""
    if b"AXS!" not in trailer[-64:] and not trailer.startswith(b"AXS!"):
        return []
    start = trailer.find(b"\x1c\x02")
    return iptc.findings(trailer[start:], "AFCP/IPTC") if start >= 0 else []


def _trailer_finding(trailer: bytes) -> list[Finding]:
    if not trailer:
        return []
    if b"\xff\xd8\xff" in trailer[:64]:
        return [
            Finding(
                Category.THUMBNAIL,
                "Hidden second image",
                "after the image",
                f"A second image hidden after the photo ({len(trailer):,} bytes) — often a"
                " large preview of the original, uncropped",
            )
        ]
    afcp = _afcp_iptc(trailer)
    return [
        *afcp,
        Finding(
            Category.TRAILER,
            "Trailing data",
            "after the image",
            f"{len(trailer):,} bytes of extra data hidden after the end of the image",
        ),
    ]


def _is_kept(data: bytes, seg: Segment) -> bool:
    m = seg.marker
    if m in _STRUCTURAL or m == SOS or m in _STANDALONE:
        return True
    if m == APP14:
        return seg.payload(data).startswith(b"Adobe")
    if m == APP2:
        return seg.payload(data).startswith(_ICC)
    return False


def findings(data: bytes, opaque: tuple[tuple[int, int], ...] = ()) -> list[Finding]:
    """Everything a JPEG carries beyond what decoding and colour need."""
    return _findings(data, parse(data, opaque))


def _findings(data: bytes, parsed: Parsed) -> list[Finding]:
    out: list[Finding] = []
    for seg in parsed.segments:
        if seg.marker == COM:
            text = seg.payload(data).split(b"\x00", 1)[0].decode("utf-8", "replace").strip()
            shown = " ".join(text.split())[:60] or "(empty)"
            out.append(Finding(Category.COMMENT, "Comment", "COM", f"A comment “{shown}”"))
        elif seg.marker == APP1 and seg.payload(data) == b"Exif\x00\x00" + _minimal(data, seg):
            continue  # our own minimal EXIF (Orientation only) reveals nothing
        elif not _is_kept(data, seg):
            out.extend(_app_findings(data, seg))
    out.extend(_trailer_finding(data[parsed.trailer_start :]))
    return out


def _minimal(data: bytes, seg: Segment) -> bytes:
    body = seg.payload(data)
    return exif.minimal_exif(exif.orientation(body[6:]))


def _orientation(data: bytes, segments: tuple[Segment, ...]) -> int:
    for seg in segments:
        body = seg.payload(data)
        if seg.marker == APP1 and body.startswith(_EXIF):
            return exif.orientation(body[6:])
    return 1


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _jfif(data: bytes, segments: tuple[Segment, ...]) -> bytes | None:
    """The first JFIF header, without its thumbnail; None when absent or too short."""
    for seg in segments:
        body = seg.payload(data)
        if seg.marker == APP0 and body.startswith(b"JFIF\x00") and len(body) >= 12:
            return _segment(APP0, body[:12] + b"\x00\x00")
    return None


def _tables(body: bytes, marker: int) -> int:
    """How many bytes of a DQT or DHT payload its tables use (the rest is not read)."""
    pos = 0
    while pos < len(body):
        kind = body[pos]
        if marker == 0xDB:
            if kind >> 4 > 1 or kind & 15 > 3:
                break
            size = 1 + 64 * (1 + (kind >> 4))
        else:
            if kind >> 4 > 1 or kind & 15 > 3 or pos + 17 > len(body):
                break
            size = 17 + sum(body[pos + 1 : pos + 17])
        if pos + size > len(body):
            break
        pos += size
    return pos


def used(marker: int, body: bytes) -> int:
    """How many bytes of a kept segment's payload a decoder reads (ITU T.81, Adobe TN 5116).

    Raises :class:`DamagedFile` when a segment that decoding needs is too short.
    """
    if marker in (0xDB, 0xC4):
        size = _tables(body, marker)
        if size == 0:
            raise DamagedFile("damaged: a JPEG table segment holds no valid table")
        return size
    if marker in _SOF:
        need = 6 + 3 * body[5] if len(body) >= 6 else 6
    elif marker == SOS:
        need = 4 + 2 * body[0] if body else 4
    elif marker in (0xDD, 0xDC):  # DRI, DNL
        need = 2
    elif marker == 0xDF:  # EXP
        need = 1
    elif marker == 0xCC:  # DAC: pairs
        return len(body) - len(body) % 2
    elif marker == APP14:
        need = 12  # "Adobe", version, flags0, flags1, colour transform
    else:
        return len(body)
    if len(body) < need:
        raise DamagedFile(f"damaged: a JPEG segment 0xFF{marker:02X} is shorter than its fields")
    return need


def _icc(data: bytes, segments: tuple[Segment, ...]) -> tuple[bytes | None, list[bytes]]:
    """The ICC profile split over APP2 chunks (in sequence order), and its chunks' bodies."""
    chunks = []
    for seg in segments:
        body = seg.payload(data)
        if seg.marker == APP2 and body.startswith(_ICC):
            chunks.append(body)
    if not chunks:
        return None, []
    ordered = sorted(chunks, key=lambda b: b[12] if len(b) > 12 else 0)
    return b"".join(b[14:] for b in ordered), chunks


def _icc_segments(profile: bytes) -> list[bytes]:
    step = 65533 - 2 - 14
    pieces = [profile[i : i + step] for i in range(0, len(profile), step)]
    return [
        _segment(APP2, _ICC + bytes([n, len(pieces)]) + piece) for n, piece in enumerate(pieces, 1)
    ]


@dataclass
class _Output:
    parts: list[bytes | memoryview]
    opaque: list[tuple[int, int]]
    notes: list[str]
    removed_bytes: list[bytes]  # dropped payloads, for the residue check
    kept_tables: list[bytes]  # colour data and tables written back
    structure: list[tuple[int, bytes]]  # frame, tables and scan headers as written


def _rewritten(data: bytes, parsed: Parsed) -> _Output:
    """Every kept segment rebuilt at its defined size; only scan data is copied verbatim."""
    view = memoryview(data)
    out = _Output([b"\xff\xd8"], [], [], [], [], [])
    jfif = _jfif(data, parsed.segments)
    if jfif is not None:
        out.parts.append(jfif)  # JFIF must directly follow SOI
    orient = _orientation(data, parsed.segments)
    if orient != 1:
        out.parts.append(_segment(APP1, b"Exif\x00\x00" + exif.minimal_exif(orient)))
        out.notes.append("kept only the EXIF Orientation so the photo still displays upright")
    profile, icc_chunks = _icc(data, parsed.segments)
    if profile is not None:
        try:
            rebuilt = icc.rebuild(profile)
        except icc.NotAProfile as exc:
            out.removed_bytes.extend(icc_chunks)
            out.notes.append(f"dropped the ICC colour slot: {exc}, not a valid ICC profile")
        else:
            out.parts.extend(_icc_segments(rebuilt))
            out.removed_bytes.extend(icc.texts(profile))
            out.kept_tables.extend(icc.colour_tags(profile).values())
            out.kept_tables.append(icc.NEUTRAL_TEXT.encode())
    offset = sum(len(p) for p in out.parts)
    trimmed = 0
    for seg in parsed.segments:
        m = seg.marker
        if m in _STANDALONE:
            out.parts.append(view[seg.start : seg.end])
            offset += 2
            continue
        if m == APP2 and _is_kept(data, seg):
            continue  # the ICC profile, written above
        if not _is_kept(data, seg):
            out.removed_bytes.append(data[seg.start + 4 : seg.end])
            continue
        length = int.from_bytes(data[seg.start + 2 : seg.start + 4], "big")
        body = data[seg.start + 4 : seg.start + 2 + length]
        n = used(m, body)
        if n < len(body):
            trimmed += 1
            out.removed_bytes.append(body[n:])
        head = _segment(m, body[:n])
        out.parts.append(head)
        if m != APP14:
            out.structure.append((m, body[:n]))
        if m in (0xDB, 0xC4):
            out.kept_tables.append(body[:n])
        offset += len(head)
        if m == SOS:
            scan = seg.start + 2 + length
            out.parts.append(view[scan : seg.end])
            out.opaque.append((offset, seg.end - scan))
            offset += seg.end - scan
    if trimmed:
        out.notes.append(
            f"dropped bytes past the defined fields of {trimmed} JPEG segment(s); decoders"
            " do not read them"
        )
    out.parts.append(b"\xff\xd9")
    out.removed_bytes.append(data[parsed.trailer_start :])
    return out


def strict(data: bytes, opaque: tuple[tuple[int, int], ...] = ()) -> None:
    """Raise :class:`DamagedFile` unless every segment is exactly as long as its fields."""
    parsed = parse(data, opaque)
    for seg in parsed.segments:
        if seg.marker in _STANDALONE:
            continue
        length = int.from_bytes(data[seg.start + 2 : seg.start + 4], "big")
        body = data[seg.start + 4 : seg.start + 2 + length]
        if seg.marker == APP2 and body.startswith(_ICC):
            continue  # checked as a whole profile below
        if seg.marker in (APP1, APP0):
            continue  # JFIF header / minimal EXIF: compared by findings()
        if used(seg.marker, body) != len(body):
            raise DamagedFile(f"segment 0xFF{seg.marker:02X} holds bytes past its fields")
    profile, _ = _icc(data, parsed.segments)
    if profile is not None and icc.rebuild(profile) != profile:
        raise DamagedFile("its ICC profile is not in rebuilt form")
    if parsed.trailer_start != len(data):
        raise DamagedFile("data after the end of the image")


def clean(data: bytes) -> Cleaned:
    """Lossless rewrite keeping only the allowlisted segments."""
    parsed = parse(data)
    out = _rewritten(data, parsed)
    decodes = jpeg_structure.decodable(out.structure, strays=parsed.strays > 0)
    return Cleaned(
        tuple(out.parts),
        lossless=True,
        notes=tuple(out.notes),
        removed=tuple(_findings(data, parsed)),
        opaque=tuple(out.opaque),
        secrets=residue.without(residue.strings(*out.removed_bytes), *out.kept_tables),
        decodable=decodes,
    )
