"""Break-glass from the clinician's pages: open a patient's record outside the care team.

    >>> opened = open_record(vault, actor=dr_two, patient="ann@example.org",
    ...                      reason="Unconscious in A&E, care team unreachable")  # doctest: +SKIP
    >>> [p.id for p in opened.photos]                                              # doctest: +SKIP

The clinician names the patient (record id or account e-mail) and gives a reason.
The same decision as any photo read (:func:`skinvault.policy.decide` for care, with
the break-glass reason) decides; the attempt is audited as ``break-glass:start``
either way, and an allowed one opens (or joins) a case in the privacy officer's
review queue. Each photo then shown is read through the same break-glass decision,
so it is audited and filed on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import BodySite, CareRelationship, Patient, Photo, User
from skinvault.errors import AccessDenied, NotFound
from skinvault.policy.decide import Access, CareFacts, PhotoFacts, decide
from skinvault.policy.purposes import Purpose
from skinvault.services.photo_store import StoredPhoto, stored_photo_of
from skinvault.services.review import BREAK_GLASS_MARK, file_access


@dataclass(frozen=True)
class OpenedRecord:
    """A record opened by break-glass (or, for the care team, plainly)."""

    patient_id: str
    patient_name: str
    photos: list[StoredPhoto]
    break_glass: bool


def _find(session: Session, identifier: str) -> Patient | None:
    wanted = identifier.strip()
    return session.scalars(
        select(Patient)
        .outerjoin(User, User.id == Patient.user_id)
        .where(or_(Patient.id == wanted, User.email == wanted.lower()))
    ).first()


def open_record(vault: Vault, *, actor: Actor, patient: str, reason: str) -> OpenedRecord:
    """The patient's photos for ``actor`` under break-glass; raises (after auditing) when
    the decision refuses, ``NotFound`` when no patient has that identifier."""
    given = reason.strip()
    with vault.sessions.begin() as session:
        found = _find(session, patient)
        if found is None:
            record(
                session, clock=vault.clock, actor=actor.audit_name,
                action=Action.BREAK_GLASS_START, object=f"patient:{patient.strip()[:100]}",
                outcome=Outcome.FAILED, purpose=Purpose.CARE.value,
                reason="no patient has this identifier",
            )  # fmt: skip
            missing = NotFound("No patient has that identifier.")
        else:
            missing = None
            relationships = [
                CareFacts(r.clinician_id, r.since, r.until)
                for r in session.scalars(
                    select(CareRelationship).where(CareRelationship.patient_id == found.id)
                )
            ]
            # The record as a whole is decided like any of its photos would be.
            decision = decide(
                actor,
                Access.VIEW,
                PhotoFacts(f"record:{found.id}", found.id, found.user_id),
                Purpose.CARE,
                consents=[],
                relationships=relationships,
                now=vault.clock.now(),
                break_glass_reason=given,
            )
            audited = (
                f"{BREAK_GLASS_MARK}{decision.reason}"
                if decision.allowed and decision.break_glass
                else decision.reason
            )
            event = record(
                session, clock=vault.clock, actor=actor.audit_name,
                action=Action.BREAK_GLASS_START, object=f"patient:{found.id}",
                outcome=Outcome.ALLOWED if decision.allowed else Outcome.DENIED,
                purpose=Purpose.CARE.value, reason=audited,
            )  # fmt: skip
            if decision.allowed and decision.break_glass:
                file_access(
                    session, vault, actor=actor, patient_id=found.id, reason=given, event=event
                )
            patient_id, name = found.id, found.display_name
    if missing is not None:
        raise missing
    if not decision.allowed:
        raise AccessDenied(decision.reason)
    with vault.reading() as session:
        sites = {
            s.id: s
            for s in session.scalars(select(BodySite).where(BodySite.patient_id == patient_id))
        }
        rows = session.scalars(
            select(Photo)
            .where(Photo.patient_id == patient_id, Photo.deleted_at.is_(None))
            .order_by(Photo.uploaded_at.desc())
        )
        shown = [stored_photo_of(vault, p, sites.get(p.site_id or "")) for p in rows]
    return OpenedRecord(patient_id, name, shown, decision.break_glass)


__all__ = ["OpenedRecord", "open_record"]
