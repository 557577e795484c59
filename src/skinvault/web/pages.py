"""The portal: server-rendered pages for patients, clinicians, educators and privacy officers.

Pages are thin: each one calls a service and renders a template. Forms carry
the session's CSRF token; the one script (``static/portal.js``) only adds the
privacy preview before an upload and works without inline code.
"""

from __future__ import annotations

import base64
import html
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault
from skinvault.errors import AccessDenied, PhotoError, SkinvaultError
from skinvault.photos.findings import CATEGORY_TITLES
from skinvault.policy.decide import PatientAction, decide_operation
from skinvault.policy.purposes import PURPOSE_TEXTS, Purpose, Scope
from skinvault.services import (
    accounts,
    admin,
    capture,
    consents,
    deletion,
    history,
    photos,
    records,
    sharing,
)
from skinvault.services.preview import CHECKLIST, privacy_preview
from skinvault.web.deps import SESSION_COOKIE
from skinvault.web.uploads import read_form

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

BODY_SITES = [
    "face",
    "scalp",
    "neck",
    "chest",
    "abdomen",
    "back",
    "left-arm",
    "right-arm",
    "left-hand",
    "right-hand",
    "left-leg",
    "right-leg",
    "left-foot",
    "right-foot",
    "genital-area",
    "other",
]


def vault(request: Request) -> Vault:
    v = request.app.state.vault
    assert isinstance(v, Vault)
    return v


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, {"request": request, **context}, status_code=status_code
    )


def _session(request: Request) -> accounts.SessionInfo | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return accounts.actor_for_session(vault(request), cookie)
    except accounts.AuthenticationFailed:
        return None


def _signed_in(request: Request) -> accounts.SessionInfo:
    info = _session(request)
    if info is None:
        raise accounts.AuthenticationFailed("please sign in")
    return info


def _check_csrf(info: accounts.SessionInfo, fields: dict[str, str]) -> None:
    if fields.get("csrf") != info.csrf_token:
        raise accounts.AuthenticationFailed(
            "the form is out of date; reload the page and try again"
        )


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _own_record(request: Request, info: accounts.SessionInfo, action: PatientAction) -> str:
    """The signed-in patient's own record id, after the record-level policy decision."""
    v = vault(request)
    patient_id = records.patient_of_user(v, info.actor.id)
    if patient_id is None:
        raise AccessDenied("This page is for patients: it shows a patient's own record.")
    records.authorize(v, info.actor, patient_id, action)
    return patient_id


def _error_page(request: Request, exc: SkinvaultError, status: int) -> HTMLResponse:
    return render(
        request,
        "message.html",
        status_code=status,
        title="That did not work",
        message=str(exc),
        info=_session(request),
    )


def _cookie(response: Response, value: str, request: Request) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
        max_age=int(timedelta(hours=12).total_seconds()),
        path="/",
    )


# -- public pages ---------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    if _session(request):
        return RedirectResponse("/portal", status_code=303)
    return render(request, "home.html", info=None)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", info=None, error=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    f = await _form(request)
    v = vault(request)
    try:
        request.app.state.sign_in_limiter.check(request.client.host if request.client else "?")
        signed = await run_in_threadpool(
            lambda: accounts.authenticate(
                v,
                email=f.get("email", ""),
                password=f.get("password", ""),
                totp=f.get("totp") or None,
            )
        )
    except accounts.AuthenticationFailed as exc:
        return render(request, "login.html", status_code=401, info=None, error=str(exc))
    new = await run_in_threadpool(accounts.start_session, v, signed.actor)
    target = "/enrol-totp" if signed.needs_totp_enrolment else "/portal"
    response = RedirectResponse(target, status_code=303)
    _cookie(response, new.cookie_value, request)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await run_in_threadpool(accounts.end_session, vault(request), cookie)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request) -> HTMLResponse:
    return render(request, "signup.html", info=None, error=None)


