"""Notification pages: the list (newest first), opening one (marks it read), marking all
read, the delivery preferences, and e-mailing a just-made share link to its recipient.

The header's unread count comes from :func:`unread_for`, a template global every page
(``base.html``) calls with the signed-in session.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from skinvault.errors import NotFound, SkinvaultError
from skinvault.services import notifications, web_sessions
from skinvault.web.pages.common import (
    check_csrf,
    error_page,
    form_fields,
    render,
    signed_in,
    templates,
    vault,
)

router = APIRouter(include_in_schema=False)

DELIVERY_LABELS = {
    notifications.Delivery.OFF: "Off",
    notifications.Delivery.PORTAL: "Here only",
    notifications.Delivery.IMMEDIATE: "Here and by e-mail",
    notifications.Delivery.DIGEST: "Here and a daily e-mail",
}


def unread_for(request: Request, info: web_sessions.SessionInfo | None) -> int:
    """Unread notices of the signed-in user, for the header (0 when signed out)."""
    if info is None or info.second_factor_pending:
        return 0
    return notifications.unread_count(vault(request), user_id=info.actor.id)


templates.env.globals["unread_notifications"] = unread_for


def _choices(request: Request) -> dict[notifications.Delivery, str]:
    if vault(request).settings.mail_enabled:
        return DELIVERY_LABELS
    return {k: v for k, v in DELIVERY_LABELS.items() if k in ("off", "portal")}


@router.get("/portal/notifications", response_class=HTMLResponse)
def notification_list(request: Request) -> Response:
    info = signed_in(request)
    items = notifications.notifications_for(vault(request), user_id=info.actor.id)
    return render(
        request, "notifications.html", info=info, items=items, unread=sum(not n.read for n in items)
    )


@router.post("/portal/notifications/{notification_id}/open")
async def open_notification(notification_id: str, request: Request) -> Response:
    """Mark one notice read and go to the page where the thing is."""
    info = signed_in(request)
    check_csrf(info, await form_fields(request))
    try:
        link = await run_in_threadpool(
            lambda: notifications.mark_read(
                vault(request), actor=info.actor, notification_id=notification_id
            )
        )
    except NotFound as exc:
        return error_page(request, exc, 404)
    return RedirectResponse(link or "/portal/notifications", status_code=303)


@router.post("/portal/notifications/read")
async def mark_all_read(request: Request) -> Response:
    info = signed_in(request)
    check_csrf(info, await form_fields(request))
    await run_in_threadpool(lambda: notifications.mark_read(vault(request), actor=info.actor))
    return RedirectResponse("/portal/notifications", status_code=303)


@router.get("/portal/notifications/preferences", response_class=HTMLResponse)
def preferences_page(request: Request) -> Response:
    info = signed_in(request)
    chosen = notifications.preferences(vault(request), actor=info.actor)
    return render(
        request,
        "notification_preferences.html",
        info=info,
        chosen=chosen,
        texts=notifications.TEXTS,
        choices=_choices(request),
        saved=False,
        problem=None,
    )


@router.post("/portal/notifications/preferences", response_class=HTMLResponse)
async def save_preferences(request: Request) -> Response:
    info = signed_in(request)
    fields = await form_fields(request)
    check_csrf(info, fields)
    v = vault(request)
    wanted = {k: val for k, val in fields.items() if k != "csrf"}
    problem: str | None = None
    if any(val not in _choices(request) for val in wanted.values()):
        problem = "Choose one of the offered answers for each kind of notice."
    else:
        try:
            await run_in_threadpool(
                lambda: notifications.set_preferences(v, actor=info.actor, choices=wanted)
            )
        except SkinvaultError as exc:
            problem = str(exc)
    chosen = notifications.preferences(v, actor=info.actor)
    return render(
        request,
        "notification_preferences.html",
        status_code=400 if problem else 200,
        info=info,
        chosen=chosen,
        texts=notifications.TEXTS,
        choices=_choices(request),
        saved=not problem,
        problem=problem,
    )


@router.post("/portal/share-links/email", response_class=HTMLResponse)
async def email_share_link(request: Request) -> Response:
    """E-mail a just-made share link (its address is on the page that made it) to the
    recipient: the link and the sender's name, nothing else."""
    info = signed_in(request)
    fields = await form_fields(request)
    check_csrf(info, fields)
    token = fields.get("url", "").rstrip("/").rpartition("/s/")[2]
    to = fields.get("to", "")
    try:
        await run_in_threadpool(
            lambda: notifications.email_share_link(
                vault(request), actor=info.actor, token=token, to_address=to
            )
        )
    except NotFound as exc:
        return error_page(request, exc, 404)
    except SkinvaultError as exc:
        return error_page(request, exc, 400)
    return render(
        request,
        "message.html",
        info=info,
        title="The link is on its way",
        message=f"The link will be e-mailed to {to.strip()} shortly, with your name"
        " and nothing else. If it has a password, tell them that another way.",
    )
