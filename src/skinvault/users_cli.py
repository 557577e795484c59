"""``skinvault admin users …``: the account life cycle from the server's console.

    $ skinvault admin users create --role clinician --email lee@clinic.example --name "Dr Lee"
    Created clinician lee@clinic.example. Hand over this one-time set-up link (72 hours):
    https://photos.clinic.example/account/…

Every command acts as the operator (``system:admin-cli`` in the audit log). Links are
printed on the public address (``public_base_url``) when it is set, else as a path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from skinvault.actors import Role
from skinvault.admin_cli import OPERATOR, BlobStoreUrl, ConfigFile, DatabaseUrl, DataDir, _vault

if TYPE_CHECKING:
    from skinvault.bootstrap import Vault

users_app = typer.Typer(
    help="Accounts: list, create (with a set-up link), disable, unlock, reset.",
    no_args_is_help=True,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # never cut a path or command

Who = Annotated[str, typer.Argument(help="The user's e-mail address or user id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _link(vault: Vault, token: str) -> str:
    """The link on ``public_base_url``; without it, the path, to be opened on the address
    the service is reached at (the one ``skinvault serve`` prints)."""
    base = vault.settings.public_base_url.rstrip("/")
    if not base:
        err.print(
            "skinvault: public_base_url is not set; open this path on the service's address"
        )
    return f"{base}/account/{token}"


@users_app.command("list")
def list_command(
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Every account: role, last sign-in, second factor, disabled or locked."""
    from skinvault.services import users

    with _vault(config, data_dir, database_url, blob_store) as vault:
        rows = users.list_users(vault, actor=OPERATOR)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "email": r.email,
                        "name": r.name,
                        "role": r.role.value,
                        "disabled": r.disabled,
                        "locked": r.locked,
                        "second_factor": r.second_factor,
                        "last_sign_in": r.last_sign_in.isoformat() if r.last_sign_in else None,
                    }
                    for r in rows
                ]
            )
        )
        return
    table = Table("E-mail", "Name", "Role", "Two-step", "Last sign-in (UTC)", "State")
    for r in rows:
        state = "disabled" if r.disabled else ("locked" if r.locked else "active")
        last = r.last_sign_in.strftime("%Y-%m-%d %H:%M") if r.last_sign_in else "never"
        table.add_row(r.email, r.name, r.role.value, r.second_factor, last, state)
    out.print(table)


@users_app.command("create")
def create_command(
    role: Annotated[Role, typer.Option(help="The user's role.")],
    email: Annotated[str, typer.Option(help="The user's e-mail address (their login).")],
    name: Annotated[str, typer.Option(help="Display name, e.g. 'Dr. Lee'.")] = "",
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Create an account without a password and print its one-time set-up link."""
    from skinvault.services import users

    with _vault(config, data_dir, database_url, blob_store) as vault:
        made = users.create_account(vault, actor=OPERATOR, role=role, email=email, name=name)
        link, hours = _link(vault, made.link_token), vault.settings.account_link_hours
    if as_json:
        print(json.dumps({"user_id": made.user_id, "patient_id": made.patient_id, "link": link}))
        return
    out.print(f"Created {role.value} {email.strip().lower()} (user id {made.user_id}).")
    out.print(f"Hand over this one-time set-up link (valid {hours} hours):")
    print(link)


def _act(
    action: str,
    who: str,
    config: Path | None,
    data_dir: Path | None,
    db: str | None,
    blobs: str | None,
) -> None:
    from skinvault.services import users

    with _vault(config, data_dir, db, blobs) as vault:
        user_id = users.find_user(vault, actor=OPERATOR, who=who)
        if action in ("disable", "enable"):
            users.set_disabled(vault, actor=OPERATOR, user_id=user_id, disabled=action == "disable")
            out.print(f"{who}: {action}d.")
        elif action == "unlock":
            n = users.unlock(vault, actor=OPERATOR, user_id=user_id)
            out.print(f"{who}: unlocked ({n} failed sign-ins forgotten).")
        else:
            if action == "reset-password":
                token = users.reset_password(vault, actor=OPERATOR, user_id=user_id)
            else:
                token = users.reset_second_factor(vault, actor=OPERATOR, user_id=user_id)
            out.print(f"{who}: hand over this one-time link:")
            print(_link(vault, token))


@users_app.command("disable")
def disable_command(
    who: Who,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Disable an account (a leaver): its sessions and API tokens end at once."""
    _act("disable", who, config, data_dir, database_url, blob_store)


@users_app.command("enable")
def enable_command(
    who: Who,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Enable a disabled account again."""
    _act("enable", who, config, data_dir, database_url, blob_store)


@users_app.command("unlock")
def unlock_command(
    who: Who,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Forget an account's failed sign-ins from every address."""
    _act("unlock", who, config, data_dir, database_url, blob_store)


@users_app.command("reset-password")
def reset_password_command(
    who: Who,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Print a one-time link with which the user chooses a new password."""
    _act("reset-password", who, config, data_dir, database_url, blob_store)


@users_app.command("reset-totp")
def reset_totp_command(
    who: Who,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Clear a lost authenticator (sessions end) and print the re-enrolment link."""
    _act("reset-totp", who, config, data_dir, database_url, blob_store)
