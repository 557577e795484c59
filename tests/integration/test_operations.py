"""Running it as a clinic does: S3 bucket made by ``admin init``, server-side faults as 5xx,
readiness that notices a frozen blob store (issue 15's trial findings).

The S3 API server is a private moto process per test (so freezing it with SIGSTOP touches
no other test); databases are SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.crypto.keys import MemoryKeySource
from skinvault.db.engine import make_engine
from skinvault.db.models import AuditEvent, Photo
from skinvault.errors import ConfigError, StorageUnavailable
from skinvault.services import admin, api_tokens, photo_reads, photo_store
from skinvault.storage import MemoryBlobStore, S3BlobStore
from skinvault.web.app import create_app
from skinvault.web.health import Readiness
from tests import factories
from tests.integration.conftest import BACKENDS, drop_schema, fresh_database_url
from tests.ports import serve_on_free_port
from tests.security.conftest import start_server

OPERATOR = Actor.system("test")
AWS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _ann(vault: Vault) -> admin.NewUser:
    return admin.create_user(
        vault, role=Role.PATIENT, email="ann@example.org",
        password="a long enough password", actor=OPERATOR, name="Ann",
    )  # fmt: skip


@pytest.fixture
def moto() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """(endpoint, process) of a moto S3 server of this test only (a taken port is retried)."""
    try:
        proc, port = serve_on_free_port(
            lambda port: [sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"],
            timeout=30,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except RuntimeError as exc:
        pytest.fail(f"the moto S3 server did not start: {exc}")
    yield f"http://127.0.0.1:{port}", proc
    proc.send_signal(signal.SIGCONT)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty (not migrated) database on each backend."""
    url, schema = fresh_database_url(request.param, tmp_path)
    yield url
    if schema:
        drop_schema(schema)


def _s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    return {
        **AWS,
        "SKINVAULT_BLOB_STORE": f"s3://{bucket}/vault",
        "SKINVAULT_S3_ENDPOINT_URL": endpoint,
        "SKINVAULT_S3_REGION": "us-east-1",
    }


def _bucket_exists(endpoint: str, bucket: str) -> bool:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
    return bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}


