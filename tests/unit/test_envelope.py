"""Envelope encryption: what a clinic relies on when a photo is stored, moved or shredded."""

from __future__ import annotations

import base64
import os

import pytest

from skinvault.crypto import (
    EnvKeySource,
    MemoryKeySource,
    is_shredded,
    kek_id_of,
    open_blob,
    rewrap,
    seal,
)
from skinvault.errors import BlobUnreadable, KeyUnavailable

PHOTO = bytes(range(256)) * 64  # 16 KiB with no repeats shorter than 256 bytes


def test_a_sealed_photo_opens_to_the_same_bytes() -> None:
    keys = MemoryKeySource()
    sealed = seal(PHOTO, object_id="p1", kind="photo", kek=keys.current())
    assert open_blob(sealed.blob, sealed.wrapped_dek, object_id="p1", kind="photo", keys=keys) == (
        PHOTO
    )
    assert kek_id_of(sealed.wrapped_dek) == keys.current().id


def test_an_empty_photo_round_trips() -> None:
    keys = MemoryKeySource()
    sealed = seal(b"", object_id="p1", kind="photo", kek=keys.current())
    assert (
        open_blob(sealed.blob, sealed.wrapped_dek, object_id="p1", kind="photo", keys=keys) == b""
    )


def test_each_object_gets_its_own_data_key_and_nonce() -> None:
    keys = MemoryKeySource()
    first = seal(PHOTO, object_id="p1", kind="photo", kek=keys.current())
    again = seal(PHOTO, object_id="p1", kind="photo", kek=keys.current())
    assert first.blob != again.blob
    assert first.blob[1:13] != again.blob[1:13]  # nonces
    assert first.wrapped_dek != again.wrapped_dek


def test_the_blob_holds_no_run_of_the_plaintext() -> None:
    keys = MemoryKeySource()
    blob = seal(PHOTO, object_id="p1", kind="photo", kek=keys.current()).blob
    for start in range(0, len(PHOTO) - 64, 61):
        assert PHOTO[start : start + 64] not in blob


def test_a_blob_swapped_onto_another_photo_does_not_open() -> None:
    keys = MemoryKeySource()
    mine = seal(PHOTO, object_id="p-mine", kind="photo", kek=keys.current())
    theirs = seal(b"other patient", object_id="p-theirs", kind="photo", kek=keys.current())
    with pytest.raises(BlobUnreadable, match="photo p-mine cannot be decrypted"):
        open_blob(theirs.blob, mine.wrapped_dek, object_id="p-mine", kind="photo", keys=keys)


def test_a_wrapped_key_copied_to_another_photo_does_not_unwrap() -> None:
    keys = MemoryKeySource()
    theirs = seal(b"other patient", object_id="p-theirs", kind="photo", kek=keys.current())
    with pytest.raises(KeyUnavailable, match="photo p-mine"):
        open_blob(theirs.blob, theirs.wrapped_dek, object_id="p-mine", kind="photo", keys=keys)


def test_a_thumbnail_cannot_be_opened_as_the_photo() -> None:
    keys = MemoryKeySource()
    sealed = seal(PHOTO, object_id="p1", kind="thumbnail", kek=keys.current())
    with pytest.raises((BlobUnreadable, KeyUnavailable), match="photo p1"):
        open_blob(sealed.blob, sealed.wrapped_dek, object_id="p1", kind="photo", keys=keys)


def test_flipping_any_single_byte_of_the_blob_is_detected() -> None:
    keys = MemoryKeySource()
    sealed = seal(b"small photo", object_id="p1", kind="photo", kek=keys.current())
    for position in range(len(sealed.blob)):
        for flip in (0x01, 0x80):
            damaged = bytearray(sealed.blob)
            damaged[position] ^= flip
            with pytest.raises(BlobUnreadable, match="p1"):
                open_blob(
                    bytes(damaged), sealed.wrapped_dek, object_id="p1", kind="photo", keys=keys
                )


