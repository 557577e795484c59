"""Share links: a patient (or their care team) sends one photo to someone outside the vault.

    >>> link = create_share_link(vault, photo_id=p, actor=ann, recipient="gp@surgery.example",
    ...                          expires_in=timedelta(days=2))              # doctest: +SKIP
    >>> link_status(vault, link.token).state                                # doctest: +SKIP
    'ok'
    >>> open_share_link(vault, token=link.token).media_type                 # doctest: +SKIP
    'image/jpeg'
    >>> open_share_link(vault, token=link.token)                            # doctest: +SKIP
    Traceback (most recent call last):
    LinkUnavailable: this link has already been used

Creating a link is a policy decision (``Access.SHARE``), like any read. The
token is 32 random bytes, shown once; only its SHA-256 is stored, so a copy of
the database opens nothing. A single-use link is consumed by a conditional
``UPDATE … WHERE used_at IS NULL`` in the same transaction as its audit event:
of two concurrent opens exactly one changes the row, and only that one gets
bytes. Every open, refusal and withdrawal is audited against ``photo:<id>``,
so the patient's access history shows it.

This module owns the link's lifecycle: creating it, its status, withdrawing and
reissuing it, and the patient's sent log. Opening a link, with its guards (password
tries, the per-address limit, consumption), is :mod:`skinvault.services.share_open`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import Patient, Photo, ShareLink
from skinvault.errors import (
    AccessDenied,
    ConfigError,
    LinkUnavailable,
    NotFound,
    RequestInvalid,
    SkinvaultError,
)
from skinvault.policy.decide import Access, decide_link_revocation
from skinvault.policy.purposes import Purpose

# The fact-gathering for decide() lives in photos; sharing must decide on exactly the same facts.
from skinvault.services.passwords import HASHER
from skinvault.services.photo_policy import parse_purpose, photo_decision

MIN_LIFETIME = timedelta(minutes=5)
MAX_LIFETIME = timedelta(days=30)
_TOKEN_BYTES = 32
_MAX_RECIPIENT = 320


LINK_REVOKE = Action.SHARE_LINK_REVOKE

State = Literal["ok", "expired", "revoked", "used", "deleted", "locked", "missing"]


@dataclass(frozen=True)
class NewLink:
    """The only moment the token exists outside the recipient's hands: show it once."""

    id: str
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class LinkStatus:
    """What the landing page may say before anything is opened (no bytes, nothing consumed)."""

    state: State
    recipient: str | None
    expires_at: datetime | None
    needs_password: bool


@dataclass(frozen=True)
class SentEntry:
    """One line of the patient's "sent" log."""

    link_id: str
    photo_id: str
    recipient: str
    created_at: datetime
    expires_at: datetime
    state: State
    opened_at: datetime | None
    channel: str = "link"
    #: Wrong passwords tried so far (the link locks at ``share_link_password_tries``).
    wrong_passwords: int = 0


def token_hash_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _when(moment: datetime) -> str:
    return f"{moment:%d %B %Y at %H:%M:%S} UTC".lstrip("0")


def link_state(link: ShareLink, photo: Photo | None, now: datetime) -> State:
    if link.revoked_at is not None:
        return "revoked"
    if photo is None or photo.deleted_at is not None or photo.wrapped_dek is None:
        return "deleted"
    if link.single_use and link.used_at is not None:
        return "used"
    if link.locked_at is not None:
        return "locked"
    if now >= link.expires_at:
        return "expired"
    return "ok"


def refusal_text(link: ShareLink, state: State) -> str:
    return {
        "revoked": "this link was withdrawn by the sender",
        "deleted": "the photo behind this link has been deleted",
        "expired": f"this link expired on {_when(link.expires_at)}",
        "used": "this link has already been used",
    }.get(state, "this link cannot be opened")


def audit_apart(
    vault: Vault, *, actor: str, action: Action, obj: str, outcome: Outcome, reason: str
) -> None:
    """Record an attempt in its own transaction (the attempt's own work rolled back)."""
    with vault.sessions.begin() as session:
        record(
            session,
            clock=vault.clock,
            actor=actor,
            action=action,
            object=obj,
            outcome=outcome,
            reason=reason,
        )


