"""How much of the skin in a photo is depigmented — a measurement aid, not a diagnosis.

Steps (all on pixels handed in, no I/O):

1. Work at <= 1024 px on the long side (shares of area do not depend on resolution).
2. Colour: when a ColorChecker is found (`colour.find_card`), correct to it and leave
   it out of the skin. Without one nothing global is needed: step 4 compares every
   pixel with the person's own skin in the same photo.
3. Where to look: with a drawn region (`region`, minus `exclude`), the region less its
   very dark pixels (hair, deep shadow: luminance under 40 % of the region's 20th
   percentile)
   — the person said it is skin, and a skin-colour rule would drop exactly the pale,
   low-chroma pixels that are depigmented. Without a region, a YCrCb skin-colour rule
   widened to pale pixels, closed, holes filled, small specks dropped.
4. Pigment per pixel, in linear light: c = log(R/B) (melanin absorbs blue more than
   red, so it raises c) and log Y. A change of exposure or shading multiplies R, G, B
   alike and leaves c alone; a change in the colour of the light adds one constant to
   c for every pixel. So the split below, made within the photo, does not move with
   the light.
5. The own skin: Otsu's threshold splits c over the area; the more pigmented class
   is the person's own skin (at most 60 % of a region is expected to be depigmented),
   its medians of c and log Y the reference. A pixel is a candidate when it is both
   less pigmented (c lower by >= 0.2, i.e. R/B down by >= 18 %) and lighter (log Y
   higher by >= 0.05; version 4: 0.1, which lost patches on bright or fair skin, where
   luminance near the top of the range rises little) than that reference; the chroma
   drop is then raised to 60 % of the way to the median of the candidates (their
   borders are soft, and a pixel counts when it has lost most of the difference, not
   the first trace of it). The mask is median-smoothed. Nothing pale enough found: 0.
6. The border test (version 4): a depigmented patch ends in a step — a band just inside
   its border is much paler than a band just outside it — while the paler, less red
   parts of normal skin and broad shine fade out gradually. Each connected part of the
   mask is kept only when the median chroma drop of the band inside its border (4 % of
   the area's side wide) exceeds that of the band outside (own skin, not in the mask) by
   >= 40 % of the inside's drop and >= 0.05. A part with no own skin beside it (it fills
   the area) is kept. This removed most of the false floor on untouched skin (13.5 % ->
   3.3 % on the bench's untouched regions).
7. Overexposed skin is not measured (version 5): where the camera clipped a colour channel,
   R/B there says nothing of the pigment, and a number read from it can be 40-50 points
   off in either direction. A channel is clipped when a share of the skin sits within 3
   levels of that channel's top value while the other channels still vary there (a stuck
   channel, not an evenly coloured area); its top need not be 255, so a clipped photo made
   darker afterwards is still seen. Over :data:`MAX_CLIPPED` of the skin clipped: no
   percentage, a note saying why and what to do (retake in softer light, without flash).
   Measured on the photo as taken, before any colour-card correction mixes the channels.

The thresholds were chosen on the synthetic set of bench/tracking.py (docs/tracking.md,
published draw) and checked on a second draw: they are fitted to that depigmentation
model, not validated on clinical photos.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from skinvault.errors import RegionOutside
from skinvault.tracking import colour

METHOD = "chroma-split-own-skin"
VERSION = "5"
WORK_SIZE = 1024
MIN_CHROMA_DROP = 0.2  # log(R/B) below the own skin's, at least (R/B down by >= 18 %)
MIN_LIGHTER = 0.05  # log Y above the own skin's, at least (>= 5 % more luminance)
SPLIT_AT = 0.6  # of the way from the own skin to the candidates' median drop
BORDER_BAND = 0.04  # width of the bands either side of a part's border, share of the side
MIN_STEP = 0.4  # inside band's drop minus outside band's, at least this share of the inside's
MIN_STEP_ABS = 0.05  # ... and at least this much log(R/B)
DARK_FRACTION = 0.4  # in a drawn region, darker than this share of its 20th percentile: not skin
MAX_CLIPPED = 0.3  # share of the skin with a colour channel clipped, at most, to be measured
CLIP_LEVELS = 3  # within this many 8-bit levels of a channel's top value: at its ceiling
STILL_VARYING = 3.0  # the other channels' spread there, at least (8-bit levels), and 3x its own
NOT_MEASURED = "not measured: "  #: how the note saying why a photo was not measured begins
OVEREXPOSED = (
    NOT_MEASURED + "{share:.0f} % of the skin is overexposed (a colour channel clipped), so its "
    "colour cannot show pigment; take the photo again in softer, even light, without flash"
)

Pixels = NDArray[np.uint8]
Mask = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Measurement:
    skin_percent: float
    depigmented_percent: float | None  #: None: not measured (the notes say why)
    card: dict[str, object] | None
    method: str
    version: str
    notes: list[str] = field(default_factory=list)
    colour_reference: str = "own-skin"

    def as_json(self) -> dict[str, object]:
        return {
            "skin_percent": self.skin_percent,
            "depigmented_percent": self.depigmented_percent,
            "card": self.card,
            "method": f"{self.method}/{self.version} ({self.colour_reference})",
            "notes": self.notes,
        }


def _at_most(bgr: Pixels, side: int) -> tuple[Pixels, float]:
    """``bgr`` shrunk (area averaging) to at most ``side`` px on the long side, and the scale."""
    h, w = bgr.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale == 1.0:
        return bgr, scale
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), dtype=np.uint8), scale


def capture_warning(bgr: Pixels) -> str | None:
    """Before a photo is saved: the sentence to show when its skin is too overexposed to be
    measured (step 7; the skin found by colour, as without a drawn region), else None.
    Looked at <= 512 px on the long side: inside a clipped area averaging keeps the ceiling."""
    bgr, _ = _at_most(bgr, 512)
    skin = skin_mask(bgr)
    if int(skin.sum()) < 200:
        return None
    share = clipped_share(bgr, skin)
    if share <= MAX_CLIPPED:
        return None
    return (
        f"The skin looks overexposed ({100 * share:.0f} % of it too bright for the camera): a "
        "depigmented area cannot be measured on this photo. If you can, take it again in "
        "softer, even light, without flash. You can still save this one."
    )


def not_measured_reason(notes: list[str]) -> str | None:
    """The note saying why a photo was not measured, or None when it was."""
    return next((n for n in notes if n.startswith(NOT_MEASURED)), None)


def _fill_holes(mask: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Background reachable from the border stays; enclosed gaps become skin."""
    padded = np.pad(mask, 1, constant_values=0)
    flood = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, flood, (0, 0), 2)
    return np.asarray(padded[1:-1, 1:-1] != 2, dtype=np.uint8)


