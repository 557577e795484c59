"""The FHIR R4 interface under /fhir/R4: the same tokens, decisions and audit as /api/v1.

    curl -H "Authorization: Bearer $TOKEN" \\
         "https://vault.example/fhir/R4/Binary/$PHOTO?purpose=care" > photo.jpg

Every route is a thin call into the export services (:mod:`skinvault.services.record_export`,
:mod:`~skinvault.services.photo_export`, :mod:`~skinvault.services.measurement_export`,
:mod:`~skinvault.services.fhir_resources`, :mod:`~skinvault.services.fhir_upload`). Errors are
OperationOutcome resources (``application/fhir+json``), with the same status
codes as the problem+json answers of /api/v1. The purpose of use is
``?purpose=`` (care, teaching, research, publication, ai-training) or the HL7
v3-ActReason code in the ``X-Purpose-Of-Use`` header (TREAT, HOPERAT, HRESCH,
HMARKT).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from skinvault.actors import Actor
from skinvault.audit.actions import Action
from skinvault.errors import AccessDenied, NotFound, RequestInvalid, SkinvaultError, TooLarge
from skinvault.interop import fhir
from skinvault.policy.decide import PatientAction
from skinvault.policy.purposes import Purpose
from skinvault.services import (
    fhir_resources,
    fhir_upload,
    measurement_export,
    photo_export,
    photo_reads,
    photo_store,
    record_export,
    records,
)
from skinvault.web.deps import scoped, vault_of
from skinvault.web.problems import for_error

BASE_PATH = "/fhir/R4"
_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    410: "deleted",
    413: "too-costly",
    422: "invalid",
    429: "throttled",
}
#: HL7 v3-ActReason purpose codes accepted in X-Purpose-Of-Use (HRESCH means research).
_FROM_HL7 = {
    "TREAT": Purpose.CARE,
    "HOPERAT": Purpose.TEACHING,
    "HRESCH": Purpose.RESEARCH,
    "HMARKT": Purpose.PUBLICATION,
}
MAX_COUNT = 100


class FhirResponse(Response):
    media_type = fhir.FHIR_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def operation_outcome(status: int, diagnostics: str) -> FhirResponse:
    code = _ISSUE_CODES.get(status, "exception")
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return FhirResponse(fhir.outcome(code, diagnostics), status_code=status, headers=headers)


class FhirRoute(APIRoute):
    """Turns every error of a FHIR route (auth, validation, policy) into an OperationOutcome."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SkinvaultError as exc:
                problem = for_error(exc)
                return operation_outcome(problem.status_code, str(exc))
            except RequestValidationError as exc:
                parts = [
                    f"{'.'.join(str(x) for x in e.get('loc', ())[1:])}: {e.get('msg', 'invalid')}"
                    for e in exc.errors()[:5]
                ]
                return operation_outcome(400, "; ".join(parts) or "invalid request")

        return route


router = APIRouter(prefix=BASE_PATH, route_class=FhirRoute, tags=["FHIR R4"])
ReadPhotos = Annotated[Actor, Depends(scoped("photos:read"))]
WritePhotos = Annotated[Actor, Depends(scoped("photos:write"))]
Consents = Annotated[Actor, Depends(scoped("consents"))]
History = Annotated[Actor, Depends(scoped("history"))]
Count = Annotated[int, Query(alias="_count", ge=1, le=MAX_COUNT)]
Offset = Annotated[int, Query(alias="_offset", ge=0)]


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + BASE_PATH


def purpose_of(request: Request, purpose: str | None) -> Purpose:
    """``?purpose=`` or the ``X-Purpose-Of-Use`` header; one of them is required."""
    header = request.headers.get("x-purpose-of-use", "").strip()
    if purpose:
        try:
            return Purpose(purpose)
        except ValueError:
            pass
        raise AccessDenied(
            f"“{purpose}” is not a purpose; name one of: {', '.join(p.value for p in Purpose)}."
        )
    if header:
        if header.upper() in _FROM_HL7:
            return _FROM_HL7[header.upper()]
        raise AccessDenied(
            f"“{header}” is not a purpose-of-use code we accept; use one of:"
            f" {', '.join(_FROM_HL7)}."
        )
    raise AccessDenied(
        "name the purpose of use: ?purpose=care (or teaching, research, …) or the header"
        " X-Purpose-Of-Use: TREAT"
    )


