"""Blobs as files under one folder, written atomically.

    >>> store = LocalBlobStore(Path("/srv/skinvault/blobs"))       # doctest: +SKIP
    >>> store.put("p/20260101120000-4f0c", sealed.blob)
    >>> store.get("p/20260101120000-4f0c") == sealed.blob
    True

Layout: ``root/ab/cd/<key>`` where ``abcd`` starts the SHA-256 of the key, so
no folder grows past a few thousand entries whatever the keys look like, and
"/" in a key becomes "+" so a key never has to be both a file and a folder.
A write goes to ``.tmp-<random>`` in the same folder, is fsynced, renamed
over the final name and the folder fsynced: after a crash a key holds the
whole blob or nothing. A killed writer leaves only a ``.tmp-`` file, which
:meth:`LocalBlobStore.keys` never lists and :meth:`LocalBlobStore.sweep_temp` removes.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from skinvault.errors import BlobUnreadable, StorageUnavailable

# Every store accepts exactly this set, so moving a vault between backends
# never strands a key: safe as a file name and as an S3 key alike.
_KEY = re.compile(r"[a-z0-9_-]+(/[a-z0-9_-]+)*")
_MAX_KEY = 200  # the blob_key column's width
TEMP_PREFIX = ".tmp-"


def check_key(key: str) -> str:
    """``key`` if it is a valid blob key; ValueError otherwise (a bug in the caller)."""
    if len(key) > _MAX_KEY or not _KEY.fullmatch(key):
        raise ValueError(
            f"invalid blob key {key[:80]!r}: use 1 to {_MAX_KEY} characters from a-z 0-9 _ - and"
            " '/' between non-empty parts"
        )
    return key


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    """A :class:`~skinvault.ports.BlobStore` in a local folder (files 0600, folders 0700)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"local folder {root}"

    def _path(self, key: str) -> Path:
        digest = hashlib.sha256(check_key(key).encode()).hexdigest()
        return self.root / digest[:2] / digest[2:4] / key.replace("/", "+")

    def _make_dirs(self, folder: Path) -> None:
        # mkdir(parents=True) would give the parents the umask's mode, not 0700.
        for path in (self.root, folder.parent, folder):
            path.mkdir(mode=0o700, exist_ok=True)

    def put(self, key: str, data: bytes) -> None:
        try:
            self._put(key, data)
        except OSError as exc:  # disk full, read-only mount, permissions: the server's fault
            raise StorageUnavailable(
                f"{self.description} cannot be written ({exc.strerror or exc})"
            ) from exc

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        self._make_dirs(path.parent)
        temp = path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    def check(self) -> None:
        """Raise StorageUnavailable unless the folder can be written (readiness probe)."""
        if self.root.exists() and not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"{self.description} cannot be written")
        if not self.root.exists() and not os.access(self.root.parent, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"{self.description} cannot be created")

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobUnreadable(f"blob {key} is missing from {self.root}") from None
        except OSError as exc:
            raise StorageUnavailable(
                f"{self.description} cannot be read ({exc.strerror or exc})"
            ) from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(path.parent)  # a deletion for erasure should survive a power cut too

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _files(self) -> Iterator[os.DirEntry[str]]:
        """Every file two fan-out levels down (blobs and temp files)."""
        if not self.root.is_dir():
            return
        for level1 in os.scandir(self.root):
            if len(level1.name) != 2 or not level1.is_dir(follow_symlinks=False):
                continue
            for level2 in os.scandir(level1.path):
                if len(level2.name) != 2 or not level2.is_dir(follow_symlinks=False):
                    continue
                for entry in os.scandir(level2.path):
                    if entry.is_file(follow_symlinks=False):
                        yield entry

    def keys(self) -> Iterator[str]:
        for entry in self._files():
            key = entry.name.replace("+", "/")
            # Temp files start with "." and so can never match a valid key.
            if _KEY.fullmatch(key):
                yield key

    def sweep_temp(self, older_than_seconds: float) -> int:
        """Remove temp files left by killed writers; returns how many were removed.

        Only files older than ``older_than_seconds`` go, so a write in progress
        in another process is not cut short.
        """
        cutoff = time.time() - older_than_seconds
        removed = 0
        for entry in self._files():
            if entry.name.startswith(TEMP_PREFIX):
                try:
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue  # its writer finished (renamed it) meanwhile
        return removed
