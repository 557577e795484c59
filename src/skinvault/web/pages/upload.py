"""The patient's upload: the privacy preview of a chosen photo, then the save."""

from __future__ import annotations

import logging
import time
from datetime import date

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from skinvault.errors import PhotoError, RequestInvalid, SkinvaultError, TooLarge
from skinvault.photos.findings import CATEGORY_TITLES, Finding
from skinvault.policy.decide import PatientAction
from skinvault.services import capture, drafts, photo_store, records, tracking
from skinvault.tracking import sites as body_sites
from skinvault.web.pages.common import check_csrf, error_page, render, signed_in, vault
from skinvault.web.uploads import read_form

router = APIRouter(include_in_schema=False)
log = logging.getLogger("skinvault.preview")


def _groups(findings: tuple[Finding, ...]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for category, title in CATEGORY_TITLES.items():  # most revealing first
        descriptions = [f.description for f in findings if f.category is category]
        if descriptions:
            groups[title] = descriptions
    return groups


def _preview_error(request: Request, message: str, status: int) -> Response:
    return render(
        request,
        "preview.html",
        status_code=status,
        error=message,
        draft=None,
        groups={},
        clues=[],
        checklist=[],
    )


@router.post("/portal/preview", response_class=HTMLResponse)
async def preview(request: Request) -> Response:
    """Scrub and analyse the chosen photo once; its result is kept sealed as a draft for
    the save (the file is never sent twice). Returns the preview fragment."""
    info = signed_in(request)
    v = vault(request)
    try:
        fields, files = await read_form(request, v.settings.max_upload_bytes)
    except PhotoError as exc:
        return _preview_error(request, str(exc), 413 if isinstance(exc, TooLarge) else 422)
    check_csrf(info, fields)
    if "file" not in files or not files["file"].data:
        return _preview_error(request, "choose a photo first", 400)
    # The patient's own record unless the form names one (the portal's form does).
    patient_id = fields.get("patient_id", "")
    if not patient_id:
        own = await run_in_threadpool(lambda: records.patient_of_user(v, info.actor.id))
        patient_id = own or ""
    started = time.perf_counter()
    try:
        await run_in_threadpool(records.authorize, v, info.actor, patient_id, PatientAction.UPLOAD)
        draft = await run_in_threadpool(
            lambda: drafts.create_draft(
                v, actor=info.actor, patient_id=patient_id, data=files["file"].data
            )
        )
    except PhotoError as exc:
        return _preview_error(request, str(exc), 422)
    except SkinvaultError as exc:
        return _preview_error(request, str(exc), 403)
    log.info(
        "preview in %.2f s (%s)",
        time.perf_counter() - started,
        ", ".join(f"{k} {s:.2f}" for k, s in draft.timings.items()),
    )
    return render(
        request,
        "preview.html",
        error=None,
        draft=draft,
        groups=_groups(draft.findings),
        clues=list(enumerate(draft.clues)),
        checklist=[item for item in draft.checklist if item.found],
        minutes=int(drafts.DRAFT_LIFETIME.total_seconds() // 60),
        stroke=max(2, round(max(draft.size) / 320)),
    )


@router.get("/portal/drafts/{draft_id}/display")
def draft_display(draft_id: str, request: Request) -> Response:
    """The downscaled, scrubbed picture of the person's own live preview."""
    info = signed_in(request)
    try:
        jpeg = drafts.display_image(vault(request), actor=info.actor, draft_id=draft_id)
    except SkinvaultError as exc:
        return Response(str(exc), status_code=404, media_type="text/plain")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


def _covers(fields: dict[str, str]) -> list[drafts.Box]:
    """Boxes ticked in the preview (``cover_*``) and one typed in (``add_x`` … ``add_h``)."""
    covers = [drafts.parse_box(value) for key, value in sorted(fields.items())
              if key.startswith("cover_") and value]  # fmt: skip
    typed = [fields.get(f"add_{k}", "").strip() for k in "xywh"]
    if all(typed):
        covers.append(drafts.parse_box(",".join(typed)))
    return covers


def _crop(fields: dict[str, str]) -> drafts.Box | None:
    typed = [fields.get(f"crop_{k}", "").strip() for k in "xywh"]
    if not any(typed):
        return None
    if not all(typed):
        raise RequestInvalid("Give all four numbers of the crop (x, y, width, height), or none.")
    return drafts.parse_box(",".join(typed))


@router.post("/portal/upload", response_class=HTMLResponse)
async def upload(request: Request) -> Response:
    info = signed_in(request)
    v = vault(request)
    try:
        fields, files = await read_form(request, v.settings.max_upload_bytes)
        check_csrf(info, fields)
        patient_id = fields.get("patient_id", "")
        draft_id = fields.get("draft_id", "")
        if not draft_id and ("file" not in files or not files["file"].data):
            raise PhotoError("choose a photo to upload")
        await run_in_threadpool(records.authorize, v, info.actor, patient_id, PatientAction.UPLOAD)
        if not fields.get("site"):  # no default site: the person chooses one
            raise RequestInvalid("Choose where on the body the photo was taken.")
        site_code = body_sites.from_legacy(fields["site"]).code  # old names still accepted
        taken_on = _date_field(fields.get("taken_on", ""))
        details = tracking.check_details(
            fields.get("treatment", "")[:500],
            fields.get("lighting", ""),
            fields.get("distance", ""),
            {"yes": True, "no": False}.get(fields.get("card", "")),
        )
        if draft_id:  # the previewed photo, with the person's covers and crop
            covers, crop = _covers(fields), _crop(fields)
            stored = await run_in_threadpool(
                lambda: drafts.save_draft(
                    v,
                    actor=info.actor,
                    draft_id=draft_id,
                    covers=covers,
                    crop=crop,
                    site=site_code,
                    note=fields.get("note", "")[:2000],
                    taken_on=taken_on,
                )
            )
        else:  # without the script: the file itself, as before
            data = files["file"].data
            try:
                phash: str | None = drafts.phash_of(data)
            except PhotoError:
                phash = None  # store_photo refuses the file and audits the refusal
            stored = await run_in_threadpool(
                lambda: photo_store.store_photo(
                    v,
                    patient_id=patient_id,
                    data=data,
                    actor=info.actor,
                    site=site_code,
                    note=fields.get("note", "")[:2000],
                    taken_on=taken_on,
                    phash=phash,
                )
            )
        if details != tracking.CaptureDetails():
            await run_in_threadpool(
                lambda: tracking.annotate(v, actor=info.actor, photo_id=stored.id, details=details)
            )
        if fields.get("request_id"):
            await run_in_threadpool(
                lambda: capture.fulfil(v, request_id=fields["request_id"], photo_id=stored.id)
            )
    except SkinvaultError as exc:
        bad_input = isinstance(exc, PhotoError | RequestInvalid)
        return error_page(request, exc, 422 if bad_input else 403)
    return RedirectResponse(f"/portal/photos/{stored.id}?purpose=care&stored=1", status_code=303)


def _date_field(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RequestInvalid("Give the date the photo was taken as a date.") from None
