"""Pages of the care team and of educators and researchers: a patient's photos, one photo
(with break-glass and sharing), comparison, the consented library."""

from __future__ import annotations

import base64
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from skinvault.actors import Role
from skinvault.bootstrap import Vault
from skinvault.errors import AccessDenied, DestinationUnavailable, NotFound, SkinvaultError
from skinvault.photos.thumbnail import placeholder
from skinvault.policy.purposes import PURPOSE_TEXTS, Purpose
from skinvault.services import (
    capture,
    dicom_send,
    emergency,
    photo_reads,
    photo_store,
    records,
    sharing,
    versions,
)
from skinvault.services.thumbnails import (
    FAILED,
    PreviewPending,
    preview_failure,
    read_preview,
    read_preview_now,
)
from skinvault.services.versions import download_name
from skinvault.web.links import outward_url
from skinvault.web.pages.common import (
    BODY_SITES,
    check_csrf,
    error_page,
    form_fields,
    render,
    signed_in,
    vault,
)

router = APIRouter(include_in_schema=False)


@router.get("/portal/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(patient_id: str, request: Request) -> Response:
    info = signed_in(request)
    try:
        found = records.list_photos(vault(request), actor=info.actor, patient_id=patient_id)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    # The name as the care team knows it (list_photos above has made the access decision).
    name = dict(records.patients_of(vault(request), info.actor.id)).get(patient_id)
    return render(
        request,
        "patient_photos.html",
        info=info,
        patient_name=name,
        photos=found,
        patient_id=patient_id,
        sites=BODY_SITES,
        sent=request.query_params.get("asked") == "1",
    )


@router.post("/portal/patients/{patient_id}/ask", response_class=HTMLResponse)
async def ask_for_photo(patient_id: str, request: Request) -> Response:
    """A clinician asks the patient for a photo of a site; the patient gets capture guidance."""
    info = signed_in(request)
    f = await form_fields(request)
    check_csrf(info, f)
    try:
        await run_in_threadpool(
            lambda: capture.ask_for_photo(
                vault(request),
                actor=info.actor,
                patient_id=patient_id,
                site=f.get("site", "other"),
                note=f.get("note", ""),
            )
        )
    except SkinvaultError as exc:
        return error_page(request, exc, 403)
    return RedirectResponse(f"/portal/patients/{patient_id}?asked=1", status_code=303)


@router.get("/portal/photos/{photo_id}", response_class=HTMLResponse)
def photo_page(photo_id: str, request: Request, purpose: str = "care") -> Response:
    info = signed_in(request)
    v = vault(request)
    try:
        details = photo_reads.describe_photo(
            v, photo_id=photo_id, actor=info.actor, purpose=purpose
        )
    except AccessDenied as exc:
        return render(
            request,
            "denied.html",
            status_code=403,
            info=info,
            reason=exc.reason,
            photo_id=photo_id,
            purpose=purpose,
            can_break_glass=info.actor.role is Role.CLINICIAN and purpose == "care",
        )
    if details.version and details.version != versions.DISPLAY:
        # Make the consent's version now, so a version that cannot be made is explained on
        # this page (the image read would only answer 403); audited as photo:version.
        try:
            versions.ensure_version(v, photo_id=photo_id, kind=details.version, actor=info.actor)
        except versions.VersionUnavailable as exc:
            return render(request, "denied.html", status_code=403, info=info, reason=exc.reason,
                          photo_id=photo_id, purpose=purpose, can_break_glass=False)  # fmt: skip
    stored = None
    if details.patient_id:
        try:
            stored = photo_store.get_photo(v, photo_id)
        except SkinvaultError:
            stored = None
    return render(
        request,
        "photo.html",
        info=info,
        details=details,
        stored=stored,
        preview_failed=preview_failure(v, photo_id) is not None,  # allowed: decided above
        purpose=purpose,
        just_stored=request.query_params.get("stored") == "1",
        link=None,
        break_glass=None,
        pacs_destinations=_pacs_destinations(v, info.actor.role),
    )


def _pacs_destinations(v: Vault, role: Role | None) -> list[str]:
    """The configured PACS/EHR destinations a clinician's photo page offers (docs/interop.md)."""
    return dicom_send.destinations(v) if role is Role.CLINICIAN else []


@router.post("/portal/photos/{photo_id}/send", response_class=HTMLResponse)
async def send_to_pacs(photo_id: str, request: Request) -> Response:
    """Send the photo as DICOM to a configured destination (C-STORE or STOW-RS), audited as
    ``photo:send``; the result, or why it failed, is shown on the photo page."""
    info = signed_in(request)
    f = await form_fields(request)
    check_csrf(info, f)
    v = vault(request)
    destination = f.get("destination", "")
    try:
        details = await run_in_threadpool(
            lambda: photo_reads.describe_photo(
                v, photo_id=photo_id, actor=info.actor, purpose="care"
            )
        )
    except SkinvaultError as exc:
        return error_page(request, exc, 404 if isinstance(exc, NotFound) else 403)
    try:
        sent = await run_in_threadpool(
            lambda: dicom_send.send_photo(
                v, photo_id=photo_id, actor=info.actor, destination=destination, background=True
            )
        )
        if sent.delivered:
            result = {"ok": True, "text": f"Sent to {destination}. It arrived."}
        else:
            result = {
                "ok": False,
                "text": f"Not sent yet: {destination} did not take the photo ({sent.detail})."
                f" skinvault tries again in the background, up to {v.settings.job_attempts}"
                " times; the patient's sent log and history show when it arrives. If it"
                " keeps failing, tell the clinic's IT.",
            }
        status = 200  # the destination's fault, not this request's: the page says what happened
    except DestinationUnavailable as exc:  # (only without the queue)
        result = {"ok": False, "text": f"Not sent: {destination} did not take the photo ({exc})."}
        status = 200
    except SkinvaultError as exc:
        result = {"ok": False, "text": f"Not sent: {exc}"}
        status = 404 if isinstance(exc, NotFound) else 403 if isinstance(exc, AccessDenied) else 400
    return render(
        request,
        "photo.html",
        status_code=status,
        info=info,
        details=details,
        stored=None,
        purpose="care",
        just_stored=False,
        link=None,
        break_glass=None,
        pacs_destinations=_pacs_destinations(v, info.actor.role),
        pacs_result=result,
    )


@router.post("/portal/photos/{photo_id}/break-glass", response_class=HTMLResponse)
async def break_glass(photo_id: str, request: Request) -> Response:
    info = signed_in(request)
    f = await form_fields(request)
    check_csrf(info, f)
    v = vault(request)
    reason = f.get("reason", "")
    try:
        details = await run_in_threadpool(
            lambda: photo_reads.describe_photo(
                v, photo_id=photo_id, actor=info.actor, purpose="care", break_glass_reason=reason
            )
        )
        got = await run_in_threadpool(
            lambda: photo_reads.read_photo(
                v, photo_id=photo_id, actor=info.actor, purpose="care", break_glass_reason=reason,
                for_browser=True,
            )
        )  # fmt: skip
    except AccessDenied as exc:
        return render(
            request,
            "denied.html",
            status_code=403,
            info=info,
            reason=exc.reason,
            photo_id=photo_id,
            purpose="care",
            can_break_glass=True,
        )
    data_uri = f"data:{got.media_type};base64,{base64.b64encode(got.data).decode()}"
    return render(
        request,
        "photo.html",
        info=info,
        details=details,
        stored=None,
        purpose="care",
        just_stored=False,
        link=None,
        break_glass=data_uri,
    )


@router.get("/portal/photos/{photo_id}/image")
def photo_image(photo_id: str, request: Request, purpose: str = "care") -> Response:
    """The photo for an ``<img>``: the version the consent allows, or for HEIC/TIFF the JPEG
    display version (browsers cannot show those); the original is /original."""
    info = signed_in(request)
    got = photo_reads.read_photo(
        vault(request), photo_id=photo_id, actor=info.actor, purpose=purpose, for_browser=True
    )
    return Response(got.data, media_type=got.media_type, headers={"Cache-Control": "no-store"})


@router.get("/portal/photos/{photo_id}/original")
def photo_original(photo_id: str, request: Request, purpose: str = "care") -> Response:
    """The stored photo as a download (HEIC stays HEIC); a consent limited to a version gets
    that version here too. The file name is neutral: never the photo's id."""
    info = signed_in(request)
    got = photo_reads.read_photo(
        vault(request), photo_id=photo_id, actor=info.actor, purpose=purpose
    )
    name = download_name(got)
    return Response(
        got.data,
        media_type=got.media_type,
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )


#: What a list of photos shows for a photo of which no preview can be made: what happened
#: and what the person can do (the photo's page offers the original, where allowed).
PREVIEW_FAILED_LINES = (
    "No preview could be made",
    "from this photo.",
    "Open it to download the original,",
    "or upload it again.",
)
_FAILED_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240" viewBox="0 0 320 240"'
    ' role="img" aria-label="{label}"><rect width="320" height="240" fill="#fbe9e7"/>'
    "{lines}</svg>"
)


