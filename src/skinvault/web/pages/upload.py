"""The patient's upload: the privacy preview of a chosen photo, then the save."""

from __future__ import annotations

import contextlib
from datetime import date

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.background import BackgroundTask

from skinvault.bootstrap import Vault
from skinvault.errors import PhotoError, RequestInvalid, SkinvaultError
from skinvault.photos.findings import CATEGORY_TITLES
from skinvault.policy.decide import PatientAction
from skinvault.services import capture, photos, records, tracking
from skinvault.services.preview import privacy_preview
from skinvault.tracking import sites as body_sites
from skinvault.web.pages.common import check_csrf, error_page, render, signed_in, vault
from skinvault.web.uploads import read_form

router = APIRouter(include_in_schema=False)


@router.post("/portal/preview", response_class=HTMLResponse)
async def preview(request: Request) -> Response:
    """What the scrub will remove, before anything is stored (nothing is kept)."""
    info = signed_in(request)
    v = vault(request)
    fields, files = await read_form(request, v.settings.max_upload_bytes)
    check_csrf(info, fields)
    if "file" not in files:
        return HTMLResponse("<p>Choose a photo first.</p>", status_code=400)
    try:
        found = await run_in_threadpool(
            lambda: privacy_preview(files["file"].data, max_bytes=v.settings.max_upload_bytes)
        )
    except PhotoError as exc:
        return render(
            request,
            "preview.html",
            status_code=422,
            error=str(exc),
            groups={},
            clues=[],
            checklist=[],
        )
    groups: dict[str, list[str]] = {}
    for category, title in CATEGORY_TITLES.items():  # most revealing first
        descriptions = [f.description for f in found.findings if f.category is category]
        if descriptions:
            groups[title] = descriptions
    return render(
        request,
        "preview.html",
        error=None,
        groups=groups,
        clues=found.clues,
        checklist=[item for item in found.checklist if item.found],
    )


@router.post("/portal/upload", response_class=HTMLResponse)
async def upload(request: Request) -> Response:
    info = signed_in(request)
    v = vault(request)
    try:
        fields, files = await read_form(request, v.settings.max_upload_bytes)
        check_csrf(info, fields)
        patient_id = fields.get("patient_id", "")
        if "file" not in files or not files["file"].data:
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
        stored = await run_in_threadpool(
            lambda: photos.store_photo(
                v,
                patient_id=patient_id,
                data=files["file"].data,
                actor=info.actor,
                site=site_code,
                note=fields.get("note", "")[:2000],
                taken_on=taken_on,
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
    # Measured in the background, in-process (the response does not wait for it).
    return RedirectResponse(
        f"/portal/photos/{stored.id}?purpose=care&stored=1",
        status_code=303,
        background=BackgroundTask(_measure_quietly, v, stored.id),
    )


def _date_field(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RequestInvalid("Give the date the photo was taken as a date.") from None


def _measure_quietly(v: Vault, photo_id: str) -> None:
    """The background measurement: a failure is audited by the service, never shown as a 5xx."""
    with contextlib.suppress(SkinvaultError):
        tracking.measure_photo(v, photo_id)
