"""How well do the offline detectors find faces and text? One run, one table.

Usage: ``.venv/bin/python bench/clues.py`` (about two minutes on 2 cores).

Faces: the PASCAL VOC photos in ``bench/clues_set`` with dlib's published boxes
(``dlib-training.xml``, ``dlib-testing.xml``), as they are and in three
variants derived from them here (never stored): *dim* (exposure cut to a
third), *edge* (cropped through the leftmost face, so it is cut in half by the
frame edge; the visible part is the truth) and *12 MP* (the photo at 2×,
somewhere in a 4000 × 3000 frame, so faces are small in a large photo).
A face counts as found when a box has IoU ≥ 0.5 with it or covers ≥ 80 % of it.
Negatives: the dermoscopy close-ups (ISIC, CC0), at 250 px and at 1500 px.
Text: the rendered letter/label photos and ``text.json``; a line counts as
found when text boxes cover ≥ 80 % of its quadrilateral.
"""

from __future__ import annotations

import io
import statistics
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from skinvault.photos import clues

SET = Path(__file__).parent / "clues_set"
Box = tuple[int, int, int, int]
Detector = Callable[[Image.Image], list[Box]]


@dataclass
class Sample:
    name: str
    image: Image.Image
    faces: list[Box]
    group: str
    partial: set[int] = field(default_factory=set)  # indexes of faces cut by the edge


def _dlib_samples() -> list[Sample]:
    samples = []
    for xml in ("dlib-training.xml", "dlib-testing.xml"):
        for node in ET.parse(SET / xml).getroot().iter("image"):  # noqa: S314 - our own file
            boxes = [
                (int(b.get("left", 0)), int(b.get("top", 0)), int(b.get("width", 0)),
                 int(b.get("height", 0)))
                for b in node.iter("box")
            ]  # fmt: skip
            name = "dlib-" + node.get("file", "")
            image = Image.open(SET / name).convert("RGB")
            samples.append(Sample(name, image, boxes, "original"))
    return samples


def _variants(samples: list[Sample]) -> list[Sample]:
    out = []
    for s in samples:
        dim = ImageEnhance.Brightness(s.image).enhance(0.33)
        out.append(Sample(s.name, dim, s.faces, "dim"))
        left_x, _y, left_w, _h = min(s.faces)
        cut = left_x + left_w // 2  # through the middle of the leftmost face
        edge = s.image.crop((cut, 0, s.image.width, s.image.height))
        kept, partial = [], set()
        for fx, fy, fw, fh in s.faces:
            left = max(fx, cut)
            if fx + fw - left >= fw // 3:
                if left > fx:
                    partial.add(len(kept))
                kept.append((left - cut, fy, fx + fw - left, fh))
        out.append(Sample(s.name, edge, kept, "edge", partial))
        frame = Image.new("RGB", (4000, 3000), (118, 112, 104))
        big = s.image.resize((s.image.width * 2, s.image.height * 2), Image.Resampling.BICUBIC)
        ox, oy = 2600 - big.width // 2, 1300
        frame.paste(big, (ox, oy))
        shifted = [(ox + 2 * fx, oy + 2 * fy, 2 * fw, 2 * fh) for fx, fy, fw, fh in s.faces]
        out.append(Sample(s.name, frame, shifted, "12MP"))
    return out


def _negatives() -> list[tuple[str, Image.Image]]:
    return [(p.name, Image.open(p).convert("RGB")) for p in sorted(SET.glob("neg-*.jpg"))]


def _found(face: Box, boxes: list[Box]) -> bool:
    fx, fy, fw, fh = face
    for x, y, w, h in boxes:
        iw = min(fx + fw, x + w) - max(fx, x)
        ih = min(fy + fh, y + h) - max(fy, y)
        if iw <= 0 or ih <= 0:
            continue
        inter = iw * ih
        if inter / (fw * fh + w * h - inter) >= 0.5 or inter / (fw * fh) >= 0.8:
            return True
    return False


# -- detectors -----------------------------------------------------------------------------


def centerface(side: int, threshold: float) -> Detector:
    def detect(image: Image.Image) -> list[Box]:
        return [c.box for c in clues.find_faces(image, working_side=side, threshold=threshold)]

    return detect


def haar(side: int) -> Detector:
    """OpenCV's bundled frontal (alt2) and profile cascades, profile also mirrored."""
    frontal = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml")
    profile = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_profileface.xml")

    def detect(image: Image.Image) -> list[Box]:
        small, scale = clues._scaled(image, side)
        grey = cv2.equalizeHist(np.asarray(small.convert("L")))
        width = grey.shape[1]
        boxes = []
        for cascade, mirrored in ((frontal, False), (profile, False), (profile, True)):
            src = cv2.flip(grey, 1) if mirrored else grey
            for x, y, w, h in cascade.detectMultiScale(src, 1.1, 4, minSize=(20, 20)):
                left = width - x - w if mirrored else x
                boxes.append(clues._to_original((left, y, left + w, y + h), scale, *image.size))
        return boxes

    return detect


def union(*detectors: Detector) -> Detector:
    def detect(image: Image.Image) -> list[Box]:
        return [b for d in detectors for b in d(image)]

    return detect


# -- measurements --------------------------------------------------------------------------


def _ms_per_12mp(run: Callable[[bytes], object], data: bytes, repeat: int = 3) -> float:
    run(data)  # warm-up: loads the network
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run(data)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _twelve_mp_jpeg() -> bytes:
    image = Image.open(SET / "dlib-2008_002470.jpg").convert("RGB")
    out = io.BytesIO()
    image.resize((4000, 3000), Image.Resampling.BICUBIC).save(out, "JPEG", quality=92)
    return out.getvalue()


