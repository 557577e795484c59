"""Progress tracking pages: body map, a site's series and chart, aligned comparison.

    GET  /portal/body-map[?patient_id=]                 the figure, front and back
    GET  /portal/sites/{code}[?patient_id=]             the site's series, chart, compare form
    GET  /portal/sites/{code}/compare?a=&b=             two dates aligned (overlay, swipe)
    GET  /portal/sites/{code}/latest.jpg[?patient_id=]  last photo's thumbnail (capture ghost)
    POST /portal/photos/{id}/capture                    correct date / details
    POST /portal/photos/{id}/measure                    measure again inside a region

A patient sees their own record; the care team passes ``patient_id``. Every
decision is the services'; the pages only render. The figure is drawn here from
the site vocabulary (no photo of a person); the chart is server-rendered SVG.
"""

from __future__ import annotations

import base64
from datetime import date
from html import escape

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from skinvault.actors import Role
from skinvault.errors import AccessDenied, NotFound, RegionOutside, RequestInvalid, SkinvaultError
from skinvault.services import photo_reads, records, tracking
from skinvault.tracking import sites as body_sites
from skinvault.web.pages.common import (
    check_csrf,
    error_page,
    form_fields,
    render,
    signed_in,
    vault,
)

router = APIRouter(include_in_schema=False)

# Shapes on a 200 x 330 figure for the patient's RIGHT side (or the midline) in the FRONT
# view, where the patient's right is on the viewer's left. ("e", cx, cy, rx, ry) or
# ("r", x, y, w, h). Paired regions are mirrored for the left; the back view mirrors x.
_FRONT: dict[str, tuple[str, float, float, float, float]] = {
    "face": ("e", 100, 40, 19, 22),
    "forehead": ("e", 100, 24, 14, 6),
    "eyelid": ("e", 92, 34, 5, 3),
    "cheek": ("e", 89, 45, 5, 6),
    "nose": ("e", 100, 43, 3, 6),
    "lips": ("e", 100, 53, 7, 3),
    "chin": ("e", 100, 59, 6, 3),
    "ear": ("e", 79, 40, 3, 7),
    "neck": ("r", 90, 63, 20, 12),
    "chest": ("r", 70, 76, 60, 32),
    "breast": ("e", 86, 98, 10, 7),
    "axilla": ("e", 67, 84, 4, 6),
    "abdomen": ("r", 73, 109, 54, 36),
    "umbilicus": ("e", 100, 128, 3, 3),
    "groin": ("r", 76, 146, 16, 10),
    "genital-area": ("r", 93, 146, 14, 14),
    "upper-arm": ("r", 50, 78, 15, 44),
    "elbow-front": ("r", 48, 123, 15, 10),
    "forearm": ("r", 46, 134, 15, 40),
    "palm": ("r", 43, 175, 19, 20),
    "fingers": ("r", 43, 196, 19, 14),
    "thigh": ("r", 74, 161, 25, 62),
    "knee": ("r", 76, 224, 21, 14),
    "shin": ("r", 77, 239, 19, 62),
    "foot": ("r", 73, 302, 23, 10),
    "toes": ("r", 73, 313, 23, 7),
}
_BACK: dict[str, tuple[str, float, float, float, float]] = {
    "scalp": ("e", 100, 38, 19, 24),
    "neck-back": ("r", 90, 63, 20, 12),
    "upper-back": ("r", 70, 76, 60, 36),
    "lower-back": ("r", 73, 113, 54, 32),
    "buttock": ("r", 74, 146, 25, 24),
    "perineum": ("r", 97, 168, 6, 6),
    "upper-arm-back": ("r", 50, 78, 15, 44),
    "elbow": ("r", 48, 123, 15, 10),
    "forearm-back": ("r", 46, 134, 15, 40),
    "hand-back": ("r", 43, 175, 19, 33),
    "thigh-back": ("r", 74, 172, 25, 51),
    "knee-back": ("r", 76, 224, 21, 14),
    "calf": ("r", 77, 239, 19, 62),
    "heel": ("r", 77, 302, 19, 12),
}


