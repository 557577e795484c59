"""inspect() and scrub(): dispatch by the format sniffed from the bytes.

    >>> report = inspect(photo_bytes)            # doctest: +SKIP
    >>> cleaned, report = scrub(photo_bytes)     # doctest: +SKIP

Each container module (``jpeg``, ``png``, ``webp``, ``heif``, ``tiff``) offers
``findings(data) -> list[Finding]`` and ``clean(data) -> Cleaned``. After
cleaning, the output is inspected again: a scrub that would leave anything
identifying behind raises instead of returning a half-cleaned copy.
"""

from __future__ import annotations

import importlib
import mmap
import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import TypeVar, Union

from skinvault.errors import DamagedFile, PhotoError, ScrubFailed
from skinvault.photos.findings import Category, Cleaned, Finding, dedupe
from skinvault.photos.limits import check_file_size
from skinvault.photos.residue import leftover
from skinvault.photos.sniff import ImageFormat, sniff


def _container(fmt: ImageFormat) -> ModuleType:
    # Imported on first use: a batch of JPEGs never pays for the HEIF code.
    return importlib.import_module(f"skinvault.photos.{fmt.value}")


# Low-level parse failures on hostile bytes are damage, reported as such.
_T = TypeVar("_T")
# Anything with bytes-like find/slicing: bytes, or an mmap of a written file.
Buffer = Union[bytes, "mmap.mmap"]
_PARSE_ERRORS = (struct.error, IndexError, ValueError, zlib.error, EOFError, OverflowError)


@dataclass(frozen=True)
class Report:
    """What a photo reveals and, after a scrub, how it was cleaned."""

    format: ImageFormat
    findings: tuple[Finding, ...]
    lossless: bool | None = None  # None for inspect-only reports
    notes: tuple[str, ...] = ()
    #: The cleaned copy's structure proves its pixels decode (Cleaned.decodable).
    decodable: bool = False

    def categories(self) -> set[Category]:
        return {f.category for f in self.findings}


def _guarded(fmt: ImageFormat, step: Callable[[], _T]) -> _T:
    try:
        return step()
    except PhotoError:
        raise
    except _PARSE_ERRORS as exc:
        raise DamagedFile(f"its {fmt.value.upper()} structure is damaged ({exc})") from exc


def inspect(data: bytes) -> Report:
    """Findings for ``data``; never modifies anything."""
    check_file_size(len(data))
    fmt = sniff(data)
    container = _container(fmt)
    found = _guarded(fmt, lambda: container.findings(data))
    return Report(fmt, tuple(dedupe(found)))


def clean(data: bytes) -> tuple[Cleaned, Report]:
    """Clean ``data`` without checking the result; callers must :func:`verify` it."""
    check_file_size(len(data))
    fmt = sniff(data)
    container = _container(fmt)
    cleaned = _guarded(fmt, lambda: container.clean(data))
    removed = cleaned.removed
    if removed is None:
        removed = tuple(_guarded(fmt, lambda: container.findings(data)))
    found = tuple(dedupe(list(removed)))
    return cleaned, Report(fmt, found, cleaned.lossless, cleaned.notes, cleaned.decodable)


def verify(
    fmt: ImageFormat,
    output: Buffer,
    opaque: tuple[tuple[int, int], ...] = (),
    secrets: Iterable[bytes] = (),
) -> None:
    """Parse cleaned output afresh; raise :class:`ScrubFailed` if it reveals anything.

    ``output`` may be any buffer (bytes, or an mmap of the written file) for
    containers that read through ``find`` and slicing only. ``opaque`` is
    :attr:`Cleaned.opaque`: coded image data copied verbatim, not re-scanned.
    The output is re-parsed with the container's strict checks (every kept
    structure at its defined size), and must hold none of ``secrets``
    (:attr:`Cleaned.secrets`, the byte strings of the removed metadata)
    outside the opaque ranges.
    """
    container = _container(fmt)
    leaked = leftover(output, secrets, opaque)
    if leaked is not None:
        shown = leaked.decode("latin-1")[:40]
        raise ScrubFailed(
            f"cleaning left removed metadata (“{shown}”) in the output, so no output was written"
        )
    if not getattr(container, "ACCEPTS_BUFFERS", False) and not isinstance(output, bytes):
        output = bytes(output)
    strict = getattr(container, "strict", None)
    if strict is not None:
        try:
            _guarded(fmt, lambda: strict(output, opaque))
        except PhotoError as exc:
            raise ScrubFailed(
                f"the cleaned copy did not pass a strict re-read ({exc}), so no output was written"
            ) from exc
    if opaque and fmt is ImageFormat.JPEG:
        residue = _guarded(fmt, lambda: container.findings(output, opaque))
    else:
        residue = _guarded(fmt, lambda: container.findings(output))
    if residue:
        raise ScrubFailed(
            "cleaning left metadata behind ("
            + "; ".join(f.description for f in residue[:3])
            + "), so no output was written"
        )


def scrub(data: bytes) -> tuple[bytes, Report]:
    """Return the cleaned, verified bytes and a report of what was removed."""
    cleaned, report = clean(data)
    output = cleaned.data
    verify(report.format, output, cleaned.opaque, cleaned.secrets)
    return output, report
