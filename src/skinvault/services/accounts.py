"""Signing in: passwords with lockout, TOTP second factor, API tokens, web sessions,
and the one-time setup link that creates a fresh vault's first administrator.

>>> signin = authenticate(vault, email="lee@clinic.example", password="…",
...                       totp="123456")                            # doctest: +SKIP
>>> if signin.needs_totp_enrolment:                                 # doctest: +SKIP
...     enrolment = begin_totp_enrolment(vault, signin.actor.id)    # show enrolment.qr_svg
>>> new = start_session(vault, signin.actor)                        # doctest: +SKIP
>>> actor_for_session(vault, new.cookie_value).actor                # doctest: +SKIP
Actor(id='…', role=<Role.CLINICIAN: 'clinician'>, name='lee')

Secrets are never stored as they are: API tokens, session cookies and setup
tokens only as SHA-256, passwords as Argon2id, the TOTP secret sealed with the
vault's key-encryption key (kind ``"totp"``, bound to the user id).

Every function takes the :class:`Vault` first and owns its transaction; each
sign-in attempt, success or not, is in the audit log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

import pyotp
import segno
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from skinvault.actors import NEEDS_TOTP, Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.crypto.envelope import open_blob, pack, seal, unpack
from skinvault.db.models import ApiToken, SetupToken, User, WebSession
from skinvault.errors import (
    AccessDenied,
    AccountLocked,
    AuthenticationFailed,
    ConfigError,
    NotFound,
    TooManyAttempts,
)
from skinvault.policy.decide import decide_token_revocation
from skinvault.services import signin_limits as limits_mod
from skinvault.services.admin import create_user
from skinvault.services.passwords import HASHER, MAX_PASSWORD_LENGTH, problem_with
from skinvault.services.signin_limits import Limits

LOGIN = Action.AUTH_LOGIN
LOGOUT = Action.AUTH_LOGOUT
LOCKOUT = Action.AUTH_LOCKOUT
PASSWORD_CHANGE = Action.AUTH_PASSWORD_CHANGE
TOTP_ENROL = Action.AUTH_TOTP_ENROL
TOTP_CONFIRM = Action.AUTH_TOTP_CONFIRM
TOKEN_ISSUE = Action.AUTH_TOKEN_ISSUE
TOKEN_REVOKE = Action.AUTH_TOKEN_REVOKE
SESSION_START = Action.AUTH_SESSION_START
SETUP_TOKEN_CREATE = Action.AUTH_SETUP_TOKEN_CREATE
SETUP_TOKEN_USE = Action.AUTH_SETUP_TOKEN_USE

#: A web session ends after this long without a request…
SESSION_IDLE_TIMEOUT = timedelta(minutes=15)
#: …and this long after sign-in, however active it is.
SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=12)
#: last_seen_at is rewritten at most this often, to spare a write per request.
SESSION_TOUCH_INTERVAL = timedelta(minutes=1)
#: A setup token nobody used stops working (and a new one may be made) after this long.
SETUP_TOKEN_TTL = timedelta(hours=24)
API_TOKEN_PREFIX = "svk_"
#: What an API token may be used for; a token carries a subset (all by default).
API_SCOPES = frozenset({"photos:read", "photos:write", "share", "consents", "history", "deletion"})
DEFAULT_API_TTL = timedelta(hours=1)
TOTP_ISSUER = "skinvault"
#: Codes of the previous and next 30-second step are accepted too (clock drift).
TOTP_VALID_WINDOW = 1

WRONG_CREDENTIALS = "wrong e-mail, password or code"
INVALID_TOKEN = "the access token is invalid or expired"
SESSION_ENDED = "your session has ended; please sign in again"
INVALID_SETUP_TOKEN = "this setup link is invalid, expired or already used"

#: Envelope kind of sealed TOTP secrets (key rotation re-wraps them too).
TOTP_KIND = "totp"
_ANONYMOUS = "anonymous"
_HASHER = HASHER


@dataclass(frozen=True)
class SignIn:
    """A successful sign-in. ``needs_totp_enrolment``: the role requires a second factor
    the user has not set up yet; the caller must send them through enrolment first."""

    actor: Actor
    needs_totp_enrolment: bool
    rehash: bool = False


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    uri: str
    qr_svg: str

    def __repr__(self) -> str:  # keep the secret out of log lines
        return f"TotpEnrolment(uri=<{len(self.uri)} chars>)"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int  # seconds
    token_id: str

    def __repr__(self) -> str:
        return f"IssuedToken(token_id={self.token_id!r}, expires_in={self.expires_in})"


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


# --- helpers -----------------------------------------------------------------------


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _urlsafe(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _actor_of(user: User) -> Actor:
    return Actor(user.id, Role(user.role), user.display_name)


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


def _seal_totp_secret(vault: Vault, user_id: str, secret: str) -> bytes:
    sealed = seal(
        secret.encode("ascii"), object_id=user_id, kind=TOTP_KIND, kek=vault.keys.current()
    )
    return pack(sealed)


def _open_totp_secret(vault: Vault, user_id: str, stored: bytes) -> str:
    sealed = unpack(stored)
    secret = open_blob(
        sealed.blob, sealed.wrapped_dek, object_id=user_id, kind=TOTP_KIND, keys=vault.keys
    )
    return secret.decode("ascii")


def _totp_check(
    vault: Vault, user: User, code: str | None, now: datetime, *, consume: bool = True
) -> str:
    """"ok", "replayed" (valid but already used) or "wrong". A code accepted at sign-in
    (``consume``) never works again."""
    if not code or user.totp_secret_enc is None:
        return "wrong"
    secret = _open_totp_secret(vault, user.id, user.totp_secret_enc)
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - TOTP_VALID_WINDOW, current + TOTP_VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code.strip()[:10]):
            if user.totp_last_step is not None and step <= user.totp_last_step:
                return "replayed"  # this code (or a later one) was already used
            if consume:
                user.totp_last_step = step
            return "ok"
    return "wrong"


def _totp_ok(
    vault: Vault, user: User, code: str | None, now: datetime, *, consume: bool = True
) -> bool:
    return _totp_check(vault, user, code, now, consume=consume) == "ok"


# --- passwords and TOTP ------------------------------------------------------------


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


def urlsafe_token(vault: Vault) -> str:
    """A new 256-bit secret for a link, URL-safe."""
    return _urlsafe(vault.tokens.secret(32))


def password_matches(stored: str | None, password: str) -> bool:
    """Argon2 check of ``password`` against a stored hash (None never matches)."""
    return _password_ok(stored, password)


def confirm_pending_totp(vault: Vault, user: User, code: str, now: datetime) -> bool:
    """Inside the caller's transaction: confirm the user's pending TOTP secret with ``code``
    (the code is spent, so it cannot also be used to sign in)."""
    if user.totp_secret_enc is None or user.totp_confirmed:
        return False
    user.totp_last_step = None
    if not _totp_ok(vault, user, code, now):
        return False
    user.totp_confirmed = True
    return True


def _user(session: Session, user_id: str, *, for_update: bool = False) -> User:
    query = select(User).where(User.id == user_id)
    user = session.scalars(query.with_for_update() if for_update else query).first()
    if user is None:
        raise NotFound(f"there is no user {user_id}")
    return user


def begin_totp_enrolment(vault: Vault, user_id: str) -> TotpEnrolment:
    """A new TOTP secret for ``user_id``, stored sealed and pending until :func:`confirm_totp`.

    Starting again replaces a pending secret; a confirmed one is never replaced here
    (that would let whoever holds a password alone swap the second factor).
    """
    secret = pyotp.random_base32()
    with vault.sessions.begin() as session:
        user = _user(session, user_id, for_update=True)
        if user.totp_confirmed and user.totp_secret_enc is not None:
            raise AccessDenied("two-step sign-in is already set up for this account")
        user.totp_secret_enc = _seal_totp_secret(vault, user.id, secret)
        user.totp_confirmed = False
        _audit(
            session,
            vault,
            actor=_actor_of(user).audit_name,
            action=TOTP_ENROL,
            object=f"user:{user.id}",
            outcome=Outcome.DONE,
            reason="secret issued, awaiting confirmation",
        )
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)
    qr_svg = segno.make(uri, error="m").svg_inline(scale=4)
    return TotpEnrolment(secret=secret, uri=uri, qr_svg=str(qr_svg))


def confirm_totp(vault: Vault, user_id: str, code: str) -> bool:
    """True, and the pending secret becomes required at sign-in, when ``code`` is valid now."""
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        user = _user(session, user_id, for_update=True)
        if user.totp_secret_enc is None:
            raise NotFound("no two-step sign-in setup is pending for this account")
        # Confirming proves the app works; the code is not spent, so signing in right after works.
        valid = _totp_ok(vault, user, code, now, consume=False)
        if valid:
            user.totp_confirmed = True
        _audit(
            session,
            vault,
            actor=_actor_of(user).audit_name,
            action=TOTP_CONFIRM,
            object=f"user:{user.id}",
            outcome=Outcome.DONE if valid else Outcome.FAILED,
            reason=None if valid else "wrong code",
        )
    return valid


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


# --- API tokens --------------------------------------------------------------------


def issue_api_token(
    vault: Vault,
    *,
    actor: Actor,
    scopes: frozenset[str] | set[str] = API_SCOPES,
    ttl: timedelta = DEFAULT_API_TTL,
) -> IssuedToken:
    """A bearer token for ``actor``: shown once, only its SHA-256 is kept."""
    if ttl <= timedelta(0):
        raise ConfigError("an API token must live for a positive time")
    unknown = set(scopes) - API_SCOPES
    if unknown or not scopes:
        raise ConfigError(
            f"unknown or missing scopes {sorted(unknown)}; choose from {sorted(API_SCOPES)}"
        )
    token = API_TOKEN_PREFIX + _urlsafe(vault.tokens.secret(32))
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        user = _user(session, actor.id)
        if user.disabled:
            raise AccessDenied("this account is disabled")
        row = ApiToken(
            id=vault.tokens.new_id(),
            user_id=user.id,
            token_hash=_sha256(token),
            scopes=",".join(sorted(scopes)),
            created_at=now,
            expires_at=now + ttl,
            revoked_at=None,
        )
        session.add(row)
        _audit(
            session,
            vault,
            actor=actor.audit_name,
            action=TOKEN_ISSUE,
            object=f"api-token:{row.id}",
            outcome=Outcome.DONE,
            reason=f"scopes {row.scopes}; expires {row.expires_at:%Y-%m-%d %H:%M} UTC",
        )
    return IssuedToken(token, int(ttl.total_seconds()), row.id)


def actor_for_api_token(vault: Vault, token: str) -> Actor:
    """Who holds ``token``; an unknown, expired or revoked token (or a disabled user's)
    raises :class:`AuthenticationFailed`."""
    return token_holder(vault, token)[0]


def token_holder(vault: Vault, token: str) -> tuple[Actor, frozenset[str]]:
    """Who holds ``token`` and the scopes it was issued with."""
    if not token.startswith(API_TOKEN_PREFIX):
        raise AuthenticationFailed(INVALID_TOKEN)
    now = vault.clock.now()
    with vault.reading() as session:
        row = session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == _sha256(token))
        ).first()
        if row is None:
            raise AuthenticationFailed(INVALID_TOKEN)
        api_token, user = row[0], row[1]
        if api_token.revoked_at is not None or api_token.expires_at <= now or user.disabled:
            raise AuthenticationFailed(INVALID_TOKEN)
        return _actor_of(user), frozenset(x for x in api_token.scopes.split(",") if x)


def revoke_api_token(vault: Vault, *, actor: Actor, token_id: str) -> None:
    """End a token now. Its owner or an administrator may; revoking twice is not an error."""
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        row = session.get(ApiToken, token_id, with_for_update=True)
        if row is None:
            raise NotFound(f"there is no API token {token_id}")
        decision = decide_token_revocation(actor, owner_id=row.user_id)
        if not decision.allowed:
            raise AccessDenied(decision.reason)
        if row.revoked_at is None:
            row.revoked_at = now
        _audit(
            session,
            vault,
            actor=actor.audit_name,
            action=TOKEN_REVOKE,
            object=f"api-token:{row.id}",
            outcome=Outcome.DONE,
        )


# --- web sessions ------------------------------------------------------------------


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


# --- the first administrator -------------------------------------------------------


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
    "API_TOKEN_PREFIX",
    "SESSION_ABSOLUTE_TIMEOUT",
    "SESSION_IDLE_TIMEOUT",
    "AccountLocked",
    "AuthenticationFailed",
    "IssuedToken",
    "NewSession",
    "SessionInfo",
    "SignIn",
    "TotpEnrolment",
    "actor_for_api_token",
    "actor_for_session",
    "authenticate",
    "begin_totp_enrolment",
    "change_password",
    "confirm_totp",
    "create_setup_token",
    "end_session",
    "issue_api_token",
    "revoke_api_token",
    "start_session",
    "use_setup_token",
]
