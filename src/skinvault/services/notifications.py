"""Notifications that carry no health information: in the portal, and by e-mail if on.

    >>> with vault.sessions.begin() as session:                     # inside a service
    ...     notify_patient(session, vault, patient_id=p, kind=Kind.PHOTO_ASKED,
    ...                    ref=f"photo-request:{rid}")              # doctest: +SKIP
    >>> unread_count(vault, user_id=ann.id)                          # doctest: +SKIP
    1
    >>> [n.text for n in notifications_for(vault, user_id=ann.id)]   # doctest: +SKIP
    ['Your care team asked you for a photo.']

Each notice is created by the service that did the thing, in the same transaction (so
a rolled-back action leaves no notice), and holds only a kind from :class:`Kind`, an
outcome word, and the portal page where the thing is. Its text is written here, from
the kind alone: no body site, diagnosis, note, photo, clinician's name or token can get
into it because none is ever passed in. Per user and kind the delivery is ``off``,
``portal`` (the list only), ``immediate`` (also an e-mail) or ``digest`` (also an
e-mail at most once a day); e-mails say only "something new in the portal"
(:func:`skinvault.services.mailer.notice_mail`).

Some notices come from time passing, not from a request (an expired link, an ending
consent, a due photo or digest): :mod:`skinvault.services.notice_sweep` adds them. A
notice is kept once per user, kind and ``ref`` (a unique index), so sweeps may run in
several workers and as often as wanted.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skinvault.actors import Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import (
    CareRelationship,
    Notification,
    NotificationPreference,
    Patient,
    ShareLink,
    User,
)
from skinvault.errors import ConfigError, NotFound
from skinvault.services import mailer

log = logging.getLogger("skinvault.notifications")


class Kind(StrEnum):
    PHOTO_ASKED = "photo-asked"  # patient: a clinician asked for a photo
    PHOTO_ANSWERED = "photo-answered"  # clinician: the patient answered my request
    NEW_PHOTO = "new-photo"  # care team: a patient of mine added a photo
    DELETION_DECIDED = "deletion-decided"  # patient: my deletion request, with its outcome
    LINK_OPENED = "link-opened"  # sender
    LINK_LOCKED = "link-locked"  # sender: locked after wrong passwords
    LINK_EXPIRED = "link-expired"  # sender: expired without being opened
    EMERGENCY_ACCESS = "emergency-access"  # patient: break-glass access to my photos
    CONSENT_EXPIRING = "consent-expiring"  # patient
    PHOTO_DUE = "photo-due"  # patient: the next photo of a site I follow is due
    REVIEW_WAITING = "review-waiting"  # privacy officer: a break-glass case to review
    RETENTION_RUN = "retention-run"  # privacy officer: a retention run's result


class Delivery(StrEnum):
    OFF = "off"
    PORTAL = "portal"
    IMMEDIATE = "immediate"
    DIGEST = "digest"


#: The whole text of each kind. ``{outcome}`` is a word the service passes (a decision,
#: a count); nothing else is ever filled in.
TEXTS: dict[Kind, str] = {
    Kind.PHOTO_ASKED: "Your care team asked you for a photo.",
    Kind.PHOTO_ANSWERED: "A patient answered your photo request.",
    Kind.NEW_PHOTO: "A patient of your care team added a photo.",
    Kind.DELETION_DECIDED: "Your deletion request was decided: {outcome}.",
    Kind.LINK_OPENED: "A link you sent was opened.",
    Kind.LINK_LOCKED: "A link you sent was locked after too many wrong passwords.",
    Kind.LINK_EXPIRED: "A link you sent expired without being opened.",
    Kind.EMERGENCY_ACCESS: "Someone outside your care team opened your photos in an emergency.",
    Kind.CONSENT_EXPIRING: "One of your consents ends soon.",
    Kind.PHOTO_DUE: "The next photo of a place you follow is due.",
    Kind.REVIEW_WAITING: "An emergency access is waiting for your review.",
    Kind.RETENTION_RUN: "The retention run finished: {outcome}.",
}
#: Which kinds each role can receive (the preferences page shows these).
KINDS_FOR: dict[Role, tuple[Kind, ...]] = {
    Role.PATIENT: (
        Kind.PHOTO_ASKED,
        Kind.DELETION_DECIDED,
        Kind.LINK_OPENED,
        Kind.LINK_LOCKED,
        Kind.LINK_EXPIRED,
        Kind.EMERGENCY_ACCESS,
        Kind.CONSENT_EXPIRING,
        Kind.PHOTO_DUE,
    ),
    Role.CLINICIAN: (
        Kind.PHOTO_ANSWERED,
        Kind.NEW_PHOTO,
        Kind.LINK_OPENED,
        Kind.LINK_LOCKED,
        Kind.LINK_EXPIRED,
    ),
    Role.STAFF: (Kind.NEW_PHOTO, Kind.LINK_OPENED, Kind.LINK_LOCKED, Kind.LINK_EXPIRED),
    Role.ADMIN: (Kind.REVIEW_WAITING, Kind.RETENTION_RUN),
    Role.EDUCATOR: (),
    Role.RESEARCHER: (),
}
#: Kinds delivered differently until the user chooses: a photo reminder is the portal's
#: list only (an e-mail is the user's choice, not the default).
_KIND_DEFAULTS: dict[Kind, Delivery] = {Kind.PHOTO_DUE: Delivery.PORTAL}
_MAX_OUTCOME = 40
_LIST_LIMIT = 200


@dataclass(frozen=True)
class NotificationView:
    id: str
    kind: Kind
    text: str
    link: str
    created_at: datetime
    read: bool


#: Outcome words some services pass, in the words the reader gets.
_OUTCOMES = {
    "erase": "erased",
    "keep-clinical": "the clinical record is kept, every other use stops",
    "refuse": "refused",
}


def text_of(kind: Kind, outcome: str | None) -> str:
    return TEXTS[kind].format(outcome=_OUTCOMES.get(outcome or "", outcome or "see the page"))


def _delivery(session: Session, vault: Vault, user_id: str, kind: Kind) -> Delivery:
    chosen = session.get(NotificationPreference, (user_id, kind.value))
    if chosen is None:
        return _KIND_DEFAULTS.get(kind, Delivery(vault.settings.notification_default_delivery))
    return Delivery(chosen.delivery)


def notify(
    session: Session,
    vault: Vault,
    *,
    user_id: str,
    kind: Kind,
    ref: str,
    link: str,
    outcome: str | None = None,
) -> bool:
    """Tell ``user_id`` about ``kind`` (once per ``ref``), in the caller's transaction;
    returns whether a notice was added. An e-mail, if the user wants one now, goes to
    the outbox in the same transaction and is sent by the background worker."""
    delivery = _delivery(session, vault, user_id, kind)
    if delivery is Delivery.OFF:
        return False
    user = session.get(User, user_id)
    if user is None or user.disabled:
        return False
    mail = vault.settings.mail_enabled and delivery in (Delivery.IMMEDIATE, Delivery.DIGEST)
    row = Notification(
        id=vault.tokens.new_id(),
        user_id=user_id,
        kind=kind.value,
        outcome=outcome[:_MAX_OUTCOME] if outcome else None,
        link=link[:200],
        ref=ref[:120],
        created_at=vault.clock.now(),
        read_at=None,
        mail_state=(delivery.value if delivery is Delivery.DIGEST else "queued") if mail else None,
    )
    try:
        with session.begin_nested():  # a notice already there (a sweep elsewhere) is no error
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    if mail and delivery is Delivery.IMMEDIATE:
        mailer.queue(session, vault, to=user.email, mail=mailer.notice_mail(vault.settings))
    return True


def notify_patient(
    session: Session,
    vault: Vault,
    *,
    patient_id: str,
    kind: Kind,
    ref: str,
    link: str | None = None,
    outcome: str | None = None,
) -> bool:
    """:func:`notify` the patient's own account (a record without one gets nothing)."""
    patient = session.get(Patient, patient_id)
    if patient is None or patient.user_id is None:
        return False
    return notify(
        session,
        vault,
        user_id=patient.user_id,
        kind=kind,
        ref=ref,
        link=link or _PATIENT_PAGES[kind],
        outcome=outcome,
    )