def _shape(kind: str, a: float, b: float, c: float, d: float, *, mirror: bool) -> str:
    if kind == "e":
        cx = 200 - a if mirror else a
        return f'<ellipse cx="{cx:g}" cy="{b:g}" rx="{c:g}" ry="{d:g}"/>'
    x = 200 - a - c if mirror else a
    return f'<rect x="{x:g}" y="{b:g}" width="{c:g}" height="{d:g}" rx="4"/>'


def body_map_svg(view: str, counts: dict[str, int], mode: str, patient_q: str = "") -> Markup:
    """One view of the figure; regions link to their series ("open") or pick a site ("pick")."""
    table = _FRONT if view == "front" else _BACK
    parts = [
        f'<svg class="bodymap" viewBox="0 0 200 330" role="group" '
        f'aria-label="Body map, {view}" data-view="{view}">',
        f"<title>Body map, {view} view</title>",
    ]
    for site in body_sites.SITES.values():
        geo = table.get(site.region)
        if geo is None:
            continue
        # Front: patient's left on the viewer's right (mirror). Back: the other way round.
        mirror = (site.laterality == "left") if view == "front" else (site.laterality != "left")
        if site.laterality is None:
            mirror = False
        n = counts.get(site.code, 0)
        label = f"{site.label}" + (f", {n} photo{'s' if n != 1 else ''}" if n else "")
        cls = "region has" if n else "region"
        href = f"/portal/sites/{site.code}{patient_q}" if mode == "open" else "#site"
        parts.append(
            f'<a href="{escape(href)}" class="{cls}" data-site="{site.code}" '
            f'aria-label="{escape(label)}"><title>{escape(label)}</title>'
            f"{_shape(*geo, mirror=mirror)}</a>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (built here; every text part escaped)


def chart_svg(entries: list[tracking.SeriesEntry]) -> Markup | None:
    """Depigmented share over time as a small SVG line chart; None with fewer than one point."""
    pts = [
        (e.taken_on, e.measurement.depigmented_percent)
        for e in entries
        if e.measurement and e.measurement.depigmented_percent is not None
    ]
    if not pts:
        return None
    w, h, left, bottom = 320, 160, 34, 24
    first, last = pts[0][0], pts[-1][0]
    span = max(1, (last - first).days)
    top = max(10.0, max(v for _, v in pts) * 1.2)

    def xy(d: date, v: float) -> tuple[float, float]:
        x = left + (w - left - 10) * ((d - first).days / span if len(pts) > 1 else 0.5)
        y = (h - bottom) - (h - bottom - 10) * (v / top)
        return x, y

    coords = [xy(d, v) for d, v in pts]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    out = [
        f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-labelledby="chart-t chart-d">',
        '<title id="chart-t">Depigmented share of the skin over time (measurement aid)</title>',
        '<desc id="chart-d">'
        + escape("; ".join(f"{d:%d %b %Y}: {v:.1f} %" for d, v in pts))
        + "</desc>",
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - 5}" y2="{h - bottom}" class="axis"/>',
        f'<line x1="{left}" y1="5" x2="{left}" y2="{h - bottom}" class="axis"/>',
        f'<text x="2" y="14" class="tick">{top:.0f} %</text>',
        f'<text x="2" y="{h - bottom}" class="tick">0 %</text>',
    ]
    if len(pts) == 1:  # the one date under its point, in the middle
        out.append(
            f'<text x="{coords[0][0]:.1f}" y="{h - 6}" class="tick" text-anchor="middle">'
            f"{first:%d %b %Y}</text>"
        )
    else:
        out.append(f'<text x="{left}" y="{h - 6}" class="tick">{first:%d %b %Y}</text>')
    if len(pts) > 1:
        out.append(f'<text x="{w - 90}" y="{h - 6}" class="tick">{last:%d %b %Y}</text>')
        out.append(f'<polyline points="{line}" class="series"/>')
    out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" class="point"/>' for x, y in coords]
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704  (built here; every text part escaped)


