"""The life cycle of an account, as a clinic runs it: list, create with a set-up link,
disable and enable, unlock, reset the password or the second factor by a one-time link.

>>> made = create_account(vault, actor=admin, role=Role.CLINICIAN,
...                       email="lee@clinic.example", name="Dr Lee")      # doctest: +SKIP
>>> made.link_token       # hand over /account/<token>: Dr Lee chooses a password, enrols TOTP

An administrator never chooses or learns a password: the account's owner sets it
through the link, which works once and expires (``account_link_hours``). Every
action is audited with who did it; every decision is
:func:`skinvault.policy.decide.decide_account_management`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from skinvault.actors import NEEDS_TOTP, Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import AccountLink, User
from skinvault.errors import AccessDenied, AuthenticationFailed, ConfigError, NotFound
from skinvault.policy.decide import decide_account_management
from skinvault.services import credentials, signin, totp
from skinvault.services import signin_limits as limits_mod
from skinvault.services.admin import create_user
from skinvault.services.passwords import HASHER, MAX_PASSWORD_LENGTH, problem_with

INVALID_LINK = "this account link is invalid, expired or already used; ask your administrator"


class LinkKind(StrEnum):
    """What a one-time account link lets its holder do."""

    SETUP = "setup"  # choose the first password (and enrol TOTP where the role needs it)
    RESET_PASSWORD = "reset-password"  # choose a new password
    RESET_TOTP = "reset-totp"  # enrol a new authenticator (the password is still asked)


LINK_TITLES = {
    LinkKind.SETUP: "Set up your account",
    LinkKind.RESET_PASSWORD: "Choose a new password",
    LinkKind.RESET_TOTP: "Set up two-step sign-in again",
}


@dataclass(frozen=True)
class UserRow:
    id: str
    email: str
    name: str
    role: Role
    disabled: bool
    locked: bool
    second_factor: str  # "set up", "not set up", "not needed"
    last_sign_in: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class NewAccount:
    user_id: str
    patient_id: str | None
    link_token: str

    def __repr__(self) -> str:
        return f"NewAccount(user_id={self.user_id!r})"


@dataclass(frozen=True)
class LinkInfo:
    kind: LinkKind
    email: str
    role: Role
    needs_password: bool  # a new password is chosen
    asks_current_password: bool  # the current one is checked (TOTP reset)
    needs_totp: bool
    expires_at: datetime


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _authorize(actor: Actor, target_id: str, action: str) -> None:
    decision = decide_account_management(actor, target_id=target_id, action=action)
    if not decision.allowed:
        raise AccessDenied(decision.reason)


def _audit(  # noqa: PLR0917
    session: Session,
    vault: Vault,
    actor: Actor,
    action: Action,
    target: str,
    reason: str | None = None,
    outcome: Outcome = Outcome.DONE,
) -> None:
    record(
        session,
        clock=vault.clock,
        actor=actor.audit_name,
        action=action,
        object=f"user:{target}",
        outcome=outcome,
        reason=reason,
    )


def _user(session: Session, user_id: str) -> User:
    user = session.scalars(select(User).where(User.id == user_id).with_for_update()).first()
    if user is None:
        raise NotFound(f"there is no user {user_id}")
    return user


# --- reading ---------------------------------------------------------------------------


def list_users(vault: Vault, *, actor: Actor) -> list[UserRow]:
    """Every account, for the administrator's user list (newest first)."""
    _authorize(actor, "", "list")
    now = vault.clock.now()
    limits = limits_mod.Limits.of(vault.settings)
    with vault.reading() as session:
        users = list(session.scalars(select(User).order_by(User.created_at.desc())))
        rows = []
        for u in users:
            role = Role(u.role)
            if role not in NEEDS_TOTP:
                factor = "not needed"
            else:
                factor = "set up" if u.totp_confirmed and u.totp_secret_enc else "not set up"
            rows.append(
                UserRow(
                    id=u.id,
                    email=u.email,
                    name=u.display_name,
                    role=role,
                    disabled=bool(u.disabled),
                    locked=limits_mod.is_locked_anywhere(session, limits, u.email, now),
                    second_factor=factor,
                    last_sign_in=u.last_login_at,
                    created_at=u.created_at,
                )
            )
    return rows


