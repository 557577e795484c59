"""Deletion requests: a patient asks, a clinician decides and explains, the vault carries it out.

    >>> view = file_request(vault, patient_id=p, scope=DeletionScope.SERIES,
    ...                     scope_ref="left-hand", reason="I want them gone", actor=patient)
    ...                                                                     # doctest: +SKIP
    >>> decide_request(vault, request_id=view.id, decision=DeletionDecision.KEEP_CLINICAL,
    ...                explanation="Kept 10 years by law; nothing else.", actor=clinician)
    ...                                                                     # doctest: +SKIP
    >>> requests_for(vault, p)[0].status                                    # doctest: +SKIP
    'decided'

A request names what it covers (:class:`DeletionScope`); a decision
(:class:`DeletionDecision`) always comes with an explanation the patient sees.
Erasing crypto-shreds the photos in scope with their derivatives; keeping
the clinical record still stops every secondary use. Every step is audited.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import maybe_checkpoint, record
from skinvault.bootstrap import Vault
from skinvault.db.models import BodySite, DeletionRequest, Derivative, Patient, Photo, ShareLink
from skinvault.errors import AccessDenied, NotFound, RequestInvalid, SkinvaultError
from skinvault.policy.decide import PatientAction, decide_operation
from skinvault.policy.purposes import Purpose
from skinvault.services.consents import consents_for, record_consent
from skinvault.services.notifications import Kind, notify_patient
from skinvault.services.photo_shredding import shred_photo
from skinvault.services.records import authorize
from skinvault.services.retention import _shred_copy

OPEN = "open"
DECIDED = "decided"

#: Derivatives made for secondary use (teaching, research, publication), never for care.
#: The consent-limited photo versions (services/versions.py) are among them; the display
#: copy for browsers is not (care uses it).
SECONDARY_COPY_KINDS = (
    "teaching", "deidentified", "redacted",
    "face_free", "cropped", "face_free+cropped", "deidentified+cropped",
)  # fmt: skip


class DeletionScope(StrEnum):
    PHOTO = "photo"  # scope_ref: the photo id
    SERIES = "series"  # scope_ref: a body site code; every photo of that site
    EVERYTHING = "everything"  # every photo of the patient


class DeletionDecision(StrEnum):
    ERASE = "erase"
    KEEP_CLINICAL = "keep-clinical"
    REFUSE = "refuse"

    @property
    def meaning(self) -> str:
        """What the decision does, in the words the patient reads."""
        return _MEANINGS[self]


_MEANINGS = {
    DeletionDecision.ERASE: "Everything in scope is crypto-shredded.",
    DeletionDecision.KEEP_CLINICAL: (
        "The clinical record is kept for the legal period, but all secondary use stops:"
        " every non-care consent is withdrawn, teaching/research copies are shredded and"
        " share links revoked."
    ),
    DeletionDecision.REFUSE: "Nothing is deleted; the explanation says why.",
}


@dataclass(frozen=True)
class RequestView:
    """A deletion request as the patient and the deciding clinician see it."""

    id: str
    patient_id: str
    scope: DeletionScope
    scope_ref: str | None
    reason: str
    requested_at: datetime
    requested_by: str | None
    status: str
    decision: DeletionDecision | None
    decided_at: datetime | None
    decided_by: str | None
    explanation: str | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "patient_id": self.patient_id,
            "scope": self.scope.value,
            "scope_ref": self.scope_ref,
            "reason": self.reason,
            "requested_at": self.requested_at.isoformat(),
            "status": self.status,
            "decision": self.decision.value if self.decision else None,
            "decision_means": self.decision.meaning if self.decision else None,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "explanation": self.explanation,
        }


def _view(row: DeletionRequest) -> RequestView:
    return RequestView(
        id=row.id,
        patient_id=row.patient_id,
        scope=DeletionScope(row.scope),
        scope_ref=row.scope_ref,
        reason=row.reason,
        requested_at=row.requested_at,
        requested_by=row.requested_by,
        status=row.status,
        decision=DeletionDecision(row.decision) if row.decision else None,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        explanation=row.explanation,
    )


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _photos_in_scope(
    session: Session, patient_id: str, scope: DeletionScope, scope_ref: str | None
) -> list[Photo]:
    """The patient's photos (not yet deleted) a request covers."""
    query = select(Photo).where(Photo.patient_id == patient_id, Photo.deleted_at.is_(None))
    if scope is DeletionScope.PHOTO:
        query = query.where(Photo.id == scope_ref)
    elif scope is DeletionScope.SERIES:
        query = query.join(BodySite, BodySite.id == Photo.site_id).where(BodySite.code == scope_ref)
    return list(session.scalars(query.order_by(Photo.uploaded_at, Photo.id)))


