"""The policy decision about one photo, taken the same way by everything that uses it.

    >>> with vault.sessions.begin() as session:                     # doctest: +SKIP
    ...     decision = photo_decision(session, vault, photo, actor=clinician,
    ...                               access=Access.VIEW, purpose=parse_purpose("care"),
    ...                               break_glass_reason=None)

Owns :func:`photo_decision` (the facts for :func:`skinvault.policy.decide.decide`,
gathered inside the caller's transaction), :func:`parse_purpose` (the purpose a caller
names, refused in plain words when it is not one), :func:`audit_reason` (the reason as
audited, break-glass reads marked) and :func:`file_break_glass` (an allowed break-glass
read put in the privacy officer's queue). The reads (:mod:`skinvault.services.photo_reads`),
share links, public copies, exports and tracking all decide through it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from skinvault.actors import Actor
from skinvault.audit.chain import Event
from skinvault.bootstrap import Vault
from skinvault.db.models import CareRelationship, Consent, Patient, Photo
from skinvault.errors import AccessDenied
from skinvault.policy.decide import Access, CareFacts, Decision, Obligation, PhotoFacts, decide
from skinvault.policy.purposes import Purpose
from skinvault.services.consents import facts_of
from skinvault.services.review import BREAK_GLASS_MARK, file_access


def photo_decision(
    session: Session,
    vault: Vault,
    photo: Photo,
    *,
    actor: Actor,
    access: Access,
    purpose: Purpose,
    break_glass_reason: str | None,
    versions: bool = False,
) -> Decision:
    """Gather the facts for :func:`skinvault.policy.decide` inside the caller's transaction.

    With ``versions`` the caller serves the version the obligations ask for
    (:mod:`skinvault.services.versions`); without, a decision that needs a cropped or
    face-free version is refused (fail closed: such a caller would serve the photo).
    """
    patient = session.get(Patient, photo.patient_id)
    consents = [
        facts_of(c)
        for c in session.scalars(select(Consent).where(Consent.patient_id == photo.patient_id))
    ]
    relationships = [
        CareFacts(r.clinician_id, r.since, r.until)
        for r in session.scalars(
            select(CareRelationship).where(CareRelationship.patient_id == photo.patient_id)
        )
    ]
    facts = PhotoFacts(
        photo.id,
        photo.patient_id,
        patient.user_id if patient else None,
        deleted=photo.deleted_at is not None or photo.wrapped_dek is None,
    )
    decision = decide(
        actor,
        access,
        facts,
        purpose,
        consents=consents,
        relationships=relationships,
        now=vault.clock.now(),
        break_glass_reason=break_glass_reason,
    )
    if (
        not versions
        and decision.allowed
        and decision.obligations & {Obligation.CROPPED, Obligation.NO_FACE}
    ):
        # Fail closed: this caller serves no version, so none can be served.
        wanted = "face-free" if Obligation.NO_FACE in decision.obligations else "cropped"
        return Decision(
            False,
            f"The patient allows this use only for a {wanted} version of the photo,"
            " and none has been made.",
        )
    return decision


def audit_reason(decision: Decision) -> str:
    """The decision's reason as audited; break-glass reads are marked for the review queue
    and the patient's history (:data:`skinvault.services.review.BREAK_GLASS_MARK`)."""
    if decision.allowed and decision.break_glass:
        return f"{BREAK_GLASS_MARK}{decision.reason}"
    return decision.reason


def file_break_glass(  # noqa: PLR0917  (one call shape: photo_reads and photo_export)
    session: Session,
    vault: Vault,
    decision: Decision,
    actor: Actor,
    photo: Photo,
    given: str | None,
    event: Event,
) -> None:
    """Put an allowed break-glass read in the privacy officer's queue (same transaction)."""
    if decision.allowed and decision.break_glass and given:
        file_access(session, vault, actor=actor, patient_id=photo.patient_id, reason=given,
                    event=event)  # fmt: skip


def parse_purpose(purpose: Purpose | str) -> Purpose:
    try:
        return Purpose(purpose)
    except ValueError:
        names = ", ".join(p.value for p in Purpose)
        raise AccessDenied(f"“{purpose}” is not a purpose; name one of: {names}.") from None


__all__ = [
    "audit_reason",
    "file_break_glass",
    "parse_purpose",
    "photo_decision",
]
