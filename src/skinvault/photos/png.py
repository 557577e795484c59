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
from skinvault.photos import exif, icc, residue, xmp
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


#: Chunks of a fixed size (PNG 3rd edition); longer bodies are cut to it.
_FIXED = {
    b"IHDR": 13, b"gAMA": 4, b"cHRM": 32, b"sRGB": 1, b"cICP": 4, b"mDCV": 24,
    b"cLLI": 8, b"pHYs": 9, b"acTL": 8, b"fcTL": 26, b"IEND": 0,
}  # fmt: skip
_SBIT = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
_TRNS = {0: 2, 2: 6}
_MAX_PROFILE = 1 << 24
_ICC_NAME = b"ICC Profile"


def _sized(kind: bytes, body: bytes, colour: int, palette: int) -> int | None:
    """How many bytes of a kept chunk a decoder reads; None when it is unusable."""
    if kind in _FIXED:
        need = _FIXED[kind]
    elif kind == b"sBIT":
        need = _SBIT.get(colour, 0)
    elif kind == b"tRNS":
        if colour == 3:
            return min(len(body), palette) or None
        need = _TRNS.get(colour, 0)
    elif kind == b"PLTE":
        n = min(len(body) // 3, 256)
        return 3 * n or None
    else:
        return len(body)
    return need if (need and len(body) >= need) or kind == b"IEND" else None


def _stream_end(raw: bytes) -> int | None:
    """Where the zlib stream starting at ``raw[0]`` ends; None if it does not end."""
    inflater = zlib.decompressobj()
    pending = raw
    while pending and not inflater.eof:
        inflater.decompress(pending, 1 << 20)  # bounded: the pixels are not kept
        pending = inflater.unconsumed_tail
    if not inflater.eof:
        return None
    return len(raw) - len(inflater.unused_data)


def _iccp(body: bytes) -> bytes:
    """The profile inside an iCCP chunk; raises :class:`icc.NotAProfile`."""
    _, _, rest = body.partition(b"\x00")
    if not rest or rest[0] != 0:
        raise icc.NotAProfile("its iCCP chunk is not zlib-compressed")
    inflater = zlib.decompressobj()
    try:
        profile = inflater.decompress(rest[1:], _MAX_PROFILE)
    except zlib.error as exc:
        raise icc.NotAProfile("its iCCP data is not a complete zlib stream") from exc
    if not inflater.eof:
        raise icc.NotAProfile("its iCCP data is not a complete zlib stream")
    return profile


def _streams(data: bytes, chunks: list[Chunk]) -> dict[int, int]:
    """For each IDAT/fdAT chunk (by start), how many of its data bytes a decoder reads.

    The image data (IDAT) and each animation frame's data (the fdAT chunks
    after one fcTL) form one zlib stream each; bytes after its end are unread.
    """
    groups: list[list[Chunk]] = []
    previous = b""
    for c in chunks:
        if c.kind in (b"IDAT", b"fdAT"):
            if c.kind != previous:
                groups.append([])
            groups[-1].append(c)
        previous = c.kind if c.kind in (b"IDAT", b"fdAT") else b""
    used: dict[int, int] = {}
    for group in groups:
        skip = 4 if group[0].kind == b"fdAT" else 0
        raw = b"".join(c.body(data)[skip:] for c in group)
        end = _stream_end(raw)
        left = len(raw) if end is None else end
        for c in group:
            size = len(c.body(data)) - skip
            used[c.start] = min(size, left)
            left -= used[c.start]
    return used


def _rebuilt(data: bytes, chunks: list[Chunk]) -> Cleaned:
    colour = data[chunks[0].start + 17]
    palette = 0
    orient = next((exif.orientation(c.body(data)) for c in chunks if c.kind == b"eXIf"), 1)
    used = _streams(data, chunks)
    parts: list[bytes | memoryview] = [SIGNATURE]
    opaque: list[tuple[int, int]] = []
    offset = len(SIGNATURE)
    notes: list[str] = []
    removed: list[bytes] = []
    kept: list[bytes] = []
    trimmed = 0
    for c in chunks:
        body = c.body(data)
        if orient != 1 and c.kind in (b"IDAT", b"acTL"):
            # eXIf must precede the image data; keep only Orientation.
            piece = _chunk(b"eXIf", exif.minimal_exif(orient))
            parts.append(piece)
            offset += len(piece)
            notes.append("kept only the EXIF Orientation so the photo still displays upright")
            orient = 1
        if c.kind not in _KEEP:
            removed.append(body)
            if c.kind in (b"zTXt", b"iTXt"):
                removed.append(_text(c.kind, body)[1])
            continue
        if c.kind == b"iCCP":
            try:
                profile = _iccp(body)
                rebuilt = icc.rebuild(profile)
            except icc.NotAProfile as exc:
                removed.extend((body, _inflate(body.partition(b"\x00")[2][1:])))
                notes.append(f"dropped the ICC colour slot (iCCP): {exc}, not a valid ICC profile")
                continue
            removed.extend((body[:80], *icc.texts(profile)))
            kept.extend((*icc.colour_tags(profile).values(), icc.NEUTRAL_TEXT.encode(), _ICC_NAME))
            piece = _chunk(b"iCCP", _ICC_NAME + b"\x00\x00" + zlib.compress(rebuilt, 9))
        elif c.kind in (b"IDAT", b"fdAT"):
            skip = 4 if c.kind == b"fdAT" else 0
            n = used[c.start]
            if n + skip < len(body):
                trimmed += 1
                removed.append(body[skip + n :])
            if (
                n == 0
                and c.kind == b"IDAT"
                and any(p.kind == b"IDAT" for p in chunks if p.start < c.start)
            ):
                continue
            head = struct.pack(">I", n + skip) + c.kind + body[:skip]
            crc = zlib.crc32(body[skip : skip + n], zlib.crc32(c.kind + body[:skip]))
            parts.extend((head, memoryview(data)[c.start + 8 + skip : c.start + 8 + skip + n]))
            opaque.append((offset + len(head), n))
            parts.append(struct.pack(">I", crc))
            offset += len(head) + n + 4
            continue
        else:
            size = _sized(c.kind, body, colour, palette)
            if size is None:
                removed.append(body)
                notes.append(f"dropped a {c.kind.decode('latin-1')} chunk too short for its fields")
                continue
            if size < len(body):
                trimmed += 1
                removed.append(body[size:])
            if c.kind == b"PLTE":
                palette = size // 3
            piece = _chunk(c.kind, body[:size])
        parts.append(piece)
        offset += len(piece)
    if trimmed:
        notes.append(
            f"dropped bytes past the defined fields of {trimmed} PNG chunk(s) (or past the end of"
            " their compressed data); decoders do not read them"
        )
    removed.append(data[chunks[-1].end :])
    return Cleaned(
        tuple(parts),
        lossless=True,
        notes=tuple(dict.fromkeys(notes)),
        opaque=tuple(opaque),
        secrets=residue.without(residue.strings(*removed), *kept),
    )


def clean(data: bytes) -> Cleaned:
    """Lossless rewrite: allowlisted chunks rebuilt at their defined sizes (and Orientation)."""
    chunks, _ = parse(data)
    return _rebuilt(data, chunks)


def strict(data: bytes, opaque: tuple[tuple[int, int], ...] = ()) -> None:
    """Raise :class:`DamagedFile` unless every kept chunk is exactly what a decoder reads."""
    chunks, end = parse(data)
    colour, palette = data[chunks[0].start + 17], 0
    used = _streams(data, chunks)
    for c in chunks:
        body = c.body(data)
        if zlib.crc32(data[c.start + 4 : c.end - 4]) != int.from_bytes(
            data[c.end - 4 : c.end], "big"
        ):
            raise DamagedFile(f"chunk {c.kind!r} has a wrong CRC")
        if c.kind == b"iCCP":
            if icc.rebuild(_iccp(body)) != _iccp(body) or not body.startswith(_ICC_NAME + b"\x00"):
                raise DamagedFile("its iCCP profile is not in rebuilt form")
        elif c.kind in (b"IDAT", b"fdAT"):
            if used[c.start] + (4 if c.kind == b"fdAT" else 0) != len(body):
                raise DamagedFile("its compressed image data has bytes after the stream's end")
        elif c.kind in _KEEP:
            n = _sized(c.kind, body, colour, palette)
            if n != len(body):
                raise DamagedFile(f"chunk {c.kind!r} is not at its defined size")
            palette = n // 3 if c.kind == b"PLTE" else palette
    if end != len(data):
        raise DamagedFile("data after the end of the image")
