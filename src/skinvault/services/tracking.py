"""Progress tracking: the body map, a series per site, capture details, measurements, comparison.

    >>> body_map(vault, actor=me, patient_id=pid)                # doctest: +SKIP
    >>> series(vault, actor=me, patient_id=pid, site="forearm-back-left")  # doctest: +SKIP
    >>> measure_photo(vault, photo_id)                            # background, system actor
    >>> compare(vault, actor=me, reference_id=a, moving_id=b, purpose="care")  # doctest: +SKIP

Record-level work (the map, the list of a series) is decided by
:func:`skinvault.services.records.authorize`; every measurement shown passes the
same decision as viewing the photo it came from (``photo_policy.photo_decision`` with
``Access.VIEW``) and is audited as ``measurement:view``; comparison reads both
photos through :func:`skinvault.services.photo_reads.read_photo` (two ``photo:view``).
Measuring decrypts the photo as the system, like making a thumbnail, and is
audited as ``photo:measure``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import cast

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.crypto.envelope import open_blob, pack, seal, unpack
from skinvault.db.models import BodySite, Measurement, Notification, Photo
from skinvault.errors import AccessDenied, NotFound, RequestInvalid, SkinvaultError
from skinvault.policy.decide import Access, PatientAction
from skinvault.policy.purposes import Purpose
from skinvault.services import failed_attempts, photo_policy, photo_reads, photo_store
from skinvault.services.records import authorize
from skinvault.tracking import sites as body_sites

DETAILS = "details"
LIGHTING = ("daylight", "indoor-lamp", "flash", "uv-wood-lamp", "other")
DISTANCE = ("close-up", "30-cm", "arm-length", "whole-region", "other")
#: How each capture-condition code reads on a page.
CONDITION_LABELS = {
    "daylight": "daylight", "indoor-lamp": "indoor lamp", "flash": "camera flash",
    "uv-wood-lamp": "UV (Wood's) lamp", "close-up": "close-up", "30-cm": "about 30 cm",
    "arm-length": "arm's length", "whole-region": "the whole region", "other": "other",
}  # fmt: skip
KIND_DEPIGMENTED = "depigmented-share"
KIND_SKIN = "skin-share"
DISCLAIMER = "A measurement aid, not a diagnosis."
#: At most this many parts of one photo can be left out of a measurement.
MAX_LEFT_OUT = 20
#: A site's next photo is suggested this long after its last one (same light, same distance).
REMIND_AFTER = timedelta(weeks=4)


@dataclass(frozen=True)
class CaptureDetails:
    treatment: str = ""
    lighting: str = ""
    distance: str = ""
    card: bool | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "treatment": self.treatment,
            "lighting": self.lighting,
            "distance": self.distance,
            "card": self.card,
        }


@dataclass(frozen=True)
class SiteSummary:
    site: body_sites.Site
    photos: int
    last_taken: date | None


@dataclass(frozen=True)
class MeasurementView:
    depigmented_percent: float | None  #: None: not measured (``not_measured`` says why)
    skin_percent: float | None
    method: str
    version: str
    region: dict[str, int] | None
    measured_at: datetime
    details: dict[str, object] = field(default_factory=dict)

    @property
    def not_measured(self) -> str | None:
        """Why the photo was not measured (overexposed, too little skin), or None."""
        if self.depigmented_percent is not None:
            return None
        from skinvault.tracking import measure as me  # noqa: PLC0415  (OpenCV: import on use)

        notes = self.details.get("notes")
        found = me.not_measured_reason([str(n) for n in notes]) if isinstance(notes, list) else None
        return found or "not measured"


@dataclass(frozen=True)
class SeriesEntry:
    photo_id: str
    taken_on: date  #: capture date, else the upload date
    taken_on_source: str  #: "photo", "person" or "upload"
    details: CaptureDetails
    measurement: MeasurementView | None  #: None when not measured yet or not allowed
    measurement_hidden: bool  #: the policy refused showing it
    width: int = 0  #: the photo's upright size in pixels (the space regions are drawn in)
    height: int = 0


@dataclass(frozen=True)
class Comparison:
    reference_id: str
    moving_id: str
    confident: bool
    reason: str
    matrix: list[list[float]]
    inliers: int
    aligned_jpeg: bytes | None  #: MOVING warped onto REFERENCE, only when confident


def _seal_details(vault: Vault, photo_id: str, details: CaptureDetails) -> bytes | None:
    if details == CaptureDetails():
        return None
    data = json.dumps(details.as_json()).encode("utf-8")
    return pack(seal(data, object_id=photo_id, kind=DETAILS, kek=vault.keys.current()))


def _open_details(vault: Vault, photo: Photo) -> CaptureDetails:
    if photo.details_enc is None:
        return CaptureDetails()
    sealed = unpack(photo.details_enc)
    raw = open_blob(
        sealed.blob, sealed.wrapped_dek, object_id=photo.id, kind=DETAILS, keys=vault.keys
    )
    d = json.loads(raw)
    card = d.get("card")
    return CaptureDetails(
        str(d.get("treatment", "")),
        str(d.get("lighting", "")),
        str(d.get("distance", "")),
        card if isinstance(card, bool) else None,
    )


def check_details(
    treatment: str, lighting: str, distance: str, card: bool | None
) -> CaptureDetails:
    if len(treatment) > 200:
        raise RequestInvalid("Keep the treatment to 200 characters; more fits in the note.")
    if lighting and lighting not in LIGHTING:
        raise RequestInvalid(f"Lighting is one of: {', '.join(LIGHTING)}.")
    if distance and distance not in DISTANCE:
        raise RequestInvalid(f"Distance is one of: {', '.join(DISTANCE)}.")
    return CaptureDetails(treatment.strip(), lighting, distance, card)


def body_map(vault: Vault, *, actor: Actor, patient_id: str) -> dict[str, SiteSummary]:
    """Per site code: how many photos and the latest capture date (for the body map)."""
    authorize(vault, actor, patient_id, PatientAction.LIST_PHOTOS)
    out: dict[str, SiteSummary] = {}
    with vault.reading() as session:
        rows = session.execute(
            select(BodySite.code, Photo.taken_on, Photo.uploaded_at)
            .join(Photo, Photo.site_id == BodySite.id)
            .where(
                BodySite.patient_id == patient_id,
                Photo.deleted_at.is_(None),
                Photo.wrapped_dek.is_not(None),
            )
        ).all()
    for code, taken_on, uploaded_at in rows:
        if not body_sites.is_site(code):
            continue
        day = taken_on or uploaded_at.date()
        prev = out.get(code)
        if prev is None:
            out[code] = SiteSummary(body_sites.get(code), 1, day)
        else:
            last = max(d for d in (prev.last_taken, day) if d is not None)
            out[code] = SiteSummary(prev.site, prev.photos + 1, last)
    return out


def due_sites(summary: dict[str, SiteSummary], today: date) -> list[SiteSummary]:
    """The sites whose next photo is due (last one ``REMIND_AFTER`` ago or more), oldest
    first: the portal's reminders."""
    due = [s for s in summary.values() if s.last_taken and s.last_taken + REMIND_AFTER <= today]
    return sorted(due, key=lambda s: (s.last_taken or today, s.site.code))