def _page(
    request: Request,
    resources: list[dict[str, Any]],
    count: int,
    offset: int,
    *,
    total: int | None = None,
) -> dict[str, Any]:
    """A searchset page: ``resources`` is every match, or (with ``total``) only this page."""
    if total is None:
        total, resources = len(resources), resources[offset : offset + count]
    base = base_url(request)
    url = request.url
    here = str(url.include_query_params(_count=count, _offset=offset))
    links = [("self", here)]
    if offset + count < total:
        links.append(("next", str(url.include_query_params(_count=count, _offset=offset + count))))
    if offset > 0:
        previous = max(0, offset - count)
        links.append(("previous", str(url.include_query_params(_count=count, _offset=previous))))
    return fhir.bundle(resources, base=base, total=total, links=links)


# -- routes ---------------------------------------------------------------------------


@router.get("/metadata", response_class=FhirResponse)
def metadata(request: Request) -> FhirResponse:
    """The CapabilityStatement: what this server supports."""
    vault = vault_of(request)
    return FhirResponse(fhir.capability_statement(base_url(request), vault.clock.now()))


@router.get("/Patient/{patient_id}", response_class=FhirResponse)
def read_patient(patient_id: str, actor: ReadPhotos, request: Request) -> FhirResponse:
    got = record_export.export_record(
        vault_of(request), actor=actor, patient_id=patient_id, load_photos=False
    )
    return FhirResponse(fhir.patient(got.patient_id, got.patient_name))


@router.get("/Patient/{patient_id}/$everything", response_class=FhirResponse)
def everything(
    patient_id: str,
    actor: ReadPhotos,
    request: Request,
    purpose: str | None = None,
) -> FhirResponse:
    """Every resource of the patient the caller may see: Patient, Media, Observation, Consent,
    AuditEvent."""
    chosen = purpose_of(request, purpose or "care")
    got = record_export.export_record(
        vault_of(request), actor=actor, patient_id=patient_id, purpose=chosen
    )
    return FhirResponse(fhir_resources.fhir_everything(got, base=base_url(request)))


@router.get("/Media/{photo_id}", response_class=FhirResponse)
def read_media(
    photo_id: str, actor: ReadPhotos, request: Request, purpose: str | None = None
) -> FhirResponse:
    got = photo_export.export_photo(
        vault_of(request),
        photo_id=photo_id,
        actor=actor,
        purpose=purpose_of(request, purpose),
        action=Action.PHOTO_EXPORT_FHIR,
        detail="FHIR Media",
    )
    return FhirResponse(fhir_resources.fhir_media(got))


@router.get("/Media", response_class=FhirResponse)
def search_media(
    *,
    actor: ReadPhotos,
    request: Request,
    patient: str,
    purpose: str | None = None,
    count: Count = 20,
    offset: Offset = 0,
) -> FhirResponse:
    """Every photo is decided (and audited) for the total; only the page is decrypted (for
    the SHA-1 ``content.hash``)."""
    patient_id = patient.removeprefix("Patient/")
    got = record_export.export_record(
        vault_of(request),
        actor=actor,
        patient_id=patient_id,
        parts=frozenset({"photos"}),
        required=frozenset({"photos"}),
        purpose=purpose_of(request, purpose or "care"),
        window=(offset, count),
    )
    page = [fhir_resources.fhir_media(p) for p in got.photos or []]
    return FhirResponse(_page(request, page, count, offset, total=got.photo_total))


@router.get("/Observation/{measurement_id}", response_class=FhirResponse)
def read_observation(
    measurement_id: str, actor: ReadPhotos, request: Request, purpose: str | None = None
) -> FhirResponse:
    """A stored measurement of a photo, decided and audited like exporting the photo."""
    got = measurement_export.export_measurement(
        vault_of(request),
        actor=actor,
        measurement_id=measurement_id,
        purpose=purpose_of(request, purpose),
    )
    return FhirResponse(fhir_resources.fhir_observation(got))


@router.get("/Observation", response_class=FhirResponse)
def search_observation(
    *,
    actor: ReadPhotos,
    request: Request,
    patient: str,
    purpose: str | None = None,
    count: Count = 20,
    offset: Offset = 0,
) -> FhirResponse:
    got = record_export.export_record(
        vault_of(request),
        actor=actor,
        patient_id=patient.removeprefix("Patient/"),
        parts=frozenset({"measurements"}),
        required=frozenset({"measurements"}),
        purpose=purpose_of(request, purpose or "care"),
    )
    found = [fhir_resources.fhir_observation(m) for m in got.measurements or []]
    return FhirResponse(_page(request, found, count, offset))


