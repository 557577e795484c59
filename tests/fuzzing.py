"""A seeded mutation fuzzer for the scrubber, shared by tests/unit/test_fuzz.py and bench/fuzz.py.

Each mutant of a real corpus file goes through ``clean`` and ``verify`` as the
CLI runs them. A mutant passes when it is refused with skinvault's own error,
or written within :data:`SLOW` seconds with no metadata string of its seed
(taken from exiftool, an independent reader) outside the coded image data.

    >>> rng = random.Random(1)
    >>> len(mutate(rng, b"\\xff\\xd8" + bytes(100))) > 0
    True
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from skinvault.errors import PhotoError
from skinvault.photos import icc
from skinvault.photos.findings import Cleaned
from skinvault.photos.ifd import TiffReader
from skinvault.photos.residue import leftover
from skinvault.photos.scrub import clean, inspect, verify
from skinvault.photos.sniff import ImageFormat

SLOW = 1.0
#: exiftool groups whose values are file facts or decoding structure, not metadata.
_STRUCTURE_GROUPS = {"ExifTool", "System", "File", "Composite", "JFIF", "PNG", "RIFF"}
_WORDLIKE = re.compile(r"[A-Za-z].*[A-Za-z]")


def seed_strings(paths: Iterable[Path]) -> dict[Path, set[bytes]]:
    """Per seed, the metadata values exiftool reads (text of 8+ characters)."""
    paths = list(paths)
    if not paths or shutil.which("exiftool") is None:
        return {p: set() for p in paths}
    result = subprocess.run(
        ["exiftool", "-j", "-G1", "-a", "-q", "-q", *map(str, paths)],
        capture_output=True,
        check=False,
    )
    out: dict[Path, set[bytes]] = {p: set() for p in paths}
    for record in json.loads(result.stdout or b"[]"):
        path = Path(record.pop("SourceFile"))
        for key, value in record.items():
            if key.split(":", 1)[0] in _STRUCTURE_GROUPS or not isinstance(value, str):
                continue
            if len(value) >= 8 and _WORDLIKE.search(value) and not value.startswith("(Binary"):
                out.setdefault(path, set()).add(value.encode("utf-8"))
    return out


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to six random edits; some copy a slice of the file (often metadata) elsewhere."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not buf:
            break
        pos = rng.randrange(len(buf))
        action = rng.choice(("flip", "flip", "cut", "insert", "ff", "zero", "copy", "grow"))
        if action == "flip":
            buf[pos] = rng.randrange(256)
        elif action == "cut":
            del buf[pos : pos + rng.randint(1, 64)]
        elif action == "insert":
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif action in ("ff", "zero"):
            buf[pos : pos + 8] = (b"\xff" if action == "ff" else b"\x00") * 8
        elif action == "copy":
            start = rng.randrange(len(buf))
            piece = bytes(buf[start : start + rng.randint(8, 512)])
            buf[pos:pos] = piece
        else:  # grow a 16- or 32-bit length field so a block swallows what follows
            width = rng.choice((2, 4))
            if pos + width <= len(buf):
                order: Literal["big", "little"] = rng.choice(("big", "little"))
                value = int.from_bytes(buf[pos : pos + width], order) + rng.randint(1, 600)
                if value < 1 << (8 * width):
                    buf[pos : pos + width] = value.to_bytes(width, order)
    return bytes(buf)


def _colour_ranges(out: bytes) -> list[tuple[int, int]]:
    """The colour tags of an ICC profile in ``out``: kept byte for byte by design."""
    at = out.find(b"acsp")
    if at < 36:
        return []
    start = at - 36
    size = int.from_bytes(out[start : start + 4], "big")
    try:
        found = icc.tags(out[start : start + size])
    except icc.NotAProfile:
        return []
    return [(start + o, n) for sig, o, n in found if sig not in (b"desc", b"cprt")]


#: TIFF colour tables (ColorMap, TransferFunction): a mutant's copied bytes there are palette.
_TIFF_COLOUR_TABLES = (320, 301)


def _coded_ranges(fmt: ImageFormat, out: bytes) -> list[tuple[int, int]]:
    """Coded data and colour data the scrubber keeps byte for byte by design.

    WebP image chunks (they record no length of their own), ICC colour tags
    and TIFF colour tables: bytes a mutation copied there are read as pixels
    or colours, which a lossless scrubber keeps.
    """
    if fmt is ImageFormat.TIFF:
        reader = TiffReader(out)
        entries = reader.read_ifd(reader.first_ifd_offset).entries
        tables = [entries[t] for t in _TIFF_COLOUR_TABLES if t in entries]
        return [*_colour_ranges(out), *((e.value_offset, len(e.value)) for e in tables)]
    if fmt is not ImageFormat.WEBP:
        return _colour_ranges(out)
    ranges, pos = _colour_ranges(out), 12
    while pos + 8 <= len(out):
        (size,) = struct.unpack("<I", out[pos + 4 : pos + 8])
        if out[pos : pos + 4] in (b"VP8 ", b"VP8L", b"ALPH"):
            ranges.append((pos + 8, size))
        if out[pos : pos + 4] == b"ANMF":
            pos += 8 + 16
            continue
        pos += 8 + size + (size & 1)
    return ranges


@dataclass
class Tally:
    mutants: int = 0
    written: int = 0
    refused: int = 0
    slowest: float = 0.0
    failures: list[str] = field(default_factory=list)


def _scrub(data: bytes) -> tuple[Cleaned, ImageFormat]:
    cleaned, report = clean(data)
    verify(report.format, cleaned.data, cleaned.opaque, cleaned.secrets)
    return cleaned, report.format


def _cpu_seconds(data: bytes) -> float:
    """CPU time of this thread for one scrub (errors count too: a refusal can be slow)."""
    start = time.thread_time()
    with contextlib.suppress(Exception):  # only the time is wanted; check() reports errors
        _scrub(data)
    return time.thread_time() - start


def check(data: bytes, strings: set[bytes], tally: Tally, label: str) -> None:
    """Scrub one mutant as the CLI does; record a failure instead of raising.

    Time is this thread's CPU time, not the wall clock: a test runner that pauses
    the worker (another test on the same cores, a busy CI host) is not the
    scrubber's doing. A mutant over :data:`SLOW` is timed once more and the
    shorter time counts, so one stall of the host does not fail a file whose
    scrub is fast, while a file that is slow to scrub is slow both times.
    """
    tally.mutants += 1
    start = time.thread_time()
    try:
        cleaned, fmt = _scrub(data)
        out = cleaned.data
    except PhotoError as exc:
        tally.refused += 1
        if not str(exc) or "\n" in str(exc):
            tally.failures.append(f"{label}: unreadable error message {str(exc)!r}")
        return
    except Exception as exc:
        tally.failures.append(f"{label}: crash {type(exc).__name__}: {exc}")
        return
    finally:
        elapsed = time.thread_time() - start
        if elapsed > SLOW:
            elapsed = min(elapsed, _cpu_seconds(data))
        tally.slowest = max(tally.slowest, elapsed)
        if elapsed > SLOW:
            tally.failures.append(f"{label}: took {elapsed:.2f} s")
    tally.written += 1
    coded = [*cleaned.opaque, *_coded_ranges(fmt, out)]
    leaked = leftover(out, strings, coded)
    if leaked is not None:
        tally.failures.append(f"{label}: wrote {leaked!r} of the seed's metadata")
    try:
        residue = inspect(out).findings
    except PhotoError as exc:
        tally.failures.append(f"{label}: its own output does not re-read ({exc})")
        return
    if residue:
        tally.failures.append(f"{label}: output still reveals {residue[0].description}")


def run(seeds: list[Path], *, seconds: float, seed: int, limit: int | None = None) -> Tally:
    """Mutate ``seeds`` round-robin for ``seconds`` (or ``limit`` mutants), deterministically."""
    rng = random.Random(seed)
    strings = seed_strings(seeds)
    originals = [(p, p.read_bytes()) for p in seeds]
    tally = Tally()
    deadline = time.monotonic() + seconds
    n = 0
    while originals and time.monotonic() < deadline and (limit is None or n < limit):
        path, data = originals[n % len(originals)]
        check(mutate(rng, data), strings.get(path, set()), tally, f"{path.name} mutant {n}")
        n += 1
    return tally
