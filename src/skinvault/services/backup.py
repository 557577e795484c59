"""Backups that restore: one archive with the database, the blobs it names and a manifest.

    >>> report = make_backup(vault, Path("/backups/sv-2026-12-01.svbackup"))  # doctest: +SKIP
    >>> restore_backup(new_settings, Path("/backups/sv-2026-12-01.svbackup"))  # doctest: +SKIP

The archive is a tar file (0600) holding:

``manifest.json``
    format, time, version, schema revision, row counts, the key ids the archive needs,
    and the SHA-256 of every other member (restore refuses an archive that differs).
``database.jsonl.gz.sealed``
    every table as JSON lines, gzipped and sealed (AES-256-GCM) under the current
    key-encryption key: names, e-mail addresses and audit reasons are not readable from
    the archive alone.
``blobs/…``
    the blobs the database names, copied as stored (already ciphertext).
``audit-head.json``
    the signed audit head kept at backup time, if there was one.

The snapshot is consistent: SQLite through the online backup API (the copy is then read
at leisure); PostgreSQL in one REPEATABLE READ, READ ONLY transaction. Blobs are copied
*after* the snapshot, by the keys the snapshot names: one written later is not named (it
belongs to a later backup), one removed since (a photo shredded meanwhile) is listed as
missing — it was unreadable anyway once its key was destroyed.

**Keys are not in the archive.** Whoever holds both the archive and the keys can read
every photo; kept apart, a stolen archive is ciphertext. Back up ``<data dir>/keys/``
(or the ``SKINVAULT_KEK`` value) separately — offline, to escrow — and remember that a
lost key-encryption key means lost photos: no backup brings them back.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import sqlite3
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, Table, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from skinvault import __version__
from skinvault.audit.head import HEAD_FILE
from skinvault.bootstrap import Vault, bootstrap, key_source, prepare_data_dir
from skinvault.config import Settings
from skinvault.crypto.envelope import StreamOpener, StreamSealer, is_shredded
from skinvault.db.engine import make_engine
from skinvault.db.models import Base, Derivative, Photo
from skinvault.errors import (
    BlobUnreadable,
    KeyUnavailable,
    RequestInvalid,
    ServerMisconfigured,
    VaultError,
)

FORMAT = "skinvault-backup/1"
MANIFEST, DATABASE, HEAD = "manifest.json", "database.jsonl.gz.sealed", HEAD_FILE
KIND = "backup"
# Not worth restoring: sign-in failures and sessions start afresh (everyone signs in again).
SKIPPED_TABLES = frozenset({"sign_in_failures", "web_sessions"})
#: Tables whose rows name a blob that the archive carries (unless the row is shredded).
_BLOB_TABLES = frozenset({Photo.__tablename__, Derivative.__tablename__})

Progress = Callable[[str, int, int], None]  # (stage, done, total)
CHUNK = 1 << 20  # the database member is streamed in pieces of this size, never held whole
BATCH = 500  # rows per INSERT on restore


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class BackupReport:
    path: Path
    rows: dict[str, int]
    blobs: int
    missing_blobs: tuple[str, ...]
    key_ids: tuple[str, ...]
    size: int


# -- values <-> JSON ------------------------------------------------------------------------


def _encode(value: object) -> object:
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode()}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    return value


def _decode(value: object) -> object:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, raw),) = value.items()
        if tag == "$b":
            return base64.b64decode(raw)
        if tag == "$dt":
            parsed = datetime.fromisoformat(raw)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if tag == "$d":
            return date.fromisoformat(raw)
    return value


def _tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name not in SKIPPED_TABLES]


def _schema_revision(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar())


# -- the snapshot ----------------------------------------------------------------------------


class _SealedFile:
    """Where the gzip stream of the database goes: sealed as it comes, written to ``out``
    and hashed, so the dump is never whole in memory (nor ever in plaintext on disk)."""

    mode = "wb"

    def __init__(self, out: IO[bytes], sealer: StreamSealer) -> None:
        self._out, self._sealer = out, sealer
        self.sha256 = hashlib.sha256()
        self._put(sealer.header)

    def _put(self, data: bytes) -> None:
        self._out.write(data)
        self.sha256.update(data)

    def write(self, data: bytes) -> int:
        self._put(self._sealer.update(bytes(data)))
        return len(data)

    def flush(self) -> None:
        self._out.flush()

    def finish(self) -> None:
        self._put(self._sealer.finish())
        self._out.flush()


def _coded(table: Table) -> list[int]:
    """Positions of the columns whose values JSON cannot carry as they are (bytes, dates)."""
    out = []
    for i, column in enumerate(table.columns):
        try:
            plain = column.type.python_type in (str, int, float, bool)
        except NotImplementedError:  # a type that does not say: encode every value
            plain = False
        if not plain:
            out.append(i)
    return out


def _dump(engine: Engine, sink: _SealedFile) -> tuple[dict[str, int], list[str], set[str]]:
    """Write every table as gzipped JSON lines into ``sink``, from one snapshot: (rows per
    table, blob keys named, key ids named). Rows are fetched in batches (server-side on
    PostgreSQL) and written about ``CHUNK`` bytes at a time, so memory stays flat however
    large the database. The caller finishes ``sink``."""
    rows: dict[str, int] = {}
    blob_keys: list[str] = []
    key_ids: set[str] = set()
    line = json.JSONEncoder(separators=(",", ":")).encode
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        # Level 6, as gzip(1) and pg_dump use (level 9 was slower; the archive grew ~1 %,
        # 214 -> 216 MB at 1 M events in bench/backup.py).
        with gzip.GzipFile(fileobj=sink, mode="wb", mtime=0, compresslevel=6) as out:
            for table in _tables():
                names = [c.name for c in table.columns]
                coded = [(i, names[i]) for i in _coded(table)]
                # Blobs that must travel with the dump, and the keys the dump needs.
                blob_at = names.index("blob_key") if table.name in _BLOB_TABLES else None
                dek_at = names.index("wrapped_dek") if blob_at is not None else None
                kek_at = names.index("kek_id") if "kek_id" in names else None
                count, pending, size = 0, [], 0
                result = conn.execute(select(table).execution_options(yield_per=BATCH))
                for row in result:
                    values = dict(zip(names, row, strict=True))
                    for i, name in coded:
                        if row[i] is not None:
                            values[name] = _encode(row[i])
                    text_line = line({"t": table.name, "r": values}) + "\n"
                    pending.append(text_line)
                    size += len(text_line)
                    if size >= CHUNK:
                        out.write("".join(pending).encode())
                        pending, size = [], 0
                    count += 1
                    if blob_at is not None and not is_shredded(row[dek_at]):  # type: ignore[index]
                        blob_keys.append(str(row[blob_at]))  # shredded: nothing kept
                    if kek_at is not None and row[kek_at]:
                        key_ids.add(str(row[kek_at]))
                if pending:
                    out.write("".join(pending).encode())
                rows[table.name] = count
        conn.rollback()
    return rows, blob_keys, key_ids


def _sqlite_snapshot(url: str, into: Path) -> Engine:
    """A copy of the SQLite database made with the online backup API (writers may go on)."""
    database = make_url(url).database
    if not database:
        raise ServerMisconfigured("an in-memory SQLite database cannot be backed up")
    source = sqlite3.connect(database)
    target = sqlite3.connect(into)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return make_engine(f"sqlite:///{into}")


def make_backup(vault: Vault, out: Path, progress: Progress = _no_progress) -> BackupReport:
    """Write a backup archive of ``vault`` to ``out`` (atomically; mode 0600)."""
    out = out.resolve()
    if out.exists():
        raise RequestInvalid(f"{out} exists already; choose a new file for each backup")
    revision = _schema_revision(vault.engine)
    kek = vault.keys.current()
    backup_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{os.urandom(4).hex()}"
    sealer = StreamSealer(object_id=backup_id, kind=KIND, kek=kek)
    # The scratch folder is 0700; the sealed dump waits there (ciphertext only) until the
    # archive is written, since a tar member's size comes before its bytes.
    with tempfile.TemporaryDirectory(prefix="skinvault-backup-") as scratch:
        progress("database", 0, 1)
        sealed_path = Path(scratch) / DATABASE
        with open(sealed_path, "xb") as sealed_out:
            sink = _SealedFile(sealed_out, sealer)
            if vault.engine.dialect.name == "sqlite":
                snapshot = _sqlite_snapshot(str(vault.engine.url), Path(scratch) / "snapshot.db")
                try:
                    rows, blob_keys, key_ids = _dump(snapshot, sink)
                finally:
                    snapshot.dispose()
                    (Path(scratch) / "snapshot.db").unlink()  # plaintext: gone at once
            else:
                rows, blob_keys, key_ids = _dump(vault.engine, sink)
            sink.finish()
        progress("database", 1, 1)
        members: dict[str, str] = {DATABASE: sink.sha256.hexdigest()}
        missing: list[str] = []
        temp = out.with_name(f".{out.name}.tmp-{os.urandom(4).hex()}")
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle, tarfile.open(fileobj=handle, mode="w") as tar:
                with open(sealed_path, "rb") as sealed_in:
                    _add_file(tar, DATABASE, sealed_in, sealed_path.stat().st_size)
                head_file = vault.settings.data_dir / "keys" / HEAD_FILE
                if head_file.is_file():
                    head = head_file.read_bytes()
                    _add(tar, HEAD, head)
                    members[HEAD] = hashlib.sha256(head).hexdigest()
                for done, key in enumerate(blob_keys, 1):
                    try:
                        blob = vault.blobs.get(key)
                    except BlobUnreadable:
                        missing.append(key)
                        continue
                    name = f"blobs/{key}"
                    _add(tar, name, blob)
                    members[name] = hashlib.sha256(blob).hexdigest()
                    progress("blobs", done, len(blob_keys))
                needed = sorted(key_ids | {kek.id})
                manifest = {
                    "format": FORMAT,
                    "id": backup_id,
                    "created_at": datetime.now(UTC).isoformat(),
                    "skinvault": __version__,
                    "schema_revision": revision,
                    "database": vault.engine.dialect.name,
                    "rows": rows,
                    "key_ids": needed,
                    "database_kek_id": kek.id,
                    "database_wrapped_dek": base64.b64encode(sealer.wrapped_dek).decode(),
                    "missing_blobs": missing,
                    "sha256": members,
                    "keys_included": False,
                }
                _add(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, out)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    return BackupReport(
        out, rows, len(blob_keys) - len(missing), tuple(missing), tuple(needed),
        out.stat().st_size,
    )  # fmt: skip


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    _add_file(tar, name, io.BytesIO(data), len(data))


def _add_file(tar: tarfile.TarFile, name: str, handle: IO[bytes], size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    tar.addfile(info, handle)


# -- restoring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreReport:
    rows: dict[str, int]
    blobs: int
    audit_head: bool


def _members(tar: tarfile.TarFile) -> Iterator[tuple[str, IO[bytes]]]:
    """Each member's name and a reader of its bytes (read it before asking for the next)."""
    for info in tar:
        if not info.isfile():
            raise VaultError(f"the backup holds {info.name!r}, which is not a plain file")
        handle = tar.extractfile(info)
        assert handle is not None
        yield info.name, handle


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


