"""Mutated real files: only skinvault's own errors escape, nothing hangs, no half-clean output."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skinvault.errors import PhotoError
from skinvault.photos.scrub import inspect, scrub
from tests.conftest import CORPUS_FILES

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
