"""Every bench script runs: ``--help`` prints help and nothing else, ``--quick`` finishes in
seconds and exits 0, so a broken bench fails CI instead of docs/benchmarks.md going stale."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: bench/*.py that are run (the rest are modules the scripts import).
SCRIPTS = sorted(
    p.name for p in (ROOT / "bench").glob("*.py") if 'if __name__ == "__main__"' in p.read_text()
)
#: What --quick may take on a loaded 2-core runner.
QUICK_SECONDS = 240


def _run(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])},
    )  # fmt: skip


def test_the_bench_scripts_are_found() -> None:
    assert {"vault.py", "scrub.py", "clues.py", "service.py", "audit_verify.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_only_prints_help(script: str) -> None:
    started = time.monotonic()
    done = _run(script, "--help", timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage:") and "--quick" in done.stdout, done.stdout[:500]
    assert time.monotonic() - started < 30, "--help did more than print help"


@pytest.mark.parametrize("script", SCRIPTS)
def test_quick_runs_to_the_end(script: str) -> None:
    done = _run(script, "--quick", timeout=QUICK_SECONDS)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    assert done.stdout.strip(), "printed no figures"
