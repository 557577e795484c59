"""A public copy for storytelling: scrubbed, faces and text covered, renamed, unlinked.

    >>> copy = public_copy(raw_bytes)                                   # doctest: +SKIP
    >>> copy.file_name, copy.faces_covered, copy.reminders[0]            # doctest: +SKIP
    ('public-copy.jpg', 1, 'Tattoos, birthmarks, scars and moles …')
    >>> got = public_copy_of_photo(vault, photo_id=p, actor=patient)    # doctest: +SKIP

The copy is made for someone who wants to show their skin to the world (a blog, a
support group, social media) without handing out their clinical record. What makes
it *unlinked*:

- its bytes are always re-encoded (:func:`skinvault.photos.redact.redact_decoded`,
  even when nothing is covered), so its SHA-256 matches no stored photo, no
  derivative and no upload receipt;
- it gets a neutral name that says nothing of the record (``public-copy.jpg``, or
  ``<site>-public-copy.jpg``);
- nothing about it is kept: no row, no blob, no hash. The audit log records one
  event, ``public-copy:make`` on the patient's record, whose reason is only "a public
  copy was made" (no photo id, no hash, no name), so the access is accounted for but
  the copy cannot be traced back to a photo of the record.

Faces and readable text are found with :mod:`skinvault.photos.clues` and filled
solid (never blurred) unless the person chooses otherwise. What a copy still shows
is said in :data:`REMINDERS`, every time.
"""

from __future__ import annotations

from dataclasses import dataclass

from skinvault.actors import Actor, Role
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import BodySite, Patient, Photo
from skinvault.errors import AccessDenied, NotFound, PhotoError
from skinvault.photos import clues as clue_finder
from skinvault.photos.naming import EXTENSIONS, slug
from skinvault.photos.redact import decode, redact_decoded
from skinvault.photos.scrub import scrub
from skinvault.photos.sniff import ImageFormat
from skinvault.policy.decide import Access
from skinvault.policy.purposes import Purpose
from skinvault.services.photo_policy import photo_decision
from skinvault.services.photo_reads import decrypt_blob
from skinvault.services.photo_store import PHOTO

#: What a public copy can still show, said with every copy (seed §7, FAQ 6).
REMINDERS: tuple[str, ...] = (
    "Tattoos, birthmarks, scars and moles: people who know you can recognise them.",
    "Jewellery, watches, rings, nail polish and clothing.",
    "The background: your room, furniture, windows, pictures on the wall, other people or pets.",
    "Reflections in mirrors, glasses, windows or screens.",
    "The skin condition itself: people you told about it may recognise you by it.",
    "Once posted, anyone can copy and keep it: a public photo cannot be taken back.",
)
#: The one thing the audit log says about a public copy.
AUDIT_REASON = "a public copy was made"


@dataclass(frozen=True)
class PublicCopy:
    data: bytes
    file_name: str
    media_type: str
    faces_found: int
    text_found: int
    covered: int
    #: What the person should still look for before posting it.
    reminders: tuple[str, ...]
    #: What was done (covered areas, re-encoding) and what could not be checked.
    notes: tuple[str, ...]


_MEDIA = {
    ImageFormat.JPEG: "image/jpeg",
    ImageFormat.PNG: "image/png",
    ImageFormat.WEBP: "image/webp",
    ImageFormat.TIFF: "image/tiff",
}


