"""Synthesis for bench/tracking.py: depigmented patches, light changes, a colour card.

The depigmentation model (documented in docs/tracking.md), applied to the photo's
own pixels in CIELAB so the real skin texture and shading stay:

* lightness: L* is raised by 60 % of its distance to L* 95 at full strength
  (L* 40 -> 73, L* 70 -> 85): melanin gone, the skin reflects like very fair skin
  under the same light; the pixel's own detail (L* minus its blurred L*) is kept;
* chroma: a* and b* are cut to 35 % and 25 % of the photo's values plus a faint pink
  (+2, +2): the blood's redness stays, the melanin's brown goes;
* `alpha` (0..1) is the strength map: full strength 1, partial (hypopigmented) 0.6-0.75,
  soft borders from a Gaussian blur of an irregular shape.

A pixel counts as depigmented in the truth when alpha >= 0.5.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from skinvault.tracking import colour


def blob_mask(
    shape: tuple[int, int], rng: np.random.Generator, target: float, skin: NDArray[np.bool_]
) -> NDArray[np.float32]:
    """Irregular shape(s) covering about `target` of the skin: thresholded smooth noise."""
    h, w = shape
    noise = rng.standard_normal((max(4, h // 24), max(4, w // 24))).astype(np.float32)
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = cv2.GaussianBlur(noise, (0, 0), max(h, w) / 40)
    vals = noise[skin]
    t = np.quantile(vals, 1.0 - target) if vals.size else 0.0
    return (noise >= t).astype(np.float32)


def soften(mask: NDArray[np.float32], sigma: float) -> NDArray[np.float32]:
    if sigma <= 0:
        return mask
    return np.asarray(cv2.GaussianBlur(mask, (0, 0), sigma), dtype=np.float32)


def depigment(bgr: NDArray[np.uint8], alpha: NDArray[np.float32]) -> NDArray[np.uint8]:
    lab = cv2.cvtColor(bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)
    L, a, b = lab[:, :, 0], lab[:, :, 1], lab[:, :, 2]
    smooth = cv2.GaussianBlur(L, (0, 0), 3.0)
    L2 = np.clip(smooth + 0.6 * (95.0 - smooth) + (L - smooth), 0, 100)
    a2 = 0.35 * a + 2.0
    b2 = 0.25 * b + 2.0
    out = np.stack([L + alpha * (L2 - L), a + alpha * (a2 - a), b + alpha * (b2 - b)], axis=2)
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_Lab2BGR)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _lin(v: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _srgb(v: NDArray[np.float64]) -> NDArray[np.float64]:
    v = np.clip(v, 0, 1)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def relight(bgr: NDArray[np.uint8], ev: float = 0.0, warmth: float = 0.0) -> NDArray[np.uint8]:
    """Exposure change in EV and a light-colour change (warm > 0: more red, less blue)."""
    lin = _lin(bgr.astype(np.float64) / 255.0)
    gain = 2.0**ev * np.array([1.0 - 0.25 * warmth, 1.0, 1.0 + 0.25 * warmth])  # B, G, R
    out = _srgb(lin * gain)
    return (out * 255.0 + 0.5).astype(np.uint8)


def paste_card(bgr: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    """A rendered ColorChecker placed in a corner, under the same light as the photo."""
    h, w = bgr.shape[:2]
    cw = int(w * 0.32)
    card = colour.render_card(cw)
    ch = card.shape[0]
    out = bgr.copy()
    y0 = int(rng.integers(2, max(3, h - ch - 2)))
    x0 = 2 if rng.random() < 0.5 else w - cw - 2
    out[y0 : y0 + ch, x0 : x0 + cw] = card
    return out
