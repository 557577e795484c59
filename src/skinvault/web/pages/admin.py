"""The administrator's pages: audit search and verify, deletion queue, retention, users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from skinvault.actors import Role
from skinvault.errors import AccessDenied, SkinvaultError
from skinvault.policy.decide import decide_operation
from skinvault.services import (
    admin,
    deletion,
    jobs,
    web_sessions,
)
from skinvault.web.pages.common import (
    check_csrf,
    error_page,
    form_fields,
    render,
    signed_in,
    vault,
)

router = APIRouter(include_in_schema=False)


@router.post("/portal/admin/verify", response_class=HTMLResponse)
async def admin_verify(request: Request) -> Response:
    info = _admin(request)
    f = await form_fields(request)
    check_csrf(info, f)
    try:
        incremental = f.get("scope") == "new"
        report = await run_in_threadpool(
            lambda: admin.verify_audit(vault(request), incremental=incremental)
        )
        warnings = "".join(f" Warning: {note}." for note in report.notes)
        text = admin.verify_summary(report) + warnings
    except SkinvaultError as exc:
        text = f"BROKEN: {exc}"
    return _admin_page(request, info, report=text)


def _admin(request: Request) -> web_sessions.SessionInfo:
    info = signed_in(request)
    decision = decide_operation(info.actor)
    if not decision.allowed:
        raise AccessDenied(decision.reason)
    return info


def _admin_page(request: Request, info: web_sessions.SessionInfo, **extra: Any) -> HTMLResponse:
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
        work=jobs.status(v, dead_limit=5),
        **{"report": None, **extra},
    )


@router.get("/portal/admin", response_class=HTMLResponse)
def admin_page(request: Request) -> Response:
    try:
        info = _admin(request)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    return _admin_page(request, info)


@router.post("/portal/admin/deletion/{request_id}", response_class=HTMLResponse)
async def admin_decide(request_id: str, request: Request) -> Response:
    info = _admin(request)
    f = await form_fields(request)
    check_csrf(info, f)
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


@router.post("/portal/admin/jobs/{job_id}/retry", response_class=HTMLResponse)
async def admin_retry_job(job_id: str, request: Request) -> Response:
    """Queue a job that failed for good again, with a fresh set of tries."""
    info = _admin(request)
    f = await form_fields(request)
    check_csrf(info, f)
    try:
        again = await run_in_threadpool(lambda: jobs.retry(vault(request), job_id))
    except SkinvaultError as exc:
        return _admin_page(request, info, report=f"Not queued again: {exc}")
    return _admin_page(request, info, report=f"Queued again: the {again.kind} job.")


@router.post("/portal/admin/retention", response_class=HTMLResponse)
async def admin_retention(request: Request) -> Response:
    from skinvault.services.retention import run_retention  # noqa: PLC0415

    info = _admin(request)
    f = await form_fields(request)
    check_csrf(info, f)
    dry = f.get("mode") != "run"
    report = await run_in_threadpool(
        lambda: run_retention(vault(request), actor=info.actor, dry_run=dry)
    )
    verb = "Would shred or remove" if dry else "Shredded or removed"
    return _admin_page(request, info, report=f"{verb} {len(report.actions)} items.")
