"""`skinvault inspect` and `skinvault scrub` as a user runs them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skinvault.cli import app
from skinvault.photos.scrub import inspect
from tests import factories

runner = CliRunner()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skinvault", *args],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "Jane Doe rash photos"
    (folder / "day 2").mkdir(parents=True)
    (folder / "IMG_2024_jane.jpg").write_bytes(factories.jpeg())
    (folder / "day 2" / "IMG_2025_jane.png").write_bytes(factories.png())
    (folder / "day 2" / "scan.webp").write_bytes(factories.webp(orientation=6))
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return folder


def _digests(folder: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_scrub_folder_writes_neutral_names_and_reports_json(photos: Path, tmp_path: Path) -> None:
    before = _digests(photos)
    out = tmp_path / "to-send"
    proc = _run(
        "scrub",
        str(photos),
        "--out",
        str(out),
        "--site",
        "Left hand",
        "--name-template",
        "{site}-{n:02}.jpg",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["left-hand-01.jpg", "left-hand-02.png", "left-hand-03.webp"]
    for entry in report["files"]:
        assert set(entry) >= {"input", "output", "format", "lossless", "findings"}
        assert entry["lossless"] is True
        assert {"category", "description"} <= set(entry["findings"][0])
        assert inspect(Path(entry["output"]).read_bytes()).findings == ()
    assert _digests(photos) == before  # inputs untouched


def test_scrub_never_overwrites_earlier_output(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for _ in range(2):
        assert (
            runner.invoke(
                app, ["scrub", str(photos / "IMG_2024_jane.jpg"), "--out", str(out)]
            ).exit_code
            == 0
        )
    assert sorted(p.name for p in out.iterdir()) == ["photo-001.jpg", "photo-002.jpg"]


def test_failed_files_are_named_and_the_rest_still_processed(photos: Path, tmp_path: Path) -> None:
    (photos / "notes.txt").write_text("patient notes")
    (photos / "broken.jpg").write_bytes(factories.jpeg()[:500])
    out = tmp_path / "out"
    proc = _run("scrub", str(photos), "--out", str(out))
    assert proc.returncode == 1
    assert "broken.jpg: damaged" in proc.stderr and "truncated or corrupt" in proc.stderr
    assert "notes.txt: not an image" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 2  # one line each, no traceback
    written = sorted(p.name for p in out.iterdir())
    assert written == ["photo-001.jpg", "photo-002.png", "photo-003.webp"]  # no partial files


def test_in_place_replaces_atomically_and_keeps_mode(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(factories.jpeg())
    photo.chmod(0o600)
    result = runner.invoke(app, ["scrub", str(photo), "--in-place"])
    assert result.exit_code == 0, result.output
    assert inspect(photo.read_bytes()).findings == ()
    assert os.stat(photo).st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["photo.jpg"]  # no temp file left


def test_in_place_leaves_a_damaged_file_untouched(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    damaged = factories.jpeg()[:400]
    photo.write_bytes(damaged)
    result = runner.invoke(app, ["scrub", str(photo), "--in-place"])
    assert result.exit_code == 1
    assert photo.read_bytes() == damaged
    assert [p.name for p in tmp_path.iterdir()] == ["photo.jpg"]


@pytest.mark.parametrize(
    "args",
    [
        ["scrub", "x.jpg"],
        ["scrub", "x.jpg", "--out", "o", "--in-place"],
        ["scrub", "x.jpg", "--out", "o", "--name-template", "{name}"],
        ["scrub", "x.jpg", "--out", "o", "--name-template", "fixed"],
        ["scrub", "x.jpg", "--out", "o", "--name-template", "../{n}"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert runner.invoke(app, args).exit_code == 2


def test_inspect_groups_findings_in_plain_language_and_never_modifies(photos: Path) -> None:
    photo = photos / "IMG_2024_jane.jpg"
    before = photo.read_bytes()
    proc = _run("inspect", str(photo))
    assert proc.returncode == 0
    assert "Where the photo was taken" in proc.stdout
    assert "GPS position ≈ 52.52 N, 13.41 E" in proc.stdout
    assert "Jane Patient" in proc.stdout
    assert photo.read_bytes() == before


def test_inspect_json_and_missing_file(photos: Path) -> None:
    result = runner.invoke(
        app, ["inspect", "--json", str(photos / "IMG_2024_jane.jpg"), "nope.jpg"]
    )
    assert result.exit_code == 1
    files = json.loads(result.stdout)["files"]
    assert files[0]["format"] == "jpeg"
    assert {f["category"] for f in files[0]["findings"]} >= {"location", "time", "device", "person"}
    assert files[1] == {"input": "nope.jpg", "error": "no such file or folder"}


def test_wrong_extension_is_detected_from_the_bytes(tmp_path: Path) -> None:
    disguised = tmp_path / "holiday.jpg"
    disguised.write_bytes(factories.png())
    out = tmp_path / "out"
    assert runner.invoke(app, ["scrub", str(disguised), "--out", str(out)]).exit_code == 0
    assert [p.name for p in out.iterdir()] == ["photo-001.png"]


def test_a_killed_batch_leaves_only_complete_files_and_the_next_run_sweeps(tmp_path: Path) -> None:
    import io
    import signal
    import time

    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    big = io.BytesIO()
    factories.image(size=(3000, 2000)).save(big, "JPEG", quality=95, exif=factories.gps_exif())
    for i in range(60):
        (src / f"IMG_{i:03}.jpg").write_bytes(big.getvalue())
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "skinvault", "scrub", str(src), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list(out.glob("photo-*")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # its workers die with it (PR_SET_PDEATHSIG)
    published = sorted(out.glob("photo-*"))
    assert published, "the batch was killed before writing anything; the test proves nothing"
    for photo in published:  # every file under a real name is complete and clean
        assert inspect(photo.read_bytes()).findings == ()
        with Image.open(photo) as img:
            img.load()
    # A stranded temporary file (as a kill mid-write leaves) of a dead process...
    stranded = out / ".skinvault-999999999-abc.tmp"
    stranded.write_bytes(b"\xff\xd8partial")
    assert runner.invoke(app, ["scrub", str(src / "IMG_000.jpg"), "--out", str(out)]).exit_code == 0
    assert not stranded.exists()  # ...is swept by the next run
    assert not list(out.glob(".skinvault-*"))


def test_in_place_batch_on_all_cores_cleans_every_file_in_its_place(tmp_path: Path) -> None:
    makers = [factories.jpeg, factories.png, factories.webp]
    files = []
    for i in range(9):  # enough to use the worker pool
        path = tmp_path / f"IMG_{i}.img"
        path.write_bytes(makers[i % 3]())
        files.append(path)
    proc = _run("scrub", str(tmp_path), "--in-place", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["files"]
    assert [r["output"] for r in report] == [r["input"] for r in report]
    for path in files:
        assert inspect(path.read_bytes()).findings == ()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files)


def test_site_names_the_copies_when_no_template_is_given(tmp_path: Path) -> None:
    src = tmp_path / "IMG_0001.jpg"
    src.write_bytes(factories.jpeg())
    proc = _run("scrub", str(src), "--out", str(tmp_path / "out"), "--site", "left hand")
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["left-hand-001.jpg"]


def test_out_folder_is_not_created_when_nothing_is_written(tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"not a photo at all")
    out = tmp_path / "to-send"
    proc = _run("scrub", str(bad), "--out", str(out))
    assert proc.returncode == 1 and "notes.jpg" in proc.stderr
    assert not out.exists()


def test_summary_rows_show_the_part_of_each_path_that_differs(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "visit"
    deep.mkdir(parents=True)
    for name in ("first.jpg", "second.jpg"):
        (deep / name).write_bytes(factories.jpeg())
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, "-m", "skinvault", "scrub", str(deep), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert "first.jpg" in proc.stdout and "second.jpg" in proc.stdout


def test_avif_comes_out_named_avif(tmp_path: Path) -> None:
    heif = (Path(__file__).parent.parent / "data/corpus/006-heic-samplefilehub.heif").read_bytes()
    assert heif[4:8] == b"ftyp"
    src = tmp_path / "photo.avif"
    src.write_bytes(heif[:8] + b"avif" + heif[12:])  # an AVIF-branded file
    proc = _run("scrub", str(src), "--out", str(tmp_path / "out"), "--json")
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["files"]
    assert entry["output"].endswith(".avif")


@pytest.mark.parametrize("output", [["--json"], []], ids=["json", "table"])
def test_a_plain_scrub_starts_without_the_full_cli(tmp_path: Path, output: list[str]) -> None:
    src = tmp_path / "a.jpg"
    src.write_bytes(factories.jpeg())
    argv = ["skinvault", "scrub", str(src), "--out", str(tmp_path / "o"), *output]
    # Start-up cost (bench/scrub.py): none of these is needed to scrub and report success;
    # ctypes.util would run ldconfig, Rich is only for colouring errors.
    heavy = ("typer", "rich", "sqlalchemy", "pydantic", "PIL", "numpy", "fastapi", "ctypes.util")
    code = (
        "import sys, skinvault.quick as q\n"
        f"sys.argv = {argv!r}\n"
        "try:\n    q.main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "o" / "photo-001.jpg").exists()
