"""Sealing and opening a piece at a time (a backup's database, too large to hold whole):
the same blob as the one-shot functions, and a damaged one refused at the end."""

from __future__ import annotations

import random as stdlib_random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skinvault.crypto import MemoryKeySource, StreamOpener, StreamSealer, open_blob, seal
from skinvault.errors import BlobUnreadable

KEYS = MemoryKeySource()
DUMP = bytes(range(256)) * 300  # 75 KiB


def _fixed_random(seed: int) -> Callable[[int], bytes]:
    return stdlib_random.Random(seed).randbytes


def _cut(data: bytes, sizes: list[int]) -> list[bytes]:
    pieces, at = [], 0
    for size in sizes:
        pieces.append(data[at : at + size])
        at += size
    return [*pieces, data[at:]]


def _sealed_in_pieces(
    data: bytes, sizes: list[int], random: Callable[[int], bytes] | None = None
) -> tuple[bytes, bytes]:
    more = {"random": random} if random else {}
    sealer = StreamSealer(object_id="b1", kind="backup", kek=KEYS.current(), **more)
    blob = sealer.header + b"".join(sealer.update(p) for p in _cut(data, sizes))
    return blob + sealer.finish(), sealer.wrapped_dek


def _opened_in_pieces(
    blob: bytes, wrapped: bytes, sizes: list[int], object_id: str = "b1"
) -> bytes:
    opener = StreamOpener(wrapped, object_id=object_id, kind="backup", keys=KEYS)
    plain = b"".join(opener.update(p) for p in _cut(blob, sizes))
    opener.finish()
    return plain


def test_the_streamed_blob_is_byte_for_byte_the_one_shot_blob() -> None:
    """So an archive sealed either way opens either way (older backups still restore)."""
    streamed, wrapped = _sealed_in_pieces(DUMP, [1, 4096, 17], random=_fixed_random(7))
    whole = seal(DUMP, object_id="b1", kind="backup", kek=KEYS.current(), random=_fixed_random(7))
    assert (streamed, wrapped) == (whole.blob, whole.wrapped_dek)
    assert open_blob(streamed, wrapped, object_id="b1", kind="backup", keys=KEYS) == DUMP
    assert _opened_in_pieces(whole.blob, whole.wrapped_dek, [5, 9000]) == DUMP


@given(
    data=st.binary(max_size=3000),
    seal_sizes=st.lists(st.integers(0, 700), max_size=6),
    open_sizes=st.lists(st.integers(0, 700), max_size=6),
)
def test_any_cut_into_pieces_round_trips(
    data: bytes, seal_sizes: list[int], open_sizes: list[int]
) -> None:
    blob, wrapped = _sealed_in_pieces(data, seal_sizes)
    assert _opened_in_pieces(blob, wrapped, open_sizes) == data


@pytest.mark.parametrize("where", [0, 1, 12, 13, 5000, -17, -16, -1])
def test_one_flipped_bit_anywhere_is_refused_at_the_end(where: int) -> None:
    """Header, nonce, body or tag: the opener refuses when finished, never says "fine"."""
    blob, wrapped = _sealed_in_pieces(DUMP, [])
    damaged = bytearray(blob)
    damaged[where] ^= 0x10
    with pytest.raises(BlobUnreadable, match="damaged"):
        _opened_in_pieces(bytes(damaged), wrapped, [100, 3000])


@pytest.mark.parametrize("keep", [0, 12, 13, 28, 29, 1000])
def test_a_truncated_blob_is_refused(keep: int) -> None:
    blob, wrapped = _sealed_in_pieces(DUMP, [])
    with pytest.raises(BlobUnreadable, match="damaged"):
        _opened_in_pieces(blob[:keep], wrapped, [7])


def test_a_blob_of_another_object_is_refused() -> None:
    blob, _ = _sealed_in_pieces(DUMP, [])
    other = StreamSealer(object_id="b2", kind="backup", kek=KEYS.current())
    with pytest.raises(BlobUnreadable):  # the wrapped key is bound to b1, the blob too
        _opened_in_pieces(blob, other.wrapped_dek, [], object_id="b2")


def test_finish_answers_the_same_twice_and_nothing_follows_it() -> None:
    blob, wrapped = _sealed_in_pieces(DUMP, [])
    good = StreamOpener(wrapped, object_id="b1", kind="backup", keys=KEYS)
    good.update(blob)
    assert not good.finished
    good.finish()
    good.finish()
    assert good.finished
    with pytest.raises(ValueError, match="finished"):
        good.update(b"more")
    bad = StreamOpener(wrapped, object_id="b1", kind="backup", keys=KEYS)
    bad.update(blob[:-1] + bytes([blob[-1] ^ 1]))
    for _ in range(2):
        with pytest.raises(BlobUnreadable):
            bad.finish()