def public_copy(
    data: bytes,
    *,
    cover_faces: bool = True,
    cover_text: bool = True,
    site: str | None = None,
) -> PublicCopy:
    """A scrubbed, re-encoded copy of ``data`` with faces/text covered (by default).

    Raises :class:`~skinvault.errors.PhotoError` for a file that is not a photo it reads.
    """
    scrubbed, _report = scrub(data)  # metadata goes first, whatever else happens
    decoded = decode(scrubbed)
    notes: list[str] = []
    found = clue_finder.find_clues(decoded.image, faces=True, text=True)
    faces = [c for c in found if c.kind == "face"]
    texts = [c for c in found if c.kind == "text"]
    boxes = [c.box for c in faces if cover_faces] + [c.box for c in texts if cover_text]
    # Always re-encoded, also with nothing to cover: the copy must not be the stored bytes.
    redacted = redact_decoded(decoded, boxes)
    notes.extend(redacted.notes)
    reminders = list(REMINDERS)
    if faces and not cover_faces:
        reminders.insert(0, f"You chose to leave {len(faces)} face(s) visible: anyone can"
                            " recognise you from a face.")  # fmt: skip
    if texts and not cover_text:
        reminders.insert(0, f"You chose to leave {len(texts)} piece(s) of readable text"
                            " visible: a name or address identifies you at once.")  # fmt: skip
    if not faces:
        notes.append(
            "No face was found. A face at the edge or partly hidden can be missed: look again."
        )
    extension = EXTENSIONS.get(redacted.format, ".jpg")
    name = f"{slug(site)}-public-copy{extension}" if site else f"public-copy{extension}"
    return PublicCopy(
        data=redacted.data,
        file_name=name,
        media_type=_MEDIA.get(redacted.format, "image/jpeg"),
        faces_found=len(faces),
        text_found=len(texts),
        covered=len(redacted.boxes_applied),
        reminders=tuple(reminders),
        notes=tuple(notes),
    )


def _audit(vault: Vault, actor: Actor, patient_id: str, outcome: Outcome, reason: str) -> None:
    with vault.sessions.begin() as session:
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=Action.PUBLIC_COPY_MAKE,
            object=f"patient:{patient_id}",
            outcome=outcome,
            reason=reason,
        )


def public_copy_of_photo(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    cover_faces: bool = True,
    cover_text: bool = True,
) -> PublicCopy:
    """A public copy of a photo in the record, for its patient only; nothing is kept.

    Decided by :func:`skinvault.policy.decide` as an export; audited as one
    ``public-copy:make`` event on the patient (never naming the photo).
    """
    with vault.sessions.begin() as session:
        photo = session.get(Photo, photo_id)
        if photo is None or photo.deleted_at is not None:
            raise NotFound(f"there is no photo {photo_id}")
        patient_id = photo.patient_id
        decision = photo_decision(
            session,
            vault,
            photo,
            actor=actor,
            access=Access.EXPORT,
            purpose=Purpose.CARE,
            break_glass_reason=None,
        )
        patient = session.get(Patient, patient_id)
        # Only the patient: a public copy is theirs to make, never the care team's.
        owner = bool(
            decision.allowed
            and actor.role is Role.PATIENT
            and patient is not None
            and patient.user_id == actor.id
        )
        refusal = (
            decision.reason
            if not decision.allowed
            else "Only the patient can make a public copy of their own photo."
        )
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=Action.PUBLIC_COPY_MAKE,
            object=f"patient:{patient_id}",
            outcome=Outcome.ALLOWED if owner else Outcome.DENIED,
            reason=AUDIT_REASON if owner else refusal,
        )
        site = session.get(BodySite, photo.site_id) if photo.site_id else None
        site_code = site.label if site else None
        blob_key, wrapped = photo.blob_key, photo.wrapped_dek
        expected = photo.content_sha256
    if not owner:
        raise AccessDenied(refusal)
    assert wrapped is not None
    data = decrypt_blob(
        vault, object_id=photo_id, kind=PHOTO, blob_key=blob_key, wrapped=wrapped, sha256=expected
    )
    return public_copy(data, cover_faces=cover_faces, cover_text=cover_text, site=site_code)


def public_copy_of_file(
    vault: Vault,
    *,
    data: bytes,
    actor: Actor,
    patient_id: str,
    cover_faces: bool = True,
    cover_text: bool = True,
) -> PublicCopy:
    """A public copy of a file the patient brought (not stored, not linked); audited once."""
    try:
        made = public_copy(data, cover_faces=cover_faces, cover_text=cover_text)
    except PhotoError as exc:
        _audit(vault, actor, patient_id, Outcome.FAILED, str(exc)[:200])
        raise
    _audit(vault, actor, patient_id, Outcome.DONE, AUDIT_REASON)
    return made


__all__ = ["AUDIT_REASON", "REMINDERS", "PublicCopy", "public_copy", "public_copy_of_file",
           "public_copy_of_photo"]  # fmt: skip
