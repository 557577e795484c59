"""How fast is the portal's upload preview, and how many text lines does it find?

Usage: ``.venv/bin/python bench/preview.py`` (a few minutes on 2 cores), ``--quick``
(one photo, for CI). One run, one table per question:

1. **Text lines**, on the labelled set of ``tests/data/text_lines`` (real photos of the
   corpus with real text rendered into them at 12 MP; see its SOURCES.md): today's
   Tesseract (``clues.find_text``, 2400 px), Tesseract at a smaller working size, and
   PP-OCRv4's DB detector (``clues.find_text_lines``) at three working sizes. A line is
   found when the boxes cover ≥ 80 % of its quadrilateral (as in ``bench/clues.py``).
   False boxes: mean boxes per skin close-up (ISIC, CC0) at 1500 px.
2. **The preview**: seconds from the end of the upload to a preview ready to show, per
   12 MP photo: scrub, decode at 1/2, faces (CenterFace), text lines, display image,
   perceptual hash, sealing (``services/drafts.py``; the database write and the HTML,
   a few ms, are not in it).
3. **Resend guard**: Hamming distances of the 64-bit dHash between each corpus photo and
   its copy re-encoded (JPEG q70) and resized (to 50 %), and between different photos;
   the threshold ``photos/phash.NEAR_DUPLICATE`` must lie between the two.

Wall times on a shared machine grow with its load (printed with them); CPU seconds do
not. The preview table times each step in its own thread (``time.thread_time``, OpenCV
held to one thread per detector), and estimates the idle 2-core time as the serial steps
plus the slower of the two detectors, which ``drafts.analyse`` runs side by side.
Tesseract runs as a child process: its CPU time is counted in (``os.times``).
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from skinvault.crypto.envelope import seal
from skinvault.crypto.keys import MemoryKeySource
from skinvault.photos import clues, phash
from skinvault.photos.scrub import scrub
from skinvault.services import drafts

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data" / "text_lines"))
import textset  # noqa: E402

NEGATIVES = ROOT / "bench" / "clues_set"
CORPUS = ROOT / "tests" / "data" / "corpus"
Box = tuple[int, int, int, int]


def _found(size: tuple[int, int], boxes: list[Box], quads: list[list[tuple[float, float]]]) -> int:
    covered = Image.new("1", size, 0)
    draw = ImageDraw.Draw(covered)
    for x, y, w, h in boxes:
        draw.rectangle((x, y, x + w - 1, y + h - 1), fill=1)
    cover = np.asarray(covered)
    hits = 0
    for quad in quads:
        mask = Image.new("1", size, 0)
        ImageDraw.Draw(mask).polygon(quad, fill=1)
        m = np.asarray(mask)
        hits += bool((cover & m).sum() >= 0.8 * m.sum())
    return hits


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (tesseract)."""
    children = os.times()
    return time.process_time() + children.children_user + children.children_system


def _full(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def _small(data: bytes) -> tuple[Image.Image, tuple[int, int]]:
    return drafts.decode_small(data)


def _methods(quick: bool) -> list[tuple[str, Callable[[bytes], list[Box]]]]:
    def tesseract(side: int) -> Callable[[bytes], list[Box]]:
        return lambda data: [c.box for c in clues.find_text(_full(data), working_side=side)]

    def dbnet(side: int) -> Callable[[bytes], list[Box]]:
        def run(data: bytes) -> list[Box]:
            small, full = _small(data)
            sx, sy = full[0] / small.width, full[1] / small.height
            found = clues.find_text_lines(small, working_side=side)
            return [drafts._scaled_box(c.box, sx, sy, full) for c in found]

        return run

    methods = [
        ("Tesseract, 2400 px (today)", tesseract(2400)),
        ("Tesseract, 1600 px", tesseract(1600)),
        ("DB (PP-OCRv4), 736 px", dbnet(736)),
        ("DB (PP-OCRv4), 960 px (preview)", dbnet(clues.TEXT_LINES_WORKING_SIDE)),
        ("DB (PP-OCRv4), 1280 px", dbnet(1280)),
    ]
    return [methods[3]] if quick else methods


def _negatives(quick: bool) -> list[Image.Image]:
    files = sorted(NEGATIVES.glob("neg-isic-*.jpg"))[: 2 if quick else 20]
    return [
        Image.open(f).convert("RGB").resize((1500, 1500), Image.Resampling.BICUBIC) for f in files
    ]


def _text_table(samples: list[textset.Sample], quick: bool) -> list[list[str]]:
    negatives = _negatives(quick)
    rows = []
    for name, method in _methods(quick):
        hits = total = 0
        seconds = []
        cpu = []
        for sample in samples:
            start, start_cpu = time.perf_counter(), _cpu()
            boxes = method(sample.jpeg)
            seconds.append(time.perf_counter() - start)
            cpu.append(_cpu() - start_cpu)
            hits += _found(textset.FRAME, boxes, sample.lines)
            total += len(sample.lines)
        false = []
        for image in negatives:
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=92)
            false.append(len(method(buf.getvalue())))
        rows.append([
            name, f"{hits / total:.2f} ({hits}/{total})", f"{statistics.median(seconds):.2f}",
            f"{statistics.median(cpu):.2f}", f"{statistics.mean(false):.2f}",
        ])  # fmt: skip
    return rows


