"""Pages anyone can reach: home, sign-in and sign-out, sign-up, first-admin setup, TOTP
enrolment, and the landing page of a share link."""

from __future__ import annotations

import base64
import html

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from skinvault.actors import Actor, Role
from skinvault.errors import SkinvaultError
from skinvault.services import (
    accounts,
    admin,
    sharing,
)
from skinvault.web.deps import SESSION_COOKIE
from skinvault.web.pages.common import (
    check_csrf,
    current_session,
    form_fields,
    render,
    set_session_cookie,
    signed_in,
    vault,
)

router = APIRouter(include_in_schema=False)

# -- public pages ---------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    if current_session(request):
        return RedirectResponse("/portal", status_code=303)
    return render(request, "home.html", info=None)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", info=None, error=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    f = await form_fields(request)
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
    set_session_cookie(response, new.cookie_value, request)
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
    f = await form_fields(request)
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
    set_session_cookie(response, new.cookie_value, request)
    return response


@router.get("/setup/{token}", response_class=HTMLResponse)
def setup_page(token: str, request: Request) -> HTMLResponse:
    return render(request, "setup.html", info=None, token=token, error=None)


@router.post("/setup/{token}", response_class=HTMLResponse)
async def setup(token: str, request: Request) -> Response:
    f = await form_fields(request)
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
    info = current_session(request)
    if info is None:
        return RedirectResponse("/login", status_code=303)
    enrolment = accounts.begin_totp_enrolment(vault(request), info.actor.id)
    return render(request, "enrol_totp.html", info=info, enrolment=enrolment, error=None)


@router.post("/enrol-totp", response_class=HTMLResponse)
async def enrol(request: Request) -> Response:
    info = signed_in(request)
    f = await form_fields(request)
    check_csrf(info, f)
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
    f = await form_fields(request)
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
