"""The notices time brings, not a request: a share link that expired unused, a consent
ending within ``consent_expiry_notice_days``, a site whose next photo is due, a digest
e-mail that is due.

    >>> sweep(vault)                                   # doctest: +SKIP
    SweepReport(links_expired=1, consents_ending=0, digests=0, photos_due=0)

:func:`sweep` finds them (idempotent: each notice is kept once per user, kind and ref,
so several workers may sweep at once); :class:`NotificationWorker` runs it and the mail
delivery in a background thread while the web app runs. What a notice says and who
gets it is :mod:`skinvault.services.notifications`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skinvault.bootstrap import Vault
from skinvault.db.models import Consent, Notification, ShareLink, User
from skinvault.services import mailer
from skinvault.services.notifications import Delivery, Kind, notify_patient, notify_sender
from skinvault.services.periodic import PeriodicThread

log = logging.getLogger("skinvault.notifications")
_DIGEST_EVERY = timedelta(days=1)


@dataclass(frozen=True)
class SweepReport:
    links_expired: int = 0
    consents_ending: int = 0
    digests: int = 0
    photos_due: int = 0


def _expired_links(session: Session, vault: Vault, now: datetime) -> int:
    # Links that ran out in the last retention period unopened; each one is told once (ref).
    since = now - timedelta(days=vault.settings.retention_share_link_days)
    links = session.scalars(
        select(ShareLink).where(
            ShareLink.expires_at <= now,
            ShareLink.expires_at > since,
            ShareLink.used_at.is_(None),
            ShareLink.revoked_at.is_(None),
            ShareLink.locked_at.is_(None),
            ShareLink.created_by.is_not(None),
        )
    ).all()
    told = _already(session, Kind.LINK_EXPIRED, (f"share-link:{link.id}" for link in links))
    return sum(
        notify_sender(session, vault, link=link, kind=Kind.LINK_EXPIRED)
        for link in links
        if f"share-link:{link.id}" not in told
    )


def _already(session: Session, kind: Kind, refs: Iterable[str]) -> set[str]:
    wanted = list(refs)
    if not wanted:
        return set()
    return set(
        session.scalars(
            select(Notification.ref).where(
                Notification.kind == kind.value, Notification.ref.in_(wanted)
            )
        )
    )


def _ending_consents(session: Session, vault: Vault, now: datetime) -> int:
    horizon = now + timedelta(days=vault.settings.consent_expiry_notice_days)
    rows = session.scalars(
        select(Consent).where(
            Consent.granted.is_(True),
            Consent.revoked_at.is_(None),
            Consent.expires_at.is_not(None),
            Consent.expires_at > now,
            Consent.expires_at <= horizon,
        )
    ).all()
    told = _already(session, Kind.CONSENT_EXPIRING, (f"consent:{r.id}" for r in rows))
    added = 0
    for row in rows:
        if f"consent:{row.id}" in told:
            continue
        newer = session.scalar(
            select(func.count())
            .select_from(Consent)
            .where(
                Consent.patient_id == row.patient_id,
                Consent.purpose == row.purpose,
                Consent.recorded_at > row.recorded_at,
            )
        )
        if not newer:  # a later answer replaced this one: nothing ends
            added += notify_patient(
                session,
                vault,
                patient_id=row.patient_id,
                kind=Kind.CONSENT_EXPIRING,
                ref=f"consent:{row.id}",
            )
    return added


def _digests(session: Session, vault: Vault, now: datetime) -> int:
    """One e-mail per user whose oldest waiting notice is a day old: it holds all of them,
    and the next can only come a day after the next notice, so at most one a day."""
    if not vault.settings.mail_enabled:
        return 0
    due = (
        session.execute(
            select(Notification.user_id)
            .where(Notification.mail_state == Delivery.DIGEST.value)
            .group_by(Notification.user_id)
            .having(func.min(Notification.created_at) <= now - _DIGEST_EVERY)
        )
        .scalars()
        .all()
    )
    sent = 0
    for user_id in due:
        user = session.get(User, user_id)
        pending = session.scalars(
            select(Notification).where(
                Notification.user_id == user_id,
                Notification.mail_state == Delivery.DIGEST.value,
            )
        ).all()
        for row in pending:
            row.mail_state = "digested"
        unread = [row for row in pending if row.read_at is None]
        if user is None or user.disabled or not unread:
            continue  # everything was seen in the portal already: no e-mail needed
        mailer.queue(
            session,
            vault,
            to=user.email,
            mail=mailer.notice_mail(vault.settings, count=len(unread)),
        )
        sent += 1
    return sent


def sweep(vault: Vault) -> SweepReport:
    """Add the notices time brings (idempotent; safe in several workers at once)."""
    from skinvault.services import tracking  # noqa: PLC0415 (it imports this module)

    now = vault.clock.now()
    with vault.sessions.begin() as session:
        links = _expired_links(session, vault, now)
        consents = _ending_consents(session, vault, now)
        due = tracking.notice_due_photos(session, vault, now)
        digests = _digests(session, vault, now)
    return SweepReport(links, consents, digests, due)


class NotificationWorker:
    """A background thread: every ``notification_sweep_seconds`` it runs :func:`sweep`
    and sends due e-mails (:func:`skinvault.services.mailer.deliver_due`). Problems are
    logged, never raised; the outbox is in the database, so a restart loses nothing."""

    def __init__(self, vault: Vault, seconds: float | None = None) -> None:
        self.vault = vault
        self.seconds = float(seconds or vault.settings.notification_sweep_seconds)
        self._thread = PeriodicThread("skinvault-notifications", self.seconds, self.tick, log=log)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        self._thread.stop(timeout)

    def tick(self) -> tuple[SweepReport, mailer.Delivery] | None:
        try:
            return sweep(self.vault), mailer.deliver_due(self.vault)
        except Exception:  # a bug or a database outage: log it and try again next round
            log.exception("notification round failed")
            return None
