"""``skinvault retention …`` and ``skinvault privacy …``: thin commands over governance services.

    $ skinvault retention run --dry-run        # what is due, changing nothing
    $ skinvault retention run --json           # do it; JSON for cron and scripts
    $ skinvault privacy facts                  # the privacy facts, in plain words

``retention run`` honours the shared vault options (``--data-dir``,
``--database-url``, ``--blob-store``, ``--config``); ``privacy facts`` reads
only the settings and needs no database. Exit codes as for ``admin``.
"""

# As for cli.py and admin_cli.py (their per-file-ignores in pyproject.toml): Typer commands take
# one parameter per option, and services are imported inside commands to keep start-up fast.

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from skinvault.actors import Actor
from skinvault.admin_cli import (
    BlobStoreUrl,
    ConfigFile,
    DatabaseUrl,
    DataDir,
    _fail,
    _vault,
    out,
)
from skinvault.errors import SkinvaultError

retention_app = typer.Typer(
    help="Shred photos, copies and share-link records whose retention period has ended.",
    no_args_is_help=True,
)
privacy_app = typer.Typer(
    help="What this installation does with patients' data, from its configuration.",
    no_args_is_help=True,
)

RETENTION = Actor.system("retention")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@retention_app.command("run")
def retention_run_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what is due; change and audit nothing.")
    ] = False,
    as_json: JsonFlag = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Apply the retention rules now (safe to run again: what is done is not done twice)."""
    from skinvault.services.retention import run_retention

    with _vault(config, data_dir, database_url, blob_store) as vault:
        report = run_retention(vault, actor=RETENTION, dry_run=dry_run)
    if as_json:
        print(json.dumps(report.as_json()))
        return
    if not report.actions:
        out.print("Nothing is due.")
        return
    table = Table(title="Due (dry run: nothing changed)" if dry_run else "Retention")
    table.add_column("What")
    table.add_column("Object", no_wrap=True, min_width=32)  # ids are copied from here
    table.add_column("Due since (UTC)")
    table.add_column("Done")
    for action in report.actions:
        table.add_row(
            action.kind.value,
            action.object_id,
            f"{action.due_at:%Y-%m-%d %H:%M}",
            "yes" if action.done else "no",
        )
    out.print(table)
    verb = "would be handled" if dry_run else "handled"
    count = len(report.actions)
    out.print(f"{count} {'item' if count == 1 else 'items'} {verb}.")


@privacy_app.command("facts")
def privacy_facts_command(
    as_json: JsonFlag = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Where photos are kept, how they are protected, for how long, and who sees them."""
    from skinvault.config import load_settings
    from skinvault.services.privacy import privacy_facts

    try:
        settings = load_settings(
            config, data_dir=data_dir, database_url=database_url, blob_store=blob_store
        )
    except SkinvaultError as exc:
        raise _fail(exc) from exc
    facts = privacy_facts(settings)
    if as_json:
        print(json.dumps(facts.as_json(), ensure_ascii=False))
    else:
        print(facts.as_text(), end="")
