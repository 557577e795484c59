"""The photo-versions page: the patient or their clinician checks the face boxes, adds boxes
to cover and chooses the crop area that consent-limited versions are made from."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from skinvault.errors import AccessDenied, NotFound, SkinvaultError
from skinvault.services import photo_store, versions
from skinvault.web.pages.common import (
    check_csrf,
    error_page,
    flash_redirect,
    render,
    signed_in,
    vault,
)

router = APIRouter(include_in_schema=False)


def _page(request: Request, photo_id: str, *, error: str | None = None,
          status: int = 200) -> Response:  # fmt: skip
    info = signed_in(request)
    v = vault(request)
    try:
        markup = versions.get_markup(v, photo_id=photo_id, actor=info.actor)
        stored = photo_store.get_photo(v, photo_id)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    except NotFound as exc:
        return error_page(request, exc, 404)
    unsure = [d for d in markup.detected or () if d.kind in ("face", "text")]
    return render(
        request,
        "photo_versions.html",
        status_code=status,
        info=info,
        photo=stored,
        markup=markup,
        found=unsure,
        added="\n".join(", ".join(str(n) for n in b) for b in markup.added),
        crop=", ".join(str(n) for n in markup.crop) if markup.crop else "",
        error=error,
    )


@router.get("/portal/photos/{photo_id}/versions", response_class=HTMLResponse)
def versions_page(photo_id: str, request: Request) -> Response:
    return _page(request, photo_id)


def _boxes(lines: str) -> list[versions.Box]:
    return [versions.parse_box(line) for line in lines.splitlines() if line.strip()]


@router.post("/portal/photos/{photo_id}/versions", response_class=HTMLResponse)
async def save_versions(photo_id: str, request: Request) -> Response:
    info = signed_in(request)
    form: FormData = await request.form()
    fields = {k: value for k, value in form.items() if isinstance(value, str)}
    check_csrf(info, fields)
    v = vault(request)
    try:
        if fields.get("do") == "detect":
            await run_in_threadpool(
                lambda: versions.detect_now(v, photo_id=photo_id, actor=info.actor)
            )
            text = "The photo was checked for faces and text; the boxes are listed below."
        else:
            added = _boxes(fields.get("added", ""))
            dismissed = [
                versions.parse_box(b) for b in form.getlist("dismiss") if isinstance(b, str)
            ]
            crop_text = fields.get("crop", "").strip()
            crop = versions.parse_box(crop_text) if crop_text else None
            await run_in_threadpool(
                lambda: versions.set_markup(
                    v, photo_id=photo_id, actor=info.actor, added=added, dismissed=dismissed,
                    crop=crop,
                )
            )  # fmt: skip
            text = "Saved. Versions for limited consents will be made with these choices."
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    except SkinvaultError as exc:
        return _page(request, photo_id, error=str(exc), status=422)
    return flash_redirect(f"/portal/photos/{photo_id}/versions", info, text)