def _face_row(
    name: str, detect: Detector, samples: list[Sample], negatives: list[tuple[str, Image.Image]]
) -> list[str]:
    hits: dict[str, list[bool]] = {k: [] for k in ("big", "small", "dim", "edge", "12MP")}
    for s in samples:
        boxes = detect(s.image)
        for i, face in enumerate(s.faces):
            ok = _found(face, boxes)
            if s.group == "original":
                hits["big" if face[3] >= 40 else "small"].append(ok)
            elif s.group == "edge":
                if i in s.partial:
                    hits["edge"].append(ok)
            else:
                hits[s.group].append(ok)
    false_small = [len(detect(img)) for _n, img in negatives]
    false_big = [
        len(detect(img.resize((1500, 1500), Image.Resampling.BICUBIC))) for _n, img in negatives
    ]
    data = _twelve_mp_jpeg()

    def run(blob: bytes) -> object:
        return detect(Image.open(io.BytesIO(blob)).convert("RGB"))

    ms = _ms_per_12mp(run, data)

    def rate(v: list[bool]) -> str:
        return f"{sum(v) / len(v):.2f} ({sum(v)}/{len(v)})" if v else "-"

    return [
        name, rate(hits["big"]), rate(hits["small"]), rate(hits["dim"]), rate(hits["edge"]),
        rate(hits["12MP"]), f"{statistics.mean(false_small):.3f}",
        f"{statistics.mean(false_big):.3f}", f"{ms:.0f}",
    ]  # fmt: skip


def _text_rows(negatives: list[tuple[str, Image.Image]]) -> list[list[str]]:
    """One row per text detector (the shipped PP-OCRv4 line detector, the default, and
    Tesseract), then faces + text with the default, all on the same images."""
    import json

    truth = json.loads((SET / "text.json").read_text())
    data = _twelve_mp_jpeg()
    rows = []
    for label, detector, find in (
        ("dbnet: PP-OCRv4 lines (default)", "dbnet", clues.find_text_lines),
        ("tesseract (text lines)", "tesseract", clues.find_text),
    ):
        found = total = 0
        for name, lines in truth.items():
            image = Image.open(SET / name).convert("RGB")
            covered = Image.new("1", image.size, 0)
            draw = ImageDraw.Draw(covered)
            for x, y, w, h in (c.box for c in find(image)):
                draw.rectangle((x, y, x + w - 1, y + h - 1), fill=1)
            cover = np.asarray(covered)
            for line in lines:
                mask = Image.new("1", image.size, 0)
                ImageDraw.Draw(mask).polygon([tuple(p) for p in line["quad"]], fill=1)
                m = np.asarray(mask)
                total += 1
                found += bool((cover & m).sum() >= 0.8 * m.sum())
        false_small = [len(find(img)) for _n, img in negatives]
        false_big = [
            len(find(img.resize((1500, 1500), Image.Resampling.BICUBIC))) for _n, img in negatives
        ]

        def text_only(blob: bytes, detector: str = detector) -> object:
            return clues.find_clues_in_bytes(blob, faces=False, text=True, text_detector=detector)

        rows.append([label, f"{found / total:.2f} ({found}/{total})",
                     f"{statistics.mean(false_small):.3f}", f"{statistics.mean(false_big):.3f}",
                     f"{_ms_per_12mp(text_only, data, 1):.0f}"])  # fmt: skip
    ms_all = _ms_per_12mp(clues.find_clues_in_bytes, data, 1)
    rows.append(["find_clues_in_bytes (faces + text, default)", "", "", "", f"{ms_all:.0f}"])
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _arguments(doc: str) -> bool:
    """``--help`` prints this and exits; ``--quick`` (a few seconds, for CI) is returned."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the script")
    return bool(parser.parse_args().quick)


def main() -> None:
    quick = _arguments(__doc__ or "")
    cv2.setNumThreads(2)
    originals = _dlib_samples()[: 2 if quick else None]
    samples = originals + _variants(originals)
    negatives = _negatives()[: 1 if quick else None]
    chosen = f"centerface @{clues.FACE_WORKING_SIDE} t={clues.FACE_THRESHOLD} (chosen)"
    detectors: list[tuple[str, Detector]] = [
        (chosen, centerface(clues.FACE_WORKING_SIDE, clues.FACE_THRESHOLD)),
        ("centerface @1280 t=0.2", centerface(1280, 0.2)),
        ("centerface @2048 t=0.2", centerface(2048, 0.2)),
        ("centerface @1600 t=0.5", centerface(1600, 0.5)),
        ("centerface @1600 t=0.1", centerface(1600, 0.1)),
        ("haar frontal+profile @1600", haar(1600)),
        (
            "union centerface @1600 t=0.2 + haar",
            union(centerface(1600, 0.2), haar(1600)),
        ),
    ]
    print(
        f"faces: {len(originals)} photos, {sum(len(s.faces) for s in originals)} annotated faces;"
        f" negatives: {len(negatives)} skin close-ups; cv2 {cv2.__version__}, threads 2"
    )
    rows = [_face_row(name, d, samples, negatives) for name, d in detectors[: 1 if quick else None]]
    print(
        _table(
            [
                "face detector", "recall ≥40 px", "recall <40 px", "recall dim ≥40 px",
                "recall half-cut at edge", "recall small in 12 MP", "false boxes/skin 250 px",
                "false boxes/skin 1500 px", "ms per 12 MP",
            ],
            rows,
        )
    )  # fmt: skip
    print()
    print(
        _table(
            ["text", "line recall", "false boxes/skin 250 px", "false boxes/skin 1500 px",
             "ms per 12 MP"],
            _text_rows(negatives),
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
