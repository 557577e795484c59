"""The restore drill: back up, lose the host, restore into a fresh data dir (and from SQLite
to PostgreSQL), read every photo back, verify the audit chain against the saved signed head;
a shredded photo stays unreadable, a damaged archive or missing keys are refused."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from skinvault.actors import Actor, Role
from skinvault.bootstrap import bootstrap
from skinvault.config import load_settings
from skinvault.errors import NotFound, VaultError
from skinvault.services import admin, photo_reads, photo_shredding, photo_store
from skinvault.services.backup import verify_backup
from skinvault.services.checkpoints import sign_and_keep
from tests import factories
from tests.integration.conftest import PG_URL, drop_schema, fresh_database_url

OPERATOR = Actor.system("test")
NO_PG = pytest.mark.skipif(not PG_URL, reason="needs SKINVAULT_TEST_PG")
PAIRS = [
    pytest.param("sqlite", "sqlite", id="sqlite-to-sqlite"),
    pytest.param("sqlite", "postgresql", id="sqlite-to-postgresql", marks=NO_PG),
    pytest.param("postgresql", "postgresql", id="postgresql-to-postgresql", marks=NO_PG),
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "skinvault", *args], capture_output=True,
                          text=True, check=False, env=dict(os.environ))  # fmt: skip


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_backup_wipe_restore_reads_every_photo_back(
    source: str, target: str, tmp_path: Path
) -> None:
    schemas: list[str] = []
    url_a, schema = fresh_database_url(source, tmp_path / "a")
    schemas += [schema] if schema else []
    (tmp_path / "a").mkdir(exist_ok=True)
    data_a = tmp_path / "a" / "vault"
    vault = bootstrap(load_settings(data_dir=data_a, database_url=url_a), create=True)
    made = admin.create_user(
        vault, role=Role.PATIENT, email="ann.backup@example.org",
        password="a long enough password", actor=OPERATOR, name="Ann Lee",
    )  # fmt: skip
    assert made.patient_id
    ann = Actor(made.user_id, Role.PATIENT, "Ann Lee")
    kept = [photo_store.store_photo(vault, patient_id=made.patient_id, data=factories.jpeg(),
                               actor=ann, note="itchy since May") for _ in range(3)]  # fmt: skip
    shredded = photo_store.store_photo(vault, patient_id=made.patient_id, data=factories.png(),
                                  actor=ann)  # fmt: skip
    photo_shredding.delete_photo(vault, photo_id=shredded.id, actor=ann, reason="patient asked")
    originals = {p.id: photo_reads.read_photo(vault, photo_id=p.id, actor=ann, purpose="care").data
                 for p in kept}  # fmt: skip
    assert sign_and_keep(vault) is not None  # the saved signed head the restore is checked on
    vault.close()

    archive = tmp_path / "clinic.svbackup"
    made_backup = run("admin", "backup", str(archive), "--data-dir", str(data_a),
                      "--database-url", url_a)  # fmt: skip
    assert made_backup.returncode == 0, made_backup.stderr
    assert "Keys are NOT in this backup" in made_backup.stderr
    raw = archive.read_bytes()
    key_files = [p for p in (data_a / "keys").iterdir() if p.suffix == ".key"]
    assert key_files
    for key_file in key_files:  # no key material, in hex or raw
        assert key_file.read_bytes().strip() not in raw
        assert bytes.fromhex(key_file.read_text().strip()) not in raw
    assert b"ann.backup@example.org" not in raw and b"Ann Lee" not in raw
    assert oct(archive.stat().st_mode & 0o777) == "0o600"

    # The host is lost: only the archive and (kept apart) the keys folder survive.
    keys_escrow = tmp_path / "escrow-keys"
    shutil.copytree(data_a / "keys", keys_escrow)
    shutil.rmtree(tmp_path / "a")
    if source == "postgresql" and schema:
        drop_schema(schema)
        schemas.remove(schema)

    url_b, schema_b = fresh_database_url(target, tmp_path / "b")
    schemas += [schema_b] if schema_b else []
    (tmp_path / "b").mkdir(exist_ok=True)
    data_b = tmp_path / "b" / "vault"
    try:
        no_keys = run("admin", "restore", str(archive), "--data-dir", str(data_b),
                      "--database-url", url_b)  # fmt: skip
        assert no_keys.returncode == 1
        assert "restore the keys" in no_keys.stderr

        shutil.copytree(keys_escrow, data_b / "keys", dirs_exist_ok=True)
        restored = run("admin", "restore", str(archive), "--data-dir", str(data_b),
                       "--database-url", url_b)  # fmt: skip
        assert restored.returncode == 0, restored.stderr
        again = run("admin", "restore", str(archive), "--data-dir", str(data_b),
                    "--database-url", url_b)  # fmt: skip
        assert again.returncode == 1 and "not empty" in again.stderr

        verify = run("audit", "verify", "--data-dir", str(data_b), "--database-url", url_b)
        assert verify.returncode == 0, verify.stdout + verify.stderr

        vault_b = bootstrap(load_settings(data_dir=data_b, database_url=url_b))
        try:
            for photo_id, data in originals.items():
                back = photo_reads.read_photo(vault_b, photo_id=photo_id, actor=ann, purpose="care")
                assert hashlib.sha256(back.data).digest() == hashlib.sha256(data).digest()
                assert photo_store.open_note(vault_b, _row(vault_b, photo_id)) == "itchy since May"
            with pytest.raises(NotFound):
                photo_reads.read_photo(vault_b, photo_id=shredded.id, actor=ann, purpose="care")
        finally:
            vault_b.close()
    finally:
        for name in schemas:
            drop_schema(name)


def _row(vault: object, photo_id: str) -> object:
    from skinvault.db.models import Photo

    with vault.reading() as session:  # type: ignore[attr-defined]
        row = session.get(Photo, photo_id)
        session.expunge(row)
        return row


def test_a_damaged_or_incomplete_archive_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "vault"
    vault = bootstrap(load_settings(data_dir=data), create=True)
    made = admin.create_user(
        vault, role=Role.PATIENT, email="ann@example.org",
        password="a long enough password", actor=OPERATOR, name="Ann",
    )  # fmt: skip
    ann = Actor(made.user_id, Role.PATIENT, "Ann")
    photo_store.store_photo(
        vault, patient_id=made.patient_id or "", data=factories.jpeg(), actor=ann
    )
    vault.close()
    archive = tmp_path / "good.svbackup"
    assert run("admin", "backup", str(archive), "--data-dir", str(data)).returncode == 0
    manifest = verify_backup(archive)  # the good one passes
    assert manifest["keys_included"] is False

    damaged = tmp_path / "damaged.svbackup"
    incomplete = tmp_path / "incomplete.svbackup"
    with tarfile.open(archive) as tar, tarfile.open(damaged, "w") as bad, \
            tarfile.open(incomplete, "w") as short:  # fmt: skip
        for info in tar:
            body = tar.extractfile(info).read()  # type: ignore[union-attr]
            if info.name.startswith("blobs/"):
                flipped = bytes([body[0] ^ 1]) + body[1:]
                bad.addfile(info, io.BytesIO(flipped))
                continue  # left out of the incomplete one
            bad.addfile(info, io.BytesIO(body))
            short.addfile(info, io.BytesIO(body))
    with pytest.raises(VaultError, match="does not match"):
        verify_backup(damaged)
    with pytest.raises(VaultError, match="incomplete"):
        verify_backup(incomplete)
    refused = run("admin", "restore", str(damaged), "--data-dir", str(tmp_path / "new"))
    assert refused.returncode == 1 and "damaged" in refused.stderr