def _failed_placeholder() -> bytes:
    """The SVG for a preview that will never be made. Fixed text, no script."""
    lines = "".join(
        f'<text x="160" y="{78 + 30 * i}" font-family="sans-serif" font-size="16"'
        f' text-anchor="middle" fill="#3e2723">{line}</text>'
        for i, line in enumerate(PREVIEW_FAILED_LINES)
    )
    return _FAILED_SVG.format(label=" ".join(PREVIEW_FAILED_LINES), lines=lines).encode()


@router.get("/portal/photos/{photo_id}/thumbnail")
def photo_thumb(photo_id: str, request: Request, purpose: str = "care") -> Response:
    info = signed_in(request)
    got = read_preview(vault(request), photo_id=photo_id, actor=info.actor, purpose=purpose)
    if isinstance(got, PreviewPending):  # made by a job after the upload: say so, no error
        svg = _failed_placeholder() if got.state == FAILED else placeholder(got.state)
        return Response(svg, media_type="image/svg+xml",
                        headers={"Cache-Control": "no-store", "X-Preview": got.state})  # fmt: skip
    return Response(got.data, media_type=got.media_type, headers={"Cache-Control": "no-store"})


@router.post("/portal/photos/{photo_id}/share", response_class=HTMLResponse)
async def share(photo_id: str, request: Request) -> Response:
    info = signed_in(request)
    f = await form_fields(request)
    check_csrf(info, f)
    v = vault(request)
    try:
        hours = max(1, min(int(f.get("hours", "72") or 72), 24 * 30))
        link = await run_in_threadpool(
            lambda: sharing.create_share_link(
                v,
                photo_id=photo_id,
                actor=info.actor,
                recipient=f.get("recipient", "").strip(),
                expires_in=timedelta(hours=hours),
                single_use=f.get("single_use") == "on",
                password=f.get("password") or None,
            )
        )
        details = await run_in_threadpool(
            lambda: photo_reads.describe_photo(
                v, photo_id=photo_id, actor=info.actor, purpose="care"
            )
        )
    except (SkinvaultError, ValueError) as exc:
        message = str(exc) if isinstance(exc, SkinvaultError) else "hours must be a number"
        return render(
            request,
            "message.html",
            status_code=400,
            info=info,
            title="The link was not made",
            message=message,
        )
    url = outward_url(request, f"/s/{link.token}")
    return render(
        request,
        "photo.html",
        info=info,
        details=details,
        stored=None,
        purpose="care",
        just_stored=False,
        link={"url": url, "expires_at": link.expires_at},
        break_glass=None,
    )


