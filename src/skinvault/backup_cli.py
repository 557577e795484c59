"""``skinvault admin backup OUT`` and ``skinvault admin restore IN``: thin over
:mod:`skinvault.services.backup`, with a progress bar on stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from skinvault.admin_cli import BlobStoreUrl, ConfigFile, DatabaseUrl, DataDir, _vault
from skinvault.errors import SkinvaultError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # never cut a path or command
KEYS_WARNING = (
    "Keys are NOT in this backup. Keep a copy of the key-encryption keys apart from it"
    " (the data dir's keys/ folder, or the SKINVAULT_KEK value): without them the photos"
    " in any backup are lost for good."
)


@contextmanager
def _bar() -> Iterator[Callable[[str, int, int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        console=err, transient=True,
    ) as bar:  # fmt: skip
        tasks: dict[str, object] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))  # type: ignore[arg-type]

        yield update


def backup_command(
    target: Annotated[Path, typer.Argument(help="The archive to write (must not exist).")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Write a consistent backup (database, blobs, manifest with hashes) — without keys."""
    from skinvault.services.backup import make_backup

    with _vault(config, data_dir, database_url, blob_store) as vault, _bar() as progress:
        report = make_backup(vault, target, progress)
    out.print(f"Backup written: {report.path} ({report.size:,} bytes)")
    out.print(f"Rows: {sum(report.rows.values()):,}   Blobs: {report.blobs:,}")
    if report.missing_blobs:
        out.print(f"Blobs removed since the snapshot (not needed): {len(report.missing_blobs)}")
    out.print(f"Keys it needs: {', '.join(report.key_ids)}")
    err.print(KEYS_WARNING)


def restore_command(
    source: Annotated[Path, typer.Argument(help="A backup archive made by `admin backup`.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Restore a backup into an empty database and blob store (the keys must be there)."""
    from skinvault.config import load_settings
    from skinvault.services.backup import restore_backup

    try:
        settings = load_settings(
            config, data_dir=data_dir, database_url=database_url, blob_store=blob_store
        )
        with _bar() as progress:
            report = restore_backup(settings, source, progress)
    except SkinvaultError as exc:
        err.print(f"skinvault: {exc}")
        raise typer.Exit(1) from exc
    out.print(f"Restored {sum(report.rows.values()):,} rows and {report.blobs:,} blobs.")
    if report.audit_head:
        out.print("The signed audit head of the backup is now the kept head.")
    out.print("Check it: skinvault audit verify")
