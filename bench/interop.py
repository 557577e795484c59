"""DICOM export of photos from the corpus: size, time, and what dciodvfy says.

    .venv/bin/python bench/interop.py            # every photo in tests/data/corpus

For each photo: scrub it (as storing does), build the VL Photographic Part 10
file (skinvault.interop.dicom.build), and run dciodvfy on it. Prints one row
per format: how many files, how many were encapsulated unchanged (JPEG) or
converted, the median size of the DICOM file relative to the scrubbed photo,
the median build time, and the total dciodvfy errors and warnings.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from skinvault.errors import PhotoError  # noqa: E402
from skinvault.interop.dicom import DicomPhoto, build  # noqa: E402
from skinvault.photos.scrub import scrub  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "corpus"


def _arguments(doc: str) -> bool:
    """``--help`` prints this and exits; ``--quick`` (a few seconds, for CI) is returned."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the script")
    return bool(parser.parse_args().quick)


def main() -> None:
    quick = _arguments(__doc__ or "")
    exe = shutil.which("dciodvfy")
    if exe is None:
        sys.exit("dciodvfy is needed (Debian dicom3tools; scripts/test installs it)")
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and not p.name.endswith(".md"))
    files = files[::20] if quick else files
    with tempfile.TemporaryDirectory() as tmp:
        for n, path in enumerate(files):
            try:
                scrubbed, report = scrub(path.read_bytes())
            except PhotoError:
                continue
            fmt = report.format.value
            photo = DicomPhoto(
                photo_id=f"bench-{n}",
                patient_id="pt",
                patient_name="Bench Patient",
                site="hand-left",
                site_label="Left hand",
                data=scrubbed,
                format=fmt,
                taken_on=None,
                uploaded_at=datetime(2026, 5, 3, tzinfo=UTC),
            )
            started = time.perf_counter()
            try:
                part10 = build(photo)
            except PhotoError:
                rows[fmt]["refused"].append(1)  # a stored photo that cannot be decoded
                continue
            took = time.perf_counter() - started
            out = Path(tmp) / "x.dcm"
            out.write_bytes(part10.data)
            checked = subprocess.run(
                [exe, "-new", str(out)], capture_output=True, text=True, check=False
            )
            text = checked.stdout + checked.stderr
            row = rows[fmt]
            row["files"].append(1)
            row["unchanged"].append(1 if part10.conversion is None else 0)
            row["ratio"].append(len(part10.data) / len(scrubbed))
            row["ms"].append(took * 1000)
            row["errors"].append(sum(line.startswith("Error") for line in text.splitlines()))
            row["warnings"].append(sum(line.startswith("Warning") for line in text.splitlines()))
    print(
        "| format | files | JPEG unchanged | converted | DICOM/photo size (median) |"
        " build ms (median) | dciodvfy errors | warnings |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for fmt, row in sorted(rows.items()):
        files_n = len(row["files"])
        if row["refused"]:
            print(f"| {fmt} | {len(row['refused'])} refused (cannot be decoded) | | | | | | |")
        if not files_n:
            continue
        unchanged = int(sum(row["unchanged"]))
        print(
            f"| {fmt} | {files_n} | {unchanged} | {files_n - unchanged} |"
            f" {statistics.median(row['ratio']):.3f} | {statistics.median(row['ms']):.1f} |"
            f" {int(sum(row['errors']))} | {int(sum(row['warnings']))} |"
        )


if __name__ == "__main__":
    main()
