"""``skinvault align`` / ``skinvault measure`` end to end on files."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from skinvault.cli import app
from tests.unit.test_tracking_align import _texture
from tests.unit.test_tracking_measure import _photo

runner = CliRunner()


def test_align_json_and_out(tmp_path: Path) -> None:
    ref = _texture(seed=11)
    h, w = ref.shape[:2]
    shift = np.array([[1, 0, 30], [0, 1, -20], [0, 0, 1]], np.float64)
    mov = cv2.warpPerspective(ref, np.linalg.inv(shift), (w, h), borderMode=cv2.BORDER_REFLECT)
    cv2.imwrite(str(tmp_path / "a.png"), ref)
    cv2.imwrite(str(tmp_path / "b.png"), mov)
    out = tmp_path / "b-aligned.jpg"
    res = runner.invoke(
        app,
        ["align", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--out", str(out), "--json"],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["confident"] is True and data["inliers"] >= 30
    assert abs(data["matrix"][0][2] - 30) < 1 and abs(data["matrix"][1][2] + 20) < 1
    assert cv2.imread(str(out)).shape == ref.shape


def test_align_unrelated_says_no_and_writes_nothing(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), _texture(seed=1))
    cv2.imwrite(str(tmp_path / "b.png"), _texture(seed=2))
    out = tmp_path / "w.jpg"
    res = runner.invoke(
        app,
        ["align", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--out", str(out), "--json"],
    )
    assert res.exit_code == 0
    assert json.loads(res.output)["confident"] is False
    assert not out.exists()


def test_measure_json_many_files_and_a_bad_one(tmp_path: Path) -> None:
    img, truth = _photo(0.2)
    cv2.imwrite(str(tmp_path / "p.png"), img)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    res = runner.invoke(
        app, ["measure", str(tmp_path / "p.png"), str(tmp_path / "bad.jpg"), "--json"]
    )
    assert res.exit_code == 1
    files = json.loads(res.output)["files"]
    assert abs(files[0]["depigmented_percent"] - truth) <= 2
    assert set(files[0]) >= {
        "input",
        "skin_percent",
        "depigmented_percent",
        "card",
        "method",
        "notes",
    }
    assert "error" in files[1]


def test_measure_region_usage_error(tmp_path: Path) -> None:
    img, _ = _photo(0.1)
    cv2.imwrite(str(tmp_path / "p.png"), img)
    res = runner.invoke(app, ["measure", str(tmp_path / "p.png"), "--region", "1,2,3"])
    assert res.exit_code == 2


def test_measure_leaves_out_the_parts_given_and_refuses_a_part_outside(tmp_path: Path) -> None:
    img, truth = _photo(0.1)  # a pale disc in the middle of 800 x 600
    cv2.imwrite(str(tmp_path / "p.png"), img)
    res = runner.invoke(app, ["measure", str(tmp_path / "p.png"), "--json"])
    assert abs(json.loads(res.stdout)["files"][0]["depigmented_percent"] - truth) <= 2
    args = ["measure", str(tmp_path / "p.png"), "--exclude", "250,150,300,300", "--json"]
    res = runner.invoke(app, [*args, "--exclude", "0,0,10,10"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["files"][0]["depigmented_percent"] <= 1.0
    res = runner.invoke(app, [*args, "--exclude", "900,0,10,10"])
    assert res.exit_code == 1
    error = json.loads(res.stdout)["files"][0]["error"]
    assert "900,0,10,10 is not inside the photo (800 × 600 pixels" in error
    res = runner.invoke(app, ["measure", str(tmp_path / "p.png"), "--exclude", "1,2,-3,4"])
    assert res.exit_code == 2 and "a part to leave out needs" in res.output


def test_measure_says_why_an_overexposed_photo_is_not_measured(tmp_path: Path) -> None:
    img, _ = _photo(0.2, gain=1.5)  # red clipped on all the skin
    cv2.imwrite(str(tmp_path / "bright.png"), img)
    res = runner.invoke(app, ["measure", str(tmp_path / "bright.png"), "--json"])
    assert res.exit_code == 0, res.output
    (got,) = json.loads(res.output)["files"]
    assert got["depigmented_percent"] is None and "overexposed" in got["notes"][0]
    said = runner.invoke(app, ["measure", str(tmp_path / "bright.png")])
    text = " ".join(said.output.split())  # the console wraps long lines
    assert said.exit_code == 0 and "not measured:" in text and "without flash" in text, text


def test_align_names_the_file_it_cannot_read(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), _texture(seed=1))
    (tmp_path / "notes.txt").write_text("not a photo")
    res = runner.invoke(app, ["align", str(tmp_path / "a.png"), str(tmp_path / "notes.txt")])
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "notes.txt" in text and "BytesIO" not in text, text
    gone = runner.invoke(app, ["align", str(tmp_path / "gone.jpg"), str(tmp_path / "a.png")])
    said = " ".join(gone.output.split())
    assert gone.exit_code == 1 and "gone.jpg: cannot be read" in said, said