# -- the library, comparison, administration ---------------------------------------------------

_LIBRARY_PURPOSES = {
    Role.CLINICIAN: [Purpose.TEACHING, Purpose.PUBLICATION],
    Role.EDUCATOR: [Purpose.TEACHING, Purpose.PUBLICATION],
    Role.RESEARCHER: [Purpose.RESEARCH, Purpose.AI_TRAINING, Purpose.PUBLICATION],
}


@router.get("/portal/library", response_class=HTMLResponse)
def library_page(request: Request, purpose: str | None = None) -> Response:
    """Photos whose patients consented to this use, served only within the consented scope."""
    info = signed_in(request)
    choices = _LIBRARY_PURPOSES.get(info.actor.role) if info.actor.role else None
    if not choices:
        return error_page(request, AccessDenied("Your role has no photo library."), 403)
    chosen = Purpose(purpose) if purpose in {p.value for p in choices} else choices[0]
    found = records.library(vault(request), actor=info.actor, purpose=chosen)
    return render(
        request,
        "library.html",
        info=info,
        photos=found,
        purpose=chosen,
        choices=choices,
        titles={p: PURPOSE_TEXTS[p].title for p in choices},
    )


@router.get("/portal/compare", response_class=HTMLResponse)
def compare_page(request: Request, a: str, b: str, purpose: str = "care") -> Response:
    """Two photos side by side (the same body site on two dates). A photo this use may not
    see, or whose consent-scoped version cannot be made, is explained in its place (as on
    the photo page) rather than shown as a broken image; the refusal is audited."""
    info = signed_in(request)
    v = vault(request)
    pair: list[tuple[str, photo_reads.PhotoDetails | None, str | None]] = []
    for pid in (a, b):
        try:
            d = photo_reads.describe_photo(v, photo_id=pid, actor=info.actor, purpose=purpose)
            if d.version and d.version != versions.DISPLAY:  # audited as photo:version
                versions.ensure_version(v, photo_id=pid, kind=d.version, actor=info.actor)
        except AccessDenied as exc:  # VersionUnavailable too
            pair.append((pid, None, exc.reason))
        except SkinvaultError as exc:
            return error_page(request, exc, 404 if isinstance(exc, NotFound) else 403)
        else:
            pair.append((pid, d, None))
    refused = any(d is None for _, d, _ in pair)  # 403, as the photo page answers for it
    return render(request, "compare.html", status_code=403 if refused else 200, info=info,
                  pair=pair, purpose=purpose)  # fmt: skip


