"""How much of the skin in a photo is depigmented — a measurement aid, not a diagnosis.

Steps (all on pixels handed in):

1. Work at <= 1024 px on the long side (shares of area do not depend on resolution).
2. Colour: when a ColorChecker is found (`colour.find_card`), correct to it and leave
   it out of the skin; otherwise normalise against the person's own unaffected skin
   (step 4), which cancels the colour of the light.
3. Skin: YCrCb skin-colour rule, widened to pale, low-chroma warm pixels (where
   depigmented skin falls), closed, holes filled, small specks dropped; intersected
   with the region of interest and minus any excluded areas.
4. Pigment index per pixel: f = log(R/B) of the sRGB values. A change of exposure
   or shading multiplies R and B alike and leaves f alone; a change of light colour
   adds a constant to f, which subtracting the own-skin reference removes.
   Melanin raises f; depigmented skin (milky white) has f near that of white.
   The reference is the most pigmented large peak of the f histogram among the skin
   that is not among its darkest fifth (hair, shadow, moles are left out).
5. A skin pixel is depigmented when f is below halfway between the reference and
   white (f_white) and it is not darker than the reference skin; the mask is
   median-smoothed. When the reference is too close to white for the two to be told
   apart, the result says so in `notes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from skinvault.errors import RegionOutside
from skinvault.tracking import colour

METHOD = "chroma-own-skin"
VERSION = "2"
WORK_SIZE = 1024
F_WHITE = 0.10  # pigment index of fully depigmented skin under neutral light
MIN_CONTRAST = 0.10
MAX_RATIO = 0.6  # depigmented skin has at most this share of the reference's chroma

Pixels = NDArray[np.uint8]
Mask = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Measurement:
    skin_percent: float
    depigmented_percent: float
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


def pigment_index(bgr: Pixels) -> NDArray[np.float32]:
    b = bgr[:, :, 0].astype(np.float32) + 4.0
    r = bgr[:, :, 2].astype(np.float32) + 4.0
    return np.asarray(np.log(r / b), dtype=np.float32)


def saturation(bgr: Pixels) -> NDArray[np.float32]:
    """CIELAB chroma over lightness, C*/L*: unchanged by exposure and shading, low where
    melanin is gone (depigmented skin is near white), high on lips and in tanned skin."""
    lab = cv2.cvtColor(bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)
    chroma = np.sqrt(lab[:, :, 1] ** 2 + lab[:, :, 2] ** 2)
    return np.asarray(chroma / np.maximum(lab[:, :, 0], 5.0), dtype=np.float32)


CANONICAL_SKIN = np.array([125.0, 150.0, 200.0])  # BGR the own unaffected skin is mapped to


def normalise_to_own_skin(bgr: Pixels, skin: Mask) -> Pixels:
    """Per-channel gains that map the person's unaffected skin to one canonical colour.

    The unaffected skin is the more saturated class of an Otsu split of C*/L* over the
    skin (or all of it when it does not split): melanin makes skin more saturated,
    and a change in the colour or strength of the light then cancels out.
    """
    s = saturation(bgr)[skin]
    if s.size < 200:
        return bgr
    lo, hi = float(np.percentile(s, 1)), float(np.percentile(s, 99))
    ref = skin.copy()
    if hi - lo > 0.05:
        t = _otsu(s, lo, hi)
        ref = skin & (saturation(bgr) >= t)
    pix = bgr[ref].astype(np.float64)
    if pix.shape[0] < 100:
        return bgr
    gains = CANONICAL_SKIN / np.maximum(np.median(pix, axis=0), 1.0)
    out = np.clip(bgr.astype(np.float64) * gains, 0, 255)
    return np.asarray(out.round(), dtype=np.uint8)


def _reference(f: NDArray[np.float32], lum: NDArray[np.float32]) -> float:
    lo = np.percentile(lum, 20)
    cand = f[lum >= lo]
    if cand.size < 50:
        cand = f
    hist, edges = np.histogram(cand, bins=96, range=(-0.3, 1.5))
    smooth = np.convolve(hist, np.ones(5) / 5, mode="same")
    total = smooth.sum()
    peaks = [
        i
        for i in range(1, len(smooth) - 1)
        if smooth[i] >= smooth[i - 1] and smooth[i] >= smooth[i + 1] and smooth[i] > 0
    ]
    big = []
    for i in peaks:
        # mass of the peak's basin (+-6 bins)
        mass = smooth[max(0, i - 6) : i + 7].sum() / total
        if mass >= 0.2:
            big.append(i)
    i = max(big) if big else int(np.argmax(smooth))
    return float((edges[i] + edges[i + 1]) / 2)


def _otsu(values: NDArray[np.float32], lo: float, hi: float) -> float:
    q = np.clip((values - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8).reshape(-1, 1)
    t, _ = cv2.threshold(q, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return lo + float(t) / 255.0 * (hi - lo)


def _split(f: NDArray[np.float32], lum: NDArray[np.float32], skin: Mask, notes: list[str]) -> Mask:
    """Depigmented pixels: the lighter, less pigmented of two skin classes, if there are two.

    Very dark skin pixels (hair, shadow, moles: more than 15 L* below the median) take
    no part in finding the classes. The own unaffected skin is the more pigmented class;
    the split is kept only when the classes differ enough in pigment index (>= 0.10)
    and the less pigmented one is lighter (>= 4 L*), as depigmented skin is.
    """
    med_l = float(np.median(lum[skin]))
    usable = skin & (lum > med_l - 15.0)
    fv = f[usable]
    if fv.size < 200:
        return np.zeros(skin.shape, bool)
    lo, hi = float(np.percentile(fv, 0.5)), float(np.percentile(fv, 99.5))
    if hi - lo < MIN_CONTRAST:
        notes.append("one even skin tone found")
        return np.zeros(skin.shape, bool)
    t = _otsu(fv, lo, hi)
    lower = fv < t
    if lower.all() or not lower.any():
        return np.zeros(skin.shape, bool)
    f_lo, f_hi = float(np.median(fv[lower])), float(np.median(fv[~lower]))
    lv = lum[usable]
    l_lo, l_hi = float(np.median(lv[lower])), float(np.median(lv[~lower]))
    if f_hi - f_lo < MIN_CONTRAST or f_lo > MAX_RATIO * f_hi or l_lo - l_hi < 4.0:
        notes.append("no second, lighter and less pigmented skin tone found")
        return np.zeros(skin.shape, bool)
    threshold = (f_lo + f_hi) / 2.0
    cand = skin & (f < threshold) & (lum > l_hi - 20.0)
    return np.asarray(cv2.medianBlur(cand.astype(np.uint8) * 255, 5) > 0, dtype=bool) & skin


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
    scale = min(1.0, WORK_SIZE / max(h0, w0))
    img = bgr
    if scale < 1.0:
        size = (round(w0 * scale), round(h0 * scale))
        img = np.asarray(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    notes: list[str] = []
    roi = _region_mask(img.shape, region, scale)
    for ex in exclude or []:
        roi &= ~_region_mask(img.shape, ex, scale)
    card_json: dict[str, object] | None = None
    ref_kind = "own-skin"
    found = colour.find_card(img)
    if found is not None:
        card, matrix = found
        img = colour.apply_correction(img, matrix)
        roi &= ~colour.card_mask(img.shape, card)
        card_json = card.as_json()
        ref_kind = "colour-card"
    skin = skin_mask(img) & roi
    area = int(roi.sum())
    n_skin = int(skin.sum())
    skin_pct = 100.0 * n_skin / area if area else 0.0
    depig = np.zeros(skin.shape, bool)
    if n_skin < 200:
        notes.append("too little skin found to measure")
        m = Measurement(round(skin_pct, 1), 0.0, card_json, METHOD, VERSION, notes, ref_kind)
        return m, ({"skin": skin, "depigmented": depig} if with_masks else {})
    img = normalise_to_own_skin(img, skin)
    f = np.asarray(cv2.GaussianBlur(saturation(img), (0, 0), 1.5), dtype=np.float32)
    lum = cv2.cvtColor(img, cv2.COLOR_BGR2Lab)[:, :, 0].astype(np.float32) * (100.0 / 255.0)
    depig = _split(f, lum, skin, notes)
    if ref_kind == "own-skin":
        notes.append("colours normalised against the person's own unaffected skin")
    dep_pct = 100.0 * int(depig.sum()) / n_skin
    m = Measurement(
        round(skin_pct, 1), round(dep_pct, 1), card_json, METHOD, VERSION, notes, ref_kind
    )
    return m, ({"skin": skin, "depigmented": depig} if with_masks else {})
