"""Pages of one's own account: the one-time account link (set up, new password, new
authenticator) and changing one's password."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from skinvault.errors import SkinvaultError
from skinvault.services import signin, users
from skinvault.services.passwords import MIN_PASSWORD_LENGTH
from skinvault.web.pages.common import (
    check_csrf,
    form_fields,
    render,
    signed_in,
    vault,
)

router = APIRouter(include_in_schema=False)


def _link_page(
    request: Request, token: str, status: int = 200, error: str | None = None
) -> HTMLResponse:
    v = vault(request)
    try:
        info = users.link_info(v, token)
    except SkinvaultError as exc:
        return render(
            request,
            "message.html",
            status_code=410,
            info=None,
            title="This link no longer works",
            message=str(exc),
        )
    enrolment = users.begin_link_enrolment(v, token) if info.needs_totp else None
    return render(
        request,
        "account_link.html",
        status_code=status,
        info=None,
        link=info,
        title=users.LINK_TITLES[info.kind],
        enrolment=enrolment,
        token=token,
        error=error,
        min_length=MIN_PASSWORD_LENGTH,
    )


@router.get("/account/{token}", response_class=HTMLResponse)
def link_page(token: str, request: Request) -> HTMLResponse:
    return _link_page(request, token)


@router.post("/account/{token}", response_class=HTMLResponse)
async def use_link(token: str, request: Request) -> Response:
    f = await form_fields(request)
    v = vault(request)
    if f.get("password", "") != f.get("password_again", f.get("password", "")):
        return _link_page(request, token, 400, "the two passwords are not the same")
    try:
        await run_in_threadpool(
            lambda: users.use_link(
                v,
                token,
                password=f.get("password") or None,
                current_password=f.get("current_password") or None,
                code=f.get("code") or None,
            )
        )
    except SkinvaultError as exc:
        return _link_page(request, token, 400, str(exc))
    return render(
        request,
        "message.html",
        info=None,
        title="Done",
        message="Your account is ready. Sign in with your e-mail, password and (where asked)"
        " the code from your authenticator app.",
    )


@router.get("/portal/account", response_class=HTMLResponse)
def account_page(request: Request) -> HTMLResponse:
    info = signed_in(request)
    return render(
        request, "account.html", info=info, error=None, done=False, min_length=MIN_PASSWORD_LENGTH
    )


@router.post("/portal/account/password", response_class=HTMLResponse)
async def change_password(request: Request) -> Response:
    info = signed_in(request)
    f = await form_fields(request)
    check_csrf(info, f)
    v = vault(request)
    error = None
    if f.get("new", "") != f.get("new_again", ""):
        error = "the two new passwords are not the same"
    else:
        try:
            await run_in_threadpool(
                lambda: signin.change_password(
                    v,
                    actor=info.actor,
                    old=f.get("old", ""),
                    new=f.get("new", ""),
                    keep_session=info.session_id,
                )
            )
        except SkinvaultError as exc:
            error = str(exc)
    if error:
        return render(
            request,
            "account.html",
            status_code=400,
            info=info,
            error=error,
            done=False,
            min_length=MIN_PASSWORD_LENGTH,
        )
    return render(
        request, "account.html", info=info, error=None, done=True, min_length=MIN_PASSWORD_LENGTH
    )



