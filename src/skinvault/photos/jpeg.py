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
from skinvault.photos import ciff, exif, iptc, textscan, xmp
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
# except the restart markers RST0-7). Stuffed 0xFF00, fill bytes and corrupt
# pairs such as 0xFF9F stay inside the scan and are copied verbatim, as
# libjpeg decodes past them. A compiled pattern keeps the scan in C, which is
# most of the scrubber's speed.
_ECS_END = re.compile(rb"\xff[\xc0-\xcf\xd8-\xfe]")


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
            return Parsed(tuple(segments), pos + 2)
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
        if marker == SOS:
            if not seen_frame:
                raise DamagedFile("damaged: image data (SOS) before the frame header (SOF)")
            if end in known:
                end += known[end]
                if _ECS_END.match(data, end) is None:
                    raise DamagedFile("damaged: copied image data does not end at a marker")
            else:
                found = _ECS_END.search(data, end)
                if found is None:
                    raise DamagedFile(
                        "truncated: the image data ends without an end-of-image marker"
                    )
                end = found.start()
        segments.append(Segment(marker, pos, end))
        pos = end


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


def _rewritten(
    data: bytes, parsed: Parsed
) -> tuple[list[bytes | memoryview], list[tuple[int, int]]]:
    """The output's parts, and where its (verbatim) entropy-coded ranges sit."""
    view = memoryview(data)
    parts: list[bytes | memoryview] = [b"\xff\xd8"]
    jfif = _jfif(data, parsed.segments)
    if jfif is not None:
        parts.append(jfif)  # JFIF must directly follow SOI
    orient = _orientation(data, parsed.segments)
    if orient != 1:
        parts.append(_segment(APP1, b"Exif\x00\x00" + exif.minimal_exif(orient)))
    offset = sum(len(p) for p in parts)
    opaque: list[tuple[int, int]] = []
    for seg in parsed.segments:
        if _is_kept(data, seg):
            parts.append(view[seg.start : seg.end])
            if seg.marker == SOS:
                header = 2 + int.from_bytes(data[seg.start + 2 : seg.start + 4], "big")
                opaque.append((offset + header, seg.end - seg.start - header))
            offset += seg.end - seg.start
    parts.append(b"\xff\xd9")
    return parts, opaque


def clean(data: bytes) -> Cleaned:
    """Lossless rewrite keeping only the allowlisted segments."""
    parsed = parse(data)
    notes: list[str] = []
    if _orientation(data, parsed.segments) != 1:
        notes.append("kept only the EXIF Orientation so the photo still displays upright")
    parts, opaque = _rewritten(data, parsed)
    return Cleaned(
        tuple(parts),
        lossless=True,
        notes=tuple(notes),
        removed=tuple(_findings(data, parsed)),
        opaque=tuple(opaque),
    )
