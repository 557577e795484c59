"""Stored measurements leaving skinvault (FHIR Observation), decided and audited like their photo.

Each photo that has measurements is decided as an export (:attr:`Access.EXPORT`) and
audited as ``measurement:export-fhir``; no image byte is decrypted. The FHIR resource
itself is made in :mod:`~skinvault.services.fhir_resources`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import BodySite, Measurement, Photo
from skinvault.errors import AccessDenied, NotFound
from skinvault.policy.decide import Access, Obligation
from skinvault.policy.purposes import Purpose
from skinvault.services.photo_policy import audit_reason, parse_purpose, photo_decision


@dataclass(frozen=True)
class MeasurementRecord:
    """What an export may say about one stored measurement (de-identified: no patient, dates)."""

    measurement_id: str
    photo_id: str
    patient_id: str | None
    site: str | None
    site_label: str | None
    taken: date | datetime | None
    measured_at: datetime | None
    kind: str
    value: float | None  #: None: not measured (the notes say why)
    method: str
    version: str
    notes: tuple[str, ...]
    colour_reference: str | None


def export_measurements(
    vault: Vault,
    *,
    actor: Actor,
    purpose: Purpose | str,
    photo_ids: list[str],
    measurement_id: str | None = None,
    strict: bool = False,
) -> list[MeasurementRecord]:
    """The stored measurements of ``photo_ids`` the caller may export, oldest first.

    Each photo that has measurements is decided exactly as exporting the photo
    (:attr:`Access.EXPORT` for ``purpose``) and audited as
    ``measurement:export-fhir``; no image byte is decrypted. A refused photo is
    left out, or with ``strict`` raises :class:`AccessDenied` (after the audit).
    """
    chosen = parse_purpose(purpose)
    found: list[MeasurementRecord] = []
    denied: AccessDenied | None = None
    with vault.sessions.begin() as session:
        for pid in photo_ids:
            photo = session.get(Photo, pid)
            if photo is None or photo.deleted_at is not None or photo.wrapped_dek is None:
                continue  # deleted or shredded: its measurements go with it
            query = select(Measurement).where(Measurement.photo_id == pid)
            if measurement_id is not None:
                query = query.where(Measurement.id == measurement_id)
            rows = list(session.scalars(query.order_by(Measurement.measured_at, Measurement.id)))
            if not rows:
                continue
            decision = photo_decision(
                session,
                vault,
                photo,
                actor=actor,
                access=Access.EXPORT,
                purpose=chosen,
                break_glass_reason=None,
            )
            record(
                session,
                clock=vault.clock,
                actor=actor.audit_name,
                action=Action.MEASUREMENT_EXPORT_FHIR,
                object=f"photo:{pid}",
                outcome=Outcome.ALLOWED if decision.allowed else Outcome.DENIED,
                purpose=chosen.value,
                reason=f"{audit_reason(decision)} (FHIR Observation)",
            )
            if not decision.allowed:
                if strict:
                    denied = AccessDenied(decision.reason)
                    break
                continue
            hidden = Obligation.DEIDENTIFIED in decision.obligations
            site = session.get(BodySite, photo.site_id) if photo.site_id else None
            for m in rows:
                extra = json.loads(m.details_json or "{}")
                notes = extra.get("notes") if isinstance(extra, dict) else None
                colour = extra.get("colour_reference") if isinstance(extra, dict) else None
                found.append(
                    MeasurementRecord(
                        measurement_id=m.id,
                        photo_id=pid,
                        patient_id=None if hidden else photo.patient_id,
                        site=site.code if site else None,
                        site_label=site.label if site else None,
                        taken=None if hidden else (photo.taken_on or photo.uploaded_at),
                        measured_at=None if hidden else m.measured_at,
                        kind=m.kind,
                        value=m.value,
                        method=m.method,
                        version=m.version,
                        notes=tuple(str(n) for n in notes) if isinstance(notes, list) else (),
                        colour_reference=str(colour) if colour else None,
                    )
                )
    if denied is not None:
        raise denied
    return found


def export_measurement(
    vault: Vault, *, actor: Actor, measurement_id: str, purpose: Purpose | str
) -> MeasurementRecord:
    """One stored measurement (``Observation/{id}``), decided and audited like its photo."""
    with vault.reading() as session:
        row = session.get(Measurement, measurement_id)
        photo_id = row.photo_id if row is not None else None
    if photo_id is None:
        raise NotFound(f"there is no measurement {measurement_id}")
    got = export_measurements(
        vault,
        actor=actor,
        purpose=purpose,
        photo_ids=[photo_id],
        measurement_id=measurement_id,
        strict=True,
    )
    if not got:
        raise NotFound(f"there is no measurement {measurement_id}")
    return got[0]