def file_request(
    vault: Vault,
    *,
    patient_id: str,
    scope: DeletionScope,
    scope_ref: str | None,
    reason: str,
    actor: Actor,
) -> RequestView:
    """Record a patient's request to delete photos; it stays open until someone decides."""
    scope = DeletionScope(scope)
    if scope is DeletionScope.EVERYTHING:
        scope_ref = None
    elif not scope_ref:
        what = "photo id" if scope is DeletionScope.PHOTO else "body site"
        raise RequestInvalid(f"a request for one {scope.value} must name the {what}")
    if scope is DeletionScope.SERIES and scope_ref:
        from skinvault.tracking.sites import from_legacy  # noqa: PLC0415

        scope_ref = from_legacy(scope_ref).code  # old names ("left-hand") still work
    authorize(vault, actor, patient_id, PatientAction.REQUEST_DELETION)
    with vault.sessions.begin() as session:
        if session.get(Patient, patient_id) is None:
            raise NotFound(f"there is no patient {patient_id}")
        if scope is DeletionScope.PHOTO:
            photo = session.get(Photo, scope_ref)
            if photo is None or photo.patient_id != patient_id or photo.deleted_at is not None:
                raise NotFound(f"patient {patient_id} has no photo {scope_ref}")
        elif scope is DeletionScope.SERIES:
            site = session.scalars(
                select(BodySite).where(
                    BodySite.patient_id == patient_id, BodySite.code == scope_ref
                )
            ).first()
            if site is None:
                raise NotFound(f"patient {patient_id} has no photos of the site {scope_ref}")
        row = DeletionRequest(
            id=vault.tokens.new_id(),
            patient_id=patient_id,
            requested_by=actor.id if actor.role else None,
            requested_at=vault.clock.now(),
            scope=scope.value,
            scope_ref=scope_ref,
            reason=reason,
            status=OPEN,
        )
        session.add(row)
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=Action.DELETION_REQUEST,
            object=f"deletion-request:{row.id}",
            outcome=Outcome.DONE,
            reason=f"{scope.value}" + (f" {scope_ref}" if scope_ref else ""),
        )
        return _view(row)


def _open_request(session: Session, request_id: str, *, lock: bool = False) -> DeletionRequest:
    # Locked while deciding, so two clinicians cannot both decide one request (PostgreSQL).
    row = session.get(DeletionRequest, request_id, with_for_update=lock)
    if row is None:
        raise NotFound(f"there is no deletion request {request_id}")
    if row.status != OPEN:
        raise RequestInvalid(
            f"deletion request {request_id} was already decided ({row.decision}); it cannot"
            " be decided again"
        )
    return row