def notify_care_team(
    session: Session, vault: Vault, *, patient_id: str, kind: Kind, ref: str, but: str | None = None
) -> int:
    """:func:`notify` every current care-team member of the patient (except ``but``)."""
    members = session.scalars(
        select(CareRelationship.clinician_id).where(
            CareRelationship.patient_id == patient_id, CareRelationship.until.is_(None)
        )
    ).all()
    link = f"/portal/patients/{patient_id}"
    return sum(
        notify(session, vault, user_id=m, kind=kind, ref=ref, link=link)
        for m in set(members)
        if m != but
    )


def notify_officers(
    session: Session, vault: Vault, *, kind: Kind, ref: str, link: str, outcome: str | None = None
) -> int:
    """:func:`notify` every privacy officer (today: every administrator)."""
    admins = session.scalars(
        select(User.id).where(User.role == Role.ADMIN.value, User.disabled.is_(False))
    ).all()
    return sum(
        notify(session, vault, user_id=a, kind=kind, ref=ref, link=link, outcome=outcome)
        for a in admins
    )


def notify_sender(
    session: Session, vault: Vault, *, link: ShareLink, kind: Kind, ref: str | None = None
) -> bool:
    """:func:`notify` whoever made the share link (a patient or a clinician)."""
    if link.created_by is None:
        return False
    sender = session.get(User, link.created_by)
    page = (
        "/portal/sent"
        if sender is not None and sender.role == Role.PATIENT.value
        else (f"/portal/photos/{link.photo_id}")
    )
    return notify(
        session,
        vault,
        user_id=link.created_by,
        kind=kind,
        ref=ref or f"share-link:{link.id}",
        link=page,
    )


