"""WebP: RIFF chunk-level, lossless scrubbing.

Kept (an allowlist): VP8X (with its EXIF and XMP flags cleared), ICCP, ANIM,
ANMF, ALPH, VP8 and VP8L. Dropped: EXIF, XMP and any unknown chunk, and data
after the RIFF payload. The RIFF size is recomputed. When the EXIF Orientation
is not 1, a minimal EXIF holding only Orientation is kept so the photo still
displays upright.

    >>> clean(open("photo.webp", "rb").read()).lossless     # doctest: +SKIP
    True
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from skinvault.errors import DamagedFile
from skinvault.photos import exif, icc, residue, xmp
from skinvault.photos.findings import Category, Cleaned, Finding
from skinvault.photos.limits import check_pixels, open_image

_KEEP = {b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L"}
_FLAG_EXIF, _FLAG_XMP = 0x08, 0x04


@dataclass(frozen=True)
class Chunk:
    fourcc: bytes
    start: int  # offset of the FourCC
    end: int  # offset past the payload and its padding byte

    def payload(self, data: bytes) -> bytes:
        (size,) = struct.unpack("<I", data[self.start + 4 : self.start + 8])
        return data[self.start + 8 : self.start + 8 + size]


def parse(data: bytes) -> tuple[list[Chunk], int]:
    """The chunks and the offset where the RIFF payload ends."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise DamagedFile("not a WebP: bad RIFF header")
    (riff_size,) = struct.unpack("<I", data[4:8])
    riff_end = 8 + riff_size
    if riff_end > len(data):
        raise DamagedFile(f"truncated: the WebP claims {riff_size} bytes but has fewer")
    chunks: list[Chunk] = []
    pos = 12
    while pos + 8 <= riff_end:
        fourcc = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = pos + 8 + size + (size & 1)
        if pos + 8 + size > riff_end:
            raise DamagedFile(
                f"damaged: chunk {fourcc!r} at byte {pos} claims {size} bytes, past the end"
            )
        chunks.append(Chunk(fourcc, pos, min(end, riff_end)))
        pos = end
    if not any(c.fourcc in (b"VP8 ", b"VP8L", b"ANMF") for c in chunks):
        raise DamagedFile("damaged: the WebP holds no image data")
    _check_size(data, chunks)
    return chunks, riff_end


