"""Photo versions: the copy a consent's limits allow, and the copy a browser can show.

    >>> kind = version_kind(decision.obligations, photo_format="heif", for_browser=True)
    >>> plan = plan_version(kind, markup)          # pure: what to cover and keep, or why not
    >>> ensure_version(vault, photo_id=p, kind=kind)                 # doctest: +SKIP
    VersionInfo(kind='deidentified', ...)

A consent limited to "no face", "cropped" or "de-identified" is *served*, not
only checked: the reader gets a version made for that limit, and every other
reader the photo. The kinds (:class:`Part` combined, e.g. ``deidentified+cropped``):

* ``face_free`` — faces covered with a solid fill: every face the detector found,
  except low-confidence hits the patient or a clinician dismissed, plus every box
  they added.
* ``cropped`` — only the region chosen on the photo's page; with no region chosen
  the read is refused, saying so.
* ``deidentified`` — HIPAA Safe Harbor for images: faces *and* readable text
  covered (names, dates on a letter), pixels re-encoded as a JPEG with no
  metadata and no colour profile; the services serve it with no dates, note,
  patient or photo id.
* ``display`` — the whole photo as a JPEG, for browsers that cannot show the
  original (HEIC/HEIF, TIFF), with the photo's (scrubbed) ICC colour profile and
  unconverted pixels, as the thumbnail. The original stays downloadable.

Versions are rows of ``derivatives`` sealed with their own data key (kind = the
version kind, bound to the row id) exactly like the thumbnail, so every path
that shreds a photo (:func:`skinvault.services.photo_shredding.shred_photo`) shreds them,
key rotation re-wraps them and the sweep knows their blobs. A version records
the boxes and region it was made with (``spec_json``); when the markup changes
the old one is shredded and a new one made on the next read. Versions are made
lazily inside the read; :func:`ensure_version` is what a background job can call
ahead of time.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.crypto.envelope import seal
from skinvault.db.models import Derivative, Photo, PhotoMarkup
from skinvault.errors import (
    AccessDenied,
    NotFound,
    PhotoError,
    RequestInvalid,
    SkinvaultError,
)
from skinvault.policy.decide import Obligation, PatientAction

if TYPE_CHECKING:
    from skinvault.photos.redact import Decoded as RedactDecoded
    from skinvault.services.photo_reads import PhotoBytes

Box = tuple[int, int, int, int]

#: Detected boxes scoring at least this are always covered; lower ones can be dismissed.
SURE_SCORE = 0.5
#: Formats every current browser shows as they are.
BROWSER_FORMATS = frozenset({"jpeg", "png", "webp"})
DISPLAY = "display"


class Part(StrEnum):
    DEIDENTIFIED = "deidentified"
    FACE_FREE = "face_free"
    CROPPED = "cropped"


#: Plain words for each part, used in audit reasons, refusals and the photo page.
PART_WORDS = {
    Part.DEIDENTIFIED: "de-identified (faces and readable text covered, no dates or metadata)",
    Part.FACE_FREE: "face-free (faces covered)",
    Part.CROPPED: "cropped to the chosen area",
}


class VersionUnavailable(AccessDenied):
    """A version the decision requires cannot be made; the reason says why, in plain words."""


# -- pure: which version, and how to make it ---------------------------------------------


def version_kind(
    obligations: Iterable[Obligation], *, photo_format: str, for_browser: bool
) -> str | None:
    """The version a reader with ``obligations`` gets, or None for the stored photo itself.

    >>> version_kind({Obligation.DEIDENTIFIED, Obligation.CROPPED}, photo_format="jpeg",
    ...              for_browser=False)
    'deidentified+cropped'
    >>> version_kind(set(), photo_format="heif", for_browser=True)
    'display'
    """
    wanted = set(obligations)
    parts: list[str] = []
    if Obligation.DEIDENTIFIED in wanted:
        parts.append(Part.DEIDENTIFIED)  # covers faces too: no face_free part needed
    elif Obligation.NO_FACE in wanted:
        parts.append(Part.FACE_FREE)
    if Obligation.CROPPED in wanted:
        parts.append(Part.CROPPED)
    if parts:
        return "+".join(parts)
    if for_browser and photo_format not in BROWSER_FORMATS:
        return DISPLAY
    return None


def parts_of(kind: str) -> frozenset[Part]:
    return frozenset() if kind == DISPLAY else frozenset(Part(p) for p in kind.split("+"))


def describe_kind(kind: str) -> str:
    """Plain words for a version kind ("de-identified (…) and cropped to the chosen area")."""
    if kind == DISPLAY:
        return "display copy (JPEG made for browsers)"
    return " and ".join(PART_WORDS[Part(p)] for p in kind.split("+"))


@dataclass(frozen=True)
class Detected:
    kind: str  # "face" | "text"
    box: Box
    score: float


@dataclass(frozen=True)
class Markup:
    """What is known and chosen about a photo's versions (a :class:`PhotoMarkup` row)."""

    detected: tuple[Detected, ...] | None = None  # None: the detector has not run yet
    added: tuple[Box, ...] = ()
    dismissed: tuple[Box, ...] = ()
    crop: Box | None = None
    confirmed_by: str | None = None
    revision: int = 0


