"""The JSON API under /api/v1: the public contract telederm apps integrate against.

Every route is a thin call into :mod:`skinvault.services`; authorization is
decided there (``policy.decide``), never here. Errors are problem+json
(:mod:`skinvault.web.problems`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from skinvault.actors import Actor
from skinvault.errors import ConfigError, NotFound, SecondFactorPending
from skinvault.photos.findings import Finding
from skinvault.policy.decide import PatientAction
from skinvault.policy.purposes import PURPOSE_TEXTS, Purpose, Scope
from skinvault.services import (
    api_tokens,
    consents,
    deletion,
    history,
    photo_reads,
    photo_store,
    records,
    sharing,
    signin,
)
from skinvault.services.thumbnails import (
    FAILED,
    UNAVAILABLE,
    WAITING,
    PreviewPending,
    read_preview,
)
from skinvault.web.deps import PENDING_MESSAGE, client_address, scoped, vault_of
from skinvault.web.links import outward_url
from skinvault.web.problems import problem
from skinvault.web.uploads import read_form

router = APIRouter(prefix="/api/v1")
ReadPhotos = Annotated[Actor, Depends(scoped("photos:read"))]
WritePhotos = Annotated[Actor, Depends(scoped("photos:write"))]
Share = Annotated[Actor, Depends(scoped("share"))]
Consents = Annotated[Actor, Depends(scoped("consents"))]
History = Annotated[Actor, Depends(scoped("history"))]
Deletion = Annotated[Actor, Depends(scoped("deletion"))]
PurposeQuery = Annotated[
    Purpose, Query(description="Why the photo is needed: care, teaching, research, …")
]

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or invalid credentials (problem+json)"},
    403: {"description": "The policy decision refused access (problem+json)"},
    404: {"description": "No such object (problem+json)"},
}


# -- shapes ----------------------------------------------------------------------------


class TokenRequest(BaseModel):
    email: str
    password: str
    totp: str | None = None
    scopes: list[str] | None = Field(
        default=None,
        description="What the token may do: photos:read, photos:write, share, consents,"
        " history, deletion (default: all)",
    )


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class FindingOut(BaseModel):
    category: str
    label: str
    description: str

    @classmethod
    def of(cls, f: Finding) -> FindingOut:
        return cls(category=f.category.value, label=f.label, description=f.description)


class PhotoOut(BaseModel):
    id: str
    patient_id: str | None
    site: str | None
    format: str
    width: int
    height: int
    uploaded_at: datetime | None
    note: str | None
    findings: list[FindingOut] = []
    lossless: bool | None = None
    obligations: list[str] = []


class PhotoList(BaseModel):
    photos: list[PhotoOut]


class ShareLinkRequest(BaseModel):
    recipient: str = Field(min_length=1, max_length=320)
    expires_in: int = Field(
        description="Seconds until the link stops working (5 minutes to 30 days)",
        ge=300,
        le=30 * 24 * 3600,
    )
    single_use: bool = True
    password: str | None = None


class ShareLinkOut(BaseModel):
    id: str
    url: str
    expires_at: datetime


class ConsentRequest(BaseModel):
    granted: bool
    scopes: list[Scope] = []
    expires_at: datetime | None = None


class ConsentOut(BaseModel):
    purpose: Purpose
    title: str
    text: str
    text_version: str
    granted: bool | None
    scopes: list[str]
    expires_at: datetime | None
    recorded_at: datetime | None
    receipt_id: str | None


class ConsentList(BaseModel):
    consents: list[ConsentOut]


class HistoryEvent(BaseModel):
    at: datetime
    actor: str
    action: str
    purpose: str | None
    outcome: str
    text: str


class HistoryOut(BaseModel):
    events: list[HistoryEvent]


class SentOut(BaseModel):
    link_id: str
    photo_id: str
    recipient: str
    channel: str
    created_at: datetime
    expires_at: datetime
    state: str
    opened_at: datetime | None


class SentList(BaseModel):
    sent: list[SentOut]


# -- routes ----------------------------------------------------------------------------


@router.post("/auth/token", response_model=TokenResponse, responses=PROBLEM_RESPONSES)
def token(body: TokenRequest, request: Request) -> TokenResponse:
    """Exchange e-mail, password (and TOTP code where required) for a bearer token."""
    vault = vault_of(request)
    signed_in = signin.authenticate(
        vault,
        email=body.email,
        password=body.password,
        totp=body.totp,
        address=client_address(request),
    )
    if signed_in.needs_totp_enrolment:
        raise SecondFactorPending(PENDING_MESSAGE)
    scopes = frozenset(body.scopes) if body.scopes is not None else api_tokens.API_SCOPES
    issued = api_tokens.issue_api_token(vault, actor=signed_in.actor, scopes=scopes)
    return TokenResponse(access_token=issued.token, expires_in=issued.expires_in)


def _photo_out(p: photo_store.StoredPhoto) -> PhotoOut:
    return PhotoOut(
        id=p.id,
        patient_id=p.patient_id,
        site=p.site,
        format=p.format,
        width=p.width,
        height=p.height,
        uploaded_at=p.uploaded_at,
        note=p.note,
        findings=[FindingOut.of(f) for f in p.findings],
        lossless=p.lossless,
    )


@router.get("/patients/{patient_id}/photos", response_model=PhotoList, responses=PROBLEM_RESPONSES)
def list_photos(patient_id: str, actor: ReadPhotos, request: Request) -> PhotoList:
    """The patient's photos: for the patient and their current care team."""
    found = records.list_photos(vault_of(request), actor=actor, patient_id=patient_id)
    return PhotoList(photos=[_photo_out(p) for p in found])


