"""Render the text part of the clues evaluation set (run once; the output is committed).

These photos are *made*, not photographed: a letter and a name label drawn with
Pillow (DejaVu fonts) on a noise texture or on a public-domain skin close-up,
then rotated, blurred, shaded and JPEG-compressed like a phone photo. The
ground truth is exact: every text line's quadrilateral after the rotation,
written to ``text.json``. Usage: ``.venv/bin/python bench/clues_set/make_text_photos.py``.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).parent
FONTS = Path("/usr/share/fonts/truetype/dejavu")

LETTER = [
    ("DejaVuSerif-Bold.ttf", 46, "Northfield Dermatology Clinic"),
    ("DejaVuSerif.ttf", 30, "14 Harbour Road, Leeds LS2 7QT"),
    ("DejaVuSerif.ttf", 30, ""),
    ("DejaVuSerif.ttf", 32, "Ms Margaret Ellison"),
    ("DejaVuSerif.ttf", 32, "27 Willow Crescent"),
    ("DejaVuSerif.ttf", 32, "Harrogate HG1 4DN"),
    ("DejaVuSerif.ttf", 30, ""),
    ("DejaVuSerif.ttf", 30, "Date of birth: 03/08/1961   NHS number: 485 777 3456"),
    ("DejaVuSerif.ttf", 30, ""),
    ("DejaVuSerif.ttf", 30, "Dear Ms Ellison,"),
    ("DejaVuSerif.ttf", 30, "Your appointment for the review of the lesion on"),
    ("DejaVuSerif.ttf", 30, "your left shoulder is on Tuesday 12 March at 10:40."),
]
LABEL = [
    ("DejaVuSans-Bold.ttf", 40, "ELLISON, Margaret"),
    ("DejaVuSans.ttf", 32, "DOB 03/08/1961  MRN 00482913"),
]


def _texture(size: tuple[int, int], rng: random.Random, base: tuple[int, int, int]) -> Image.Image:
    """A table-top-like surface: coarse noise, blurred, with a light gradient."""
    small = Image.new("RGB", (size[0] // 16, size[1] // 16))
    small.putdata(
        [
            tuple(max(0, min(255, c + rng.randint(-18, 18))) for c in base)
            for _ in range(small.width * small.height)
        ]
    )
    return small.resize(size, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(3))


def _sheet(
    lines: list[tuple[str, int, str]], width: int, paper: tuple[int, int, int]
) -> tuple[Image.Image, list[tuple[str, tuple[int, int, int, int]]]]:
    height = 80 + sum(int(size * 1.6) for _font, size, _text in lines)
    sheet = Image.new("RGB", (width, height), paper)
    draw = ImageDraw.Draw(sheet)
    y = 40
    boxes = []
    for font_name, size, text in lines:
        font = ImageFont.truetype(str(FONTS / font_name), size)
        if text:
            draw.text((60, y), text, font=font, fill=(25, 25, 35))
            left, top, right, bottom = draw.textbbox((60, y), text, font=font)
            boxes.append((text, (left, top, right, bottom)))
        y += int(size * 1.6)
    return sheet, boxes


def _place(
    photo: Image.Image,
    sheet: Image.Image,
    boxes: list[tuple[str, tuple[int, int, int, int]]],
    at: tuple[int, int],
    angle: float,
) -> list[dict[str, object]]:
    """Paste ``sheet`` rotated by ``angle`` degrees with its centre at ``at``; line quads out."""
    rotated = sheet.convert("RGBA").rotate(angle, Image.Resampling.BICUBIC, expand=True)
    ox, oy = at[0] - rotated.width / 2, at[1] - rotated.height / 2
    photo.paste(rotated, (round(ox), round(oy)), rotated)
    cx, cy = sheet.width / 2, sheet.height / 2
    theta = math.radians(-angle)  # PIL rotates counter-clockwise; y points down
    truth = []
    for text, (left, top, right, bottom) in boxes:
        quad = []
        for x, y in ((left, top), (right, top), (right, bottom), (left, bottom)):
            dx, dy = x - cx, y - cy
            rx = dx * math.cos(theta) - dy * math.sin(theta)
            ry = dx * math.sin(theta) + dy * math.cos(theta)
            quad.append([round(at[0] + rx, 1), round(at[1] + ry, 1)])
        truth.append({"text": text, "quad": quad})
    return truth


def _finish(photo: Image.Image, rng: random.Random, blur: float, shade: float) -> Image.Image:
    photo = photo.filter(ImageFilter.GaussianBlur(blur))
    gradient = Image.linear_gradient("L").resize(photo.size).rotate(rng.uniform(0, 360))
    dark = Image.new("RGB", photo.size, (0, 0, 0))
    return Image.composite(dark, photo, gradient.point(lambda v: int(v * shade)))


def main() -> None:
    rng = random.Random(4)
    truth: dict[str, list[dict[str, object]]] = {}

    photo = _texture((2000, 1500), rng, (150, 110, 75))
    sheet, boxes = _sheet(LETTER, 1300, (244, 241, 232))
    truth["text-letter-table.jpg"] = _place(photo, sheet, boxes, (1000, 760), 4.0)
    _finish(photo, rng, 1.2, 0.25).save(HERE / "text-letter-table.jpg", quality=88)

    photo = _texture((2000, 1500), rng, (95, 100, 110))
    sheet, boxes = _sheet(LETTER, 1300, (236, 236, 228))
    placed = _place(photo, sheet, boxes, (1350, 900), -9.0)
    # Only lines entirely inside the frame are ground truth.
    truth["text-letter-edge-dim.jpg"] = [
        t
        for t in placed
        if all(0 <= x < 2000 and 0 <= y < 1500 for x, y in t["quad"])  # type: ignore[attr-defined]
    ]
    _finish(photo, rng, 1.6, 0.55).save(HERE / "text-letter-edge-dim.jpg", quality=85)

    skin = Image.open(HERE / "neg-isic-ISIC_0000010.jpg").convert("RGB")
    photo = skin.resize((2000, 1500), Image.Resampling.BICUBIC)
    sheet, boxes = _sheet(LABEL, 720, (250, 250, 250))
    truth["text-label-on-skin.jpg"] = _place(photo, sheet, boxes, (620, 1180), 2.5)
    _finish(photo, rng, 1.0, 0.2).save(HERE / "text-label-on-skin.jpg", quality=88)

    (HERE / "text.json").write_text(json.dumps(truth, indent=1) + "\n")


if __name__ == "__main__":
    main()