def skin_mask(bgr: Pixels) -> Mask:
    ycc = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
    y, cr, cb = ycc[:, :, 0].astype(np.int16), ycc[:, :, 1].astype(np.int16), ycc[:, :, 2]
    rule = (cr >= 133) & (cr <= 180) & (cb >= 70) & (cb <= 130) & (y > 30)
    b, g, r = (bgr[:, :, i].astype(np.int16) for i in range(3))
    pale = (y > 140) & (r >= g) & (r > b + 4) & (cr >= 128) & (r - b < 70)
    m = (rule | pale).astype(np.uint8)
    k = max(3, round(min(bgr.shape[:2]) / 100) | 1)
    m = np.asarray(cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((k, k), np.uint8)), np.uint8)
    m = np.asarray(
        cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((k * 2 + 1, k * 2 + 1), np.uint8)), np.uint8
    )
    m = _fill_holes(m)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    keep = np.zeros(n, bool)
    min_area = 0.01 * m.size
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return np.asarray(keep[labels], dtype=bool)


def _linear(bgr: Pixels) -> NDArray[np.float32]:
    v = bgr.astype(np.float32) / 255.0
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4) + 1e-3
    return np.asarray(cv2.GaussianBlur(lin.astype(np.float32), (0, 0), 1.0), dtype=np.float32)


