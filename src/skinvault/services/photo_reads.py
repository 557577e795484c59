"""Reading a photo's bytes and details under the policy decision: decide, audit, decrypt.

    >>> read_photo(vault, photo_id=stored.id, actor=clinician, purpose="care").data
    b'\\xff\\xd8...'

Owns the reads: :func:`read_decided` (the one read behind :func:`read_photo`,
:func:`read_thumbnail` and :func:`skinvault.services.photo_export.export_photo`; it
serves the version the decision's obligations ask for), :func:`describe_photo`, what
they return (:class:`PhotoBytes`, :class:`PhotoDetails`, :data:`MEDIA_TYPES`), and
opening a stored blob (:func:`decrypt_blob`, also used by the jobs that read a photo as
the system). The decision is :mod:`skinvault.services.photo_policy`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.crypto.envelope import open_blob
from skinvault.db.models import BodySite, Derivative, Photo
from skinvault.errors import AccessDenied, BlobUnreadable, NotFound, SkinvaultError
from skinvault.policy.decide import Access, Decision, Obligation
from skinvault.policy.purposes import Purpose
from skinvault.services import versions
from skinvault.services.failed_attempts import audit_failure
from skinvault.services.photo_policy import (
    audit_reason,
    file_break_glass,
    parse_purpose,
    photo_decision,
)
from skinvault.services.photo_store import PHOTO, THUMBNAIL, open_note

MEDIA_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "heif": "image/heif",
    "tiff": "image/tiff",
}


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


def decrypt_blob(
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
    reason = audit_reason(decision)
    return f"{reason} Served: the {versions.describe_kind(kind)} version." if kind else reason


def read_decided(
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
        chosen = parse_purpose(purpose)
        for attempt in (0, 1):
            make = False
            with vault.sessions.begin() as session:
                photo = session.get(Photo, photo_id)
                if photo is None or photo.deleted_at is not None:
                    raise NotFound(f"there is no photo {photo_id}")
                decision = photo_decision(
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
                    file_break_glass(
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
        data = decrypt_blob(
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
            audit_failure(vault, actor, action, obj, str(exc), purpose=str(purpose)[:20])
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
                reason=audit_reason(decision),
            )
            file_break_glass(session, vault, decision, actor, photo, break_glass_reason, event)
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
        audit_failure(vault, actor, Action.PHOTO_DESCRIBE, obj, str(exc), purpose=str(purpose)[:20])
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
    return read_decided(
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
    return read_decided(
        vault,
        photo_id=photo_id,
        actor=actor,
        purpose=purpose,
        action=Action.PHOTO_THUMBNAIL,
        break_glass_reason=break_glass_reason,
        derivative=THUMBNAIL,
    )


__all__ = [
    "MEDIA_TYPES",
    "PhotoBytes",
    "PhotoDetails",
    "decrypt_blob",
    "describe_photo",
    "read_decided",
    "read_photo",
    "read_thumbnail",
]
