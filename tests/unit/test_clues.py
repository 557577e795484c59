"""Faces and readable text are found offline, in upright original pixel coordinates.

The photos and boxes come from bench/clues_set (see its SOURCES.md): PASCAL VOC
photos with dlib's published face boxes, CC0 dermoscopy close-ups without faces,
and rendered letter/label photos with exact line positions.
"""

from __future__ import annotations

import io
import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from skinvault.errors import DamagedFile
from skinvault.photos import clues
from skinvault.photos.clues import Clue, find_clues, find_clues_in_bytes

SET = Path(__file__).parents[2] / "bench" / "clues_set"
Box = tuple[int, int, int, int]


def _annotated() -> dict[str, list[Box]]:
    faces: dict[str, list[Box]] = {}
    for xml in ("dlib-training.xml", "dlib-testing.xml"):
        for node in ET.parse(SET / xml).getroot().iter("image"):  # noqa: S314 - our own file
            faces["dlib-" + node.get("file", "")] = [
                (int(b.get("left", 0)), int(b.get("top", 0)), int(b.get("width", 0)),
                 int(b.get("height", 0)))
                for b in node.iter("box")
            ]  # fmt: skip
    return faces


ANNOTATED = _annotated()


def _covered(face: Box, boxes: list[Box]) -> bool:
    """The issue's rule: IoU ≥ 0.5 with some box, or some box covers ≥ 80 % of the face."""
    fx, fy, fw, fh = face
    for x, y, w, h in boxes:
        iw = min(fx + fw, x + w) - max(fx, x)
        ih = min(fy + fh, y + h) - max(fy, y)
        if iw > 0 and ih > 0:
            inter = iw * ih
            if inter / (fw * fh + w * h - inter) >= 0.5 or inter / (fw * fh) >= 0.8:
                return True
    return False


def _face_boxes(found: list[Clue]) -> list[Box]:
    return [c.box for c in found if c.kind == "face"]


def _jpeg(image: Image.Image, **save: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92, **save)
    return out.getvalue()


@pytest.mark.parametrize("name", sorted(ANNOTATED))
def test_every_annotated_face_of_60_px_or_more_is_found(name: str) -> None:
    found = find_clues(Image.open(SET / name), text=False)
    boxes = _face_boxes(found)
    for face in ANNOTATED[name]:
        if face[3] >= 60:
            assert _covered(face, boxes), f"{name}: face at {face} missed; boxes {boxes}"
    assert all(c.detector == "centerface" and 0 < c.score <= 1 for c in found)


def test_no_face_boxes_on_skin_close_ups() -> None:
    negatives = sorted(SET.glob("neg-*.jpg"))
    assert len(negatives) >= 30
    for path in negatives:
        with Image.open(path) as image:
            assert find_clues(image, text=False) == [], path.name
            bigger = image.convert("RGB").resize((1500, 1500), Image.Resampling.BICUBIC)
            assert find_clues(bigger, text=False) == [], f"{path.name} at 1500 px"


def test_exif_orientation_is_applied_and_boxes_come_back_upright() -> None:
    name = "dlib-2008_002506.jpg"
    upright = Image.open(SET / name).convert("RGB")
    # Orientation 6 = "rotate 90° clockwise to display": store the pixels turned the other way.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    found = find_clues_in_bytes(_jpeg(stored, exif=exif), text=False)
    boxes = _face_boxes(found)
    assert all(x + w <= upright.width and y + h <= upright.height for x, y, w, h in boxes)
    for face in ANNOTATED[name]:
        assert _covered(face, boxes), f"face at {face} missed in upright coordinates: {boxes}"


def test_a_12_mp_photo_is_processed_and_boxes_are_in_its_own_pixels() -> None:
    name = "dlib-2009_004587.jpg"
    small = Image.open(SET / name).convert("RGB")
    factor = 8  # 500 × 375 → 4000 × 3000
    large = small.resize((small.width * factor, small.height * factor), Image.Resampling.BICUBIC)
    found = find_clues_in_bytes(_jpeg(large), text=False)
    boxes = _face_boxes(found)
    assert any(x + w > small.width or y + h > small.height for x, y, w, h in boxes)
    for fx, fy, fw, fh in ANNOTATED[name]:
        face = (fx * factor, fy * factor, fw * factor, fh * factor)
        assert _covered(face, boxes), f"face at {face} missed: {boxes}"


@pytest.mark.parametrize("detector", ["dbnet", "tesseract"])
def test_the_name_and_address_on_a_photographed_letter_are_found(detector: str) -> None:
    truth = json.loads((SET / "text.json").read_text())["text-letter-table.jpg"]
    image = Image.open(SET / "text-letter-table.jpg")
    found = find_clues(image, faces=False, text_detector=detector)
    assert found and all(c.kind == "text" and c.detector == detector for c in found)
    covered = Image.new("1", image.size, 0)
    for x, y, w, h in (c.box for c in found):
        ImageDraw.Draw(covered).rectangle((x, y, x + w - 1, y + h - 1), fill=1)
    for line in truth:
        if line["text"] in {"Ms Margaret Ellison", "27 Willow Crescent", "Harrogate HG1 4DN"}:
            quad = Image.new("1", image.size, 0)
            ImageDraw.Draw(quad).polygon([tuple(p) for p in line["quad"]], fill=1)
            line_px, covered_px = np.asarray(quad), np.asarray(covered)
            assert (line_px & covered_px).sum() >= 0.8 * line_px.sum(), line["text"]


def test_text_is_skipped_with_a_warning_when_tesseract_is_missing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(clues.shutil, "which", lambda _name: None)
    with caplog.at_level(logging.WARNING, logger="skinvault.photos.clues"):
        found = find_clues(Image.open(SET / "text-label-on-skin.jpg"), text_detector="tesseract")
    assert found == []
    assert "tesseract is not installed" in caplog.text
    # The default detector ships with the package: no Tesseract needed to find the label.
    shipped = find_clues(Image.open(SET / "text-label-on-skin.jpg"), faces=False)
    assert shipped and {c.detector for c in shipped} == {"dbnet"}


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", (SET / "dlib-2008_002506.jpg").read_bytes()[:3000]],
    ids=["empty", "garbage", "truncated-jpeg"],
)
def test_undecodable_bytes_raise_damaged_file(data: bytes) -> None:
    with pytest.raises(DamagedFile):
        find_clues_in_bytes(data)


def test_transparent_and_greyscale_images_are_accepted() -> None:
    rgba = Image.open(SET / "dlib-2009_004587.jpg").convert("RGBA")
    assert _face_boxes(find_clues(rgba, text=False))
    grey = Image.open(SET / "dlib-2009_004587.jpg").convert("L")
    assert _face_boxes(find_clues(grey, text=False))
