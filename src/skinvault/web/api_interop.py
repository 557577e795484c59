"""DICOM routes of the JSON API: a photo as a DICOM file, and sending it to a PACS.

    curl -H "Authorization: Bearer $TOKEN" -o photo.dcm \\
         "https://vault.example/api/v1/photos/$PHOTO/dicom?purpose=care"

Both are exports (decided with Access.EXPORT, audited as ``photo:export-dicom``
and ``photo:send``); see docs/interop.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from skinvault.actors import Actor
from skinvault.interop.dicom import DICOM_MEDIA_TYPE
from skinvault.policy.purposes import Purpose
from skinvault.services import export
from skinvault.web.deps import scoped, vault_of

router = APIRouter(prefix="/api/v1")
ReadPhotos = Annotated[Actor, Depends(scoped("photos:read"))]
Share = Annotated[Actor, Depends(scoped("share"))]
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
    got = export.export_dicom(vault_of(request), photo_id=photo_id, actor=actor, purpose=purpose)
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