@dataclass(frozen=True)
class Plan:
    """How to make a version: boxes to cover, the region to keep, whether colour profiles stay."""

    kind: str
    cover: tuple[Box, ...] = ()
    crop: Box | None = None
    colour_profile: bool = True
    confirmed_by: str | None = None

    def spec(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "cover": [list(b) for b in self.cover],
            "crop": list(self.crop) if self.crop else None,
            "colour_profile": self.colour_profile,
        }

    def spec_json(self) -> str:
        return json.dumps(self.spec(), sort_keys=True)


@dataclass(frozen=True)
class Refusal:
    reason: str


@dataclass(frozen=True)
class NeedsDetection:
    """The detector must run first (on the decrypted photo) before the plan is known."""

    text: bool


def plan_version(kind: str, markup: Markup) -> Plan | Refusal | NeedsDetection:
    """What version ``kind`` covers and keeps given ``markup``; pure, no I/O.

    >>> isinstance(plan_version("cropped", Markup()), Refusal)   # no region chosen
    True
    """
    parts = parts_of(kind)
    if Part.CROPPED in parts and markup.crop is None:
        return Refusal(
            "The patient allows this use only for a version cropped to the skin area in"
            " question, and no area has been chosen yet. The patient or their clinician can"
            " choose it on the photo's page."
        )
    covering = parts & {Part.FACE_FREE, Part.DEIDENTIFIED}
    text = Part.DEIDENTIFIED in parts
    if covering and (markup.detected is None or (text and not _text_checked(markup))):
        return NeedsDetection(text=text)
    cover: list[Box] = []
    if covering:
        dismissed = set(markup.dismissed)
        for found in markup.detected or ():
            if found.kind == _TEXT_CHECKED.kind or (found.kind == "text" and not text):
                continue
            if found.score < SURE_SCORE and found.box in dismissed:
                continue  # a low-confidence hit a person looked at and dismissed
            cover.append(found.box)
        cover += [b for b in markup.added if b not in cover]
    return Plan(
        kind,
        tuple(cover),
        markup.crop if Part.CROPPED in parts else None,
        colour_profile=not text,
        confirmed_by=markup.confirmed_by if (covering or markup.crop) else None,
    )


_TEXT_CHECKED = Detected("text-checked", (0, 0, 0, 0), 0.0)


def _text_checked(markup: Markup) -> bool:
    return any(d.kind == _TEXT_CHECKED.kind for d in markup.detected or ())


def parse_box(text: str) -> Box:
    """``"x,y,w,h"`` (or separated by spaces) as a box; RequestInvalid otherwise.

    >>> parse_box("10, 20, 30, 40")
    (10, 20, 30, 40)
    """
    cells = text.replace(",", " ").split()
    try:
        numbers = [int(float(c)) for c in cells]
    except ValueError:
        numbers = []
    if len(numbers) != 4 or numbers[2] <= 0 or numbers[3] <= 0 or min(numbers[:2]) < 0:
        raise RequestInvalid(
            f"“{text[:40]}” is not an area: give x, y, width and height in pixels,"
            " e.g. 120, 40, 300, 200"
        )
    return numbers[0], numbers[1], numbers[2], numbers[3]


