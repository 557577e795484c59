"""One patient's record leaving skinvault as a whole: the parts the caller may see, and reads by id.

    >>> rec = export_record(vault, actor=clinician, patient_id=pid)  # doctest: +SKIP

Each part (photos, consents, access history, measurements) is one record-level
decision; photos and measurements are then each decided as an export
(:mod:`~skinvault.services.photo_export`, :mod:`~skinvault.services.measurement_export`).
One ``record:export-fhir`` audit event records what was read (or refused). Also here:
the patient a consent or an audit event belongs to (``Consent/{id}``,
``AuditEvent/{id}``), and the patient's audit events (:func:`_events`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import AuditEvent, CareRelationship, Consent, Patient, Photo
from skinvault.errors import AccessDenied, NotFound
from skinvault.policy.decide import CareFacts, PatientAction, decide_patient
from skinvault.policy.purposes import Purpose
from skinvault.services import consents as consent_service
from skinvault.services.measurement_export import MeasurementRecord, export_measurements
from skinvault.services.photo_export import ExportedPhoto, PhotoGrant, grant_export, open_export
from skinvault.services.photo_policy import parse_purpose


@dataclass(frozen=True)
class RecordExport:
    """What the caller may see of one patient's record, gathered under one set of decisions."""

    patient_id: str
    patient_name: str
    photos: list[ExportedPhoto] | None  # None: the caller may not list photos
    consents: list[consent_service.ConsentView] | None  # None: may not read consents
    events: list[AuditEvent] | None  # None: may not read the access history
    measurements: list[MeasurementRecord] | None = None  # None: not asked for or refused
    photo_total: int = 0  # photos granted; ``photos`` holds those of the asked window


_PARTS = {
    "photos": PatientAction.LIST_PHOTOS,
    "consents": PatientAction.MANAGE_CONSENT,
    "events": PatientAction.READ_HISTORY,
    "measurements": PatientAction.LIST_PHOTOS,
}


def export_record(
    vault: Vault,
    *,
    actor: Actor,
    patient_id: str,
    parts: frozenset[str] = frozenset(_PARTS),
    required: frozenset[str] = frozenset(),
    purpose: Purpose | str = Purpose.CARE,
    load_photos: bool = True,
    window: tuple[int, int] | None = None,
) -> RecordExport:
    """The parts of a record ``actor`` may see; a refused *required* part raises AccessDenied.

    Each part is one record-level decision (:func:`decide_patient`); photos (and
    their measurements) are then each decided as an export for ``purpose`` and left
    out when refused. One ``record:export-fhir`` event records what was read (or
    refused). With ``window=(offset, count)`` every photo is decided (for the
    total) but only that page is decrypted.
    """
    obj = f"patient:{patient_id}"
    chosen = parse_purpose(purpose)
    with vault.sessions.begin() as session:
        patient = session.get(Patient, patient_id)
        if patient is None:
            raise NotFound(f"there is no patient {patient_id}")
        relationships = [
            CareFacts(r.clinician_id, r.since, r.until)
            for r in session.scalars(
                select(CareRelationship).where(CareRelationship.patient_id == patient_id)
            )
        ]
        allowed: set[str] = set()
        refusals = []
        for part in sorted(parts):
            decision = decide_patient(
                actor,
                _PARTS[part],
                patient_user_id=patient.user_id,
                relationships=relationships,
                now=vault.clock.now(),
            )
            if decision.allowed:
                allowed.add(part)
            else:
                refusals.append((part, decision.reason))
        must = [(p, r) for p, r in refusals if p in required]
        # Reading the patient's own name needs at least one part allowed.
        outcome = Outcome.DENIED if must or not allowed else Outcome.ALLOWED
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=Action.RECORD_EXPORT_FHIR,
            object=obj,
            outcome=outcome,
            purpose=chosen.value,
            reason=(
                f"read {', '.join(sorted(allowed)) or 'nothing'}"
                + "".join(f"; {p} refused: {r}" for p, r in refusals)
            ),
        )
        name = patient.display_name
        photo_ids = (
            list(
                session.scalars(
                    select(Photo.id)
                    .where(Photo.patient_id == patient_id, Photo.deleted_at.is_(None))
                    .order_by(Photo.uploaded_at)
                )
            )
            if allowed & {"photos", "measurements"}
            else []
        )
    if outcome is Outcome.DENIED:
        raise AccessDenied((must or refusals)[0][1])
    photos: list[ExportedPhoto] | None = None
    grants: list[PhotoGrant] = []
    if "photos" in allowed and load_photos:
        for pid in photo_ids:
            try:
                grants.append(
                    grant_export(
                        vault,
                        photo_id=pid,
                        actor=actor,
                        purpose=chosen,
                        action=Action.PHOTO_EXPORT_FHIR,
                        detail="FHIR Media",
                    )
                )
            except AccessDenied:
                continue  # audited; this one is not for this caller
        start, count = window if window is not None else (0, len(grants))
        action = Action.PHOTO_EXPORT_FHIR
        photos = [open_export(vault, g, actor=actor, action=action) for g in grants[start:][:count]]
    measurements = (
        export_measurements(vault, actor=actor, purpose=chosen, photo_ids=photo_ids)
        if "measurements" in allowed
        else None
    )
    consents = consent_service.consent_history(vault, patient_id) if "consents" in allowed else None
    events = _events(vault, patient_id) if "events" in allowed else None
    return RecordExport(
        patient_id, name, photos, consents, events, measurements, photo_total=len(grants)
    )


# -- read by id (Consent/{id}, AuditEvent/{id}) ------------------------------------------------


def patient_of_consent(vault: Vault, consent_id: str) -> str:
    with vault.reading() as session:
        row = session.get(Consent, consent_id)
        if row is None:
            raise NotFound(f"there is no consent {consent_id}")
        return row.patient_id


def patient_of_event(vault: Vault, seq: str) -> str:
    """The patient whose history holds audit event ``seq`` (events about no patient: 404)."""
    if not seq.isdigit():
        raise NotFound(f"there is no audit event {seq}")
    with vault.reading() as session:
        event = session.get(AuditEvent, int(seq))
        if event is None:
            raise NotFound(f"there is no audit event {seq}")
        kind, _, ref = event.object.partition(":")
        if kind == "patient" and session.get(Patient, ref) is not None:
            return ref
        photo = session.get(Photo, ref) if kind == "photo" else None
        if photo is None:
            raise NotFound(f"audit event {seq} is not in a patient's history")
        return photo.patient_id


def _events(vault: Vault, patient_id: str) -> list[AuditEvent]:
    """The audit events about the patient and their photos, oldest first (as history shows)."""
    with vault.reading() as session:
        ids = list(session.scalars(select(Photo.id).where(Photo.patient_id == patient_id)))
        objects = [f"photo:{p}" for p in ids] + [f"patient:{patient_id}"]
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.object.in_(objects)).order_by(AuditEvent.seq)
        ).all()
        session.expunge_all()
        return list(rows)
