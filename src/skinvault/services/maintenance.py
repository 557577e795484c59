"""Retention and the orphan sweep on a schedule, inside ``skinvault serve``.

    >>> schedule = MaintenanceSchedule(vault)    # doctest: +SKIP
    >>> schedule.start()                         # the web app does this at start-up
    >>> schedule.stop()

Two independent timers in one background thread: the sweep (blobs no photo lists, left
by a killed upload or a crash mid-delete; after their 15-minute grace) every
``sweep_seconds`` — on by default — and the retention rules every
``retention_run_seconds`` — off by default, because it shreds photos: an operator turns
it on once the retention periods are set to the clinic's legal ones.

With ``--workers N`` every worker has this thread, but a round runs in one of them at a
time: the others find the lock file taken and skip it. Across hosts both jobs are safe
to run twice (retention locks the rows it shreds, a swept blob is already gone).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator

from skinvault.actors import Actor
from skinvault.bootstrap import Vault
from skinvault.services.admin import sweep
from skinvault.services.drafts import remove_expired
from skinvault.services.periodic import PeriodicThread
from skinvault.services.retention import run_retention

log = logging.getLogger("skinvault.maintenance")
SCHEDULER = Actor.system("scheduler")
_TICK = 1.0  # how often the thread looks at its timers (also how fast it stops)


class MaintenanceSchedule:
    """A daemon thread running the sweep and retention when their interval has passed."""

    def __init__(
        self,
        vault: Vault,
        *,
        sweep_seconds: float | None = None,
        retention_seconds: float | None = None,
    ) -> None:
        settings = vault.settings
        self.vault = vault
        self.jobs: dict[str, tuple[float, Callable[[], str]]] = {}
        every_sweep = settings.sweep_seconds if sweep_seconds is None else sweep_seconds
        every_retention = (
            settings.retention_run_seconds if retention_seconds is None else retention_seconds
        )
        if every_sweep > 0:
            self.jobs["sweep"] = (float(every_sweep), self._sweep)
        if every_retention > 0:
            self.jobs["retention"] = (float(every_retention), self._retention)
        self.runs: dict[str, int] = dict.fromkeys(self.jobs, 0)
        self._last: dict[str, float] = {}
        self._thread = PeriodicThread("skinvault-maintenance", _TICK, self._round, log=log)

    def _sweep(self) -> str:
        drafts = remove_expired(self.vault)  # previews nobody saved (shredded with the row)
        report = sweep(self.vault, actor=SCHEDULER)
        return f"{len(report.removed)} orphaned blobs, {drafts} expired upload drafts removed"

    def _retention(self) -> str:
        report = run_retention(self.vault, actor=SCHEDULER)
        return f"{sum(a.done for a in report.actions)} retention actions done"

    @contextlib.contextmanager
    def _turn(self, name: str) -> Iterator[bool]:
        """Whether this process may run ``name`` now (no other worker of the host is)."""
        folder = self.vault.settings.data_dir / "run"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(folder / f"{name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the lock

    def run_due(self, now: float, last: dict[str, float]) -> None:
        for name, (every, job) in self.jobs.items():
            if now - last.get(name, now - every) < every:
                continue
            last[name] = now
            try:
                with self._turn(name) as mine:
                    if not mine:
                        continue
                    what = job()
                    self.runs[name] += 1
                    log.info("scheduled %s: %s", name, what)
            except Exception:  # a database down for a moment: the next round tries again
                log.exception("the scheduled %s failed", name)

    def _round(self) -> None:
        self.run_due(time.monotonic(), self._last)

    def start(self) -> None:
        if not self.jobs or self._thread.running:
            return
        # The first round waits one interval: a restart loop must not sweep in a loop.
        self._last = dict.fromkeys(self.jobs, time.monotonic())
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        self._thread.stop(timeout)


__all__ = ["SCHEDULER", "MaintenanceSchedule"]
