"""Retention: shred what has been kept long enough, as the settings say, and audit each step.

    >>> actor = Actor.system("retention")
    >>> report = run_retention(vault, actor=actor, dry_run=True)  # doctest: +SKIP
    >>> [(a.kind, a.object_id, a.done) for a in report.actions]  # doctest: +SKIP
    [('clinical-photo', '3f2a…', False)]

Three rules, each from :class:`~skinvault.config.Settings`:

- a clinical photo (with all its derivatives) is shredded
  ``retention_clinical_photo_days`` after upload;
- a teaching or de-identified copy is shredded ``retention_teaching_copy_days``
  after it was made;
- the row of an expired or revoked share link is removed
  ``retention_share_link_days`` after the later of its expiry and revocation.

Something is due when ``start + period <= now``: never a second early. A run
is idempotent (what is done is no longer found), and a dry run reads only:
it writes neither changes nor audit events. Shredding destroys the wrapped
data keys in the transaction that records it; the blobs are removed after
the commit (a crash in between leaves unreadable blobs for the sweep).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Select, delete, or_, select
from sqlalchemy.orm import Session

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import maybe_checkpoint, record
from skinvault.bootstrap import Vault
from skinvault.db.models import Derivative, Photo, ShareLink
from skinvault.errors import SkinvaultError
from skinvault.services.notifications import Kind, notify_officers
from skinvault.services.photo_shredding import shred_photo

#: Derivatives made for secondary use; the teaching-copy period applies to them.
SECONDARY_COPY_KINDS = ("teaching", "deidentified")

_Select = TypeVar("_Select", bound=Select[Any])


class RetentionKind(StrEnum):
    CLINICAL_PHOTO = "clinical-photo"
    TEACHING_COPY = "teaching-copy"
    SHARE_LINK = "share-link"


@dataclass(frozen=True)
class RetentionAction:
    """One thing retention does (or, in a dry run, would do)."""

    kind: RetentionKind
    object_id: str
    due_at: datetime
    done: bool


@dataclass(frozen=True)
class RetentionReport:
    actions: list[RetentionAction] = field(default_factory=list)
    dry_run: bool = False

    def as_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "actions": [
                {
                    "kind": a.kind.value,
                    "object_id": a.object_id,
                    "due_at": a.due_at.isoformat(),
                    "done": a.done,
                }
                for a in self.actions
            ],
        }


def _shred_copy(
    session: Session, vault: Vault, copy: Derivative, reason: str, *, actor: Actor
) -> list[str]:
    """Destroy one derivative's data key and audit it; its blob key to delete after the commit."""
    copy.wrapped_dek, copy.kek_id, copy.deleted_at = None, None, vault.clock.now()
    record(
        session,
        clock=vault.clock,
        actor=actor.audit_name,
        action=Action.COPY_SHRED,
        object=f"derivative:{copy.id}",
        outcome=Outcome.DONE,
        reason=reason,
    )
    return [copy.blob_key]


def _delete_blobs(vault: Vault, keys: Iterable[str]) -> None:
    for key in keys:
        # Already unreadable (its data key is gone); a blob left here is the sweep's.
        with contextlib.suppress(SkinvaultError, OSError):
            vault.blobs.delete(key)


def _locked(statement: _Select, dry_run: bool) -> _Select:
    """Lock the due rows against a concurrent delete (PostgreSQL); a dry run only reads."""
    return statement if dry_run else statement.with_for_update()


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def run_retention(vault: Vault, *, actor: Actor, dry_run: bool = False) -> RetentionReport:
    """Apply every retention rule that is due now; with ``dry_run`` only say what is due."""
    settings = vault.settings
    now = vault.clock.now()
    photo_period = timedelta(days=settings.retention_clinical_photo_days)
    copy_period = timedelta(days=settings.retention_teaching_copy_days)
    link_period = timedelta(days=settings.retention_share_link_days)
    photo_reason = f"retention: clinical photos are kept {_days(photo_period.days)}"
    copy_reason = f"retention: teaching copies are kept {_days(copy_period.days)}"
    link_reason = (
        f"retention: records of expired or revoked share links are kept {_days(link_period.days)}"
    )
    actions: list[RetentionAction] = []
    blob_keys: list[str] = []
    sessions = vault.sessions() if dry_run else vault.sessions.begin()
    with sessions as session:
        photos = list(
            session.scalars(
                _locked(
                    select(Photo)
                    .where(Photo.deleted_at.is_(None), Photo.uploaded_at <= now - photo_period)
                    .order_by(Photo.uploaded_at, Photo.id),
                    dry_run,
                )
            )
        )
        shredded = {p.id for p in photos}
        copies = [
            c
            for c in session.scalars(
                _locked(
                    select(Derivative)
                    .where(
                        Derivative.kind.in_(SECONDARY_COPY_KINDS),
                        Derivative.deleted_at.is_(None),
                        Derivative.created_at <= now - copy_period,
                    )
                    .order_by(Derivative.created_at, Derivative.id),
                    dry_run,
                )
            )
            if c.photo_id not in shredded  # shredded with their photo below
        ]
        links = list(
            session.scalars(
                _locked(
                    select(ShareLink)
                    .where(
                        ShareLink.expires_at <= now - link_period,
                        or_(
                            ShareLink.revoked_at.is_(None),
                            ShareLink.revoked_at <= now - link_period,
                        ),
                    )
                    .order_by(ShareLink.expires_at, ShareLink.id),
                    dry_run,
                )
            )
        )
        for photo in photos:
            if not dry_run:
                blob_keys += shred_photo(session, vault, photo, photo_reason, actor=actor)
            actions.append(
                RetentionAction(
                    RetentionKind.CLINICAL_PHOTO,
                    photo.id,
                    photo.uploaded_at + photo_period,
                    not dry_run,
                )
            )
        for copy in copies:
            if not dry_run:
                blob_keys += _shred_copy(session, vault, copy, copy_reason, actor=actor)
            actions.append(
                RetentionAction(
                    RetentionKind.TEACHING_COPY, copy.id, copy.created_at + copy_period, not dry_run
                )
            )
        for link in links:
            ended = max(link.expires_at, link.revoked_at or link.expires_at)
            if not dry_run:
                session.execute(delete(ShareLink).where(ShareLink.id == link.id))
                record(
                    session,
                    clock=vault.clock,
                    actor=actor.audit_name,
                    action=Action.SHARE_LINK_PURGE,
                    object=f"share-link:{link.id}",
                    outcome=Outcome.DONE,
                    reason=link_reason,
                )
            actions.append(
                RetentionAction(RetentionKind.SHARE_LINK, link.id, ended + link_period, not dry_run)
            )
        if not dry_run:
            notify_officers(
                session,
                vault,
                kind=Kind.RETENTION_RUN,
                ref=f"retention:{vault.tokens.new_id()}",
                link="/portal/admin",
                outcome=f"{len(actions)} removed",
            )
        if actions and not dry_run:
            maybe_checkpoint(
                session,
                clock=vault.clock,
                signing_key=vault.keys.signing_key(),
                every=settings.audit_checkpoint_every,
            )
    _delete_blobs(vault, blob_keys)
    return RetentionReport(actions, dry_run)


__all__ = ["RetentionAction", "RetentionKind", "RetentionReport", "run_retention"]