#: A site is reminded of when its next photo became due within this window (so a site
#: nobody photographs any more is told once, not at every sweep).
_NEWLY_DUE = timedelta(days=7)
#: The job that measures one stale photo anew (services/job_kinds.REMEASURE).
REMEASURE_JOB = "remeasure"


def recent_site_photos(since: date, since_at: datetime) -> Select[str, str, date | None, datetime]:
    """(site, patient, capture date, upload time) of every live photo of a site taken after
    ``since`` (or, without a capture date, uploaded from ``since_at``): read through the
    indexes on both dates (0015), not the whole photos table."""
    return (
        select(BodySite.id, BodySite.patient_id, Photo.taken_on, Photo.uploaded_at)
        .join(Photo, Photo.site_id == BodySite.id)
        .where(
            Photo.deleted_at.is_(None),
            Photo.wrapped_dek.is_not(None),
            or_(
                Photo.taken_on > since,
                and_(Photo.taken_on.is_(None), Photo.uploaded_at >= since_at),
            ),
        )
    )


def notice_due_photos(session: Session, vault: Vault, now: datetime) -> int:
    """Tell each patient once when a site's next photo has become due (the notification
    sweep, in its transaction; idempotent): the portal's list, and an e-mail only for a
    patient who chose one. Returns how many were told."""
    from skinvault.services import notifications as notices  # noqa: PLC0415 (cycle)

    cutoff = now.date() - REMIND_AFTER  # a last photo on this day or before: due
    since = cutoff - _NEWLY_DUE  # ... and after this day: newly due
    since_at = datetime.combine(since + timedelta(days=1), time(), tzinfo=UTC)
    rows = session.execute(recent_site_photos(since, since_at)).all()
    last: dict[str, tuple[str, date]] = {}
    for site_id, patient_id, taken_on, uploaded_at in rows:
        day = taken_on or uploaded_at.date()
        if site_id not in last or day > last[site_id][1]:
            last[site_id] = (patient_id, day)
    due = {
        f"photo-due:{site_id}:{day.isoformat()}": patient_id
        for site_id, (patient_id, day) in last.items()
        if since < day <= cutoff
    }
    if not due:
        return 0
    told = set(
        session.scalars(
            select(Notification.ref).where(
                Notification.kind == notices.Kind.PHOTO_DUE.value,
                Notification.ref.in_(list(due)),
            )
        )
    )
    return sum(
        notices.notify_patient(session, vault, patient_id=pid, kind=notices.Kind.PHOTO_DUE, ref=ref)
        for ref, pid in due.items()
        if ref not in told
    )