@router.post("/signup", response_class=HTMLResponse)
async def signup(request: Request) -> Response:
    """Patients create their own account; every other role is created by an administrator."""
    f = await _form(request)
    v = vault(request)
    try:
        await run_in_threadpool(
            lambda: admin.create_user(
                v,
                role=Role.PATIENT,
                email=f.get("email", ""),
                password=f.get("password", ""),
                actor=Actor.system("signup"),
                name=f.get("name", "").strip()[:100],
            )
        )
        signed = await run_in_threadpool(
            lambda: accounts.authenticate(
                v, email=f.get("email", ""), password=f.get("password", ""), totp=None
            )
        )
    except SkinvaultError as exc:
        return render(request, "signup.html", status_code=400, info=None, error=str(exc))
    new = await run_in_threadpool(accounts.start_session, v, signed.actor)
    response = RedirectResponse("/portal", status_code=303)
    _cookie(response, new.cookie_value, request)
    return response


@router.get("/setup/{token}", response_class=HTMLResponse)
def setup_page(token: str, request: Request) -> HTMLResponse:
    return render(request, "setup.html", info=None, token=token, error=None)


@router.post("/setup/{token}", response_class=HTMLResponse)
async def setup(token: str, request: Request) -> Response:
    f = await _form(request)
    v = vault(request)
    try:
        await run_in_threadpool(
            lambda: accounts.use_setup_token(
                v,
                token,
                email=f.get("email", ""),
                password=f.get("password", ""),
                name=f.get("name", "Administrator"),
            )
        )
    except SkinvaultError as exc:
        return render(
            request, "setup.html", status_code=400, info=None, token=token, error=str(exc)
        )
    return RedirectResponse("/login", status_code=303)


@router.get("/enrol-totp", response_class=HTMLResponse)
def enrol_page(request: Request) -> Response:
    info = _session(request)
    if info is None:
        return RedirectResponse("/login", status_code=303)
    enrolment = accounts.begin_totp_enrolment(vault(request), info.actor.id)
    return render(request, "enrol_totp.html", info=info, enrolment=enrolment, error=None)


@router.post("/enrol-totp", response_class=HTMLResponse)
async def enrol(request: Request) -> Response:
    info = _signed_in(request)
    f = await _form(request)
    _check_csrf(info, f)
    ok = await run_in_threadpool(
        accounts.confirm_totp, vault(request), info.actor.id, f.get("code", "")
    )
    if not ok:
        return render(
            request,
            "message.html",
            status_code=400,
            info=info,
            title="Wrong code",
            message="That code did not match. Go back and scan the new code again.",
        )
    return RedirectResponse("/portal", status_code=303)


# -- the portal -------------------------------------------------------------------------------


@router.get("/portal", response_class=HTMLResponse)
def portal(request: Request) -> Response:
    info = _session(request)
    if info is None:
        return RedirectResponse("/login", status_code=303)
    v, actor = vault(request), info.actor
    if actor.role is Role.PATIENT:
        patient_id = records.patient_of_user(v, actor.id)
        assert patient_id is not None
        mine = records.list_photos(v, actor=actor, patient_id=patient_id)
        asked = capture.open_requests(v, actor=actor, patient_id=patient_id)
        return render(
            request,
            "patient_home.html",
            info=info,
            photos=mine,
            sites=BODY_SITES,
            checklist=CHECKLIST,
            patient_id=patient_id,
            asked=asked,
        )
    if actor.role in (Role.CLINICIAN, Role.STAFF):
        return render(
            request, "clinician_home.html", info=info, patients=records.patients_of(v, actor.id)
        )
    if actor.role is Role.ADMIN:
        return RedirectResponse("/portal/admin", status_code=303)
    return RedirectResponse("/portal/library", status_code=303)


