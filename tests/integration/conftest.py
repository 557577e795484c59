"""Databases for integration tests: SQLite always, PostgreSQL when SKINVAULT_TEST_PG names one.

Each test gets a freshly migrated database: a new SQLite file, or a new schema
on the PostgreSQL server (dropped afterwards), so tests never share rows.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from sqlalchemy import Engine, create_engine, text

from skinvault.db.engine import make_engine, migrate
from skinvault.storage import S3BlobStore
from tests.ports import serve_on_free_port

PG_URL = os.environ.get("SKINVAULT_TEST_PG", "")
NO_PG = "PostgreSQL tests need SKINVAULT_TEST_PG=postgresql://… (.ci/run sets it)"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.skipif(not PG_URL, reason=NO_PG)),
]


def pg_schema_url(schema: str) -> str:
    """The test server's URL with ``search_path`` set to ``schema``."""
    base = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def fresh_database_url(backend: str, tmp_path: Path) -> tuple[str, str | None]:
    """(url, schema to drop afterwards) for a new, empty database."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'skinvault.db'}", None
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return pg_schema_url(schema), schema


def drop_schema(schema: str) -> None:
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, migrated database on each backend."""
    url, schema = fresh_database_url(request.param, tmp_path)
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    if schema:
        drop_schema(schema)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """URL of a moto S3 server running for the whole session (a taken port is retried)."""
    try:
        server, port = serve_on_free_port(
            lambda port: [sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"],
            timeout=30,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except RuntimeError as exc:
        pytest.fail(f"the moto S3 server did not start: {exc}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def s3_store(endpoint: str, prefix: str = "vault") -> S3BlobStore:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    store = S3BlobStore(f"test-{uuid.uuid4().hex[:12]}", prefix=prefix, client=client)
    store.ensure_bucket()
    return store
