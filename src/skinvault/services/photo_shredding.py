"""Removing a photo: crypto-shredding its data keys, then deleting its blobs.

    >>> delete_photo(vault, photo_id=p, actor=clinician, reason="duplicate")  # doctest: +SKIP

Deleting destroys the wrapped data key in the same transaction as the audit event
(crypto-shredding): a copy of the blob from a backup is unreadable from that moment,
before the blob itself is removed. :func:`shred_photo` is the one implementation;
deletion requests, deletion decisions and retention call it.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import Derivative, DerivativeFailure, Photo
from skinvault.errors import NotFound
from skinvault.services import versions


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
    # and why a preview could not be made of it (no health data, but nothing outlives it)
    session.execute(delete(DerivativeFailure).where(DerivativeFailure.photo_id == photo.id))
    from skinvault.services import thumbnails  # noqa: PLC0415 (lazy, as it was in photos.py)

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
    "delete_photo",
    "shred_photo",
]
