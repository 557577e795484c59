"""What a clinician would check on real photos: a known depigmented share is measured
close to it, a change of light barely moves it, the drawn region is what is measured, the
area's growth is seen, and two unrelated photos are never shown as aligned.

The skin is real (a cheek drawn in bench/tracking_set/skin_regions.json on a PASCAL VOC
photo shipped by dlib, see bench/clues_set/SOURCES.md); the depigmented patch is
synthesised by the documented model in bench/tracking_synth.py, so its area is known.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

from skinvault.tracking import align as al
from skinvault.tracking import measure as me

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
CORPUS = ROOT / "tests" / "data" / "corpus"


def _synth() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tracking_synth", BENCH / "tracking_synth.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("tracking_synth", mod)
    spec.loader.exec_module(mod)
    return mod


SYNTH = _synth()


def _cheek() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The 480-px face crop of 2008_002506.jpg at (224,95) and its drawn left cheek."""
    photo = cv2.imread(str(BENCH / "clues_set" / "dlib-2008_002506.jpg"))
    assert photo is not None
    w = h = 0
    for xml in ("dlib-training.xml", "dlib-testing.xml"):
        text = (BENCH / "clues_set" / xml).read_text()
        if "2008_002506.jpg" in text:
            import xml.etree.ElementTree as ET

            for image in ET.fromstring(text).iter("image"):  # noqa: S314 - our own file
                if image.get("file") != "2008_002506.jpg":
                    continue
                for box in image.iter("box"):
                    if (box.get("left"), box.get("top")) == ("224", "95"):
                        w, h = int(box.get("width", 0)), int(box.get("height", 0))
    assert w and h
    crop = photo[95 : 95 + h, 224 : 224 + w]
    crop = cv2.resize(crop, None, fx=480 / max(crop.shape[:2]), fy=480 / max(crop.shape[:2]),
                      interpolation=cv2.INTER_CUBIC)  # fmt: skip
    regions = json.loads((BENCH / "tracking_set" / "skin_regions.json").read_text())["regions"]
    box = next(r["box"] for r in regions["2008_002506.jpg@224,95"] if r["site"] == "cheek-left")
    return crop, (int(box[0]), int(box[1]), int(box[2]), int(box[3]))


