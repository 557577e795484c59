"""The wheel carries every file of the package: templates, scripts, styles, data, model
weights and migrations, not only the Python modules. (A wheel built before this test
served no portal at all: its templates were missing.)"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "src" / "skinvault"


def test_the_wheel_holds_every_file_of_the_package(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("skinvault-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        "skinvault/" + path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix != ".pyc"
        and path.name != ".keep"  # a placeholder that keeps an empty folder in git
    }
    missing = sorted(wanted - inside)
    assert missing == [], f"the wheel lacks {len(missing)} files, e.g. {missing[:5]}"
    assert any(name.endswith("templates/base.html") for name in inside)
