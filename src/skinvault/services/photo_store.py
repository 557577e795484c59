"""Storing a photo: scrub, encrypt, store, audit — and what a caller learns about it.

    >>> stored = store_photo(vault, patient_id=p, site="left-hand", data=raw,
    ...                      note="day 3", actor=clinician)          # doctest: +SKIP

Owns the upload (:func:`store_photo`, the body-site row it names,
:func:`ensure_body_site`, and the jobs it enqueues), how a blob is named and written
(:func:`new_blob_key`, :func:`put_blob`; the thumbnail and version jobs write theirs the
same way) and the kinds bound into each seal (:data:`PHOTO`, :data:`THUMBNAIL`), the
photo's sealed note (:func:`seal_note`, :func:`open_note`), what a caller learns about a
stored photo (:class:`StoredPhoto`, :func:`stored_photo_of`, :func:`get_photo`). A
refused or failed attempt is recorded by :mod:`skinvault.services.failed_attempts`.
Reading is :mod:`skinvault.services.photo_reads`, under the decision of
:mod:`skinvault.services.photo_policy`; removal is :mod:`skinvault.services.photo_shredding`.

Atomicity: the blobs are written (atomically, under their final keys) before
the database transaction that lists them commits. A crash in between leaves at
worst an unlisted blob, which :func:`skinvault.services.admin.sweep` removes;
a listed photo is always fully readable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from skinvault.actors import Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import maybe_checkpoint, record
from skinvault.bootstrap import Vault
from skinvault.crypto.envelope import open_blob, pack, seal, unpack
from skinvault.db.models import BodySite, Patient, Photo
from skinvault.errors import NotFound, PhotoError, SkinvaultError, StorageUnavailable, TooLarge
from skinvault.photos.findings import Finding
from skinvault.photos.scrub import scrub
from skinvault.photos.thumbnail import Decoded, decode, upright_size
from skinvault.services.failed_attempts import audit_failure
from skinvault.services.notifications import Kind, notify_care_team
from skinvault.tracking import sites as body_sites
from skinvault.tracking.capture import capture_date

PHOTO = "photo"
THUMBNAIL = "thumbnail"


@dataclass(frozen=True)
class StoredPhoto:
    """What a caller learns about a photo: never its bytes, never its key."""

    id: str
    patient_id: str
    site: str | None
    format: str
    width: int
    height: int
    size: int
    uploaded_at: datetime
    taken_on: date | None
    note: str
    findings: tuple[Finding, ...]
    lossless: bool
    notes: tuple[str, ...]


NOTE = "note"


def seal_note(vault: Vault, photo_id: str, note: str) -> bytes | None:
    """The photo's note encrypted like the photo (its own data key, bound to the photo id)."""
    if not note:
        return None
    return pack(seal(note.encode("utf-8"), object_id=photo_id, kind=NOTE, kek=vault.keys.current()))


def open_note(vault: Vault, photo: Photo) -> str:
    if photo.note_enc is None:
        return ""
    sealed = unpack(photo.note_enc)
    return open_blob(
        sealed.blob, sealed.wrapped_dek, object_id=photo.id, kind=NOTE, keys=vault.keys
    ).decode("utf-8")


def put_blob(vault: Vault, key: str, blob: bytes) -> None:
    """Write a blob; a store that fails with an OS error (whatever its kind) is the
    server's fault — StorageUnavailable (503), never the uploader's 4xx."""
    try:
        vault.blobs.put(key, blob)
    except OSError as exc:
        raise StorageUnavailable(f"{vault.blobs.description} cannot be written ({exc})") from exc


#: Decodes an upload's pixels beside the rest of its store (threads start on first use).
_DECODERS = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="sv-decode")
#: Checksums and the durable blob write of uploads (I/O and hashing: no interpreter lock
#: held), apart from the decoders so that a long HEIF decode never delays a write.
_STORE_IO = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sv-store")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_blob_key(vault: Vault, kind: str) -> str:
    # The time prefix lets a sweep tell an orphan from an upload still in progress.
    return f"{kind}/{vault.clock.now():%Y%m%d%H%M%S}-{vault.tokens.new_id()}"


def ensure_body_site(
    session: Session, vault: Vault, patient_id: str, code: str | None
) -> BodySite | None:
    if not code:
        return None
    coded = body_sites.from_legacy(code)  # the closed vocabulary; unknown text -> "other"
    site = session.scalars(
        select(BodySite).where(BodySite.patient_id == patient_id, BodySite.code == coded.code)
    ).first()
    if site is None:
        site = BodySite(
            id=vault.tokens.new_id(),
            patient_id=patient_id,
            code=coded.code,
            label=coded.label,
            laterality=coded.laterality,
            snomed_code=coded.snomed_code,
        )
        session.add(site)
    return site


