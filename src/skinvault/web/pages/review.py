"""The privacy officer's pages: the queue of break-glass accesses and one case's review.

Today the administrator acts as privacy officer; the services decide who may, and
audit each step (``break-glass:review``, ``break-glass:escalate``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from skinvault.errors import AccessDenied, NotFound
from skinvault.services import review
from skinvault.web.pages.common import check_csrf, error_page, form_fields, render, signed_in, vault

router = APIRouter(include_in_schema=False)

_STATES = {s.value for s in review.ReviewState}


@router.get("/portal/review", response_class=HTMLResponse)
def review_queue(request: Request, state: str = "open") -> Response:
    info = signed_in(request)
    chosen = state if state in _STATES or state == "all" else "open"
    try:
        found = review.cases(
            vault(request), actor=info.actor, state=None if chosen == "all" else chosen
        )
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    return render(
        request,
        "review_queue.html",
        info=info,
        cases=found,
        state=chosen,
        states=["open", "escalated", "reviewed", "all"],
    )


@router.get("/portal/review/{case_id}", response_class=HTMLResponse)
def review_case(case_id: str, request: Request) -> Response:
    info = signed_in(request)
    try:
        case, events = review.case_events(vault(request), actor=info.actor, case_id=case_id)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    except NotFound as exc:
        return error_page(request, exc, 404)
    return render(request, "review_case.html", info=info, case=case, events=events, problem=None)


@router.post("/portal/review/{case_id}", response_class=HTMLResponse)
async def review_step(case_id: str, request: Request) -> Response:
    info = signed_in(request)
    f = await form_fields(request)
    check_csrf(info, f)
    v = vault(request)
    step = review.mark_reviewed if f.get("step") == "reviewed" else review.escalate
    note = f.get("note", "")
    try:
        await run_in_threadpool(lambda: step(v, actor=info.actor, case_id=case_id, note=note))
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    except NotFound as exc:
        return error_page(request, exc, 404)
    except ValueError as exc:
        case, events = review.case_events(v, actor=info.actor, case_id=case_id)
        return render(
            request,
            "review_case.html",
            status_code=400,
            info=info,
            case=case,
            events=events,
            problem=str(exc),
        )
    return RedirectResponse(f"/portal/review/{case_id}?done=1", status_code=303)
