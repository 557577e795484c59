"""Key sources: key files nobody else can read, keys from the environment, rotation."""

from __future__ import annotations

import base64
import os
import re
import stat
from pathlib import Path

import pytest

from skinvault.crypto import EnvKeySource, FileKeySource, MemoryKeySource
from skinvault.errors import ConfigError, KeyUnavailable


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- FileKeySource ---------------------------------------------------------------


def test_first_use_creates_a_private_folder_and_private_key_files(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "keys"
    keys = FileKeySource(folder)
    kek = keys.current()
    signing = keys.signing_key()
    assert mode(folder) == 0o700
    files = {p.name for p in folder.iterdir()}
    assert files == {f"kek-{kek.id}.key", "current", "audit-signing.key"}
    for name in files:
        assert mode(folder / name) == 0o600, name
    assert len(kek.key) == 32 and len(signing) == 32
    assert len(kek.id) == 8 and int(kek.id, 16) >= 0
    assert (folder / "current").read_text().strip() == kek.id


def test_keys_survive_a_restart(tmp_path: Path) -> None:
    first = FileKeySource(tmp_path / "keys")
    kek, signing = first.current(), first.signing_key()
    again = FileKeySource(tmp_path / "keys")
    assert again.current() == kek
    assert again.current().key == kek.key
    assert again.signing_key() == signing
    assert again.get(kek.id).key == kek.key


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    keys = FileKeySource(tmp_path / "keys")
    kek = keys.current()
    path = tmp_path / "keys" / f"kek-{kek.id}.key"
    path.chmod(0o644)
    with pytest.raises(
        ConfigError, match=rf"{re.escape(str(path))} can be read by other users \(mode 0644\)"
    ):
        FileKeySource(tmp_path / "keys").current()


def test_a_signing_key_others_can_read_is_refused(tmp_path: Path) -> None:
    keys = FileKeySource(tmp_path / "keys")
    keys.signing_key()
    (tmp_path / "keys" / "audit-signing.key").chmod(0o640)
    with pytest.raises(ConfigError, match=r"audit-signing\.key can be read by other users"):
        keys.signing_key()


def test_a_key_folder_others_can_open_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    folder.chmod(0o755)
    with pytest.raises(ConfigError, match="chmod 700"):
        FileKeySource(folder)


@pytest.mark.parametrize(
    "content",
    [b"", b"abc\n", b"00" * 31 + b"\n", bytes(range(33))],
    ids=["empty", "short-text", "31-bytes-hex", "33-raw-bytes"],  # the same ids every run
)
def test_a_key_file_of_the_wrong_length_is_refused(tmp_path: Path, content: bytes) -> None:
    keys = FileKeySource(tmp_path / "keys")
    kek = keys.current()
    (tmp_path / "keys" / f"kek-{kek.id}.key").write_bytes(content)
    with pytest.raises(ConfigError, match="does not hold a 32-byte key"):
        FileKeySource(tmp_path / "keys").current()


def test_a_raw_32_byte_key_file_is_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    raw = os.urandom(32)
    fd = os.open(folder / "kek-0badc0de.key", os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, raw)
    os.close(fd)
    assert FileKeySource(folder).get("0badc0de").key == raw


def test_rotate_makes_a_new_current_key_and_keeps_the_old_one(tmp_path: Path) -> None:
    keys = FileKeySource(tmp_path / "keys")
    old = keys.current()
    new = keys.rotate()
    assert new.id != old.id and new.key != old.key
    assert keys.current() == new
    assert FileKeySource(tmp_path / "keys").current() == new  # another process sees it
    assert keys.get(old.id) == old
    assert keys.known_ids() == (new.id, old.id)
    assert mode(tmp_path / "keys" / f"kek-{new.id}.key") == 0o600


def test_retire_deletes_an_old_key_but_never_the_current_one(tmp_path: Path) -> None:
    keys = FileKeySource(tmp_path / "keys")
    old = keys.current()
    new = keys.rotate()
    with pytest.raises(ConfigError, match=f"key {new.id} is the current key"):
        keys.retire(new.id)
    keys.retire(old.id)
    assert not (tmp_path / "keys" / f"kek-{old.id}.key").exists()
    assert keys.known_ids() == (new.id,)
    with pytest.raises(KeyUnavailable, match=old.id):
        keys.get(old.id)
    with pytest.raises(KeyUnavailable, match=old.id):
        FileKeySource(tmp_path / "keys").get(old.id)
    with pytest.raises(KeyUnavailable, match=old.id):
        keys.retire(old.id)


@pytest.mark.parametrize("kek_id", ["../current", "kek-x", "", "ABCDEF01"])
def test_key_ids_from_stored_data_never_reach_the_file_system(tmp_path: Path, kek_id: str) -> None:
    keys = FileKeySource(tmp_path / "keys")
    keys.current()
    with pytest.raises(KeyUnavailable):
        keys.get(kek_id)


def test_no_temp_files_are_left_behind(tmp_path: Path) -> None:
    keys = FileKeySource(tmp_path / "keys")
    keys.current()
    keys.rotate()
    keys.signing_key()
    assert not [p for p in (tmp_path / "keys").iterdir() if p.name.startswith(".")]


# -- EnvKeySource -----------------------------------------------------------------


def test_env_keys_put_the_current_key_first() -> None:
    new, old, signing = os.urandom(32), os.urandom(32), os.urandom(32)
    keys = EnvKeySource(
        {
            "SKINVAULT_KEK": f"k2:{b64(new)}, k1:{b64(old)}",
            "SKINVAULT_SIGNING_KEY": b64(signing),
        }
    )
    assert keys.current().id == "k2" and keys.current().key == new
    assert keys.get("k1").key == old
    assert keys.known_ids() == ("k2", "k1")
    assert keys.signing_key() == signing
    with pytest.raises(KeyUnavailable, match="k3 is not in SKINVAULT_KEK"):
        keys.get("k3")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "SKINVAULT_KEK is not set"),
        ("k1", "must look like id:base64key"),
        (":" + b64(bytes(32)), "must look like id:base64key"),
        ("k1:not base64!", "the key k1 in SKINVAULT_KEK is not valid base64"),
        ("k1:" + b64(bytes(16)), "must be 32 bytes once base64-decoded, not 16"),
        (f"k1:{b64(bytes(32))},k1:{b64(bytes(32))}", "names the key id k1 twice"),
    ],
)
def test_bad_env_keys_stop_start_up_with_a_clear_sentence(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EnvKeySource({"SKINVAULT_KEK": value})


def test_a_bad_env_signing_key_is_refused() -> None:
    kek = "k1:" + b64(bytes(32))
    with pytest.raises(ConfigError, match="SKINVAULT_SIGNING_KEY must be 32 bytes"):
        EnvKeySource({"SKINVAULT_KEK": kek, "SKINVAULT_SIGNING_KEY": b64(bytes(31))})
    with pytest.raises(ConfigError, match="SKINVAULT_SIGNING_KEY is not set"):
        EnvKeySource({"SKINVAULT_KEK": kek}).signing_key()


def test_env_keys_are_rotated_by_editing_the_variable() -> None:
    keys = EnvKeySource({"SKINVAULT_KEK": "k1:" + b64(bytes(32))})
    with pytest.raises(ConfigError, match="put the new key first"):
        keys.rotate()
    with pytest.raises(ConfigError, match="put the new key first"):
        keys.retire("k1")


# -- MemoryKeySource ----------------------------------------------------------------


def test_memory_keys_behave_like_files() -> None:
    keys = MemoryKeySource()
    old = keys.current()
    assert keys.current() == old
    new = keys.rotate()
    assert keys.known_ids() == (new.id, old.id)
    with pytest.raises(ConfigError):
        keys.retire(new.id)
    keys.retire(old.id)
    with pytest.raises(KeyUnavailable):
        keys.get(old.id)
    assert keys.signing_key() == keys.signing_key()


def test_missing_parent_folders_are_created_private_too(tmp_path: Path) -> None:
    FileKeySource(tmp_path / "new-data-dir" / "keys").current()
    assert mode(tmp_path / "new-data-dir") == 0o700
