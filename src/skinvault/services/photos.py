"""Storing, reading and deleting photos: scrub, encrypt, store, audit — in one place.

    >>> stored = store_photo(vault, patient_id=p, site="left-hand", data=raw,
    ...                      note="day 3", actor=clinician)          # doctest: +SKIP
    >>> read_photo(vault, photo_id=stored.id, actor=clinician, purpose="care").data
    b'\\xff\\xd8...'

Atomicity: the blobs are written (atomically, under their final keys) before
the database transaction that lists them commits. A crash in between leaves at
worst an unlisted blob, which :func:`skinvault.services.admin.sweep` removes;
a listed photo is always fully readable. Deleting destroys the wrapped data
key in the same transaction as the audit event (crypto-shredding): a copy of
the blob from a backup is unreadable from that moment, before the blob itself
is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from skinvault.actors import Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.chain import Event
from skinvault.audit.log import maybe_checkpoint, record
from skinvault.bootstrap import Vault
from skinvault.crypto.envelope import open_blob, pack, seal, unpack
from skinvault.db.models import (
    BodySite,
    CareRelationship,
    Consent,
    Derivative,
    Patient,
    Photo,
)
from skinvault.errors import (
    AccessDenied,
    BlobUnreadable,
    NotFound,
    PhotoError,
    SkinvaultError,
    StorageUnavailable,
    TooLarge,
)
from skinvault.photos.findings import Finding
from skinvault.photos.scrub import scrub
from skinvault.photos.thumbnail import decode
from skinvault.policy.decide import (
    Access,
    CareFacts,
    Decision,
    Obligation,
    PhotoFacts,
    decide,
)
from skinvault.policy.purposes import Purpose
from skinvault.services import versions
from skinvault.services.consents import facts_of
from skinvault.services.notifications import Kind, notify_care_team
from skinvault.services.review import BREAK_GLASS_MARK, file_access
from skinvault.tracking import sites as body_sites
from skinvault.tracking.capture import capture_date

PHOTO = "photo"
THUMBNAIL = "thumbnail"

MEDIA_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "heif": "image/heif",
    "tiff": "image/tiff",
}


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


@dataclass(frozen=True)
class PhotoBytes:
    """Bytes a decision allowed, and the obligations the caller must honour when showing them."""

    photo_id: str
    data: bytes
    media_type: str
    obligations: frozenset[Obligation] = frozenset()
    #: The version served (:mod:`skinvault.services.versions`), None for the stored photo.
    version: str | None = None
    #: What a caller's ``collect`` function returned in the allowing transaction.
    collected: object = None


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


def _put(vault: Vault, key: str, blob: bytes) -> None:
    """Write a blob; a store that fails with an OS error (whatever its kind) is the
    server's fault — StorageUnavailable (503), never the uploader's 4xx."""
    try:
        vault.blobs.put(key, blob)
    except OSError as exc:
        raise StorageUnavailable(f"{vault.blobs.description} cannot be written ({exc})") from exc


#: Decodes an upload's pixels beside the rest of its store (threads start on first use).
_DECODERS = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="sv-decode")


def _blob_key(vault: Vault, kind: str) -> str:
    # The time prefix lets a sweep tell an orphan from an upload still in progress.
    return f"{kind}/{vault.clock.now():%Y%m%d%H%M%S}-{vault.tokens.new_id()}"


def _site(session: Session, vault: Vault, patient_id: str, code: str | None) -> BodySite | None:
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


def _view(vault: Vault, photo: Photo, site: BodySite | None) -> StoredPhoto:
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


def _audit_failure(
    vault: Vault, actor: Actor, action: Action, obj: str, reason: str, *, purpose: str | None = None
) -> None:
    """Record a refused or failed attempt in its own transaction (the work itself rolled back)."""
    with vault.sessions.begin() as session:
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=action,
            object=obj,
            outcome=Outcome.FAILED,
            purpose=purpose,
            reason=reason,
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
        _audit_failure(vault, actor, Action.PHOTO_STORE, target, str(exc))
        raise
    # The pixels must decode, else the upload is refused here (the thumbnail job then
    # makes the thumbnail from these same pixels when it runs in this process). Pillow
    # decodes without the interpreter lock, so this runs beside the sealing, the durable
    # write and the checksums.
    decoding = _DECODERS.submit(decode, scrubbed, vault.settings.thumbnail_size)
    photo_id = vault.tokens.new_id()
    kek = vault.keys.current()
    photo_key = _blob_key(vault, "p")
    try:
        sealed = seal(scrubbed, object_id=photo_id, kind=PHOTO, kek=kek)
        _put(vault, photo_key, sealed.blob)
        content_sha256 = hashlib.sha256(scrubbed).hexdigest()
        original_sha256 = original_sha256 or hashlib.sha256(data).hexdigest()  # receipts
        try:
            decoded = decoding.result()
        except PhotoError as exc:
            _audit_failure(vault, actor, Action.PHOTO_STORE, target, str(exc))
            raise
        width, height = decoded.width, decoded.height
        now = vault.clock.now()
        with vault.sessions.begin() as session:
            if session.get(Patient, patient_id) is None:
                raise NotFound(f"there is no patient {patient_id}")
            body_site = _site(session, vault, patient_id, site)
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
            _enqueue_derivatives(session, vault, photo_id, report.format.value)
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
            stored = _view(vault, photo, body_site)
    except BaseException:
        # Not listed, so not needed: remove now rather than waiting for a sweep.
        with contextlib.suppress(SkinvaultError, OSError):
            vault.blobs.delete(photo_key)
        raise
    from skinvault.services import thumbnails  # noqa: PLC0415 (it imports this module)

    thumbnails.hand_over(photo_id, decoded, vault.settings.thumbnail_size)
    return stored


def _enqueue_derivatives(session: Session, vault: Vault, photo_id: str, fmt: str) -> None:
    """The upload's slow work, as jobs committed with the photo (none lost, none orphaned)."""
    from skinvault.services import jobs  # noqa: PLC0415 (jobs' handlers import this module)

    jobs.enqueue(session, vault, "thumbnail", {"photo_id": photo_id}, key=f"thumbnail:{photo_id}")
    if fmt in {"heif", "tiff"}:  # browsers cannot show these: make the display copy early
        jobs.enqueue(session, vault, "display_version", {"photo_id": photo_id},
                     key=f"display_version:{photo_id}")  # fmt: skip


