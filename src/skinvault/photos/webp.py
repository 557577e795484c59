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

import struct
from dataclasses import dataclass

from skinvault.errors import DamagedFile
from skinvault.photos import exif, xmp
from skinvault.photos.findings import Category, Cleaned, Finding
from skinvault.photos.limits import check_pixels

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


def _chunk(fourcc: bytes, payload: bytes) -> bytes:
    pad = b"\x00" if len(payload) & 1 else b""
    return fourcc + struct.pack("<I", len(payload)) + payload + pad


def clean(data: bytes) -> Cleaned:
    """Rewrite keeping the allowlisted chunks, with VP8X flags and RIFF size fixed."""
    chunks, _ = parse(data)
    orient = 1
    for c in chunks:
        if c.fourcc == b"EXIF":
            body = c.payload(data)
            orient = exif.orientation(body[6:] if body.startswith(b"Exif\x00\x00") else body)
    view = memoryview(data)
    parts: list[bytes | memoryview] = []
    for c in chunks:
        if c.fourcc == b"VP8X":
            header = bytearray(c.payload(data))
            header[0] &= ~(_FLAG_EXIF | _FLAG_XMP) & 0xFF
            if orient != 1:
                header[0] |= _FLAG_EXIF
            parts.append(_chunk(b"VP8X", bytes(header)))
        elif c.fourcc in _KEEP:
            parts.append(view[c.start : c.end])
    notes: tuple[str, ...] = ()
    if orient != 1 and chunks[0].fourcc == b"VP8X":
        # EXIF belongs after the image data in an extended WebP.
        parts.append(_chunk(b"EXIF", exif.minimal_exif(orient)))
        notes = ("kept only the EXIF Orientation so the photo still displays upright",)
    payload = b"".join(parts)
    out = b"RIFF" + struct.pack("<I", 4 + len(payload)) + b"WEBP" + payload
    return Cleaned.of(out, lossless=True, notes=notes)
