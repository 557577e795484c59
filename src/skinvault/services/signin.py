"""Signing in with e-mail and password: lockout, the TOTP code for roles that need one,
password changes, and ending everything a user holds.

>>> signin = authenticate(vault, email="lee@clinic.example", password="…",
...                       totp="123456")                            # doctest: +SKIP
>>> if signin.needs_totp_enrolment:                                 # doctest: +SKIP
...     enrolment = totp.begin_totp_enrolment(vault, signin.actor.id)  # show enrolment.qr_svg
>>> new = web_sessions.start_session(vault, signin.actor)           # doctest: +SKIP

Passwords are stored as Argon2id only. Every function takes the :class:`Vault` first
and owns its transaction (but :func:`revoke_everything`, which runs in the caller's);
each sign-in attempt, success or not, is in the audit log.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from skinvault.actors import NEEDS_TOTP, Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.bootstrap import Vault
from skinvault.db.models import ApiToken, User, WebSession
from skinvault.errors import AccountLocked, AuthenticationFailed, ConfigError, TooManyAttempts
from skinvault.services import signin_limits as limits_mod
from skinvault.services.credentials import _ANONYMOUS, _actor_of, _audit, _user
from skinvault.services.passwords import HASHER, MAX_PASSWORD_LENGTH, problem_with
from skinvault.services.signin_limits import Limits
from skinvault.services.totp import _totp_check

LOGIN = Action.AUTH_LOGIN
LOCKOUT = Action.AUTH_LOCKOUT
PASSWORD_CHANGE = Action.AUTH_PASSWORD_CHANGE
WRONG_CREDENTIALS = "wrong e-mail, password or code"
_HASHER = HASHER


@dataclass(frozen=True)
class SignIn:
    """A successful sign-in. ``needs_totp_enrolment``: the role requires a second factor
    the user has not set up yet; the caller must send them through enrolment first."""

    actor: Actor
    needs_totp_enrolment: bool
    rehash: bool = False


@cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def _password_ok(stored: str | None, password: str) -> bool:
    try:
        # An unknown user still costs one Argon2 verification: timing tells nothing.
        return _HASHER.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def _lock_user_row(session: Session, email: str) -> User | None:
    # FOR UPDATE: two concurrent wrong passwords both count (ignored on SQLite,
    # whose transactions are already serialised by BEGIN IMMEDIATE).
    return session.scalars(select(User).where(User.email == email).with_for_update()).first()


def authenticate(
    vault: Vault, *, email: str, password: str, totp: str | None, address: str = "?"
) -> SignIn:
    """Check e-mail, password and (for roles in ``NEEDS_TOTP`` once enrolled) a TOTP code.

    ``address`` is the client's address: failures are limited per address and per
    (account, address) pair (:mod:`skinvault.services.signin_limits`). Raises
    :class:`TooManyAttempts` when the address must wait, :class:`AccountLocked` when the
    pair is locked (the same for an unknown e-mail), else :class:`AuthenticationFailed`
    with one message for every wrong input. A failure is committed (count and audit
    event) before the error is raised. The Argon2 check runs outside any write
    transaction, so a slow hash never holds the database's write lock.
    """
    email = email.strip().lower()[:320]
    now = vault.clock.now()
    limits = Limits.of(vault.settings)
    with vault.reading() as session:
        if limits_mod.address_blocked(session, limits, address, now):
            raise TooManyAttempts(
                "too many failed sign-ins from your address;"
                f" wait {int(limits.window.total_seconds() // 60)} minutes"
            )
        until = limits_mod.locked_until(session, limits, email, address, now)
        user = session.scalars(select(User).where(User.email == email)).first()
        stored_hash = user.password_hash if user else None
        user_id = user.id if user else None
    if until is not None:
        with vault.sessions.begin() as session:
            _audit(
                session,
                vault,
                actor=_ANONYMOUS if user_id is None else f"user:{user_id}",
                action=LOGIN,
                object=f"user:{user_id or '?'}",
                outcome=Outcome.DENIED,
                reason=f"locked for this address ({address}) until {until:%H:%M} UTC",
            )
        raise AccountLocked(until)
    password_ok = _password_ok(stored_hash, password[:MAX_PASSWORD_LENGTH])
    error: AuthenticationFailed | None = None
    result: SignIn | None = None
    with vault.sessions.begin() as session:
        user = _lock_user_row(session, email)
        if user is None or user.id != user_id or user.password_hash != stored_hash:
            # Unknown, or the password changed between the read and now: a failure either way.
            password_ok = password_ok and user is not None and user.password_hash == stored_hash
        if user is None:
            _audit(
                session,
                vault,
                actor=_ANONYMOUS,
                action=LOGIN,
                object="user:?",
                outcome=Outcome.DENIED,
                reason="unknown e-mail",
            )
            _count_failure(session, email, address, now)
            error = AuthenticationFailed(WRONG_CREDENTIALS)
        else:
            error, result = _check_user(
                session,
                vault,
                user=user,
                password=password,
                password_ok=password_ok,
                totp=totp,
                now=now,
                address=address,
            )
    if error is not None:
        raise error
    assert result is not None
    if result.rehash:
        _rehash(vault, result.actor.id, password)
    return result


def _count_failure(session: Session, email: str, address: str, now: datetime) -> None:
    limits_mod.note_failure(session, limits_mod.address_key(address), now)
    limits_mod.note_failure(session, limits_mod.account_key(email, address), now)


def _rehash(vault: Vault, user_id: str, password: str) -> None:
    """The Argon2 parameters changed since this hash was made: store a fresh one."""
    fresh = _HASHER.hash(password)
    with vault.sessions.begin() as session:
        user = _user(session, user_id, for_update=True)
        if user.password_hash and _HASHER.check_needs_rehash(user.password_hash):
            user.password_hash = fresh


def _check_user(
    session: Session,
    vault: Vault,
    *,
    user: User,
    password: str,
    password_ok: bool,
    totp: str | None,
    now: datetime,
    address: str,
) -> tuple[AuthenticationFailed | None, SignIn | None]:
    actor = _actor_of(user)
    limits = Limits.of(vault.settings)

    def deny(reason: str) -> None:
        _audit(
            session,
            vault,
            actor=actor.audit_name,
            action=LOGIN,
            object=f"user:{user.id}",
            outcome=Outcome.DENIED,
            reason=reason,
        )

    if user.disabled or user.password_hash is None:
        deny("account disabled" if user.disabled else "account not set up yet")
        _count_failure(session, user.email, address, now)
        return AuthenticationFailed(WRONG_CREDENTIALS), None
    enrolled = bool(user.totp_confirmed and user.totp_secret_enc)
    needs_totp = Role(user.role) in NEEDS_TOTP
    reason = None
    if not password_ok:
        reason = "wrong password"
    elif enrolled:
        check = _totp_check(vault, user, totp, now)
        if check == "replayed":
            # A code seen before: someone may be replaying what they saw. It counts against
            # the address but never locks the account, so a replay cannot lock the owner out.
            limits_mod.note_failure(session, limits_mod.address_key(address), now)
            deny("replayed TOTP code (already used; not counted towards the account lock)")
            return AuthenticationFailed(WRONG_CREDENTIALS), None
        if check != "ok":
            reason = "missing TOTP code" if not totp else "wrong TOTP code"
    if reason is not None:
        _count_failure(session, user.email, address, now)
        session.flush()
        failures = limits_mod.count_since(
            session, limits_mod.account_key(user.email, address), now - timedelta(days=1)
        )
        deny(f"{reason} (failure {failures} for this account from {address})")
        until = limits_mod.locked_until(session, limits, user.email, address, now)
        if until is not None and failures % limits.lockout_failures == 0:
            _audit(
                session,
                vault,
                actor=actor.audit_name,
                action=LOCKOUT,
                object=f"user:{user.id}",
                outcome=Outcome.DONE,
                reason=f"sign-in from {address} locked until {until:%Y-%m-%d %H:%M} UTC",
            )
        return AuthenticationFailed(WRONG_CREDENTIALS), None
    limits_mod.clear_account(session, user.email, address)
    user.last_login_at = now
    pending = needs_totp and not enrolled
    _audit(
        session,
        vault,
        actor=actor.audit_name,
        action=LOGIN,
        object=f"user:{user.id}",
        outcome=Outcome.ALLOWED,
        reason="password only; second factor not set up (session limited to enrolment)"
        if pending
        else ("password and TOTP" if enrolled else "password"),
    )
    assert user.password_hash is not None
    rehash = _HASHER.check_needs_rehash(user.password_hash)
    return None, SignIn(actor, needs_totp_enrolment=pending, rehash=rehash)


def password_matches(stored: str | None, password: str) -> bool:
    """Argon2 check of ``password`` against a stored hash (None never matches)."""
    return _password_ok(stored, password)


def change_password(
    vault: Vault, *, actor: Actor, old: str, new: str, keep_session: str | None = None
) -> None:
    """Replace ``actor``'s password after checking the current one. Every other web
    session and every API token of the user ends; ``keep_session`` (the id of the
    session asking) stays signed in."""
    problem = problem_with(new)
    if problem:
        raise ConfigError(problem)
    now = vault.clock.now()
    limits = Limits.of(vault.settings)
    key = f"change:{actor.id}"
    with vault.reading() as session:
        user = _user(session, actor.id)
        stored = user.password_hash
        tries = limits_mod.count_since(session, key, now - limits.lockout)
    if tries >= limits.lockout_failures:
        raise AccountLocked(now + limits.lockout)
    ok = _password_ok(stored, old[:MAX_PASSWORD_LENGTH])
    fresh = _HASHER.hash(new) if ok else None
    with vault.sessions.begin() as session:
        user = _user(session, actor.id, for_update=True)
        if not ok or user.password_hash != stored:
            limits_mod.note_failure(session, key, now)
            outcome, reason = Outcome.DENIED, "wrong current password"
        else:
            user.password_hash = fresh
            outcome, reason = Outcome.DONE, "other sessions and API tokens of the user revoked"
            revoke_everything(session, user.id, now, keep_session=keep_session)
        _audit(
            session,
            vault,
            actor=actor.audit_name,
            action=PASSWORD_CHANGE,
            object=f"user:{user.id}",
            outcome=outcome,
            reason=reason,
        )
    if outcome is Outcome.DENIED:
        raise AuthenticationFailed("the current password is wrong")


def revoke_everything(
    session: Session, user_id: str, now: datetime, *, keep_session: str | None = None
) -> None:
    """End every web session (but ``keep_session``) and every API token of a user."""
    sessions = update(WebSession).where(
        WebSession.user_id == user_id, WebSession.revoked_at.is_(None)
    )
    if keep_session is not None:
        sessions = sessions.where(WebSession.id != keep_session)
    session.execute(sessions.values(revoked_at=now))
    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


__all__ = [
    "SignIn",
    "authenticate",
    "change_password",
]
