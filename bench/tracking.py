"""Progress-tracking goals, measured: alignment and the depigmented-area estimate.

    .venv/bin/python bench/tracking.py            # prints the tables in docs/tracking.md

Alignment: real photos (bench/tracking_set/SOURCES.md) resized to 1024 px, warped by
known random homographies (rotation +-8 deg, scale 0.9-1.1, shift +-40 px, mild
perspective) with the light changed (+-0.7 EV, warm/cool); error = distance between
where the estimated and the true transform put a 7 x 7 grid of points on the middle
80 % of the photo.

Depigmented area: 32 bare-skin regions (cheeks, foreheads) drawn by eye on 11 real face
photos (bench/tracking_set/skin_regions.json), with depigmented patches synthesised inside
them by the documented model in tracking_synth.py (irregular shapes, soft borders, full
or partial strength, 2-60 % of the region), three visits per region with the area
growing or shrinking, each visit under neutral light, +1 EV, -1 EV, warm and cool light,
and a rendered ColorChecker beside a third of them. Each photo is measured with the
drawn region (as `skinvault measure --region`). Truth: the share of the region whose
synthesised strength is >= 0.5 - it does not depend on the method's own skin mask.
Baselines: Otsu on L* inside a plain YCrCb skin-colour mask (lighter class =
depigmented), and a constant guess (the set's median truth).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

from skinvault.tracking import align as al  # noqa: E402
from skinvault.tracking import colour  # noqa: E402
from skinvault.tracking import measure as me  # noqa: E402
from tracking_synth import depigment, relight, soften  # noqa: E402

SET = ROOT / "bench" / "tracking_set"
QUICK = False  # --quick: two photos per part, for CI
SEED = 12  # the published draw of the area set; --seed N draws a held-out one
Box = tuple[int, int, int, int]
CLUES = ROOT / "bench" / "clues_set"
CORPUS = ROOT / "tests" / "data" / "corpus"
LIGHTS = {"neutral": (0.0, 0.0), "+1EV": (1.0, 0.0), "-1EV": (-1.0, 0.0),
          "warm": (0.0, 1.0), "cool": (0.0, -1.0)}  # fmt: skip


# -- the base photos -------------------------------------------------------------------------


def skin_bases() -> list[tuple[str, np.ndarray]]:
    bases: list[tuple[str, np.ndarray]] = []
    astro = cv2.imread(str(SET / "skimage-astronaut.png"))
    bases.append(("astronaut", astro[70:195, 170:280]))
    for xml in ("dlib-training.xml", "dlib-testing.xml"):
        for image in ET.parse(CLUES / xml).getroot().iter("image"):  # noqa: S314 (our own file)
            photo = cv2.imread(str(CLUES / f"dlib-{image.get('file')}"))
            if photo is None:
                continue
            for box in image.iter("box"):
                t, left = int(box.get("top", 0)), int(box.get("left", 0))
                w, h = int(box.get("width", 0)), int(box.get("height", 0))
                if min(w, h) < 60:
                    continue
                crop = photo[max(0, t) : t + h, max(0, left) : left + w]
                bases.append((f"{image.get('file')}@{left},{t}", crop))
    out = []
    for name, crop in bases:
        scale = 480 / max(crop.shape[:2])
        big = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        out.append((name, big))
    return out


# -- depigmented area --------------------------------------------------------------------------


def otsu_baseline(bgr: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Otsu on L* inside a plain YCrCb skin-colour mask in the region: lighter class."""
    x, y, w, h = box
    crop = bgr[y : y + h, x : x + w]
    ycc = cv2.cvtColor(crop, cv2.COLOR_BGR2YCrCb)
    cr, cb = ycc[:, :, 1], ycc[:, :, 2]
    skin = (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127)
    if skin.sum() < 50:
        return 0.0
    lum = cv2.cvtColor(crop, cv2.COLOR_BGR2Lab)[:, :, 0][skin].reshape(-1, 1)
    t, _ = cv2.threshold(lum, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return 100.0 * float((lum > t).mean())


def sites() -> list[tuple[str, np.ndarray, tuple[int, int, int, int]]]:
    """(name, 480-px real skin crop, drawn bare-skin box) from skin_regions.json."""
    drawn = json.loads((SET / "skin_regions.json").read_text())["regions"]
    out = []
    for name, base in skin_bases():
        for r in drawn.get(name, []):
            x, y, w, h = (int(v) for v in r["box"])
            out.append((f"{name}/{r['site']}", base, (x, y, w, h)))
    return out


def _shape(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Smooth random field over the box; thresholding it gives irregular blobs."""
    noise = rng.standard_normal((max(3, h // 12), max(3, w // 12))).astype(np.float32)
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.asarray(cv2.GaussianBlur(noise, (0, 0), max(h, w) / 14), np.float32)


def area_cases(seed: int = SEED) -> Iterator[tuple[dict[str, object], np.ndarray, Box]]:
    """The labelled photos of the area set: (facts incl. truth, photo, drawn region).

    The same `seed` draws the same set; 12 is the published draw, any other a held-out one.
    """
    rng = np.random.default_rng(seed)
    chosen = sites()
    if QUICK:
        chosen = chosen[:: max(1, len(chosen) // 2)][:2]
    for name, base, box in chosen:
        x, y, w, h = box
        field = _shape(rng, w, h)
        start = float(rng.uniform(0.02, 0.45))
        targets = [start, min(0.6, start * 1.5 + 0.04), min(0.6, start * 2.0 + 0.08)]
        if rng.random() < 0.5:
            targets = targets[::-1]
        strength = 1.0 if rng.random() < 0.6 else float(rng.uniform(0.6, 0.75))
        sigma = float(rng.uniform(0.5, 2.5)) * max(w, h) / 80
        with_card = rng.random() < 0.34
        for visit, target in enumerate(targets):
            shape = (field >= np.quantile(field, 1.0 - target)).astype(np.float32)
            alpha = np.zeros(base.shape[:2], np.float32)
            alpha[y : y + h, x : x + w] = soften(shape, sigma) * strength
            truth = 100.0 * float((alpha[y : y + h, x : x + w] >= 0.5).mean())
            synth = depigment(base, alpha)
            for light, (ev, warm) in LIGHTS.items():
                img = relight(synth, ev, warm)
                if with_card:  # a grey side panel holding the card, under the same light
                    panel = np.full((base.shape[0], int(base.shape[1] * 0.6), 3), 150, np.uint8)
                    card = colour.render_card(int(panel.shape[1] * 0.9))
                    y0 = (base.shape[0] - card.shape[0]) // 2
                    panel[y0 : y0 + card.shape[0], 10 : 10 + card.shape[1]] = card
                    img = np.hstack([img, relight(panel, ev, warm)])
                facts: dict[str, object] = {
                    "base": name, "visit": visit, "light": light, "card": with_card,
                    "truth": truth, "strength": strength,
                }  # fmt: skip
                yield facts, img, box


def area_bench(seed: int = SEED) -> dict[str, Any]:
    rows: list[dict[str, object]] = []
    for facts, img, box in area_cases(seed):
        m, _ = me.measure(img, region=box)
        rows.append({
            **facts, "got": m.depigmented_percent, "otsu": otsu_baseline(img, box),
            "skin": m.skin_percent, "card_found": m.card is not None,
        })  # fmt: skip
    return summarise(rows)


def untouched_bench() -> tuple[float, float, int, int]:
    """The drawn regions with no patch, under the 5 lights: (mean, max, measured, declined)."""
    got, declined = [], 0
    chosen = sites()[:2] if QUICK else sites()
    for _, base, box in chosen:
        for ev, warm in LIGHTS.values():
            value = me.measure(relight(base, ev, warm), region=box)[0].depigmented_percent
            if value is None:
                declined += 1
            else:
                got.append(value)
    return statistics.mean(got), max(got), len(got), declined


def _errors(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    err = [abs(float(r[key]) - float(r["truth"])) for r in rows]
    return {"mae": statistics.mean(err), "max": max(err), "over15": sum(e > 15 for e in err)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Errors of skinvault on the photos it measured (it declines overexposed ones, and says
    so), and of the baselines on those same photos and on all of them."""
    truths = [float(r["truth"]) for r in rows]
    const = statistics.median(truths)
    for r in rows:
        r["const"] = const
    answered = [r for r in rows if r["got"] is not None]

    def measured(r: dict[str, Any], key: str) -> bool:
        return key != "got" or r["got"] is not None

    def direction(key: str) -> tuple[int, int]:
        right = total = 0
        by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in rows:
            by_key.setdefault((str(r["base"]), str(r["light"])), []).append(r)
        for series in by_key.values():
            series.sort(key=lambda r: int(r["visit"]))
            for a, b in itertools.pairwise(series):
                dt = float(b["truth"]) - float(a["truth"])
                if abs(dt) < 1.0 or not (measured(a, key) and measured(b, key)):
                    continue
                total += 1
                right += int(np.sign(dt) == np.sign(float(b[key]) - float(a[key])))
        return right, total

    def light_moves(key: str) -> list[float]:
        neutral = {(r["base"], r["visit"]): r for r in rows if r["light"] == "neutral"}
        return [abs(float(r[key]) - float(n[key]))
                for r in rows if r["light"] != "neutral"
                for n in [neutral[(r["base"], r["visit"])]]
                if measured(r, key) and measured(n, key)]  # fmt: skip

    moves, otsu_moves = light_moves("got"), light_moves("otsu")
    cards = [r for r in rows if r["card"]]
    declined_by_light = {
        light: sum(r["got"] is None for r in rows if r["light"] == light) for light in LIGHTS
    }
    return {
        "photos": len(rows), "answered": len(answered), "declined_by_light": declined_by_light,
        "bases": len({r["base"] for r in rows}),
        "truth_range": (min(truths), max(truths)), "const": const,
        "got": _errors(answered, "got"),
        "otsu_same": _errors(answered, "otsu"), "otsu_all": _errors(rows, "otsu"),
        "const_same": _errors(answered, "const"), "const_all": _errors(rows, "const"),
        "direction": direction("got"), "otsu_direction": direction("otsu"),
        "light_mean": statistics.mean(moves), "light_max": max(moves),
        "light_over3": sum(m > 3 for m in moves), "moves": len(moves),
        "otsu_light_mean": statistics.mean(otsu_moves),
        "skin_min": min(float(r["skin"]) for r in rows),
        "cards": (sum(bool(r["card_found"]) for r in cards), len(cards)),
    }  # fmt: skip


def speed_12mp() -> tuple[float, float]:
    _, base = skin_bases()[0]
    big = cv2.resize(base, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    t0, c0 = time.perf_counter(), time.process_time()
    me.measure(big)
    return time.perf_counter() - t0, time.process_time() - c0


# -- alignment ---------------------------------------------------------------------------------


def _random_h(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    a = np.deg2rad(rng.uniform(-8, 8))
    s = rng.uniform(0.9, 1.1)
    c = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]])
    r = np.array([[s * np.cos(a), -s * np.sin(a), 0], [s * np.sin(a), s * np.cos(a), 0], [0, 0, 1]])
    p = np.array([[1, 0, 0], [0, 1, 0], [rng.uniform(-4e-5, 4e-5), rng.uniform(-4e-5, 4e-5), 1]])
    t = np.array([[1, 0, w / 2 + rng.uniform(-40, 40)], [0, 1, h / 2 + rng.uniform(-40, 40)],
                  [0, 0, 1]])  # fmt: skip
    return t @ p @ r @ c


def align_bench() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    paths = sorted(CORPUS.glob("0[0-2][0-9]-jpg-*.jpg")) + sorted(CORPUS.glob("04[2-9]-jpg-*.jpg"))
    photos = []
    for p in [*paths, SET / "skimage-astronaut.png"]:
        img = cv2.imread(str(p))
        if img is None or min(img.shape[:2]) < 200:
            continue
        scale = 1024 / max(img.shape[:2])
        photos.append((p.name, cv2.resize(img, None, fx=scale, fy=scale,
                                            interpolation=cv2.INTER_AREA)))  # fmt: skip
    photos = photos[:2] if QUICK else photos
    meds, maxes, times, cpus, confident, wrong_confident = [], [], [], [], 0, 0
    for name, ref in photos:
        h, w = ref.shape[:2]
        h_true = _random_h(rng, w, h)
        mov = cv2.warpPerspective(ref, np.linalg.inv(h_true), (w, h), borderMode=cv2.BORDER_REFLECT)
        mov = relight(mov, float(rng.uniform(-0.7, 0.7)), float(rng.choice([-1.0, 0.0, 1.0])))
        t0, c0 = time.perf_counter(), time.process_time()
        got = al.align(ref, mov)
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        xs, ys = np.linspace(0.1 * w, 0.9 * w, 7), np.linspace(0.1 * h, 0.9 * h, 7)
        grid = np.float32([[x, y] for x in xs for y in ys]).reshape(-1, 1, 2)
        diff = cv2.perspectiveTransform(grid, h_true) - cv2.perspectiveTransform(
            grid, np.array(got.matrix)
        )
        e = np.sqrt((diff**2).sum(2)).ravel()
        if got.confident:
            confident += 1
            meds.append(float(np.median(e)))
            maxes.append(float(e.max()))
            wrong_confident += int(e.max() > 3.0)
        del name
    # unrelated pairs must not be called aligned
    false_pos = sum(
        al.align(photos[i][1], photos[(i + 5) % len(photos)][1]).confident
        for i in range(len(photos))
    )
    return {
        "pairs": len(photos), "confident": confident,
        "median_of_medians": statistics.median(meds) if meds else float("nan"),
        "worst_median": max(meds) if meds else float("nan"),
        "worst_max": max(maxes) if maxes else float("nan"),
        "confident_but_over3": wrong_confident,
        "time_median": statistics.median(times), "time_max": max(times),
        "cpu_median": statistics.median(cpus), "cpu_max": max(cpus),
        "unrelated_called_aligned": false_pos,
    }  # fmt: skip


def print_alignment(a: dict[str, Any]) -> None:
    print("## Alignment (1024 px, known homographies, light changed)")
    print(f"pairs: {a['pairs']}, aligned with confidence: {a['confident']}")
    print(
        f"landmark error, median per pair: median {a['median_of_medians']:.2f} px,"
        f" worst {a['worst_median']:.2f} px; max per pair: worst {a['worst_max']:.2f} px"
    )
    print(f"confident but max error > 3 px: {a['confident_but_over3']}")
    print(f"unrelated pairs called aligned: {a['unrelated_called_aligned']} of {a['pairs']}")
    print(
        f"time per pair: wall median {a['time_median']:.2f} s, max {a['time_max']:.2f} s;"
        f" CPU median {a['cpu_median']:.2f} s, max {a['cpu_max']:.2f} s"
        f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )


def _arguments(doc: str) -> argparse.Namespace:
    """``--help`` prints this and exits; ``--quick`` (a few seconds, for CI), ``--seed N``
    (another draw of the area set, to check a change on photos it was not tuned on),
    ``--area-only`` (skip the alignment part) and ``--max-clipped SHARE`` (the method's
    overexposure line, to see what another one would give) are returned."""
    parser = argparse.ArgumentParser(description=doc.split("\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the script")
    parser.add_argument(
        "--seed", type=int, default=SEED, help=f"draw of the area set (default {SEED})"
    )
    parser.add_argument("--area-only", action="store_true", help="skip the alignment part")
    parser.add_argument(
        "--max-clipped", type=float, default=None, metavar="SHARE",
        help=f"not measured over this share of clipped skin (default {me.MAX_CLIPPED})",
    )  # fmt: skip
    return parser.parse_args()


def main() -> None:
    global QUICK  # noqa: PLW0603 - a script: --quick shrinks its inputs
    args = _arguments(__doc__ or "")
    QUICK = bool(args.quick)
    if args.max_clipped is not None:
        me.MAX_CLIPPED = args.max_clipped
    cv2.setNumThreads(2)
    if not args.area_only:
        print_alignment(align_bench())
        print()
    m = area_bench(args.seed)
    print("## Depigmented share of the drawn region (percentage points)")
    print(
        f"draw (--seed): {args.seed}; photos: {m['photos']} ({m['bases']} drawn bare-skin"
        f" regions on real photos x 3 visits x 5 lights);"
        f" truth {m['truth_range'][0]:.1f}-{m['truth_range'][1]:.1f} %"
    )
    r, t = m["direction"]
    ro, to = m["otsu_direction"]
    n, answered = m["photos"], m["answered"]
    declined = ", ".join(f"{k} {v}" for k, v in m["declined_by_light"].items() if v)
    print(
        f"skinvault measured {answered} of {n} photos and declined {n - answered} as"
        f" overexposed (by light: {declined or 'none'}); its figures are on the photos it"
        " measured, the baselines' on the same photos (and on all of them)"
    )
    print("| method | mean abs error | max error | photos over 15 | direction right |"
          " light moves it (mean) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    g, os_, oa, cs, ca = (m[k] for k in ("got", "otsu_same", "otsu_all", "const_same", "const_all"))
    print(
        f"| skinvault ({me.METHOD}/{me.VERSION}) | {g['mae']:.1f} | {g['max']:.1f} |"
        f" {g['over15']} of {answered} | {r} of {t} ({100 * r / max(1, t):.0f} %) |"
        f" {m['light_mean']:.1f} |"
    )
    print(
        f"| Otsu on L* in a YCrCb skin mask | {os_['mae']:.1f} (all: {oa['mae']:.1f}) |"
        f" {os_['max']:.1f} | {os_['over15']} of {answered} (all: {oa['over15']} of {n}) |"
        f" {ro} of {to} ({100 * ro / max(1, to):.0f} %) | {m['otsu_light_mean']:.1f} |"
    )
    print(
        f"| constant guess ({m['const']:.1f} %) | {cs['mae']:.1f} (all: {ca['mae']:.1f}) |"
        f" {cs['max']:.1f} | {cs['over15']} of {answered} (all: {ca['over15']} of {n}) | - | 0 |"
    )
    print(
        f"same photo under changed light moves: mean {m['light_mean']:.1f}, max"
        f" {m['light_max']:.1f} points; {m['light_over3']} of {m['moves']} over 3"
    )
    print(f"skin found in the drawn region (all of it is skin): at least {m['skin_min']:.0f} %")
    u_mean, u_max, u_n, u_declined = untouched_bench()
    print(
        f"untouched regions (truth 0; shine and uneven tone read as pale): mean {u_mean:.1f},"
        f" max {u_max:.1f} points over {u_n} photos measured ({u_declined} declined)"
    )
    c, n = m["cards"]
    print(f"colour card found: {c} of {n} photos with a card")
    wall, cpu = speed_12mp()
    print(f"time for one 12 MP photo: {wall:.2f} s wall, {cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