def _preview_table(samples: list[textset.Sample]) -> list[list[str]]:
    kek = MemoryKeySource().current()
    steps: dict[str, list[float]] = {}
    for sample, clock in itertools.product(samples, (time.perf_counter, time.thread_time)):
        start = clock()
        scrubbed, _ = scrub(sample.jpeg)
        scrubbed_at = clock()
        analysed = drafts.analyse(scrubbed, clock=clock)
        mark = clock()
        seal(scrubbed, object_id="bench", kind=drafts.DRAFT, kek=kek)
        seal(analysed.display_jpeg, object_id="bench", kind=drafts.DRAFT_DISPLAY, kek=kek)
        end = clock()
        kind = "wall" if clock is time.perf_counter else "cpu"
        for step, seconds in (("scrub", scrubbed_at - start), *analysed.timings.items(),
                              ("seal", end - mark), ("**total**", end - start)):  # fmt: skip
            steps.setdefault(f"{step}/{kind}", []).append(seconds)
    names = [key.rsplit("/", 1)[0] for key in steps if key.endswith("/cpu")]
    rows = [
        [name, f"{statistics.median(steps[name + '/wall']):.2f}",
         f"{max(steps[name + '/wall']):.2f}", f"{statistics.median(steps[name + '/cpu']):.2f}",
         f"{max(steps[name + '/cpu']):.2f}"]
        for name in names if name != "**total**"
    ]  # fmt: skip
    # On an idle 2-core machine the two detectors run side by side (one thread each, one
    # OpenCV thread each: see main), so the preview waits for the sum of the serial steps
    # and the slower detector.
    cpu = {name: steps[name + "/cpu"] for name in names}
    idle = [
        sum(cpu[s][i] for s in ("scrub", "decode", "display", "seal"))
        + max(cpu["faces"][i], cpu["text"][i])
        for i in range(len(samples))
    ]
    wall = steps["**total**/wall"]
    rows.append(["**total** (wall, this machine)", f"{statistics.median(wall):.2f}",
                 f"{max(wall):.2f}", "", ""])  # fmt: skip
    rows.append(["**idle 2-core estimate** (serial steps + slower detector, CPU)", "", "",
                 f"**{statistics.median(idle):.2f}**", f"**{max(idle):.2f}**"])  # fmt: skip
    return rows


def _phash_table(quick: bool) -> tuple[list[list[str]], int, int]:
    files = [
        f
        for f in sorted(CORPUS.glob("*.jpg"))
        if "invalid" not in f.name and "corrupt" not in f.name
    ]
    hashes: dict[str, int] = {}
    same: list[int] = []
    for f in files[: 8 if quick else None]:
        try:
            with Image.open(f) as image:
                image.load()
                if min(image.size) < 64:
                    continue
                picture = ImageOps.exif_transpose(image).convert("RGB")
        except (OSError, ValueError):
            continue
        h = phash.dhash(picture)
        hashes[f.name] = h
        copy = io.BytesIO()
        small = picture.resize((max(1, picture.width // 2), max(1, picture.height // 2)))
        small.save(copy, "JPEG", quality=70)
        same.append(phash.distance(h, phash.dhash(Image.open(copy))))

    # Different photos: every pair, except pictures the corpus holds several copies of
    # (the orientation set is one picture eight ways; 007/008 one Canon photo twice).
    def series(name: str) -> str:
        if "orientation" in name:
            return "orientation"
        return "canon-40d" if "canon-40d" in name else name

    pairs = [
        (hashes[a], hashes[b])
        for a, b in itertools.combinations(sorted(hashes), 2)
        if series(a) != series(b)
    ]
    different = [phash.distance(a, b) for a, b in pairs]
    flagged = sum(phash.near_duplicate(a, b) for a, b in pairs)
    t = phash.NEAR_DUPLICATE
    rows = [
        ["same photo, re-encoded q70 and resized to 50 %", str(len(same)),
         str(max(same)), f"{statistics.mean(same):.1f}", f"{sum(d <= t for d in same)}", "-"],
        ["different photos (pairs)", str(len(different)), str(min(different)),
         f"{statistics.mean(different):.1f}", f"{sum(d <= t for d in different)}", str(flagged)],
    ]  # fmt: skip

    def structured(h: int) -> bool:
        return phash.MIN_STRUCTURE <= h.bit_count() <= 64 - phash.MIN_STRUCTURE

    closest = min(phash.distance(a, b) for a, b in pairs if structured(a) and structured(b))
    return rows, max(same), closest


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one photo: checks the script")
    quick = parser.parse_args().quick
    import cv2

    # One OpenCV thread per detector: each step's CPU time is then its own thread's
    # (time.thread_time), which is what it takes on a core of its own.
    cv2.setNumThreads(1)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    samples = textset.build(limit=1 if quick else None)
    print(f"\n## Text lines ({len(samples)} photos of 4000 × 3000, "
          f"{sum(len(s.lines) for s in samples)} lines)\n")  # fmt: skip
    print(_table(["detector", "line recall", "wall s / photo", "CPU s / photo",
                  "false boxes / skin photo"], _text_table(samples, quick)))  # fmt: skip
    print("\n## Preview: end of upload to a preview ready to show, per 12 MP photo\n")
    print(_table(["step", "wall s (median)", "wall s (max)", "CPU s (median)", "CPU s (max)"],
                 _preview_table(samples)))  # fmt: skip
    rows, worst_same, best_different = _phash_table(quick)
    print(f"\n## Resend guard: dHash distance (threshold {phash.NEAR_DUPLICATE} of 64 bits)\n")
    print(_table(["pairs", "n", "max / min", "mean", f"≤ {phash.NEAR_DUPLICATE}",
                  "flagged (near_duplicate: also needs structure)"], rows))  # fmt: skip
    print(f"\nsame-photo copies reach at most {worst_same} bits; different photos with"
          f" structure differ by at least {best_different}"
          " (the threshold must lie between)")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