@router.get("/portal/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(patient_id: str, request: Request) -> Response:
    info = _signed_in(request)
    try:
        found = records.list_photos(vault(request), actor=info.actor, patient_id=patient_id)
    except AccessDenied as exc:
        return _error_page(request, exc, 403)
    return render(
        request,
        "patient_photos.html",
        info=info,
        photos=found,
        patient_id=patient_id,
        sites=BODY_SITES,
        sent=request.query_params.get("asked") == "1",
    )


@router.post("/portal/patients/{patient_id}/ask", response_class=HTMLResponse)
async def ask_for_photo(patient_id: str, request: Request) -> Response:
    """A clinician asks the patient for a photo of a site; the patient gets capture guidance."""
    info = _signed_in(request)
    f = await _form(request)
    _check_csrf(info, f)
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
        return _error_page(request, exc, 403)
    return RedirectResponse(f"/portal/patients/{patient_id}?asked=1", status_code=303)


@router.post("/portal/preview", response_class=HTMLResponse)
async def preview(request: Request) -> Response:
    """What the scrub will remove, before anything is stored (nothing is kept)."""
    info = _signed_in(request)
    v = vault(request)
    fields, files = await read_form(request, v.settings.max_upload_bytes)
    _check_csrf(info, fields)
    if "file" not in files:
        return HTMLResponse("<p>Choose a photo first.</p>", status_code=400)
    try:
        found = await run_in_threadpool(
            lambda: privacy_preview(files["file"].data, max_bytes=v.settings.max_upload_bytes)
        )
    except PhotoError as exc:
        return render(
            request,
            "preview.html",
            status_code=422,
            error=str(exc),
            groups={},
            clues=[],
            checklist=[],
        )
    groups: dict[str, list[str]] = {}
    for category, title in CATEGORY_TITLES.items():  # most revealing first
        descriptions = [f.description for f in found.findings if f.category is category]
        if descriptions:
            groups[title] = descriptions
    return render(
        request,
        "preview.html",
        error=None,
        groups=groups,
        clues=found.clues,
        checklist=[item for item in found.checklist if item.found],
    )


@router.post("/portal/upload", response_class=HTMLResponse)
async def upload(request: Request) -> Response:
    info = _signed_in(request)
    v = vault(request)
    try:
        fields, files = await read_form(request, v.settings.max_upload_bytes)
        _check_csrf(info, fields)
        patient_id = fields.get("patient_id", "")
        if "file" not in files or not files["file"].data:
            raise PhotoError("choose a photo to upload")
        await run_in_threadpool(records.authorize, v, info.actor, patient_id, PatientAction.UPLOAD)
        stored = await run_in_threadpool(
            lambda: photos.store_photo(
                v,
                patient_id=patient_id,
                data=files["file"].data,
                actor=info.actor,
                site=fields.get("site") or None,
                note=fields.get("note", "")[:2000],
            )
        )
        if fields.get("request_id"):
            await run_in_threadpool(
                lambda: capture.fulfil(v, request_id=fields["request_id"], photo_id=stored.id)
            )
    except SkinvaultError as exc:
        return _error_page(request, exc, 422 if isinstance(exc, PhotoError) else 403)
    return RedirectResponse(f"/portal/photos/{stored.id}?purpose=care&stored=1", status_code=303)


@router.get("/portal/photos/{photo_id}", response_class=HTMLResponse)
def photo_page(photo_id: str, request: Request, purpose: str = "care") -> Response:
    info = _signed_in(request)
    v = vault(request)
    try:
        details = photos.describe_photo(v, photo_id=photo_id, actor=info.actor, purpose=purpose)
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
    stored = None
    if details.patient_id:
        try:
            stored = photos.get_photo(v, photo_id)
        except SkinvaultError:
            stored = None
    return render(
        request,
        "photo.html",
        info=info,
        details=details,
        stored=stored,
        purpose=purpose,
        just_stored=request.query_params.get("stored") == "1",
        link=None,
        break_glass=None,
    )


@router.post("/portal/photos/{photo_id}/break-glass", response_class=HTMLResponse)
async def break_glass(photo_id: str, request: Request) -> Response:
    info = _signed_in(request)
    f = await _form(request)
    _check_csrf(info, f)
    v = vault(request)
    reason = f.get("reason", "")
    try:
        details = await run_in_threadpool(
            lambda: photos.describe_photo(
                v, photo_id=photo_id, actor=info.actor, purpose="care", break_glass_reason=reason
            )
        )
        got = await run_in_threadpool(
            lambda: photos.read_photo(
                v, photo_id=photo_id, actor=info.actor, purpose="care", break_glass_reason=reason
            )
        )
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
    info = _signed_in(request)
    got = photos.read_photo(vault(request), photo_id=photo_id, actor=info.actor, purpose=purpose)
    return Response(got.data, media_type=got.media_type, headers={"Cache-Control": "no-store"})


@router.get("/portal/photos/{photo_id}/thumbnail")
def photo_thumb(photo_id: str, request: Request, purpose: str = "care") -> Response:
    info = _signed_in(request)
    got = photos.read_thumbnail(
        vault(request), photo_id=photo_id, actor=info.actor, purpose=purpose
    )
    return Response(got.data, media_type=got.media_type, headers={"Cache-Control": "no-store"})


@router.post("/portal/photos/{photo_id}/share", response_class=HTMLResponse)
async def share(photo_id: str, request: Request) -> Response:
    info = _signed_in(request)
    f = await _form(request)
    _check_csrf(info, f)
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
            lambda: photos.describe_photo(v, photo_id=photo_id, actor=info.actor, purpose="care")
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
    url = str(request.base_url).rstrip("/") + f"/s/{link.token}"
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


@router.get("/portal/consents", response_class=HTMLResponse)
def consents_page(request: Request) -> Response:
    info = _signed_in(request)
    v = vault(request)
    try:
        patient_id = _own_record(request, info, PatientAction.MANAGE_CONSENT)
    except AccessDenied as exc:
        return _error_page(request, exc, 403)
    current = consents.consents_for(v, patient_id)
    now = v.clock.now()
    rows = [
        {
            "purpose": p,
            "text": PURPOSE_TEXTS[p],
            "view": current.get(p),
            "on": bool(current.get(p) and current[p].in_force(now)),
        }
        for p in Purpose
        if p is not Purpose.CARE
    ]
    return render(
        request,
        "consents.html",
        info=info,
        rows=rows,
        scopes=list(Scope),
        care=PURPOSE_TEXTS[Purpose.CARE],
    )


@router.post("/portal/consents/{purpose}", response_class=HTMLResponse)
async def set_consent(purpose: Purpose, request: Request) -> Response:
    info = _signed_in(request)
    form = await request.form()
    f = {k: v for k, v in form.items() if isinstance(v, str)}
    _check_csrf(info, f)
    v = vault(request)
    try:
        patient_id = _own_record(request, info, PatientAction.MANAGE_CONSENT)
    except AccessDenied as exc:
        return _error_page(request, exc, 403)
    scopes = frozenset(Scope(s) for s in form.getlist("scope") if s in {x.value for x in Scope})
    try:
        await run_in_threadpool(
            lambda: consents.record_consent(
                v,
                patient_id=patient_id,
                purpose=purpose,
                granted=f.get("answer") == "yes",
                scopes=scopes,
                actor=info.actor,
            )
        )
    except SkinvaultError as exc:
        return _error_page(request, exc, 400)
    return RedirectResponse("/portal/consents", status_code=303)


@router.get("/portal/consents/{purpose}/receipt", response_class=HTMLResponse)
def consent_receipt(purpose: Purpose, request: Request) -> Response:
    info = _signed_in(request)
    v = vault(request)
    patient_id = records.patient_of_user(v, info.actor.id)
    view = consents.consents_for(v, patient_id).get(purpose) if patient_id else None
    if view is None:
        return _error_page(request, AccessDenied("No answer has been recorded yet."), 404)
    return HTMLResponse(consents.receipt_html(view))


@router.get("/portal/history", response_class=HTMLResponse)
def history_page(request: Request) -> Response:
    info = _signed_in(request)
    v = vault(request)
    try:
        patient_id = _own_record(request, info, PatientAction.READ_HISTORY)
    except AccessDenied as exc:
        return _error_page(request, exc, 403)
    return render(
        request,
        "history.html",
        info=info,
        events=list(reversed(history.access_history(v, patient_id))),
    )


@router.get("/portal/sent", response_class=HTMLResponse)
def sent_page(request: Request) -> Response:
    info = _signed_in(request)
    v = vault(request)
    try:
        patient_id = _own_record(request, info, PatientAction.READ_SENT)
    except AccessDenied as exc:
        return _error_page(request, exc, 403)
    return render(request, "sent.html", info=info, entries=sharing.sent_log(v, patient_id))


@router.post("/portal/share-links/{link_id}/revoke")
async def revoke_link(link_id: str, request: Request) -> Response:
    info = _signed_in(request)
    f = await _form(request)
    _check_csrf(info, f)
    await run_in_threadpool(
        lambda: sharing.revoke_share_link(vault(request), link_id=link_id, actor=info.actor)
    )
    return RedirectResponse("/portal/sent", status_code=303)


@router.get("/portal/deletion", response_class=HTMLResponse)
def deletion_page(request: Request) -> Response:
    info = _signed_in(request)
    v = vault(request)
    try:
        patient_id = _own_record(request, info, PatientAction.REQUEST_DELETION)
    except AccessDenied as exc:
        return _error_page(request, exc, 403)
    return render(
        request,
        "deletion.html",
        info=info,
        requests=deletion.requests_for(v, patient_id),
        photos=records.list_photos(v, actor=info.actor, patient_id=patient_id),
    )


@router.post("/portal/deletion", response_class=HTMLResponse)
async def file_deletion(request: Request) -> Response:
    info = _signed_in(request)
    f = await _form(request)
    _check_csrf(info, f)
    v = vault(request)
    try:
        patient_id = _own_record(request, info, PatientAction.REQUEST_DELETION)
    except AccessDenied as exc:
        return _error_page(request, exc, 403)
    try:
        scope = deletion.DeletionScope(f.get("scope", "everything"))
        await run_in_threadpool(
            lambda: deletion.file_request(
                v,
                patient_id=patient_id,
                scope=scope,
                scope_ref=f.get("scope_ref") or None,
                reason=f.get("reason", ""),
                actor=info.actor,
            )
        )
    except (SkinvaultError, ValueError) as exc:
        return render(
            request,
            "message.html",
            status_code=400,
            info=info,
            title="The request was not filed",
            message=str(exc),
        )
    return RedirectResponse("/portal/deletion", status_code=303)


@router.post("/portal/admin/verify", response_class=HTMLResponse)
async def admin_verify(request: Request) -> Response:
    info = _admin(request)
    f = await _form(request)
    _check_csrf(info, f)
    try:
        report = await run_in_threadpool(admin.verify_audit, vault(request))
        text = (
            f"Intact: {report.count} events, head {report.head_seq},"
            f" {report.checkpoints_checked} signed checkpoints verified."
        )
    except SkinvaultError as exc:
        text = f"BROKEN: {exc}"
    return _admin_page(request, info, report=text)


# -- share-link landing -------------------------------------------------------------------------


@router.get("/s/{token}", response_class=HTMLResponse)
def link_landing(token: str, request: Request) -> HTMLResponse:
    status = sharing.link_status(vault(request), token)
    code = 200 if status.state == "ok" else (404 if status.state == "missing" else 410)
    return render(
        request,
        "link.html",
        status_code=code,
        info=None,
        status=status,
        image=None,
        error=None,
        token=token,
    )


@router.post("/s/{token}", response_class=HTMLResponse)
async def link_open(token: str, request: Request) -> HTMLResponse:
    f = await _form(request)
    v = vault(request)
    status = await run_in_threadpool(sharing.link_status, v, token)
    try:
        got = await run_in_threadpool(
            lambda: sharing.open_share_link(v, token=token, password=f.get("password") or None)
        )
    except SkinvaultError as exc:
        status = await run_in_threadpool(sharing.link_status, v, token)
        return render(
            request,
            "link.html",
            status_code=410 if status.state != "ok" else 403,
            info=None,
            status=status,
            image=None,
            error=html.unescape(str(exc)),
            token=token,
        )
    image = f"data:{got.media_type};base64,{base64.b64encode(got.data).decode()}"
    return render(
        request, "link.html", info=None, status=status, image=image, error=None, token=token
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
    info = _signed_in(request)
    choices = _LIBRARY_PURPOSES.get(info.actor.role) if info.actor.role else None
    if not choices:
        return _error_page(request, AccessDenied("Your role has no photo library."), 403)
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
    """Two photos side by side (the same body site on two dates)."""
    info = _signed_in(request)
    v = vault(request)
    try:
        pair = [
            photos.describe_photo(v, photo_id=pid, actor=info.actor, purpose=purpose)
            for pid in (a, b)
        ]
    except SkinvaultError as exc:
        return _error_page(request, exc, 403)
    return render(request, "compare.html", info=info, pair=pair, purpose=purpose)


def _admin(request: Request) -> accounts.SessionInfo:
    info = _signed_in(request)
    decision = decide_operation(info.actor)
    if not decision.allowed:
        raise AccessDenied(decision.reason)
    return info


def _admin_page(request: Request, info: accounts.SessionInfo, **extra: Any) -> HTMLResponse:
    v = vault(request)
    search = (request.query_params.get("q") or "").strip()[:100]
    recent = admin.audit_events(v, actor=info.actor, containing=search or None)
    return render(
        request,
        "admin_home.html",
        info=info,
        queue=deletion.open_requests(v, actor=info.actor),
        events=recent,
        roles=[r.value for r in Role],
        search=search,
        decisions=list(deletion.DeletionDecision),
        **{"report": None, **extra},
    )


@router.get("/portal/admin", response_class=HTMLResponse)
def admin_page(request: Request) -> Response:
    try:
        info = _admin(request)
    except AccessDenied as exc:
        return _error_page(request, exc, 403)
    return _admin_page(request, info)


@router.post("/portal/admin/deletion/{request_id}", response_class=HTMLResponse)
async def admin_decide(request_id: str, request: Request) -> Response:
    info = _admin(request)
    f = await _form(request)
    _check_csrf(info, f)
    try:
        decided = await run_in_threadpool(
            lambda: deletion.decide_request(
                vault(request),
                request_id=request_id,
                decision=deletion.DeletionDecision(f.get("decision", "")),
                explanation=f.get("explanation", ""),
                actor=info.actor,
            )
        )
    except (SkinvaultError, ValueError) as exc:
        return _admin_page(request, info, report=f"Not decided: {exc}")
    return _admin_page(request, info, report=f"Decided: {decided.decision} — {decided.explanation}")


@router.post("/portal/admin/retention", response_class=HTMLResponse)
async def admin_retention(request: Request) -> Response:
    from skinvault.services.retention import run_retention  # noqa: PLC0415

    info = _admin(request)
    f = await _form(request)
    _check_csrf(info, f)
    dry = f.get("mode") != "run"
    report = await run_in_threadpool(
        lambda: run_retention(vault(request), actor=info.actor, dry_run=dry)
    )
    verb = "Would shred or remove" if dry else "Shredded or removed"
    return _admin_page(request, info, report=f"{verb} {len(report.actions)} items.")


@router.post("/portal/admin/users", response_class=HTMLResponse)
async def admin_create_user(request: Request) -> Response:
    info = _admin(request)
    f = await _form(request)
    _check_csrf(info, f)
    try:
        made = await run_in_threadpool(
            lambda: admin.create_user(
                vault(request),
                role=Role(f.get("role", "")),
                email=f.get("email", ""),
                password=f.get("password", ""),
                actor=info.actor,
                name=f.get("name", ""),
            )
        )
    except (SkinvaultError, ValueError) as exc:
        return _admin_page(request, info, report=f"Not created: {exc}")
    return _admin_page(request, info, report=f"Created user {made.user_id}.")
