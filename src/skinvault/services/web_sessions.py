"""Browser sessions (the ``WebSession`` rows): starting one after sign-in, the idle and
absolute timeouts, and signing out. Not :attr:`Vault.sessions`, the database sessions.

>>> new = start_session(vault, signin.actor)                        # doctest: +SKIP
>>> actor_for_session(vault, new.cookie_value).actor                # doctest: +SKIP
Actor(id='…', role=<Role.CLINICIAN: 'clinician'>, name='lee')

The cookie is shown once; only its SHA-256 is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.bootstrap import Vault
from skinvault.db.models import User, WebSession
from skinvault.errors import AccessDenied, AuthenticationFailed
from skinvault.services.credentials import _actor_of, _audit, _sha256, _urlsafe, _user

LOGOUT = Action.AUTH_LOGOUT
SESSION_START = Action.AUTH_SESSION_START
#: A web session ends after this long without a request…
SESSION_IDLE_TIMEOUT = timedelta(minutes=15)
#: …and this long after sign-in, however active it is.
SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=12)
#: last_seen_at is rewritten at most this often, to spare a write per request.
SESSION_TOUCH_INTERVAL = timedelta(minutes=1)
SESSION_ENDED = "your session has ended; please sign in again"


@dataclass(frozen=True)
class NewSession:
    cookie_value: str
    csrf_token: str
    session_id: str

    def __repr__(self) -> str:
        return f"NewSession(session_id={self.session_id!r})"


@dataclass(frozen=True)
class SessionInfo:
    actor: Actor
    csrf_token: str
    session_id: str
    #: Signed in with the password only; the role needs a second factor not set up yet.
    #: Such a session may see the enrolment page and sign out, nothing else.
    second_factor_pending: bool = False


def start_session(vault: Vault, actor: Actor, *, second_factor_pending: bool = False) -> NewSession:
    """A browser session for a signed-in ``actor``; the cookie is shown once, its hash kept.
    ``second_factor_pending``: the session may only enrol a second factor or sign out."""
    cookie = _urlsafe(vault.tokens.secret(32))
    csrf = vault.tokens.secret(32).hex()
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        user = _user(session, actor.id)
        if user.disabled:
            raise AccessDenied("this account is disabled")
        row = WebSession(
            id=vault.tokens.new_id(),
            user_id=user.id,
            token_hash=_sha256(cookie),
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            revoked_at=None,
            second_factor_pending=second_factor_pending,
        )
        session.add(row)
        _audit(
            session,
            vault,
            actor=actor.audit_name,
            action=SESSION_START,
            object=f"session:{row.id}",
            outcome=Outcome.DONE,
            reason="second factor pending: enrolment only" if second_factor_pending else None,
        )
    return NewSession(cookie, csrf, row.id)


def actor_for_session(vault: Vault, cookie_value: str) -> SessionInfo:
    """The session's actor, if it is neither idle for ``SESSION_IDLE_TIMEOUT`` nor older
    than ``SESSION_ABSOLUTE_TIMEOUT``; refreshes ``last_seen_at`` at most once a minute."""
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        row = session.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.token_hash == _sha256(cookie_value))
        ).first()
        if row is None:
            raise AuthenticationFailed(SESSION_ENDED)
        web, user = row[0], row[1]
        if (
            web.revoked_at is not None
            or user.disabled
            or now - web.last_seen_at > SESSION_IDLE_TIMEOUT
            or now - web.created_at >= SESSION_ABSOLUTE_TIMEOUT
        ):
            raise AuthenticationFailed(SESSION_ENDED)
        if now - web.last_seen_at >= SESSION_TOUCH_INTERVAL:
            web.last_seen_at = now
        return SessionInfo(
            _actor_of(user), web.csrf_token, web.id, bool(web.second_factor_pending)
        )


def end_session(vault: Vault, cookie_value: str) -> None:
    """Sign out: the cookie stops working. An unknown or ended session is not an error."""
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        row = session.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.token_hash == _sha256(cookie_value))
        ).first()
        if row is None:
            return
        web, user = row[0], row[1]
        if web.revoked_at is not None:
            return
        web.revoked_at = now
        _audit(
            session,
            vault,
            actor=_actor_of(user).audit_name,
            action=LOGOUT,
            object=f"session:{web.id}",
            outcome=Outcome.DONE,
        )


__all__ = [
    "SESSION_ABSOLUTE_TIMEOUT",
    "SESSION_IDLE_TIMEOUT",
    "NewSession",
    "SessionInfo",
    "actor_for_session",
    "end_session",
    "start_session",
]
