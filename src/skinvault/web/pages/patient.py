"""A patient's own pages: home with upload and preview, consents, history, sent log, deletion."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from skinvault.actors import Role
from skinvault.bootstrap import Vault
from skinvault.errors import AccessDenied, RequestInvalid, SkinvaultError
from skinvault.policy.decide import PatientAction
from skinvault.policy.purposes import PURPOSE_TEXTS, Purpose, Scope
from skinvault.services import (
    capture,
    consents,
    deletion,
    history,
    photo_store,
    records,
    sharing,
    tracking,
)
from skinvault.services.preview import CHECKLIST
from skinvault.services.web_sessions import SessionInfo
from skinvault.tracking import sites as body_sites
from skinvault.web.links import outward_url
from skinvault.web.pages.common import (
    BODY_SITES,
    check_csrf,
    error_page,
    flash_redirect,
    form_fields,
    own_record,
    render,
    signed_in,
    vault,
)
from skinvault.web.pages.tracking import body_map_svg

router = APIRouter(include_in_schema=False)


def by_site(
    found: list[photo_store.StoredPhoto],
) -> list[tuple[str | None, list[photo_store.StoredPhoto]]]:
    """Photos grouped by body site, sites in name order, photos without a site last."""
    groups: dict[str | None, list[photo_store.StoredPhoto]] = {}
    for photo in found:
        groups.setdefault(photo.site, []).append(photo)
    return sorted(groups.items(), key=lambda item: (item[0] is None, item[0] or ""))

# -- the portal -------------------------------------------------------------------------------


@router.get("/portal", response_class=HTMLResponse)
def portal(request: Request) -> Response:
    info = signed_in(request)
    v, actor = vault(request), info.actor
    if actor.role is Role.PATIENT:
        patient_id = records.patient_of_user(v, actor.id)
        assert patient_id is not None
        mine = records.list_photos(v, actor=actor, patient_id=patient_id)
        asked = capture.open_requests(v, actor=actor, patient_id=patient_id)
        summary = tracking.body_map(v, actor=actor, patient_id=patient_id)
        chosen = request.query_params.get("site", "")
        return render(
            request,
            "patient_home.html",
            info=info,
            photos=mine,
            timeline=by_site(mine),
            sites=BODY_SITES,
            site_choices=body_sites.choices(),
            picker_front=body_map_svg("front", {}, "pick"),
            picker_back=body_map_svg("back", {}, "pick"),
            lighting=tracking.LIGHTING,
            distance=tracking.DISTANCE,
            checklist=CHECKLIST,
            patient_id=patient_id,
            asked=asked,
            due=tracking.due_sites(summary, v.clock.now().date()),
            chosen_site=chosen if body_sites.is_site(chosen) else "",
        )
    if actor.role in (Role.CLINICIAN, Role.STAFF):
        return render(
            request, "clinician_home.html", info=info, patients=records.patients_of(v, actor.id)
        )
    if actor.role is Role.ADMIN:
        return RedirectResponse("/portal/admin", status_code=303)
    return RedirectResponse("/portal/library", status_code=303)


@router.get("/portal/consents", response_class=HTMLResponse)
def consents_page(request: Request) -> Response:
    info = signed_in(request)
    v = vault(request)
    try:
        patient_id = own_record(request, info, PatientAction.MANAGE_CONSENT)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    current = consents.consents_for(v, patient_id)
    now = v.clock.now()
    rows = [
        {
            "purpose": p,
            "text": PURPOSE_TEXTS[p],
            "view": current.get(p),
            "on": bool(current.get(p) and current[p].in_force(now)),
            # the limits in force, shown as ticked boxes and in words
            "scopes": current[p].scopes if p in current and current[p].granted else frozenset(),
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
        scope_words=consents.SCOPE_WORDS,
        scope_meanings=consents.SCOPE_MEANINGS,
        limits_text=consents.limits_text,
        care=PURPOSE_TEXTS[Purpose.CARE],
    )


@router.post("/portal/consents/{purpose}", response_class=HTMLResponse)
async def set_consent(purpose: Purpose, request: Request) -> Response:
    info = signed_in(request)
    form = await request.form()
    f = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(info, f)
    v = vault(request)
    try:
        patient_id = own_record(request, info, PatientAction.MANAGE_CONSENT)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
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
        return error_page(request, exc, 400)
    granted = f.get("answer") == "yes"
    answer = f"Yes, {consents.limits_text(scopes)}" if granted else "No"
    title = PURPOSE_TEXTS[purpose].title
    return flash_redirect("/portal/consents", info, f"Saved: {title} is now “{answer}”.")


@router.get("/portal/consents/{purpose}/receipt", response_class=HTMLResponse)
def consent_receipt(purpose: Purpose, request: Request) -> Response:
    info = signed_in(request)
    v = vault(request)
    patient_id = records.patient_of_user(v, info.actor.id)
    view = consents.consents_for(v, patient_id).get(purpose) if patient_id else None
    if view is None:
        return error_page(request, AccessDenied("No answer has been recorded yet."), 404)
    return render(
        request,
        "consent_receipt.html",
        info=info,
        view=view,
        text=PURPOSE_TEXTS[purpose],
        data=consents.receipt(view),
    )


@router.get("/portal/history", response_class=HTMLResponse)
def history_page(request: Request) -> Response:
    info = signed_in(request)
    v = vault(request)
    try:
        patient_id = own_record(request, info, PatientAction.READ_HISTORY)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    entries = history.access_history(v, patient_id)
    return render(
        request,
        "history.html",
        info=info,
        visits=history.visits(entries),
        events=list(reversed(entries)),
        full=request.query_params.get("full") == "1",
    )


@router.get("/portal/sent", response_class=HTMLResponse)
def sent_page(request: Request) -> Response:
    info = signed_in(request)
    v = vault(request)
    try:
        patient_id = own_record(request, info, PatientAction.READ_SENT)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    return render(
        request,
        "sent.html",
        info=info,
        entries=sharing.sent_log(v, patient_id),
        by_id=_photos_by_id(v, info, patient_id),
    )


def _photos_by_id(
    v: Vault, info: SessionInfo, patient_id: str
) -> dict[str, photo_store.StoredPhoto]:
    """The patient's photos by id, so a list of links or requests can say which photo."""
    return {p.id: p for p in records.list_photos(v, actor=info.actor, patient_id=patient_id)}