def _patient(request: Request, patient_id: str | None) -> tuple[str, str]:
    """(patient id, query suffix) for the signed-in patient or the care team's chosen one."""
    info = signed_in(request)
    if info.actor.role is Role.PATIENT:
        own = records.patient_of_user(vault(request), info.actor.id)
        if own is None:
            raise AccessDenied("This page is for patients: it shows a patient's own record.")
        return own, ""
    if not patient_id:
        raise NotFound("choose a patient first")
    return patient_id, f"?patient_id={patient_id}"


@router.get("/portal/body-map", response_class=HTMLResponse)
def body_map_page(request: Request, patient_id: str | None = None) -> Response:
    info = signed_in(request)
    v = vault(request)
    try:
        pid, q = _patient(request, patient_id)
        summary = tracking.body_map(v, actor=info.actor, patient_id=pid)
    except SkinvaultError as exc:
        return error_page(request, exc, 404 if isinstance(exc, NotFound) else 403)
    counts = {code: s.photos for code, s in summary.items()}
    due = tracking.due_sites(summary, v.clock.now().date())
    return render(
        request,
        "body_map.html",
        info=info,
        front=body_map_svg("front", counts, "open", q),
        back=body_map_svg("back", counts, "open", q),
        summary=sorted(summary.values(), key=lambda s: s.site.label),
        due=due,
        q=q,
    )


@router.get("/portal/sites/{code}", response_class=HTMLResponse)
def series_page(request: Request, code: str, patient_id: str | None = None) -> Response:
    info = signed_in(request)
    v = vault(request)
    try:
        pid, q = _patient(request, patient_id)
        site = body_sites.get(code) if body_sites.is_site(code) else None
        if site is None:
            raise NotFound(f"there is no body site {code!r}")
        entries = tracking.series(v, actor=info.actor, patient_id=pid, site=code)
    except SkinvaultError as exc:
        return error_page(request, exc, 404 if isinstance(exc, NotFound) else 403)
    due = entries[-1].taken_on + tracking.REMIND_AFTER if entries else None
    return render(
        request,
        "site_series.html",
        info=info,
        site=site,
        entries=entries,
        chart=chart_svg(entries),
        q=q,
        due=due,
        lighting=tracking.LIGHTING,
        distance=tracking.DISTANCE,
        disclaimer=tracking.DISCLAIMER,
    )


@router.get("/portal/sites/{code}/compare", response_class=HTMLResponse)
async def compare_page(
    request: Request, code: str, a: str, b: str, patient_id: str | None = None
) -> Response:
    info = signed_in(request)
    v = vault(request)
    try:
        _, q = _patient(request, patient_id)
        got = await run_in_threadpool(
            lambda: tracking.compare(v, actor=info.actor, reference_id=a, moving_id=b)
        )
        ref = photo_reads.describe_photo(v, photo_id=a, actor=info.actor, purpose="care")
        mov = photo_reads.describe_photo(v, photo_id=b, actor=info.actor, purpose="care")
    except SkinvaultError as exc:
        status = 422 if isinstance(exc, RequestInvalid) else 403
        return error_page(request, exc, 404 if isinstance(exc, NotFound) else status)
    aligned = (
        "data:image/jpeg;base64," + base64.b64encode(got.aligned_jpeg).decode("ascii")
        if got.aligned_jpeg
        else None
    )
    return render(
        request,
        "site_compare.html",
        info=info,
        site=body_sites.get(code) if body_sites.is_site(code) else None,
        ref=ref,
        mov=mov,
        got=got,
        aligned=aligned,
        q=q,
    )