def pigment(bgr: Pixels) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(c, log Y) per pixel: c = log(R/B) in linear light, a melanin index that light
    strength and shading leave alone; log Y, the log of relative luminance."""
    lin = _linear(bgr)
    b, g, r = lin[:, :, 0], lin[:, :, 1], lin[:, :, 2]
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return np.asarray(np.log(r / b), np.float32), np.asarray(np.log(y), np.float32)


def _otsu(values: NDArray[np.float32], lo: float, hi: float) -> float:
    q = np.clip((values - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8).reshape(-1, 1)
    t, _ = cv2.threshold(q, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return lo + float(t) / 255.0 * (hi - lo)


def _mad(values: NDArray[np.float32]) -> float:
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def _stepped_parts(cand: Mask, drop: NDArray[np.float32], area: Mask, band: int) -> Mask:
    """The connected parts of `cand` whose border is a step, not a slope (step 6)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    h, w = cand.shape
    for i in range(1, n):
        x, y, bw, bh, size = (int(v) for v in stats[i])
        if size < 4:
            continue
        x0, y0 = max(0, x - band - 1), max(0, y - band - 1)
        x1, y1 = min(w, x + bw + band + 1), min(h, y + bh + band + 1)
        part = (labels[y0:y1, x0:x1] == i).astype(np.uint8)
        eroded = cv2.erode(part, disc, borderType=cv2.BORDER_REPLICATE) > 0
        inner = (part > 0) & ~eroded
        outer = (cv2.dilate(part, disc) > 0) & (part == 0)
        outer &= area[y0:y1, x0:x1] & ~cand[y0:y1, x0:x1]
        if int(outer.sum()) < 5:  # no own skin beside it: the split alone decides
            keep[i] = True
            continue
        d = drop[y0:y1, x0:x1]
        inside, outside = float(np.median(d[inner])), float(np.median(d[outer]))
        keep[i] = inside - outside >= max(MIN_STEP_ABS, MIN_STEP * inside)
    return np.asarray(keep[labels], dtype=bool)


def clipped_share(bgr: Pixels, area: Mask) -> float:
    """Share of `area` where one colour channel is stuck at its ceiling (step 7)."""
    pixels = bgr[area].astype(np.float32)
    worst = 0.0
    for k in range(3):
        channel = pixels[:, k]
        at_top = channel >= float(channel.max()) - CLIP_LEVELS
        if int(at_top.sum()) < 20:
            continue
        own = float(channel[at_top].std())
        others = max(float(pixels[at_top, j].std()) for j in range(3) if j != k)
        if others >= STILL_VARYING and others > 3.0 * own:
            worst = max(worst, float(at_top.mean()))
    return worst


def depigmented(bgr: Pixels, area: Mask, notes: list[str]) -> Mask:
    """Pixels of `area` that are depigmented relative to the own skin in `area` (steps 5-6)."""
    c, log_y = pigment(bgr)
    none = np.zeros(area.shape, bool)
    if int(area.sum()) < 200:
        return none
    usable = area & (log_y >= np.percentile(log_y[area], 5))
    cv = c[usable]
    lo, hi = float(np.percentile(cv, 1)), float(np.percentile(cv, 99))
    if hi - lo < MIN_CHROMA_DROP:
        notes.append("one even skin tone found")
        return none
    own = usable & (c >= _otsu(cv, lo, hi))
    c_own, y_own = float(np.median(c[own])), float(np.median(log_y[own]))
    drop = np.asarray(c_own - c, np.float32)
    lighter = (log_y - y_own) > MIN_LIGHTER
    threshold = MIN_CHROMA_DROP
    cand = area & (drop > threshold) & lighter
    if int(cand.sum()) > 20:  # most of the way to the pale pixels found: their border is soft
        threshold = max(threshold, SPLIT_AT * float(np.median(drop[cand])))
        cand = area & (drop > threshold) & lighter
    cand = (cv2.medianBlur(cand.astype(np.uint8) * 255, 5) > 0) & area
    band = max(2, round(BORDER_BAND * float(np.sqrt(area.sum()))))
    return _stepped_parts(cand, drop, area, band)


