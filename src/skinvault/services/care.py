"""Care relationships: who is on a patient's care team, and since when.

>>> start_care(vault, patient_id=p, member_id=dr_lee, actor=admin)   # doctest: +SKIP
>>> end_care(vault, patient_id=p, member_id=dr_lee, actor=admin)     # doctest: +SKIP
"""

from __future__ import annotations

from sqlalchemy import select

from skinvault.actors import Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import CareRelationship, Patient, User
from skinvault.errors import ConfigError, NotFound
from skinvault.policy.decide import CareFacts

CARE_ROLES = frozenset({Role.CLINICIAN, Role.STAFF})


def start_care(vault: Vault, *, patient_id: str, member_id: str, actor: Actor) -> str:
    """Put a clinician or staff member on the patient's care team (idempotent)."""
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        if session.get(Patient, patient_id) is None:
            raise NotFound(f"there is no patient {patient_id}")
        member = session.get(User, member_id)
        if member is None or Role(member.role) not in CARE_ROLES:
            raise ConfigError("only clinicians and staff can be on a care team")
        current = session.scalars(
            select(CareRelationship).where(
                CareRelationship.patient_id == patient_id,
                CareRelationship.clinician_id == member_id,
                CareRelationship.until.is_(None),
            )
        ).first()
        if current is not None:
            return current.id
        row = CareRelationship(
            id=vault.tokens.new_id(), patient_id=patient_id, clinician_id=member_id, since=now
        )
        session.add(row)
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=Action.CARE_START,
            object=f"patient:{patient_id}",
            outcome=Outcome.DONE,
            reason=f"user:{member_id}",
        )
        return row.id


def end_care(vault: Vault, *, patient_id: str, member_id: str, actor: Actor) -> None:
    now = vault.clock.now()
    with vault.sessions.begin() as session:
        rows = session.scalars(
            select(CareRelationship).where(
                CareRelationship.patient_id == patient_id,
                CareRelationship.clinician_id == member_id,
                CareRelationship.until.is_(None),
            )
        ).all()
        if not rows:
            raise NotFound("there is no current care relationship to end")
        for row in rows:
            row.until = now
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=Action.CARE_END,
            object=f"patient:{patient_id}",
            outcome=Outcome.DONE,
            reason=f"user:{member_id}",
        )


def care_facts(vault: Vault, patient_id: str) -> list[CareFacts]:
    with vault.reading() as session:
        rows = session.scalars(
            select(CareRelationship).where(CareRelationship.patient_id == patient_id)
        )
        return [CareFacts(r.clinician_id, r.since, r.until) for r in rows]
