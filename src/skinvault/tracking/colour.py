"""Colour: find an X-Rite ColorChecker (24 patches) and correct to it; else own-skin normalisation.

The detector looks for a dark rectangle of about 3:2 whose inside divides into a 4 x 6
grid of patches, reads each patch's median colour, and accepts the card only when
its bottom (neutral) row runs white -> black and a colour-correction matrix fitted
to the 24 patches explains them well. The reference values are the sRGB renderings
of the ColorChecker Classic published by BabelColor (D50 -> sRGB D65, 2012 data).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

# ColorChecker Classic, sRGB (8-bit), row by row: BabelColor "ColorChecker RGB" averages.
CHECKER_SRGB = np.array(
    [
        [115, 82, 68],
        [194, 150, 130],
        [98, 122, 157],
        [87, 108, 67],
        [133, 128, 177],
        [103, 189, 170],
        [214, 126, 44],
        [80, 91, 166],
        [193, 90, 99],
        [94, 60, 108],
        [157, 188, 64],
        [224, 163, 46],
        [56, 61, 150],
        [70, 148, 73],
        [175, 54, 60],
        [231, 199, 31],
        [187, 86, 149],
        [8, 133, 161],
        [243, 243, 242],
        [200, 200, 200],
        [160, 160, 160],
        [122, 122, 121],
        [85, 85, 85],
        [52, 52, 52],
    ],
    dtype=np.float64,
)

Pixels = NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Card:
    corners: list[list[float]]  #: 4 corners (x, y) of the card, in the photo
    residual: float  #: mean patch error after correction, 0..255
    corrected: bool

    def as_json(self) -> dict[str, object]:
        return {
            "found": "ColorChecker 24",
            "corners": self.corners,
            "residual": round(self.residual, 2),
            "corrected": self.corrected,
        }


def _lin(v: NDArray[np.float64]) -> NDArray[np.float64]:
    v = v / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _srgb(v: NDArray[np.float64]) -> NDArray[np.float64]:
    v = np.clip(v, 0.0, 1.0)
    return 255.0 * np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def _patches(bgr: Pixels, box: NDArray[np.float32]) -> NDArray[np.float64] | None:
    """Median RGB of the 24 patches of a card whose corners are `box` (tl, tr, br, bl)."""
    w, h = 600, 400
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(box, dst)
    flat = cv2.warpPerspective(bgr, m, (w, h))
    out = []
    # patch grid sits inside a frame of ~4 % of the width
    mx, my = 0.04 * w, 0.06 * h
    cw, ch = (w - 2 * mx) / 6, (h - 2 * my) / 4
    for r in range(4):
        for c in range(6):
            x0, y0 = int(mx + c * cw + cw * 0.3), int(my + r * ch + ch * 0.3)
            x1, y1 = int(mx + (c + 1) * cw - cw * 0.3), int(my + (r + 1) * ch - ch * 0.3)
            cell = flat[y0:y1, x0:x1].reshape(-1, 3)[:, ::-1]
            if cell.size == 0:
                return None
            out.append(np.median(cell, axis=0))
    return np.array(out, dtype=np.float64)


def _fit(observed: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
    """3x4 matrix in linear RGB mapping observed patches onto the reference; mean error."""
    a = np.hstack([_lin(observed), np.ones((24, 1))])
    b = _lin(CHECKER_SRGB)
    m = np.asarray(np.linalg.lstsq(a, b, rcond=None)[0], dtype=np.float64)
    fitted = _srgb(a @ m)
    return m, float(np.abs(fitted - CHECKER_SRGB).mean())


def _order(pts: NDArray[np.float32]) -> NDArray[np.float32]:
    s, d = pts.sum(axis=1), np.diff(pts, axis=1).ravel()
    order = [np.argmin(s), np.argmin(d), np.argmax(s), np.argmax(d)]
    return np.asarray(pts[order], dtype=np.float32)


def find_card(bgr: Pixels) -> tuple[Card, NDArray[np.float64]] | None:
    """The card and its correction matrix, or None when there is no card to trust."""
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    dark = (grey < 60).astype(np.uint8) * 255
    dark = np.asarray(cv2.morphologyEx(dark, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)), np.uint8)
    contours, _ = cv2.findContours(dark, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    area_img = grey.shape[0] * grey.shape[1]
    best: tuple[Card, NDArray[np.float64]] | None = None
    for cnt in sorted(contours, key=cv2.contourArea, reverse=True)[:8]:
        if cv2.contourArea(cnt) < 0.005 * area_img:
            break
        rect = cv2.minAreaRect(cnt)
        (rw, rh) = rect[1]
        if min(rw, rh) == 0 or not 1.25 < max(rw, rh) / min(rw, rh) < 1.8:
            continue
        box = _order(cv2.boxPoints(rect).astype(np.float32))
        if np.linalg.norm(box[1] - box[0]) < np.linalg.norm(box[3] - box[0]):
            box = np.asarray(box[[1, 2, 3, 0]], dtype=np.float32)  # portrait: rotate
        for cand in (box, np.asarray(box[[2, 3, 0, 1]], dtype=np.float32)):
            patches = _patches(bgr, cand)
            if patches is None:
                continue
            neutral = patches[18:24].mean(axis=1)
            if not np.all(np.diff(neutral) < 0):
                continue
            m, residual = _fit(patches)
            if residual < 12.0 and (best is None or residual < best[0].residual):
                corners = [[float(x), float(y)] for x, y in cand]
                best = (Card(corners, residual, True), m)
    return best


def apply_correction(bgr: Pixels, m: NDArray[np.float64]) -> Pixels:
    rgb = bgr[:, :, ::-1].reshape(-1, 3).astype(np.float64)
    lut = _lin(np.arange(256, dtype=np.float64))
    lin = lut[rgb.astype(np.intp)]
    out = _srgb(np.hstack([lin, np.ones((lin.shape[0], 1))]) @ m)
    return np.ascontiguousarray(out.reshape(bgr.shape)[:, :, ::-1].round().astype(np.uint8))


def card_mask(shape: tuple[int, ...], card: Card) -> NDArray[np.bool_]:
    mask = np.zeros(shape[:2], np.uint8)
    pts = np.array(card.corners, dtype=np.float32)
    centre = pts.mean(axis=0)
    grown = (centre + (pts - centre) * 1.08).astype(np.int32)
    cv2.fillConvexPoly(mask, grown, 1)
    return mask.astype(bool)


def render_card(width: int) -> Pixels:
    """A ColorChecker drawn flat (BGR), `width` px wide — for tests and the bench."""
    w, h = width, round(width * 2 / 3)
    card = np.full((h, w, 3), 20, np.uint8)
    mx, my = 0.04 * w, 0.06 * h
    cw, ch = (w - 2 * mx) / 6, (h - 2 * my) / 4
    gap = 0.08
    for i, rgb in enumerate(CHECKER_SRGB):
        r, c = divmod(i, 6)
        x0, y0 = int(mx + c * cw + cw * gap), int(my + r * ch + ch * gap)
        x1, y1 = int(mx + (c + 1) * cw - cw * gap), int(my + (r + 1) * ch - ch * gap)
        card[y0:y1, x0:x1] = rgb[::-1].astype(np.uint8)
    return card
