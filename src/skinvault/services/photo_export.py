"""One photo leaving skinvault: the export decision, its audit, and the DICOM file.

    >>> got = export_dicom(vault, photo_id=p, actor=clinician, purpose="care")  # doctest: +SKIP
    >>> got.part10.transfer_syntax
    '1.2.840.10008.1.2.4.50'

A photo that leaves skinvault is an *export*: it is decided by
:func:`skinvault.policy.decide` with :attr:`Access.EXPORT` (so a consent
limited to "inside this clinic" refuses it) and audited with its own action
(``photo:export-dicom``, ``photo:export-fhir``, ``photo:send``), never as an
ordinary view. The audit event commits before any byte is decrypted, exactly as
for a view (:mod:`skinvault.services.photo_reads`). The record as a whole is in
:mod:`~skinvault.services.record_export`, measurements in
:mod:`~skinvault.services.measurement_export`, FHIR resources in
:mod:`~skinvault.services.fhir_resources`, sends to a PACS in
:mod:`~skinvault.services.dicom_send` and posted FHIR Media in
:mod:`~skinvault.services.fhir_upload`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy.orm import Session

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import BodySite, Patient, Photo
from skinvault.errors import AccessDenied, NotFound, SkinvaultError
from skinvault.interop import dicom
from skinvault.photos.derivative import open_size
from skinvault.policy.decide import Access, Decision, Obligation
from skinvault.policy.purposes import Purpose
from skinvault.services.failed_attempts import audit_failure
from skinvault.services.photo_policy import (
    audit_reason,
    file_break_glass,
    parse_purpose,
    photo_decision,
)
from skinvault.services.photo_reads import MEDIA_TYPES, decrypt_blob, read_decided
from skinvault.services.photo_store import PHOTO


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


def _record_of(session: Session, photo: Photo, decision: Decision) -> PhotoRecord:
    """What an export says of the photo: the patient and dates only when not de-identified."""
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
        chosen = parse_purpose(purpose)
        with vault.sessions.begin() as session:
            photo = session.get(Photo, photo_id)
            if photo is None or photo.deleted_at is not None:
                raise NotFound(f"there is no photo {photo_id}")
            decision = photo_decision(
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
                # de-identified one is served by export_photo); photo_decision refused the rest.
                decision = Decision(
                    False,
                    "The patient allows this use only for a de-identified version; export"
                    " the photo on its own to get it.",
                )
            reason = audit_reason(decision)  # marks break-glass as views do
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
                file_break_glass(session, vault, decision, actor, photo, break_glass_reason, event)
                meta = _record_of(session, photo, decision)
                blob_key, wrapped, sha256 = photo.blob_key, photo.wrapped_dek, photo.content_sha256
        if denied is not None:
            raise denied
    except SkinvaultError as exc:
        if exc is not denied:
            audit_failure(vault, actor, action, obj, str(exc), purpose=str(purpose)[:20])
        raise
    assert wrapped is not None
    return PhotoGrant(meta, blob_key, wrapped, sha256, chosen.value)


def open_export(vault: Vault, grant: PhotoGrant, *, actor: Actor, action: Action) -> ExportedPhoto:
    """Decrypt a granted export (the audit event of the grant has committed already)."""
    photo_id = grant.record.photo_id
    try:
        data = decrypt_blob(
            vault,
            object_id=photo_id,
            kind=PHOTO,
            blob_key=grant.blob_key,
            wrapped=grant.wrapped,
            sha256=grant.sha256,
        )
    except SkinvaultError as exc:
        audit_failure(vault, actor, action, f"photo:{photo_id}", str(exc), purpose=grant.purpose)
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

    The same read as a view (:func:`skinvault.services.photo_reads.read_decided`), decided with
    :attr:`Access.EXPORT`: a consent limited to a version exports that version (a JPEG).
    """
    got = read_decided(
        vault,
        photo_id=photo_id,
        actor=actor,
        purpose=purpose,
        action=action,
        break_glass_reason=break_glass_reason,
        derivative=None,
        access=Access.EXPORT,
        detail=detail,
        collect=_record_of,
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
        audit_failure(vault, actor, action, f"photo:{photo_id}", str(exc))
        raise
    return DicomExport(exported.record, part10)
