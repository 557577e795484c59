"""One contract for every BlobStore: a local folder, memory, and S3 over a real S3 API server.

The S3 server is moto's standalone server on loopback, started once per session
as a subprocess, so requests go through boto3's real HTTP stack.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from skinvault.errors import BlobUnreadable, ConfigError, StorageUnavailable
from skinvault.ports import BlobStore
from skinvault.storage import (
    LocalBlobStore,
    MemoryBlobStore,
    S3BlobStore,
    open_blob_store,
)
from tests.integration.conftest import s3_store


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    if request.param == "memory":
        return MemoryBlobStore()
    return s3_store(request.getfixturevalue("s3_endpoint"))


# -- the contract -------------------------------------------------------------------


def test_a_blob_reads_back_as_written(store: BlobStore) -> None:
    store.put("p/20260101120000-abc", b"ciphertext\x00\xff")
    assert store.get("p/20260101120000-abc") == b"ciphertext\x00\xff"


def test_an_empty_blob_reads_back(store: BlobStore) -> None:
    store.put("empty", b"")
    assert store.get("empty") == b""
    assert store.exists("empty")


def test_put_overwrites(store: BlobStore) -> None:
    store.put("k", b"first")
    store.put("k", b"second")
    assert store.get("k") == b"second"
    assert sorted(store.keys()) == ["k"]


def test_a_missing_blob_raises_blob_unreadable_naming_the_key(store: BlobStore) -> None:
    with pytest.raises(BlobUnreadable, match="blob p/never-written is missing"):
        store.get("p/never-written")


def test_delete_removes_and_deleting_twice_is_fine(store: BlobStore) -> None:
    store.put("t/1", b"x")
    assert store.exists("t/1")
    store.delete("t/1")
    assert not store.exists("t/1")
    store.delete("t/1")
    store.delete("t/never-written")
    with pytest.raises(BlobUnreadable, match="t/1"):
        store.get("t/1")


def test_keys_lists_exactly_what_was_put(store: BlobStore) -> None:
    assert list(store.keys()) == []
    wanted = {f"p/2026010112000{i}-{i}" for i in range(10)} | {"t/x", "plain", "a/b/c"}
    for key in wanted:
        store.put(key, key.encode())
    store.put("gone", b"x")
    store.delete("gone")
    assert sorted(store.keys()) == sorted(wanted)


def test_a_5_mb_blob_round_trips(store: BlobStore) -> None:
    big = os.urandom(5 * 1024 * 1024)
    store.put("p/big", big)
    assert store.get("p/big") == big


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "..", "Upper", "a//b", "a/", "sp ace", "é"])
def test_unsafe_keys_are_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        store.put(key, b"x")
    with pytest.raises(ValueError, match="invalid blob key"):
        store.get(key)


def test_the_store_describes_itself(store: BlobStore) -> None:
    assert store.description


# -- local folder only -----------------------------------------------------------------


def test_local_files_are_private(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.put("p/1", b"x")
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    folders = [p for p in (tmp_path / "blobs").rglob("*") if p.is_dir()]
    assert len(files) == 1 and len(folders) == 2
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    for folder in [tmp_path / "blobs", *folders]:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_a_killed_writer_leaves_nothing_visible_and_sweep_removes_it(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.put("p/1", b"x")
    folder = next(p for p in (tmp_path / "blobs").rglob("*") if p.is_file()).parent
    stale = folder / ".tmp-deadbeef"
    stale.write_bytes(b"half a bl")
    fresh = folder / ".tmp-inprogress"
    fresh.write_bytes(b"still writing")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))

    assert list(store.keys()) == ["p/1"]
    assert store.sweep_temp(older_than_seconds=600) == 1
    assert not stale.exists()
    assert fresh.exists()  # a write in progress elsewhere is left alone
    assert store.get("p/1") == b"x"


def test_keys_of_an_empty_local_store_that_was_never_written(tmp_path: Path) -> None:
    assert list(LocalBlobStore(tmp_path / "nothing-yet").keys()) == []


# -- S3 only ---------------------------------------------------------------------------


def test_s3_prefix_keeps_vaults_apart(s3_endpoint: str) -> None:
    store = s3_store(s3_endpoint, prefix="clinic-a")
    neighbour = S3BlobStore(store.bucket, prefix="clinic-b", client=store._client)
    store.put("p/1", b"a")
    neighbour.put("p/1", b"b")
    assert store.get("p/1") == b"a"
    assert list(store.keys()) == ["p/1"]


def test_s3_without_a_bucket_is_storage_unavailable_not_the_clients_error(s3_endpoint: str) -> None:
    store = s3_store(s3_endpoint)
    missing = S3BlobStore("no-such-bucket-here", client=store._client)
    with pytest.raises(StorageUnavailable, match="no-such-bucket-here does not exist") as got:
        missing.put("p/1", b"x")
    assert not isinstance(got.value, ConfigError)


def test_s3_listing_pages_past_a_thousand_keys(s3_endpoint: str) -> None:
    store = s3_store(s3_endpoint)
    for i in range(1005):
        store.put(f"k/{i}", b"")
    assert len(set(store.keys())) == 1005


# -- open_blob_store ---------------------------------------------------------------------


def test_open_blob_store_understands_each_url(tmp_path: Path) -> None:
    local = open_blob_store("local", data_dir=tmp_path)
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path / "blobs"
    assert isinstance(open_blob_store("", data_dir=tmp_path), LocalBlobStore)
    folder = open_blob_store(f"file://{tmp_path}/elsewhere", data_dir=tmp_path)
    assert isinstance(folder, LocalBlobStore) and folder.root == tmp_path / "elsewhere"
    assert isinstance(open_blob_store("memory://", data_dir=tmp_path), MemoryBlobStore)
    s3 = open_blob_store(
        "s3://bucket/some/prefix/",
        data_dir=tmp_path,
        endpoint_url="http://127.0.0.1:1",
        region="eu-west-1",
    )
    assert isinstance(s3, S3BlobStore)
    assert (s3.bucket, s3.prefix) == ("bucket", "some/prefix")


@pytest.mark.parametrize("url", ["ftp://x", "file://relative/path", "s3://", "blobs"])
def test_open_blob_store_refuses_what_it_does_not_understand(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="blob store"):
        open_blob_store(url, data_dir=tmp_path)
