"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL.

    >>> engine = make_engine("sqlite:////tmp/sv/skinvault.db")   # doctest: +SKIP
    >>> migrate(engine)                                            # doctest: +SKIP
    >>> with session_factory(engine)() as session: ...             # doctest: +SKIP

On SQLite every writing transaction starts with ``BEGIN IMMEDIATE``: writers
queue for the one write lock *before* they read, so two processes appending to the audit
chain can never both read the same head (PostgreSQL uses an advisory lock, see
:mod:`skinvault.audit.log`). The journal is WAL so readers do not block writers.

Busy handling: a writer waits for the lock up to ``_SQLITE_BUSY_MS`` (SQLite's busy
handler retries within that bound), and a request waits for a pooled connection up to
``_POOL_WAIT_S``. Both bounds hold only because no transaction does slow work (password
hashing, decoding, decrypting, network) while it holds the lock; see
:mod:`skinvault.services.share_open`. Past the bound, :func:`is_busy` lets the web layer
answer "busy, try again" (429 with Retry-After) instead of a 500.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SqlTimeout
from sqlalchemy.orm import Session, sessionmaker

from skinvault.errors import ServerMisconfigured

_SQLITE_BUSY_MS = 30_000
_POOL_WAIT_S = 30
# As many pooled SQLite connections as the web server's worker threads (anyio's default
# 40), so a burst of requests waits on the write lock, not on the pool. They are cheap:
# one file handle each. PostgreSQL keeps the default (5 + 10): its connections are not.
_SQLITE_POOL = 10
_SQLITE_OVERFLOW = 30
#: Execution option marking connections that only read (see :func:`reader_factory`).
READ_ONLY = "skinvault_read_only"


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and serialised writers.
    ``pool_size``/``max_overflow`` size PostgreSQL's pool (per process: N workers hold up
    to N × (pool_size + max_overflow) connections)."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ServerMisconfigured(f"the database URL {url!r} is not valid ({exc})") from exc
    if parsed.drivername.startswith("sqlite"):
        pool: dict[str, int] = {}
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            pool = {
                "pool_size": _SQLITE_POOL,
                "max_overflow": _SQLITE_OVERFLOW,
                "pool_timeout": _POOL_WAIT_S,
            }
        engine = create_engine(url, connect_args={"timeout": _SQLITE_BUSY_MS / 1000}, **pool)
        _tune_sqlite(engine)
        return engine
    if parsed.drivername in ("postgresql", "postgres"):
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=_POOL_WAIT_S,
    )


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers (READ_ONLY below) need no write lock: in WAL mode they see a snapshot.
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` means "the database stayed busy past its bounded wait": SQLite's
    "database is locked"/"busy" after the busy timeout, or no pooled connection in time."""
    if isinstance(exc, SqlTimeout):
        return True
    if isinstance(exc, OperationalError):
        text = str(getattr(exc, "orig", exc)).lower()
        return "database is locked" in text or "database is busy" in text
    return False


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@functools.cache
def reader_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for work that only reads: on SQLite they do not queue for the write lock."""
    return sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


def _alembic_config() -> Config:
    config = Config()
    location = resources.files("skinvault.db") / "migrations"
    config.set_main_option("script_location", str(location))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent: an up-to-date database is left alone)."""
    config = _alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()


def schema_is_current(engine: Engine) -> bool:
    script = ScriptDirectory.from_config(_alembic_config())
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    return set(current) == set(script.get_heads())