def _report_json(findings: tuple[Finding, ...], lossless: bool, notes: tuple[str, ...]) -> str:
    return json.dumps(
        {"findings": [f.as_json() for f in findings], "lossless": lossless, "notes": list(notes)},
        ensure_ascii=False,
    )


def stored_photo_of(vault: Vault, photo: Photo, site: BodySite | None) -> StoredPhoto:
    from skinvault.photos.findings import Category  # noqa: PLC0415

    report = json.loads(photo.scrub_report_json)
    findings = tuple(
        Finding(Category(f["category"]), f["label"], f["where"], f["description"])
        for f in report["findings"]
    )
    return StoredPhoto(
        id=photo.id,
        patient_id=photo.patient_id,
        site=site.code if site else None,
        format=photo.format,
        width=photo.width,
        height=photo.height,
        size=photo.size,
        uploaded_at=photo.uploaded_at,
        taken_on=photo.taken_on,
        note=open_note(vault, photo),
        findings=findings,
        lossless=bool(report["lossless"]),
        notes=tuple(report["notes"]),
    )


def store_photo(
    vault: Vault,
    *,
    patient_id: str,
    data: bytes,
    actor: Actor,
    site: str | None = None,
    note: str = "",
    taken_on: date | None = None,
    photo_taken_on: date | None = None,
    phash: str | None = None,
    original_sha256: str | None = None,
) -> StoredPhoto:
    """Scrub ``data``, store it encrypted, audit it; nothing is kept on error (the
    thumbnail is a job enqueued in the same transaction: services/thumbnails.py).

    A saved preview (services/drafts.py) passes what it read from the file the person
    chose: ``photo_taken_on`` (its capture date), ``phash`` and ``original_sha256``.
    """
    target = f"patient:{patient_id}"
    try:
        if len(data) > vault.settings.max_upload_bytes:
            raise TooLarge(
                f"the upload is {len(data):,} bytes; the limit is"
                f" {vault.settings.max_upload_bytes:,} bytes"
            )
        # The capture date is read before scrubbing removes it; a date typed in wins.
        taken_on_source = "person" if taken_on is not None else None
        if taken_on is None:
            taken_on = photo_taken_on or capture_date(data)
            taken_on_source = "photo" if taken_on is not None else None
        scrubbed, report = scrub(data)
    except PhotoError as exc:
        audit_failure(vault, actor, Action.PHOTO_STORE, target, str(exc))
        raise
    # The pixels must decode, else the upload is refused here. A JPEG whose structure
    # proves they do (photos/jpeg_structure.py) is not decoded: only its size is read,
    # and the thumbnail job decodes it. Any other is decoded (the thumbnail job then
    # makes the thumbnail from these same pixels when it runs in this process); Pillow
    # decodes without the interpreter lock, so this runs beside the sealing, the durable
    # write and the checksums.
    decoding: Future[Decoded] | None = None
    if not report.decodable:
        decoding = _DECODERS.submit(decode, scrubbed, vault.settings.thumbnail_size)
    photo_id = vault.tokens.new_id()
    kek = vault.keys.current()
    photo_key = new_blob_key(vault, "p")
    writing: Future[None] | None = None
    try:
        # The checksums (hashlib lets go of the interpreter lock too) beside the sealing;
        # the durable write beside the database work, waited for before the commit that
        # lists the blob.
        content_sum = _STORE_IO.submit(_sha256, scrubbed)
        original_sum = None if original_sha256 else _STORE_IO.submit(_sha256, data)  # receipts
        sealed = seal(scrubbed, object_id=photo_id, kind=PHOTO, kek=kek)
        writing = _STORE_IO.submit(put_blob, vault, photo_key, sealed.blob)
        content_sha256 = content_sum.result()
        original_sha256 = original_sum.result() if original_sum else original_sha256
        try:
            decoded = decoding.result() if decoding is not None else None
            width, height = (decoded.width, decoded.height) if decoded else upright_size(scrubbed)
        except PhotoError as exc:
            audit_failure(vault, actor, Action.PHOTO_STORE, target, str(exc))
            raise
        now = vault.clock.now()
        with vault.sessions.begin() as session:
            if session.get(Patient, patient_id) is None:
                raise NotFound(f"there is no patient {patient_id}")
            body_site = ensure_body_site(session, vault, patient_id, site)
            photo = Photo(
                id=photo_id,
                patient_id=patient_id,
                site_id=body_site.id if body_site else None,
                taken_on=taken_on,
                taken_on_source=taken_on_source,
                uploaded_at=now,
                uploaded_by=actor.id if actor.role else None,
                note_enc=seal_note(vault, photo_id, note),
                content_sha256=content_sha256,
                original_sha256=original_sha256,  # for receipts (0013)
                phash=phash,  # resend guard (0012)
                blob_key=photo_key,
                wrapped_dek=sealed.wrapped_dek,
                kek_id=kek.id,
                format=report.format.value,
                width=width,
                height=height,
                size=len(scrubbed),
                scrub_report_json=_report_json(
                    report.findings, bool(report.lossless), report.notes
                ),
            )
            session.add(photo)
            _enqueue_derivatives(
                session, vault, photo_id, report.format.value, measure=body_site is not None
            )
            record(
                session,
                clock=vault.clock,
                actor=actor.audit_name,
                action=Action.PHOTO_STORE,
                object=f"photo:{photo_id}",
                outcome=Outcome.DONE,
                reason=f"{len(report.findings)} metadata findings removed",
            )
            maybe_checkpoint(
                session,
                clock=vault.clock,
                signing_key=vault.keys.signing_key(),
                every=vault.settings.audit_checkpoint_every,
            )
            if actor.role is Role.PATIENT:
                notify_care_team(
                    session,
                    vault,
                    patient_id=patient_id,
                    kind=Kind.NEW_PHOTO,
                    ref=f"photo:{photo_id}",
                )
            stored = stored_photo_of(vault, photo, body_site)
            writing.result()  # the blob is durable before the row listing it commits
    except BaseException:
        # Not listed, so not needed: remove now rather than waiting for a sweep (once
        # its write has ended, so that the removal cannot come before the write).
        with contextlib.suppress(BaseException):
            if writing is not None:
                writing.result()
        with contextlib.suppress(SkinvaultError, OSError):
            vault.blobs.delete(photo_key)
        raise
    from skinvault.services import thumbnails  # noqa: PLC0415 (it imports this module)

    if decoded is not None:
        thumbnails.hand_over(photo_id, decoded, vault.settings.thumbnail_size)
    return stored