def _with_patch(share: float, seed: int = 4) -> tuple[np.ndarray, tuple[int, int, int, int], float]:
    """The cheek with an irregular, soft-edged depigmented patch of about `share`."""
    base, (x, y, w, h) = _cheek()
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((max(3, h // 12), max(3, w // 12))).astype(np.float32)
    field = cv2.GaussianBlur(cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC),
                             (0, 0), max(h, w) / 14)  # fmt: skip
    shape = (field >= np.quantile(field, 1.0 - share)).astype(np.float32)
    alpha = np.zeros(base.shape[:2], np.float32)
    alpha[y : y + h, x : x + w] = SYNTH.soften(shape, 1.5)
    truth = 100.0 * float((alpha[y : y + h, x : x + w] >= 0.5).mean())
    return SYNTH.depigment(base, alpha), (x, y, w, h), truth


@pytest.mark.parametrize("share", [0.1, 0.3, 0.5])
def test_known_depigmented_share_of_a_real_cheek_is_measured_within_ten_points(
    share: float,
) -> None:
    # Ten, not the five: this cheek's own shine already reads as ~8 % (see below).
    img, box, truth = _with_patch(share)
    m, _ = me.measure(img, region=box)
    assert m.skin_percent > 95
    assert abs(m.depigmented_percent - truth) <= 10.0, (m.depigmented_percent, truth)


@pytest.mark.parametrize("light", [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)])
def test_a_change_of_light_moves_the_share_by_at_most_three_points(
    light: tuple[float, float],
) -> None:
    img, box, _ = _with_patch(0.3)
    neutral, _ = me.measure(img, region=box)
    moved, _ = me.measure(SYNTH.relight(img, *light), region=box)
    assert abs(moved.depigmented_percent - neutral.depigmented_percent) <= 3.0


def test_growth_between_two_visits_is_seen() -> None:
    img1, box, t1 = _with_patch(0.15)
    img2, _, t2 = _with_patch(0.35)
    assert t2 > t1 + 10
    a, _ = me.measure(img1, region=box)
    b, _ = me.measure(SYNTH.relight(img2, 0.0, 1.0), region=box)  # warmer light at visit 2
    assert b.depigmented_percent > a.depigmented_percent + 5


def test_only_the_drawn_region_is_measured() -> None:
    img, box, truth = _with_patch(0.3)
    x, y, w, h = box
    framed = img.copy()
    # Paint the rest of the photo white (as if depigmented): outside the region, so ignored.
    mask = np.ones(img.shape[:2], bool)
    mask[y : y + h, x : x + w] = False
    framed[mask] = (235, 235, 245)
    m, _ = me.measure(framed, region=box)
    assert abs(m.depigmented_percent - truth) <= 10.0


def test_untouched_cheek_reads_the_same_low_share_under_every_light() -> None:
    """Known limit (docs/tracking.md): small bright spots on real skin are lighter and less
    red, like depigmented skin, and have a border, so this untouched cheek reads ~10 %, not
    0; the light must not move it."""
    base, box = _cheek()
    got = []
    for ev, warm in ((0.0, 0.0), (1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)):
        m, _ = me.measure(SYNTH.relight(base, ev, warm), region=box)
        got.append(m.depigmented_percent)
    assert max(got) <= 10.0 and max(got) - min(got) <= 3.0, got


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tracking_bench", BENCH / "tracking.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("tracking_bench", mod)
    spec.loader.exec_module(mod)
    return mod


def test_untouched_real_cheeks_mostly_read_as_untouched() -> None:
    """All 22 drawn cheeks of the bench, no patch: version 3 read 12 % on average (max 28)
    from the paler, less red parts of normal skin; the border test (step 6) drops those."""
    results = [(name, me.measure(base, region=box)[0]) for name, base, box in _bench().sites()]
    assert len(results) == 22
    got = [m.depigmented_percent for _, m in results if m.depigmented_percent is not None]
    assert sum(got) / len(got) <= 5.0 and max(got) <= 15.0, got
    # not measured: only the cheeks of the one source photo that is overexposed as taken
    declined = {name for name, m in results if m.depigmented_percent is None}
    assert len(declined) <= 3 and all(n.startswith("2008_001322.jpg") for n in declined), declined
    assert all("overexposed" in " ".join(m.notes) for n, m in results if n in declined)


def test_an_overexposed_photo_is_not_measured_and_says_why() -> None:
    """Flash or a bright window clips a colour channel on the skin; R/B there says nothing of
    the pigment (version 4 read an untouched fair cheek at +1 EV as ~58 % depigmented)."""
    bench = _bench()
    (base, box), *_ = [(b, r) for n, b, r in bench.sites() if n == "astronaut/cheek-left"]
    for img in (
        bench.relight(base, 1.0, 0.0),  # clipped as taken
        bench.relight(bench.relight(base, 1.0, 0.0), -1.0, 0.0),  # clipped, then darkened
        bench.relight(base, 0.5, 1.0),  # warm light clips red first
    ):
        m, _ = me.measure(img, region=box)
        assert m.depigmented_percent is None, m
        reason = me.not_measured_reason(m.notes)
        assert reason is not None and "overexposed" in reason and "again" in reason, m.notes
        assert m.as_json()["depigmented_percent"] is None
    m, _ = me.measure(base, region=box)  # the same cheek as taken is measured
    assert m.depigmented_percent is not None and me.not_measured_reason(m.notes) is None


def _shine(img: np.ndarray, box: tuple[int, int, int, int], strength: float) -> np.ndarray:
    """Three broad highlights (white light added in linear RGB, Gaussian, 15 % of the
    region's side) inside the region, as on an oily or damp cheek."""
    x, y, w, h = box
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]].astype(np.float32)
    add = np.zeros(img.shape[:2], np.float32)
    for fx, fy in ((0.3, 0.35), (0.7, 0.5), (0.45, 0.75)):
        s = 0.15 * max(w, h)
        add += strength * np.exp(-((xx - x - fx * w) ** 2 + (yy - y - fy * h) ** 2) / (2 * s * s))
    lin = (img.astype(np.float32) / 255.0) ** 2.2 + add[..., None]
    return np.asarray(np.clip(lin, 0, 1) ** (1 / 2.2) * 255 + 0.5, np.uint8)


@pytest.mark.parametrize("strength", [0.1, 0.2, 0.4])
def test_broad_shine_on_an_untouched_real_cheek_is_not_read_as_depigmented(
    strength: float,
) -> None:
    # Version 3 read 36-49 % here: shine is lighter and less red, but it fades out.
    base, box = _cheek()
    m, _ = me.measure(_shine(base, box, strength), region=box)
    assert m.depigmented_percent <= 3.0, m.depigmented_percent


def _photo(name: str) -> np.ndarray:
    img = cv2.imread(str(CORPUS / name))
    assert img is not None
    s = 1024 / max(img.shape[:2])
    return np.asarray(cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA))


def test_two_unrelated_real_photos_are_not_confidently_aligned() -> None:
    result = al.align(_photo("007-jpg-canon-40d.jpg"), _photo("016-jpg-nikon-d70.jpg"))
    assert not result.confident
    assert result.matrix == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]


def test_a_real_photo_seen_again_rotated_and_relit_aligns_within_a_pixel() -> None:
    ref = _photo("016-jpg-nikon-d70.jpg")
    h, w = ref.shape[:2]
    a = np.deg2rad(5.0)
    h_true = np.array([[np.cos(a), -np.sin(a), 30.0], [np.sin(a), np.cos(a), -20.0], [0, 0, 1]])
    mov = cv2.warpPerspective(ref, np.linalg.inv(h_true), (w, h), borderMode=cv2.BORDER_REFLECT)
    mov = SYNTH.relight(mov, -0.7, 1.0)
    result = al.align(ref, mov)
    assert result.confident, result.reason
    pts = np.float32([[x, y] for x in np.linspace(0.1 * w, 0.9 * w, 7)
                      for y in np.linspace(0.1 * h, 0.9 * h, 7)]).reshape(-1, 1, 2)  # fmt: skip
    diff = cv2.perspectiveTransform(pts, h_true) - cv2.perspectiveTransform(
        pts, np.array(result.matrix)
    )
    err = np.sqrt((diff**2).sum(2))
    assert float(np.median(err)) <= 1.0 and float(err.max()) <= 3.0