def read_manifest(archive: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, mode="r:") as tar:
            handle = tar.extractfile(MANIFEST)
            if handle is None:
                raise KeyError(MANIFEST)
            manifest: dict[str, Any] = json.loads(handle.read())
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise VaultError(f"{archive} is not a readable skinvault backup ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise VaultError(f"{archive} is not a {FORMAT} archive")
    return manifest


def verify_backup(archive: Path) -> dict[str, Any]:
    """The manifest, once every member's SHA-256 matches it (and nothing is extra or missing)."""
    manifest = read_manifest(archive)
    expected: dict[str, str] = manifest["sha256"]
    seen: set[str] = set()
    with tarfile.open(archive, mode="r:") as tar:
        for name, handle in _members(tar):
            if name == MANIFEST:
                continue
            digest = hashlib.sha256()
            for chunk in _chunks(handle):
                digest.update(chunk)
            if expected.get(name) != digest.hexdigest():
                raise VaultError(f"the backup's {name} does not match its manifest: damaged")
            seen.add(name)
    if seen != set(expected):
        raise VaultError(f"the backup lacks {sorted(set(expected) - seen)[:3]}: incomplete")
    return manifest


def _is_empty(engine: Engine) -> bool:
    with engine.connect() as conn:
        for table in _tables():
            if conn.execute(select(func.count()).select_from(table)).scalar():
                return False
    return True


def restore_backup(
    settings: Settings, archive: Path, progress: Progress = _no_progress
) -> RestoreReport:
    """Restore ``archive`` into the (empty) database and blob store ``settings`` name.

    The keys come first: every key id the archive needs must already be in the target's
    key source (copy ``keys/`` or set ``SKINVAULT_KEK``), or nothing is written."""
    manifest = verify_backup(archive)
    prepare_data_dir(settings)
    keys = key_source(settings)
    for kek_id in manifest["key_ids"]:
        try:
            keys.get(kek_id)
        except KeyUnavailable as exc:
            raise KeyUnavailable(
                f"the backup needs the key {kek_id}, which {keys.description} does not have:"
                " restore the keys (kept apart from backups) first"
            ) from exc
    vault = bootstrap(settings, create=True, keys=keys)
    try:
        if _schema_revision(vault.engine) != manifest["schema_revision"]:
            raise RequestInvalid(
                f"the backup's schema is {manifest['schema_revision']}, this version's is"
                f" {_schema_revision(vault.engine)}: restore with the version that made it"
            )
        if not _is_empty(vault.engine):
            raise RequestInvalid("the target database is not empty: restore into a new one")
        rows: dict[str, int] = {}
        blobs = 0
        restored_head = False
        with tarfile.open(archive, mode="r:") as tar:
            for name, handle in _members(tar):
                if name == DATABASE:
                    opener = StreamOpener(
                        base64.b64decode(manifest["database_wrapped_dek"]),
                        object_id=manifest["id"], kind=KIND, keys=keys,
                    )  # fmt: skip
                    rows = _load(vault.engine, _chunks(handle), opener)
                    progress("database", 1, 1)
                elif name.startswith("blobs/"):
                    vault.blobs.put(name.removeprefix("blobs/"), handle.read())
                    blobs += 1
                    progress("blobs", blobs, len(manifest["sha256"]) - 1)
                elif name == HEAD:
                    _write_head(settings, handle.read())
                    restored_head = True
        return RestoreReport(rows, blobs, restored_head)
    finally:
        vault.close()


def _lines(sealed: Iterator[bytes], opener: StreamOpener) -> Iterator[bytes]:
    """The dump's JSON lines, decrypted and gunzipped a piece at a time. The tag is checked
    after the last line: until then every line is unauthenticated (see :func:`_load`)."""
    gunzip = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    tail = b""
    for piece in sealed:
        tail += gunzip.decompress(opener.update(piece))
        *whole, tail = tail.split(b"\n")
        yield from whole
    opener.finish()
    tail += gunzip.flush()
    if not gunzip.eof or gunzip.unused_data:
        raise ValueError("the gzip stream does not end where the member ends")
    yield from tail.split(b"\n")


def _load(engine: Engine, sealed: Iterator[bytes], opener: StreamOpener) -> dict[str, int]:
    """Insert every row of the sealed dump in one transaction, in the dump's order (tables
    come in foreign-key order), ``BATCH`` rows at a time.

    Rows are inserted before the dump's tag is checked (it comes last), so nothing commits
    until it is: a dump that fails the check rolls back and leaves the database empty."""
    tables = {t.name: t for t in _tables()}
    rows = dict.fromkeys(tables, 0)
    lines = _lines(sealed, opener)
    try:
        with engine.begin() as conn:
            batch: list[dict[str, object]] = []
            current = ""
            for line in lines:
                if not line:
                    continue
                item = json.loads(line)
                if item["t"] not in tables:
                    continue
                if item["t"] != current or len(batch) >= BATCH:
                    _insert(conn, tables.get(current), batch)
                    current, batch = item["t"], []
                batch.append(
                    {k: _decode(v) if v.__class__ is dict else v for k, v in item["r"].items()}
                )
                rows[current] += 1
            _insert(conn, tables.get(current), batch)
    except (ValueError, KeyError, TypeError, zlib.error, SQLAlchemyError) as exc:
        # Most likely a damaged dump whose garbage failed to parse or insert before its tag
        # was reached: read the rest through the check, so the message says which it is
        # (the check raises BlobUnreadable, "damaged").
        if not opener.finished:
            for piece in sealed:
                opener.update(piece)
        opener.finish()
        raise VaultError(f"the backup's database could not be restored ({exc})") from exc
    return rows


def _insert(conn: Connection, table: Table | None, batch: list[dict[str, object]]) -> None:
    if table is not None and batch:
        conn.execute(insert(table), batch)


def _write_head(settings: Settings, data: bytes) -> None:
    """The backup's signed head replaces the kept one: a restore rolls the log back on
    purpose, and verify must compare the restored log with the head it had."""
    places = [settings.data_dir / "keys"]
    if settings.audit_head_copy_dir is not None:
        places.append(settings.audit_head_copy_dir)
    for folder in places:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = folder / f".{HEAD_FILE}.restore-{os.urandom(4).hex()}"
        temp.write_bytes(data)
        os.replace(temp, folder / HEAD_FILE)


__all__ = ["BackupReport", "RestoreReport", "make_backup", "restore_backup", "verify_backup"]
