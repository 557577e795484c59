"""The thumbnail job with and without the pixels its upload decoded (the hand-off).

    .venv/bin/python bench/thumbnail_job.py               # 20 photos of 12 MP
    .venv/bin/python bench/thumbnail_job.py --quick       # 2 photos (seconds)

The same 12 MP JPEGs (bench/scrub.py's batch) are stored twice with ``store_photo``
in one vault (SQLite, local folder). The first time their thumbnail jobs run with the
pixels the upload handed over (``services/thumbnails.hand_over``): the job seals and
lists a thumbnail made from them. The second time the hand-off is emptied first, so
each job decrypts the photo and decodes it again, as a job in another process does.
Prints ms per job for both and their ratio.
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
    from skinvault.services import jobs, photos, thumbnails

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
            for label, handed in (("with the hand-off", True), ("decoding again", False)):
                for data in batch:
                    photos.store_photo(vault, patient_id=patient, data=data, actor=actor)
                if not handed:
                    thumbnails._handoff.clear()
                started = time.perf_counter()
                ran = jobs.run_pending(vault)
                assert ran == count, f"{ran} jobs ran, {count} expected"
                timings[label] = (time.perf_counter() - started) / count * 1000
        finally:
            vault.close()
    print(f"\n{count} photos of 12 MP, one process\n")
    print(f"{'thumbnail job':24}{'ms/job':>9}")
    for label, ms in timings.items():
        print(f"{label:24}{ms:>9.1f}")
    ratio = timings["decoding again"] / timings["with the hand-off"]
    print(f"\nthe hand-off makes a job {ratio:.1f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
