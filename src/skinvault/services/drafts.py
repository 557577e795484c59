"""Upload drafts: the privacy preview's result, kept sealed for a few minutes, then saved.

    >>> draft = create_draft(vault, actor=patient, patient_id=p, data=raw)   # doctest: +SKIP
    >>> [(c.kind, c.box, c.sure) for c in draft.clues]                      # doctest: +SKIP
    [('face', (3012, 40, 410, 520), True)]
    >>> stored = save_draft(vault, actor=patient, draft_id=draft.id,
    ...                     covers=[(3012, 40, 410, 520)], crop=None, site="left-hand")
    ...                                                                       # doctest: +SKIP

One upload: the file is scrubbed once, when it is previewed; the scrubbed photo and a
downscaled display image of it are sealed with their own data keys (envelope
encryption, bound to the draft id) and kept in the ``upload_drafts`` row for
:data:`DRAFT_LIFETIME`. The save opens that sealed photo, covers the boxes the person
chose and crops (``photos/redact.py``), and stores the result: exactly the picture the
preview showed, plus the person's covers and crop. Deleting the row shreds both copies;
the scheduled sweep (``services/maintenance.py``) deletes expired drafts.

The sealed bytes live in the database row rather than the blob store on purpose: a
draft is short-lived, and one row that is deleted whole leaves no orphan blob behind
for the sweep to tell apart from an upload in progress.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
from PIL import Image, ImageOps
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from skinvault.actors import Actor
from skinvault.bootstrap import Vault
from skinvault.crypto.envelope import open_blob, pack, seal, unpack
from skinvault.db.models import Photo, ShareLink, UploadDraft
from skinvault.errors import DamagedFile, PhotoError, RequestInvalid, TooLarge
from skinvault.photos import phash as perceptual
from skinvault.photos.clues import Clue, find_faces, find_text_lines
from skinvault.photos.findings import Finding
from skinvault.photos.limits import open_image
from skinvault.photos.redact import redact
from skinvault.photos.scrub import scrub
from skinvault.services import photo_store
from skinvault.services.preview import CheckItem, checklist_for
from skinvault.tracking import measure
from skinvault.tracking.capture import capture_date

#: How long a preview waits for its save.
DRAFT_LIFETIME = timedelta(minutes=10)
#: Long side of the display image the preview shows (enough for a phone at 3× density).
DISPLAY_SIDE = 1280
#: Long side at which a JPEG is decoded for detection and display: its DCT scaling
#: decodes a 12 MP photo at 1/2 in about a third of the time of a full decode (Pillow
#: never goes below the size asked for: 2048 would force a full decode of 4000 px).
DECODE_SIDE = 2000
#: A detector box scoring below this is shown for the person to confirm (not covered
#: until they tick it); above it, it starts covered.
SURE_FACE = 0.5
SURE_TEXT = 0.6
DRAFT = "draft"
DRAFT_DISPLAY = "draft-display"
EXPIRED = (
    "This preview has expired (previews are kept for {minutes} minutes) and nothing was "
    "saved. Choose the photo again to see a new preview."
)

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class DraftClue:
    """A detector box as the preview shows it; ``sure`` boxes start covered."""

    kind: str
    box: Box
    score: float
    detector: str
    sure: bool


@dataclass(frozen=True)
class EarlierSend:
    """A stored photo the new one matches: when it went, to whom, and how alike."""

    photo_id: str
    uploaded_at: datetime
    identical: bool  # the same file (or the same scrubbed bytes)
    distance: int | None  # differing bits of the 64-bit perceptual hash
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Draft:
    id: str
    expires_at: datetime
    format: str
    size: tuple[int, int]
    display_size: tuple[int, int]
    findings: tuple[Finding, ...]
    clues: tuple[DraftClue, ...]
    checklist: tuple[CheckItem, ...]
    earlier: tuple[EarlierSend, ...]
    #: how the photo was taken, where it matters for tracking (overexposed skin)
    capture_warnings: tuple[str, ...] = ()
    #: seconds spent per step (decode, faces, text, …), for the bench and the log
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Analysed:
    """The pure part of a preview: what the scrubbed photo shows and how it looks small."""

    size: tuple[int, int]
    clues: tuple[Clue, ...]
    display_jpeg: bytes
    display_size: tuple[int, int]
    phash: int
    timings: dict[str, float]
    #: sentences about how the photo was taken (overexposed skin), shown before the save
    capture_warnings: tuple[str, ...] = ()


def decode_small(data: bytes, side: int = DECODE_SIDE) -> tuple[Image.Image, tuple[int, int]]:
    """The upright picture in ``data`` at about ``side`` px (never below it for a JPEG,
    which decodes at 1/2, 1/4 or 1/8), and the upright size of the full picture."""
    try:
        with open_image(data) as source:
            full = source.size
            orientation = source.getexif().get(0x0112, 1)
            if source.format == "JPEG" and max(full) > side:
                ratio = side / max(full)
                source.draft("RGB", (round(full[0] * ratio), round(full[1] * ratio)))
            source.load()
            upright = ImageOps.exif_transpose(source)
    except (TooLarge, PhotoError):
        raise
    except (OSError, SyntaxError, ValueError, EOFError, KeyError, IndexError) as exc:
        raise DamagedFile(f"the image data cannot be decoded ({exc})") from exc
    if orientation in (5, 6, 7, 8):
        full = (full[1], full[0])
    if upright.mode != "RGB":
        upright = upright.convert("RGB")
    if max(upright.size) > side:
        ratio = side / max(upright.size)
        upright = upright.resize(
            (max(1, round(upright.width * ratio)), max(1, round(upright.height * ratio))),
            Image.Resampling.BILINEAR,
            reducing_gap=2.0,
        )
    return upright, full


def _scaled_box(box: Box, sx: float, sy: float, size: tuple[int, int]) -> Box:
    x, y, w, h = box
    left, top = max(0, int(x * sx)), max(0, int(y * sy))
    right, bottom = min(size[0], int((x + w) * sx + 0.999)), min(size[1], int((y + h) * sy + 0.999))
    return left, top, max(0, right - left), max(0, bottom - top)


def analyse(scrubbed: bytes, *, clock: Callable[[], float] = time.perf_counter) -> Analysed:
    """Faces, text lines, a display image and the perceptual hash of a scrubbed photo.

    Pure (bytes in, values out). Boxes are in upright pixels of the full photo;
    ``timings`` are per step, by ``clock`` (the bench also passes ``time.thread_time``:
    faces and text run in two threads at once, each step timed in its own thread).
    """
    timings: dict[str, float] = {}
    start = clock()
    small, full = decode_small(scrubbed)
    timings["decode"] = clock() - start
    sx, sy = full[0] / small.width, full[1] / small.height

    def timed(step: str, find: Callable[[Image.Image], list[Clue]]) -> list[Clue]:
        began = clock()
        found = find(small)
        timings[step] = clock() - began
        return found

    # Faces and text side by side: on 2 cores the preview waits for the slower one only.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="preview") as pool:
        faces_job = pool.submit(timed, "faces", find_faces)
        lines = timed("text", find_text_lines)
        faces = faces_job.result()
    mark = clock()
    clues = tuple(
        Clue(c.kind, _scaled_box(c.box, sx, sy, full), c.score, c.detector)
        for c in (*faces, *lines)
    )
    display = small.copy()
    display.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    display.save(out, "JPEG", quality=82)
    hashed = perceptual.dhash(small)
    timings["display"] = clock() - mark
    mark = clock()
    warning = measure.capture_warning(np.asarray(small)[:, :, ::-1])
    timings["exposure"] = clock() - mark
    return Analysed(
        full, clues, out.getvalue(), display.size, hashed, timings, (warning,) if warning else ()
    )


def _sure(clue: Clue) -> bool:
    return clue.score >= (SURE_FACE if clue.kind == "face" else SURE_TEXT)


def remove_expired(vault: Vault) -> int:
    """Delete every expired draft (and so shred its sealed copies); returns how many."""
    with vault.sessions.begin() as session:
        result = session.execute(
            delete(UploadDraft).where(UploadDraft.expires_at <= vault.clock.now())
        )
        return int(getattr(result, "rowcount", 0) or 0)


def earlier_sends(
    session: Session,
    patient_id: str,
    *,
    source_sha256: str,
    scrubbed_sha256: str,
    phash: int,
    exclude: str | None = None,
) -> tuple[EarlierSend, ...]:
    """Stored photos of the patient that are this photo or a near-duplicate of it."""
    rows = session.execute(
        select(Photo.id, Photo.uploaded_at, Photo.content_sha256, Photo.original_sha256,
               Photo.phash)
        .where(Photo.patient_id == patient_id, Photo.deleted_at.is_(None))
        .order_by(Photo.uploaded_at)
    ).all()  # fmt: skip
    found = []
    for photo_id, uploaded_at, content_sha, original_sha, stored_hash in rows:
        if photo_id == exclude:
            continue
        identical = content_sha == scrubbed_sha256 or original_sha == source_sha256
        stored = perceptual.from_hex(stored_hash) if stored_hash else None
        bits = perceptual.distance(phash, stored) if stored is not None else None
        if not identical and (stored is None or not perceptual.near_duplicate(phash, stored)):
            continue
        links = session.execute(
            select(ShareLink.recipient, ShareLink.created_at)
            .where(ShareLink.photo_id == photo_id)
            .order_by(ShareLink.created_at)
        ).all()
        recipients = (
            "your care team, through the portal",
            *(f"{recipient}, by share link on {created:%d %b %Y}" for recipient, created in links),
        )
        found.append(EarlierSend(photo_id, uploaded_at, identical, bits, recipients))
    return tuple(found)


def create_draft(vault: Vault, *, actor: Actor, patient_id: str, data: bytes) -> Draft:
    """Scrub and analyse ``data`` once and keep the result sealed for the save.

    The caller has already authorised ``actor`` to upload to ``patient_id``.
    """
    if len(data) > vault.settings.max_upload_bytes:
        raise TooLarge(
            f"is {len(data):,} bytes, more than the"
            f" {vault.settings.max_upload_bytes:,}-byte upload limit"
        )
    start = time.perf_counter()
    taken_on = capture_date(data)  # read before the scrub removes it
    scrubbed, report = scrub(data)
    scrub_seconds = time.perf_counter() - start
    analysed = analyse(scrubbed)
    mark = time.perf_counter()
    draft_id = vault.tokens.new_id()
    kek = vault.keys.current()
    sealed = pack(seal(scrubbed, object_id=draft_id, kind=DRAFT, kek=kek))
    sealed_display = pack(
        seal(analysed.display_jpeg, object_id=draft_id, kind=DRAFT_DISPLAY, kek=kek)
    )
    source_sha = hashlib.sha256(data).hexdigest()
    scrubbed_sha = hashlib.sha256(scrubbed).hexdigest()
    now = vault.clock.now()
    clues = tuple(DraftClue(c.kind, c.box, c.score, c.detector, _sure(c)) for c in analysed.clues)
    with vault.sessions.begin() as session:
        session.execute(delete(UploadDraft).where(UploadDraft.expires_at <= now))
        session.add(
            UploadDraft(
                id=draft_id,
                user_id=actor.id,
                patient_id=patient_id,
                created_at=now,
                expires_at=now + DRAFT_LIFETIME,
                photo_sealed=sealed,
                display_sealed=sealed_display,
                kek_id=kek.id,
                format=report.format.value,
                width=analysed.size[0],
                height=analysed.size[1],
                display_width=analysed.display_size[0],
                display_height=analysed.display_size[1],
                clues_json=json.dumps([c.__dict__ for c in clues]),
                source_sha256=source_sha,
                scrubbed_sha256=scrubbed_sha,
                phash=perceptual.to_hex(analysed.phash),
                taken_on=taken_on,
            )
        )
        earlier = earlier_sends(
            session,
            patient_id,
            source_sha256=source_sha,
            scrubbed_sha256=scrubbed_sha,
            phash=analysed.phash,
        )
    timings = {"scrub": scrub_seconds, **analysed.timings, "seal": time.perf_counter() - mark}
    return Draft(
        id=draft_id,
        expires_at=now + DRAFT_LIFETIME,
        format=report.format.value,
        size=analysed.size,
        display_size=analysed.display_size,
        findings=report.findings,
        clues=clues,
        checklist=checklist_for(report.findings, analysed.clues),
        earlier=earlier,
        capture_warnings=analysed.capture_warnings,
        timings=timings,
    )


def _live_draft(session: Session, vault: Vault, actor: Actor, draft_id: str) -> UploadDraft:
    row = session.get(UploadDraft, draft_id)
    # Someone else's draft reads as expired: its existence is not confirmed.
    if row is None or row.user_id != actor.id or row.expires_at <= vault.clock.now():
        raise RequestInvalid(EXPIRED.format(minutes=int(DRAFT_LIFETIME.total_seconds() // 60)))
    return row


def display_image(vault: Vault, *, actor: Actor, draft_id: str) -> bytes:
    """The display JPEG of the person's own live draft."""
    with vault.reading() as session:
        row = _live_draft(session, vault, actor, draft_id)
        sealed = unpack(row.display_sealed)
    return open_blob(
        sealed.blob, sealed.wrapped_dek, object_id=draft_id, kind=DRAFT_DISPLAY, keys=vault.keys
    )