@router.post("/portal/share-links/{link_id}/revoke")
async def revoke_link(link_id: str, request: Request) -> Response:
    info = signed_in(request)
    f = await form_fields(request)
    check_csrf(info, f)
    await run_in_threadpool(
        lambda: sharing.revoke_share_link(vault(request), link_id=link_id, actor=info.actor)
    )
    return RedirectResponse("/portal/sent", status_code=303)


@router.post("/portal/share-links/{link_id}/reissue", response_class=HTMLResponse)
async def reissue_link(link_id: str, request: Request) -> Response:
    """A new link in place of a locked or expired one; its address is shown once, here."""
    info = signed_in(request)
    f = await form_fields(request)
    check_csrf(info, f)
    v = vault(request)
    try:
        patient_id = own_record(request, info, PatientAction.READ_SENT)
        made = await run_in_threadpool(
            lambda: sharing.reissue_share_link(v, link_id=link_id, actor=info.actor)
        )
    except SkinvaultError as exc:
        return error_page(request, exc, 403 if isinstance(exc, AccessDenied) else 400)
    entries = await run_in_threadpool(sharing.sent_log, v, patient_id)
    [recipient] = [e.recipient for e in entries if e.link_id == made.id]
    reissued = {
        "url": outward_url(request, f"/s/{made.token}"),
        "recipient": recipient,
        "expires_at": made.expires_at,
    }
    return render(
        request,
        "sent.html",
        info=info,
        entries=entries,
        reissued=reissued,
        by_id=_photos_by_id(v, info, patient_id),
    )


@router.get("/portal/deletion", response_class=HTMLResponse)
def deletion_page(request: Request) -> Response:
    info = signed_in(request)
    v = vault(request)
    try:
        patient_id = own_record(request, info, PatientAction.REQUEST_DELETION)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    mine = records.list_photos(v, actor=info.actor, patient_id=patient_id)
    return render(
        request,
        "deletion.html",
        info=info,
        requests=deletion.requests_for(v, patient_id),
        photos=mine,
        by_id={p.id: p for p in mine},
        my_sites=[code for code in body_sites.SITES if code in {p.site for p in mine}],
    )


@router.post("/portal/deletion", response_class=HTMLResponse)
async def file_deletion(request: Request) -> Response:
    info = signed_in(request)
    f = await form_fields(request)
    check_csrf(info, f)
    v = vault(request)
    try:
        patient_id = own_record(request, info, PatientAction.REQUEST_DELETION)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    try:
        if not f.get("scope"):  # never a default: "all my photos" is chosen, not assumed
            raise RequestInvalid("choose what should be deleted: one photo, one site or all")
        scope = deletion.DeletionScope(f["scope"])
        ref = {"photo": f.get("photo_ref"), "series": f.get("site_ref")}.get(scope.value)
        await run_in_threadpool(
            lambda: deletion.file_request(
                v,
                patient_id=patient_id,
                scope=scope,
                scope_ref=ref or f.get("scope_ref") or None,
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
    return flash_redirect(
        "/portal/deletion",
        info,
        "Your request is sent. The privacy team decides it and you will read the outcome here.",
    )