# -- stored shapes ---------------------------------------------------------------------------


def _boxes(raw: object) -> tuple[Box, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple((int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in raw)


def markup_of(row: PhotoMarkup | None) -> Markup:
    if row is None:
        return Markup()
    detected = None
    if row.detected_json is not None:
        detected = tuple(
            Detected(str(d["kind"]), _boxes([d["box"]])[0], float(d["score"]))
            for d in json.loads(row.detected_json)
        )
    chosen = json.loads(row.boxes_json or "{}")
    crop = json.loads(row.crop_json) if row.crop_json else None
    return Markup(
        detected=detected,
        added=_boxes(chosen.get("added")),
        dismissed=_boxes(chosen.get("dismissed")),
        crop=_boxes([crop])[0] if crop else None,
        confirmed_by=row.confirmed_by,
        revision=row.revision,
    )


def load_markup(session: Session, photo_id: str) -> Markup:
    return markup_of(session.get(PhotoMarkup, photo_id))


def current_version(session: Session, photo_id: str, plan: Plan) -> Derivative | None:
    """The live version made exactly to ``plan``, if there is one."""
    wanted = plan.spec_json()
    rows = session.scalars(
        select(Derivative)
        .where(
            Derivative.photo_id == photo_id,
            Derivative.kind == plan.kind,
            Derivative.deleted_at.is_(None),
        )
        .order_by(Derivative.created_at.desc())
    )
    return next((r for r in rows if r.spec_json == wanted and r.wrapped_dek), None)


@dataclass(frozen=True)
class VersionInfo:
    kind: str
    derivative_id: str
    width: int
    height: int
    made: bool = False  # False: it existed already
    covered: tuple[Box, ...] = field(default=())


def _photo(session: Session, photo_id: str, *, lock: bool = False) -> Photo:
    """The live photo; ``lock`` holds its row (PostgreSQL) so a shred waits for the new
    version to be listed, or the version for the shred, never one listing around the other."""
    if lock and session.get_bind().dialect.name == "postgresql":
        photo = session.get(Photo, photo_id, with_for_update=True, populate_existing=True)
    else:
        photo = session.get(Photo, photo_id)
    if photo is None or photo.deleted_at is not None or photo.wrapped_dek is None:
        raise NotFound(f"there is no photo {photo_id}")
    return photo


def _original(vault: Vault, photo_id: str) -> bytes:
    from skinvault.services import photo_reads, photo_store  # noqa: PLC0415 (photo_reads imports us)

    with vault.reading() as session:
        photo = _photo(session, photo_id)
        blob_key, wrapped, sha = photo.blob_key, photo.wrapped_dek, photo.content_sha256
    assert wrapped is not None
    return photo_reads.decrypt_blob(
        vault,
        object_id=photo_id,
        kind=photo_store.PHOTO,
        blob_key=blob_key,
        wrapped=wrapped,
        sha256=sha,
    )


def _handed_decode(photo_id: str, photo_format: str) -> RedactDecoded | None:
    """The full decode this process's upload kept (HEIF, TIFF: decoded in full there, with
    the same opener and orientation as :func:`skinvault.photos.redact.decode`, so the
    version is byte for byte the one a fresh decode makes), or None."""
    from skinvault.photos.redact import Decoded  # noqa: PLC0415 (Pillow: on use)
    from skinvault.photos.sniff import ImageFormat  # noqa: PLC0415
    from skinvault.services import thumbnails  # noqa: PLC0415 (it imports photos, which imports us)

    if photo_format not in thumbnails.FULL_FORMATS:
        return None
    image = thumbnails.full_pixels(photo_id)
    if image is None:
        return None
    # subsampling is a JPEG source's only; the notes (extra frames) do not reach the bytes.
    icc = image.info.get("icc_profile") or None
    return Decoded(image=image, format=ImageFormat(photo_format), icc_profile=icc,
                   subsampling=None)  # fmt: skip


def _store_detection(vault: Vault, photo_id: str, found: Sequence[Detected]) -> None:
    with vault.sessions.begin() as session:
        _photo(session, photo_id)
        row = session.get(PhotoMarkup, photo_id)
        if row is None:
            row = PhotoMarkup(photo_id=photo_id, boxes_json="{}", revision=0)
            session.add(row)
        row.detected_json = json.dumps(
            [{"kind": d.kind, "box": list(d.box), "score": d.score} for d in found]
        )


def _audit(vault: Vault, actor: Actor | None, photo_id: str, outcome: Outcome, why: str) -> None:
    with vault.sessions.begin() as session:
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name if actor else "system:versions",
            action=Action.PHOTO_VERSION,
            object=f"photo:{photo_id}",
            outcome=outcome,
            reason=why,
        )


def ensure_version(
    vault: Vault, *, photo_id: str, kind: str, actor: Actor | None = None
) -> VersionInfo:
    """Make version ``kind`` of a photo unless a current one exists; returns which it is.

    Not a disclosure (nothing leaves the service), so no policy decision: the read that
    serves the version decides and audits that. Making one is audited as
    ``photo:version`` (done, or failed with the reason). Raises :class:`VersionUnavailable`
    with a plain reason when it cannot be made.
    """
    from skinvault.photos.derivative import detect, make_version  # noqa: PLC0415 (Pillow, cv2)
    from skinvault.photos.redact import decode  # noqa: PLC0415
    from skinvault.services import photo_store  # noqa: PLC0415 (lazy, as photos was)

    words = describe_kind(kind)
    with vault.reading() as session:
        photo_format = _photo(session, photo_id).format
        markup = load_markup(session, photo_id)
        plan = plan_version(kind, markup)
        if isinstance(plan, Plan) and (row := current_version(session, photo_id, plan)):
            return VersionInfo(kind, row.id, row.width, row.height)
    if isinstance(plan, Refusal):
        raise VersionUnavailable(plan.reason)
    handed = _handed_decode(photo_id, photo_format)
    original = b"" if handed is not None else _original(vault, photo_id)
    try:
        decoded = handed if handed is not None else decode(original)
        if isinstance(plan, NeedsDetection):
            try:
                clues = detect(decoded, text=plan.text)
            except RuntimeError as exc:
                raise VersionUnavailable(
                    f"The patient allows this use only for a {words} version, and it could"
                    f" not be made: {exc}."
                ) from exc
            found = [Detected(c.kind, c.box, c.score) for c in clues]
            if plan.text:
                found.append(_TEXT_CHECKED)
            _store_detection(vault, photo_id, found)
            with vault.reading() as session:
                plan = plan_version(kind, load_markup(session, photo_id))
            if not isinstance(plan, Plan):  # the markup changed under us; refuse, do not loop
                raise VersionUnavailable(
                    f"The {words} version could not be made just now; try again."
                )
        made = make_version(
            original,
            cover=plan.cover,
            crop=plan.crop,
            colour_profile=plan.colour_profile,
            decoded=decoded,
        )
    except VersionUnavailable as exc:
        _audit(vault, actor, photo_id, Outcome.FAILED, f"{kind}: {exc}")
        raise
    except PhotoError as exc:
        _audit(vault, actor, photo_id, Outcome.FAILED, f"{kind}: {exc}")
        raise VersionUnavailable(
            f"The {words} version of this photo could not be made: {exc}."
        ) from exc
    version_id = vault.tokens.new_id()
    kek = vault.keys.current()
    sealed = seal(made.data, object_id=version_id, kind=kind, kek=kek)
    blob_key = photo_store.new_blob_key(vault, "v")
    photo_store.put_blob(vault, blob_key, sealed.blob)
    stale: list[str] = []
    existing: VersionInfo | None = None
    try:
        with vault.sessions.begin() as session:
            _photo(session, photo_id, lock=True)  # shredded meanwhile: nothing is listed
            twin = current_version(session, photo_id, plan)
            if twin is not None:  # made meanwhile by another read: keep that one, drop ours
                existing = VersionInfo(kind, twin.id, twin.width, twin.height)
            else:
                now = vault.clock.now()
                for old in session.scalars(
                    select(Derivative).where(
                        Derivative.photo_id == photo_id,
                        Derivative.kind == kind,
                        Derivative.deleted_at.is_(None),
                    )
                ):
                    # Made with other boxes or another region: never to be served again.
                    old.wrapped_dek, old.kek_id, old.deleted_at = None, None, now
                    stale.append(old.blob_key)
                session.add(
                    Derivative(
                        id=version_id,
                        photo_id=photo_id,
                        kind=kind,
                        blob_key=blob_key,
                        wrapped_dek=sealed.wrapped_dek,
                        kek_id=kek.id,
                        format="jpeg",
                        width=made.size[0],
                        height=made.size[1],
                        created_at=now,
                        spec_json=plan.spec_json(),
                        confirmed_by=plan.confirmed_by,
                    )
                )
                record(
                    session,
                    clock=vault.clock,
                    actor=actor.audit_name if actor else "system:versions",
                    action=Action.PHOTO_VERSION,
                    object=f"photo:{photo_id}",
                    outcome=Outcome.DONE,
                    reason=f"{kind}: {len(made.covered)} area(s) covered"
                    + (f", cropped to {made.size[0]} × {made.size[1]}" if plan.crop else ""),
                )
    except BaseException:
        with contextlib.suppress(SkinvaultError, OSError):
            vault.blobs.delete(blob_key)
        raise
    if existing is not None:
        stale.append(blob_key)
    for key in stale:
        with contextlib.suppress(SkinvaultError, OSError):
            vault.blobs.delete(key)
    if existing is not None:
        return existing
    return VersionInfo(kind, version_id, made.size[0], made.size[1], True, made.covered)


def refusal_for(session: Session, photo_id: str, kind: str) -> str | None:
    """The reason version ``kind`` cannot be served without trying to make it, or None."""
    plan = plan_version(kind, load_markup(session, photo_id))
    return plan.reason if isinstance(plan, Refusal) else None


# -- the markup: boxes and region chosen by the patient or a clinician -----------------------


@dataclass(frozen=True)
class MarkupView:
    """What the photo page shows: the detector's boxes, the person's choices, the crop."""

    photo_id: str
    detected: tuple[Detected, ...] | None
    added: tuple[Box, ...]
    dismissed: tuple[Box, ...]
    crop: Box | None
    confirmed_by: str | None
    sure_score: float = SURE_SCORE


def _authorize(vault: Vault, actor: Actor, photo_id: str) -> None:
    from skinvault.services.records import authorize  # noqa: PLC0415 (records imports photos)

    with vault.reading() as session:
        photo = _photo(session, photo_id)
        patient_id = photo.patient_id
    # The people who may add photos to the record (the patient, the care team) mark them up.
    authorize(vault, actor, patient_id, PatientAction.UPLOAD)


def get_markup(vault: Vault, *, photo_id: str, actor: Actor) -> MarkupView:
    """The markup of a photo, for the patient and their care team."""
    _authorize(vault, actor, photo_id)
    with vault.reading() as session:
        m = load_markup(session, photo_id)
    return MarkupView(photo_id, m.detected, m.added, m.dismissed, m.crop, m.confirmed_by)


def detect_now(vault: Vault, *, photo_id: str, actor: Actor) -> MarkupView:
    """Run the detectors (faces and text) on a photo so its boxes can be confirmed."""
    from skinvault.photos.derivative import detect  # noqa: PLC0415
    from skinvault.photos.redact import decode  # noqa: PLC0415

    _authorize(vault, actor, photo_id)
    decoded = decode(_original(vault, photo_id))
    try:
        clues = detect(decoded, text=True)
        text_checked = True
    except RuntimeError:
        clues = detect(decoded, text=False)  # faces still; text marked unchecked
        text_checked = False
    found = [Detected(c.kind, c.box, c.score) for c in clues]
    if text_checked:
        found.append(_TEXT_CHECKED)
    _store_detection(vault, photo_id, found)
    return get_markup(vault, photo_id=photo_id, actor=actor)


def set_markup(
    vault: Vault,
    *,
    photo_id: str,
    actor: Actor,
    added: Sequence[Box] = (),
    dismissed: Sequence[Box] = (),
    crop: Box | None = None,
) -> MarkupView:
    """Record the boxes to cover (added), low-confidence hits dismissed and the crop region.

    Replaces the previous choices; versions made with other choices are shredded at once
    (and made again on the next read). Only boxes the detector found with a score below
    :data:`SURE_SCORE` can be dismissed. Audited as ``photo:markup``.
    """
    _authorize(vault, actor, photo_id)
    stale: list[str] = []
    with vault.sessions.begin() as session:
        photo = _photo(session, photo_id)
        row = session.get(PhotoMarkup, photo_id)
        if row is None:
            row = PhotoMarkup(photo_id=photo_id, boxes_json="{}", revision=0)
            session.add(row)
        known = markup_of(row)
        if crop is not None:
            x, y, w, h = crop
            if x >= photo.width or y >= photo.height:
                raise RequestInvalid(
                    f"the area {x},{y},{w},{h} lies outside the {photo.width} × {photo.height}"
                    " photo"
                )
        unsure = {d.box for d in known.detected or () if d.score < SURE_SCORE}
        refused = [b for b in dismissed if b not in unsure]
        if refused:
            raise RequestInvalid(
                "only boxes the detector was unsure about can be dismissed; a face it is"
                " sure of is always covered"
            )
        row.boxes_json = json.dumps(
            {"added": [list(b) for b in added], "dismissed": [list(b) for b in dismissed]}
        )
        row.crop_json = json.dumps(list(crop)) if crop else None
        row.confirmed_by = actor.id if actor.role else None
        row.confirmed_at = vault.clock.now()
        row.revision = (row.revision or 0) + 1
        now = vault.clock.now()
        for old in session.scalars(
            select(Derivative).where(
                Derivative.photo_id == photo_id,
                Derivative.kind != "thumbnail",
                Derivative.kind != DISPLAY,
                Derivative.deleted_at.is_(None),
            )
        ):
            old.wrapped_dek, old.kek_id, old.deleted_at = None, None, now
            stale.append(old.blob_key)
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=Action.PHOTO_MARKUP,
            object=f"photo:{photo_id}",
            outcome=Outcome.DONE,
            reason=f"{len(added)} box(es) added, {len(dismissed)} dismissed,"
            + (f" crop {crop[2]} × {crop[3]} at {crop[0]},{crop[1]}" if crop else " no crop"),
        )
    for key in stale:
        with contextlib.suppress(SkinvaultError, OSError):
            vault.blobs.delete(key)
    return get_markup(vault, photo_id=photo_id, actor=actor)