def create_share_link(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    recipient: str,
    expires_in: timedelta,
    single_use: bool = True,
    password: str | None = None,
    purpose: str = "care",
) -> NewLink:
    """A link to one photo for ``recipient``, if the policy lets ``actor`` share it."""
    obj = f"photo:{photo_id}"
    recipient = recipient.strip()
    if not recipient or len(recipient) > _MAX_RECIPIENT:
        raise ConfigError(f"name the recipient in 1 to {_MAX_RECIPIENT} characters")
    if not MIN_LIFETIME <= expires_in <= MAX_LIFETIME:
        raise ConfigError(
            "a share link must last between 5 minutes and 30 days;"
            f" {expires_in} is outside that range"
        )
    if password is not None and not password:
        raise ConfigError("a link password cannot be empty; leave it out for no password")
    token = base64.urlsafe_b64encode(vault.tokens.secret(_TOKEN_BYTES)).rstrip(b"=").decode()
    password_hash = HASHER.hash(password) if password is not None else None
    try:
        chosen = parse_purpose(purpose)
        with vault.sessions.begin() as session:
            photo = session.get(Photo, photo_id)
            if photo is None or photo.deleted_at is not None:
                raise NotFound(f"there is no photo {photo_id}")
            decision = photo_decision(
                session,
                vault,
                photo,
                actor=actor,
                access=Access.SHARE,
                purpose=chosen,
                break_glass_reason=None,  # an emergency is a reason to look, never to send
            )
            if not decision.allowed:
                record(
                    session,
                    clock=vault.clock,
                    actor=actor.audit_name,
                    action=Action.PHOTO_SHARE,
                    object=obj,
                    outcome=Outcome.DENIED,
                    purpose=chosen.value,
                    reason=decision.reason,
                )
                denied: AccessDenied | None = AccessDenied(decision.reason)
                new = None
            else:
                denied = None
                now = vault.clock.now()
                link = ShareLink(
                    id=vault.tokens.new_id(),
                    photo_id=photo_id,
                    recipient=recipient,
                    token_hash=token_hash_of(token),
                    created_at=now,
                    created_by=actor.id if actor.role else None,
                    expires_at=now + expires_in,
                    single_use=single_use,
                    used_at=None,
                    password_hash=password_hash,
                    revoked_at=None,
                )
                session.add(link)
                session.flush()
                record(
                    session,
                    clock=vault.clock,
                    actor=actor.audit_name,
                    action=Action.PHOTO_SHARE,
                    object=obj,
                    outcome=Outcome.DONE,
                    purpose=chosen.value,
                    reason=f"to {recipient}, expires {link.expires_at.isoformat()}",
                )
                new = NewLink(link.id, token, link.expires_at)
    except SkinvaultError as exc:
        if not isinstance(exc, AccessDenied):
            audit_apart(
                vault,
                actor=actor.audit_name,
                action=Action.PHOTO_SHARE,
                obj=obj,
                outcome=Outcome.FAILED,
                reason=str(exc),
            )
        raise
    if denied is not None:
        raise denied  # the refusal is committed to the audit log first
    assert new is not None
    return new


def link_status(vault: Vault, token: str) -> LinkStatus:
    """What the recipient's landing page shows before opening; consumes nothing, not audited."""
    with vault.reading() as session:
        link = session.scalars(
            select(ShareLink).where(ShareLink.token_hash == token_hash_of(token))
        ).first()
        if link is None:
            return LinkStatus("missing", None, None, needs_password=False)
        photo = session.get(Photo, link.photo_id)
        return LinkStatus(
            link_state(link, photo, vault.clock.now()),
            link.recipient,
            link.expires_at,
            needs_password=link.password_hash is not None,
        )


def revoke_share_link(vault: Vault, *, link_id: str, actor: Actor) -> None:
    """Withdraw a link, as :func:`~skinvault.policy.decide.decide_link_revocation` allows.

    Revoking twice is a no-op.
    """
    with vault.sessions.begin() as session:
        link = session.get(ShareLink, link_id)
        if link is None:
            raise NotFound(f"there is no share link {link_id}")
        obj = f"photo:{link.photo_id}"
        photo = session.get(Photo, link.photo_id)
        patient = session.get(Patient, photo.patient_id) if photo is not None else None
        decision = decide_link_revocation(
            actor,
            sender_id=link.created_by,
            patient_user_id=patient.user_id if patient is not None else None,
        )
        if not decision.allowed:
            reason = decision.reason
            record(
                session,
                clock=vault.clock,
                actor=actor.audit_name,
                action=LINK_REVOKE,
                object=obj,
                outcome=Outcome.DENIED,
                reason=reason,
            )
            denied: AccessDenied | None = AccessDenied(reason)
        else:
            denied = None
            if link.revoked_at is None:
                link.revoked_at = vault.clock.now()
                record(
                    session,
                    clock=vault.clock,
                    actor=actor.audit_name,
                    action=LINK_REVOKE,
                    object=obj,
                    outcome=Outcome.DONE,
                    reason=f"withdrew the link sent to {link.recipient}",
                )
    if denied is not None:
        raise denied


