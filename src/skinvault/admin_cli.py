"""``skinvault admin …`` and ``skinvault audit …``: thin commands over the services.

Heavy imports (SQLAlchemy, cryptography) happen inside the commands, so
``skinvault scrub`` starts as fast as before. Every command honours
``--data-dir`` / ``SKINVAULT_DATA_DIR``, ``--database-url`` and ``--blob-store``.

Exit codes: 0 done; 1 the command ran and found a problem (a broken audit
chain) or failed with a clear message; 2 usage error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from skinvault.actors import Actor, Role
from skinvault.errors import SkinvaultError

if TYPE_CHECKING:
    from skinvault.bootstrap import Vault

admin_app = typer.Typer(
    help="Set up and operate a vault: data dir, users, keys.", no_args_is_help=True
)
audit_app = typer.Typer(help="Check and read the tamper-evident audit log.", no_args_is_help=True)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # never cut a path or command

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="SKINVAULT_DATA_DIR",
        help="Folder for the database, keys and encrypted photos.",
        show_default="~/.local/share/skinvault",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="SKINVAULT_DATABASE_URL",
        help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db"
        " (default: SQLite in the data dir).",
    ),
]
BlobStoreUrl = Annotated[
    str | None,
    typer.Option(
        "--blob-store",
        envvar="SKINVAULT_BLOB_STORE",
        help="Where encrypted photos go: local (default), file:///path or s3://bucket/prefix.",
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", envvar="SKINVAULT_CONFIG", help="A TOML settings file."),
]


def _fail(exc: SkinvaultError) -> typer.Exit:
    err.print(f"skinvault: {exc}")
    return typer.Exit(1)


@contextmanager
def _vault(
    config: Path | None,
    data_dir: Path | None,
    database_url: str | None,
    blob_store: str | None,
    *,
    create: bool = False,
) -> Iterator[Vault]:
    from skinvault.bootstrap import bootstrap
    from skinvault.config import load_settings

    try:
        settings = load_settings(
            config, data_dir=data_dir, database_url=database_url, blob_store=blob_store
        )
        vault = bootstrap(settings, create=create)
    except SkinvaultError as exc:
        raise _fail(exc) from exc
    try:
        yield vault
    except SkinvaultError as exc:
        raise _fail(exc) from exc
    finally:
        vault.close()


OPERATOR = Actor.system("admin-cli")


@admin_app.command("init")
def init_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Create the data dir, the key files and the database schema (safe to run again)."""
    with _vault(config, data_dir, database_url, blob_store, create=True) as vault:
        out.print(f"Data directory: {vault.settings.data_dir}")
        out.print(f"Database:       {vault.engine.url.render_as_string(hide_password=True)}")
        out.print(f"Photos stored:  {vault.blobs.description}")
        out.print(f"Keys:           {vault.keys.description}")
        out.print("Ready.")


