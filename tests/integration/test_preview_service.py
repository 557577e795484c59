"""The privacy preview the upload flow shows: findings + clues, and nothing stored."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

import skinvault.services.preview as preview_module
from skinvault.errors import DamagedFile, TooLarge, UnsupportedFormat
from skinvault.photos.findings import Category
from skinvault.photos.sniff import ImageFormat
from skinvault.services.preview import CHECKLIST, privacy_preview
from tests import factories
from tests.conftest import ROOT

FACE_PHOTO = ROOT / "bench" / "clues_set" / "dlib-2008_002506.jpg"
LIMIT = 20 * 2**20


def test_metadata_findings_and_the_general_checklist_for_a_plain_photo() -> None:
    preview = privacy_preview(factories.jpeg(orientation=6), max_bytes=LIMIT)
    assert preview.format is ImageFormat.JPEG
    assert preview.size == (48, 64)  # upright: the space the boxes are in
    assert {Category.LOCATION, Category.DEVICE, Category.PERSON} <= {
        f.category for f in preview.findings
    }
    assert not [c for c in preview.clues if c.kind == "face"]
    flagged = [item.text for item in preview.checklist if item.found]
    assert len(flagged) == 1 and "location" in flagged[0]
    assert [i.text for i in preview.checklist if not i.found] == list(CHECKLIST)


def test_a_face_is_found_and_flagged_first() -> None:
    if not FACE_PHOTO.exists():
        pytest.skip(f"the evaluation set is not there yet ({FACE_PHOTO})")
    preview = privacy_preview(FACE_PHOTO.read_bytes(), max_bytes=LIMIT)
    faces = [c for c in preview.clues if c.kind == "face"]
    assert len(faces) >= 3
    for c in faces:
        x, y, w, h = c.box
        assert x >= 0 and y >= 0 and x + w <= preview.size[0] and y + h <= preview.size[1]
    assert preview.checklist[0].found and "face" in preview.checklist[0].text.lower()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (factories.jpeg()[:300], DamagedFile),
        (b"%PDF-1.7" + bytes(40), UnsupportedFormat),
        (bytes(LIMIT + 1), TooLarge),
    ],
    ids=["truncated", "pdf", "over-limit"],
)
def test_bad_uploads_raise_photo_errors(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        privacy_preview(data, max_bytes=LIMIT)


def test_nothing_is_written_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    privacy_preview(factories.png(), max_bytes=LIMIT)
    assert os.listdir(tmp_path) == []


def test_the_preview_touches_no_vault_database_or_storage() -> None:
    tree = ast.parse(Path(preview_module.__file__).read_text())
    imported = {
        n.module
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("skinvault")
    }
    assert all(m == "skinvault.errors" or m.startswith("skinvault.photos") for m in imported)
