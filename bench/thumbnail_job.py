"""The thumbnail job with and without the pixels its upload decoded (the hand-off).

    .venv/bin/python bench/thumbnail_job.py               # 20 photos of 12 MP (and 20 HEIC)
    .venv/bin/python bench/thumbnail_job.py --quick       # 2 photos (seconds)

The same 12 MP JPEGs (bench/scrub.py's batch) are stored with ``store_photo`` in one
vault (SQLite, local folder), then their thumbnail jobs run. Their structure proves their
pixels decode (photos/jpeg_structure.py), so the upload decodes nothing and hands nothing
over: each job decrypts the photo and decodes it (at 1/8 scale). Prints ms per upload and
per job. (Until 2026-12-07 every JPEG upload decoded its pixels and handed them to the
job, 17.7 ms per job against 49.9 ms decoding again.)

Then the same for a 12 MP iPhone HEIC (tests/data/corpus/005, 3024 × 4032, 2.2 MB), whose
upload decodes it in full (no scaled HEVC decoding): its thumbnail and ``display_version``
jobs (a full-size JPEG for browsers) with the hand-off — the display version made from the
full decode the upload kept (``thumbnails.full_pixels``) — and without it (the display job
decrypts and decodes the HEIC again, as before it was kept; the thumbnail job still gets its
reduced pixels in both), each photo's jobs run right after its upload (a job thread that keeps
up; in a burst only the first ``FULL_BUDGET`` worth are kept). Prints ms per photo for both
jobs together, and the memory one kept full decode holds while it waits.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def _service_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_bench_service", HERE / "service.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["_bench_service"] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="2 photos (seconds)")
    args = parser.parse_args()
    count = 2 if args.quick else args.photos

    from skinvault.actors import Actor
    from skinvault.bootstrap import bootstrap
    from skinvault.services import jobs, photo_store, thumbnails

    bench = _service_bench()
    with tempfile.TemporaryDirectory(prefix="sv-thumb-job-") as scratch:
        work = Path(scratch)
        print(f"making {count} 12 MP photos …", file=sys.stderr)
        batch = bench.load_photos(work, count)
        patient = bench.create_patient(work / "data")
        vault = bootstrap(bench.settings_for(work / "data"))
        actor = Actor.system("bench")
        try:
            timings: dict[str, float] = {}
            started = time.perf_counter()
            for data in batch:
                photo_store.store_photo(vault, patient_id=patient, data=data, actor=actor)
            timings["upload (store_photo)"] = (time.perf_counter() - started) / count * 1000
            assert not thumbnails._handoff, "a proven JPEG's upload decoded its pixels"
            started = time.perf_counter()
            ran = jobs.run_pending(vault)
            assert ran == count, f"{ran} jobs ran, {count} expected"
            timings["thumbnail job"] = (time.perf_counter() - started) / count * 1000
            heic = HERE.parent / "tests/data/corpus/005-heic-mobile-iphone-13-pro-max.heic"
            kept_mb = 0.0
            for label, handed in (
                ("HEIC, with the hand-off", True),
                ("HEIC, display decodes again", False),
            ):
                spent = 0.0
                for _ in range(count):  # one at a time, as a job thread that keeps up
                    stored = photo_store.store_photo(
                        vault, patient_id=patient, data=heic.read_bytes(), actor=actor
                    )
                    if handed:
                        kept_mb = thumbnails._full[stored.id][1] / 2**20
                    else:  # as before the full decode was kept: the thumbnail still handed
                        thumbnails._full.clear()
                    started = time.perf_counter()
                    ran = jobs.run_pending(vault)
                    spent += time.perf_counter() - started
                    assert ran == 2, f"{ran} jobs ran, 2 expected"
                timings[label] = spent / count * 1000
        finally:
            vault.close()
    print(f"\n{count} JPEGs of 12 MP, one process\n")
    print(f"{'step':24}{'ms/photo':>9}")
    for label in ("upload (store_photo)", "thumbnail job"):
        print(f"{label:24}{timings[label]:>9.1f}")
    print(f"\n{count} HEIC photos of 12 MP (thumbnail + display version jobs)\n")
    print(f"{'both jobs':24}{'ms/photo':>9}")  # the thumbnail handed over in both
    for label in ("HEIC, with the hand-off", "HEIC, display decodes again"):
        print(f"{label.removeprefix('HEIC, '):24}{timings[label]:>9.1f}")
    ratio = timings["HEIC, display decodes again"] / timings["HEIC, with the hand-off"]
    print(f"\nthe kept full decode makes them {ratio:.1f}x faster; it holds {kept_mb:.0f} MiB"
          " per photo while it waits")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