def _measurement_of(rows: list[Measurement]) -> MeasurementView | None:
    dep = next((m for m in rows if m.kind == KIND_DEPIGMENTED), None)
    if dep is None:
        return None
    skin = next((m for m in rows if m.kind == KIND_SKIN), None)
    return MeasurementView(
        depigmented_percent=dep.value,
        skin_percent=skin.value if skin else None,
        method=dep.method,
        version=dep.version,
        region=json.loads(dep.region_json) if dep.region_json else None,
        measured_at=dep.measured_at,
        details=json.loads(dep.details_json or "{}"),
    )


def _current_method() -> tuple[str, str]:
    from skinvault.tracking import measure as me  # noqa: PLC0415  (OpenCV: import on use)

    return me.METHOD, me.VERSION


def _stale(done: MeasurementView) -> bool:
    return (done.method, done.version) != _current_method()


def _region_of(done: MeasurementView) -> tuple[int, int, int, int] | None:
    r = done.region
    return (int(r["x"]), int(r["y"]), int(r["w"]), int(r["h"])) if r else None


def _left_out_of(done: MeasurementView) -> list[tuple[int, int, int, int]] | None:
    parts = cast(list[list[int]], done.details.get("exclude") or [])
    return [(int(a), int(b), int(c), int(d)) for a, b, c, d in parts] or None


def stale_photos(session: Session) -> list[str]:
    """Live photos whose latest depigmented-share measurement another method or version
    made than the one measuring now (oldest first)."""
    method, version = _current_method()
    latest = (
        select(Measurement.photo_id, func.max(Measurement.measured_at).label("at"))
        .where(Measurement.kind == KIND_DEPIGMENTED)
        .group_by(Measurement.photo_id)
        .subquery()
    )
    rows = session.execute(
        select(Measurement.photo_id)
        .join(
            latest,
            and_(Measurement.photo_id == latest.c.photo_id, Measurement.measured_at == latest.c.at),
        )
        .join(Photo, Photo.id == Measurement.photo_id)
        .where(
            Measurement.kind == KIND_DEPIGMENTED,
            or_(Measurement.method != method, Measurement.version != version),
            Photo.deleted_at.is_(None),
            Photo.wrapped_dek.is_not(None),
        )
        .order_by(latest.c.at)
    )
    return list(dict.fromkeys(rows.scalars()))


