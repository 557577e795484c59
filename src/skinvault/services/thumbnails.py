"""Thumbnails made by a background job, and what a reader gets until one exists.

    >>> make_thumbnail(vault, photo_id)          # the "thumbnail" job; idempotent  # doctest: +SKIP
    True
    >>> got = read_preview(vault, photo_id=p, actor=me, purpose="care")          # doctest: +SKIP
    >>> isinstance(got, PreviewPending)           # not made yet: show a placeholder
    True
    >>> got.state                                 # or "failed": it never will be  # doctest: +SKIP
    'waiting'

An upload stores the scrubbed photo and enqueues ``thumbnail`` in the same
transaction (:func:`skinvault.services.photo_store.store_photo`); the job decrypts the
photo as the system (nothing leaves the service, so no policy decision — the read
that serves the thumbnail decides and audits), scales it, seals the result with its
own data key and lists it as the photo's ``thumbnail`` derivative.

The upload has already decoded the pixels once at thumbnail scale (to refuse a file
that does not decode); it hands them over (:func:`hand_over`) and a job that runs in
the same process makes the thumbnail from them instead of decrypting and decoding the
photo a second time. The hand-off is memory only, per process and bounded (the latest
``HANDOFF_MAX`` uploads, pixels at thumbnail scale); a job that finds nothing there —
another process, a restart, a burst — decodes the photo as before. A process that runs no
jobs (``serve`` with ``job_threads = 0``) keeps nothing.

Pixels that do not decode (a JPEG the scrubber's structure check passed, whose coded data
Pillow still cannot read) fail the same way on every try: the job records a failed
derivative (``derivative_failures``, with the reason) and ends at once as ``failed``
(:class:`skinvault.services.jobs.Unworkable`), and :func:`read_preview` answers
``PreviewPending(state="failed")`` from then on instead of "waiting" for ever. Anything
else (the blob store away, a worker out of memory) is retried as any job.

HEIC/HEIF and TIFF uploads are decoded in full at upload (no scaled decoding), and their
``display_version`` job needs every pixel: those full decodes are kept too, apart
(:func:`full_pixels`), within ``FULL_BUDGET`` bytes and for ``FULL_SECONDS`` at most, so
the job spares a decryption and a second full decode (0.3-0.6 s for a 12-16 MP HEIC).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

from PIL import Image
from sqlalchemy import Delete, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skinvault.actors import Actor
from skinvault.bootstrap import Vault
from skinvault.crypto.envelope import seal
from skinvault.db.models import Derivative, DerivativeFailure, Photo
from skinvault.errors import NotFound, PhotoError, SkinvaultError
from skinvault.photos.thumbnail import Decoded, thumbnail, thumbnail_of
from skinvault.policy.purposes import Purpose
from skinvault.services import jobs, photo_reads, photo_store

KIND = "thumbnail"


#: Uploads whose decoded pixels wait in memory for their thumbnail job (per process).
HANDOFF_MAX = 64
#: Larger decoded images (formats without scaled decoding: HEIF, PNG, WebP, TIFF) are
#: kept reduced by a whole factor to about twice the thumbnail size.
_HANDOFF_PIXELS = 2048 * 2048

#: Formats whose upload decode is a full one and that get a ``display_version`` job
#: (photo_store enqueues it): their full pixels are worth keeping for that job.
FULL_FORMATS = photo_store.DISPLAY_FORMATS
#: Full decodes kept for display-version jobs at most (bytes of pixels; Pillow holds a
#: 12 MP RGB photo in 48 MB): four such photos. A newcomer that does not fit is not kept (jobs run
#: oldest first, so the oldest kept are the next used), and one left unused (its job
#: ran in another process) goes after ``FULL_SECONDS``.
FULL_BUDGET = 192 * 2**20
FULL_SECONDS = 300.0

_handoff: OrderedDict[str, Decoded] = OrderedDict()
_full: OrderedDict[str, tuple[float, int, Image.Image]] = OrderedDict()  # (kept at, bytes, px)
_handoff_lock = threading.Lock()


def job_key(photo_id: str) -> str:
    return f"{KIND}:{photo_id}"


def _bytes_of(image: Image.Image) -> int:
    # Pillow holds RGB, RGBA, CMYK, I and F at 4 bytes a pixel (L and I;16 at less).
    return image.width * image.height * 4


def hand_over(photo_id: str, decoded: Decoded, size: int) -> None:
    """Keep the pixels an upload decoded for this process's jobs (nothing when no job runs
    here: :func:`skinvault.services.jobs.jobs_run_here`).

    The thumbnail job's copy: the oldest go once ``HANDOFF_MAX`` wait; a large image is
    kept reduced (``size``: the thumbnail's), which costs the upload milliseconds and
    spares the job a full decode. A large image that was decoded in full (HEIF, TIFF,
    PNG, WebP) is also kept whole for a display-version job, within ``FULL_BUDGET``; the
    thumbnail job drops it again for a format that gets none."""
    if not jobs.jobs_run_here():
        return
    image = decoded.image
    whole: Image.Image | None = None
    if image.width * image.height > _HANDOFF_PIXELS:  # decoded in full: not a JPEG
        whole = image
        factor = max(1, min(image.width, image.height) // (2 * size))
        if factor > 1:
            decoded = replace(decoded, image=image.reduce(factor))  # its ICC profile too
    now = time.monotonic()
    with _handoff_lock:
        _handoff[photo_id] = decoded
        while len(_handoff) > HANDOFF_MAX:
            _handoff.popitem(last=False)
        while _full and next(iter(_full.values()))[0] < now - FULL_SECONDS:
            _full.popitem(last=False)
        if whole is not None:
            need = _bytes_of(whole)
            if sum(kept for _, kept, _ in _full.values()) + need <= FULL_BUDGET:
                _full[photo_id] = (now, need, whole)


def _handed_over(photo_id: str) -> Decoded | None:
    with _handoff_lock:
        return _handoff.pop(photo_id, None)


def full_pixels(photo_id: str) -> Image.Image | None:
    """The upright, fully decoded pixels this process's upload of ``photo_id`` kept for its
    display version (taken: a second call returns None), or None — decode the photo then.
    Only kept for a photo whose upload decoded it in full (see ``FULL_FORMATS``)."""
    with _handoff_lock:
        kept = _full.pop(photo_id, None)
    return kept[2] if kept is not None else None


def forget(photo_id: str) -> None:
    """Drop the pixels kept for ``photo_id`` (its photo is being shredded)."""
    _handed_over(photo_id)
    full_pixels(photo_id)


def _live_thumbnail(session: Session, photo_id: str) -> Derivative | None:
    return session.scalars(
        select(Derivative).where(
            Derivative.photo_id == photo_id,
            Derivative.kind == photo_store.THUMBNAIL,
            Derivative.deleted_at.is_(None),
        )
    ).first()


def _live_photo(session: Session, photo_id: str, *, lock: bool = False) -> Photo:
    query = select(Photo).where(Photo.id == photo_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # a shred of this photo waits for us, or we for it
    photo = session.scalars(query).first()
    if photo is None or photo.deleted_at is not None or photo.wrapped_dek is None:
        raise jobs.Permanent(f"photo {photo_id} is gone; no thumbnail needed")
    return photo


def make_thumbnail(
    vault: Vault,
    photo_id: str,
    *,
    transaction: Callable[[], AbstractContextManager[Session]] | None = None,
) -> bool:
    """Make the photo's thumbnail unless it has one; True when one was made.

    ``transaction`` is the job's fenced transaction (it also marks the job done);
    by default a plain one.
    """
    decoded = _handed_over(photo_id)  # taken first: nothing stays for a photo gone since
    with vault.reading() as session:
        photo = _live_photo(session, photo_id)
        if _live_thumbnail(session, photo_id) is not None:
            return False
        blob_key, wrapped, sha = photo.blob_key, photo.wrapped_dek, photo.content_sha256
        if photo.format not in FULL_FORMATS:  # no display version will want them
            full_pixels(photo_id)
    size = vault.settings.thumbnail_size
    data = b""
    if decoded is None:
        assert wrapped is not None
        # The blob store away, a damaged blob: raised as they are, so the job tries again.
        data = photo_reads.decrypt_blob(
            vault, object_id=photo_id, kind=photo_store.PHOTO, blob_key=blob_key,
            wrapped=wrapped, sha256=sha,
        )  # fmt: skip
    try:
        preview = thumbnail_of(decoded, size) if decoded is not None else thumbnail(data, size)
    except PhotoError as exc:  # the stored pixels do not decode: so on every try
        _record_failure(vault, photo_id, str(exc))
        raise jobs.Unworkable(f"no thumbnail can be made of photo {photo_id}: {exc}") from exc
    thumb_id, kek = vault.tokens.new_id(), vault.keys.current()
    sealed = seal(preview.data, object_id=thumb_id, kind=photo_store.THUMBNAIL, kek=kek)
    thumb_key = photo_store.new_blob_key(vault, "t")
    photo_store.put_blob(vault, thumb_key, sealed.blob)
    made = False
    try:
        with (transaction or vault.sessions.begin)() as session:
            _live_photo(session, photo_id, lock=True)  # shredded meanwhile: nothing to add
            if _live_thumbnail(session, photo_id) is None:
                session.execute(
                    _failure_rows(photo_id).execution_options(synchronize_session=False)
                )  # made after all (a retried job): it wins
                session.add(
                    Derivative(
                        id=thumb_id, photo_id=photo_id, kind=photo_store.THUMBNAIL,
                        blob_key=thumb_key, wrapped_dek=sealed.wrapped_dek, kek_id=kek.id,
                        format="jpeg", width=preview.width, height=preview.height,
                        created_at=vault.clock.now(),
                    )
                )  # fmt: skip
                made = True
    finally:
        if not made:  # unlisted: remove now rather than waiting for the sweep
            with contextlib.suppress(SkinvaultError, OSError):
                vault.blobs.delete(thumb_key)
    return made


def _failure_rows(photo_id: str) -> Delete:
    return delete(DerivativeFailure).where(
        DerivativeFailure.photo_id == photo_id, DerivativeFailure.kind == photo_store.THUMBNAIL
    )


def _record_failure(vault: Vault, photo_id: str, reason: str) -> None:
    """List the photo's thumbnail as one that cannot be made, with ``reason`` (idempotent;
    nothing when the photo is gone or has a thumbnail by now)."""
    try:
        with vault.sessions.begin() as session:
            _live_photo(session, photo_id, lock=True)
            if _live_thumbnail(session, photo_id) is not None:
                return
            failure = session.get(DerivativeFailure, (photo_id, photo_store.THUMBNAIL))
            if failure is None:
                failure = DerivativeFailure(photo_id=photo_id, kind=photo_store.THUMBNAIL)
                session.add(failure)
            failure.reason, failure.failed_at = reason[:1000], vault.clock.now()
    except IntegrityError:  # an emergency page's read recorded it at the same instant
        pass


def preview_failure(vault: Vault, photo_id: str) -> str | None:
    """Why no thumbnail can be made of the photo (its pixels do not decode), or None.

    No policy decision: for a page that has just been allowed to show the photo
    (:func:`skinvault.services.photo_reads.describe_photo`), to say what the person can do.
    """
    with vault.reading() as session:
        failure = session.get(DerivativeFailure, (photo_id, photo_store.THUMBNAIL))
        return failure.reason if failure is not None else None


#: PreviewPending states: the thumbnail job is queued or running / no thumbnail can be made /
#: its job gave up on something outside the photo (storage away every try): an operator's
#: "Try again" on the admin page makes it, so nobody should upload the photo again.
WAITING, FAILED, UNAVAILABLE = "waiting", "failed", "unavailable"


@dataclass(frozen=True)
class PreviewPending:
    """No thumbnail yet: ``waiting`` (its job is queued or running), ``failed`` (none can
    be made: the pixels could not be decoded, ``reason`` says how) or ``unavailable`` (its
    job failed every try for a reason outside the photo, until an operator retries it).
    The photo itself can still be read."""

    photo_id: str
    state: str
    reason: str | None = None


def read_preview(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    purpose: Purpose | str,
    break_glass_reason: str | None = None,
) -> photo_reads.PhotoBytes | PreviewPending:
    """The thumbnail under the photo's decision, or :class:`PreviewPending` when the
    decision allowed it but none is made yet. A refusal raises as for the photo."""
    try:
        return photo_reads.read_thumbnail(
            vault, photo_id=photo_id, actor=actor, purpose=purpose,
            break_glass_reason=break_glass_reason,
        )  # fmt: skip
    except NotFound:
        # read_thumbnail decides before it looks for the thumbnail: a NotFound for a live
        # photo means "allowed, but there is none yet" (a refusal raises AccessDenied).
        with vault.reading() as session:
            photo = session.get(Photo, photo_id)
            if photo is None or photo.deleted_at is not None:
                raise
            if _live_thumbnail(session, photo_id) is not None:
                raise
            failure = session.get(DerivativeFailure, (photo_id, photo_store.THUMBNAIL))
            if failure is not None:
                return PreviewPending(photo_id, FAILED, failure.reason)
        state = jobs.job_state(vault, job_key(photo_id))
        if state == jobs.JobState.DEAD:  # e.g. the blob store was away for every try
            return PreviewPending(photo_id, UNAVAILABLE, "its background job failed every try")
        return PreviewPending(photo_id, WAITING)


def read_preview_now(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    purpose: Purpose | str,
    break_glass_reason: str | None = None,
) -> photo_reads.PhotoBytes | PreviewPending:
    """As :func:`read_preview`, but a thumbnail still waiting for its job is made here and
    served: for pages that cannot wait for the worker (emergency access). The job, when it
    runs, finds the thumbnail made and does nothing."""
    got = read_preview(vault, photo_id=photo_id, actor=actor, purpose=purpose,
                       break_glass_reason=break_glass_reason)  # fmt: skip
    if not isinstance(got, PreviewPending) or got.state != WAITING:
        return got
    try:
        make_thumbnail(vault, photo_id)
    except jobs.Unworkable:
        pass  # pixels that do not decode, recorded: the read below says "failed"
    except SkinvaultError:  # jobs.Permanent too
        return got  # gone meanwhile, or the blob store away: the job tries again
    return read_preview(vault, photo_id=photo_id, actor=actor, purpose=purpose,
                        break_glass_reason=break_glass_reason)  # fmt: skip


__all__ = [
    "FAILED", "FULL_FORMATS", "KIND", "WAITING", "PreviewPending", "forget", "full_pixels",
    "hand_over", "job_key", "make_thumbnail", "preview_failure", "read_preview",
    "read_preview_now",
]  # fmt: skip