def _enqueue_derivatives(
    session: Session, vault: Vault, photo_id: str, fmt: str, *, measure: bool
) -> None:
    """The upload's slow work, as jobs committed with the photo (none lost, none orphaned):
    the thumbnail, a display copy browsers can show, and for a photo of a body site the
    tracking measurement (services/tracking.measure_photo), whichever way it was uploaded."""
    from skinvault.services import jobs  # noqa: PLC0415 (jobs' handlers import this module)

    jobs.enqueue(session, vault, "thumbnail", {"photo_id": photo_id}, key=f"thumbnail:{photo_id}")
    if fmt in DISPLAY_FORMATS:  # browsers cannot show these: make the display copy early
        jobs.enqueue(session, vault, "display_version", {"photo_id": photo_id},
                     key=f"display_version:{photo_id}")  # fmt: skip
    if measure:
        enqueue_measurement(session, vault, photo_id)


def enqueue_measurement(session: Session, vault: Vault, photo_id: str) -> None:
    """Measure the photo for its site's series in the background (once: the job's key)."""
    from skinvault.services import jobs  # noqa: PLC0415 (jobs' handlers import this module)

    jobs.enqueue(session, vault, MEASURE_JOB, {"photo_id": photo_id},
                 key=f"{MEASURE_JOB}:{photo_id}")  # fmt: skip


#: Formats browsers cannot show: their upload also makes a display copy (a JPEG) at once.
DISPLAY_FORMATS = frozenset({"heif", "tiff"})
#: The tracking measurement's job kind (services/job_kinds.MEASURE; that module imports this).
MEASURE_JOB = "measure"


def get_photo(vault: Vault, photo_id: str) -> StoredPhoto:
    """Metadata of a photo (no bytes, not audited: it reveals nothing the caller did not store)."""
    with vault.reading() as session:
        photo = session.get(Photo, photo_id)
        if photo is None or photo.deleted_at is not None:
            raise NotFound(f"there is no photo {photo_id}")
        site = session.get(BodySite, photo.site_id) if photo.site_id else None
        return stored_photo_of(vault, photo, site)


__all__ = [
    "NOTE",
    "PHOTO",
    "THUMBNAIL",
    "StoredPhoto",
    "enqueue_measurement",
    "ensure_body_site",
    "get_photo",
    "new_blob_key",
    "open_note",
    "put_blob",
    "seal_note",
    "store_photo",
    "stored_photo_of",
]