def decide_request(
    vault: Vault,
    *,
    request_id: str,
    decision: DeletionDecision,
    explanation: str,
    actor: Actor,
) -> RequestView:
    """Decide an open request and carry the decision out; the explanation is required."""
    decision = DeletionDecision(decision)
    explanation = explanation.strip()
    if not explanation:
        raise RequestInvalid("a decision needs an explanation the patient can read")
    with vault.reading() as session:
        patient_id = _open_request(session, request_id).patient_id
    authorize(vault, actor, patient_id, PatientAction.DECIDE_DELETION)
    if decision is DeletionDecision.KEEP_CLINICAL:
        # Withdrawn first, in record_consent's own transactions: should the rest fail, the
        # request stays open and secondary use has stopped, never the other way round.
        now = vault.clock.now()
        for purpose, consent in consents_for(vault, patient_id).items():
            if purpose.is_secondary and consent.in_force(now):
                record_consent(
                    vault,
                    patient_id=patient_id,
                    purpose=Purpose(purpose),
                    granted=False,
                    actor=actor,
                    method="deletion-request",
                )
    why = f"deletion request {request_id}: {decision.value}"
    blob_keys: list[str] = []
    with vault.sessions.begin() as session:
        row = _open_request(session, request_id, lock=True)  # not decided meanwhile
        now = vault.clock.now()
        scope = DeletionScope(row.scope)
        done = ""
        if decision is DeletionDecision.ERASE:
            erased = _photos_in_scope(session, row.patient_id, scope, row.scope_ref)
            done = f" ({_count(len(erased), 'photo')} shredded)"
            for photo in erased:
                blob_keys += shred_photo(
                    session, vault, photo, why, actor=actor, action=Action.PHOTO_DELETE
                )
        elif decision is DeletionDecision.KEEP_CLINICAL:
            photo_ids = [
                p.id for p in _photos_in_scope(session, row.patient_id, scope, row.scope_ref)
            ]
            copies = session.scalars(
                select(Derivative)
                .where(
                    Derivative.photo_id.in_(photo_ids),
                    Derivative.kind.in_(SECONDARY_COPY_KINDS),
                    Derivative.deleted_at.is_(None),
                )
                .order_by(Derivative.created_at, Derivative.id)
            )
            copies_done = list(copies)
            for copy in copies_done:
                blob_keys += _shred_copy(session, vault, copy, why, actor=actor)
            links = session.scalars(
                select(ShareLink)
                .join(Photo, Photo.id == ShareLink.photo_id)
                .where(
                    Photo.patient_id == row.patient_id,
                    ShareLink.revoked_at.is_(None),
                    ShareLink.expires_at > now,
                )
            )
            revoked = list(links)
            for link in revoked:
                link.revoked_at = now
            done = (
                f" ({_count(len(copies_done), 'copy', 'copies')} shredded,"
                f" {_count(len(revoked), 'share link')} revoked)"
            )
        row.status = DECIDED
        row.decision = decision.value
        row.decided_by = actor.id if actor.role else None
        row.decided_at = now
        row.explanation = explanation
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=Action.DELETION_DECIDE,
            object=f"deletion-request:{row.id}",
            outcome=Outcome.DONE,
            reason=f"{decision.value}{done}: {explanation}",
        )
        notify_patient(
            session,
            vault,
            patient_id=row.patient_id,
            kind=Kind.DELETION_DECIDED,
            ref=f"deletion-request:{row.id}",
            outcome=decision.value,
        )
        maybe_checkpoint(
            session,
            clock=vault.clock,
            signing_key=vault.keys.signing_key(),
            every=vault.settings.audit_checkpoint_every,
        )
        view = _view(row)
    for key in blob_keys:
        # Already unreadable (the data key is gone); a blob left here is the sweep's.
        with contextlib.suppress(SkinvaultError, OSError):
            vault.blobs.delete(key)
    return view


def requests_for(vault: Vault, patient_id: str) -> list[RequestView]:
    """Every deletion request of a patient, oldest first, with each decision and explanation."""
    with vault.reading() as session:
        rows = session.scalars(
            select(DeletionRequest)
            .where(DeletionRequest.patient_id == patient_id)
            .order_by(DeletionRequest.requested_at, DeletionRequest.id)
        )
        return [_view(r) for r in rows]


__all__ = [
    "DeletionDecision",
    "DeletionScope",
    "RequestInvalid",
    "RequestView",
    "decide_request",
    "file_request",
    "requests_for",
]


def open_requests(vault: Vault, *, actor: Actor) -> list[RequestView]:
    """Every request still waiting for a decision, oldest first (the privacy officer's queue)."""
    decision = decide_operation(actor)
    if not decision.allowed:
        raise AccessDenied(decision.reason)
    with vault.reading() as session:
        rows = session.scalars(
            select(DeletionRequest)
            .where(DeletionRequest.status == "open")
            .order_by(DeletionRequest.requested_at)
        )
        return [_view(r) for r in rows]