def _check_size(data: bytes, chunks: list[Chunk]) -> None:
    first = chunks[0]
    body = first.payload(data)
    if first.fourcc == b"VP8X" and len(body) >= 10:
        w = int.from_bytes(body[4:7], "little") + 1
        h = int.from_bytes(body[7:10], "little") + 1
        check_pixels(w, h)
    elif first.fourcc == b"VP8L" and len(body) >= 5:
        bits = int.from_bytes(body[1:5], "little")
        check_pixels((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    elif first.fourcc == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        # a key frame (RFC 6386 9.1): 14-bit width and height after the start code
        w = int.from_bytes(body[6:8], "little") & 0x3FFF
        h = int.from_bytes(body[8:10], "little") & 0x3FFF
        check_pixels(w, h)


def findings(data: bytes) -> list[Finding]:
    chunks, riff_end = parse(data)
    out: list[Finding] = []
    for c in chunks:
        body = c.payload(data)
        if c.fourcc == b"EXIF":
            block = body[6:] if body.startswith(b"Exif\x00\x00") else body
            if block != exif.minimal_exif(exif.orientation(block)):
                out.extend(exif.findings(block, "EXIF"))
        elif c.fourcc == b"XMP ":
            out.extend(xmp.findings(body, "XMP"))
        elif c.fourcc not in _KEEP:
            name = c.fourcc.decode("latin-1").strip()
            out.append(
                Finding(
                    Category.OTHER,
                    f"{name} chunk",
                    name,
                    f"An extra “{name}” chunk ({len(body):,} bytes) written by a camera or app",
                )
            )
    if riff_end < len(data):
        out.append(
            Finding(
                Category.TRAILER,
                "Trailing data",
                "after the image",
                f"{len(data) - riff_end:,} bytes of extra data hidden after the end of the image",
            )
        )
    return out


def _chunk(fourcc: bytes, payload: bytes | memoryview) -> bytes:
    pad = b"\x00" if len(payload) & 1 else b""
    return fourcc + struct.pack("<I", len(payload)) + bytes(payload) + pad


_FLAG_ICC, _FLAG_ALPHA, _FLAG_ANIM = 0x20, 0x10, 0x02
_IMAGE = (b"VP8 ", b"VP8L")
_FRAME_PARTS = (b"ALPH", b"VP8 ", b"VP8L")


def _inner(data: bytes, start: int, end: int) -> list[Chunk]:
    """Chunks nested in an ANMF frame payload."""
    out, pos = [], start
    while pos + 8 <= end:
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if pos + 8 + size > end:
            raise DamagedFile("damaged: a chunk inside an animation frame runs past the frame")
        out.append(Chunk(data[pos : pos + 4], pos, min(pos + 8 + size + (size & 1), end)))
        pos += 8 + size + (size & 1)
    return out


def _frame(data: bytes, c: Chunk, removed: list[bytes], notes: list[str]) -> bytes | None:
    """An ANMF frame rebuilt: its 16-byte header and only its ALPH/VP8/VP8L chunks."""
    body = c.payload(data)
    if len(body) < 16:
        return None
    parts = []
    for inner in _inner(data, c.start + 8 + 16, c.start + 8 + len(body)):
        if inner.fourcc in _FRAME_PARTS:
            parts.append(_image_chunk(inner.fourcc, inner.payload(data), removed, notes))
        else:
            removed.append(inner.payload(data))
    if not any(p[:4] in _IMAGE for p in parts):
        return None
    return _chunk(b"ANMF", body[:16] + b"".join(parts))


_TEXT_LIKE = re.compile(rb"[\x20-\x7e]{8,}|(?:[\x20-\x7e]\x00){8,}")


def _decoded(fourcc: bytes, payload: bytes) -> bytes | None:

    riff = b"WEBP" + _chunk(fourcc, payload)
    try:
        with open_image(b"RIFF" + struct.pack("<I", len(riff)) + riff) as im:
            return im.tobytes()
    except Exception:
        return None


def coded_length(fourcc: bytes, payload: bytes) -> int:
    """How many bytes of a VP8/VP8L chunk a decoder needs, when text follows the coded data.

    Neither bitstream records its own length, so when the payload holds a run
    of text the shortest prefix that decodes to the same pixels is searched
    for (libwebp through Pillow); otherwise the whole payload is taken.
    """
    if _TEXT_LIKE.search(payload) is None:
        return len(payload)
    full = _decoded(fourcc, payload)
    if full is None:
        return len(payload)
    lo, hi = 1, len(payload)
    while lo < hi:
        mid = (lo + hi) // 2
        if _decoded(fourcc, payload[:mid]) == full:
            hi = mid
        else:
            lo = mid + 1
    return hi


def _image_chunk(fourcc: bytes, body: bytes, removed: list[bytes], notes: list[str]) -> bytes:
    if fourcc in _IMAGE:
        n = coded_length(fourcc, body)
        if n < len(body):
            removed.append(body[n:])
            notes.append(f"dropped {len(body) - n:,} bytes after the end of the coded image data")
            body = body[:n]
    return _chunk(fourcc, body)


def _vp8x(flags: int, canvas: bytes) -> bytes:
    return _chunk(b"VP8X", bytes([flags]) + bytes(3) + canvas)


def clean(data: bytes) -> Cleaned:
    """Rewrite from parsed fields: VP8X, ICCP, ANIM, frames, image in the order the spec sets."""
    chunks, riff_end = parse(data)
    orient = 1
    removed: list[bytes] = [data[riff_end:]]
    kept: list[bytes] = []
    notes: list[str] = []
    for c in chunks:
        if c.fourcc == b"EXIF":
            body = c.payload(data)
            orient = exif.orientation(body[6:] if body.startswith(b"Exif\x00\x00") else body)
    vp8x = next((c for c in chunks if c.fourcc == b"VP8X"), None)
    header = vp8x.payload(data) if vp8x is not None else b""
    icc_part = b""
    frames: list[bytes] = []
    image: list[bytes] = []
    anim = b""
    for c in chunks:
        body = c.payload(data)
        if c.fourcc == b"ICCP":
            try:
                rebuilt = icc.rebuild(body)
            except icc.NotAProfile as exc:
                removed.append(body)
                notes.append(f"dropped the ICC colour slot (ICCP): {exc}, not a valid ICC profile")
                continue
            removed.extend(icc.texts(body))
            kept.extend((*icc.colour_tags(body).values(), icc.NEUTRAL_TEXT.encode()))
            icc_part = icc_part or _chunk(b"ICCP", rebuilt)
        elif c.fourcc == b"ANIM" and len(body) >= 6:
            anim = _chunk(b"ANIM", body[:6])
        elif c.fourcc == b"ANMF":
            frame = _frame(data, c, removed, notes)
            if frame is None:
                notes.append("dropped an animation frame without image data")
            else:
                frames.append(frame)
        elif c.fourcc in (b"ALPH", *_IMAGE):
            if not any(p[:4] in _IMAGE for p in image):  # the first image only
                image.append(_image_chunk(c.fourcc, body, removed, notes))
        elif c.fourcc != b"VP8X":
            removed.append(body)
    if not frames and not any(p[:4] in _IMAGE for p in image):
        raise DamagedFile("damaged: the WebP holds no image data")
    parts: list[bytes] = []
    if len(header) >= 10:
        flags = header[0] & _FLAG_ALPHA
        flags |= _FLAG_ICC if icc_part else 0
        flags |= _FLAG_EXIF if orient != 1 else 0
        if frames:
            flags |= _FLAG_ANIM
            image = []
            anim = anim or _chunk(b"ANIM", bytes(6))
        else:
            anim = b""
        parts = [_vp8x(flags, header[4:10]), icc_part, anim, *frames, *image]
        if orient != 1:
            # EXIF belongs after the image data in an extended WebP.
            parts.append(_chunk(b"EXIF", exif.minimal_exif(orient)))
            notes.append("kept only the EXIF Orientation so the photo still displays upright")
    else:
        simple = [p for p in image if p[:4] in _IMAGE]
        if icc_part or frames or len(simple) != len(image):
            notes.append("kept only the still image: without a VP8X header the rest is not read")
        parts = simple[:1]
    payload = b"".join(parts)
    out = b"RIFF" + struct.pack("<I", 4 + len(payload)) + b"WEBP" + payload
    return Cleaned.of(
        out,
        lossless=True,
        notes=tuple(notes),
        secrets=residue.without(residue.strings(*removed), *kept),
    )


def strict(data: bytes, opaque: tuple[tuple[int, int], ...] = ()) -> None:
    """Raise :class:`DamagedFile` unless the file is in the rebuilt, spec order form."""
    chunks, riff_end = parse(data)
    if riff_end != len(data):
        raise DamagedFile("data after the RIFF payload")
    kinds = [c.fourcc for c in chunks]
    if b"VP8X" in kinds[1:] or (kinds[0] != b"VP8X" and len(kinds) != 1):
        raise DamagedFile("its chunks are not in the order the WebP specification sets")
    for c in chunks:
        body = c.payload(data)
        if c.fourcc == b"VP8X" and len(body) != 10:
            raise DamagedFile("its VP8X header is not 10 bytes")
        if c.fourcc == b"ANIM" and len(body) != 6:
            raise DamagedFile("its ANIM header is not 6 bytes")
        if c.fourcc == b"ICCP" and icc.rebuild(body) != body:
            raise DamagedFile("its ICC profile is not in rebuilt form")
        if c.fourcc == b"ANMF":
            for inner in _inner(data, c.start + 8 + 16, c.start + 8 + len(body)):
                if inner.fourcc not in _FRAME_PARTS:
                    raise DamagedFile("an animation frame holds an unknown chunk")