def find_user(vault: Vault, *, actor: Actor, who: str) -> str:
    """A user id from an id or an e-mail address (for the CLI)."""
    _authorize(actor, "", "list")
    with vault.reading() as session:
        user = session.scalars(
            select(User).where((User.id == who) | (User.email == who.strip().lower()))
        ).first()
        if user is None:
            raise NotFound(f"there is no user {who}")
        return user.id


# --- account links ---------------------------------------------------------------------


def issue_link(vault: Vault, *, actor: Actor, user_id: str, kind: LinkKind) -> str:
    """A one-time link token for ``user_id``; earlier unused links of the user end."""
    _authorize(actor, user_id, kind.value)
    token = credentials.urlsafe_token(vault)
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        user = _user(session, user_id)
        _issue(session, vault, actor, user, kind, token, now)
    return token


def _issue(  # noqa: PLR0917 (one private helper of three public callers)
    session: Session,
    vault: Vault,
    actor: Actor,
    user: User,
    kind: LinkKind,
    token: str,
    now: datetime,
) -> None:
    session.execute(
        update(AccountLink)
        .where(AccountLink.user_id == user.id, AccountLink.used_at.is_(None))
        .values(used_at=now)
    )
    expires = now + timedelta(hours=vault.settings.account_link_hours)
    session.add(
        AccountLink(
            token_hash=_sha256(token),
            user_id=user.id,
            kind=kind.value,
            created_by=actor.audit_name[:200],
            created_at=now,
            expires_at=expires,
            used_at=None,
        )
    )
    _audit(
        session,
        vault,
        actor,
        Action.ACCOUNT_LINK_ISSUE,
        user.id,
        f"{kind.value} link, valid until {expires:%Y-%m-%d %H:%M} UTC",
    )


def _live_link(session: Session, token: str, now: datetime) -> tuple[AccountLink, User]:
    row = session.execute(
        select(AccountLink, User)
        .join(User, User.id == AccountLink.user_id)
        .where(AccountLink.token_hash == _sha256(token))
    ).first()
    if row is None:
        raise AuthenticationFailed(INVALID_LINK)
    link, user = row[0], row[1]
    if link.used_at is not None or link.expires_at <= now or user.disabled:
        raise AuthenticationFailed(INVALID_LINK)
    return link, user


def _info(link: AccountLink, user: User) -> LinkInfo:
    kind, role = LinkKind(link.kind), Role(user.role)
    return LinkInfo(
        kind=kind,
        email=user.email,
        role=role,
        needs_password=kind in (LinkKind.SETUP, LinkKind.RESET_PASSWORD),
        asks_current_password=kind is LinkKind.RESET_TOTP,
        needs_totp=role in NEEDS_TOTP and kind in (LinkKind.SETUP, LinkKind.RESET_TOTP),
        expires_at=link.expires_at,
    )


def link_info(vault: Vault, token: str) -> LinkInfo:
    """What the link is for, or :class:`AuthenticationFailed` when it no longer works."""
    with vault.reading() as session:
        return _info(*_live_link(session, token, vault.clock.now()))


def begin_link_enrolment(vault: Vault, token: str) -> totp.TotpEnrolment:
    """A fresh TOTP secret for the link's account, pending until :func:`use_link`."""
    with vault.reading() as session:
        link, user = _live_link(session, token, vault.clock.now())
        info, user_id = _info(link, user), user.id
    if not info.needs_totp:
        raise ConfigError("this link does not set up two-step sign-in")
    return totp.begin_totp_enrolment(vault, user_id)