@router.get("/Binary/{photo_id}")
def read_binary(
    photo_id: str, actor: ReadPhotos, request: Request, purpose: str | None = None
) -> Response:
    """The scrubbed bytes; as a Binary resource when the caller asks for application/fhir+json."""
    got = photo_export.export_photo(
        vault_of(request),
        photo_id=photo_id,
        actor=actor,
        purpose=purpose_of(request, purpose),
        action=Action.PHOTO_EXPORT_FHIR,
        detail="FHIR Binary",
    )
    headers = {"Cache-Control": "no-store"}
    if "fhir+json" in request.headers.get("accept", ""):
        resource = fhir.binary(photo_id, got.record.media_type, got.data, got.record.patient_id)
        return FhirResponse(resource, headers=headers)
    return Response(got.data, media_type=got.record.media_type, headers=headers)


@router.get("/Consent", response_class=FhirResponse)
def search_consent(
    actor: Consents, request: Request, patient: str, count: Count = 20, offset: Offset = 0
) -> FhirResponse:
    got = record_export.export_record(
        vault_of(request),
        actor=actor,
        patient_id=patient.removeprefix("Patient/"),
        parts=frozenset({"consents"}),
        required=frozenset({"consents"}),
    )
    return FhirResponse(
        _page(request, fhir_resources.fhir_consents(got.consents or []), count, offset)
    )


@router.get("/Consent/{consent_id}", response_class=FhirResponse)
def read_consent(consent_id: str, actor: Consents, request: Request) -> FhirResponse:
    """One recorded consent answer: the same decision and audit as the Consent search."""
    vault = vault_of(request)
    got = record_export.export_record(
        vault,
        actor=actor,
        patient_id=record_export.patient_of_consent(vault, consent_id),
        parts=frozenset({"consents"}),
        required=frozenset({"consents"}),
    )
    for resource in fhir_resources.fhir_consents(got.consents or []):
        if resource["id"] == consent_id:
            return FhirResponse(resource)
    raise NotFound(f"there is no consent {consent_id}")


@router.get("/AuditEvent/{event_id}", response_class=FhirResponse)
def read_audit_event(event_id: str, actor: History, request: Request) -> FhirResponse:
    """One event of a patient's access history: the same decision and audit as the search."""
    vault = vault_of(request)
    got = record_export.export_record(
        vault,
        actor=actor,
        patient_id=record_export.patient_of_event(vault, event_id),
        parts=frozenset({"events"}),
        required=frozenset({"events"}),
    )
    for event in got.events or []:
        if str(event.seq) == event_id:
            return FhirResponse(fhir_resources.fhir_event(event))
    raise NotFound(f"there is no audit event {event_id}")


@router.get("/AuditEvent", response_class=FhirResponse)
def search_audit_events(
    actor: History, request: Request, patient: str, count: Count = 20, offset: Offset = 0
) -> FhirResponse:
    got = record_export.export_record(
        vault_of(request),
        actor=actor,
        patient_id=patient.removeprefix("Patient/"),
        parts=frozenset({"events"}),
        required=frozenset({"events"}),
    )
    return FhirResponse(
        _page(request, [fhir_resources.fhir_event(e) for e in got.events or []], count, offset)
    )


@router.post("/Media", status_code=201, response_class=FhirResponse)
async def create_media(actor: WritePhotos, request: Request) -> FhirResponse:
    """Store a photo sent as a Media: the image inline (``content.data``), in a contained
    Binary (``content.url: "#id"``), or as the Binary of a transaction Bundle. It goes through
    the same scrub → encrypt → audit path as an upload; 201 with Location."""
    vault = vault_of(request)
    raw = await request.body()
    if len(raw) > vault.settings.max_upload_bytes * 2:  # base64 is 4/3 of the image
        raise TooLarge("the request is larger than the upload limit")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestInvalid(f"the body is not JSON: {exc}") from exc
    upload = fhir_upload.media_upload(body)
    await run_in_threadpool(
        records.authorize, vault, actor, upload.patient_id, PatientAction.UPLOAD
    )
    stored = await run_in_threadpool(
        lambda: photo_store.store_photo(
            vault,
            patient_id=upload.patient_id,
            data=upload.data,
            actor=actor,
            site=upload.site,
            taken_on=upload.taken_on,
        )
    )
    resource = fhir.media(
        fhir.MediaFacts(
            photo_id=stored.id,
            patient_id=stored.patient_id,
            site=stored.site,
            site_label=stored.site,
            created=stored.taken_on or stored.uploaded_at,
            media_type=photo_reads.MEDIA_TYPES.get(stored.format, "application/octet-stream"),
            size=stored.size,
            sha1=None,
            width=stored.width,
            height=stored.height,
        )
    )
    return FhirResponse(
        resource, status_code=201, headers={"Location": f"{base_url(request)}/Media/{stored.id}"}
    )


@router.api_route(
    "/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False
)
def unknown(rest: str) -> Response:
    raise NotFound(f"this server has no FHIR endpoint {rest!r}; see {BASE_PATH}/metadata")
