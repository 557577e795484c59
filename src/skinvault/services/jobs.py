"""The job queue: slow work out of the request, durable in the database.

    >>> with vault.sessions.begin() as session:                       # doctest: +SKIP
    ...     enqueue(session, vault, "thumbnail", {"photo_id": pid}, key=f"thumbnail:{pid}")
    >>> run_pending(vault)                       # tests and ``skinvault jobs run``: drain now
    1
    >>> workers = Workers(vault, threads=1); workers.start()          # ``serve`` does this
    >>> status(vault).counts                                          # doctest: +SKIP
    {'queued': 0, 'running': 0, 'done': 1, 'dead': 0, 'failed': 0}

A job is a row of ``jobs`` (kind, a payload of ids — never health information —,
state, attempts). It is enqueued *in the caller's transaction* (an upload and its
thumbnail job commit together, or neither does), so no job is lost between a commit
and a message broker, and a job is never run for a photo that does not exist.

Claiming: a worker takes the oldest due job in one short transaction — on PostgreSQL
``SELECT … FOR UPDATE SKIP LOCKED``, so two workers never take the same row; on
SQLite the single writer (``BEGIN IMMEDIATE``) serialises claims — and sets
``state=running`` with a fresh lease token and ``lease_until``. A worker killed
mid-job (SIGKILL, power loss) simply never finishes: once its lease has passed, the
job is due again and another worker takes it (the lost run counts as an attempt, so
a job that kills its worker every time ends up dead, not in a loop).

Exactly once in effect: a handler writes its result through
:meth:`JobContext.transaction`; that transaction also marks the job done, and only if
the lease is still the one this run claimed. A run that lost its lease (it was too
slow and another worker took the job over) rolls its writes back. Handlers are also
idempotent (a thumbnail job for a photo that has one does nothing), so a retry
after a crash between the work and the commit is harmless.

Failures: the job goes back to ``queued`` with ``run_after`` pushed out
(``job_retry_seconds``, doubling, at most an hour) and the error kept; after
``job_attempts`` tries it is ``dead`` with its last error, shown by ``skinvault jobs``,
the admin page and ``/metrics``, and ``skinvault jobs retry`` queues it again.
:class:`Permanent` errors (the photo was deleted) end the job at once as done;
:class:`Unworkable` ones (the photo's pixels do not decode: no try will ever succeed) end
it at once as ``failed``, with the reason kept, so an operator tells it from success.

The in-process default (:class:`Workers`, started by the web app's lifespan) and
``skinvault worker`` (the same loop in its own process, for hosts that separate web
and background work) use the same table, so they can run side by side.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, event, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skinvault.bootstrap import Vault
from skinvault.db.models import Job
from skinvault.errors import NotFound, SkinvaultError

log = logging.getLogger("skinvault.jobs")
MAX_BACKOFF = timedelta(hours=1)


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"  # failed every one of its tries
    FAILED = "failed"  # ended at its first failure: no retry can help (Unworkable)


class Permanent(SkinvaultError):
    """Raised by a handler when retrying cannot help (its photo is gone): the job ends."""


class Unworkable(Permanent):
    """Raised by a handler whose work can never be done (the photo's pixels do not
    decode): the job ends at once as ``failed``, with this reason, never retried. The
    handler records what a reader should learn (a failed derivative) before raising."""


class LeaseLost(SkinvaultError):
    """This run no longer holds the job (its lease passed and another worker took it)."""


@dataclass(frozen=True)
class JobContext:
    """What a handler gets: the vault, the job, and the fenced transaction to finish in."""

    vault: Vault
    job_id: str
    kind: str
    attempt: int
    lease: str
    finished: list[bool] = field(default_factory=lambda: [False])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A transaction that also marks the job done; it rolls back (raising
        :class:`LeaseLost`) if another worker has taken the job over meanwhile."""
        with self.vault.sessions.begin() as session:
            yield session
            _finish(session, self.vault, self.job_id, self.lease)
        self.finished[0] = True


Handler = Callable[[JobContext, dict[str, Any]], None]
_HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that runs jobs of ``kind`` (see :mod:`job_kinds`)."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[kind] = fn
        return fn

    return register


def handlers() -> dict[str, Handler]:
    # The kinds live with the services they call; imported on first use (they import
    # services that import this module).
    from skinvault.services import job_kinds  # noqa: F401, PLC0415

    return _HANDLERS


# -- enqueueing ------------------------------------------------------------------------

_wake = threading.Event()  # set when this process commits a new job: idle workers look now


