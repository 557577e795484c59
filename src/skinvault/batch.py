"""Scrubbing photos on the local disk: collect inputs, name outputs, write atomically.

The CLI stays thin and calls these; the pure work is :mod:`skinvault.photos.scrub`.

    >>> dest = Destination.folder(Path("out"))                # doctest: +SKIP
    >>> results = scrub_files(list(collect([Path("in")])), dest)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import mmap
import multiprocessing as mp
import os
import signal
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from skinvault.errors import PhotoError, SkinvaultError
from skinvault.photos.findings import Cleaned
from skinvault.photos.limits import check_file_size
from skinvault.photos.naming import EXTENSIONS, NameTemplate
from skinvault.photos.scrub import Report, clean, inspect, verify
from skinvault.photos.sniff import ImageFormat

if TYPE_CHECKING:  # imported lazily: a plain scrub never loads Pillow or a detector
    from skinvault.photos.clues import Clue
    from skinvault.photos.redact import Decoded

#: ``--redact`` names and the clue kinds they cover.
REDACT_KINDS = {"faces": "face", "text": "text"}


@dataclass(frozen=True)
class Covered:
    """One area covered by ``scrub --redact``: what was found, and what was covered."""

    kind: str
    box: tuple[int, int, int, int]
    covered: tuple[int, int, int, int]
    score: float


@dataclass(frozen=True)
class Edit:
    """Pixel changes asked of ``scrub``: redact clue kinds, crop, or both."""

    kinds: frozenset[str] = frozenset()  # clue kinds: "face", "text"
    crop: tuple[int, int, int, int] | None = None
    mode: str = "fill"


@dataclass(frozen=True)
class FileResult:
    """The outcome for one input: a report and an output path, or an error message."""

    input: Path
    output: Path | None = None
    report: Report | None = None
    error: str | None = None
    #: Areas covered by ``--redact``/``--crop``; None when the pixels were not edited.
    redacted: tuple[Covered, ...] | None = None

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
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
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
    def folder(
        cls, out_dir: Path, template: str = "photo-{n:03}", site: str = "photo"
    ) -> Destination:
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


_TEMP_PREFIX = ".skinvault-"


def _temp_file(folder: Path) -> tuple[int, Path]:
    # The writer's PID in the name lets a later run tell a stranded file from
    # one that another running batch is still writing.
    fd, name = tempfile.mkstemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-", suffix=".tmp", dir=folder)
    return fd, Path(name)


def sweep_stale_temp_files(folder: Path) -> list[Path]:
    """Remove temporary files left in ``folder`` by a skinvault process that was killed."""
    removed = []
    for tmp in folder.glob(f"{_TEMP_PREFIX}*.tmp"):
        pid = tmp.name[len(_TEMP_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed worker nobody has reaped yet is a zombie: dead, though kill() works.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in {"Z", "X"}


_IOV_MAX = 512


def _write(fd: int, parts: tuple[bytes | memoryview, ...], *, durable: bool) -> None:
    """Write all parts with writev (no joining of megabytes), resuming partial writes."""
    pending = [memoryview(p) for p in parts if len(p)]
    while pending:
        written = os.writev(fd, pending[:_IOV_MAX])
        while pending and written >= len(pending[0]):
            written -= len(pending.pop(0))
        if written:
            pending[0] = pending[0][written:]
    if durable:
        os.fsync(fd)


def _verify_written(fd: int, fmt: ImageFormat, cleaned: Cleaned) -> None:
    """Check the bytes as written, through the page cache, before publishing them."""
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as written:
        verify(fmt, written, cleaned.opaque, cleaned.secrets)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(tmp: Path | None) -> None:
    if tmp is not None:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


Staged = tuple[Path, Path | None, Report | None, str | None, tuple[Covered, ...] | None]


def _find_clues(decoded: Decoded, kinds: frozenset[str]) -> list[Clue]:
    if not kinds:
        return []
    from skinvault.photos.clues import find_clues  # noqa: PLC0415 - loads the detectors

    try:
        return find_clues(decoded.image, faces="face" in kinds, text="text" in kinds)
    except PhotoError:
        raise
    except Exception as exc:
        # A detector failure must fail this file, not pass it as "nothing found"
        # (a face would go out) nor end the whole batch.
        raise PhotoError(f"looking for faces and text failed ({exc!r}); nothing written") from exc


def _edited(data: bytes, edit: Edit) -> tuple[Cleaned, Report, tuple[Covered, ...]]:
    """Redact and/or crop ``data``: a re-encoded, metadata-free copy and its report."""
    from skinvault.photos import redact  # noqa: PLC0415 - Pillow only when pixels change

    found = inspect(data).findings  # what the input revealed, as for a plain scrub
    decoded = redact.decode(data)
    clues = _find_clues(decoded, edit.kinds)
    # Boxes wholly outside the image are skipped by redact; the rest keep their order.
    inside = [c for c in clues if redact.padded(c.box, decoded.size) is not None]
    result = redact.redact_decoded(decoded, [c.box for c in inside], mode=edit.mode, crop=edit.crop)
    covered = [
        Covered(c.kind, c.box, area, c.score)
        for c, area in zip(inside, result.boxes_applied, strict=True)
    ]
    report = Report(result.format, found, lossless=False, notes=result.notes)
    return Cleaned.of(result.data, lossless=False, notes=result.notes), report, tuple(covered)


def _stage(path: Path, out_dir: Path | None, edit: Edit | None = None) -> Staged:
    """Scrub ``path`` into a complete temporary file beside its destination.

    For ``--in-place`` (``out_dir`` None) the temporary file is fsynced and
    renamed over the original here: a lost write would lose the photo. A new
    copy in ``out_dir`` is not fsynced (that would cost more than the scrub);
    a killed process still never leaves a partial file under a real name.
    """
    tmp: Path | None = None
    try:
        data = read_photo(path)
        covered = None
        if edit is None:
            cleaned, report = clean(data)
        else:
            cleaned, report, covered = _edited(data, edit)
        folder = path.parent if out_dir is None else out_dir
        fd, tmp = _temp_file(folder)
        try:
            _write(fd, cleaned.parts, durable=out_dir is None)
            _verify_written(fd, report.format, cleaned)
            if out_dir is None:
                os.fchmod(fd, path.stat().st_mode & 0o777)
        finally:
            os.close(fd)
        if out_dir is None:
            os.replace(tmp, path)
            _fsync_dir(folder)
            tmp = None
        return path, tmp, report, None, covered
    except (PhotoError, InputError) as exc:
        _discard(tmp)
        return path, None, None, str(exc), None
    except OSError as exc:
        _discard(tmp)
        return path, None, None, f"could not write the cleaned copy: {exc.strerror or exc}", None
    except BaseException:
        _discard(tmp)
        raise


def _publish(staged: Staged, dest: Destination) -> FileResult:
    """Give a staged file its neutral name; never overwrite an existing file."""
    path, tmp, report, error, covered = staged
    if report is None:
        return FileResult(path, error=error)
    if tmp is None:  # replaced in place already
        return FileResult(path, path, report, redacted=covered)
    try:
        while True:
            target = dest.claim_name(_extension(report, tmp))
            try:
                os.link(tmp, target)  # atomic and never clobbers, unlike rename
                break
            except FileExistsError:
                continue  # appeared meanwhile: take the next number
        os.chmod(target, 0o644)
        return FileResult(path, target, report, redacted=covered)
    except OSError as exc:
        return FileResult(path, error=f"could not write the cleaned copy: {exc.strerror or exc}")
    finally:
        _discard(tmp)


def _extension(report: Report, written: Path) -> str:
    """The file name extension for a cleaned copy; an AVIF stays ``.avif``."""
    if report.format is ImageFormat.HEIF:
        with written.open("rb") as f:
            if f.read(12)[8:12] in (b"avif", b"avis"):
                return ".avif"
    return EXTENSIONS[report.format]


def scrub_file(path: Path, dest: Destination, edit: Edit | None = None) -> FileResult:
    """Scrub one file into ``dest``; errors come back as a result, the input is untouched."""
    if dest.out_dir is not None:
        dest.out_dir.mkdir(parents=True, exist_ok=True)
    return _publish(_stage(path, dest.out_dir, edit), dest)


def _libc() -> ctypes.CDLL:
    # The interpreter already links the C library: its symbols are reachable without
    # ctypes.util.find_library, which imports subprocess and runs ldconfig on each call
    # (in the parent and again in every pool worker; measured with bench/scrub.py).
    return ctypes.CDLL(None)


def _reuse_big_buffers() -> None:
    """Let glibc recycle multi-megabyte buffers instead of mapping fresh pages.

    By default every photo-sized buffer is a new mmap that the kernel faults in
    page by page and unmaps on free; over a batch that page-fault work costs
    more than the scrubbing (measured with bench/scrub.py). Raising the mmap and
    trim thresholds keeps freed buffers in the heap for the next photo. No-op
    where glibc is absent.
    """
    try:
        mallopt = _libc().mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 * 1024 * 1024)  # glibc's ceiling for this setting
    mallopt(m_trim_threshold, 256 * 1024 * 1024)


def _die_with_parent() -> None:
    """Pool initializer: a worker must not outlive a killed batch (Linux prctl)."""
    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        _libc().prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def scrub_files(
    paths: list[Path],
    dest: Destination,
    on_done: Callable[[FileResult], None] | None = None,
    edit: Edit | None = None,
) -> list[FileResult]:
    """Scrub many files, on every core for big batches; results come in input order.

    Workers write complete temporary files; this process alone assigns the
    neutral names and publishes them, so numbering follows the input order.
    With ``edit``, each photo is also redacted and/or cropped (re-encoded).
    """
    created = _make_out_dir(dest)
    try:
        return _scrub_files(paths, dest, on_done, edit)
    finally:
        if created is not None and not any(created.iterdir()):
            created.rmdir()  # nothing written: leave no empty --out folder behind


def _make_out_dir(dest: Destination) -> Path | None:
    """Create the output folder if needed; return it when this call created it."""
    if dest.out_dir is None or dest.out_dir.is_dir():
        return None
    dest.out_dir.mkdir(parents=True, exist_ok=True)
    return dest.out_dir


def _scrub_files(
    paths: list[Path],
    dest: Destination,
    on_done: Callable[[FileResult], None] | None,
    edit: Edit | None,
) -> list[FileResult]:
    for folder in {dest.out_dir} if dest.out_dir else {p.parent for p in paths}:
        sweep_stale_temp_files(folder)
    _reuse_big_buffers()  # before forking: workers inherit it
    workers = min(os.cpu_count() or 1, 8)
    stage = functools.partial(_stage, out_dir=dest.out_dir, edit=edit)
    results: list[FileResult] = []
    if workers < 2 or len(paths) < 2 * workers or "fork" not in mp.get_all_start_methods():
        staged: Iterable[Staged] = map(stage, paths)
        pool = None
    else:
        # fork: workers inherit the imported code, so they pay no second start-up.
        pool = mp.get_context("fork").Pool(workers, initializer=_die_with_parent)
        staged = pool.imap(stage, paths, chunksize=4)
    try:
        for item in staged:
            results.append(_publish(item, dest))
            if on_done is not None:
                on_done(results[-1])
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return results


@dataclass(frozen=True)
class ClueResult:
    """What ``skinvault clues`` found in one input, or why it could not look."""

    input: Path
    clues: tuple[Clue, ...] = ()
    preview: Path | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _write_new(dest: Destination, data: bytes, extension: str) -> Path:
    """Write ``data`` under the next free neutral name in ``dest`` (never overwrites)."""
    assert dest.out_dir is not None
    fd, tmp = _temp_file(dest.out_dir)
    try:
        try:
            _write(fd, (data,), durable=False)
        finally:
            os.close(fd)
        while True:
            target = dest.claim_name(extension)
            try:
                os.link(tmp, target)
                break
            except FileExistsError:
                continue
        os.chmod(target, 0o644)
        return target
    finally:
        _discard(tmp)


def clues_of_file(path: Path, preview: Destination | None = None) -> ClueResult:
    """Faces and text found in one photo, and (with ``preview``) a copy with boxes drawn."""
    from skinvault.photos import redact  # noqa: PLC0415 - Pillow and detectors on demand

    try:
        decoded = redact.decode(read_photo(path))
        clues = tuple(_find_clues(decoded, frozenset(REDACT_KINDS.values())))
        shown = None
        if preview is not None:
            assert preview.out_dir is not None
            preview.out_dir.mkdir(parents=True, exist_ok=True)
            drawn = redact.outlined(decoded, [(c.kind, c.box) for c in clues])
            shown = _write_new(preview, drawn, EXTENSIONS[ImageFormat.JPEG])
        return ClueResult(path, clues, shown)
    except (PhotoError, InputError) as exc:
        return ClueResult(path, error=str(exc))
    except OSError as exc:
        return ClueResult(path, error=f"could not write the preview: {exc.strerror or exc}")
