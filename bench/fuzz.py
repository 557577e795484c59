"""The long version of the scrubber's seeded mutation fuzz test (tests/unit/test_fuzz.py).

    .venv/bin/python bench/fuzz.py                     # 20,000 mutants, seed 11
    .venv/bin/python bench/fuzz.py --mutants 100000 --seed 7

Mutates the small corpus files in tests/data/corpus (flips, cuts, inserted and
copied slices, grown length fields), runs each mutant through clean + verify
as `skinvault scrub` does, and prints how many were written and refused, the
slowest file, and every failure: an uncaught exception, a file over 1 s, or a
metadata string of the seed (as exiftool reads it) left in a written copy
outside the coded image data. Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import fuzzing  # noqa: E402
from tests.unit.test_fuzz import FUZZ_SEEDS as SEEDS  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--seconds", type=float, default=3600.0, help="stop early after this long")
    parser.add_argument("--quick", action="store_true", help="a tiny run (seconds) for CI")
    args = parser.parse_args()
    if args.quick:
        args.mutants, args.seconds = 100, 20.0
    started = time.perf_counter()
    tally = fuzzing.run(SEEDS, seconds=args.seconds, seed=args.seed, limit=args.mutants)
    wall = time.perf_counter() - started
    formats = Counter(p.suffix.lower().lstrip(".") for p in SEEDS)
    shown = ", ".join(f"{k} {v}" for k, v in sorted(formats.items()))
    print(f"seeds: {len(SEEDS)} files from tests/data/corpus and tests/data/findings ({shown})")
    print(f"mutants: {tally.mutants:,} (seed {args.seed}) in {wall:.1f} s")
    print(f"written: {tally.written:,}   refused with a message: {tally.refused:,}")
    print(f"slowest file: {tally.slowest * 1000:.1f} ms (limit {fuzzing.SLOW:.0f} s)")
    print(f"failures: {len(tally.failures)}")
    for line in tally.failures[:50]:
        print("  " + line)
    return 1 if tally.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
