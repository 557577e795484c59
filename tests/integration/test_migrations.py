"""Alembic migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from skinvault.db.engine import migrate, schema_is_current
from skinvault.db.models import Base


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