@admin_app.command("create-user")
def create_user_command(
    role: Annotated[Role, typer.Option(help="The user's role.")],
    email: Annotated[str, typer.Option(help="The user's e-mail address (their login).")],
    name: Annotated[str, typer.Option(help="Display name, e.g. 'Dr. Lee'.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Create a user; the password is prompted for (twice) or read from stdin."""
    from skinvault.services.admin import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        err.print("skinvault: no terminal to ask for a password; use --password-stdin")
        raise typer.Exit(2)
    with _vault(config, data_dir, database_url, blob_store) as vault:
        user = create_user(
            vault, role=role, email=email, password=password, actor=OPERATOR, name=name
        )
    if as_json:
        print(json.dumps({"user_id": user.user_id, "patient_id": user.patient_id}))
    else:
        out.print(f"Created {role.value} {email} (user id {user.user_id}).")
        if user.patient_id:
            out.print(f"Patient record: {user.patient_id}")


@admin_app.command("relate")
def relate_command(
    patient: Annotated[str, typer.Option("--patient", help="The patient's e-mail.")],
    clinician: Annotated[
        str, typer.Option("--clinician", help="The clinician's or staff member's e-mail.")
    ],
    end: Annotated[bool, typer.Option("--end", help="End the care relationship instead.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Put a clinician on a patient's care team (or take them off with --end)."""
    from skinvault.errors import NotFound
    from skinvault.services import care, records

    with _vault(config, data_dir, database_url, blob_store) as vault:
        patient_user = records.user_by_email(vault, patient)
        member = records.user_by_email(vault, clinician)
        patient_id = records.patient_of_user(vault, patient_user.id) if patient_user else None
        if patient_id is None:
            raise NotFound(f"there is no patient with the e-mail {patient}")
        if member is None:
            raise NotFound(f"there is no user with the e-mail {clinician}")
        if end:
            care.end_care(vault, patient_id=patient_id, member_id=member.id, actor=OPERATOR)
            out.print(f"{clinician} is no longer on {patient}'s care team.")
        else:
            care.start_care(vault, patient_id=patient_id, member_id=member.id, actor=OPERATOR)
            out.print(f"{clinician} is now on {patient}'s care team.")


@admin_app.command("rotate-key")
def rotate_key_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Re-wrap every data key under a new key-encryption key (photos are not rewritten).

    If a run is interrupted, run it again: it finishes the same rotation.
    """
    from rich.progress import Progress

    from skinvault.services.admin import rotate_key

    with (
        _vault(config, data_dir, database_url, blob_store) as vault,
        Progress(console=err, transient=True) as bar,
    ):
        task = bar.add_task("Re-wrapping data keys", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = rotate_key(vault, actor=OPERATOR, progress=progress)
    verb = "Finished the interrupted rotation to" if report.resumed else "Rotated to"
    out.print(f"{verb} key {report.new_kek}: {report.rewrapped} data keys re-wrapped.")
    if report.retired:
        out.print(f"Retired old keys: {', '.join(report.retired)}")


@admin_app.command("sweep")
def sweep_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Remove encrypted blobs that no photo lists (left by a crash mid-upload or mid-delete)."""
    from skinvault.services.admin import sweep

    with _vault(config, data_dir, database_url, blob_store) as vault:
        report = sweep(vault, actor=OPERATOR)
    out.print(
        f"Removed {len(report.removed)} orphaned blobs;"
        f" {report.kept_recent} recent ones left for uploads still in progress."
    )


@audit_app.command("checkpoint")
def checkpoint_command(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Also write the signed head to this file.")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Sign the log's current head and print it (JSON) for an outside party to keep."""
    from skinvault.audit.chain import checkpoint_json
    from skinvault.services.admin import sign_head

    with _vault(config, data_dir, database_url, blob_store) as vault:
        try:
            signed = sign_head(vault)
        except ValueError as exc:
            err.print(f"skinvault: {exc}")
            raise typer.Exit(1) from exc
    text = json.dumps(checkpoint_json(signed), indent=2)
    if out_file is not None:
        out_file.write_text(text + "\n")
    print(text)


@audit_app.command("verify")
def verify_command(
    against: Annotated[
        Path | None,
        typer.Option(
            "--against", help="A signed head from `skinvault audit checkpoint` to prove against."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    no_kept_head: Annotated[
        bool,
        typer.Option(
            "--no-kept-head",
            help="Do not compare with the signed head kept outside the database.",
        ),
    ] = False,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental",
            help="Hash only the events after the head the last verify found intact"
            " (fast; a full verify also finds changes before it).",
        ),
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Re-compute the hash chain, check signed checkpoints and compare with the signed head
    kept outside the database (next to the keys); exit 1 at the first broken link or cut."""
    from skinvault.audit.chain import checkpoint_from_json
    from skinvault.errors import AuditChainBroken
    from skinvault.services.admin import verify_against, verify_audit, verify_summary

    held = None
    if against is not None:
        try:
            held = checkpoint_from_json(json.loads(against.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            err.print(f"skinvault: {against} is not a checkpoint from `skinvault audit checkpoint`")
            raise typer.Exit(2) from exc
    with _vault(config, data_dir, database_url, blob_store) as vault:
        try:
            report = (
                verify_audit(vault, kept_head=not no_kept_head, incremental=incremental)
                if held is None
                else verify_against(vault, held)
            )
        except AuditChainBroken as exc:
            if as_json:
                print(json.dumps({"intact": False, "broken_at": exc.seq, "message": str(exc)}))
            else:
                err.print(f"BROKEN: {exc}")
            raise typer.Exit(1) from exc
    if as_json:
        print(
            json.dumps(
                {
                    "intact": True,
                    "events": report.count,
                    "head_seq": report.head_seq,
                    "head_hash": report.head_hash,
                    "checkpoints": report.checkpoints_checked,
                    "kept_head_seq": report.kept_head_seq,
                    "verified_after": report.start_seq,
                    "notes": list(report.notes),
                }
            )
        )
    else:
        out.print(verify_summary(report))
        for note in report.notes:
            out.print(f"Warning: {note}.")


@audit_app.command("tail")
def tail_command(
    count: Annotated[int, typer.Option("-n", "--count", min=1, help="How many events.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Show the most recent audit events, oldest first."""
    from skinvault.audit.log import tail

    with _vault(config, data_dir, database_url, blob_store) as vault, vault.sessions() as session:
        events = tail(session, count)
    for e in events:
        if as_json:
            print(
                json.dumps(
                    {
                        "seq": e.seq,
                        "at": e.at.isoformat(),
                        "actor": e.actor,
                        "action": e.action,
                        "object": e.object,
                        "purpose": e.purpose,
                        "outcome": e.outcome,
                        "reason": e.reason,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            purpose = f" for {e.purpose}" if e.purpose else ""
            reason = f" — {e.reason}" if e.reason else ""
            out.print(
                f"{e.seq:>6}  {e.at:%Y-%m-%d %H:%M:%S}  {e.actor}  {e.action} {e.object}"
                f"{purpose}: {e.outcome}{reason}"
            )
