"""Mutated real files: only skinvault's own errors escape, nothing hangs, no half-clean output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skinvault.errors import PhotoError
from skinvault.photos.scrub import inspect, scrub
from tests import fuzzing
from tests.conftest import CORPUS_FILES, FINDINGS

# One small real file per container, plus a few with tricky structure.
SEEDS = [
    f.path
    for f in CORPUS_FILES
    if f.path.stat().st_size < 400_000
    and (
        f.name.startswith(("042-", "083-", "091-", "110-", "112-", "129-", "026-"))
        or f.format in {"png", "webp", "heif", "tiff"}
    )
]


# A mutation is (action, relative position, byte/length); applied in the test so
# that a failing example prints as a short recipe rather than kilobytes of data.
MUTATION = st.tuples(
    st.sampled_from(["flip", "cut", "insert", "ff-run", "zero-run"]),
    st.floats(0, 1, allow_nan=False),
    st.integers(0, 255),
)


def apply(seed: Path, mutations: list[tuple[str, float, int]]) -> bytes:
    data = bytearray(seed.read_bytes())
    for action, where, value in mutations:
        pos = int(where * max(len(data) - 1, 0))
        if action == "flip" and data:
            data[pos] = value
        elif action == "cut":
            del data[pos:]
        elif action == "insert":
            data[pos:pos] = bytes([value]) * (value % 16 + 1)
        else:
            data[pos : pos + 8] = (b"\xff" if action == "ff-run" else b"\x00") * 8
    return bytes(data)


@pytest.mark.skipif(not SEEDS, reason="no corpus to mutate")
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.lists(MUTATION, min_size=1, max_size=8))
def test_mutated_files_raise_only_photo_errors(
    seed: Path, mutations: list[tuple[str, float, int]]
) -> None:
    data = apply(seed, mutations)
    try:
        inspect(data)
        cleaned, _ = scrub(data)
    except PhotoError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert inspect(cleaned).findings == ()


@pytest.mark.skipif(not SEEDS, reason="no corpus to mutate")
@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: Path(p).name)
def test_every_truncation_point_of_the_header_is_handled(seed: Path) -> None:
    data = seed.read_bytes()
    for cut in range(0, min(len(data), 1500), 7):
        try:
            scrub(data[:cut])
        except PhotoError:
            continue


#: The corpus seeds and the outside test's reproducers (each a class of defect).
FUZZ_SEEDS = SEEDS + sorted(
    p for p in FINDINGS.iterdir() if p.suffix != ".md" and not p.name.startswith("upload500-")
)
#: Seconds the seeded mutation loop runs in the normal test run (bench/fuzz.py runs longer).
FUZZ_SECONDS = float(os.environ.get("SKINVAULT_FUZZ_SECONDS", "60"))


@pytest.mark.skipif(not SEEDS, reason="no corpus to mutate")
def test_seeded_mutants_are_refused_or_written_clean_and_fast() -> None:
    """No crash, no file over 1 s, no metadata string of the seed in any written copy."""
    tally = fuzzing.run(FUZZ_SEEDS, seconds=FUZZ_SECONDS, seed=11)
    assert tally.mutants > 100, "the loop barely ran"
    assert tally.written and tally.refused, "mutants should be both written and refused"
    assert not tally.failures, "\n".join(tally.failures[:20])


def test_the_fuzzer_fails_a_slow_scrub_but_not_a_paused_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The "took" check is shown to fire before it is trusted: a scrub that burns CPU
    past SLOW fails (both timings), one that only waits (the host paused it) does not."""
    import time

    seed = SEEDS[0].read_bytes() if SEEDS else b""
    real = fuzzing._scrub
    monkeypatch.setattr(fuzzing, "SLOW", 0.05)

    def burns(data: bytes):  # type: ignore[no-untyped-def]
        end = time.thread_time() + 0.08
        while time.thread_time() < end:
            pass
        return real(data)

    def waits(data: bytes):  # type: ignore[no-untyped-def]
        time.sleep(0.2)
        return real(data)

    slow, paused = fuzzing.Tally(), fuzzing.Tally()
    monkeypatch.setattr(fuzzing, "_scrub", burns)
    fuzzing.check(seed, set(), slow, "burns")
    monkeypatch.setattr(fuzzing, "_scrub", waits)
    fuzzing.check(seed, set(), paused, "waits")
    assert [f for f in slow.failures if "took" in f], slow.failures
    assert not [f for f in paused.failures if "took" in f], paused.failures