def remeasure_stale(vault: Vault) -> int:
    """Queue a measurement anew of every photo :func:`stale_photos` names (once per photo
    and version: the job's key); how many were queued. The daily ``remeasure`` job runs it,
    so a new method version reaches every chart within a day of an upgrade."""
    from skinvault.services import jobs  # noqa: PLC0415 (jobs' handlers import this module)

    _, version = _current_method()
    with vault.sessions.begin() as session:
        stale = stale_photos(session)
        for photo_id in stale:
            jobs.enqueue(session, vault, REMEASURE_JOB, {"photo_id": photo_id},
                         key=f"{REMEASURE_JOB}:{photo_id}:{version}")  # fmt: skip
    return len(stale)


def series(
    vault: Vault, *, actor: Actor, patient_id: str, site: str, purpose: Purpose | str = Purpose.CARE
) -> list[SeriesEntry]:
    """The photos of one site, oldest capture first, with what each viewer may see measured."""
    if not body_sites.is_site(site):
        raise NotFound(f"there is no body site {site!r}")
    authorize(vault, actor, patient_id, PatientAction.LIST_PHOTOS)
    chosen = Purpose(purpose)
    entries: list[SeriesEntry] = []
    with vault.sessions.begin() as session:
        photos = session.scalars(
            select(Photo)
            .join(BodySite, Photo.site_id == BodySite.id)
            .where(
                BodySite.patient_id == patient_id,
                BodySite.code == site,
                Photo.deleted_at.is_(None),
                Photo.wrapped_dek.is_not(None),
            )
        ).all()
        for photo in photos:
            rows = list(
                session.scalars(
                    select(Measurement)
                    .where(Measurement.photo_id == photo.id)
                    .order_by(Measurement.measured_at.desc())
                )
            )
            shown: MeasurementView | None = None
            hidden = False
            if rows:
                decision = photo_policy.photo_decision(
                    session,
                    vault,
                    photo,
                    actor=actor,
                    access=Access.VIEW,
                    purpose=chosen,
                    break_glass_reason=None,
                )
                record(
                    session,
                    clock=vault.clock,
                    actor=actor.audit_name,
                    action=Action.MEASUREMENT_VIEW,
                    object=f"photo:{photo.id}",
                    outcome=Outcome.ALLOWED if decision.allowed else Outcome.DENIED,
                    purpose=chosen.value,
                    reason=photo_policy.audit_reason(decision),
                )
                if decision.allowed:
                    shown = _measurement_of(rows)
                else:
                    hidden = True
            taken = photo.taken_on or photo.uploaded_at.date()
            entries.append(
                SeriesEntry(
                    photo_id=photo.id,
                    taken_on=taken,
                    taken_on_source=(photo.taken_on_source or "photo")
                    if photo.taken_on
                    else "upload",
                    details=_open_details(vault, photo),
                    measurement=shown,
                    measurement_hidden=hidden,
                    width=photo.width,
                    height=photo.height,
                )
            )
    entries.sort(key=lambda e: (e.taken_on, e.photo_id))
    return entries


