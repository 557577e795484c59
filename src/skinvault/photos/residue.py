"""Byte strings of removed metadata, and the check that none is left in an output.

Cleaners collect the text they drop (names, serials, dates, maker notes, XMP)
with :func:`strings`; :func:`leftover` then looks for each one in the written
file, outside the ranges of coded image data that were copied verbatim.

    >>> sorted(strings(b"\\x00\\x01Jane Q Patientname\\x00ab\\x00"))
    [b'Jane Q Patientname']
    >>> leftover(b"xxJane Q Patientnamexx", {b"Jane Q Patientname"})
    b'Jane Q Patientname'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

#: Shortest run of printable bytes treated as a metadata string.
MIN_LENGTH = 6
_RUN = re.compile(rb"[\x20-\x7e]{%d,}" % MIN_LENGTH)
_UTF16 = re.compile(rb"(?:[\x20-\x7e]\x00){%d,}" % MIN_LENGTH)
#: Printable runs of the standard JPEG Huffman tables (ITU T.81 Annex K), which
#: every embedded preview repeats; they are structure, not metadata.
_STRUCTURE = (
    b"%&'()*456789:CDEFGHIJSTUVWXYZcdefghijstuvwxyz",
    b"&'()*56789:CDEFGHIJSTUVWXYZcdefghijstuvwxyz",
)
_STRUCTURE_BLOB = b"\x00".join(_STRUCTURE)
_MAX_STRINGS = 20_000


class _Findable(Protocol):
    def find(self, sub: bytes, start: int = ..., end: int = ...) -> int: ...

    def __len__(self) -> int: ...


_EMBEDDED_JPEG = re.compile(rb"\xff\xd8\xff.*?(?:\xff\xd9|\Z)", re.DOTALL)


def strings(*blobs: bytes | bytearray | memoryview) -> set[bytes]:
    """Printable runs (ASCII, and UTF-16LE as ASCII) of at least :data:`MIN_LENGTH` bytes.

    Embedded JPEG streams (previews, thumbnails) are skipped: their tables are
    structure that the kept image may share, not metadata.
    """
    out: set[bytes] = set()
    for blob in blobs:
        raw = _EMBEDDED_JPEG.sub(b"\x00", bytes(blob))
        for found in _RUN.findall(raw):
            run = found.strip()
            if len(run) >= MIN_LENGTH and _STRUCTURE_BLOB.find(run) < 0:
                out.add(run)
        # UTF-16 text is half zero bytes; a blob with few zeros (XMP, text) holds none worth
        # the slower pattern.
        if raw.count(b"\x00") * 8 >= len(raw):
            out.update(_UTF16.findall(raw))
        if len(out) > _MAX_STRINGS:
            break
    return out


def without(secrets: set[bytes], *kept: bytes) -> frozenset[bytes]:
    """``secrets`` minus those that occur in ``kept`` (colour data and tables written back)."""
    blob = b"\x00".join(kept)
    return frozenset(s for s in secrets if blob.find(s) < 0)


def _gaps(size: int, opaque: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for start, length in sorted(opaque):
        if start > pos:
            spans.append((pos, start))
        pos = max(pos, start + length)
    if pos < size:
        spans.append((pos, size))
    return spans


def leftover(
    output: _Findable, secrets: Iterable[bytes], opaque: Iterable[tuple[int, int]] = ()
) -> bytes | None:
    """The first removed string found in ``output`` outside ``opaque`` ranges, else None."""
    wanted = [s for s in secrets if len(s) >= MIN_LENGTH]
    if not wanted:
        return None
    for start, end in _gaps(len(output), opaque):
        for secret in wanted:
            # A match may straddle a gap's edge by at most len(secret) - 1 bytes.
            if output.find(secret, start, end) >= 0:
                return secret
    return None
