"""A backup's database is streamed, never held whole: memory stays flat however large the
database, and a dump damaged under a matching manifest is refused with nothing restored."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import func, insert, select

from skinvault.bootstrap import bootstrap
from skinvault.config import load_settings
from skinvault.db.models import MailOutbox
from skinvault.errors import BlobUnreadable
from skinvault.services.backup import DATABASE, MANIFEST, make_backup, restore_backup

T = TypeVar("T")
ROWS, BODY = 6000, 2048  # ~12 MiB of incompressible bytes, ~16 MiB as JSON
Measured = tuple[Path, Path, int, int]  # (data dir, archive, backup peak, restore peak)


def _filled(data_dir: Path, rows: int) -> None:
    vault = bootstrap(load_settings(data_dir=data_dir), create=True)
    now = datetime.now(UTC)
    with vault.engine.begin() as conn:
        for start in range(0, rows, 500):
            conn.execute(insert(MailOutbox), [
                {"id": uuid.uuid4().hex, "to_address": "ann@example.org", "subject": "s",
                 "body_enc": os.urandom(BODY), "created_at": now, "attempts": 0}
                for _ in range(start, min(start + 500, rows))
            ])  # fmt: skip
    vault.close()


def _peak(call: Callable[[], T]) -> tuple[T, int]:
    """What ``call`` returns, and the most memory Python held while it ran (bytes)."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _target(folder: Path, source: Path) -> Path:
    shutil.copytree(source / "keys", folder / "keys")
    return folder


def _outbox_rows(data_dir: Path) -> int:
    vault = bootstrap(load_settings(data_dir=data_dir))
    try:
        with vault.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(MailOutbox)).scalar() or 0)
    finally:
        vault.close()


def _measured(root: Path, rows: int) -> Measured:
    _filled(root / "a", rows)
    vault = bootstrap(load_settings(data_dir=root / "a"))
    try:
        archive = root / "backup.svbackup"
        made, backup_peak = _peak(lambda: make_backup(vault, archive))
    finally:
        vault.close()
    assert made.rows["mail_outbox"] == rows
    target = _target(root / "b", root / "a")
    restored, restore_peak = _peak(lambda: restore_backup(load_settings(data_dir=target), archive))
    assert restored.rows["mail_outbox"] == rows == _outbox_rows(target)
    return root / "a", archive, backup_peak, restore_peak


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Measured:
    return _measured(tmp_path_factory.mktemp("small"), ROWS // 4)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Measured:
    return _measured(tmp_path_factory.mktemp("large"), ROWS)


def _dump_size(archive: Path) -> int:
    with tarfile.open(archive) as tar:
        return tar.getmember(DATABASE).size


def test_backup_and_restore_of_a_large_database_keep_memory_flat(
    small: Measured, large: Measured
) -> None:
    """Four times the rows, the same memory: what grows is the database, not the peak.
    (The peak itself, ~14 MB, is mostly the migrations' own; it is the growth that a dump
    held whole would show, by at least the dump's size.)"""
    grown = _dump_size(large[1]) - _dump_size(small[1])
    assert grown > ROWS * BODY // 2  # the larger dump really is larger, by megabytes
    assert large[2] - small[2] < grown / 4, (small[2], large[2], grown)  # backup
    assert large[3] - small[3] < grown / 4, (small[3], large[3], grown)  # restore


def _forged(archive: Path, out: Path, where: int) -> None:
    """The archive with one byte of the sealed dump flipped and the manifest's SHA-256
    recomputed: only the dump's own tag can tell."""
    with tarfile.open(archive) as tar:
        members = {info.name: tar.extractfile(info).read() for info in tar}  # type: ignore[union-attr]
    dump = bytearray(members[DATABASE])
    dump[where] ^= 0x01
    members[DATABASE] = bytes(dump)
    manifest = json.loads(members[MANIFEST])
    manifest["sha256"][DATABASE] = hashlib.sha256(dump).hexdigest()
    members[MANIFEST] = json.dumps(manifest).encode()
    with tarfile.open(out, "w") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))


@pytest.mark.parametrize(
    "where",
    [pytest.param(4096, id="body: garbage rows"), pytest.param(-1, id="tag: every row read")],
)
def test_a_dump_damaged_under_a_matching_manifest_restores_nothing(
    small: Measured, tmp_path: Path, where: int
) -> None:
    """Rows go in before the tag at the end is checked; none of them may stay."""
    source, archive, _, _ = small
    forged = tmp_path / "forged.svbackup"
    _forged(archive, forged, where)
    target = _target(tmp_path / "b", source)
    with pytest.raises(BlobUnreadable, match="damaged"):
        restore_backup(load_settings(data_dir=target), forged)
    assert _outbox_rows(target) == 0
