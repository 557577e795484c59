"""`skinvault clues` and `skinvault scrub --redact/--crop` as a user runs them, on a real photo.

The face photo comes from the evaluation set in ``bench/clues_set`` (PASCAL VOC
images with the face boxes dlib publishes for them; see its SOURCES.md).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skinvault.photos.scrub import inspect
from tests import factories
from tests.conftest import ROOT, exiftool_json

CLUES_SET = ROOT / "bench" / "clues_set"
FACE_PHOTO = "2008_002506.jpg"  # three people, faces 90-109 px, one with glasses

Box = tuple[int, int, int, int]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skinvault", *args],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _annotated_faces(name: str) -> list[Box]:
    for xml in sorted(CLUES_SET.glob("dlib-*.xml")):
        for image in ET.parse(xml).getroot().iter("image"):  # noqa: S314 - our own file
            if image.get("file") == name:
                return [
                    (
                        int(b.get("left", 0)),
                        int(b.get("top", 0)),
                        int(b.get("width", 0)),
                        int(b.get("height", 0)),
                    )
                    for b in image.iter("box")
                    if b.get("ignore") != "1"
                ]
    return []


@pytest.fixture
def face_photo(tmp_path: Path) -> tuple[Path, list[Box]]:
    """A copy of the face photo under a name that identifies someone, and its face boxes."""
    source = CLUES_SET / f"dlib-{FACE_PHOTO}"
    faces = _annotated_faces(FACE_PHOTO)
    if not source.exists() or not faces:
        pytest.skip(f"the evaluation set is not there yet ({source} and its dlib-*.xml boxes)")
    copy = tmp_path / "IMG_1234 Jane Doe.jpg"
    copy.write_bytes(source.read_bytes())
    return copy, faces


def _covered_share(face: Box, boxes: list[Box]) -> float:
    """Share of ``face`` inside the union of ``boxes``."""
    x, y, w, h = face
    mask = np.zeros((h, w), bool)
    for bx, by, bw, bh in boxes:
        mask[max(0, by - y) : max(0, by + bh - y), max(0, bx - x) : max(0, bx + bw - x)] = True
    return float(mask.mean())


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def test_clues_json_lists_the_faces_in_a_real_photo(face_photo: tuple[Path, list[Box]]) -> None:
    path, faces = face_photo
    proc = _run("clues", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["files"]
    assert entry["input"] == str(path)
    found = [c for c in entry["clues"] if c["kind"] == "face"]
    assert all(set(c) >= {"kind", "box", "score"} and len(c["box"]) == 4 for c in entry["clues"])
    boxes = [tuple(c["box"]) for c in found]
    for face in faces:
        assert _covered_share(face, boxes) >= 0.8, f"face {face} not found in {boxes}"


def test_clues_prints_a_readable_list(face_photo: tuple[Path, list[Box]]) -> None:
    proc = _run("clues", str(face_photo[0]))
    assert proc.returncode == 0, proc.stderr
    assert "face at x=" in proc.stdout and "score" in proc.stdout


def test_clues_preview_draws_boxes_into_a_neutral_metadata_free_copy(
    face_photo: tuple[Path, list[Box]], tmp_path: Path
) -> None:
    path, _ = face_photo
    folder = tmp_path / "previews"
    proc = _run("clues", str(path), "--json", "--preview", str(folder))
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["files"]
    written = sorted(folder.iterdir())
    assert [p.name for p in written] == ["clues-001.jpg"]
    assert entry["preview"] == str(written[0])
    assert inspect(written[0].read_bytes()).findings == ()
    assert "Jane" not in written[0].name
    # The boxes are drawn: the preview differs from the photo along a face box edge.
    x, y, w, _ = entry["clues"][0]["box"]
    edge = np.abs(_pixels(written[0])[y, x : x + w] - _pixels(path)[y, x : x + w]).mean()
    assert edge > 30


def test_scrub_redact_faces_fills_every_face_and_reports_it(
    face_photo: tuple[Path, list[Box]], tmp_path: Path
) -> None:
    path, faces = face_photo
    out = tmp_path / "to-send"
    proc = _run("scrub", str(path), "--redact", "faces", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["files"]
    assert entry["lossless"] is False
    assert any("re-encoded" in n for n in entry["notes"])
    assert entry["redacted"] and {r["kind"] for r in entry["redacted"]} == {"face"}
    covered = [tuple(r["covered"]) for r in entry["redacted"]]
    for face in faces:
        assert _covered_share(face, covered) >= 0.8
    output = Path(entry["output"])
    assert output.name == "photo-001.jpg"
    before, after = _pixels(path), _pixels(output)
    inside = np.zeros(before.shape[:2], bool)
    for x, y, w, h in covered:
        inside[y : y + h, x : x + w] = True
        assert after[y + 1 : y + h - 1, x + 1 : x + w - 1].max() <= 2, "picture left in a fill"
    assert np.abs(after[~inside] - before[~inside]).mean() < 2.0
    (meta,) = exiftool_json(output)
    assert not [k for k in meta if k.split(":")[0] in {"IFD0", "ExifIFD", "GPS", "XMP-x", "IPTC"}]
    assert "Comment" not in " ".join(meta)  # the original's JPEG comment is gone too


def test_scrub_crop_cuts_to_the_region_and_says_so(tmp_path: Path) -> None:
    photo = tmp_path / "rash.jpg"
    photo.write_bytes(factories.jpeg(orientation=6))  # 64 × 48 stored, 48 × 64 upright
    out = tmp_path / "out"
    proc = _run("scrub", str(photo), "--crop", "4,8,30,40", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["files"]
    assert entry["lossless"] is False and entry["redacted"] == []
    assert any("cropped to 30 × 40" in n for n in entry["notes"])
    with Image.open(entry["output"]) as image:
        assert image.size == (30, 40)
    assert inspect(Path(entry["output"]).read_bytes()).findings == ()


def test_plain_scrub_stays_lossless_and_never_loads_pillow_or_a_detector(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(factories.jpeg())
    code = (
        "import sys; from typer.testing import CliRunner; from skinvault.cli import app;"
        f"r = CliRunner().invoke(app, ['scrub', {str(photo)!r}, '--out', {str(tmp_path / 'o')!r}]);"
        "assert r.exit_code == 0, r.output;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'cv2', 'PIL'}"
        " or m in {'skinvault.photos.clues', 'skinvault.photos.redact'}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_damaged_photo_gets_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(factories.jpeg()[:300])
    good = tmp_path / "good.png"
    good.write_bytes(factories.png())
    out = tmp_path / "out"
    proc = _run("scrub", str(bad), str(good), "--redact", "faces,text", "--out", str(out), "--json")
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "bad.jpg" in lines[0]
    files = {e["input"]: e for e in json.loads(proc.stdout)["files"]}
    assert files[str(bad)]["output"] is None and "error" in files[str(bad)]
    assert [p.name for p in out.iterdir()] == ["photo-001.png"]  # no temp file, nothing for bad

    proc = _run("clues", str(bad), "--json")
    assert proc.returncode == 1 and "bad.jpg" in proc.stderr
    assert "error" in json.loads(proc.stdout)["files"][0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--redact", "faces,tattoos"], "unknown clue"),
        (["--crop", "1,2,3"], "x,y,w,h"),
        (["--crop", "0,0,0,10"], "width and height"),
        (["--blur"], "--blur only applies"),
    ],
)
def test_bad_options_are_usage_errors_and_write_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(factories.jpeg())
    out = tmp_path / "out"
    proc = _run("scrub", str(photo), "--out", str(out), *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not out.exists()


def test_redact_refuses_in_place(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(factories.jpeg())
    before = photo.read_bytes()
    proc = _run("scrub", str(photo), "--in-place", "--redact", "faces")
    assert proc.returncode == 2 and "--out" in proc.stderr
    assert photo.read_bytes() == before


def test_crop_outside_the_photo_fails_that_file_only(tmp_path: Path) -> None:
    photo = tmp_path / "a.png"
    photo.write_bytes(factories.png())
    out = tmp_path / "out"
    proc = _run("scrub", str(photo), "--crop", "500,500,10,10", "--out", str(out))
    assert proc.returncode == 1 and "outside" in proc.stderr
    assert not out.exists()  # nothing written: no --out folder left behind


def test_redacted_heif_becomes_a_jpeg_named_as_one(tmp_path: Path) -> None:
    photo = tmp_path / "a.heic"
    photo.write_bytes(factories.heif())
    out = tmp_path / "out"
    proc = _run("scrub", str(photo), "--crop", "0,0,32,32", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["files"]
    assert entry["format"] == "jpeg" and entry["output"].endswith(".jpg")
    assert Image.open(io.BytesIO(Path(entry["output"]).read_bytes())).size == (32, 32)


def test_redacted_letter_no_longer_reads_as_the_original_words(tmp_path: Path) -> None:
    letter = CLUES_SET / "text-letter-table.jpg"
    if not letter.exists() or shutil.which("tesseract") is None:
        pytest.skip(f"needs {letter} from the evaluation set and the tesseract binary")
    names = ["Ellison", "Margaret", "Harbour", "Willow", "485"]
    before = subprocess.run(
        ["tesseract", str(letter), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert all(n in before for n in names)  # the test is meaningful: tesseract reads them
    out = tmp_path / "out"
    proc = _run("scrub", str(letter), "--redact", "text", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["files"]
    assert entry["redacted"] and {r["kind"] for r in entry["redacted"]} == {"text"}
    after = subprocess.run(
        ["tesseract", entry["output"], "-"], capture_output=True, text=True, check=True
    ).stdout
    assert not [n for n in names if n in after], after


def test_a_detector_failure_fails_the_file_instead_of_passing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skinvault.batch import Destination, Edit, scrub_file
    from skinvault.photos import clues

    def broken(*args: object, **kwargs: object) -> list[clues.Clue]:
        raise RuntimeError("model file unreadable")

    monkeypatch.setattr(clues, "find_clues", broken)
    photo = tmp_path / "a.png"
    photo.write_bytes(factories.png())
    out = tmp_path / "out"
    result = scrub_file(photo, Destination.folder(out), Edit(frozenset({"face"})))
    assert not result.ok and "model file unreadable" in (result.error or "")
    assert list(out.iterdir()) == []
