"""Alembic migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from skinvault.db.engine import migrate, schema_is_current
from skinvault.db.models import Base
from tests.integration.conftest import BACKENDS, drop_schema, fresh_database_url


def test_migrations_create_every_table_of_the_model(engine: Engine) -> None:
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    assert schema_is_current(engine)


def test_migrated_schema_matches_the_models_exactly(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrating_twice_changes_nothing(engine: Engine) -> None:
    migrate(engine)
    assert schema_is_current(engine)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas only")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_readers_are_not_held_up_by_a_writer(engine: Engine) -> None:
    """On SQLite a writer holds the one write lock; a reading session still answers."""
    import time

    from skinvault.db.engine import reader_factory, session_factory
    from skinvault.db.models import User

    writers = session_factory(engine)
    with writers.begin() as writing:
        writing.execute(text("SELECT 1"))  # the write transaction (and its lock) is open now
        started = time.monotonic()
        with reader_factory(engine)() as reading:
            assert reading.query(User).count() == 0
        assert time.monotonic() - started < 5  # a second writer would wait for the 30 s timeout


@pytest.mark.parametrize("backend", BACKENDS)
def test_going_back_before_0016_leaves_nothing_the_older_code_mishandles(
    backend: str, tmp_path: Path
) -> None:
    """0017 back: a measurement with no value goes with its skin share (a lone skin share
    would hide the photo from re-measuring); 0016 back: a failed job becomes dead, which the
    older code can retry and purge."""
    from alembic import command

    from skinvault.db.engine import _alembic_config, make_engine

    url, schema = fresh_database_url(backend, tmp_path)
    engine = make_engine(url)
    try:
        migrate(engine)
        now = datetime(2026, 12, 1, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO patients (id, display_name, created_at) VALUES ('p1', 'P', :t)"),
                {"t": now},
            )
            conn.execute(
                text(
                    "INSERT INTO photos (id, patient_id, uploaded_at, content_sha256, blob_key,"
                    " format, width, height, size, scrub_report_json) VALUES"
                    " ('ph1', 'p1', :t, 'x', 'b1', 'jpeg', 1, 1, 1, '{}')"
                ),
                {"t": now},
            )
            for mid, kind, value, at in [
                ("m1", "depigmented-share", None, now),
                ("m2", "skin-share", 90.0, now),
                ("m3", "depigmented-share", 12.5, now - timedelta(days=1)),
                ("m4", "skin-share", 88.0, now - timedelta(days=1)),
            ]:
                conn.execute(
                    text(
                        "INSERT INTO measurements (id, photo_id, kind, value, unit, method,"
                        " version, details_json, measured_at, measured_by) VALUES"
                        " (:id, 'ph1', :kind, :value, '%', 'm', '5', '{}', :at, 'system')"
                    ),
                    {"id": mid, "kind": kind, "value": value, "at": at},
                )
            conn.execute(
                text(
                    "INSERT INTO jobs (id, kind, key, payload_json, state, attempts,"
                    " max_attempts, run_after, created_at, finished_at) VALUES"
                    " ('j1', 'thumbnail', 'thumbnail:ph1', '{}', 'failed', 1, 5, :t, :t, :t)"
                ),
                {"t": now},
            )
        config = _alembic_config()
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0015")
            connection.commit()
        with engine.connect() as conn:
            left = conn.execute(text("SELECT id FROM measurements ORDER BY id")).scalars().all()
            state = conn.execute(text("SELECT state FROM jobs WHERE id = 'j1'")).scalar_one()
        assert left == ["m3", "m4"] and state == "dead"
    finally:
        engine.dispose()
        if schema:
            drop_schema(schema)
