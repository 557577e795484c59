"""PNG: chunk-level, lossless scrubbing.

Kept (an allowlist): the critical chunks (IHDR, PLTE, IDAT, IEND), the colour
chunks that change how pixels display (tRNS, gAMA, cHRM, sRGB, iCCP, sBIT,
cICP, mDCV, cLLI), pHYs, and the animation chunks of APNG (acTL, fcTL, fdAT).
Everything else goes: tEXt, zTXt, iTXt, eXIf, tIME, and unknown chunks.

    >>> clean(open("photo.png", "rb").read()).lossless      # doctest: +SKIP
    True
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from skinvault.errors import DamagedFile
from skinvault.photos import exif, xmp
from skinvault.photos.findings import Category, Cleaned, Finding
from skinvault.photos.limits import check_pixels

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_KEEP = {
    b"IHDR",
    b"PLTE",
    b"IDAT",
    b"IEND",
    b"tRNS",
    b"gAMA",
    b"cHRM",
    b"sRGB",
    b"iCCP",
    b"sBIT",
    b"cICP",
    b"mDCV",
    b"cLLI",
    b"pHYs",
    b"acTL",
    b"fcTL",
    b"fdAT",
}
_MAX_TEXT = 1 << 20  # compressed text is inflated only this far, for the report
_XMP_KEY = b"XML:com.adobe.xmp"


@dataclass(frozen=True)
class Chunk:
    kind: bytes
    start: int  # offset of the length field
    end: int  # offset past the CRC

    def body(self, data: bytes) -> bytes:
        return data[self.start + 8 : self.end - 4]


def parse(data: bytes) -> tuple[list[Chunk], int]:
    """Chunks up to and including IEND, and the offset just past IEND."""
    if not data.startswith(SIGNATURE):
        raise DamagedFile("not a PNG: bad signature")
    chunks: list[Chunk] = []
    pos = len(SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise DamagedFile("truncated: the PNG ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > len(data):
            raise DamagedFile(
                f"damaged: chunk {kind!r} at byte {pos} claims {length} bytes,"
                " past the end of the file (truncated or corrupt)"
            )
        if not kind.isalpha():
            raise DamagedFile(f"damaged: invalid chunk name {kind!r} at byte {pos}")
        chunk = Chunk(kind, pos, end)
        if not chunks:
            if kind != b"IHDR" or length != 13:
                raise DamagedFile("damaged: the PNG does not start with a valid IHDR chunk")
            width, height = struct.unpack(">II", chunk.body(data)[:8])
            check_pixels(width, height)
        chunks.append(chunk)
        pos = end
        if kind == b"IEND":
            return chunks, pos


def _inflate(raw: bytes) -> bytes:
    try:
        return zlib.decompressobj().decompress(raw, _MAX_TEXT)
    except zlib.error:
        return b""


def _text(kind: bytes, body: bytes) -> tuple[bytes, bytes]:
    """(keyword, text) of a tEXt/zTXt/iTXt chunk."""
    key, _, rest = body.partition(b"\x00")
    if kind == b"zTXt":
        return key, _inflate(rest[1:])
    if kind == b"iTXt":
        flag, rest = rest[:1], rest[2:]
        rest = rest.split(b"\x00", 2)[-1]  # skip language tag and translated keyword
        return key, _inflate(rest) if flag == b"\x01" else rest
    return key, rest


_KEYWORD_CATEGORY = {
    b"Author": Category.PERSON,
    b"Copyright": Category.PERSON,
    b"Artist": Category.PERSON,
    b"Creation Time": Category.TIME,
    b"Software": Category.SOFTWARE,
    b"Source": Category.DEVICE,
    b"Comment": Category.COMMENT,
    b"Description": Category.COMMENT,
    b"Title": Category.COMMENT,
}


def _chunk_findings(data: bytes, chunk: Chunk) -> list[Finding]:
    kind, body = chunk.kind, chunk.body(data)
    name = kind.decode("latin-1")
    if kind in (b"tEXt", b"zTXt", b"iTXt"):
        key, text = _text(kind, body)
        if key == _XMP_KEY:
            return xmp.findings(text, f"XMP ({name})")
        shown = " ".join(text.decode("utf-8", "replace").split())[:60]
        label = key.decode("latin-1")[:40] or "text"
        category = _KEYWORD_CATEGORY.get(key, Category.COMMENT)
        return [Finding(category, label, name, f"Text “{label}: {shown}”")]
    if kind == b"eXIf":
        if body == exif.minimal_exif(exif.orientation(body)):
            return []  # our own Orientation-only EXIF reveals nothing
        return exif.findings(body, "EXIF (eXIf)")
    if kind == b"tIME":
        if len(body) == 7:
            y, mo, d, h, mi, s = struct.unpack(">HBBBBB", body)
            when = f"{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"
            return [
                Finding(Category.TIME, "Last modified", name, f"Last modified {when} — shows when")
            ]
        return [Finding(Category.TIME, "Last modified", name, "A last-modified time stamp")]
    return [
        Finding(
            Category.OTHER,
            f"{name} chunk",
            name,
            f"An extra “{name}” chunk ({len(body):,} bytes) written by a camera or app",
        )
    ]


def findings(data: bytes) -> list[Finding]:
    chunks, end = parse(data)
    out: list[Finding] = []
    for chunk in chunks:
        if chunk.kind not in _KEEP or chunk.kind == b"eXIf":
            out.extend(_chunk_findings(data, chunk))
    if end < len(data):
        out.append(
            Finding(
                Category.TRAILER,
                "Trailing data",
                "after the image",
                f"{len(data) - end:,} bytes of extra data hidden after the end of the image",
            )
        )
    return out


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def clean(data: bytes) -> Cleaned:
    """Lossless rewrite keeping the allowlisted chunks (and Orientation, if not 1)."""
    chunks, _ = parse(data)
    view = memoryview(data)
    orient = next((exif.orientation(c.body(data)) for c in chunks if c.kind == b"eXIf"), 1)
    parts: list[bytes | memoryview] = [SIGNATURE]
    notes: tuple[str, ...] = ()
    for c in chunks:
        if orient != 1 and c.kind in (b"IDAT", b"acTL"):
            # eXIf must precede the image data; keep only Orientation.
            parts.append(_chunk(b"eXIf", exif.minimal_exif(orient)))
            notes = ("kept only the EXIF Orientation so the photo still displays upright",)
            orient = 1
        if c.kind in _KEEP:
            parts.append(view[c.start : c.end])
    return Cleaned(tuple(parts), lossless=True, notes=notes)
