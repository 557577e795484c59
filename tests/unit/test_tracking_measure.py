"""Depigmented-area measurement and colour card on generated photos with known areas."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from skinvault.errors import RegionOutside
from skinvault.tracking import colour
from skinvault.tracking import measure as me

SKIN = np.array([95, 140, 195], np.float32)  # BGR, a medium skin tone
WHITE_PATCH = np.array([218, 222, 238], np.float32)  # milky, slightly pink


def _photo(
    depig_frac: float,
    h: int = 600,
    w: int = 800,
    gain: float = 1.0,
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0),
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    """Skin everywhere with shading; a depigmented disc covering `depig_frac` of it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = 0.85 + 0.15 * np.cos(xx / w * np.pi - 0.5)  # lit left, shaded right
    noise = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 2) * 4
    disc = np.zeros((h, w), np.float32)
    if depig_frac > 0:
        r = np.sqrt(depig_frac * h * w / np.pi)
        disc = (((xx - w / 2) ** 2 + (yy - h / 2) ** 2) <= r * r).astype(np.float32)
    base = (
        SKIN[None, None, :] * (1 - disc[..., None]) + WHITE_PATCH[None, None, :] * disc[..., None]
    )
    img = base * shade[..., None] + noise[..., None]
    img = img * gain * np.array(tint, np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), 100.0 * float(disc.mean())


@pytest.mark.parametrize("frac", [0.05, 0.2, 0.45])
def test_known_area_is_measured_within_two_points(frac: float) -> None:
    img, truth = _photo(frac)
    m, _ = me.measure(img)
    assert m.skin_percent > 95
    assert abs(m.depigmented_percent - truth) <= 2.0


def test_no_depigmentation_gives_zero_despite_shading() -> None:
    img, _ = _photo(0.0)
    m, _ = me.measure(img)
    assert m.depigmented_percent <= 1.0


@pytest.mark.parametrize(
    ("gain", "tint"),
    [(1.25, (1, 1, 1)), (0.6, (1, 1, 1)), (1.0, (0.85, 1.0, 1.1)), (1.0, (1.1, 1.0, 0.9))],
)
def test_changed_light_moves_the_figure_little(gain: float, tint: tuple[float, ...]) -> None:
    img, truth = _photo(0.25)
    lit, _ = _photo(0.25, gain=gain, tint=tint)  # type: ignore[arg-type]
    a, _ = me.measure(img)
    b, _ = me.measure(lit)
    assert abs(a.depigmented_percent - b.depigmented_percent) <= 3.0
    assert abs(b.depigmented_percent - truth) <= 4.0


def test_region_limits_the_measurement_and_must_be_inside() -> None:
    img, _ = _photo(0.1)
    m, _ = me.measure(img, region=(0, 0, 150, 150))  # a corner, away from the disc
    assert m.depigmented_percent <= 1.0
    with pytest.raises(RegionOutside):
        me.measure(img, region=(5000, 0, 10, 10))


def test_a_part_left_out_is_not_measured_and_boxes_must_touch_the_photo() -> None:
    img, truth = _photo(0.1)  # the pale disc sits in the middle (400, 300)
    whole, _ = me.measure(img)
    assert abs(whole.depigmented_percent - truth) <= 4.0
    left_out, _ = me.measure(img, exclude=[(250, 150, 300, 300)])  # the disc and around it
    assert left_out.depigmented_percent <= 1.0
    with pytest.raises(RegionOutside, match=r"The part to leave out 900,0,10,10 is not inside"):
        me.measure(img, exclude=[(900, 0, 10, 10)])
    with pytest.raises(RegionOutside, match=r"The region 0,0,0,10 .*\(800 × 600 pixels"):
        me.measure(img, region=(0, 0, 0, 10))


def test_background_is_not_skin() -> None:
    img, _ = _photo(0.0)
    img[:, :400] = (40, 120, 40)  # green cloth on the left half
    m, _ = me.measure(img)
    assert 40 <= m.skin_percent <= 60


def test_colour_card_is_found_and_used() -> None:
    img, _ = _photo(0.2, h=900, w=1200)
    card = colour.render_card(300)
    img[20 : 20 + card.shape[0], 20 : 20 + 300] = card
    found = colour.find_card(img)
    assert found is not None
    assert found[0].residual < 6
    m, _ = me.measure(img)
    assert m.card is not None and m.card["corrected"] is True
    assert "colour-card" in str(m.as_json()["method"])


