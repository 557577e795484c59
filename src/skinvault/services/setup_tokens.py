"""The one-time setup link that creates a fresh vault's first administrator.

A setup token works once, only while no administrator exists, and only for
``SETUP_TOKEN_TTL``; only its SHA-256 is stored.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from skinvault.actors import Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.bootstrap import Vault
from skinvault.db.models import SetupToken, User
from skinvault.errors import AuthenticationFailed
from skinvault.services.admin import create_user
from skinvault.services.credentials import _ANONYMOUS, _actor_of, _audit, _sha256, _urlsafe, _user

SETUP_TOKEN_CREATE = Action.AUTH_SETUP_TOKEN_CREATE
SETUP_TOKEN_USE = Action.AUTH_SETUP_TOKEN_USE
#: A setup token nobody used stops working (and a new one may be made) after this long.
SETUP_TOKEN_TTL = timedelta(hours=24)
INVALID_SETUP_TOKEN = "this setup link is invalid, expired or already used"


def _admin_exists(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).where(User.role == Role.ADMIN.value)))


def create_setup_token(vault: Vault) -> str | None:
    """A one-time token that creates the first administrator, or None when an
    administrator exists or an unused token younger than ``SETUP_TOKEN_TTL`` does."""
    now = vault.clock.now()
    token = _urlsafe(vault.tokens.secret(32))
    with vault.sessions.begin() as session:
        if _admin_exists(session):
            return None
        live = session.scalar(
            select(func.count()).where(
                SetupToken.used_at.is_(None), SetupToken.created_at > now - SETUP_TOKEN_TTL
            )
        )
        if live:
            return None
        session.add(SetupToken(token_hash=_sha256(token), created_at=now, used_at=None))
        _audit(
            session,
            vault,
            actor=Actor.system("setup").audit_name,
            action=SETUP_TOKEN_CREATE,
            object="setup-token",
            outcome=Outcome.DONE,
            reason=f"valid until {now + SETUP_TOKEN_TTL:%Y-%m-%d %H:%M} UTC",
        )
    return token


def use_setup_token(vault: Vault, token: str, *, email: str, password: str, name: str) -> Actor:
    """Create the first administrator with ``token``; it works once, and only while no
    administrator exists. Bad e-mail or password (``ConfigError``) leaves it usable."""
    now = vault.clock.now()
    token_hash = _sha256(token)
    with vault.sessions.begin() as session:
        # Claim the token first, so two browsers racing with one link make one admin.
        claimed = cast(
            CursorResult[Any],
            session.execute(
                update(SetupToken)
                .where(
                    SetupToken.token_hash == token_hash,
                    SetupToken.used_at.is_(None),
                    SetupToken.created_at > now - SETUP_TOKEN_TTL,
                )
                .values(used_at=now)
            ),
        ).rowcount
        ok = claimed == 1 and not _admin_exists(session)
        if not ok:
            _audit(
                session,
                vault,
                actor=_ANONYMOUS,
                action=SETUP_TOKEN_USE,
                object="setup-token",
                outcome=Outcome.DENIED,
                reason="invalid, expired or used setup token",
            )
    if not ok:
        raise AuthenticationFailed(INVALID_SETUP_TOKEN)
    try:
        new = create_user(
            vault,
            role=Role.ADMIN,
            email=email,
            password=password,
            name=name,
            actor=Actor.system("setup"),
        )
    except BaseException:
        with vault.sessions.begin() as session:
            session.execute(
                update(SetupToken).where(SetupToken.token_hash == token_hash).values(used_at=None)
            )
        raise
    with vault.sessions.begin() as session:
        user = _user(session, new.user_id)
        _audit(
            session,
            vault,
            actor=_actor_of(user).audit_name,
            action=SETUP_TOKEN_USE,
            object=f"user:{user.id}",
            outcome=Outcome.ALLOWED,
            reason="first administrator created",
        )
        return _actor_of(user)


__all__ = [
    "create_setup_token",
    "use_setup_token",
]
