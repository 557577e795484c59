"""The FHIR R4 interface under /fhir/R4: the same tokens, decisions and audit as /api/v1.

    curl -H "Authorization: Bearer $TOKEN" \\
         "https://vault.example/fhir/R4/Binary/$PHOTO?purpose=care" > photo.jpg

Every route is a thin call into :mod:`skinvault.services.export`. Errors are
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
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from skinvault.actors import Actor
from skinvault.audit.actions import Action
from skinvault.errors import AccessDenied, NotFound, SkinvaultError
from skinvault.interop import fhir
from skinvault.policy.purposes import Purpose
from skinvault.services import export
from skinvault.services.consents import ConsentView
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


def media_of(exported: export.ExportedPhoto) -> dict[str, Any]:
    meta = exported.record
    return fhir.media(
        fhir.MediaFacts(
            photo_id=meta.photo_id,
            patient_id=meta.patient_id,
            site=meta.site,
            site_label=meta.site_label,
            created=meta.taken_on or meta.uploaded_at,
            media_type=meta.media_type,
            size=len(exported.data),
            sha1=exported.sha1,
            width=meta.width,
            height=meta.height,
        )
    )


def consent_of(view: ConsentView, current_ids: set[str]) -> dict[str, Any]:
    return fhir.consent(
        fhir.ConsentFacts(
            consent_id=view.id,
            patient_id=view.patient_id,
            purpose=view.purpose,
            granted=view.granted,
            scopes=view.scopes,
            recorded_at=view.recorded_at,
            expires_at=view.expires_at,
            revoked_at=view.revoked_at,
            current=view.id in current_ids,
            text_version=view.text_version,
        )
    )


def _current_consents(views: list[ConsentView]) -> set[str]:
    latest: dict[Purpose, ConsentView] = {}
    for view in views:  # oldest first: the last answer per purpose is the one in force
        latest[view.purpose] = view
    return {v.id for v in latest.values() if v.revoked_at is None}


def event_of(event: Any) -> dict[str, Any]:
    return fhir.audit_event(
        fhir.EventFacts(
            seq=event.seq,
            at=event.at,
            actor=event.actor,
            action=event.action,
            object=event.object,
            purpose=event.purpose,
            outcome=event.outcome,
            reason=event.reason,
        )
    )


def _page(
    request: Request, resources: list[dict[str, Any]], count: int, offset: int
) -> dict[str, Any]:
    base = base_url(request)
    url = request.url
    here = str(url.include_query_params(_count=count, _offset=offset))
    links = [("self", here)]
    if offset + count < len(resources):
        links.append(("next", str(url.include_query_params(_count=count, _offset=offset + count))))
    if offset > 0:
        previous = max(0, offset - count)
        links.append(("previous", str(url.include_query_params(_count=count, _offset=previous))))
    return fhir.bundle(
        resources[offset : offset + count], base=base, total=len(resources), links=links
    )


# -- routes ---------------------------------------------------------------------------


@router.get("/metadata", response_class=FhirResponse)
def metadata(request: Request) -> FhirResponse:
    """The CapabilityStatement: what this server supports."""
    vault = vault_of(request)
    return FhirResponse(fhir.capability_statement(base_url(request), vault.clock.now()))


@router.get("/Patient/{patient_id}", response_class=FhirResponse)
def read_patient(patient_id: str, actor: ReadPhotos, request: Request) -> FhirResponse:
    got = export.export_record(
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
    """Every resource of the patient the caller may see: Patient, Media, Consent, AuditEvent."""
    chosen = purpose_of(request, purpose or "care")
    got = export.export_record(
        vault_of(request), actor=actor, patient_id=patient_id, purpose=chosen
    )
    resources = [fhir.patient(got.patient_id, got.patient_name)]
    resources += [media_of(p) for p in got.photos or []]
    if got.consents is not None:
        current = _current_consents(got.consents)
        resources += [consent_of(c, current) for c in got.consents]
    resources += [event_of(e) for e in got.events or []]
    return FhirResponse(fhir.bundle(resources, base=base_url(request)))


@router.get("/Media/{photo_id}", response_class=FhirResponse)
def read_media(
    photo_id: str, actor: ReadPhotos, request: Request, purpose: str | None = None
) -> FhirResponse:
    got = export.export_photo(
        vault_of(request),
        photo_id=photo_id,
        actor=actor,
        purpose=purpose_of(request, purpose),
        action=Action.PHOTO_EXPORT_FHIR,
        detail="FHIR Media",
    )
    return FhirResponse(media_of(got))


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
    patient_id = patient.removeprefix("Patient/")
    got = export.export_record(
        vault_of(request),
        actor=actor,
        patient_id=patient_id,
        parts=frozenset({"photos"}),
        required=frozenset({"photos"}),
        purpose=purpose_of(request, purpose or "care"),
    )
    return FhirResponse(_page(request, [media_of(p) for p in got.photos or []], count, offset))


@router.get("/Binary/{photo_id}")
def read_binary(
    photo_id: str, actor: ReadPhotos, request: Request, purpose: str | None = None
) -> Response:
    """The scrubbed bytes; as a Binary resource when the caller asks for application/fhir+json."""
    got = export.export_photo(
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
    got = export.export_record(
        vault_of(request),
        actor=actor,
        patient_id=patient.removeprefix("Patient/"),
        parts=frozenset({"consents"}),
        required=frozenset({"consents"}),
    )
    views = got.consents or []
    current = _current_consents(views)
    return FhirResponse(_page(request, [consent_of(c, current) for c in views], count, offset))


@router.get("/AuditEvent", response_class=FhirResponse)
def search_audit_events(
    actor: History, request: Request, patient: str, count: Count = 20, offset: Offset = 0
) -> FhirResponse:
    got = export.export_record(
        vault_of(request),
        actor=actor,
        patient_id=patient.removeprefix("Patient/"),
        parts=frozenset({"events"}),
        required=frozenset({"events"}),
    )
    return FhirResponse(_page(request, [event_of(e) for e in got.events or []], count, offset))


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def unknown(rest: str) -> Response:
    raise NotFound(f"this server has no FHIR endpoint {rest!r}; see {BASE_PATH}/metadata")