def use_link(
    vault: Vault,
    token: str,
    *,
    password: str | None = None,
    current_password: str | None = None,
    code: str | None = None,
) -> Actor:
    """Do what the link is for, all or nothing: set the password, confirm the TOTP code,
    end every session and API token of the account; the link is then spent."""
    now = vault.clock.now()
    with vault.reading() as session:
        link, user = _live_link(session, token, now)
        info, user_id, stored = _info(link, user), user.id, user.password_hash
    fresh = None
    if info.needs_password:
        problem = problem_with(password or "", email=info.email)
        if problem:
            raise ConfigError(problem)
        assert password is not None
        fresh = HASHER.hash(password)  # outside the write transaction
    if info.asks_current_password and not signin.password_matches(
        stored, (current_password or "")[:MAX_PASSWORD_LENGTH]
    ):
        raise AuthenticationFailed("the current password is wrong")
    with vault.sessions.begin() as session:
        link, user = _live_link(session, token, now)
        if user.id != user_id or user.password_hash != stored:
            raise AuthenticationFailed(INVALID_LINK)
        if info.needs_totp and not totp.confirm_pending_totp(vault, user, code or "", now):
            raise AuthenticationFailed(
                "that code did not match; check the time on your phone and try the next code"
            )
        if fresh is not None:
            user.password_hash = fresh
        link.used_at = now
        signin.revoke_everything(session, user.id, now)
        actor = Actor(user.id, Role(user.role), user.display_name)
        _audit(session, vault, actor, Action.ACCOUNT_LINK_USE, user.id, f"{info.kind.value} done")
    return actor


# --- administration --------------------------------------------------------------------


def create_account(
    vault: Vault, *, actor: Actor, role: Role, email: str, name: str = ""
) -> NewAccount:
    """A new account without a password, and the set-up link its owner opens to choose one
    (and to enrol the second factor where the role needs one)."""
    _authorize(actor, "", "create")
    made = create_user(vault, role=role, email=email, password=None, actor=actor, name=name)
    token = issue_link(vault, actor=actor, user_id=made.user_id, kind=LinkKind.SETUP)
    return NewAccount(made.user_id, made.patient_id, token)


def set_disabled(vault: Vault, *, actor: Actor, user_id: str, disabled: bool) -> None:
    """Disable (a leaver: every session and token ends at once) or enable an account."""
    _authorize(actor, user_id, "disable" if disabled else "enable")
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        user = _user(session, user_id)
        user.disabled = disabled
        if disabled:
            signin.revoke_everything(session, user.id, now)
        _audit(
            session,
            vault,
            actor,
            Action.USER_DISABLE if disabled else Action.USER_ENABLE,
            user.id,
            "sessions and API tokens ended" if disabled else None,
        )


def unlock(vault: Vault, *, actor: Actor, user_id: str) -> int:
    """Forget the account's failed sign-ins from every address; how many were forgotten."""
    _authorize(actor, user_id, "unlock")
    with vault.sessions.begin() as session:
        user = _user(session, user_id)
        forgotten = limits_mod.clear_account(session, user.email)
        _audit(session, vault, actor, Action.USER_UNLOCK, user.id, f"{forgotten} failures cleared")
    return forgotten


def reset_password(vault: Vault, *, actor: Actor, user_id: str) -> str:
    """A one-time link with which the owner chooses a new password. The old password keeps
    working until then (a reset link sent to the wrong person must not lock the owner out)."""
    _authorize(actor, user_id, "reset-password")
    token = credentials.urlsafe_token(vault)
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        user = _user(session, user_id)
        _audit(session, vault, actor, Action.USER_RESET_PASSWORD, user.id, "link issued")
        _issue(session, vault, actor, user, LinkKind.RESET_PASSWORD, token, now)
    return token


def reset_second_factor(vault: Vault, *, actor: Actor, user_id: str) -> str:
    """Clear the account's authenticator (a lost phone): its sessions and tokens end, and it
    must re-enrol through the returned one-time link (which also asks for the password)."""
    _authorize(actor, user_id, "reset-totp")
    token = credentials.urlsafe_token(vault)
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        user = _user(session, user_id)
        if Role(user.role) not in NEEDS_TOTP:
            raise ConfigError("this account's role does not use two-step sign-in")
        user.totp_secret_enc = None
        user.totp_confirmed = False
        user.totp_last_step = None
        signin.revoke_everything(session, user.id, now)
        _audit(
            session, vault, actor, Action.USER_RESET_TOTP, user.id, "authenticator cleared"
        )
        kind = LinkKind.RESET_TOTP if user.password_hash else LinkKind.SETUP
        _issue(session, vault, actor, user, kind, token, now)
    return token
