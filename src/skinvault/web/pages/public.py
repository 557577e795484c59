"""Pages anyone can reach: home, sign-in and sign-out, sign-up, first-admin setup, TOTP
enrolment, and the landing page of a share link."""

from __future__ import annotations

import base64
import html

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from skinvault.actors import Actor
from skinvault.errors import (
    AccountLocked,
    AuthenticationFailed,
    LinkRefused,
    SkinvaultError,
    TooManyAttempts,
    TooManyLinkTries,
)
from skinvault.services import (
    setup_tokens,
    share_open,
    sharing,
    signin,
    signups,
    users,
    versions,
    web_sessions,
)
from skinvault.web.deps import PENDING_MESSAGE, SESSION_COOKIE, client_address
from skinvault.web.pages.common import (
    any_session,
    check_csrf,
    current_session,
    form_fields,
    render,
    set_session_cookie,
    vault,
)
from skinvault.web.problems import safe_next

router = APIRouter(include_in_schema=False)

# -- public pages ---------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    if current_session(request):
        return RedirectResponse("/portal", status_code=303)
    return render(request, "home.html", info=None)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", info=None, error=None, next=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    f = await form_fields(request)
    v = vault(request)
    target = safe_next(f.get("next"))
    try:
        signed = await run_in_threadpool(
            lambda: signin.authenticate(
                v,
                email=f.get("email", ""),
                password=f.get("password", ""),
                totp=f.get("totp") or None,
                address=client_address(request),
            )
        )
    except AuthenticationFailed as exc:
        status = 429 if isinstance(exc, TooManyAttempts | AccountLocked) else 401
        return render(
            request, "login.html", status_code=status, info=None, error=str(exc), next=target
        )
    pending = signed.needs_totp_enrolment
    new = await run_in_threadpool(
        lambda: web_sessions.start_session(v, signed.actor, second_factor_pending=pending)
    )
    response = RedirectResponse("/enrol-totp" if pending else target, status_code=303)
    set_session_cookie(response, new.cookie_value, request)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Sign out (a form with the session's CSRF token, so no other site can sign you out)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    info = any_session(request)
    if cookie and info is not None:
        check_csrf(info, await form_fields(request))
        await run_in_threadpool(web_sessions.end_session, vault(request), cookie)
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
        made = await run_in_threadpool(
            lambda: signups.sign_up(
                v,
                email=f.get("email", ""),
                password=f.get("password", ""),
                name=f.get("name", "").strip()[:100],
                address=client_address(request),
            )
        )
    except SkinvaultError as exc:
        status = 429 if isinstance(exc, TooManyAttempts) else 400
        return render(request, "signup.html", status_code=status, info=None, error=str(exc))
    new = await run_in_threadpool(web_sessions.start_session, v, made)
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
        made = await run_in_threadpool(
            lambda: setup_tokens.use_setup_token(
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
    # An administrator needs a second factor: enrol it now, through a link of its own.
    link = await run_in_threadpool(
        lambda: users.issue_link(
            v, actor=Actor.system("setup"), user_id=made.id, kind=users.LinkKind.RESET_TOTP
        )
    )
    return RedirectResponse(f"/account/{link}", status_code=303)


@router.get("/enrol-totp", response_class=HTMLResponse)
def enrol_page(request: Request) -> Response:
    """Where a session waiting for its second factor lands: it can only sign out. Enrolment
    itself needs the one-time set-up link an administrator hands over, so a password alone
    (leaked, or guessed) never lets anyone bind their own authenticator."""
    info = any_session(request)
    if info is None:
        return RedirectResponse("/login", status_code=303)
    if not info.second_factor_pending:
        return RedirectResponse("/portal", status_code=303)
    return render(request, "enrol_totp.html", info=info, message=PENDING_MESSAGE)


# -- share-link landing -------------------------------------------------------------------------


def _link_code(state: str) -> int:
    """404 for no such link, 403 for a locked one (it is there, but shut), 410 for gone."""
    return {"ok": 200, "missing": 404, "locked": 403}.get(state, 410)


@router.get("/s/{token}", response_class=HTMLResponse)
def link_landing(token: str, request: Request) -> HTMLResponse:
    status = sharing.link_status(vault(request), token)
    return render(
        request,
        "link.html",
        status_code=_link_code(status.state),
        info=None,
        status=status,
        image=None,
        error=None,
        token=token,
    )


@router.post("/s/{token}", response_class=HTMLResponse)
async def link_open(token: str, request: Request) -> Response:
    f = await form_fields(request)
    v = vault(request)
    address = client_address(request)
    try:
        got = await run_in_threadpool(
            lambda: share_open.open_share_link(
                v, token=token, password=f.get("password") or None, address=address
            )
        )
    except SkinvaultError as exc:
        status = await run_in_threadpool(sharing.link_status, v, token)
        if isinstance(exc, TooManyLinkTries):
            code = 429
        elif isinstance(exc, LinkRefused):
            code = 403  # a wrong password or a locked link: refused, not gone
        else:
            code = _link_code(status.state) if status.state != "ok" else 403
        return render(
            request,
            "link.html",
            status_code=code,
            info=None,
            status=status,
            image=None,
            error=html.unescape(str(exc)),
            token=token,
        )
    if f.get("original") == "1":
        # The recipient asked for the file itself (HEIC stays HEIC), with a neutral name.
        name = versions.download_name(got)
        return Response(
            got.data,
            media_type=got.media_type,
            headers={
                "Cache-Control": "no-store",
                "Content-Disposition": f'attachment; filename="{name}"',
            },
        )
    try:
        shown = await run_in_threadpool(versions.display_for, v, got)
    except SkinvaultError:
        shown = got  # the link was opened and audited; show what there is rather than nothing
    status = await run_in_threadpool(sharing.link_status, v, token)
    image = f"data:{shown.media_type};base64,{base64.b64encode(shown.data).decode()}"
    return render(
        request, "link.html", info=None, status=status, image=image, error=None, token=token
    )
