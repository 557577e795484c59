"""Align a later photo of a site onto an earlier one: a homography, or an honest "no".

`align(reference, moving)` works in two stages, both on grey, contrast-equalised
(CLAHE) pixels so that a change of light changes the features little:

1. Coarse: ORB features on both photos at <= `COARSE_SIZE` px, matched by Hamming
   distance with Lowe's ratio test, a homography fitted with OpenCV's MAGSAC++.
   ORB is ~10x faster than SIFT here; its pixel accuracy at that size is ~1-2 px.
2. Refine at `work_size` (1024 px): MOVING is warped by the coarse transform, corners
   of REFERENCE are tracked into it with pyramidal Lucas-Kanade (sub-pixel), kept only
   when tracking back lands within half a pixel, and the homography is fitted again
   on those (MAGSAC++, then least squares on its inliers).

The result maps pixel coordinates of MOVING (upright) onto REFERENCE. It is
`confident` only when enough features agree in both stages, they cover the photo,
the fitted transform is not degenerate and the inliers' reprojection error is
small; otherwise the caller shows the two photos side by side instead of a warp
that may be wrong. The matrix is scaled back to full resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import ImageOps

from skinvault.errors import UnsupportedFormat
from skinvault.photos.limits import open_image

METHOD = "orb-lk-magsac"
VERSION = "2"

Matrix = list[list[float]]
Pixels = NDArray[np.uint8]
Grey = NDArray[np.uint8]

COARSE_SIZE = 640
MAX_FEATURES = 2500
MIN_INLIERS = 30
MIN_INLIER_RATIO = 0.25
MIN_TRACKED_RATIO = 0.5  # share of tracked corners the refined transform must explain
MAX_REPROJ_PX = 1.0  # at work size, after refinement
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


def _reason(exc: Exception) -> str:
    """Pillow's message without the in-memory file it names (``<_io.BytesIO object …>``)."""
    text = str(exc)
    if text.startswith("cannot identify image file"):
        return "not a JPEG, PNG, WebP, TIFF or HEIF/AVIF image"
    return text or type(exc).__name__


