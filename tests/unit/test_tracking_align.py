"""Alignment on generated photos whose true transform is known exactly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from skinvault.tracking import align as al


def _texture(h: int = 768, w: int = 1024, seed: int = 0) -> np.ndarray:
    """Skin-like texture: smooth blotches plus fine pores (random, reproducible)."""
    rng = np.random.default_rng(seed)
    base = np.zeros((h, w, 3), np.float32)
    for sigma, amp in ((40, 40), (8, 25), (1.5, 12)):
        n = rng.standard_normal((h, w)).astype(np.float32)
        n = cv2.GaussianBlur(n, (0, 0), sigma)
        n = n / (n.std() + 1e-6)
        base += amp * n[:, :, None]
    skin = np.array([120, 150, 200], np.float32)  # BGR
    return np.clip(base + skin, 0, 255).astype(np.uint8)


def visit_jpeg(radius: int, shift: tuple[int, int], taken: str, seed: int = 4) -> bytes:
    """One visit of a site as a phone would send it: skin-like texture (800 x 600) with a
    pale disc of ``radius``, seen shifted by ``shift``, the capture date ``taken`` in EXIF."""
    import io

    from PIL import Image

    base = _texture(h=600, w=800, seed=seed).astype(np.float32)
    yy, xx = np.mgrid[0:600, 0:800]
    disc = ((xx - 400) ** 2 + (yy - 300) ** 2) <= radius**2
    base[disc] = base[disc] * 0.25 + np.array([215, 222, 240], np.float32) * 0.75
    img = np.clip(base, 0, 255).astype(np.uint8)
    m = np.array([[1, 0, -shift[0]], [0, 1, -shift[1]]], np.float64)
    img = cv2.warpAffine(img, m, (800, 600), borderMode=cv2.BORDER_REFLECT)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = taken
    buf = io.BytesIO()
    Image.fromarray(img[:, :, ::-1].copy()).save(buf, "JPEG", quality=92, exif=exif)
    return buf.getvalue()


def _landmark_error(h_true: np.ndarray, h_est: list[list[float]], w: int, h: int) -> np.ndarray:
    pts = np.float32(
        [[x, y] for x in np.linspace(0.2 * w, 0.8 * w, 7) for y in np.linspace(0.2 * h, 0.8 * h, 7)]
    ).reshape(-1, 1, 2)
    a = cv2.perspectiveTransform(pts, h_true)
    b = cv2.perspectiveTransform(pts, np.array(h_est))
    return np.asarray(np.sqrt(((a - b) ** 2).sum(axis=2)).ravel())


@pytest.mark.parametrize(
    "h_true",
    [
        np.array([[1, 0, 25], [0, 1, -18], [0, 0, 1]], np.float64),
        np.array([[0.97, -0.12, 40], [0.12, 0.97, -30], [0, 0, 1]], np.float64),
        np.array([[1.05, 0.03, -20], [-0.02, 0.95, 15], [2e-5, -3e-5, 1]], np.float64),
    ],
)
def test_recovers_a_known_homography_to_under_a_pixel(h_true: np.ndarray) -> None:
    ref = _texture()
    h, w = ref.shape[:2]
    # MOVING is REFERENCE seen through the inverse transform, so H_true maps MOVING onto REF.
    moving = cv2.warpPerspective(ref, np.linalg.inv(h_true), (w, h), borderMode=cv2.BORDER_REFLECT)
    result = al.align(ref, moving)
    assert result.confident, result.reason
    err = _landmark_error(h_true, result.matrix, w, h)
    assert np.median(err) <= 1.0
    assert err.max() <= 3.0


def test_survives_a_change_of_light() -> None:
    ref = _texture(seed=3)
    h, w = ref.shape[:2]
    h_true = np.array([[1, 0, 12], [0, 1, 9], [0, 0, 1]], np.float64)
    moving = cv2.warpPerspective(ref, np.linalg.inv(h_true), (w, h), borderMode=cv2.BORDER_REFLECT)
    warm = np.clip(moving.astype(np.float32) * [0.7, 0.95, 1.2], 0, 255).astype(np.uint8)
    result = al.align(ref, warm)
    assert result.confident
    assert np.median(_landmark_error(h_true, result.matrix, w, h)) <= 1.0


def test_full_resolution_matrix_when_working_downscaled() -> None:
    ref = cv2.resize(_texture(seed=5), (2048, 1536), interpolation=cv2.INTER_CUBIC)
    h, w = ref.shape[:2]
    h_true = np.array([[1, 0, 60], [0, 1, -40], [0, 0, 1]], np.float64)
    moving = cv2.warpPerspective(ref, np.linalg.inv(h_true), (w, h), borderMode=cv2.BORDER_REFLECT)
    result = al.align(ref, moving)
    assert result.confident
    assert abs(result.matrix[0][2] - 60) < 2.0 and abs(result.matrix[1][2] + 40) < 2.0


def test_unrelated_photos_are_not_aligned() -> None:
    result = al.align(_texture(seed=1), _texture(seed=2))
    assert not result.confident
    assert result.matrix == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]


def test_a_plain_photo_is_not_aligned() -> None:
    flat = np.full((600, 800, 3), 180, np.uint8)
    result = al.align(flat, flat.copy())
    assert not result.confident
    assert "features" in result.reason


def test_warp_puts_moving_into_reference_frame() -> None:
    ref = _texture(seed=7)
    h, w = ref.shape[:2]
    h_true = np.array([[1, 0, 20], [0, 1, 10], [0, 0, 1]], np.float64)
    moving = cv2.warpPerspective(ref, np.linalg.inv(h_true), (w, h), borderMode=cv2.BORDER_REFLECT)
    result = al.align(ref, moving)
    warped = al.warp(moving, result, ref.shape)
    inner = (slice(100, h - 100), slice(100, w - 100))
    diff = np.abs(warped[inner].astype(int) - ref[inner].astype(int)).mean()
    assert diff < 4.0


def test_decode_applies_exif_orientation_and_rejects_garbage() -> None:
    from io import BytesIO

    from PIL import Image

    from skinvault.errors import UnsupportedFormat

    im = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    buf = BytesIO()
    im.save(buf, "JPEG", exif=exif)
    assert al.decode(buf.getvalue()).shape[:2] == (40, 20)
    with pytest.raises(UnsupportedFormat):
        al.decode(b"not a photo")
