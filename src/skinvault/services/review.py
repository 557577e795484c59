"""The privacy officer's review of break-glass (emergency) accesses.

    >>> [c.clinician for c in cases(vault, actor=officer)]                # doctest: +SKIP
    ['Dr. Two']
    >>> escalate(vault, actor=officer, case_id=cid, note="No admission.")  # doctest: +SKIP
    >>> mark_reviewed(vault, actor=officer, case_id=cid, note="Checked.")  # doctest: +SKIP

Every read allowed by break-glass is filed here by :func:`file_access`, in the same
transaction as its audit event: one case per clinician, patient and reason while the
case is open (so opening a record and its photos is one case, not twenty). States:
``open`` → ``reviewed`` (with a note), or ``open`` → ``escalated`` (with a note) →
``reviewed``; ``reviewed`` is final. Each step is an audit event of its own
(``break-glass:review``, ``break-glass:escalate``) on ``break-glass:<case id>``. Today
the administrator acts as privacy officer (:func:`skinvault.policy.decide.decide_operation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.chain import Event
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import AuditEvent, BreakGlassReview, Patient
from skinvault.errors import AccessDenied, NotFound
from skinvault.policy.decide import decide_operation
from skinvault.services.notifications import Kind, notify_officers, notify_patient

#: How the audit log marks a read allowed by break-glass (the reason's start).
BREAK_GLASS_MARK = "BREAK-GLASS, to be reviewed: "
_MAX_NOTE = 2000


class ReviewState(StrEnum):
    OPEN = "open"
    REVIEWED = "reviewed"
    ESCALATED = "escalated"


@dataclass(frozen=True)
class BreakGlassCase:
    """What the privacy officer sees of one emergency access."""

    id: str
    patient_id: str
    patient_name: str
    clinician_id: str
    clinician: str
    reason: str
    opened_at: datetime
    last_at: datetime
    accesses: int
    state: str
    note: str | None
    decided_by: str | None
    decided_at: datetime | None


def _case(row: BreakGlassReview, patient_name: str) -> BreakGlassCase:
    return BreakGlassCase(
        id=row.id,
        patient_id=row.patient_id,
        patient_name=patient_name,
        clinician_id=row.clinician_id,
        clinician=row.clinician.partition(" ")[2] or row.clinician,
        reason=row.reason,
        opened_at=row.opened_at,
        last_at=row.last_at,
        accesses=row.accesses,
        state=row.state,
        note=row.note,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
    )


def file_access(
    session: Session, vault: Vault, *, actor: Actor, patient_id: str, reason: str, event: Event
) -> str:
    """File the break-glass access ``event`` (already recorded) in the review queue, in
    the caller's transaction; returns the case id."""
    reason = reason.strip()
    row = session.scalars(
        select(BreakGlassReview).where(
            BreakGlassReview.clinician_id == actor.id,
            BreakGlassReview.patient_id == patient_id,
            BreakGlassReview.reason == reason,
            BreakGlassReview.state == ReviewState.OPEN.value,
        )
    ).first()
    if row is None:
        row = BreakGlassReview(
            id=vault.tokens.new_id(),
            patient_id=patient_id,
            clinician_id=actor.id,
            clinician=actor.audit_name,
            reason=reason,
            opened_at=event.at,
            last_at=event.at,
            first_seq=event.seq,
            last_seq=event.seq,
            accesses=1,
            state=ReviewState.OPEN.value,
        )
        session.add(row)
        session.flush()
        notify_officers(
            session,
            vault,
            kind=Kind.REVIEW_WAITING,
            ref=f"break-glass:{row.id}",
            link=f"/portal/review/{row.id}",
        )
        notify_patient(
            session,
            vault,
            patient_id=patient_id,
            kind=Kind.EMERGENCY_ACCESS,
            ref=f"break-glass:{row.id}",
        )
    else:
        row.last_at, row.last_seq, row.accesses = event.at, event.seq, row.accesses + 1
    session.flush()
    return row.id