_PATIENT_PAGES: dict[Kind, str] = {
    Kind.PHOTO_ASKED: "/portal",
    Kind.DELETION_DECIDED: "/portal/deletion",
    Kind.LINK_OPENED: "/portal/sent",
    Kind.LINK_LOCKED: "/portal/sent",
    Kind.LINK_EXPIRED: "/portal/sent",
    Kind.EMERGENCY_ACCESS: "/portal/history",
    Kind.CONSENT_EXPIRING: "/portal/consents",
    Kind.PHOTO_DUE: "/portal",
}


# --- the user's list ------------------------------------------------------------------


def _view(row: Notification) -> NotificationView:
    kind = Kind(row.kind)
    return NotificationView(
        row.id, kind, text_of(kind, row.outcome), row.link, row.created_at, row.read_at is not None
    )


def notifications_for(vault: Vault, *, user_id: str) -> list[NotificationView]:
    """The user's notices, newest first (the latest 200)."""
    with vault.reading() as session:
        rows = session.scalars(
            select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(Notification.created_at.desc(), Notification.id)
            .limit(_LIST_LIMIT)
        ).all()
        return [_view(r) for r in rows]


def unread_count(vault: Vault, *, user_id: str) -> int:
    with vault.reading() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.user_id == user_id, Notification.read_at.is_(None))
            )
            or 0
        )


def mark_read(vault: Vault, *, actor: Actor, notification_id: str | None = None) -> str | None:
    """Mark one of the actor's notices read (or all, with no id); returns its page. Another
    user's notice is "not found", the same as one that never existed."""
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        if notification_id is None:
            session.execute(
                update(Notification)
                .where(Notification.user_id == actor.id, Notification.read_at.is_(None))
                .values(read_at=now)
            )
            return None
        row = session.get(Notification, notification_id)
        if row is None or row.user_id != actor.id:
            raise NotFound("there is no such notification")
        if row.read_at is None:
            row.read_at = now
        return row.link


def preferences(vault: Vault, *, actor: Actor) -> dict[Kind, Delivery]:
    """The actor's delivery per kind their role receives (defaults filled in)."""
    kinds = KINDS_FOR.get(actor.role, ()) if actor.role else ()
    with vault.reading() as session:
        chosen = {
            p.kind: p.delivery
            for p in session.scalars(
                select(NotificationPreference).where(NotificationPreference.user_id == actor.id)
            )
        }
    default = Delivery(vault.settings.notification_default_delivery)
    return {
        k: Delivery(chosen[k.value]) if k.value in chosen else _KIND_DEFAULTS.get(k, default)
        for k in kinds
    }


def set_preferences(vault: Vault, *, actor: Actor, choices: dict[str, str]) -> dict[Kind, Delivery]:
    """Store the actor's choices (kind -> delivery); unknown kinds or values are refused."""
    allowed = set(KINDS_FOR.get(actor.role, ()) if actor.role else ())
    parsed: dict[Kind, Delivery] = {}
    for key, value in choices.items():
        try:
            kind, delivery = Kind(key), Delivery(value)
        except ValueError:
            raise ConfigError(f"“{key}: {value}” is not a notification choice") from None
        if kind not in allowed:
            raise ConfigError(f"“{key}” is not a notification your account receives")
        parsed[kind] = delivery
    with vault.sessions.begin() as session:
        for kind, delivery in parsed.items():
            row = session.get(NotificationPreference, (actor.id, kind.value))
            if row is None:
                session.add(
                    NotificationPreference(
                        user_id=actor.id, kind=kind.value, delivery=delivery.value
                    )
                )
            else:
                row.delivery = delivery.value
    return preferences(vault, actor=actor)


# --- share links by e-mail --------------------------------------------------------------


def email_share_link(vault: Vault, *, actor: Actor, token: str, to_address: str) -> None:
    """Queue an e-mail for ``to_address`` holding the share link ``token`` (on the public
    address, never one a form supplied) and who sent it, nothing else. Only the link's
    sender may; a password is never in it (only its hash is kept)."""
    to_address = to_address.strip()
    if not vault.settings.mail_enabled:
        raise ConfigError("this service sends no e-mail (no mail relay is configured)")
    if (
        to_address.count("@") != 1
        or len(to_address) > 320
        or any(c in to_address for c in "\r\n,;<> ")
    ):
        raise ConfigError("give one e-mail address for the recipient")
    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
    with vault.sessions.begin() as session:
        link = session.scalars(select(ShareLink).where(ShareLink.token_hash == digest)).first()
        if link is None or link.created_by != actor.id:
            raise NotFound("there is no such link of yours")
        url = f"{mailer.base_url(vault.settings)}/s/{token}"
        mailer.queue(session, vault, to=to_address, mail=mailer.share_link_mail(actor.name, url))
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=Action.SHARE_LINK_EMAIL,
            object=f"photo:{link.photo_id}",
            outcome=Outcome.DONE,
            reason=f"link for {link.recipient} e-mailed to {to_address}",
        )


__all__ = [
    "TEXTS",
    "Delivery",
    "Kind",
    "NotificationView",
    "email_share_link",
    "mark_read",
    "notifications_for",
    "notify",
    "notify_care_team",
    "notify_officers",
    "notify_patient",
    "notify_sender",
    "preferences",
    "set_preferences",
    "unread_count",
]