@router.post(
    "/patients/{patient_id}/photos",
    status_code=201,
    response_model=PhotoOut,
    responses={
        **PROBLEM_RESPONSES,
        413: {"description": "Too large"},
        422: {"description": "Not a photo we accept"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "site": {"type": "string"},
                            "note": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def upload_photo(patient_id: str, actor: WritePhotos, request: Request) -> PhotoOut:
    """Upload a photo (multipart: ``file``, ``site``, ``note``). It is scrubbed before storage."""
    vault = vault_of(request)
    await run_in_threadpool(records.authorize, vault, actor, patient_id, PatientAction.UPLOAD)
    fields, files = await read_form(request, vault.settings.max_upload_bytes)
    if "file" not in files:
        raise ConfigError("the form has no field named “file” holding the photo")
    stored = await run_in_threadpool(
        lambda: photo_store.store_photo(
            vault,
            patient_id=patient_id,
            data=files["file"].data,
            actor=actor,
            site=fields.get("site") or None,
            note=fields.get("note", "")[:2000],
        )
    )
    return _photo_out(stored)


@router.get("/photos/{photo_id}", response_model=PhotoOut, responses=PROBLEM_RESPONSES)
def photo_details(
    photo_id: str, purpose: PurposeQuery, actor: ReadPhotos, request: Request
) -> PhotoOut:
    """A photo's details, as the decision for ``purpose`` allows (de-identified when required)."""
    d = photo_reads.describe_photo(
        vault_of(request), photo_id=photo_id, actor=actor, purpose=purpose
    )
    return PhotoOut(
        id=d.id,
        patient_id=d.patient_id,
        site=d.site,
        format=d.format,
        width=d.width,
        height=d.height,
        uploaded_at=d.uploaded_at,
        note=d.note,
        obligations=sorted(o.value for o in d.obligations),
    )


@router.get(
    "/photos/{photo_id}/content",
    response_class=Response,
    responses={**PROBLEM_RESPONSES, 200: {"content": {"image/*": {}}, "description": "The image"}},
)
def photo_content(
    photo_id: str, purpose: PurposeQuery, actor: ReadPhotos, request: Request
) -> Response:
    """The scrubbed image bytes, after the policy decision and the audit record."""
    got = photo_reads.read_photo(vault_of(request), photo_id=photo_id, actor=actor, purpose=purpose)
    return Response(
        got.data,
        media_type=got.media_type,
        headers={
            "Cache-Control": "no-store",
            "X-Obligations": ",".join(sorted(got.obligations)),
            # which version was served (docs/versions.md); empty for the stored photo
            "X-Photo-Version": got.version or "",
        },
    )


@router.get(
    "/photos/{photo_id}/thumbnail",
    response_class=Response,
    responses={
        **PROBLEM_RESPONSES,
        200: {"content": {"image/jpeg": {}}, "description": "Preview"},
        202: {
            "description": "Allowed, but the preview is still being prepared: ask again"
            ' after Retry-After seconds (JSON: preview = "waiting")'
        },
        404: {
            "description": "No such photo, or (problem type preview-failed, JSON: preview"
            ' = "failed") no preview can ever be made of it: its pixels'
            " do not decode; the photo's content may still be read"
        },
        503: {
            "description": "Problem type preview-unavailable (JSON: preview ="
            ' "unavailable"): its job failed every try for a reason outside the photo;'
            " an operator's retry makes it. Not final: ask again later"
        },
    },
)
def photo_thumbnail(
    photo_id: str, purpose: PurposeQuery, actor: ReadPhotos, request: Request
) -> Response:
    """The JPEG preview; made by a background job after the upload (202 until then, 404
    ``preview-failed`` if it never can be)."""
    got = read_preview(vault_of(request), photo_id=photo_id, actor=actor, purpose=purpose)
    if isinstance(got, PreviewPending):
        if got.state in (FAILED, UNAVAILABLE):
            return _preview_problem(request, got)
        return JSONResponse(
            {
                "status": "being prepared",
                "preview": WAITING,
                "photo_id": photo_id,
                "retry_after": 2,
            },
            status_code=202,
            headers={"Retry-After": "2", "Cache-Control": "no-store"},
        )
    return Response(got.data, media_type=got.media_type, headers={"Cache-Control": "no-store"})


def _preview_problem(request: Request, got: PreviewPending) -> JSONResponse:
    """A problem+json document (RFC 9457, with extension members) for a preview that is not
    there: ``failed`` (404, final: its pixels do not decode) or ``unavailable`` (503, its job
    gave up on something outside the photo; an operator's retry makes it). Either way the
    photo's content may still be read, at ``content_url``."""
    query = f"?{request.url.query}" if request.url.query else ""  # the same purpose
    content = request.url.path.removesuffix("/thumbnail") + "/content" + query
    if got.state == FAILED:
        status, slug, title = 404, "preview-failed", "No preview could be made"
        detail = (f"No preview could be made from this photo ({got.reason}). The photo itself"
                  f" can still be read ({content}) where you may read it, or it can be"
                  " uploaded again.")  # fmt: skip
    else:
        status, slug, title = 503, "preview-unavailable", "The preview is not available yet"
        detail = (f"The preview could not be made yet ({got.reason}); the clinic's"
                  " administrators can try it again. The photo itself can still be read"
                  f" ({content}) where you may read it: there is no need to upload it"
                  " again.")  # fmt: skip
    answer = problem(
        status, slug, title, detail,
        extra={"preview": got.state, "photo_id": got.photo_id, "reason": got.reason,
               "content_url": content},
    )  # fmt: skip
    answer.headers["Cache-Control"] = "no-store"
    if status == 503:
        answer.headers["Retry-After"] = "300"
    return answer


@router.post(
    "/photos/{photo_id}/share-links",
    status_code=201,
    response_model=ShareLinkOut,
    responses=PROBLEM_RESPONSES,
)
def create_share_link(
    photo_id: str, body: ShareLinkRequest, actor: Share, request: Request
) -> ShareLinkOut:
    """A link for a named recipient: unguessable, expiring, optionally single-use and locked."""
    link = sharing.create_share_link(
        vault_of(request),
        photo_id=photo_id,
        actor=actor,
        recipient=body.recipient,
        expires_in=timedelta(seconds=body.expires_in),
        single_use=body.single_use,
        password=body.password,
    )
    url = outward_url(request, f"/s/{link.token}")  # never from the Host header
    return ShareLinkOut(id=link.id, url=url, expires_at=link.expires_at)


@router.post(
    "/share-links/{link_id}/reissue",
    status_code=201,
    response_model=ShareLinkOut,
    responses=PROBLEM_RESPONSES,
)
def reissue_share_link(link_id: str, actor: Share, request: Request) -> ShareLinkOut:
    """A new link in place of a locked or expired one (same recipient and password); the
    old one is withdrawn. For whoever may withdraw the old link and share the photo."""
    link = sharing.reissue_share_link(vault_of(request), link_id=link_id, actor=actor)
    url = outward_url(request, f"/s/{link.token}")
    return ShareLinkOut(id=link.id, url=url, expires_at=link.expires_at)


@router.delete("/share-links/{link_id}", status_code=204, responses=PROBLEM_RESPONSES)
def revoke_share_link(link_id: str, actor: Share, request: Request) -> Response:
    sharing.revoke_share_link(vault_of(request), link_id=link_id, actor=actor)
    return Response(status_code=204)


def _consent_list(vault: Any, patient_id: str) -> ConsentList:
    current = consents.consents_for(vault, patient_id)
    out = []
    for purpose in Purpose:
        if purpose is Purpose.CARE:
            continue
        text = PURPOSE_TEXTS[purpose]
        view = current.get(purpose)
        out.append(
            ConsentOut(
                purpose=purpose,
                title=text.title,
                text=text.text,
                text_version=text.version,
                granted=view.in_force(vault.clock.now()) if view else None,
                scopes=sorted(s.value for s in view.scopes) if view else [],
                expires_at=view.expires_at if view else None,
                recorded_at=view.recorded_at if view else None,
                receipt_id=view.id if view else None,
            )
        )
    return ConsentList(consents=out)


@router.get(
    "/patients/{patient_id}/consents", response_model=ConsentList, responses=PROBLEM_RESPONSES
)
def list_consents(patient_id: str, actor: Consents, request: Request) -> ConsentList:
    vault = vault_of(request)
    records.authorize(vault, actor, patient_id, PatientAction.MANAGE_CONSENT)
    return _consent_list(vault, patient_id)


@router.put(
    "/patients/{patient_id}/consents/{purpose}",
    response_model=ConsentOut,
    responses=PROBLEM_RESPONSES,
)
def put_consent(
    patient_id: str, purpose: Purpose, body: ConsentRequest, actor: Consents, request: Request
) -> ConsentOut:
    """Grant or refuse one purpose; ``granted: false`` after a grant withdraws it at once."""
    vault = vault_of(request)
    records.authorize(vault, actor, patient_id, PatientAction.MANAGE_CONSENT)
    consents.record_consent(
        vault,
        patient_id=patient_id,
        purpose=purpose,
        granted=body.granted,
        scopes=frozenset(body.scopes),
        expires_at=body.expires_at,
        actor=actor,
    )
    listed = _consent_list(vault, patient_id)
    return next(c for c in listed.consents if c.purpose is purpose)


@router.get("/patients/{patient_id}/consents/{purpose}/receipt", responses=PROBLEM_RESPONSES)
def consent_receipt(
    patient_id: str, purpose: Purpose, actor: Consents, request: Request
) -> dict[str, object]:
    vault = vault_of(request)
    records.authorize(vault, actor, patient_id, PatientAction.MANAGE_CONSENT)
    view = consents.consents_for(vault, patient_id).get(purpose)
    if view is None:
        raise NotFound(f"no answer about {purpose.value} has been recorded")
    return consents.receipt(view)


@router.get(
    "/patients/{patient_id}/access-history", response_model=HistoryOut, responses=PROBLEM_RESPONSES
)
def access_history(patient_id: str, actor: History, request: Request) -> HistoryOut:
    """Every access to the patient's photos, in plain words (their accounting of disclosures)."""
    vault = vault_of(request)
    records.authorize(vault, actor, patient_id, PatientAction.READ_HISTORY)
    return HistoryOut(
        events=[
            HistoryEvent(
                at=e.at,
                actor=e.actor,
                action=e.action,
                purpose=e.purpose,
                outcome=e.outcome,
                text=e.text,
            )
            for e in history.access_history(vault, patient_id)
        ]
    )


@router.get("/patients/{patient_id}/sent", response_model=SentList, responses=PROBLEM_RESPONSES)
def sent(patient_id: str, actor: History, request: Request) -> SentList:
    """The patient's sent log: what was sent, when, to whom, through which channel."""
    vault = vault_of(request)
    records.authorize(vault, actor, patient_id, PatientAction.READ_SENT)
    return SentList(
        sent=[
            SentOut(
                link_id=e.link_id,
                photo_id=e.photo_id,
                recipient=e.recipient,
                channel=e.channel,
                created_at=e.created_at,
                expires_at=e.expires_at,
                state=e.state,
                opened_at=e.opened_at,
            )
            for e in sharing.sent_log(vault, patient_id)
        ]
    )


class DeletionRequestIn(BaseModel):
    scope: deletion.DeletionScope
    scope_ref: str | None = Field(
        default=None, description="The photo id (scope photo) or body-site code (scope series)"
    )
    reason: str = Field(default="", max_length=2000)


class DeletionDecisionIn(BaseModel):
    decision: deletion.DeletionDecision
    explanation: str = Field(min_length=1, max_length=4000)


@router.post(
    "/patients/{patient_id}/deletion-requests",
    status_code=201,
    responses=PROBLEM_RESPONSES,
)
def file_deletion_request(
    patient_id: str, body: DeletionRequestIn, actor: Deletion, request: Request
) -> dict[str, object]:
    """The patient asks for one photo, a body site's series or everything to be deleted."""
    filed = deletion.file_request(
        vault_of(request),
        patient_id=patient_id,
        scope=body.scope,
        scope_ref=body.scope_ref,
        reason=body.reason,
        actor=actor,
    )
    return filed.as_json()


@router.get("/patients/{patient_id}/deletion-requests", responses=PROBLEM_RESPONSES)
def list_deletion_requests(
    patient_id: str, actor: Deletion, request: Request
) -> dict[str, list[dict[str, object]]]:
    """The patient's requests with their status, decision and the explanation given."""
    vault = vault_of(request)
    records.authorize(vault, actor, patient_id, PatientAction.REQUEST_DELETION)
    return {"requests": [r.as_json() for r in deletion.requests_for(vault, patient_id)]}


@router.post("/deletion-requests/{request_id}/decision", responses=PROBLEM_RESPONSES)
def decide_deletion_request(
    request_id: str, body: DeletionDecisionIn, actor: Deletion, request: Request
) -> dict[str, object]:
    """A privacy officer decides: erase, keep-clinical (secondary use stops) or refuse."""
    decided = deletion.decide_request(
        vault_of(request),
        request_id=request_id,
        decision=body.decision,
        explanation=body.explanation,
        actor=actor,
    )
    return decided.as_json()
