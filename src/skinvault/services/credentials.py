"""What every sign-in module shares: how a secret is made and kept, and the user-row and
audit helpers.

A secret handed out (API token, session cookie, setup or account link) is 256 random
bits, URL-safe; only its SHA-256 is stored. These helpers import none of the modules that
use them (:mod:`~skinvault.services.signin`, :mod:`~skinvault.services.totp`,
:mod:`~skinvault.services.api_tokens`, :mod:`~skinvault.services.web_sessions`,
:mod:`~skinvault.services.setup_tokens`, :mod:`~skinvault.services.users`), so none of
those import each other through here.
"""

from __future__ import annotations

import base64
import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from skinvault.actors import Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import User
from skinvault.errors import NotFound

_ANONYMOUS = "anonymous"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _urlsafe(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def urlsafe_token(vault: Vault) -> str:
    """A new 256-bit secret for a link, URL-safe."""
    return _urlsafe(vault.tokens.secret(32))


def _actor_of(user: User) -> Actor:
    return Actor(user.id, Role(user.role), user.display_name)


def _user(session: Session, user_id: str, *, for_update: bool = False) -> User:
    query = select(User).where(User.id == user_id)
    user = session.scalars(query.with_for_update() if for_update else query).first()
    if user is None:
        raise NotFound(f"there is no user {user_id}")
    return user


def _audit(
    session: Session,
    vault: Vault,
    *,
    actor: str,
    action: str,
    object: str,
    outcome: Outcome,
    reason: str | None = None,
) -> None:
    record(
        session,
        clock=vault.clock,
        actor=actor,
        action=Action(action),
        object=object,
        outcome=outcome,
        reason=reason,
    )