def annotate(
    vault: Vault,
    *,
    actor: Actor,
    photo_id: str,
    taken_on: date | None = None,
    details: CaptureDetails | None = None,
    site: str | None = None,
) -> None:
    """Correct a photo's capture date, capture details or site (the patient or care team)."""
    with vault.reading() as session:
        photo = session.get(Photo, photo_id)
        if photo is None or photo.deleted_at is not None:
            raise NotFound(f"there is no photo {photo_id}")
        patient_id = photo.patient_id
    authorize(vault, actor, patient_id, PatientAction.UPLOAD)
    if site is not None and not body_sites.is_site(site):
        raise RequestInvalid("Choose the site on the body map.")
    if taken_on is not None and taken_on > vault.clock.now().date():
        raise RequestInvalid("The capture date cannot be in the future.")
    changed: list[str] = []
    with vault.sessions.begin() as session:
        photo = session.get(Photo, photo_id)
        assert photo is not None
        if taken_on is not None:
            photo.taken_on, photo.taken_on_source = taken_on, "person"
            changed.append("capture date")
        if details is not None:
            photo.details_enc = _seal_details(vault, photo_id, details)
            changed.append("capture details")
        if site is not None:
            row = photo_store.ensure_body_site(session, vault, patient_id, site)
            photo.site_id = row.id if row else None
            changed.append(f"site {site}")
            # Now part of a series: measured in the background, as an upload to a site is
            # (a photo measured before keeps its measurement).
            photo_store.enqueue_measurement(session, vault, photo_id)
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=Action.PHOTO_ANNOTATE,
            object=f"photo:{photo_id}",
            outcome=Outcome.DONE,
            reason=", ".join(changed) or "nothing changed",
        )


def measure_photo(
    vault: Vault,
    photo_id: str,
    *,
    actor: Actor | None = None,
    region: tuple[int, int, int, int] | None = None,
    exclude: list[tuple[int, int, int, int]] | None = None,
    again: bool = False,
) -> MeasurementView:
    """Measure a stored photo and keep the result (background job; system actor by default).

    A person asking for a region to be measured is decided like viewing the photo. The
    background job measures a photo once; with ``again`` (:func:`remeasure_stale`) a photo
    whose latest measurement an older method or version made is measured anew with the
    same region and parts left out (whoever drew them), so a site's chart never mixes
    versions; the earlier rows stay for the record.
    """
    from skinvault.tracking import align as al  # noqa: PLC0415  (OpenCV: import on use)
    from skinvault.tracking import measure as me  # noqa: PLC0415

    if len(exclude or []) > MAX_LEFT_OUT:
        raise RequestInvalid(f"Leave out at most {MAX_LEFT_OUT} parts of a photo.")
    who = actor or Actor.system("measure")
    obj = f"photo:{photo_id}"
    try:
        if actor is not None:
            data = photo_reads.read_photo(
                vault, photo_id=photo_id, actor=actor, purpose=Purpose.CARE
            ).data
        else:
            with vault.reading() as session:
                photo = session.get(Photo, photo_id)
                if photo is None or photo.deleted_at is not None or photo.wrapped_dek is None:
                    raise NotFound(f"there is no photo {photo_id}")
                # The background measurement runs once: a photo already measured (by a
                # person, perhaps in a drawn region, before the job ran) keeps that one.
                earlier = session.scalars(
                    select(Measurement)
                    .where(Measurement.photo_id == photo_id)
                    .order_by(Measurement.measured_at.desc())
                )
                done = _measurement_of(list(earlier))
                if done is not None and not (again and _stale(done)):
                    return done
                if done is not None:  # measured again as it was asked for the first time
                    region, exclude = _region_of(done), _left_out_of(done)
                    who = Actor.system("remeasure")
                blob_key, wrapped, sha = photo.blob_key, photo.wrapped_dek, photo.content_sha256
            data = photo_reads.decrypt_blob(
                vault,
                object_id=photo_id,
                kind=photo_store.PHOTO,
                blob_key=blob_key,
                wrapped=wrapped,
                sha256=sha,
            )
        result, _ = me.measure(al.decode(data), region=region, exclude=exclude)
    except SkinvaultError as exc:
        failed_attempts.audit_failure(vault, who, Action.PHOTO_MEASURE, obj, str(exc))
        raise
    now = vault.clock.now()
    region_json = json.dumps(dict(zip("xywh", region, strict=True))) if region else None
    details = {
        "card": result.card,
        "colour_reference": result.colour_reference,
        "notes": result.notes,
        "exclude": exclude or [],
    }
    extra = json.dumps(details)
    # The skin share was measured even when the depigmented share was not: its row does not
    # carry the "not measured: ..." note beside its value (it reaches FHIR as a note).
    skin_notes = [n for n in result.notes if me.not_measured_reason([n]) is None]
    skin_extra = json.dumps({**details, "notes": skin_notes})
    with vault.sessions.begin() as session:
        for kind, value, details_json in (
            (KIND_DEPIGMENTED, result.depigmented_percent, extra),
            (KIND_SKIN, result.skin_percent, skin_extra),
        ):
            session.add(
                Measurement(
                    id=vault.tokens.new_id(),
                    photo_id=photo_id,
                    kind=kind,
                    value=value,
                    unit="%",
                    method=result.method,
                    version=result.version,
                    region_json=region_json,
                    details_json=details_json,
                    measured_at=now,
                    measured_by=who.audit_name,
                )
            )
        record(
            session,
            clock=vault.clock,
            actor=who.audit_name,
            action=Action.PHOTO_MEASURE,
            object=obj,
            outcome=Outcome.DONE,
            reason=f"{result.method}/{result.version}",
        )
    return MeasurementView(
        result.depigmented_percent,
        result.skin_percent,
        result.method,
        result.version,
        dict(zip("xywh", region, strict=True)) if region else None,
        now,
        json.loads(extra),  # the shape a stored row reads back as
    )