@pytest.mark.parametrize("cut", [0, 1, 12, 28, -1])
def test_a_truncated_blob_is_detected(cut: int) -> None:
    keys = MemoryKeySource()
    sealed = seal(b"small photo", object_id="p1", kind="photo", kek=keys.current())
    with pytest.raises(BlobUnreadable, match="photo p1 cannot be decrypted"):
        open_blob(sealed.blob[:cut], sealed.wrapped_dek, object_id="p1", kind="photo", keys=keys)


def test_flipping_any_byte_of_the_wrapped_key_is_detected() -> None:
    keys = MemoryKeySource()
    sealed = seal(b"small photo", object_id="p1", kind="photo", kek=keys.current())
    for position in range(len(sealed.wrapped_dek)):
        damaged = bytearray(sealed.wrapped_dek)
        damaged[position] ^= 0x01
        with pytest.raises(KeyUnavailable, match="p1"):
            open_blob(sealed.blob, bytes(damaged), object_id="p1", kind="photo", keys=keys)


def test_an_unknown_key_id_is_reported_with_the_id() -> None:
    sealed = seal(PHOTO, object_id="p1", kind="photo", kek=MemoryKeySource().current())
    other = MemoryKeySource()
    kek_id = kek_id_of(sealed.wrapped_dek)
    with pytest.raises(KeyUnavailable, match=f"the key {kek_id} that protects photo p1"):
        open_blob(sealed.blob, sealed.wrapped_dek, object_id="p1", kind="photo", keys=other)


def test_a_wrong_key_under_the_right_id_is_refused() -> None:
    right = EnvKeySource({"SKINVAULT_KEK": "k1:" + base64.b64encode(os.urandom(32)).decode()})
    wrong = EnvKeySource({"SKINVAULT_KEK": "k1:" + base64.b64encode(os.urandom(32)).decode()})
    sealed = seal(PHOTO, object_id="p1", kind="photo", kek=right.current())
    with pytest.raises(KeyUnavailable, match="wrong or missing key-encryption key"):
        open_blob(sealed.blob, sealed.wrapped_dek, object_id="p1", kind="photo", keys=wrong)


@pytest.mark.parametrize("wrapped", [b"", None])
def test_a_shredded_photo_says_it_was_deleted(wrapped: bytes | None) -> None:
    keys = MemoryKeySource()
    sealed = seal(PHOTO, object_id="p1", kind="photo", kek=keys.current())
    assert is_shredded(wrapped)
    assert not is_shredded(sealed.wrapped_dek)
    with pytest.raises(BlobUnreadable, match="photo p1 was deleted"):
        open_blob(sealed.blob, wrapped, object_id="p1", kind="photo", keys=keys)


def test_rewrapped_keys_open_with_the_new_kek_after_the_old_one_is_retired() -> None:
    keys = MemoryKeySource()
    old = keys.current()
    sealed = seal(PHOTO, object_id="p1", kind="photo", kek=old)
    new = keys.rotate()
    fresh = rewrap(sealed.wrapped_dek, object_id="p1", kind="photo", keys=keys, new=new)
    assert kek_id_of(fresh) == new.id != old.id
    keys.retire(old.id)
    assert open_blob(sealed.blob, fresh, object_id="p1", kind="photo", keys=keys) == PHOTO
    with pytest.raises(KeyUnavailable, match=old.id):
        open_blob(sealed.blob, sealed.wrapped_dek, object_id="p1", kind="photo", keys=keys)


def test_rewrap_refuses_a_key_wrapped_for_another_object() -> None:
    keys = MemoryKeySource()
    sealed = seal(PHOTO, object_id="p1", kind="photo", kek=keys.current())
    with pytest.raises(KeyUnavailable, match="photo p2"):
        rewrap(sealed.wrapped_dek, object_id="p2", kind="photo", keys=keys, new=keys.rotate())


def test_the_repr_shows_no_key_or_ciphertext() -> None:
    keys = MemoryKeySource()
    kek = keys.current()
    sealed = seal(PHOTO, object_id="p1", kind="photo", kek=kek)
    assert kek.key.hex() not in repr(kek)
    assert repr(sealed) == f"Sealed(blob={len(sealed.blob)} bytes, kek_id={kek.id!r})"