def _wake_after_commit(session: Session) -> None:
    if not session.info.get("jobs_wake_hooked"):
        session.info["jobs_wake_hooked"] = True

        @event.listens_for(session, "after_commit", once=True)
        def _after(_: Session) -> None:
            session.info.pop("jobs_wake_hooked", None)
            _wake.set()


def enqueue(
    session: Session,
    vault: Vault,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    delay: float = 0,
) -> str:
    """Add a job in the caller's transaction; with ``key``, a second enqueue of the same
    key returns the first job's id instead of adding one. Returns the job id."""
    if key is not None:
        found = session.scalar(select(Job.id).where(Job.key == key))
        if found is not None:
            return found
    now = vault.clock.now()
    job = Job(
        id=vault.tokens.new_id(),
        kind=kind,
        key=key,
        payload_json=json.dumps(payload or {}, sort_keys=True),
        state=JobState.QUEUED.value,
        attempts=0,
        max_attempts=vault.settings.job_attempts,
        run_after=now + timedelta(seconds=delay),
        created_at=now,
    )
    # Two processes enqueueing one key at the same instant: the unique key refuses the
    # second at commit (only periodic kinds can race; an upload's keys name a new photo).
    session.add(job)
    _wake_after_commit(session)
    return job.id


def submit(
    vault: Vault, kind: str, payload: dict[str, Any] | None = None, *, key: str | None = None
) -> str:
    """:func:`enqueue` in a transaction of its own (a key enqueued meanwhile by another
    process returns that job)."""
    try:
        with vault.sessions.begin() as session:
            return enqueue(session, vault, kind, payload, key=key)
    except IntegrityError:
        if key is None:
            raise
        with vault.reading() as session:
            found = session.scalar(select(Job.id).where(Job.key == key))
        if found is None:
            raise
        return found


# -- claiming and running --------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: str
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    lease: str


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:80]


def _due(now: datetime) -> Any:
    return or_(
        and_(Job.state == JobState.QUEUED.value, Job.run_after <= now),
        and_(Job.state == JobState.RUNNING.value, Job.lease_until < now),  # its worker died
    )


def claim(vault: Vault, worker: str) -> Claimed | None:
    """Take the oldest due job (or none): one short transaction, never the same job as
    another worker holding a live lease."""
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        query = select(Job).where(_due(now)).order_by(Job.run_after).limit(1)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        while (job := session.scalars(query).first()) is not None:
            if job.state == JobState.QUEUED.value or job.attempts < job.max_attempts:
                break
            # The worker of its last allowed try died running it: give up, look further.
            job.state, job.finished_at = JobState.DEAD.value, now
            job.last_error = f"the worker running try {job.attempts} stopped ({job.leased_by})"
            job.lease = job.lease_until = None
            session.flush()
            log.error("job %s (%s) is dead: %s", job.id, job.kind, job.last_error)
        if job is None:
            return None
        if job.state == JobState.RUNNING.value:
            log.warning("job %s (%s): its worker %s stopped; taken over", job.id, job.kind,
                        job.leased_by)  # fmt: skip
        job.state = JobState.RUNNING.value
        job.attempts += 1
        job.lease = vault.tokens.new_id()
        job.leased_by = worker
        job.lease_until = now + timedelta(seconds=vault.settings.job_lease_seconds)
        return Claimed(job.id, job.kind, json.loads(job.payload_json), job.attempts,
                       job.max_attempts, job.lease)  # fmt: skip


def _finish(session: Session, vault: Vault, job_id: str, lease: str) -> None:
    done = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease == lease, Job.state == JobState.RUNNING.value)
        .values(
            state=JobState.DONE.value,
            finished_at=vault.clock.now(),
            lease=None,
            lease_until=None,
            last_error=None,
        )
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"job {job_id} was taken over by another worker")


def _failed(
    vault: Vault, job: Claimed, error: str, *, permanent: JobState | None = None
) -> JobState:
    now = vault.clock.now()
    if permanent is not None:
        state, run_after = permanent, now
    elif job.attempt >= job.max_attempts:
        state, run_after = JobState.DEAD, now
    else:
        wait = timedelta(seconds=vault.settings.job_retry_seconds * 2 ** (job.attempt - 1))
        state, run_after = JobState.QUEUED, now + min(wait, MAX_BACKOFF)
    with vault.sessions.begin() as session:
        session.execute(
            update(Job)
            .where(Job.id == job.id, Job.lease == job.lease)
            .values(
                state=state.value,
                run_after=run_after,
                lease=None,
                lease_until=None,
                last_error=error[:1000],
                finished_at=now if state is not JobState.QUEUED else None,
            )
        )
    return state


@dataclass(frozen=True)
class Outcome:
    job_id: str
    kind: str
    state: JobState
    error: str | None = None