def _inside(box: tuple[int, int, int, int], w: int, h: int, what: str) -> None:
    """Refuse a box (x, y, w, h in the photo's upright pixels) with no area inside the photo."""
    x, y, bw, bh = box
    if bw <= 0 or bh <= 0 or x < 0 or y < 0 or x >= w or y >= h:
        raise RegionOutside(
            f"{what} {x},{y},{bw},{bh} is not inside the photo ({w} × {h} pixels, x and y "
            "from the top left corner)."
        )


def _region_mask(
    shape: tuple[int, ...], region: tuple[int, int, int, int] | None, scale: float
) -> Mask:
    h, w = shape[:2]
    if region is None:
        return np.ones((h, w), bool)
    x, y, rw, rh = (round(v * scale) for v in region)
    if rw <= 0 or rh <= 0 or x < 0 or y < 0 or x >= w or y >= h:
        raise RegionOutside("the region lies outside the photo")
    m = np.zeros((h, w), bool)
    m[y : min(h, y + rh), x : min(w, x + rw)] = True
    return m


def measure(
    bgr: Pixels,
    region: tuple[int, int, int, int] | None = None,
    exclude: list[tuple[int, int, int, int]] | None = None,
    with_masks: bool = False,
) -> tuple[Measurement, dict[str, Mask]]:
    """Measure one photo (BGR). `region`/`exclude` are x, y, w, h in the photo's pixels."""
    h0, w0 = bgr.shape[:2]
    if region is not None:
        _inside(region, w0, h0, "The region")
    for ex in exclude or []:
        _inside(ex, w0, h0, "The part to leave out")
    img, scale = _at_most(bgr, WORK_SIZE)
    notes: list[str] = []
    roi = _region_mask(img.shape, region, scale)
    for ex in exclude or []:
        roi &= ~_region_mask(img.shape, ex, scale)
    card_json: dict[str, object] | None = None
    ref_kind = "own-skin"
    taken = img  # as the camera recorded it, for the clipping test (step 7)
    found = colour.find_card(img)
    if found is not None:
        card, matrix = found
        img = colour.apply_correction(img, matrix)
        roi &= ~colour.card_mask(img.shape, card)
        card_json = card.as_json()
        ref_kind = "colour-card"
    if region is not None:
        _, log_y = pigment(img)
        inside = log_y[roi]
        floor = float(np.percentile(inside, 20)) + np.log(DARK_FRACTION) if inside.size else 0.0
        skin = roi & (log_y >= floor)
    else:
        skin = skin_mask(img) & roi
    area = int(roi.sum())
    n_skin = int(skin.sum())
    skin_pct = 100.0 * n_skin / area if area else 0.0
    depig = np.zeros(skin.shape, bool)
    if n_skin < 200:
        notes.append(NOT_MEASURED + "too little skin found (draw the region over bare skin)")
        m = Measurement(round(skin_pct, 1), None, card_json, METHOD, VERSION, notes, ref_kind)
        return m, ({"skin": skin, "depigmented": depig} if with_masks else {})
    clipped = clipped_share(taken, skin)
    if clipped > MAX_CLIPPED:
        notes.append(OVEREXPOSED.format(share=100 * clipped))
        m = Measurement(round(skin_pct, 1), None, card_json, METHOD, VERSION, notes, ref_kind)
        return m, ({"skin": skin, "depigmented": depig} if with_masks else {})
    depig = depigmented(img, skin, notes)
    if ref_kind == "own-skin":
        notes.append("compared with the person's own skin in the same photo")
    dep_pct = 100.0 * int(depig.sum()) / n_skin
    m = Measurement(
        round(skin_pct, 1), round(dep_pct, 1), card_json, METHOD, VERSION, notes, ref_kind
    )
    return m, ({"skin": skin, "depigmented": depig} if with_masks else {})
