"""The administrator's user list: add (with a one-time set-up link), disable and enable,
unlock, reset a password or a lost authenticator. Decisions live in
:func:`skinvault.policy.decide.decide_account_management`, via :mod:`services.users`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from skinvault.actors import Role
from skinvault.errors import SkinvaultError
from skinvault.services import users
from skinvault.services.web_sessions import SessionInfo
from skinvault.web.links import outward_url
from skinvault.web.pages.common import check_csrf, form_fields, render, signed_in, vault

router = APIRouter(include_in_schema=False)

_ACTIONS = {
    "disable": "Disabled; every session and API token of the account has ended.",
    "enable": "Enabled again.",
    "unlock": "Unlocked: failed sign-ins forgotten.",
    "reset-password": "Password reset link made. Hand it to the person yourself.",
    "reset-totp": "Authenticator cleared; the account's sessions ended. Hand over the link.",
}


def _page(
    request: Request,
    info: SessionInfo,
    *,
    status: int = 200,
    report: str | None = None,
    link: str | None = None,
) -> HTMLResponse:
    rows = users.list_users(vault(request), actor=info.actor)
    return render(
        request,
        "admin_users.html",
        status_code=status,
        info=info,
        rows=rows,
        roles=[r.value for r in Role],
        report=report,
        link=link,
        hours=vault(request).settings.account_link_hours,
    )


@router.get("/portal/admin/users", response_class=HTMLResponse)
def users_page(request: Request) -> Response:
    info = signed_in(request)
    return _page(request, info)


@router.post("/portal/admin/users", response_class=HTMLResponse)
async def create(request: Request) -> Response:
    info = signed_in(request)
    f = await form_fields(request)
    check_csrf(info, f)
    v = vault(request)
    try:
        made = await run_in_threadpool(
            lambda: users.create_account(
                v,
                actor=info.actor,
                role=Role(f.get("role", "")),
                email=f.get("email", ""),
                name=f.get("name", "").strip()[:100],
            )
        )
    except (SkinvaultError, ValueError) as exc:
        return _page(request, info, status=400, report=f"Not created: {exc}")
    url = outward_url(request, f"/account/{made.link_token}")
    return _page(request, info, report="User created. Hand over the set-up link.", link=url)


@router.post("/portal/admin/users/{user_id}/{action}", response_class=HTMLResponse)
async def act(user_id: str, action: str, request: Request) -> Response:
    info = signed_in(request)
    f = await form_fields(request)
    check_csrf(info, f)
    v = vault(request)
    if action not in _ACTIONS:
        return _page(request, info, status=404, report=f"There is no action “{action[:40]}”.")
    link = None
    try:
        if action in ("disable", "enable"):
            await run_in_threadpool(
                lambda: users.set_disabled(
                    v, actor=info.actor, user_id=user_id, disabled=action == "disable"
                )
            )
        elif action == "unlock":
            await run_in_threadpool(lambda: users.unlock(v, actor=info.actor, user_id=user_id))
        elif action == "reset-password":
            token = await run_in_threadpool(
                lambda: users.reset_password(v, actor=info.actor, user_id=user_id)
            )
            link = outward_url(request, f"/account/{token}")
        else:
            token = await run_in_threadpool(
                lambda: users.reset_second_factor(v, actor=info.actor, user_id=user_id)
            )
            link = outward_url(request, f"/account/{token}")
    except SkinvaultError as exc:
        return _page(request, info, status=400, report=f"Not done: {exc}")
    return _page(request, info, report=_ACTIONS[action], link=link)
