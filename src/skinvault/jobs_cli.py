"""``skinvault worker`` and ``skinvault jobs …``: thin over :mod:`skinvault.services.jobs`.

skinvault worker --threads 2        # run background jobs until stopped (SIGTERM, Ctrl-C)
skinvault jobs status               # counts per state, the jobs that failed for good
skinvault jobs list --state dead    # or --state failed: ended at once, not retried
skinvault jobs retry JOB_ID
skinvault jobs run                  # run every due job now, then exit (cron, tests)
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from skinvault.admin_cli import BlobStoreUrl, ConfigFile, DatabaseUrl, DataDir, _vault

jobs_app = typer.Typer(help="Background jobs: status, failures, retries.", no_args_is_help=True)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # never cut a path or command


def worker_command(
    threads: Annotated[
        int, typer.Option("--threads", min=1, max=32, help="Jobs run at the same time.")
    ] = 1,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Run background jobs (thumbnails, display copies, upkeep) until stopped.

    ``serve`` runs ``job_threads`` of these in each process already; run this on its own
    when web and background work should not share a machine's cores (then set
    ``job_threads = 0`` for ``serve``). Any number of workers can run on one database.
    """
    from skinvault.services import jobs
    from skinvault.services.job_kinds import PERIODIC

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with _vault(config, data_dir, database_url, blob_store) as vault:
        workers = jobs.Workers(vault, threads=threads, periodic=PERIODIC)
        workers.start()
        err.print(f"skinvault worker: {threads} thread(s) on {vault.engine.url.drivername}")
        stop.wait()
        err.print("skinvault worker: stopping after the jobs in hand …")
        workers.stop()
        err.print(f"skinvault worker: stopped ({workers.ran} jobs run)")


@jobs_app.command("status")
def status_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """How many jobs wait, run, are done or failed for good (with their errors): dead after
    every try, or failed at once because no try could succeed (a photo that does not decode)."""
    from skinvault.services import jobs

    with _vault(config, data_dir, database_url, blob_store) as vault:
        report = jobs.status(vault)
    out.print(f"Jobs: {report.line()}")
    for job in report.dead:
        out.print(f"  dead {job.id} {job.kind} after {job.attempts} tries: {job.last_error}")
    for job in report.failed:
        out.print(f"  failed {job.id} {job.kind}, not retried: {job.last_error}")
    if report.dead or report.failed:
        out.print("Queue one again with: skinvault jobs retry JOB_ID")


@jobs_app.command("list")
def list_command(
    state: Annotated[
        str | None, typer.Option("--state", help="queued, running, done, dead or failed.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """The newest jobs, with their state, tries and last error."""
    from skinvault.services import jobs

    with _vault(config, data_dir, database_url, blob_store) as vault:
        found = jobs.list_jobs(vault, state=state, limit=limit)
    table = Table("id", "kind", "state", "tries", "created", "error")
    for job in found:
        table.add_row(job.id, job.kind, job.state, f"{job.attempts}/{job.max_attempts}",
                      f"{job.created_at:%Y-%m-%d %H:%M:%S}", job.last_error or "")  # fmt: skip
    out.print(table)


@jobs_app.command("retry")
def retry_command(
    job_id: Annotated[
        str, typer.Argument(help="A dead or failed job's id (skinvault jobs status).")
    ],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Queue a job that failed for good (dead or failed) again, with a fresh set of tries."""
    from skinvault.services import jobs

    with _vault(config, data_dir, database_url, blob_store) as vault:
        job = jobs.retry(vault, job_id)
    out.print(f"Queued again: {job.id} ({job.kind})")


@jobs_app.command("run")
def run_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Run every job that is due now in this process, then exit."""
    from skinvault.services import jobs

    with _vault(config, data_dir, database_url, blob_store) as vault:
        ran = jobs.run_pending(vault)
        report = jobs.status(vault)
    out.print(f"Ran {ran} jobs. Jobs: {report.line()}")