# -- break-glass from the clinician's home ----------------------------------------------------


@router.post("/portal/emergency", response_class=HTMLResponse)
async def emergency_access(request: Request) -> Response:
    """Open a patient's record outside the care team: a patient identifier and a reason;
    the photos are listed and previewed through the break-glass decision, each audited."""
    info = signed_in(request)
    f = await form_fields(request)
    check_csrf(info, f)
    v = vault(request)
    patient, reason = f.get("patient", "").strip(), f.get("reason", "")
    try:
        opened = await run_in_threadpool(
            lambda: emergency.open_record(v, actor=info.actor, patient=patient, reason=reason)
        )
    except (AccessDenied, NotFound) as exc:
        return render(
            request,
            "emergency.html",
            status_code=403 if isinstance(exc, AccessDenied) else 404,
            info=info,
            refused=str(exc),
            patient=patient,
            reason=reason,
            opened=None,
            previews={},
        )
    if not opened.break_glass:  # on the care team: the ordinary page, no emergency needed
        return RedirectResponse(f"/portal/patients/{opened.patient_id}", status_code=303)

    def previews() -> dict[str, str]:
        shown = {}
        for p in opened.photos:
            try:
                got = read_preview_now(
                    v, photo_id=p.id, actor=info.actor, purpose="care", break_glass_reason=reason
                )
            except SkinvaultError:
                continue  # the page still lists it; opening it says why it cannot be read
            if isinstance(got, PreviewPending):
                continue
            shown[p.id] = f"data:{got.media_type};base64,{base64.b64encode(got.data).decode()}"
        return shown

    return render(
        request,
        "emergency.html",
        info=info,
        refused=None,
        patient=patient,
        reason=reason.strip(),
        opened=opened,
        previews=await run_in_threadpool(previews),
    )
