"""Scrubbing photos on the local disk: collect inputs, name outputs, write atomically.

The CLI stays thin and calls these; the pure work is :mod:`skinvault.photos.scrub`.

    >>> results = [scrub_file(p, Destination.folder(Path("out"))) for p in collect([Path("in")])]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from skinvault.errors import PhotoError, SkinvaultError
from skinvault.photos.limits import check_file_size
from skinvault.photos.naming import EXTENSIONS, NameTemplate
from skinvault.photos.scrub import Report, inspect, scrub


@dataclass(frozen=True)
class FileResult:
    """The outcome for one input: a report and an output path, or an error message."""

    input: Path
    output: Path | None = None
    report: Report | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class InputError(SkinvaultError):
    """An input path that cannot be read as a file."""


def collect(paths: Iterable[Path]) -> Iterator[Path | InputError]:
    """Files named directly, and every non-hidden file under named folders, each once.

    A path that does not exist is yielded as an :class:`InputError` so the batch
    can name it and go on with the rest.
    """
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            found = [path]
        else:
            yield InputError(f"{path}: no such file or folder")
            continue
        for p in found:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                yield p


def read_photo(path: Path) -> bytes:
    """Read a file, refusing oversized ones before loading them."""
    try:
        check_file_size(path.stat().st_size)
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}") from exc


def inspect_file(path: Path) -> FileResult:
    try:
        return FileResult(path, report=inspect(read_photo(path)))
    except (PhotoError, InputError) as exc:
        return FileResult(path, error=str(exc))


@dataclass
class Destination:
    """Where scrubbed copies go: a folder with neutral names, or back in place."""

    out_dir: Path | None
    template: NameTemplate | None = None
    site: str = "photo"
    next_n: int = 1

    @classmethod
    def folder(cls, out_dir: Path, template: str = "photo-{n:03}", site: str = "photo") -> Destination:
        return cls(out_dir, NameTemplate.parse(template), site)

    @classmethod
    def in_place(cls) -> Destination:
        return cls(None)

    def claim_name(self, extension: str) -> Path:
        """The next free neutral name in the output folder."""
        assert self.out_dir is not None and self.template is not None
        while True:
            candidate = self.out_dir / self.template.render(self.next_n, self.site, extension)
            self.next_n += 1
            if not candidate.exists():
                return candidate


def write_atomic(target: Path, data: bytes, *, replace: bool, mode: int = 0o644) -> None:
    """Write via a temporary file in the same folder, fsync, then publish by rename.

    A crash leaves either no file or the complete one, never a partial file under
    ``target``. Without ``replace``, an existing ``target`` is never overwritten.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=".skinvault-", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if replace:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # fails if target appeared meanwhile: never clobber
            tmp.unlink()
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def scrub_file(path: Path, dest: Destination) -> FileResult:
    """Scrub one file into ``dest``; errors come back as a result, the input is untouched."""
    try:
        cleaned, report = scrub(read_photo(path))
        if dest.out_dir is None:
            target = path
            write_atomic(path, cleaned, replace=True, mode=path.stat().st_mode & 0o777)
        else:
            dest.out_dir.mkdir(parents=True, exist_ok=True)
            target = dest.claim_name(EXTENSIONS[report.format])
            write_atomic(target, cleaned, replace=False)
        return FileResult(path, target, report)
    except (PhotoError, InputError) as exc:
        return FileResult(path, error=str(exc))
    except OSError as exc:
        return FileResult(path, error=f"could not write the cleaned copy: {exc.strerror or exc}")