def _officer(actor: Actor) -> None:
    decision = decide_operation(actor)
    if not decision.allowed:
        raise AccessDenied("Only the privacy officer reviews emergency accesses.")


def cases(
    vault: Vault, *, actor: Actor, state: ReviewState | str | None = ReviewState.OPEN
) -> list[BreakGlassCase]:
    """The queue: cases in ``state`` (``None``: all), oldest first."""
    _officer(actor)
    with vault.reading() as session:
        query = select(BreakGlassReview, Patient.display_name).join(
            Patient, Patient.id == BreakGlassReview.patient_id
        )
        if state is not None:
            query = query.where(BreakGlassReview.state == ReviewState(state).value)
        rows = session.execute(query.order_by(BreakGlassReview.opened_at, BreakGlassReview.id))
        return [_case(row, name) for row, name in rows]


def case_events(vault: Vault, *, actor: Actor, case_id: str) -> tuple[BreakGlassCase, list[Event]]:
    """One case and its audit trail: the clinician's accesses, then the review steps."""
    _officer(actor)
    with vault.reading() as session:
        row = session.get(BreakGlassReview, case_id)
        if row is None:
            raise NotFound(f"there is no break-glass case {case_id}")
        patient = session.get(Patient, row.patient_id)
        found = session.scalars(
            select(AuditEvent)
            .where(
                (
                    AuditEvent.seq.between(row.first_seq, row.last_seq)
                    & (AuditEvent.actor == row.clinician)
                    & AuditEvent.reason.startswith(BREAK_GLASS_MARK)
                )
                | (AuditEvent.object == f"break-glass:{row.id}")
            )
            .order_by(AuditEvent.seq)
        ).all()
        events = [
            Event(e.seq, e.at, e.actor, e.action, e.object, e.purpose, e.outcome, e.reason)
            for e in found
        ]
        return _case(row, patient.display_name if patient else ""), events


def _step(
    vault: Vault, *, actor: Actor, case_id: str, note: str, to: ReviewState
) -> BreakGlassCase:
    _officer(actor)
    note = note.strip()
    if not note:
        raise ValueError("write a note: what you checked, and what you found")
    if len(note) > _MAX_NOTE:
        raise ValueError(f"the note is longer than {_MAX_NOTE} characters")
    with vault.sessions.begin() as session:
        row = session.get(BreakGlassReview, case_id)
        if row is None:
            raise NotFound(f"there is no break-glass case {case_id}")
        if row.state == ReviewState.REVIEWED.value:
            raise ValueError("this case is already reviewed; its decision stands")
        if row.state == to.value:
            raise ValueError(f"this case is already {to.value}")
        row.state, row.note = to.value, note
        row.decided_by, row.decided_at = actor.audit_name, vault.clock.now()
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=(
                Action.BREAK_GLASS_REVIEW
                if to is ReviewState.REVIEWED
                else Action.BREAK_GLASS_ESCALATE
            ),
            object=f"break-glass:{row.id}",
            outcome=Outcome.DONE,
            reason=note,
        )
        patient = session.get(Patient, row.patient_id)
        return _case(row, patient.display_name if patient else "")


def mark_reviewed(vault: Vault, *, actor: Actor, case_id: str, note: str) -> BreakGlassCase:
    """Close a case (open or escalated) with the officer's note."""
    return _step(vault, actor=actor, case_id=case_id, note=note, to=ReviewState.REVIEWED)


def escalate(vault: Vault, *, actor: Actor, case_id: str, note: str) -> BreakGlassCase:
    """Pass an open case on for investigation, with the officer's note."""
    return _step(vault, actor=actor, case_id=case_id, note=note, to=ReviewState.ESCALATED)


__all__ = [
    "BREAK_GLASS_MARK",
    "BreakGlassCase",
    "ReviewState",
    "case_events",
    "cases",
    "escalate",
    "file_access",
    "mark_reviewed",
]
