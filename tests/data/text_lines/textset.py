"""The labelled text-line set of ``bench/preview.py``: real photos with real text rendered
into them, at 12 MP, with the exact quadrilateral of every line (see SOURCES.md).

    >>> samples = build()                      # doctest: +SKIP
    >>> samples[0].name, len(samples[0].lines)  # doctest: +SKIP
    ('letter-on-042', 11)

Deterministic (fixed seeds, DejaVu fonts from Debian's ``fonts-dejavu-core``); nothing
is written to disk: the photos are made in memory each run.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "corpus"
FONTS = Path("/usr/share/fonts/truetype/dejavu")
FRAME = (4000, 3000)  # 12 MP

#: Text a patient's photo may catch by accident (names, addresses, numbers, labels).
#: Made-up people and places; the sentences are ordinary English.
LETTER = [
    "Northfield Dermatology Clinic",
    "14 Harbour Road, Leeds LS2 7QT",
    "Ms Margaret Ellison",
    "Date of birth: 03/07/1961",
    "Hospital number: 485 772 1093",
    "Dear Ms Ellison,",
    "Your next appointment is on Monday",
    "14 December at 10:30 in Room 3.",
    "Please bring your current creams.",
    "Yours sincerely, Dr A. Okafor",
    "Consultant Dermatologist",
]
BADGE = ["JAMIE ROWLANDS", "Ward 7 · Staff Nurse"]
SCREEN = [
    "Inbox (3)   Re: photos of my hand",
    "From: priya.shah@example.org",
    "Sent: Tuesday 1 December 2026 21:14",
    "Hi Priya, the patches look smaller",
]
LABEL = ["Mometasone furoate 0.1% cream", "Apply once daily  Qty 30 g", "Mr D. Novak  01/12/26"]
SIGN = ["PHARMACY", "Open 9-6"]


@dataclass(frozen=True)
class Sample:
    name: str
    background: str  # the corpus file the scene is
    jpeg: bytes
    lines: list[list[tuple[float, float]]]  # one quadrilateral per text line, frame pixels


def _background(name: str) -> Image.Image:
    with Image.open(CORPUS / name) as source:
        image = source.convert("RGB")
    # cover the 4:3 frame (crop the excess, then scale to 12 MP)
    target = FRAME[0] / FRAME[1]
    w, h = image.size
    if w / h > target:
        cut = round(h * target)
        image = image.crop(((w - cut) // 2, 0, (w - cut) // 2 + cut, h))
    else:
        cut = round(w / target)
        image = image.crop((0, (h - cut) // 2, w, (h - cut) // 2 + cut))
    return image.resize(FRAME, Image.Resampling.BICUBIC)


def _card(
    lines: list[str],
    size: int,
    *,
    paper: tuple[int, int, int],
    ink: tuple[int, int, int],
    font: str,
    pad: int,
    spacing: float = 1.6,
) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    face = ImageFont.truetype(str(FONTS / font), size)
    boxes = []
    width = max(round(face.getlength(t)) for t in lines) + 2 * pad
    height = round(len(lines) * size * spacing) + 2 * pad
    card = Image.new("RGBA", (width, height), (*paper, 255))
    draw = ImageDraw.Draw(card)
    for i, text in enumerate(lines):
        y = pad + round(i * size * spacing)
        draw.text((pad, y), text, font=face, fill=(*ink, 255))
        boxes.append(draw.textbbox((pad, y), text, font=face))
    return card, boxes


def _place(
    frame: Image.Image,
    card: Image.Image,
    boxes: list[tuple[int, int, int, int]],
    at: tuple[int, int],
    angle: float,
    blur: float,
) -> list[list[tuple[float, float]]]:
    """Rotate ``card`` by ``angle`` degrees, paste its centre at ``at``; the lines' quads."""
    rotated = card.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    if blur:
        rotated = rotated.filter(ImageFilter.GaussianBlur(blur))
    cx, cy = card.width / 2, card.height / 2
    rx, ry = rotated.width / 2, rotated.height / 2
    left, top = at[0] - round(rx), at[1] - round(ry)
    frame.paste(rotated, (left, top), rotated)
    a = math.radians(angle)  # PIL rotates counter-clockwise on screen
    cos, sin = math.cos(a), math.sin(a)
    quads = []
    for x1, y1, x2, y2 in boxes:
        quad = []
        for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2)):
            dx, dy = x - cx, y - cy
            quad.append((left + rx + dx * cos + dy * sin, top + ry - dx * sin + dy * cos))
        quads.append(quad)
    return quads


def _shade(frame: Image.Image, seed: int) -> Image.Image:
    """Uneven light and sensor noise, as a phone photo has."""
    rng = random.Random(seed)
    light = Image.linear_gradient("L").resize(frame.size).rotate(rng.uniform(0, 360))
    dark = Image.new("RGB", frame.size, (0, 0, 0))
    shaded = Image.composite(frame, dark, light.point(lambda v: 150 + v * 105 // 255))
    noise = Image.effect_noise(frame.size, 12).convert("RGB")
    return Image.blend(shaded, noise, 0.06)


SCENES = [
    # name, background, [(lines, size px, paper, ink, font, centre, angle, blur)]
    ("letter-on-042", "042-jpg-gps-dscn0010.jpg",
     [(LETTER, 46, (246, 244, 236), (20, 20, 30), "DejaVuSerif.ttf", (1900, 1500), 4.0, 1.2)]),
    ("badge-on-051", "051-jpg-hdr-iphone-hdr-yes.jpg",
     [(BADGE, 58, (255, 255, 255), (10, 40, 120), "DejaVuSans-Bold.ttf", (2900, 900), -6.0, 0.8)]),
    ("screen-on-062", "062-jpg-mobile-jolla.jpg",
     [(SCREEN, 38, (28, 30, 36), (230, 232, 240), "DejaVuSans.ttf", (1500, 2100), 2.0, 1.0)]),
    ("label-on-060", "060-jpg-mobile-hmd-nokia-8-3-5g.jpg",
     [(LABEL, 30, (250, 250, 250), (0, 0, 0), "DejaVuSansCondensed.ttf", (2600, 1700), -9.0, 0.9)]),
    ("sign-and-letter-on-041", "041-jpg-exif-org-sony-powershota5.jpg",
     [(SIGN, 150, (0, 110, 60), (255, 255, 255), "DejaVuSans-Bold.ttf", (900, 700), 0.0, 1.5),
      (LETTER[:6], 34, (240, 238, 230), (30, 30, 30), "DejaVuSerif.ttf", (2700, 2100), 12.0, 1.4)]),
    ("small-print-on-045", "045-jpg-gps-dscn0025.jpg",
     [(LETTER[2:9], 26, (248, 248, 244), (40, 40, 40), "DejaVuSans.ttf", (2200, 1400), -3.0, 1.0)]),
]  # fmt: skip


def build(limit: int | None = None) -> list[Sample]:
    samples = []
    for n, (name, background, cards) in enumerate(SCENES[:limit]):
        frame = _background(background)
        quads: list[list[tuple[float, float]]] = []
        for lines, size, paper, ink, font, at, angle, blur in cards:
            pad = size
            card, boxes = _card(lines, size, paper=paper, ink=ink, font=font, pad=pad)
            quads += _place(frame, card, boxes, at, angle, blur)
        frame = _shade(frame, seed=n)
        out = io.BytesIO()
        frame.save(out, "JPEG", quality=88)
        samples.append(Sample(name, background, out.getvalue(), quads))
    return samples
