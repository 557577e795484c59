"""DICOM routes of the JSON API: a photo as a DICOM file, and sending it to a PACS.

    curl -H "Authorization: Bearer $TOKEN" -o photo.dcm \\
         "https://vault.example/api/v1/photos/$PHOTO/dicom?purpose=care"

Both are exports (decided with Access.EXPORT, audited as ``photo:export-dicom``
and ``photo:send``); see docs/interop.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from skinvault.actors import Actor
from skinvault.interop.dicom import DICOM_MEDIA_TYPE
from skinvault.policy.decide import PatientAction
from skinvault.policy.purposes import Purpose
from skinvault.services import dicom_send, photo_export, records
from skinvault.web.deps import scoped, vault_of

router = APIRouter(prefix="/api/v1")
ReadPhotos = Annotated[Actor, Depends(scoped("photos:read"))]
Share = Annotated[Actor, Depends(scoped("share"))]
History = Annotated[Actor, Depends(scoped("history"))]
PurposeQuery = Annotated[Purpose, Query(description="Why the photo is exported: care, teaching, …")]

PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or invalid credentials (problem+json)"},
    403: {"description": "The policy decision refused the export (problem+json)"},
    404: {"description": "No such photo (problem+json)"},
}


@router.get(
    "/photos/{photo_id}/dicom",
    response_class=Response,
    responses={**PROBLEMS, 200: {"content": {DICOM_MEDIA_TYPE: {}}, "description": "Part 10"}},
)
def photo_dicom(
    photo_id: str, purpose: PurposeQuery, actor: ReadPhotos, request: Request
) -> Response:
    """The photo as a DICOM Part 10 file (VL Photographic Image, the JPEG unchanged)."""
    got = photo_export.export_dicom(
        vault_of(request), photo_id=photo_id, actor=actor, purpose=purpose
    )
    headers = {
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{photo_id}.dcm"',
        "X-DICOM-SOP-Instance-UID": got.part10.sop_instance_uid,
    }
    if got.part10.conversion:
        headers["X-DICOM-Conversion"] = got.part10.conversion.encode("ascii", "replace").decode()
    return Response(got.part10.data, media_type=DICOM_MEDIA_TYPE, headers=headers)


class SendRequest(BaseModel):
    destination: str
    purpose: Purpose = Purpose.CARE
    """Which configured destination (``dicom_destinations``), and for what purpose."""


class SendOut(BaseModel):
    photo_id: str
    destination: str
    attempts: int
    detail: str
    sop_instance_uid: str
    delivered: bool
    """False: the destination did not take it; ``retry_job`` keeps trying from the queue."""
    retry_job: str | None = None


class PacsSend(BaseModel):
    at: datetime
    photo_id: str
    actor: str
    outcome: str
    detail: str


class PacsSends(BaseModel):
    destinations: list[str]
    sends: list[PacsSend]


@router.post(
    "/photos/{photo_id}/send",
    response_model=SendOut,
    responses={
        **PROBLEMS,
        202: {
            "description": "The destination did not take it yet: the queue tries again"
            " (``retry_job``); the sent log shows the outcome",
            "model": SendOut,
        },
    },
)
def send_photo(
    photo_id: str, body: SendRequest, actor: Share, request: Request, response: Response
) -> SendOut:
    """Send the photo as DICOM to a configured destination (C-STORE or STOW-RS): 200 when
    it arrived; 202 when the destination did not take it and a job retries it."""
    sent = dicom_send.send_photo(
        vault_of(request),
        photo_id=photo_id,
        actor=actor,
        destination=body.destination,
        purpose=body.purpose,
        background=True,
    )
    if not sent.delivered:
        response.status_code = 202
    return SendOut(
        photo_id=sent.photo_id,
        destination=sent.destination,
        attempts=sent.attempts,
        detail=sent.detail,
        sop_instance_uid=sent.sop_instance_uid,
        delivered=sent.delivered,
        retry_job=sent.retry_job,
    )


@router.get("/patients/{patient_id}/dicom-sends", response_model=PacsSends, responses=PROBLEMS)
def dicom_sends(patient_id: str, actor: History, request: Request) -> PacsSends:
    """The patient's photos sent to DICOM destinations, with failures, oldest first."""
    vault = vault_of(request)
    records.authorize(vault, actor, patient_id, PatientAction.READ_SENT)
    return PacsSends(
        destinations=dicom_send.destinations(vault),
        sends=[
            PacsSend(
                at=s.at, photo_id=s.photo_id, actor=s.actor, outcome=s.outcome, detail=s.detail
            )
            for s in dicom_send.sends_for(vault, patient_id)
        ],
    )