def run_one(vault: Vault, worker: str | None = None) -> Outcome | None:
    """Claim one due job and run it; None when nothing is due."""
    job = claim(vault, worker or worker_name())
    if job is None:
        return None
    fn = handlers().get(job.kind)
    if fn is None:
        state = _failed(vault, job, f"no handler for job kind {job.kind!r}")
        return Outcome(job.id, job.kind, state, f"no handler for {job.kind!r}")
    ctx = JobContext(vault, job.id, job.kind, job.attempt, job.lease)
    try:
        fn(ctx, job.payload)
        if not ctx.finished[0]:
            with vault.sessions.begin() as session:
                _finish(session, vault, job.id, job.lease)
    except LeaseLost as exc:
        log.warning("%s", exc)
        return Outcome(job.id, job.kind, JobState.RUNNING, str(exc))
    except Unworkable as exc:  # never doable (pixels that do not decode): no retry burn
        _failed(vault, job, f"{type(exc).__name__}: {exc}", permanent=JobState.FAILED)
        log.warning("job %s (%s) failed, not to be retried: %s", job.id, job.kind, exc)
        return Outcome(job.id, job.kind, JobState.FAILED, str(exc))
    except (Permanent, NotFound) as exc:  # nothing to do any more (its photo was deleted)
        _failed(vault, job, f"{type(exc).__name__}: {exc}", permanent=JobState.DONE)
        return Outcome(job.id, job.kind, JobState.DONE, str(exc))
    except Exception as exc:  # any failure is kept on the job and retried
        error = f"{type(exc).__name__}: {exc}"
        state = _failed(vault, job, error)
        level = logging.ERROR if state is JobState.DEAD else logging.WARNING
        log.log(level, "job %s (%s) try %d failed (%s): %s", job.id, job.kind, job.attempt,
                state.value, error)  # fmt: skip
        return Outcome(job.id, job.kind, state, error)
    return Outcome(job.id, job.kind, JobState.DONE)


def run_pending(vault: Vault, *, limit: int | None = None) -> int:
    """Run due jobs in this thread until none is due (or ``limit`` ran); how many ran."""
    ran = 0
    while limit is None or ran < limit:
        if run_one(vault) is None:
            break
        ran += 1
    return ran


# -- workers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Periodic:
    """A kind enqueued once per ``every`` seconds across all workers (the key is the
    period's number, so several hosts enqueue it once)."""

    kind: str
    every: float


#: Workers started in this process: how many with job threads, how many without.
_started = {"with threads": 0, "without": 0}
_started_lock = threading.Lock()


def jobs_run_here() -> bool:
    """False when this process started its :class:`Workers` with no threads
    (``job_threads = 0``: a separate ``skinvault jobs work`` runs the jobs) and none with
    threads, so no job will run here; True otherwise — also where no Workers were started
    (the CLI, a script or test calling :func:`run_pending`). What a job could reuse in
    this process's memory (the upload's decoded pixels) is kept only while this is True."""
    with _started_lock:
        return bool(_started["with threads"]) or not _started["without"]


