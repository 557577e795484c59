"""The wheel, installed with plain ``pip install`` into a fresh virtual environment, has
every feature: the face detector finds faces (its weights ship inside the package), the
scrubber writes a clean copy, and ``serve`` answers with the portal (templates, static
files and migrations inside the wheel). It runs outside the checkout, so nothing from
``src/`` can stand in for a missing file.

Dependencies come from PyPI (or pip's cache); a machine without the registry skips
with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

import pytest

from tests.conftest import ROOT, exiftool_json
from tests.ports import serve_on_free_port

FACE_PHOTO = ROOT / "bench" / "clues_set" / "dlib-2008_002506.jpg"  # three faces (see SOURCES.md)
CAMERA_PHOTO = ROOT / "tests" / "data" / "corpus" / "007-jpg-canon-40d.jpg"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``bin/`` of a fresh venv holding only the wheel and its declared dependencies."""
    where = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(where)],
        capture_output=True, text=True, check=False, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = where.glob("skinvault-*.whl")
    env_dir = where / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    got = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         str(wheel)],
        capture_output=True, text=True, check=False, timeout=1200, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if got.returncode != 0 and "No matching distribution" in got.stderr + got.stdout:
        pytest.skip(f"PyPI is not reachable from here: {got.stderr[-300:]}")
    assert got.returncode == 0, got.stderr[-3000:]
    return bin_dir


def _run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKINVAULT_")}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(bin_dir / "skinvault"), *args],
        capture_output=True, text=True, check=False, timeout=300, cwd=cwd, env=env,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_the_installed_package_runs_from_its_own_files(installed: Path, tmp_path: Path) -> None:
    probe = subprocess.run(
        [str(installed / "python"), "-c", "import skinvault; print(skinvault.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    assert str(ROOT / "src") not in probe.stdout
    assert "site-packages" in probe.stdout


def test_the_installed_face_detector_finds_the_faces(installed: Path, tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    shutil.copy(FACE_PHOTO, photo)
    proc = _run(installed, "clues", str(photo), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["files"]
    faces = [c for c in entry["clues"] if c["kind"] == "face"]
    assert len(faces) >= 3, entry


def test_the_installed_scrubber_writes_a_clean_copy(installed: Path, tmp_path: Path) -> None:
    out = tmp_path / "clean.jpg"
    proc = _run(installed, "scrub", str(CAMERA_PHOTO), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (source,) = exiftool_json(CAMERA_PHOTO)
    (tags,) = exiftool_json(out)
    assert "IFD0:Model" in source  # the oracle sees what the copy must lose
    names = {key.split(":", 1)[-1] for key in tags}
    assert not names & {"Model", "Make", "DateTimeOriginal", "SerialNumber"}, sorted(names)


def test_the_installed_service_serves_the_portal(installed: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKINVAULT_")}
    env["SKINVAULT_DATA_DIR"] = str(tmp_path / "data")

    def page_answers(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as got:
                return bool(got.status == 200)
        except OSError:
            return False

    proc, port = serve_on_free_port(
        lambda p: [str(installed / "skinvault"), "serve", "--port", str(p)],
        ready=page_answers, cwd=tmp_path, env=env, timeout=120,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as got:
            page = got.read().decode()
        assert "<form" in page and "password" in page.lower()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as got:
            assert got.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