@router.get("/portal/sites/{code}/latest.jpg")
def latest_thumbnail(request: Request, code: str, patient_id: str | None = None) -> Response:
    """The last photo of the site, for the faded guide on the capture form (404 when none)."""
    info = signed_in(request)
    v = vault(request)
    try:
        pid, _ = _patient(request, patient_id)
        photo_id = tracking.earlier_photo(v, actor=info.actor, patient_id=pid, site=code)
        if photo_id is None:
            return Response(status_code=404)
        got = photo_reads.read_thumbnail(v, photo_id=photo_id, actor=info.actor, purpose="care")
    except AccessDenied:
        return Response(status_code=403)
    except NotFound:
        return Response(status_code=404)
    return Response(got.data, media_type=got.media_type, headers={"Cache-Control": "no-store"})


def _back(request: Request, fields: dict[str, str]) -> str:
    target = fields.get("back", "/portal")
    return target if target.startswith("/portal/") else "/portal"


@router.post("/portal/photos/{photo_id}/capture", response_class=HTMLResponse)
async def capture_details(request: Request, photo_id: str) -> Response:
    info = signed_in(request)
    v = vault(request)
    fields = await form_fields(request)
    try:
        check_csrf(info, fields)
        taken = fields.get("taken_on") or ""
        try:
            taken_on = date.fromisoformat(taken) if taken else None
        except ValueError:
            raise RequestInvalid("Give the capture date as a date.") from None
        card_text = fields.get("card", "")
        details = tracking.check_details(
            fields.get("treatment", "")[:500],
            fields.get("lighting", ""),
            fields.get("distance", ""),
            {"yes": True, "no": False}.get(card_text),
        )
        await run_in_threadpool(
            lambda: tracking.annotate(
                v, actor=info.actor, photo_id=photo_id, taken_on=taken_on, details=details
            )
        )
    except SkinvaultError as exc:
        return error_page(request, exc, 422 if isinstance(exc, RequestInvalid) else 403)
    return RedirectResponse(_back(request, fields), status_code=303)


@router.post("/portal/photos/{photo_id}/measure", response_class=HTMLResponse)
async def measure_again(request: Request, photo_id: str) -> Response:
    """Measure inside a region the clinician or patient drew or typed (x, y, w, h in the
    photo's pixels), leaving out the parts they marked (hair, clothing, background)."""
    info = signed_in(request)
    v = vault(request)
    fields = await form_fields(request)
    try:
        check_csrf(info, fields)
        try:
            box = tuple(int(fields.get(k, "") or -1) for k in ("x", "y", "w", "h"))
        except ValueError:
            raise RequestInvalid("Give the region as whole pixel numbers.") from None
        region = None if box == (-1, -1, -1, -1) else box
        if region is not None and (min(region) < 0 or region[2] == 0 or region[3] == 0):
            raise RequestInvalid("The region needs x, y of 0 or more and a width and height.")
        exclude = parse_boxes(fields.get("exclude", ""))
        await run_in_threadpool(
            lambda: tracking.measure_photo(
                v,
                photo_id,
                actor=info.actor,
                region=region,  # type: ignore[arg-type]
                exclude=exclude,
            )
        )
    except SkinvaultError as exc:
        invalid = isinstance(exc, RequestInvalid | RegionOutside)
        return error_page(request, exc, 422 if invalid else 403)
    return RedirectResponse(_back(request, fields), status_code=303)


def parse_boxes(text: str) -> list[tuple[int, int, int, int]]:
    """The parts to leave out: one box a line, "x, y, w, h" in the photo's pixels."""
    boxes: list[tuple[int, int, int, int]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.replace(",", " ").split()
        try:
            x, y, w, h = (int(p) for p in parts)
        except ValueError:
            raise RequestInvalid(
                f"Line {n} of the parts to leave out should be four whole numbers: x, y, w, h."
            ) from None
        if min(x, y) < 0 or w <= 0 or h <= 0:
            raise RequestInvalid(
                f"Line {n} of the parts to leave out needs x, y of 0 or more "
                "and a width and height."
            )
        boxes.append((x, y, w, h))
    return boxes