def earlier_photo(vault: Vault, *, actor: Actor, patient_id: str, site: str) -> str | None:
    """The latest photo of a site (for the faded overlay on the capture page), or None."""
    if not body_sites.is_site(site):
        return None
    authorize(vault, actor, patient_id, PatientAction.LIST_PHOTOS)
    with vault.reading() as session:
        row = session.execute(
            select(Photo.id)
            .join(BodySite, Photo.site_id == BodySite.id)
            .where(
                BodySite.patient_id == patient_id,
                BodySite.code == site,
                Photo.deleted_at.is_(None),
                Photo.wrapped_dek.is_not(None),
            )
            .order_by(Photo.taken_on.desc(), Photo.uploaded_at.desc())
        ).first()
    return row[0] if row else None


def compare(
    vault: Vault,
    *,
    actor: Actor,
    reference_id: str,
    moving_id: str,
    purpose: Purpose | str = Purpose.CARE,
) -> Comparison:
    """Both photos read under the policy (audited), MOVING aligned onto REFERENCE if it can be."""
    from skinvault.tracking import align as al  # noqa: PLC0415

    if reference_id == moving_id:
        raise RequestInvalid("Choose two different photos to compare.")
    ref = photo_reads.read_photo(vault, photo_id=reference_id, actor=actor, purpose=purpose)
    mov = photo_reads.read_photo(vault, photo_id=moving_id, actor=actor, purpose=purpose)
    ref_px, mov_px = al.decode(ref.data), al.decode(mov.data)
    result = al.align(ref_px, mov_px)
    aligned = al.encode_jpeg(al.warp(mov_px, result, ref_px.shape)) if result.confident else None
    return Comparison(
        reference_id,
        moving_id,
        result.confident,
        result.reason,
        result.matrix,
        result.inliers,
        aligned,
    )


__all__ = [
    "DISCLAIMER",
    "MAX_LEFT_OUT",
    "AccessDenied",
    "CaptureDetails",
    "Comparison",
    "MeasurementView",
    "SeriesEntry",
    "SiteSummary",
    "annotate",
    "body_map",
    "check_details",
    "compare",
    "due_sites",
    "earlier_photo",
    "measure_photo",
    "notice_due_photos",
    "series",
]