def reissue_share_link(
    vault: Vault, *, link_id: str, actor: Actor, expires_in: timedelta | None = None
) -> NewLink:
    """A new link in place of a locked (or expired) one: same photo, recipient, password
    and single use; a fresh token and lifetime (``expires_in``, by default the old link's).
    The old link is withdrawn. Allowed to whoever may withdraw the old link *and* may share
    the photo now; a withdrawn, used or deleted link cannot be reissued.
    """
    token = base64.urlsafe_b64encode(vault.tokens.secret(_TOKEN_BYTES)).rstrip(b"=").decode()
    with vault.sessions.begin() as session:
        old = session.get(ShareLink, link_id)
        if old is None:
            raise NotFound(f"there is no share link {link_id}")
        obj = f"photo:{old.photo_id}"
        photo = session.get(Photo, old.photo_id)
        patient = session.get(Patient, photo.patient_id) if photo is not None else None
        now = vault.clock.now()
        state = link_state(old, photo, now)
        if state not in ("locked", "expired"):
            raise RequestInvalid(
                f"only a locked or expired link can be reissued; this one is {state}"
            )
        assert photo is not None
        may_revoke = decide_link_revocation(
            actor,
            sender_id=old.created_by,
            patient_user_id=patient.user_id if patient is not None else None,
        )
        decision = (
            photo_decision(
                session,
                vault,
                photo,
                actor=actor,
                access=Access.SHARE,
                purpose=Purpose.CARE,
                break_glass_reason=None,
            )
            if may_revoke.allowed
            else may_revoke
        )
        if not decision.allowed:
            record(
                session,
                clock=vault.clock,
                actor=actor.audit_name,
                action=Action.PHOTO_SHARE,
                object=obj,
                outcome=Outcome.DENIED,
                purpose=Purpose.CARE.value,
                reason=f"reissue of link {old.id} refused: {decision.reason}",
            )
            denied: AccessDenied | None = AccessDenied(decision.reason)
            new = None
        else:
            denied = None
            lifetime = expires_in or (old.expires_at - old.created_at)
            lifetime = min(max(lifetime, MIN_LIFETIME), MAX_LIFETIME)
            link = ShareLink(
                id=vault.tokens.new_id(),
                photo_id=old.photo_id,
                recipient=old.recipient,
                token_hash=token_hash_of(token),
                created_at=now,
                created_by=actor.id if actor.role else old.created_by,
                expires_at=now + lifetime,
                single_use=old.single_use,
                used_at=None,
                password_hash=old.password_hash,
                revoked_at=None,
                password_tries=0,
                locked_at=None,
            )
            session.add(link)
            old.revoked_at = now
            session.flush()
            record(
                session,
                clock=vault.clock,
                actor=actor.audit_name,
                action=LINK_REVOKE,
                object=obj,
                outcome=Outcome.DONE,
                reason=f"withdrew the {state} link sent to {old.recipient}, to reissue it",
            )
            record(
                session,
                clock=vault.clock,
                actor=actor.audit_name,
                action=Action.PHOTO_SHARE,
                object=obj,
                outcome=Outcome.DONE,
                purpose=Purpose.CARE.value,
                reason=(
                    f"reissued link {old.id} to {old.recipient} as {link.id},"
                    f" expires {link.expires_at.isoformat()}"
                ),
            )
            new = NewLink(link.id, token, link.expires_at)
    if denied is not None:
        raise denied  # the refusal is committed to the audit log first
    assert new is not None
    return new


def sent_log(vault: Vault, patient_id: str) -> list[SentEntry]:
    """Every link to the patient's photos, whoever sent it, oldest first."""
    with vault.reading() as session:
        if session.get(Patient, patient_id) is None:
            raise NotFound(f"there is no patient {patient_id}")
        now = vault.clock.now()
        rows = session.execute(
            select(ShareLink, Photo)
            .join(Photo, Photo.id == ShareLink.photo_id)
            .where(Photo.patient_id == patient_id)
            .order_by(ShareLink.created_at, ShareLink.id)
        ).all()
        return [
            SentEntry(
                link_id=link.id,
                photo_id=link.photo_id,
                recipient=link.recipient,
                created_at=link.created_at,
                expires_at=link.expires_at,
                state=link_state(link, photo, now),
                opened_at=link.used_at,
                wrong_passwords=link.password_tries,
            )
            for link, photo in rows
        ]


__all__ = [
    "MAX_LIFETIME",
    "MIN_LIFETIME",
    "LinkStatus",
    "LinkUnavailable",
    "NewLink",
    "SentEntry",
    "create_share_link",
    "link_status",
    "reissue_share_link",
    "revoke_share_link",
    "sent_log",
]
