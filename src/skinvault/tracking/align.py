"""Align a later photo of a site onto an earlier one: a homography, or an honest "no".

`align(reference, moving)` finds SIFT features on both photos (grey, contrast-
equalised so a change of light does not change the features much), matches them
with Lowe's ratio test, and fits a homography with OpenCV's MAGSAC++ estimator.
The result maps pixel coordinates of MOVING (upright) onto REFERENCE. It is
`confident` only when enough matches agree, they cover the photo, the fitted
transform is not degenerate, and a second, independent check (the inliers'
reprojection error) is small; otherwise the caller shows the two photos side by
side instead of a warp that may be wrong.

Work is done at most `work_size` pixels on the long side and the matrix is scaled
back to full resolution.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from skinvault.errors import UnsupportedFormat

METHOD = "sift-magsac"
VERSION = "1"

Matrix = list[list[float]]
Pixels = NDArray[np.uint8]

MIN_INLIERS = 30
MIN_INLIER_RATIO = 0.25
MAX_REPROJ_PX = 2.0  # at work size
MIN_COVERAGE = 0.15  # share of the reference's area spanned by inliers' hull


@dataclass(frozen=True, slots=True)
class Alignment:
    matrix: Matrix  #: 3x3, maps MOVING pixel coordinates onto REFERENCE
    inliers: int
    matches: int
    confident: bool
    reason: str  #: why not confident, or "ok"

    def as_json(self) -> dict[str, object]:
        return {
            "matrix": self.matrix,
            "inliers": self.inliers,
            "confident": self.confident,
            "method": METHOD,
            "version": VERSION,
            "reason": self.reason,
        }


def decode(data: bytes) -> Pixels:
    """Bytes of a photo -> upright BGR pixels (EXIF orientation applied)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            upright = ImageOps.exif_transpose(im).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise UnsupportedFormat(f"not a photo this can read: {exc}") from exc
    rgb = np.asarray(upright, dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def encode_jpeg(bgr: Pixels, quality: int = 92) -> bytes:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes 8-bit BGR
        raise UnsupportedFormat("could not encode the aligned photo")
    return bytes(buf)


def _prepare(bgr: Pixels, work_size: int) -> tuple[NDArray[np.uint8], float]:
    h, w = bgr.shape[:2]
    scale = min(1.0, work_size / max(h, w))
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if scale < 1.0:
        grey = cv2.resize(grey, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    return np.asarray(clahe.apply(grey), dtype=np.uint8), scale


def _not_confident(reason: str, inliers: int = 0, matches: int = 0) -> Alignment:
    eye = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    return Alignment(eye, inliers, matches, False, reason)


def align(reference: Pixels, moving: Pixels, work_size: int = 1024) -> Alignment:
    """The homography taking MOVING onto REFERENCE, with a confidence verdict."""
    ref_g, s_ref = _prepare(reference, work_size)
    mov_g, s_mov = _prepare(moving, work_size)
    sift = cv2.SIFT_create(nfeatures=2000)  # type: ignore[attr-defined]
    kr, dr = sift.detectAndCompute(ref_g, None)
    km, dm = sift.detectAndCompute(mov_g, None)
    if dr is None or dm is None or len(kr) < MIN_INLIERS or len(km) < MIN_INLIERS:
        return _not_confident("too few features (a plain or blurred photo)")
    matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 5}, {"checks": 64})
    pairs = matcher.knnMatch(dm, dr, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.75 * p[1].distance]
    if len(good) < MIN_INLIERS:
        return _not_confident("too few matching features", 0, len(good))
    src = np.array([km[m.queryIdx].pt for m in good], dtype=np.float32).reshape(-1, 1, 2)
    dst = np.array([kr[m.trainIdx].pt for m in good], dtype=np.float32).reshape(-1, 1, 2)
    h_work, mask = cv2.findHomography(
        src, dst, cv2.USAC_MAGSAC, 1.5, maxIters=5000, confidence=0.999
    )
    if h_work is None or mask is None:
        return _not_confident("no consistent transform", 0, len(good))
    inl = mask.ravel().astype(bool)
    n_in = int(inl.sum())
    # Polish on the inliers with least squares (sub-pixel), then judge.
    h_ref, _ = cv2.findHomography(src[inl], dst[inl], 0)
    if h_ref is not None:
        h_work = h_ref
    proj = cv2.perspectiveTransform(src[inl], h_work)
    err = float(np.sqrt(((proj - dst[inl]) ** 2).sum(axis=2)).mean()) if n_in else 1e9
    hull_area = float(cv2.contourArea(cv2.convexHull(dst[inl]))) if n_in >= 3 else 0.0
    coverage = hull_area / float(ref_g.shape[0] * ref_g.shape[1])
    # Full-resolution matrix: H = S_ref^-1 . H_work . S_mov
    s_r = np.diag([s_ref, s_ref, 1.0])
    s_m = np.diag([s_mov, s_mov, 1.0])
    full = np.linalg.inv(s_r) @ h_work @ s_m
    full = full / full[2, 2]
    matrix = [[float(v) for v in row] for row in full]
    reason = "ok"
    a = full[:2, :2]
    det = float(np.linalg.det(a))
    if n_in < MIN_INLIERS:
        reason = f"only {n_in} matches agree"
    elif n_in / len(good) < MIN_INLIER_RATIO:
        reason = "most matches disagree"
    elif err > MAX_REPROJ_PX:
        reason = "matches fit the transform poorly"
    elif coverage < MIN_COVERAGE:
        reason = "matches cover too little of the photo"
    elif not (0.2 < abs(det) < 5.0) or det < 0:
        reason = "the transform would shrink, blow up or mirror the photo"
    elif abs(full[2, 0]) * moving.shape[1] + abs(full[2, 1]) * moving.shape[0] > 0.5:
        reason = "the transform is too strongly perspective"
    return Alignment(matrix, n_in, len(good), reason == "ok", reason)


def warp(moving: Pixels, alignment: Alignment, reference_shape: tuple[int, ...]) -> Pixels:
    """MOVING warped into REFERENCE's frame (outside it black)."""
    h, w = reference_shape[:2]
    m = np.array(alignment.matrix, dtype=np.float64)
    out = cv2.warpPerspective(
        moving,
        m,
        (w, h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    return np.asarray(out, dtype=np.uint8)