def get_photo(vault: Vault, photo_id: str) -> StoredPhoto:
    """Metadata of a photo (no bytes, not audited: it reveals nothing the caller did not store)."""
    with vault.reading() as session:
        photo = session.get(Photo, photo_id)
        if photo is None or photo.deleted_at is not None:
            raise NotFound(f"there is no photo {photo_id}")
        site = session.get(BodySite, photo.site_id) if photo.site_id else None
        return _view(vault, photo, site)


def _decrypt(
    vault: Vault,
    *,
    object_id: str,
    kind: str,
    blob_key: str,
    wrapped: bytes,
    sha256: str | None = None,
) -> bytes:
    """The plaintext of a stored blob; with ``sha256``, also checked against the recorded hash."""
    try:
        blob = vault.blobs.get(blob_key)
    except BlobUnreadable as exc:
        raise BlobUnreadable(f"{kind} {object_id} cannot be read: its blob is missing") from exc
    data = open_blob(blob, wrapped, object_id=object_id, kind=kind, keys=vault.keys)
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise BlobUnreadable(f"{kind} {object_id} does not match its recorded checksum")
    return data


def _decision(
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


def _audit_reason(decision: Decision) -> str:
    """The decision's reason as audited; break-glass reads are marked for the review queue
    and the patient's history (:data:`skinvault.services.review.BREAK_GLASS_MARK`)."""
    if decision.allowed and decision.break_glass:
        return f"{BREAK_GLASS_MARK}{decision.reason}"
    return decision.reason


def _file_break_glass(  # noqa: PLR0917  (one private call shape, used twice)
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


def _parse_purpose(purpose: Purpose | str) -> Purpose:
    try:
        return Purpose(purpose)
    except ValueError:
        names = ", ".join(p.value for p in Purpose)
        raise AccessDenied(f"“{purpose}” is not a purpose; name one of: {names}.") from None


@dataclass(frozen=True)
class _Source:
    """Which stored blob a read serves: the photo, its thumbnail, or a version."""

    kind: str
    object_id: str
    blob_key: str
    wrapped: bytes
    sha256: str | None
    media_type: str


def _version_step(
    session: Session, photo: Photo, decision: Decision, kind: str | None, *, final: bool
) -> tuple[Decision, Derivative | None, bool]:
    """For a read that must serve version ``kind``: the (possibly refused) decision, the
    current version's row, and whether it must be made first (outside any transaction)."""
    if kind is None or not decision.allowed:
        return decision, None, False
    refusal = versions.refusal_for(session, photo.id, kind)
    if refusal is not None:
        return Decision(False, refusal, decision.obligations), None, False
    plan = versions.plan_version(kind, versions.load_markup(session, photo.id))
    row = (
        versions.current_version(session, photo.id, plan)
        if isinstance(plan, versions.Plan)
        else None
    )
    if row is not None:
        return decision, row, False
    if final:  # made a moment ago and already gone (the markup changed): refuse, do not loop
        words = versions.describe_kind(kind)
        return (
            Decision(False, f"The {words} version could not be made just now; try again."),
            None,
            False,
        )
    return decision, None, True


def _served_reason(decision: Decision, kind: str | None) -> str:
    reason = _audit_reason(decision)
    return f"{reason} Served: the {versions.describe_kind(kind)} version." if kind else reason


def _read(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    purpose: Purpose | str,
    action: Action,
    break_glass_reason: str | None,
    derivative: str | None,
    for_browser: bool = False,
    access: Access = Access.VIEW,
    detail: str = "",
    collect: Callable[[Session, Photo, Decision], object] | None = None,
) -> PhotoBytes:
    """Decide, audit, then decrypt: a denied read records the decision and returns no bytes.

    ``access``/``detail``/``collect`` serve exports (:mod:`skinvault.services.photo_export`):
    the access decided, words added to the audited reason, and a function run in the
    allowing transaction whose result is returned as :attr:`PhotoBytes.collected`.

    The bytes served are the version the decision's obligations ask for (made first if
    needed, :func:`skinvault.services.versions.ensure_version`); with ``for_browser`` a
    photo browsers cannot show (HEIC, TIFF) is served as its display version. When a
    version cannot be made the read is refused with that reason, on the record for the
    patient's history too.
    """
    obj = f"photo:{photo_id}"
    denied: AccessDenied | None = None
    kind: str | None = None
    try:
        chosen = _parse_purpose(purpose)
        for attempt in (0, 1):
            make = False
            with vault.sessions.begin() as session:
                photo = session.get(Photo, photo_id)
                if photo is None or photo.deleted_at is not None:
                    raise NotFound(f"there is no photo {photo_id}")
                decision = _decision(
                    session,
                    vault,
                    photo,
                    actor=actor,
                    access=access,
                    purpose=chosen,
                    break_glass_reason=break_glass_reason,
                    versions=True,
                )
                kind = versions.version_kind(
                    decision.obligations,
                    photo_format=photo.format,
                    # a thumbnail is a JPEG already; only a version's content matters for it
                    for_browser=for_browser and derivative is None,
                )
                decision, version, make = _version_step(
                    session, photo, decision, kind, final=attempt == 1
                )
                if make:
                    pass  # nothing is recorded yet: the version is made first, then decided again
                elif not decision.allowed:
                    record(
                        session,
                        clock=vault.clock,
                        actor=actor.audit_name,
                        action=action,
                        object=obj,
                        outcome=Outcome.DENIED,
                        purpose=chosen.value,
                        reason=f"{decision.reason} ({detail})" if detail else decision.reason,
                    )
                    denied = AccessDenied(decision.reason)
                else:
                    source = _source(session, photo, derivative, version)
                    # The access is on the record before any byte is decrypted.
                    event = record(
                        session,
                        clock=vault.clock,
                        actor=actor.audit_name,
                        action=action,
                        object=obj,
                        outcome=Outcome.ALLOWED,
                        purpose=chosen.value,
                        reason=_served_reason(decision, kind) + (f" ({detail})" if detail else ""),
                    )
                    _file_break_glass(
                        session, vault, decision, actor, photo, break_glass_reason, event
                    )
                    collected = collect(session, photo, decision) if collect else None
            if not make:
                break
            assert kind is not None
            try:
                versions.ensure_version(vault, photo_id=photo_id, kind=kind, actor=actor)
            except versions.VersionUnavailable as exc:
                with vault.sessions.begin() as session:
                    record(
                        session,
                        clock=vault.clock,
                        actor=actor.audit_name,
                        action=action,
                        object=obj,
                        outcome=Outcome.DENIED,
                        purpose=chosen.value,
                        reason=exc.reason,
                    )
                denied = exc
                raise
        if denied is not None:
            raise denied  # the refusal is committed to the audit log first
        # Decrypt outside the transaction: on SQLite it holds the one write lock.
        data = _decrypt(
            vault,
            object_id=source.object_id,
            kind=source.kind,
            blob_key=source.blob_key,
            wrapped=source.wrapped,
            sha256=source.sha256,
        )
        if derivative == THUMBNAIL and kind is not None and kind != versions.DISPLAY:
            from skinvault.photos.thumbnail import thumbnail  # noqa: PLC0415

            data = thumbnail(data, vault.settings.thumbnail_size).data  # of the version
    except SkinvaultError as exc:
        if exc is not denied:  # a refusal was recorded with the decision already
            _audit_failure(vault, actor, action, obj, str(exc), purpose=str(purpose)[:20])
        raise
    return PhotoBytes(photo_id, data, source.media_type, decision.obligations, kind, collected)


def _source(
    session: Session, photo: Photo, derivative: str | None, version: Derivative | None
) -> _Source:
    """The blob to serve: the version if there is one, else the thumbnail or the photo."""
    if version is not None:
        assert version.wrapped_dek is not None
        return _Source(version.kind, version.id, version.blob_key, version.wrapped_dek, None,
                       "image/jpeg")  # fmt: skip
    if derivative is not None:
        row = session.scalars(
            select(Derivative).where(
                Derivative.photo_id == photo.id,
                Derivative.kind == derivative,
                Derivative.deleted_at.is_(None),
            )
        ).first()
        if row is None or row.wrapped_dek is None:
            raise NotFound(f"photo {photo.id} has no {derivative}")
        return _Source(derivative, row.id, row.blob_key, row.wrapped_dek, None, "image/jpeg")
    assert photo.wrapped_dek is not None  # not deleted, or decide() would have refused
    return _Source(PHOTO, photo.id, photo.blob_key, photo.wrapped_dek, photo.content_sha256,
                   MEDIA_TYPES.get(photo.format, "application/octet-stream"))  # fmt: skip


@dataclass(frozen=True)
class PhotoDetails:
    """What a reader may learn about a photo; de-identified readers get no linking details."""

    id: str
    format: str
    width: int
    height: int
    site: str | None
    patient_id: str | None
    note: str | None
    taken_on: date | None
    uploaded_at: datetime | None
    obligations: frozenset[Obligation]
    #: The version a reader of the bytes gets for these obligations, None for the photo.
    version: str | None = None

    @property
    def version_words(self) -> str | None:
        return versions.describe_kind(self.version) if self.version else None


def describe_photo(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    purpose: Purpose | str,
    break_glass_reason: str | None = None,
) -> PhotoDetails:
    """A photo's details under the same decision as its bytes (audited as photo:describe)."""
    obj = f"photo:{photo_id}"
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
                access=Access.VIEW,
                purpose=chosen,
                break_glass_reason=break_glass_reason,
                versions=True,
            )
            kind = versions.version_kind(
                decision.obligations, photo_format=photo.format, for_browser=False
            )
            if kind is not None and decision.allowed:
                refusal = versions.refusal_for(session, photo.id, kind)
                if refusal is not None:  # the same refusal a read of the bytes would get
                    decision = Decision(False, refusal, decision.obligations)
            event = record(
                session,
                clock=vault.clock,
                actor=actor.audit_name,
                action=Action.PHOTO_DESCRIBE,
                object=obj,
                outcome=Outcome.ALLOWED if decision.allowed else Outcome.DENIED,
                purpose=chosen.value,
                reason=_audit_reason(decision),
            )
            _file_break_glass(session, vault, decision, actor, photo, break_glass_reason, event)
            site = session.get(BodySite, photo.site_id) if photo.site_id else None
            hidden = Obligation.DEIDENTIFIED in decision.obligations
            details = PhotoDetails(
                id=photo.id,
                format=photo.format,
                width=photo.width,
                height=photo.height,
                site=site.label if site else None,
                patient_id=None if hidden else photo.patient_id,
                note=None if hidden else open_note(vault, photo),
                taken_on=None if hidden else photo.taken_on,
                uploaded_at=None if hidden else photo.uploaded_at,
                obligations=decision.obligations,
                version=kind,
            )
    except SkinvaultError as exc:
        _audit_failure(
            vault, actor, Action.PHOTO_DESCRIBE, obj, str(exc), purpose=str(purpose)[:20]
        )
        raise
    if not decision.allowed:
        raise AccessDenied(decision.reason)
    return details


def read_photo(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    purpose: Purpose | str,
    break_glass_reason: str | None = None,
    for_browser: bool = False,
) -> PhotoBytes:
    """The scrubbed photo's bytes if the policy allows it; every attempt is audited.

    A consent limited to a version (de-identified, no face, cropped) gets that version;
    with ``for_browser`` a HEIC or TIFF photo comes as its JPEG display version.
    """
    return _read(
        vault,
        photo_id=photo_id,
        actor=actor,
        purpose=purpose,
        action=Action.PHOTO_VIEW,
        break_glass_reason=break_glass_reason,
        derivative=None,
        for_browser=for_browser,
    )


def read_thumbnail(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    purpose: Purpose | str,
    break_glass_reason: str | None = None,
) -> PhotoBytes:
    """The JPEG thumbnail, under exactly the same decision as the photo itself."""
    return _read(
        vault,
        photo_id=photo_id,
        actor=actor,
        purpose=purpose,
        action=Action.PHOTO_THUMBNAIL,
        break_glass_reason=break_glass_reason,
        derivative=THUMBNAIL,
    )


def shred_photo(
    session: Session,
    vault: Vault,
    photo: Photo,
    reason: str,
    *,
    actor: Actor,
    action: Action = Action.PHOTO_SHRED,
) -> list[str]:
    """Destroy the data keys of ``photo``, its note and its derivatives, and audit it, in the
    caller's transaction; returns the blob keys to delete once that transaction commits.

    The one implementation of crypto-shredding: deletion on request, deletion
    decisions and retention all call it.
    """
    now = vault.clock.now()
    if session.get_bind().dialect.name == "postgresql":
        # Hold the photo row before listing its derivatives: a thumbnail or version being
        # listed now (its job holds the row too) commits first and is shredded here, or
        # waits and then finds the photo gone. SQLite has one writer: nothing interleaves.
        session.execute(select(Photo.id).where(Photo.id == photo.id).with_for_update())
    derivatives = list(session.scalars(select(Derivative).where(Derivative.photo_id == photo.id)))
    blob_keys = [photo.blob_key, *(d.blob_key for d in derivatives if d.deleted_at is None)]
    # The data keys are gone: no copy of these blobs opens again. The derivatives are the
    # thumbnail and every version (display, face-free, cropped, de-identified).
    photo.wrapped_dek, photo.kek_id, photo.deleted_at = None, None, now
    photo.note_enc = None  # the note goes with the photo
    versions.forget_markup(session, photo.id)  # and the boxes and region chosen for it
    from skinvault.services import thumbnails  # noqa: PLC0415 (it imports this module)

    thumbnails.forget(photo.id)  # and the pixels its upload left for the thumbnail job
    for derivative in derivatives:
        if derivative.deleted_at is None:
            derivative.wrapped_dek, derivative.kek_id, derivative.deleted_at = None, None, now
    record(
        session,
        clock=vault.clock,
        actor=actor.audit_name,
        action=action,
        object=f"photo:{photo.id}",
        outcome=Outcome.DONE,
        reason=reason,
    )
    return blob_keys


def delete_photo(vault: Vault, *, photo_id: str, actor: Actor, reason: str) -> None:
    """Crypto-shred a photo and its derivatives, audit it, then remove the blobs."""
    with vault.sessions.begin() as session:
        photo = session.get(Photo, photo_id)
        if photo is None or photo.deleted_at is not None:
            raise NotFound(f"there is no photo {photo_id}")
        blob_keys = shred_photo(
            session, vault, photo, reason, actor=actor, action=Action.PHOTO_DELETE
        )
    for key in blob_keys:
        vault.blobs.delete(key)  # a crash here leaves only unreadable blobs for the sweep


__all__ = [
    "PhotoBytes",
    "StoredPhoto",
    "delete_photo",
    "get_photo",
    "read_photo",
    "read_thumbnail",
    "shred_photo",
    "store_photo",
]