def decode(data: bytes) -> Pixels:
    """Bytes of a photo -> upright BGR pixels (EXIF orientation applied)."""
    try:
        with open_image(data) as im:
            im.load()
            upright = ImageOps.exif_transpose(im).convert("RGB")
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise UnsupportedFormat(f"not a photo this can read ({_reason(exc)})") from exc
    rgb = np.asarray(upright, dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def encode_jpeg(bgr: Pixels, quality: int = 92) -> bytes:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes 8-bit BGR
        raise UnsupportedFormat("could not encode the aligned photo")
    return bytes(buf)


def _prepare(bgr: Pixels, work_size: int) -> tuple[Grey, float]:
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


def _shrink(grey: Grey, size: int) -> tuple[Grey, float]:
    h, w = grey.shape[:2]
    s = min(1.0, size / max(h, w))
    if s >= 1.0:
        return grey, 1.0
    small = cv2.resize(grey, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.uint8), s


def _coarse(ref: Grey, mov: Grey) -> tuple[NDArray[np.float64] | None, int, int, str]:
    """ORB + ratio test + MAGSAC++ at <= COARSE_SIZE; the matrix is in work-size pixels."""
    ref_c, s_r = _shrink(ref, COARSE_SIZE)
    mov_c, s_m = _shrink(mov, COARSE_SIZE)
    orb = cv2.ORB_create(nfeatures=MAX_FEATURES, fastThreshold=10)  # type: ignore[attr-defined]
    kr, dr = orb.detectAndCompute(ref_c, None)
    km, dm = orb.detectAndCompute(mov_c, None)
    if dr is None or dm is None or len(kr) < MIN_INLIERS or len(km) < MIN_INLIERS:
        return None, 0, 0, "too few features (a plain or blurred photo)"
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(dm, dr, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    if len(good) < MIN_INLIERS:
        return None, 0, len(good), "too few matching features"
    src = np.array([km[m.queryIdx].pt for m in good], dtype=np.float32).reshape(-1, 1, 2)
    dst = np.array([kr[m.trainIdx].pt for m in good], dtype=np.float32).reshape(-1, 1, 2)
    h_c, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, 2.0, maxIters=5000, confidence=0.999)
    if h_c is None or mask is None:
        return None, 0, len(good), "no consistent transform"
    n_in = int(mask.ravel().astype(bool).sum())
    if n_in < MIN_INLIERS:
        return None, n_in, len(good), f"only {n_in} matches agree"
    if n_in / len(good) < MIN_INLIER_RATIO:
        return None, n_in, len(good), "most matches disagree"
    # work-size matrix: S_r^-1 . H_c . S_m
    full = np.diag([1 / s_r, 1 / s_r, 1.0]) @ h_c @ np.diag([s_m, s_m, 1.0])
    return np.asarray(full / full[2, 2], dtype=np.float64), n_in, len(good), "ok"


def _refine(
    ref: Grey, mov: Grey, h0: NDArray[np.float64]
) -> tuple[NDArray[np.float64] | None, int, int, float, float]:
    """Track REFERENCE's corners into MOVING warped by `h0` (LK, forward-backward checked)
    and fit the homography again. Returns (H, inliers, tracked, mean error, coverage)."""
    h, w = ref.shape[:2]
    warped = cv2.warpPerspective(mov, h0, (w, h), flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(np.full(mov.shape[:2], 255, np.uint8), h0, (w, h))
    inside = cv2.erode(inside, np.ones((15, 15), np.uint8))
    pts = cv2.goodFeaturesToTrack(
        ref, maxCorners=1000, qualityLevel=0.005, minDistance=max(8, w // 100), mask=inside
    )
    if pts is None or len(pts) < MIN_INLIERS:
        return None, 0, 0, 1e9, 0.0
    pts = np.asarray(pts, dtype=np.float32)
    lk = {"winSize": (21, 21), "maxLevel": 3,
          "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)}  # fmt: skip
    nxt, st, _ = cv2.calcOpticalFlowPyrLK(ref, warped, pts, None, **lk)  # type: ignore[call-overload]
    back, st2, _ = cv2.calcOpticalFlowPyrLK(warped, ref, nxt, None, **lk)  # type: ignore[call-overload]
    fb = np.sqrt(((back - pts) ** 2).sum(axis=2)).ravel()
    ok = (st.ravel() == 1) & (st2.ravel() == 1) & (fb < 0.5)
    n_tracked = int(ok.sum())
    if n_tracked < MIN_INLIERS:
        return None, 0, n_tracked, 1e9, 0.0
    dst = pts[ok]
    src = cv2.perspectiveTransform(nxt[ok], np.linalg.inv(h0))  # back into MOVING's pixels
    h_r, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, 1.0, maxIters=2000, confidence=0.999)
    if h_r is None or mask is None:
        return None, 0, n_tracked, 1e9, 0.0
    inl = mask.ravel().astype(bool)
    n_in = int(inl.sum())
    if n_in >= 4:
        h_ls, _ = cv2.findHomography(src[inl], dst[inl], 0)
        if h_ls is not None:
            h_r = h_ls
    proj = cv2.perspectiveTransform(src[inl], h_r)
    err = float(np.sqrt(((proj - dst[inl]) ** 2).sum(axis=2)).mean()) if n_in else 1e9
    hull = float(cv2.contourArea(cv2.convexHull(dst[inl]))) if n_in >= 3 else 0.0
    return np.asarray(h_r / h_r[2, 2], np.float64), n_in, n_tracked, err, hull / float(h * w)


def align(reference: Pixels, moving: Pixels, work_size: int = 1024) -> Alignment:
    """The homography taking MOVING onto REFERENCE, with a confidence verdict."""
    ref_g, s_ref = _prepare(reference, work_size)
    mov_g, s_mov = _prepare(moving, work_size)
    h0, n0, matches, why = _coarse(ref_g, mov_g)
    if h0 is None:
        return _not_confident(why, n0, matches)
    h_work, n_in, n_tracked, err, coverage = _refine(ref_g, mov_g, h0)
    if h_work is None:
        return _not_confident("the photos' details do not line up", n0, matches)
    # Full-resolution matrix: H = S_ref^-1 . H_work . S_mov
    full = np.diag([1 / s_ref, 1 / s_ref, 1.0]) @ h_work @ np.diag([s_mov, s_mov, 1.0])
    full = full / full[2, 2]
    matrix = [[float(v) for v in row] for row in full]
    reason = "ok"
    det = float(np.linalg.det(full[:2, :2]))
    if n_in < MIN_INLIERS:
        reason = f"only {n_in} tracked points agree"
    elif n_in / max(1, n_tracked) < MIN_TRACKED_RATIO:
        reason = "most tracked points disagree"
    elif err > MAX_REPROJ_PX:
        reason = "matches fit the transform poorly"
    elif coverage < MIN_COVERAGE:
        reason = "matches cover too little of the photo"
    elif not (0.2 < abs(det) < 5.0) or det < 0:
        reason = "the transform would shrink, blow up or mirror the photo"
    elif abs(full[2, 0]) * moving.shape[1] + abs(full[2, 1]) * moving.shape[0] > 0.5:
        reason = "the transform is too strongly perspective"
    if reason != "ok":
        return Alignment(matrix, n_in, matches, False, reason)
    return Alignment(matrix, n_in, matches, True, reason)


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
