"""Exports for other systems: DICOM files, FHIR resources, sends to a PACS — decided and audited.

    >>> got = export_dicom(vault, photo_id=p, actor=clinician, purpose="care")  # doctest: +SKIP
    >>> got.part10.transfer_syntax
    '1.2.840.10008.1.2.4.50'
    >>> rec = export_record(vault, actor=clinician, patient_id=pid)               # doctest: +SKIP

A photo that leaves skinvault is an *export*: it is decided by
:func:`skinvault.policy.decide` with :attr:`Access.EXPORT` (so a consent
limited to "inside this clinic" refuses it) and audited with its own action
(``photo:export-dicom``, ``photo:export-fhir``, ``photo:send``), never as an
ordinary view. The audit event commits before any byte is decrypted, exactly as
for a view (:mod:`skinvault.services.photos`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from skinvault.actors import Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import (
    AuditEvent,
    BodySite,
    CareRelationship,
    Consent,
    Measurement,
    Patient,
    Photo,
)
from skinvault.errors import (
    AccessDenied,
    DestinationUnavailable,
    NotFound,
    RequestInvalid,
    SkinvaultError,
)
from skinvault.interop import dicom, fhir, senders
from skinvault.interop.sites import SNOMED_SYSTEM, site_of
from skinvault.photos.derivative import open_size
from skinvault.policy.decide import (
    Access,
    CareFacts,
    Decision,
    Obligation,
    PatientAction,
    decide_patient,
)
from skinvault.policy.purposes import Purpose
from skinvault.services import consents as consent_service
from skinvault.services.photos import (
    MEDIA_TYPES,
    PHOTO,
    _audit_failure,
    _audit_reason,
    _decision,
    _decrypt,
    _file_break_glass,
    _parse_purpose,
    _read,
)


@dataclass(frozen=True)
class PhotoRecord:
    """What an export may say about one photo (de-identified: no patient, dates or note)."""

    photo_id: str
    patient_id: str | None
    patient_name: str | None
    site: str | None
    site_label: str | None
    taken_on: date | None
    uploaded_at: datetime | None
    format: str
    media_type: str
    width: int
    height: int
    size: int
    obligations: frozenset[Obligation]

    @property
    def deidentified(self) -> bool:
        return Obligation.DEIDENTIFIED in self.obligations


@dataclass(frozen=True)
class ExportedPhoto:
    record: PhotoRecord
    data: bytes

    @property
    def sha1(self) -> bytes:
        # R4 Attachment.hash is the SHA-1 of the data (base64 in JSON).
        return hashlib.sha1(self.data, usedforsecurity=False).digest()


@dataclass(frozen=True)
class DicomExport:
    record: PhotoRecord
    part10: dicom.Part10


@dataclass(frozen=True)
class PhotoGrant:
    """An export decided and audited, not yet decrypted (see :func:`open_export`)."""

    record: PhotoRecord
    blob_key: str
    wrapped: bytes
    sha256: str
    purpose: str


def grant_export(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    purpose: Purpose | str,
    action: Action,
    break_glass_reason: str | None = None,
    detail: str = "",
) -> PhotoGrant:
    """Decide (as an export) and audit one photo; a refusal is audited, then raised."""
    obj = f"photo:{photo_id}"
    denied: AccessDenied | None = None
    try:
        chosen = _parse_purpose(purpose)
        with vault.sessions.begin() as session:
            photo = session.get(Photo, photo_id)
            if photo is None or photo.deleted_at is not None:
                raise NotFound(f"there is no photo {photo_id}")
            decision = _decision(
                session,
                vault,
                photo,
                actor=actor,
                access=Access.EXPORT,
                purpose=chosen,
                break_glass_reason=break_glass_reason,
            )
            if decision.allowed and Obligation.DEIDENTIFIED in decision.obligations:
                # Fail closed: a grant hands out the stored photo, never a version (the
                # de-identified one is served by export_photo); _decision refused the rest.
                decision = Decision(
                    False,
                    "The patient allows this use only for a de-identified version; export"
                    " the photo on its own to get it.",
                )
            reason = _audit_reason(decision)  # marks break-glass as views do
            if detail:
                reason = f"{reason} ({detail})"
            event = record(
                session,
                clock=vault.clock,
                actor=actor.audit_name,
                action=action,
                object=obj,
                outcome=Outcome.ALLOWED if decision.allowed else Outcome.DENIED,
                purpose=chosen.value,
                reason=reason,
            )
            if not decision.allowed:
                denied = AccessDenied(decision.reason)
            else:
                # An emergency export joins the privacy officer's queue like an emergency view.
                _file_break_glass(session, vault, decision, actor, photo, break_glass_reason, event)
                patient = session.get(Patient, photo.patient_id)
                site = session.get(BodySite, photo.site_id) if photo.site_id else None
                hidden = Obligation.DEIDENTIFIED in decision.obligations
                meta = PhotoRecord(
                    photo_id=photo.id,
                    patient_id=None if hidden else photo.patient_id,
                    patient_name=None if hidden or patient is None else patient.display_name,
                    site=site.code if site else None,
                    site_label=site.label if site else None,
                    taken_on=None if hidden else photo.taken_on,
                    uploaded_at=None if hidden else photo.uploaded_at,
                    format=photo.format,
                    media_type=MEDIA_TYPES.get(photo.format, "application/octet-stream"),
                    width=photo.width,
                    height=photo.height,
                    size=photo.size,
                    obligations=decision.obligations,
                )
                blob_key, wrapped, sha256 = photo.blob_key, photo.wrapped_dek, photo.content_sha256
        if denied is not None:
            raise denied
    except SkinvaultError as exc:
        if exc is not denied:
            _audit_failure(vault, actor, action, obj, str(exc), purpose=str(purpose)[:20])
        raise
    assert wrapped is not None
    return PhotoGrant(meta, blob_key, wrapped, sha256, chosen.value)


def open_export(vault: Vault, grant: PhotoGrant, *, actor: Actor, action: Action) -> ExportedPhoto:
    """Decrypt a granted export (the audit event of the grant has committed already)."""
    photo_id = grant.record.photo_id
    try:
        data = _decrypt(
            vault,
            object_id=photo_id,
            kind=PHOTO,
            blob_key=grant.blob_key,
            wrapped=grant.wrapped,
            sha256=grant.sha256,
        )
    except SkinvaultError as exc:
        _audit_failure(vault, actor, action, f"photo:{photo_id}", str(exc), purpose=grant.purpose)
        raise
    return ExportedPhoto(grant.record, data)


def export_photo(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    purpose: Purpose | str,
    action: Action,
    break_glass_reason: str | None = None,
    detail: str = "",
) -> ExportedPhoto:
    """Decide (as an export), audit, then decrypt one photo; a refusal is audited first.

    The same read as a view (:func:`skinvault.services.photos._read`), decided with
    :attr:`Access.EXPORT`: a consent limited to a version exports that version (a JPEG).
    """

    def meta_of(session: Session, photo: Photo, decision: Decision) -> PhotoRecord:
        patient = session.get(Patient, photo.patient_id)
        site = session.get(BodySite, photo.site_id) if photo.site_id else None
        hidden = Obligation.DEIDENTIFIED in decision.obligations
        return PhotoRecord(
            photo_id=photo.id,
            patient_id=None if hidden else photo.patient_id,
            patient_name=None if hidden or patient is None else patient.display_name,
            site=site.code if site else None,
            site_label=site.label if site else None,
            taken_on=None if hidden else photo.taken_on,
            uploaded_at=None if hidden else photo.uploaded_at,
            format=photo.format,
            media_type=MEDIA_TYPES.get(photo.format, "application/octet-stream"),
            width=photo.width,
            height=photo.height,
            size=photo.size,
            obligations=decision.obligations,
        )

    got = _read(
        vault,
        photo_id=photo_id,
        actor=actor,
        purpose=purpose,
        action=action,
        break_glass_reason=break_glass_reason,
        derivative=None,
        access=Access.EXPORT,
        detail=detail,
        collect=meta_of,
    )
    meta = got.collected
    assert isinstance(meta, PhotoRecord)
    if got.version is not None:  # a version: a JPEG of its own size
        width, height = open_size(got.data)
        meta = replace(
            meta, format="jpeg", media_type=got.media_type, width=width, height=height,
            size=len(got.data),
        )  # fmt: skip
    return ExportedPhoto(meta, got.data)


def dicom_of(exported: ExportedPhoto, *, issuer: str) -> dicom.Part10:
    meta = exported.record
    return dicom.build(
        dicom.DicomPhoto(
            photo_id=meta.photo_id,
            patient_id=meta.patient_id or "",
            patient_name=meta.patient_name or "",
            site=meta.site,
            site_label=meta.site_label,
            data=exported.data,
            format=meta.format,
            taken_on=meta.taken_on,
            uploaded_at=meta.uploaded_at or datetime(1970, 1, 1),  # unused when de-identified
            deidentified=meta.deidentified,
            issuer=issuer,
        )
    )


def export_dicom(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    purpose: Purpose | str,
    break_glass_reason: str | None = None,
    action: Action = Action.PHOTO_EXPORT_DICOM,
    detail: str = "",
) -> DicomExport:
    """The photo as a DICOM Part 10 file (VL Photographic Image), if an export is allowed."""
    exported = export_photo(
        vault,
        photo_id=photo_id,
        actor=actor,
        purpose=purpose,
        action=action,
        break_glass_reason=break_glass_reason,
        detail=detail,
    )
    try:
        part10 = dicom_of(exported, issuer=vault.settings.organisation)
    except SkinvaultError as exc:
        _audit_failure(vault, actor, action, f"photo:{photo_id}", str(exc))
        raise
    return DicomExport(exported.record, part10)


# -- the record as a whole (FHIR Patient, Media search, Consent, AuditEvent, $everything) ----


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
    chosen = _parse_purpose(purpose)
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


# -- measurements (FHIR Observation) ---------------------------------------------------------


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
    value: float
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
    chosen = _parse_purpose(purpose)
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
            decision = _decision(
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
                reason=f"{_audit_reason(decision)} (FHIR Observation)",
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


# -- FHIR resources of an export ------------------------------------------------------------


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


# -- sending to a DICOM destination (PACS) ---------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    photo_id: str
    destination: str
    attempts: int
    detail: str
    sop_instance_uid: str
    #: The id of the background job that keeps trying, when the attempts in the request
    #: failed and ``background`` was asked for; None when it was delivered.
    retry_job: str | None = None

    @property
    def delivered(self) -> bool:
        return self.retry_job is None


#: The job kind of a send the queue retries (services/job_kinds.py registers it).
SEND_JOB = "dicom_send"


def destinations(vault: Vault) -> list[str]:
    """The names of the configured DICOM destinations."""
    return sorted(vault.settings.dicom_destinations)


def _sender(
    vault: Vault,
    destination: str,
    sender_factory: Callable[[str, str], senders.DicomSender] | None,
) -> senders.DicomSender:
    url = vault.settings.dicom_destinations.get(destination)
    if url is None:
        known = ", ".join(destinations(vault)) or "none is configured"
        raise NotFound(f"there is no DICOM destination {destination!r} ({known})")
    timeout = vault.settings.dicom_send_timeout_seconds
    make = sender_factory or (
        lambda u, aet: senders.sender_for(u, calling_aet=aet, timeout=timeout)
    )
    return make(url, vault.settings.dicom_calling_aet)


def send_photo(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    destination: str,
    purpose: Purpose | str = Purpose.CARE,
    background: bool = False,
    sender_factory: Callable[[str, str], senders.DicomSender] | None = None,
    wait: Callable[[float], None] = time.sleep,
) -> SendResult:
    """Export the photo as DICOM (decided and audited as ``photo:send``) and deliver it.

    Without ``background``: up to ``dicom_send_attempts`` attempts in the caller's
    request (each at most ``dicom_send_timeout_seconds``, waiting 1 s, 2 s, …); the
    outcome is audited ``done`` with the destination's answer, or ``failed`` with the
    last error, raised as :class:`DestinationUnavailable`.

    With ``background`` (the API and the portal): one attempt in the request; if it
    fails, the failure is audited and a ``dicom_send`` job (:func:`retry_send`) keeps
    trying from the queue (``job_attempts`` tries, ``job_retry_seconds`` doubling),
    and the result names that job instead of raising.
    """
    sender = _sender(vault, destination, sender_factory)
    got = export_dicom(
        vault,
        photo_id=photo_id,
        actor=actor,
        purpose=purpose,
        action=Action.PHOTO_SEND,
        detail=f"to {destination}",
    )
    attempts = 1 if background else vault.settings.dicom_send_attempts
    last: DestinationUnavailable | None = None
    for attempt in range(1, attempts + 1):
        try:
            detail = sender.send(got.part10.data)
        except DestinationUnavailable as exc:
            last = exc
            if attempt < attempts:
                wait(float(attempt))
            continue
        _audit_send(
            vault, actor, photo_id, Outcome.DONE, f"{destination}: {detail}", purpose=str(purpose)
        )
        return SendResult(photo_id, destination, attempt, detail, got.part10.sop_instance_uid)
    assert last is not None
    if background:
        from skinvault.services import jobs  # noqa: PLC0415 (jobs imports the services)

        chosen = _parse_purpose(purpose)
        message = f"{destination}: {last} (try 1; the queue tries again)"
        with vault.sessions.begin() as session:
            _record_send(session, vault, actor, photo_id, Outcome.FAILED, message, chosen.value)
            job_id = jobs.enqueue(
                session,
                vault,
                SEND_JOB,
                {
                    "photo_id": photo_id,
                    "actor_id": actor.id,
                    "destination": destination,
                    "purpose": chosen.value,
                },
                delay=vault.settings.job_retry_seconds,
            )
        return SendResult(
            photo_id, destination, 1, str(last), got.part10.sop_instance_uid, retry_job=job_id
        )
    message = f"{destination}: {last} (after {attempts} attempts)"
    _audit_send(vault, actor, photo_id, Outcome.FAILED, message, purpose=str(purpose))
    raise DestinationUnavailable(message)


def retry_send(vault: Vault, payload: dict[str, object], *, attempt: int, last: bool) -> str:
    """One queued try of a send that failed in its request (the ``dicom_send`` job).

    The send is decided again, as the person who asked for it (a consent withdrawn or
    an account disabled since then stops it; :class:`PermissionError` tells the queue
    not to retry), audited as ``photo:send``, then tried once. A failure is audited
    ``failed`` only on the last try (the earlier ones are in the job's error); it is
    raised so that the queue tries again later.
    """
    from skinvault.db.models import User  # noqa: PLC0415

    photo_id = str(payload["photo_id"])
    destination = str(payload["destination"])
    purpose = str(payload.get("purpose", Purpose.CARE.value))
    with vault.reading() as session:
        user = session.get(User, str(payload["actor_id"]))
        if user is None or user.disabled:
            raise PermissionError("the account that asked for the send is gone or disabled")
        actor = Actor(user.id, Role(user.role), user.display_name)
    sender = _sender(vault, destination, None)
    got = export_dicom(
        vault,
        photo_id=photo_id,
        actor=actor,
        purpose=purpose,
        action=Action.PHOTO_SEND,
        detail=f"to {destination}, queued try {attempt}",
    )
    try:
        detail = sender.send(got.part10.data)
    except DestinationUnavailable as exc:
        if last:
            message = f"{destination}: {exc} (gave up after try {attempt})"
            _audit_send(vault, actor, photo_id, Outcome.FAILED, message, purpose=purpose)
        raise
    message = f"{destination}: {detail} (queued try {attempt})"
    _audit_send(vault, actor, photo_id, Outcome.DONE, message, purpose=purpose)
    return detail


def _audit_send(
    vault: Vault, actor: Actor, photo_id: str, outcome: Outcome, reason: str, *, purpose: str
) -> None:
    with vault.sessions.begin() as session:
        _record_send(session, vault, actor, photo_id, outcome, reason, purpose)


def _record_send(  # noqa: PLR0917 (one private call shape)
    session: Session,
    vault: Vault,
    actor: Actor,
    photo_id: str,
    outcome: Outcome,
    reason: str,
    purpose: str,
) -> None:
    record(
        session,
        clock=vault.clock,
        actor=actor.audit_name,
        action=Action.PHOTO_SEND,
        object=f"photo:{photo_id}",
        outcome=outcome,
        purpose=str(purpose),
        reason=reason,
    )


@dataclass(frozen=True)
class SentToPacs:
    at: datetime
    photo_id: str
    actor: str
    outcome: str  # done | failed
    detail: str


def sends_for(vault: Vault, patient_id: str) -> list[SentToPacs]:
    """The patient's photos sent to DICOM destinations (done and failed), oldest first."""
    return [
        SentToPacs(e.at, e.object.removeprefix("photo:"), e.actor, e.outcome, e.reason or "")
        for e in _events(vault, patient_id)
        if e.action == Action.PHOTO_SEND.value and e.outcome in ("done", "failed")
    ]


# -- photos sent in as FHIR (POST /fhir/R4/Media) ---------------------------------------------


@dataclass(frozen=True)
class MediaUpload:
    patient_id: str
    data: bytes
    site: str | None
    taken_on: date | None


def media_upload(body: object) -> MediaUpload:
    """The photo, patient, site and date a posted Media (or transaction Bundle) carries.

    Raises :class:`RequestInvalid` with the reason when the resource is not one we can store.
    """
    if not isinstance(body, dict):
        raise RequestInvalid("the body must be a FHIR Media resource or a transaction Bundle")
    binaries: dict[str, fhir.Json] = {}
    media_resource: object = body
    if body.get("resourceType") == "Bundle":
        if body.get("type") != "transaction":
            raise RequestInvalid("a Bundle sent here must be a transaction")
        media_resource = None
        for entry in _list(body.get("entry")):
            if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
                continue
            resource = entry["resource"]
            if resource.get("resourceType") == "Binary":
                for key in (entry.get("fullUrl"), f"Binary/{resource.get('id')}"):
                    if key:
                        binaries[str(key)] = resource
            elif resource.get("resourceType") == "Media":
                media_resource = resource
    if not isinstance(media_resource, dict) or media_resource.get("resourceType") != "Media":
        raise RequestInvalid("the body must be a Media (or a transaction Bundle holding one)")
    for contained in _list(media_resource.get("contained")):
        if isinstance(contained, dict) and contained.get("resourceType") == "Binary":
            binaries[f"#{contained.get('id')}"] = contained
    subject_ref = media_resource.get("subject")
    subject = subject_ref.get("reference", "") if isinstance(subject_ref, dict) else ""
    if not isinstance(subject, str) or not subject.startswith("Patient/"):
        raise RequestInvalid("Media.subject must reference the patient: Patient/<id>")
    content = media_resource.get("content")
    if not isinstance(content, dict):
        raise RequestInvalid("Media.content is missing")
    encoded = content.get("data")
    if encoded is None:
        url = content.get("url")
        binary = binaries.get(str(url)) if isinstance(url, str) and url else None
        if binary is None:
            raise RequestInvalid(
                "Media.content needs the image: data, or url naming a contained Binary (#id)"
                " or a Binary in the same transaction"
            )
        encoded = binary.get("data")
    if not isinstance(encoded, str) or not encoded:
        raise RequestInvalid("the image data is missing")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise RequestInvalid(f"the image data is not base64: {exc}") from exc
    site = None
    body_site = media_resource.get("bodySite")
    if isinstance(body_site, dict):
        for coding in _list(body_site.get("coding")):
            if isinstance(coding, dict) and coding.get("system") == SNOMED_SYSTEM:
                site = site_of(str(coding.get("code", "")))
                if site:
                    break
        if site is None and isinstance(body_site.get("text"), str):
            site = body_site["text"].strip()[:64] or None
    taken_on = None
    created = media_resource.get("createdDateTime")
    if isinstance(created, str) and created:
        try:
            taken_on = date.fromisoformat(created[:10])
        except ValueError as exc:
            raise RequestInvalid(f"createdDateTime is not a date: {created!r}") from exc
    return MediaUpload(subject.removeprefix("Patient/"), data, site, taken_on)


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []
