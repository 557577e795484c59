"""Progress-tracking routes of the JSON API: body sites, a site's series, measuring, comparing.

    curl -H "Authorization: Bearer $TOKEN" \\
         "https://vault.example/api/v1/patients/$PATIENT/sites/forearm-left/series?purpose=care"

Thin calls into :mod:`skinvault.services.tracking`: the series is record-level
(``list-photos``), every measurement shown passes its photo's own decision and is audited
``measurement:view``, measuring is ``photo:measure``, comparing reads both photos
(``photo:view`` twice). Measurements are a measurement aid, not a diagnosis (``disclaimer``
in every answer that carries one). See docs/tracking.md.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from skinvault.actors import Actor
from skinvault.policy.purposes import Purpose
from skinvault.services import tracking
from skinvault.tracking import sites as body_sites
from skinvault.web.deps import scoped, vault_of
from skinvault.web.problems import problem

router = APIRouter(prefix="/api/v1")
ReadPhotos = Annotated[Actor, Depends(scoped("photos:read"))]
WritePhotos = Annotated[Actor, Depends(scoped("photos:write"))]
PurposeQuery = Annotated[Purpose, Query(description="Why the photos are needed: care, …")]

PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or invalid credentials (problem+json)"},
    403: {"description": "The policy decision refused access (problem+json)"},
    404: {"description": "No such patient, site or photo (problem+json)"},
}


# -- shapes ----------------------------------------------------------------------------


class Coded(BaseModel):
    code: str
    display: str


class SiteOut(BaseModel):
    code: str
    label: str
    laterality: str | None
    view: str
    snomed: Coded
    laterality_snomed: Coded | None

    @classmethod
    def of(cls, s: body_sites.Site) -> SiteOut:
        lat = s.laterality_snomed
        return cls(
            code=s.code,
            label=s.label,
            laterality=s.laterality,
            view=s.view,
            snomed=Coded(code=s.snomed_code, display=s.snomed_display),
            laterality_snomed=Coded(code=lat[0], display=lat[1]) if lat else None,
        )


class SiteList(BaseModel):
    sites: list[SiteOut]


class SiteSummaryOut(BaseModel):
    site: SiteOut
    photos: int
    last_taken: date | None


class BodyMapOut(BaseModel):
    sites: list[SiteSummaryOut]


class Box(BaseModel):
    """x, y, w, h in the photo's upright pixels, from the top left corner."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    w: int = Field(gt=0)
    h: int = Field(gt=0)

    def tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


class MeasurementOut(BaseModel):
    depigmented_percent: float | None = Field(
        description="null when the photo could not be measured; `not_measured` says why"
    )
    not_measured: str | None = None
    skin_percent: float | None
    method: str
    version: str
    region: Box | None
    exclude: list[Box]
    measured_at: datetime
    notes: list[str]
    card: dict[str, Any] | None
    disclaimer: str = tracking.DISCLAIMER

    @classmethod
    def of(cls, m: tracking.MeasurementView) -> MeasurementOut:
        details = m.details
        left_out = details.get("exclude") or []
        assert isinstance(left_out, list)
        notes = details.get("notes") or []
        card = details.get("card")
        return cls(
            depigmented_percent=m.depigmented_percent,
            not_measured=m.not_measured,
            skin_percent=m.skin_percent,
            method=m.method,
            version=m.version,
            region=Box(**m.region) if m.region else None,
            exclude=[Box(x=b[0], y=b[1], w=b[2], h=b[3]) for b in left_out],
            measured_at=m.measured_at,
            notes=[str(n) for n in notes] if isinstance(notes, list) else [],
            card=card if isinstance(card, dict) else None,
        )


class CaptureOut(BaseModel):
    treatment: str
    lighting: str
    distance: str
    card: bool | None


class SeriesEntryOut(BaseModel):
    photo_id: str
    taken_on: date
    taken_on_source: str = Field(description="photo, person or upload")
    width: int
    height: int
    capture: CaptureOut
    measurement: MeasurementOut | None
    measurement_hidden: bool = Field(description="True: measured, but not shown for this use")


class SeriesOut(BaseModel):
    site: SiteOut
    entries: list[SeriesEntryOut]
    disclaimer: str = tracking.DISCLAIMER


class MeasureRequest(BaseModel):
    region: Box | None = None
    exclude: list[Box] = Field(
        default=[], max_length=tracking.MAX_LEFT_OUT, description="Parts to leave out"
    )


class CaptureRequest(BaseModel):
    """The capture details as they should be (replacing the stored ones)."""

    taken_on: date | None = None
    treatment: str = Field(default="", max_length=200)
    lighting: str = Field(default="", description=", ".join(tracking.LIGHTING) + " or empty")
    distance: str = Field(default="", description=", ".join(tracking.DISTANCE) + " or empty")
    card: bool | None = None
    site: str | None = Field(default=None, description="Move the photo to this site code")


class ComparisonOut(BaseModel):
    reference_id: str
    moving_id: str
    confident: bool
    reason: str
    matrix: list[list[float]] = Field(
        description="Maps MOVING's upright pixel coordinates onto REFERENCE's"
    )
    inliers: int


# -- routes ----------------------------------------------------------------------------


@router.get("/body-sites", response_model=SiteList, responses=PROBLEMS)
def list_sites(actor: ReadPhotos) -> SiteList:
    """The closed vocabulary of body sites (code, label, laterality, SNOMED CT)."""
    del actor  # any signed-in caller may read the vocabulary
    return SiteList(
        sites=[SiteOut.of(s) for s in (body_sites.get(c) for c, _ in body_sites.choices())]
    )


@router.get("/patients/{patient_id}/sites", response_model=BodyMapOut, responses=PROBLEMS)
def body_map(patient_id: str, actor: ReadPhotos, request: Request) -> BodyMapOut:
    """The sites this patient has photos of, with how many and the latest capture date."""
    found = tracking.body_map(vault_of(request), actor=actor, patient_id=patient_id)
    return BodyMapOut(
        sites=[
            SiteSummaryOut(site=SiteOut.of(s.site), photos=s.photos, last_taken=s.last_taken)
            for s in sorted(found.values(), key=lambda s: s.site.code)
        ]
    )


@router.get(
    "/patients/{patient_id}/sites/{code}/series", response_model=SeriesOut, responses=PROBLEMS
)
def series(
    patient_id: str, code: str, purpose: PurposeQuery, actor: ReadPhotos, request: Request
) -> SeriesOut:
    """The photos of one site, oldest capture first, with what the caller may see measured."""
    entries = tracking.series(
        vault_of(request), actor=actor, patient_id=patient_id, site=code, purpose=purpose
    )
    return SeriesOut(
        site=SiteOut.of(body_sites.get(code)),
        entries=[
            SeriesEntryOut(
                photo_id=e.photo_id,
                taken_on=e.taken_on,
                taken_on_source=e.taken_on_source,
                width=e.width,
                height=e.height,
                capture=CaptureOut(**e.details.as_json()),  # type: ignore[arg-type]
                measurement=MeasurementOut.of(e.measurement) if e.measurement else None,
                measurement_hidden=e.measurement_hidden,
            )
            for e in entries
        ],
    )


@router.post(
    "/photos/{photo_id}/measurements",
    status_code=201,
    response_model=MeasurementOut,
    responses={**PROBLEMS, 422: {"description": "A box outside the photo (problem+json)"}},
)
async def measure(
    photo_id: str, body: MeasureRequest, actor: WritePhotos, request: Request
) -> MeasurementOut:
    """Measure the photo again, inside ``region`` (or all of it) less the parts in ``exclude``."""
    vault = vault_of(request)
    got = await run_in_threadpool(
        lambda: tracking.measure_photo(
            vault,
            photo_id,
            actor=actor,
            region=body.region.tuple() if body.region else None,
            exclude=[b.tuple() for b in body.exclude],
        )
    )
    return MeasurementOut.of(got)


@router.put("/photos/{photo_id}/capture", status_code=204, responses=PROBLEMS)
def set_capture(
    photo_id: str, body: CaptureRequest, actor: WritePhotos, request: Request
) -> Response:
    """Correct the capture date, the capture details (replaced as given) or the site."""
    details = tracking.check_details(body.treatment, body.lighting, body.distance, body.card)
    tracking.annotate(
        vault_of(request),
        actor=actor,
        photo_id=photo_id,
        taken_on=body.taken_on,
        details=details,
        site=body.site,
    )
    return Response(status_code=204)


@router.get(
    "/photos/{photo_id}/compare/{moving_id}",
    response_model=ComparisonOut,
    responses={
        **PROBLEMS,
        200: {
            "content": {"application/json": {}, "image/jpeg": {}},
            "description": "The alignment; with Accept: image/jpeg, MOVING warped onto this photo",
        },
        409: {"description": "image/jpeg asked for, but the pair cannot be aligned"},
    },
)
async def compare(
    photo_id: str, moving_id: str, purpose: PurposeQuery, actor: ReadPhotos, request: Request
) -> Response | ComparisonOut:
    """Align MOVING onto this photo (the reference); ``confident`` false: compare side by side."""
    vault = vault_of(request)
    got = await run_in_threadpool(
        lambda: tracking.compare(
            vault, actor=actor, reference_id=photo_id, moving_id=moving_id, purpose=purpose
        )
    )
    if "image/jpeg" in request.headers.get("accept", ""):
        if got.aligned_jpeg is None:
            return problem(
                409,
                "not-aligned",
                "The photos cannot be aligned",
                f"these photos cannot be aligned ({got.reason}): compare them side by side",
            )
        return Response(
            got.aligned_jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"}
        )
    return ComparisonOut(
        reference_id=got.reference_id,
        moving_id=got.moving_id,
        confident=got.confident,
        reason=got.reason,
        matrix=got.matrix,
        inliers=got.inliers,
    )