def parse_box(text: str) -> Box:
    """``"x,y,w,h"`` (whole pixels of the full photo) → a box; RequestInvalid otherwise."""
    try:
        x, y, w, h = (round(float(part)) for part in text.split(","))
    except ValueError:
        raise RequestInvalid(f"{text!r} is not an area (x,y,width,height)") from None
    if w <= 0 or h <= 0:
        raise RequestInvalid(f"the area {text} has no width or height")
    return x, y, w, h


def save_draft(
    vault: Vault,
    *,
    actor: Actor,
    draft_id: str,
    covers: list[Box],
    crop: Box | None,
    site: str | None,
    note: str = "",
    taken_on: date | None = None,
) -> photo_store.StoredPhoto:
    """Store the draft's photo with ``covers`` filled and ``crop`` applied; the draft goes.

    Raises RequestInvalid (nothing stored) when the draft has expired or is not the
    actor's.
    """
    with vault.reading() as session:
        row = _live_draft(session, vault, actor, draft_id)
        sealed = unpack(row.photo_sealed)
        patient_id, phash, photo_taken_on = row.patient_id, row.phash, row.taken_on
        source_sha = row.source_sha256
    scrubbed = open_blob(
        sealed.blob, sealed.wrapped_dek, object_id=draft_id, kind=DRAFT, keys=vault.keys
    )
    data = redact(scrubbed, covers, crop=crop).data if covers or crop else scrubbed
    stored = photo_store.store_photo(
        vault,
        patient_id=patient_id,
        data=data,
        actor=actor,
        site=site,
        note=note,
        taken_on=taken_on,
        photo_taken_on=photo_taken_on,
        phash=phash,
        original_sha256=source_sha,
    )
    with vault.sessions.begin() as session:
        session.execute(delete(UploadDraft).where(UploadDraft.id == draft_id))
    return stored


def phash_of(data: bytes) -> str:
    """The perceptual hash of an encoded photo, as stored (hex)."""
    small, _ = decode_small(data, side=512)
    return perceptual.to_hex(perceptual.dhash(small))