def forget_markup(session: Session, photo_id: str) -> None:
    """Forget a photo's markup (in the caller's transaction, with the photo's shredding)."""
    row = session.get(PhotoMarkup, photo_id)
    if row is not None:
        session.delete(row)


_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/heif": "heic",
    "image/tiff": "tif",
}


def download_name(got: PhotoBytes) -> str:
    """A neutral file name for served bytes: never the photo's id, date or patient.

    >>> download_name(PhotoBytes("3f9a", b"", "image/heif"))          # doctest: +SKIP
    'photo.heic'
    """
    stem = "photo" if got.version in (None, DISPLAY) else "photo-version"
    return f"{stem}.{_EXTENSIONS.get(got.media_type, 'bin')}"


def display_for(vault: Vault, got: PhotoBytes) -> PhotoBytes:
    """``got`` as browsers can show it: unchanged for JPEG/PNG/WebP, else the photo's JPEG
    display version (made and stored on first use).

    For bytes a decision has already allowed and audited (a share link's open): the
    display version shows exactly the same pixels, so no second decision is needed.
    """
    from skinvault.services import photo_reads  # noqa: PLC0415 (photo_reads imports us)

    fmt = {v: k for k, v in photo_reads.MEDIA_TYPES.items()}.get(got.media_type, "")
    if got.version is not None or fmt in BROWSER_FORMATS:
        return got
    made = ensure_version(vault, photo_id=got.photo_id, kind=DISPLAY)
    with vault.reading() as session:
        row = session.get(Derivative, made.derivative_id)
        if row is None or row.wrapped_dek is None:
            raise NotFound(f"photo {got.photo_id} has no display version")
        blob_key, wrapped = row.blob_key, row.wrapped_dek
    data = photo_reads.decrypt_blob(
        vault, object_id=made.derivative_id, kind=DISPLAY, blob_key=blob_key, wrapped=wrapped
    )
    return replace(got, data=data, media_type="image/jpeg", version=DISPLAY)