class Workers:
    """``threads`` daemon threads running jobs; with ``periodic``, one of them also
    enqueues the scheduled kinds when their period starts. Started with no threads it
    runs nothing, and says so (:func:`jobs_run_here`) until stopped."""

    def __init__(
        self,
        vault: Vault,
        *,
        threads: int | None = None,
        periodic: tuple[Periodic, ...] = (),
        poll: float | None = None,
    ) -> None:
        self.vault = vault
        self.threads = vault.settings.job_threads if threads is None else threads
        self.poll = vault.settings.job_poll_seconds if poll is None else poll
        self.periodic = periodic
        self._stop = threading.Event()
        self._running: list[threading.Thread] = []
        self._scheduled: dict[str, int] = {}
        self._declared: str | None = None  # the _started count this one is in, once started
        self.ran = 0

    def _schedule(self) -> None:
        """Enqueue each periodic kind once per period (a cheap no-op within a period)."""
        epoch = self.vault.clock.now().timestamp()
        for p in self.periodic:
            period = int(epoch // p.every) if p.every > 0 else -1
            if period >= 0 and self._scheduled.get(p.kind) != period:
                submit(self.vault, p.kind, key=f"{p.kind}@{period}")
                self._scheduled[p.kind] = period

    def _loop(self, first: bool) -> None:
        name = worker_name()
        while not self._stop.is_set():
            try:
                if first:
                    self._schedule()
                if run_one(self.vault, name) is not None:
                    self.ran += 1
                    continue
            except Exception:  # the database away for a moment: wait and try again
                log.exception("job worker round failed")
            _wake.wait(self.poll)
            _wake.clear()

    def _declare(self, which: str | None) -> None:
        with _started_lock:
            if self._declared is not None:
                _started[self._declared] -= 1
            if which is not None:
                _started[which] += 1
            self._declared = which

    def start(self) -> None:
        if self._running or self._declared is not None:
            return
        self._declare("with threads" if self.threads > 0 else "without")
        if self.threads <= 0:
            return
        self._stop.clear()
        for i in range(self.threads):
            thread = threading.Thread(
                target=self._loop, args=(i == 0,), name=f"skinvault-jobs-{i}", daemon=True
            )
            thread.start()
            self._running.append(thread)

    def stop(self, timeout: float = 30) -> None:
        """Stop after the jobs in hand (a job still running at ``timeout`` is taken over
        by another worker once its lease passes)."""
        threads, self._running = self._running, []
        self._stop.set()
        _wake.set()
        for thread in threads:
            thread.join(timeout)
        self._declare(None)


# -- status ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JobView:
    id: str
    kind: str
    state: str
    attempts: int
    max_attempts: int
    created_at: datetime
    run_after: datetime
    finished_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class QueueStatus:
    counts: dict[str, int]
    oldest_waiting_seconds: float
    dead: tuple[JobView, ...]
    #: The latest jobs that ended at their first failure (``failed``: not retried).
    failed: tuple[JobView, ...] = ()

    def line(self) -> str:
        c = self.counts
        text = (
            f"{c['queued']} waiting, {c['running']} running, {c['done']} done,"
            f" {c['dead']} failed for good"
        )
        if c.get("failed"):
            text += f", {c['failed']} could not be done (not retried)"
        if c["queued"]:
            text += f"; the oldest has waited {self.oldest_waiting_seconds:.0f} s"
        return text


def _view(job: Job) -> JobView:
    return JobView(job.id, job.kind, job.state, job.attempts, job.max_attempts,
                   job.created_at, job.run_after, job.finished_at, job.last_error)  # fmt: skip


def status(vault: Vault, *, dead_limit: int = 20) -> QueueStatus:
    """Counts per state, how long the oldest due job has waited, the latest dead and
    failed jobs (``dead_limit`` of each)."""
    now = vault.clock.now()
    with vault.reading() as session:
        counts = dict.fromkeys((s.value for s in JobState), 0)
        for state, n in session.execute(select(Job.state, func.count()).group_by(Job.state)):
            counts[state] = n
        oldest = session.scalar(
            select(func.min(Job.run_after)).where(
                Job.state == JobState.QUEUED.value, Job.run_after <= now
            )
        )
        latest = {
            state: tuple(
                _view(j)
                for j in session.scalars(
                    select(Job)
                    .where(Job.state == state.value)
                    .order_by(Job.finished_at.desc())
                    .limit(dead_limit)
                )
            )
            for state in (JobState.DEAD, JobState.FAILED)
        }
    waited = (now - oldest).total_seconds() if oldest is not None else 0.0
    dead, failed = latest[JobState.DEAD], latest[JobState.FAILED]
    return QueueStatus(counts, max(waited, 0.0), dead, failed)


def list_jobs(vault: Vault, *, state: str | None = None, limit: int = 50) -> list[JobView]:
    with vault.reading() as session:
        query = select(Job).order_by(Job.created_at.desc()).limit(limit)
        if state:
            query = query.where(Job.state == state)
        return [_view(j) for j in session.scalars(query)]


def job_state(vault: Vault, key: str) -> str | None:
    """The state of the job enqueued under ``key`` (e.g. ``thumbnail:<photo id>``)."""
    with vault.reading() as session:
        return session.scalar(select(Job.state).where(Job.key == key))


def retry(vault: Vault, job_id: str) -> JobView:
    """Queue a dead or failed job again with a fresh set of tries (a failed one after the
    cause was dealt with, e.g. a newer decoder)."""
    with vault.sessions.begin() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFound(f"there is no job {job_id}")
        if job.state not in (JobState.DEAD.value, JobState.FAILED.value):
            raise NotFound(f"job {job_id} is {job.state}, neither dead nor failed")
        job.state, job.attempts, job.finished_at = JobState.QUEUED.value, 0, None
        job.run_after = vault.clock.now()
        _wake_after_commit(session)
        return _view(job)


__all__ = [
    "JobContext",
    "JobState",
    "JobView",
    "LeaseLost",
    "Outcome",
    "Periodic",
    "Permanent",
    "QueueStatus",
    "Unworkable",
    "Workers",
    "claim",
    "enqueue",
    "handler",
    "job_state",
    "jobs_run_here",
    "list_jobs",
    "retry",
    "run_one",
    "run_pending",
    "status",
    "submit",
]
