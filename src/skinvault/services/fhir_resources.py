"""The FHIR R4 resources of an export: Media, Observation, Consent, AuditEvent, $everything.

Pure: each function turns what an export gathered (already decided and audited, see
:mod:`~skinvault.services.photo_export`, :mod:`~skinvault.services.measurement_export`,
:mod:`~skinvault.services.record_export`) into JSON through :mod:`skinvault.interop.fhir`.
"""

from __future__ import annotations

from skinvault.db.models import AuditEvent
from skinvault.interop import fhir
from skinvault.policy.purposes import Purpose
from skinvault.services import consents as consent_service
from skinvault.services.measurement_export import MeasurementRecord
from skinvault.services.photo_export import ExportedPhoto
from skinvault.services.record_export import RecordExport


def fhir_observation(m: MeasurementRecord) -> fhir.Json:
    return fhir.observation(
        fhir.ObservationFacts(
            measurement_id=m.measurement_id,
            photo_id=m.photo_id,
            patient_id=m.patient_id,
            site=m.site,
            site_label=m.site_label,
            effective=m.taken,
            issued=m.measured_at,
            kind=m.kind,
            value=m.value,
            method=m.method,
            version=m.version,
            notes=m.notes,
            colour_reference=m.colour_reference,
        )
    )


def fhir_media(exported: ExportedPhoto) -> fhir.Json:
    meta = exported.record
    return fhir.media(
        fhir.MediaFacts(
            photo_id=meta.photo_id,
            patient_id=meta.patient_id,
            site=meta.site,
            site_label=meta.site_label,
            created=meta.taken_on or meta.uploaded_at,
            media_type=meta.media_type,
            size=len(exported.data),
            sha1=exported.sha1,
            width=meta.width,
            height=meta.height,
        )
    )


def _fhir_consent(view: consent_service.ConsentView, current_ids: set[str]) -> fhir.Json:
    return fhir.consent(
        fhir.ConsentFacts(
            consent_id=view.id,
            patient_id=view.patient_id,
            purpose=view.purpose,
            granted=view.granted,
            scopes=view.scopes,
            recorded_at=view.recorded_at,
            expires_at=view.expires_at,
            revoked_at=view.revoked_at,
            current=view.id in current_ids,
            text_version=view.text_version,
        )
    )


def _current_consents(views: list[consent_service.ConsentView]) -> set[str]:
    latest: dict[Purpose, consent_service.ConsentView] = {}
    for view in views:  # oldest first: the last answer per purpose is the one in force
        latest[view.purpose] = view
    return {v.id for v in latest.values() if v.revoked_at is None}


def fhir_event(event: AuditEvent) -> fhir.Json:
    return fhir.audit_event(
        fhir.EventFacts(
            seq=event.seq,
            at=event.at,
            actor=event.actor,
            action=event.action,
            object=event.object,
            purpose=event.purpose,
            outcome=event.outcome,
            reason=event.reason,
        )
    )


def fhir_consents(views: list[consent_service.ConsentView]) -> list[fhir.Json]:
    """Every recorded answer as a Consent; the latest per purpose is active."""
    current = _current_consents(views)
    return [_fhir_consent(v, current) for v in views]


def fhir_everything(got: RecordExport, *, base: str) -> fhir.Json:
    """Patient/$everything: the Patient and every Media, Observation, Consent and AuditEvent
    ``got`` holds."""
    resources = [fhir.patient(got.patient_id, got.patient_name)]
    resources += [fhir_media(p) for p in got.photos or []]
    resources += [fhir_observation(m) for m in got.measurements or []]
    resources += fhir_consents(got.consents) if got.consents is not None else []
    resources += [fhir_event(e) for e in got.events or []]
    return fhir.bundle(resources, base=base)
