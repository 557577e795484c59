"""What every portal page shares: templates, the signed-in session, CSRF, error pages."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from skinvault.bootstrap import Vault
from skinvault.errors import AccessDenied, AuthenticationFailed, SecondFactorPending, SkinvaultError
from skinvault.policy.decide import PatientAction
from skinvault.services import (
    records,
    web_sessions,
)
from skinvault.services.tracking import CONDITION_LABELS
from skinvault.tracking import sites as _body_sites
from skinvault.web.deps import PENDING_MESSAGE, SESSION_COOKIE

templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")


#: The closed body-site vocabulary (codes); labels and SNOMED CT in skinvault.tracking.sites.
BODY_SITES = list(_body_sites.SITES)


def vault(request: Request) -> Vault:
    v = request.app.state.vault
    assert isinstance(v, Vault)
    return v


def site_label(code: str | None, missing: str = "no site", *, inside: bool = False) -> str:
    """What a person reads for a body-site code ("forearm-back-left" -> "Left forearm
    (back)"; ``inside=True`` for the middle of a sentence: "left forearm (back)"); a code
    outside the vocabulary is shown as it is, never with dashes replaced."""
    if not code:
        return missing
    found = _body_sites.SITES.get(code) or _body_sites.SITES.get(_body_sites.LEGACY.get(code, ""))
    label = found.label if found is not None else code
    return label[:1].lower() + label[1:] if inside else label


templates.env.filters["site_label"] = site_label


def condition_label(code: str | None) -> str:
    """A capture condition (lighting, distance) in words: "uv-wood-lamp" → "UV (Wood's) lamp"."""
    return CONDITION_LABELS.get(code or "", (code or "").replace("-", " "))


templates.env.filters["condition"] = condition_label

_LONG_ID = re.compile(r"\b[0-9a-f]{32}\b")


def short_ids(text: object) -> Markup:
    """Text with every 32-character id shown as its first 8 characters; the whole id stays
    in the element's title and in the text a copy takes (a hidden span), so a 390 px phone
    shows the table without scrolling sideways and nothing is lost."""
    escaped = str(escape(str(text)))
    return Markup(  # noqa: S704 - every part is escaped above; ids are [0-9a-f] only
        _LONG_ID.sub(
            lambda m: (
                f'<abbr class="id" title="{m.group(0)}">{m.group(0)[:8]}'
                f'<span class="id-rest">{m.group(0)[8:]}</span></abbr>'
            ),
            escaped,
        )
    )


templates.env.filters["short_ids"] = short_ids

#: The one-shot confirmation shown on the page after a form is sent (see :func:`flash_redirect`).
FLASH_COOKIE = "sv_flash"


def _flash_mac(info: web_sessions.SessionInfo, text: str) -> str:
    # Bound to the session (its CSRF token is the key): another session, or a cookie set by
    # anyone else, shows nothing.
    return hmac.new(info.csrf_token.encode(), text.encode(), hashlib.sha256).hexdigest()[:32]


def flash_redirect(
    url: str, info: web_sessions.SessionInfo, text: str, status_code: int = 303
) -> RedirectResponse:
    """Redirect after a form, and show ``text`` once on the next page (as a status line).

        >>> return flash_redirect("/portal/consents", info, "Saved: teaching is now “No”.")

    Any page rendered with ``info=`` shows it (base.html, ``<p role="status" class="flash">``)
    and clears it; the text is escaped like every template value.
    """
    response = RedirectResponse(url, status_code=status_code)
    text = text[:300]
    response.set_cookie(
        FLASH_COOKIE,
        f"{_flash_mac(info, text)}.{quote(text)}",
        httponly=True,
        samesite="strict",
        max_age=120,
        path="/",
    )
    return response


def _take_flash(request: Request, info: object) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or not isinstance(info, web_sessions.SessionInfo):
        return None
    mac, _, quoted = raw.partition(".")
    text = unquote(quoted)
    return text if hmac.compare_digest(mac, _flash_mac(info, text)) else None


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    flash = context.pop("flash", None) or _take_flash(request, context.get("info"))
    response = templates.TemplateResponse(
        request, name, {"request": request, "flash": flash, **context}, status_code=status_code
    )
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def any_session(request: Request) -> web_sessions.SessionInfo | None:
    """The browser's live session, including one still waiting for its second factor."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return web_sessions.actor_for_session(vault(request), cookie)
    except AuthenticationFailed:
        return None


def current_session(request: Request) -> web_sessions.SessionInfo | None:
    """The browser's fully signed-in session, or None (a pending one counts as none)."""
    info = any_session(request)
    return None if info is None or info.second_factor_pending else info


def signed_in(request: Request) -> web_sessions.SessionInfo:
    """The fully signed-in session; else the page sends the browser to sign in (or, for
    a session waiting for its second factor, to the enrolment page)."""
    info = any_session(request)
    if info is None:
        raise AuthenticationFailed("please sign in")
    if info.second_factor_pending:
        raise SecondFactorPending(PENDING_MESSAGE)
    return info


def check_csrf(info: web_sessions.SessionInfo, fields: dict[str, str]) -> None:
    if fields.get("csrf") != info.csrf_token:
        raise AuthenticationFailed(
            "the form is out of date; reload the page and try again"
        )


async def form_fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def own_record(request: Request, info: web_sessions.SessionInfo, action: PatientAction) -> str:
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
