"""What every portal page shares: templates, the signed-in session, CSRF, error pages."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from skinvault.bootstrap import Vault
from skinvault.errors import AccessDenied, SecondFactorPending, SkinvaultError
from skinvault.policy.decide import PatientAction
from skinvault.services import (
    accounts,
    records,
)
from skinvault.tracking import sites as _body_sites
from skinvault.web.deps import PENDING_MESSAGE, SESSION_COOKIE

templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")


#: The closed body-site vocabulary (codes); labels and SNOMED CT in skinvault.tracking.sites.
BODY_SITES = list(_body_sites.SITES)


def vault(request: Request) -> Vault:
    v = request.app.state.vault
    assert isinstance(v, Vault)
    return v


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, {"request": request, **context}, status_code=status_code
    )


def any_session(request: Request) -> accounts.SessionInfo | None:
    """The browser's live session, including one still waiting for its second factor."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return accounts.actor_for_session(vault(request), cookie)
    except accounts.AuthenticationFailed:
        return None


def current_session(request: Request) -> accounts.SessionInfo | None:
    """The browser's fully signed-in session, or None (a pending one counts as none)."""
    info = any_session(request)
    return None if info is None or info.second_factor_pending else info


def signed_in(request: Request) -> accounts.SessionInfo:
    """The fully signed-in session; else the page sends the browser to sign in (or, for
    a session waiting for its second factor, to the enrolment page)."""
    info = any_session(request)
    if info is None:
        raise accounts.AuthenticationFailed("please sign in")
    if info.second_factor_pending:
        raise SecondFactorPending(PENDING_MESSAGE)
    return info


def check_csrf(info: accounts.SessionInfo, fields: dict[str, str]) -> None:
    if fields.get("csrf") != info.csrf_token:
        raise accounts.AuthenticationFailed(
            "the form is out of date; reload the page and try again"
        )


async def form_fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def own_record(request: Request, info: accounts.SessionInfo, action: PatientAction) -> str:
    """The signed-in patient's own record id, after the record-level policy decision."""
    v = vault(request)
    patient_id = records.patient_of_user(v, info.actor.id)
    if patient_id is None:
        raise AccessDenied("This page is for patients: it shows a patient's own record.")
    records.authorize(v, info.actor, patient_id, action)
    return patient_id


def error_page(request: Request, exc: SkinvaultError, status: int) -> HTMLResponse:
    return render(
        request,
        "message.html",
        status_code=status,
        title="That did not work",
        message=str(exc),
        info=current_session(request),
    )


def set_session_cookie(response: Response, value: str, request: Request) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
        max_age=int(timedelta(hours=12).total_seconds()),
        path="/",
    )
