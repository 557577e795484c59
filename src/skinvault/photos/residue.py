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
from collections.abc import Iterable, Iterator
from typing import Protocol

#: Shortest run of printable bytes treated as a metadata string.
MIN_LENGTH = 6
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


# strings() finds its runs in a copy of the blob with every byte replaced by its class
# (P printable, Z zero, X other): a literal search there ("PPPPPP", "PZ" * 6) skips ahead
# in C, where the patterns [\x20-\x7e]{6,} and (?:[\x20-\x7e]\x00){6,} on the raw bytes
# tried a match at every offset of binary data (10-20 ns a byte; up to a millisecond per
# real photo). Mostly-text blobs still use the first pattern (see _ascii_runs).
# tests/unit/test_residue_strings.py checks the result against those patterns.
_CLASSES = bytes(
    0x50 if 0x20 <= b <= 0x7E else 0x5A if b == 0 else 0x58 for b in range(256)
)  # P, Z, X
_RUN = re.compile(rb"[\x20-\x7e]{%d,}" % MIN_LENGTH)
_ASCII_START = re.compile(b"P" * MIN_LENGTH)
_ASCII_REST = re.compile(rb"[^P]")
_UTF16_START = re.compile(b"PZ" * MIN_LENGTH)
_UTF16_REST = re.compile(rb"(?:PZ)*")
_JPEG_START = re.compile(rb"\xff\xd8\xff")
_JPEG_END = re.compile(rb"\xff\xd9")


def _without_embedded_jpegs(raw: bytes) -> bytes:
    """``raw`` with each embedded JPEG stream, from its SOI to the first EOI after it (or
    to the end), replaced by one zero byte: what the lazy pattern
    ``SOI .*? (?: EOI | end)`` substituted before."""
    found = _JPEG_START.search(raw)
    if found is None:
        return raw
    parts: list[bytes] = []
    pos = 0
    while found is not None:
        start = found.start()
        parts += (raw[pos:start], b"\x00")
        end = _JPEG_END.search(raw, start + 3)
        if end is None:
            return b"".join(parts)
        pos = end.end()
        found = _JPEG_START.search(raw, pos)
    parts.append(raw[pos:])
    return b"".join(parts)


def _ascii_runs(raw: bytes, classes: bytes) -> list[bytes]:
    """What ``_RUN.findall(raw)`` returns: maximal printable runs of MIN_LENGTH or more.

    In mostly-text blobs (XMP, comments) the pattern itself is the faster way: its
    matches are long and it returns them without a Python step each; in binary blobs
    (maker notes, EXIF) it tries a match at every printable byte, so they are searched
    in ``classes``.
    """
    if classes.count(b"P") * 4 >= len(raw) * 3:
        return _RUN.findall(raw)
    return list(_class_runs(raw, classes))


def _class_runs(raw: bytes, classes: bytes) -> Iterator[bytes]:
    pos = 0
    while (found := _ASCII_START.search(classes, pos)) is not None:
        start = found.start()  # leftmost, so a run's first byte: an earlier P would match
        end = _ASCII_REST.search(classes, start + MIN_LENGTH)
        pos = len(raw) if end is None else end.start()
        yield raw[start:pos]


def _utf16_runs(raw: bytes, classes: bytes) -> Iterator[bytes]:
    """What ``_UTF16.findall(raw)`` returns: runs of printable-then-zero pairs."""
    pos = 0
    while (found := _UTF16_START.search(classes, pos)) is not None:
        rest = _UTF16_REST.match(classes, found.end())
        assert rest is not None  # (?:PZ)* always matches
        pos = rest.end()
        yield raw[found.start() : pos]


def strings(*blobs: bytes | bytearray | memoryview) -> set[bytes]:
    """Printable runs (ASCII, and UTF-16LE as ASCII) of at least :data:`MIN_LENGTH` bytes.

    Embedded JPEG streams (previews, thumbnails) are skipped: their tables are
    structure that the kept image may share, not metadata.
    """
    out: set[bytes] = set()
    for blob in blobs:
        raw = _without_embedded_jpegs(bytes(blob))
        classes = raw.translate(_CLASSES)
        for found in _ascii_runs(raw, classes):
            run = found.strip()
            if len(run) >= MIN_LENGTH and _STRUCTURE_BLOB.find(run) < 0:
                out.add(run)
        # UTF-16 text is half zero bytes; a blob with few zeros (XMP, text) holds none worth
        # the search.
        if classes.count(b"Z") * 8 >= len(raw):
            out.update(_utf16_runs(raw, classes))
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