def test_no_card_means_own_skin_reference() -> None:
    img, _ = _photo(0.2)
    m, _ = me.measure(img)
    assert m.card is None
    assert "own-skin" in str(m.as_json()["method"])


def test_card_detector_rejects_a_dark_rectangle_without_patches() -> None:
    img, _ = _photo(0.0)
    img[50:250, 50:350] = 20
    assert colour.find_card(img) is None


def _paler_towards_one_side(depth: float) -> np.ndarray:
    """Skin that turns gradually paler and less red towards the right over the whole
    width, as normal skin does (no border anywhere); `depth` 1 reaches WHITE_PATCH."""
    h, w = 400, 600
    xx = np.mgrid[0:h, 0:w][1].astype(np.float32)
    ramp = np.clip((xx / w - 0.3) / 0.7, 0, 1)[..., None] * depth
    img = SKIN[None, None, :] * (1 - ramp) + WHITE_PATCH[None, None, :] * ramp
    return np.clip(np.broadcast_to(img, (h, w, 3)), 0, 255).astype(np.uint8)


def test_skin_turning_gradually_paler_is_not_read_as_depigmented() -> None:
    # Version 3 read ~22 % here: the paler end is as pale as a patch, but it has no border.
    m, _ = me.measure(_paler_towards_one_side(0.8))
    assert m.depigmented_percent <= 2.0, m.depigmented_percent


def test_a_patch_with_a_border_on_gradually_paler_skin_is_still_found() -> None:
    img = _paler_towards_one_side(0.4).astype(np.float32)
    yy, xx = np.mgrid[0:400, 0:600].astype(np.float32)
    disc = cv2.GaussianBlur((((xx - 150) ** 2 + (yy - 200) ** 2) <= 90**2).astype(np.float32),
                            (0, 0), 2.0)[..., None]  # fmt: skip
    img = img * (1 - disc) + WHITE_PATCH[None, None, :] * disc
    truth = 100.0 * float((disc >= 0.5).mean())
    m, _ = me.measure(np.clip(img, 0, 255).astype(np.uint8))
    assert abs(m.depigmented_percent - truth) <= 3.0, (m.depigmented_percent, truth)


def test_stepped_parts_keeps_a_step_and_drops_a_slope() -> None:
    h, w = 200, 400
    area = np.ones((h, w), bool)
    xx = np.mgrid[0:h, 0:w][1].astype(np.float32)
    step = np.where((xx > 60) & (xx < 140), 0.6, 0.0).astype(np.float32)
    slope = np.clip((xx - 200) / 200, 0, 1).astype(np.float32) * 0.6
    drop = step + slope
    cand = drop > 0.25
    kept = me._stepped_parts(cand, drop, area, band=8)
    assert kept[:, 61:140].all()
    assert not kept[:, 200:].any()


def test_skin_with_a_clipped_channel_is_not_measured_and_says_why() -> None:
    img, _ = _photo(0.2, gain=1.5)  # red over 255 on all the skin; green and blue still vary
    m, _ = me.measure(img)
    assert m.depigmented_percent is None
    assert me.not_measured_reason(m.notes) == m.notes[0] and "overexposed" in m.notes[0]
    darker = (img.astype(np.float32) * 0.6).astype(np.uint8)  # clipped, then darkened: red
    assert me.measure(darker)[0].depigmented_percent is None  # is stuck at 153, not at 255


def test_evenly_coloured_areas_are_not_taken_for_clipping() -> None:
    # a flat bright patch has every channel at its top value, none stuck while others vary
    flat = np.full((300, 400, 3), SKIN, np.uint8)
    flat[100:200, 100:250] = WHITE_PATCH.astype(np.uint8)
    assert me.clipped_share(flat, np.ones(flat.shape[:2], bool)) == 0.0
    img, truth = _photo(0.3)  # the brightest pixels of an ordinary photo are few
    assert me.clipped_share(img, np.ones(img.shape[:2], bool)) < 0.05
    m, _ = me.measure(img)
    assert m.depigmented_percent is not None and abs(m.depigmented_percent - truth) <= 2.0


def test_too_little_skin_is_not_measured_rather_than_read_as_zero() -> None:
    grey = np.full((400, 400, 3), 128, np.uint8)  # no skin colour anywhere
    m, _ = me.measure(grey)
    assert m.depigmented_percent is None
    assert "too little skin" in (me.not_measured_reason(m.notes) or "")
