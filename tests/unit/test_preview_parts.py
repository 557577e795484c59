"""The pure parts of the upload preview: perceptual hash, text lines, the fast decode."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from skinvault.errors import DamagedFile, RequestInvalid
from skinvault.photos import phash
from skinvault.photos.clues import find_text_lines
from skinvault.services import drafts

ROOT = Path(__file__).resolve().parents[2]
SET = ROOT / "bench" / "clues_set"
CORPUS = ROOT / "tests" / "data" / "corpus"


def _jpeg(image: Image.Image, **kw: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", **kw)
    return out.getvalue()


def test_a_photo_and_its_smaller_recompressed_copy_hash_alike_and_another_photo_does_not() -> None:
    photo = Image.open(CORPUS / "062-jpg-mobile-jolla.jpg").convert("RGB")
    other = Image.open(CORPUS / "042-jpg-gps-dscn0010.jpg").convert("RGB")
    copy = Image.open(io.BytesIO(_jpeg(photo.resize((816, 612)), quality=60)))
    h = phash.dhash(photo)
    assert phash.distance(h, phash.dhash(copy)) <= phash.NEAR_DUPLICATE
    assert phash.distance(h, phash.dhash(other)) > phash.NEAR_DUPLICATE
    assert phash.from_hex(phash.to_hex(h)) == h and len(phash.to_hex(h)) == 16


def test_the_hash_is_taken_upright() -> None:
    photo = Image.open(CORPUS / "042-jpg-gps-dscn0010.jpg").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, shown upright
    sideways = Image.open(io.BytesIO(_jpeg(photo.rotate(90, expand=True), exif=exif.tobytes())))
    assert phash.distance(phash.dhash(photo), phash.dhash(sideways)) <= phash.NEAR_DUPLICATE


def test_text_lines_are_found_on_the_rendered_letter_and_none_on_bare_skin() -> None:
    truth = json.loads((SET / "text.json").read_text())["text-letter-table.jpg"]
    found = find_text_lines(Image.open(SET / "text-letter-table.jpg").convert("RGB"))
    assert all(c.kind == "text" and c.detector == "dbnet" and 0 < c.score <= 1 for c in found)
    centres = [
        (sum(p[0] for p in line["quad"]) / 4, sum(p[1] for p in line["quad"]) / 4) for line in truth
    ]
    inside = [
        any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in (c.box for c in found))
        for cx, cy in centres
    ]
    assert sum(inside) >= 0.9 * len(truth)
    for skin in sorted(SET.glob("neg-isic-*.jpg"))[:5]:
        big = Image.open(skin).convert("RGB").resize((1500, 1500))
        assert find_text_lines(big) == [], skin.name


def test_the_fast_decode_is_upright_and_reports_the_full_size() -> None:
    photo = Image.new("RGB", (4000, 3000), (120, 90, 80))
    exif = Image.Exif()
    exif[0x0112] = 6
    small, full = drafts.decode_small(_jpeg(photo, exif=exif.tobytes()))
    assert full == (3000, 4000)
    assert small.size == (1500, 2000)  # decoded at 1/2, upright


def test_damaged_bytes_are_a_clear_error() -> None:
    with pytest.raises(DamagedFile):
        drafts.decode_small(b"\xff\xd8\xff\xe0 not a photo")


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "10,10,0,5", ""])
def test_an_area_must_be_four_numbers_with_a_size(text: str) -> None:
    with pytest.raises(RequestInvalid):
        drafts.parse_box(text)


def test_an_area_is_read_in_whole_pixels() -> None:
    assert drafts.parse_box("10.4,20,30.6,40") == (10, 20, 31, 40)