def test_admin_init_creates_the_s3_bucket_and_the_first_upload_is_stored(
    moto: tuple[str, subprocess.Popen[bytes]],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint, _ = moto
    bucket = f"clinic-{uuid.uuid4().hex[:8]}"
    env = _s3_env(endpoint, bucket)
    done = subprocess.run(
        [sys.executable, "-m", "skinvault", "admin", "init", "--data-dir", str(tmp_path / "v"),
         "--database-url", db_url],
        capture_output=True, text=True, env={**os.environ, **env}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _bucket_exists(endpoint, bucket)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    vault = bootstrap(load_settings(data_dir=tmp_path / "v", database_url=db_url))
    try:
        made = _ann(vault)
        assert made.patient_id
        stored = photo_store.store_photo(vault, patient_id=made.patient_id, data=factories.jpeg(),
                                    actor=OPERATOR)  # fmt: skip
        assert photo_store.get_photo(vault, stored.id).id == stored.id
    finally:
        vault.close()


def test_an_upload_to_a_missing_bucket_is_a_503_problem_not_the_clients_400(
    moto: tuple[str, subprocess.Popen[bytes]], database_url: str, tmp_path: Path
) -> None:
    endpoint, _ = moto
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
    settings = load_settings(data_dir=tmp_path / "v", database_url=database_url)
    bootstrap(settings, create=True).close()  # keys; not create=True here: it makes the bucket
    vault = bootstrap(settings, blobs=S3BlobStore("never-made", client=client))
    app = create_app(settings, vault=vault)
    made = _ann(vault)
    token = api_tokens.issue_api_token(vault, actor=Actor(made.user_id, Role.PATIENT, "Ann")).token
    with TestClient(app) as http:
        got = http.post(
            f"/api/v1/patients/{made.patient_id}/photos",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": ("a.jpg", factories.jpeg(), "image/jpeg")},
        )
        assert got.status_code == 503, got.text
        assert got.headers["content-type"] == "application/problem+json"
        assert got.json()["type"].endswith("/service-unavailable")
        assert "never-made" not in got.text  # the bucket's name is for the operator's log
        assert got.headers["retry-after"]
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["database"] == "ok"
        assert ready.json()["blob_store"] == "StorageUnavailable"
    vault.close()


def test_a_blob_store_failure_is_storage_unavailable_whatever_the_store(tmp_path: Path) -> None:
    class FullDisk(MemoryBlobStore):
        def put(self, key: str, data: bytes) -> None:
            raise OSError(28, "No space left on device")

    settings = load_settings(data_dir=tmp_path / "v")
    vault = bootstrap(settings, create=True, blobs=FullDisk())
    try:
        made = _ann(vault)
        assert made.patient_id
        with pytest.raises(StorageUnavailable) as got:
            photo_store.store_photo(vault, patient_id=made.patient_id, data=factories.jpeg(),
                               actor=OPERATOR)  # fmt: skip
        assert not isinstance(got.value, ConfigError)
        # The write runs beside the database work: its failure still lists nothing.
        with vault.reading() as session:
            assert session.scalars(select(Photo)).first() is None
            stored = select(AuditEvent).where(AuditEvent.action == "photo:store",
                                              AuditEvent.outcome == "done")  # fmt: skip
            assert session.scalars(stored).first() is None
    finally:
        vault.close()


def test_readiness_gives_up_on_a_database_that_never_answers(tmp_path: Path) -> None:
    # A socket that accepts connections and never says a word: PostgreSQL hung.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    engine = make_engine(f"postgresql+psycopg://x@127.0.0.1:{port}/x")
    vault = Vault(settings=load_settings(data_dir=tmp_path), engine=engine,
                  sessions=sessionmaker(engine), blobs=MemoryBlobStore(),
                  keys=MemoryKeySource())  # fmt: skip
    ready = Readiness(vault, timeout=0.5)
    try:
        started = time.monotonic()
        first = ready.check()
        second = ready.check()  # the first probe still hangs: no second thread is started
        assert time.monotonic() - started < 3
        assert first["database"].startswith("no answer") and second["database"].startswith("no")
        assert first["blob_store"] == "ok"
        assert sum(t.name == "readyz-database" for t in threading.enumerate()) == 1
    finally:
        silent.close()
        engine.dispose()


def test_readyz_turns_503_while_s3_is_frozen_and_uploads_answer_503_not_400(
    moto: tuple[str, subprocess.Popen[bytes]], db_url: str, tmp_path: Path
) -> None:
    endpoint, proc = moto
    bucket = f"clinic-{uuid.uuid4().hex[:8]}"
    env = {
        **_s3_env(endpoint, bucket),
        "SKINVAULT_READINESS_TIMEOUT_SECONDS": "1",
        "SKINVAULT_S3_CONNECT_TIMEOUT_SECONDS": "1",
        "SKINVAULT_S3_READ_TIMEOUT_SECONDS": "1",
        "SKINVAULT_S3_MAX_ATTEMPTS": "1",
    }
    data = tmp_path / "v"
    server = start_server(data, db_url, env)  # `serve` makes the bucket itself
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        vault = bootstrap(load_settings(data_dir=data, database_url=db_url))
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value
    try:
        made = _ann(vault)
        actor = Actor(made.user_id, Role.PATIENT, "Ann")
        bearer = {"Authorization": f"Bearer {api_tokens.issue_api_token(vault, actor=actor).token}"}
        upload = {"file": ("a.jpg", factories.jpeg(), "image/jpeg")}
        url = f"/api/v1/patients/{made.patient_id}/photos"
        with httpx.Client(base_url=server.base, timeout=30) as http:
            assert http.get("/readyz").status_code == 200
            assert http.post(url, headers=bearer, files=upload).status_code == 201
            proc.send_signal(signal.SIGSTOP)
            try:
                started = time.monotonic()
                ready = http.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["blob_store"].startswith("no answer")
                assert ready.json()["database"] == "ok"
                assert time.monotonic() - started < 5
                assert http.get("/healthz").status_code == 200  # alive, just not ready
                got = http.post(url, headers=bearer, files=upload)
                assert got.status_code == 503, got.text
                assert got.headers["content-type"] == "application/problem+json"
            finally:
                proc.send_signal(signal.SIGCONT)
            deadline = time.monotonic() + 10
            while http.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "not ready again after S3 came back"
                time.sleep(0.2)
            assert http.post(url, headers=bearer, files=upload).status_code == 201
    finally:
        vault.close()
        server.stop()


def test_the_environment_key_rotation_in_the_operations_guide_keeps_every_photo(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/operations.md, "Rotation with environment keys", step by step."""
    import base64

    def key() -> str:
        return base64.b64encode(os.urandom(32)).decode()

    old, new = f"k2026a:{key()}", f"k2027a:{key()}"
    monkeypatch.setenv("SKINVAULT_KEY_SOURCE", "env")
    monkeypatch.setenv("SKINVAULT_SIGNING_KEY", key())
    monkeypatch.setenv("SKINVAULT_KEK", old)
    settings = load_settings(data_dir=tmp_path / "v", database_url=database_url)
    vault = bootstrap(settings, create=True)
    made = _ann(vault)
    ann = Actor(made.user_id, Role.PATIENT, "Ann")
    before = photo_store.store_photo(vault, patient_id=made.patient_id or "",
                                data=factories.jpeg(), actor=ann, note="left forearm")  # fmt: skip
    vault.close()
    monkeypatch.setenv("SKINVAULT_KEK", f"{new},{old}")  # 1. the new key first, the old kept
    rotated = subprocess.run(
        [sys.executable, "-m", "skinvault", "admin", "rotate-key", "--data-dir",
         str(tmp_path / "v"), "--database-url", database_url],
        capture_output=True, text=True, check=False, env=dict(os.environ),
    )  # fmt: skip
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr  # 2. rotate-key
    monkeypatch.setenv("SKINVAULT_KEK", new)  # 3. the old key removed
    vault = bootstrap(load_settings(data_dir=tmp_path / "v", database_url=database_url))
    try:
        assert photo_reads.read_photo(vault, photo_id=before.id, actor=ann, purpose="care").data
        row = photo_store.get_photo(vault, before.id)
        assert row.id == before.id
    finally:
        vault.close()


def test_the_postgresql_pool_is_sized_by_the_settings(database_url: str, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "v", database_url=database_url,
                             database_pool_size=3, database_pool_overflow=2)  # fmt: skip
    vault = bootstrap(settings, create=True)
    try:
        pool = vault.engine.pool
        if vault.engine.dialect.name == "postgresql":
            assert (pool.size(), pool._max_overflow) == (3, 2)  # type: ignore[attr-defined]
        else:  # SQLite keeps its own sizing: connections there are file handles
            assert pool.size() == 10  # type: ignore[attr-defined]
    finally:
        vault.close()
