"""The composition root: settings in, a wired :class:`Vault` out.

    >>> vault = bootstrap(load_settings(data_dir=Path("/tmp/sv")))   # doctest: +SKIP
    >>> services.photo_store.store_photo(vault, ...)                   # doctest: +SKIP

The CLI and the web app both call :func:`bootstrap`; nothing here runs at import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from skinvault.config import Settings
from skinvault.crypto.keys import EnvKeySource, FileKeySource
from skinvault.db.engine import (
    make_engine,
    migrate,
    reader_factory,
    schema_is_current,
    session_factory,
)
from skinvault.errors import ServerMisconfigured
from skinvault.ports import BlobStore, Clock, KeySource, SystemClock, SystemTokens, TokenSource
from skinvault.storage import S3BlobStore, open_blob_store


@dataclass
class Vault:
    """Everything a service needs: settings and one instance of each port."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStore
    keys: KeySource
    clock: Clock = field(default_factory=SystemClock)
    tokens: TokenSource = field(default_factory=SystemTokens)

    def reading(self) -> Session:
        """A session for work that only reads (on SQLite it takes no write lock)."""
        return reader_factory(self.engine)()

    def close(self) -> None:
        self.engine.dispose()


def key_source(settings: Settings) -> KeySource:
    if settings.key_source == "env":
        return EnvKeySource(os.environ)
    return FileKeySource(settings.data_dir / "keys")


def prepare_data_dir(settings: Settings) -> Path:
    """Create the data dir (0700) if it does not exist; refuse a file in its place."""
    path = settings.data_dir
    if path.exists() and not path.is_dir():
        raise ServerMisconfigured(f"the data directory {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ServerMisconfigured(
            f"cannot create the data directory {path} ({exc.strerror})"
        ) from exc
    return path


def bootstrap(
    settings: Settings,
    *,
    create: bool = False,
    blobs: BlobStore | None = None,
    keys: KeySource | None = None,
    clock: Clock | None = None,
    tokens: TokenSource | None = None,
) -> Vault:
    """Wire a vault. ``create=True`` (``admin init``, ``serve``) makes the data dir,
    key and schema; otherwise a missing or outdated schema is a clear error."""
    if create:
        prepare_data_dir(settings)
    engine = make_engine(
        settings.effective_database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_overflow,
    )
    if create:
        migrate(engine)
    elif not schema_is_current(engine):
        engine.dispose()
        raise ServerMisconfigured(
            f"the database at {settings.effective_database_url} is not set up or is out of date:"
            " run `skinvault admin init` first"
        )
    vault = Vault(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        blobs=blobs
        or open_blob_store(
            settings.blob_store,
            data_dir=settings.data_dir,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            connect_timeout=settings.s3_connect_timeout_seconds,
            read_timeout=settings.s3_read_timeout_seconds,
            max_attempts=settings.s3_max_attempts,
        ),
        keys=keys or key_source(settings),
        clock=clock or SystemClock(),
        tokens=tokens or SystemTokens(),
    )
    if create:
        vault.keys.current()  # creates the key file on first run
        vault.keys.signing_key()
        if isinstance(vault.blobs, S3BlobStore):
            vault.blobs.ensure_bucket()  # the only place a bucket is made (init and serve)
    return vault
