"""Key sources: where the key-encryption keys and the audit signing key live.

FileKeySource    <data dir>/keys: kek-<id>.key files, a ``current`` file, audit-signing.key
EnvKeySource     SKINVAULT_KEK="id:base64key,oldid:base64key" and SKINVAULT_SIGNING_KEY
MemoryKeySource  the same behaviour as files, in memory, for tests

>>> keys = FileKeySource(Path("/srv/skinvault/keys"))         # doctest: +SKIP
>>> keys.current()                                            # created on first use
Kek(id='3f9a0c1e')
>>> new = keys.rotate()               # then rewrap every row, then keys.retire(old.id)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from skinvault.errors import KeyUnavailable, ServerMisconfigured
from skinvault.ports import Kek

KEY_SIZE = 32
_FILE_ID = re.compile(r"[0-9a-f]{8}")
# Ids from the environment are chosen by people; they end up in the kek_id column (32 chars).
_ENV_ID = re.compile(r"[A-Za-z0-9._-]{1,32}")

Random = Callable[[int], bytes]


def new_kek_id(random: Random = os.urandom) -> str:
    """A fresh key id: 8 hex characters."""
    return random(4).hex()


class MemoryKeySource:
    """Keys in a dict, created on first use like :class:`FileKeySource` (for tests).

    >>> keys = MemoryKeySource()
    >>> old = keys.current(); new = keys.rotate()
    >>> keys.get(old.id) == old and keys.current() == new
    True
    """

    description = "keys in memory (tests only)"

    def __init__(self, random: Random = os.urandom) -> None:
        self._random = random
        self._keks: dict[str, Kek] = {}
        self._current: str | None = None
        self._signing: bytes | None = None

    def current(self) -> Kek:
        if self._current is None:
            return self.rotate()
        return self._keks[self._current]

    def get(self, kek_id: str) -> Kek:
        try:
            return self._keks[kek_id]
        except KeyError:
            raise KeyUnavailable(f"the key-encryption key {kek_id} is not in memory") from None

    def rotate(self) -> Kek:
        kek = Kek(new_kek_id(self._random), self._random(KEY_SIZE))
        self._keks[kek.id] = kek
        self._current = kek.id
        return kek

    def known_ids(self) -> tuple[str, ...]:
        current = self.current().id
        return (current, *sorted(k for k in self._keks if k != current))

    def retire(self, kek_id: str) -> None:
        if kek_id == self._current:
            raise ServerMisconfigured(_RETIRE_CURRENT.format(kek_id))
        if self._keks.pop(kek_id, None) is None:
            raise KeyUnavailable(f"there is no key {kek_id} to retire")

    def signing_key(self) -> bytes:
        if self._signing is None:
            self._signing = self._random(KEY_SIZE)
        return self._signing


class FileKeySource:
    """Key files in one folder that only the service account can read.

    Files are created 0600 inside a 0700 folder and refused if anyone else could
    read them. Files hold the key as 64 hex characters (easy to copy to a backup);
    32 raw bytes are accepted too. Nothing is cached except KEKs by id, which
    never change, so a ``rotate`` by the CLI is seen by a running server.
    """

    def __init__(self, directory: Path, random: Random = os.urandom) -> None:
        self.directory = directory
        self.description = f"key files in {directory}"
        self._random = random
        self._keks: dict[str, Kek] = {}
        # Each missing folder is made 0700 (mkdir(parents=True) would use the umask for parents).
        try:
            for folder in [*reversed(directory.parents), directory]:
                if not folder.exists():
                    folder.mkdir(mode=0o700, exist_ok=True)
            mode = stat.S_IMODE(directory.stat().st_mode)
        except OSError as exc:
            raise ServerMisconfigured(
                f"the key folder {directory} cannot be created or read ({exc.strerror})"
            ) from exc
        if mode & 0o077:
            raise ServerMisconfigured(
                f"the key folder {directory} can be opened by other users (mode {mode:04o});"
                f" run `chmod 700 {directory}`"
            )

    # -- reading -------------------------------------------------------------

    def _read(self, path: Path) -> bytes:
        """The 32 key bytes of ``path``; refuses loose permissions or a wrong length."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise  # the caller knows whether a missing file means "create" or "unknown id"
        except OSError as exc:
            raise ServerMisconfigured(
                f"the key file {path} cannot be opened: {exc.strerror}"
            ) from exc
        with os.fdopen(fd, "rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            if mode & 0o077:
                raise ServerMisconfigured(
                    f"the key file {path} can be read by other users (mode {mode:04o});"
                    f" run `chmod 600 {path}` and check who may have copied it"
                )
            raw = handle.read(1024)
        key = _decode_key_file(raw)
        if key is None:
            raise ServerMisconfigured(
                f"the key file {path} does not hold a 32-byte key;"
                " restore it from your backup (it may be truncated or edited)"
            )
        return key

    def _kek_path(self, kek_id: str) -> Path:
        return self.directory / f"kek-{kek_id}.key"

    def current(self) -> Kek:
        try:
            kek_id = (self.directory / "current").read_text("ascii").strip()
        except FileNotFoundError:
            # First use. If a crash left a key file but no ``current``, that key
            # wraps nothing yet and stays readable, so making a new one is safe.
            return self.rotate()
        except (OSError, UnicodeDecodeError) as exc:
            raise ServerMisconfigured(
                f"the file {self.directory / 'current'} cannot be read"
            ) from exc
        if not _FILE_ID.fullmatch(kek_id):
            raise ServerMisconfigured(
                f"the file {self.directory / 'current'} should name a key id"
                f" like 3f9a0c1e, not {kek_id[:40]!r}"
            )
        try:
            return self.get(kek_id)
        except KeyUnavailable:
            raise ServerMisconfigured(
                f"the current key {kek_id} named in {self.directory / 'current'} is missing;"
                f" restore {self._kek_path(kek_id).name} from your backup"
            ) from None

    def get(self, kek_id: str) -> Kek:
        if kek_id in self._keks:
            return self._keks[kek_id]
        # The id comes from stored data: never let it reach the file system unchecked.
        if not _FILE_ID.fullmatch(kek_id):
            raise KeyUnavailable(f"{kek_id!r} is not a key id this key folder could hold")
        try:
            key = self._read(self._kek_path(kek_id))
        except FileNotFoundError:
            raise KeyUnavailable(
                f"the key-encryption key {kek_id} is not in {self.directory}"
                " (retired, or not restored from backup)"
            ) from None
        kek = self._keks[kek_id] = Kek(kek_id, key)
        return kek

    def signing_key(self) -> bytes:
        path = self.directory / "audit-signing.key"
        try:
            return self._read(path)
        except FileNotFoundError:
            pass
        # FileExistsError: another process created it first, so use theirs.
        with contextlib.suppress(FileExistsError):
            _create_key_file(path, self._random(KEY_SIZE), self._random)
        return self._read(path)

    # -- changing --------------------------------------------------------------

    def rotate(self) -> Kek:
        while True:
            kek = Kek(new_kek_id(self._random), self._random(KEY_SIZE))
            try:
                _create_key_file(self._kek_path(kek.id), kek.key, self._random)
                break
            except FileExistsError:
                continue  # an id collision: 1 in 4 billion, but never overwrite a key
        _write_atomically(self.directory / "current", f"{kek.id}\n".encode(), self._random)
        self._keks[kek.id] = kek
        return kek

    def known_ids(self) -> tuple[str, ...]:
        current = self.current().id
        on_disk = (p.name[4:-4] for p in self.directory.glob("kek-*.key"))
        return (current, *sorted(k for k in on_disk if _FILE_ID.fullmatch(k) and k != current))

    def retire(self, kek_id: str) -> None:
        if kek_id == self.current().id:
            raise ServerMisconfigured(_RETIRE_CURRENT.format(kek_id))
        if not _FILE_ID.fullmatch(kek_id):
            raise KeyUnavailable(f"there is no key {kek_id!r} in {self.directory} to retire")
        try:
            self._kek_path(kek_id).unlink()
        except FileNotFoundError:
            raise KeyUnavailable(
                f"there is no key {kek_id} in {self.directory} to retire"
            ) from None
        _fsync_dir(self.directory)
        self._keks.pop(kek_id, None)


class EnvKeySource:
    """Keys from environment variables (containers, systemd credentials).

    ``SKINVAULT_KEK`` holds ``id:base64key`` entries separated by commas, the
    current key first; ``SKINVAULT_SIGNING_KEY`` holds the base64 signing key.

    >>> keys = EnvKeySource({"SKINVAULT_KEK": "k2:" + "B" * 43 + "=,k1:" + "A" * 43 + "="})
    >>> keys.current().id
    'k2'
    """

    description = "environment variable SKINVAULT_KEK"

    def __init__(self, environ: Mapping[str, str]) -> None:
        # Parsed now, so a typo stops the server at start-up rather than at the first upload.
        spec = environ.get("SKINVAULT_KEK", "").strip()
        if not spec:
            raise ServerMisconfigured(
                "SKINVAULT_KEK is not set: give it one or more id:base64key entries"
                " separated by commas (the current key first)"
            )
        self._keks: dict[str, Kek] = {}
        self._order: list[str] = []
        for entry in spec.split(","):
            kek_id, sep, encoded = entry.strip().partition(":")
            if not sep or not _ENV_ID.fullmatch(kek_id):
                raise ServerMisconfigured(
                    "each SKINVAULT_KEK entry must look like id:base64key, with an id of 1 to 32"
                    f" letters, digits, '.', '_' or '-' (entry {len(self._order) + 1} does not)"
                )
            if kek_id in self._keks:
                raise ServerMisconfigured(f"SKINVAULT_KEK names the key id {kek_id} twice")
            key = _decode_b64(encoded, f"the key {kek_id} in SKINVAULT_KEK")
            self._keks[kek_id] = Kek(kek_id, key)
            self._order.append(kek_id)
        encoded_signing = environ.get("SKINVAULT_SIGNING_KEY", "").strip()
        self._signing = (
            _decode_b64(encoded_signing, "SKINVAULT_SIGNING_KEY") if encoded_signing else None
        )

    def current(self) -> Kek:
        return self._keks[self._order[0]]

    def get(self, kek_id: str) -> Kek:
        try:
            return self._keks[kek_id]
        except KeyError:
            raise KeyUnavailable(
                f"the key-encryption key {kek_id} is not in SKINVAULT_KEK"
                " (keep old keys listed until `skinvault admin rotate-key` finishes)"
            ) from None

    def known_ids(self) -> tuple[str, ...]:
        return tuple(self._order)

    def rotate(self) -> Kek:
        raise ServerMisconfigured(_ENV_ROTATE)

    def retire(self, kek_id: str) -> None:
        raise ServerMisconfigured(_ENV_ROTATE)

    def signing_key(self) -> bytes:
        if self._signing is None:
            raise ServerMisconfigured(
                "SKINVAULT_SIGNING_KEY is not set: give it 32 random bytes in base64"
                " (for example the output of `openssl rand -base64 32`)"
            )
        return self._signing


_RETIRE_CURRENT = "key {} is the current key: rotate to a new key before retiring it"
_ENV_ROTATE = (
    "keys from environment variables are rotated by changing SKINVAULT_KEK: put the new key"
    " first and keep the old one until `skinvault admin rotate-key` finishes"
)


def _decode_b64(encoded: str, what: str) -> bytes:
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ServerMisconfigured(f"{what} is not valid base64") from None
    if len(key) != KEY_SIZE:
        raise ServerMisconfigured(f"{what} must be 32 bytes once base64-decoded, not {len(key)}")
    return key


def _decode_key_file(raw: bytes) -> bytes | None:
    if len(raw) == KEY_SIZE:
        return raw
    text = raw.strip()
    if len(text) == 2 * KEY_SIZE:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return None
    return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    # O_EXCL with mode 0600: the file is never, even for a moment, readable by others.
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(path: Path, random: Random) -> Path:
    return path.with_name(f".tmp-{random(6).hex()}")


def _create_key_file(path: Path, key: bytes, random: Random) -> None:
    """Create ``path`` holding ``key`` (hex) or raise FileExistsError; never a half-written file.

    Written to a temp file and then hard-linked into place: a crash mid-write
    leaves only a stray temp file, never an empty key that would lock the vault.
    """
    temp = _temp_name(path, random)
    _write_new(temp, key.hex().encode() + b"\n")
    try:
        os.link(temp, path)
    finally:
        temp.unlink()
    _fsync_dir(path.parent)


def _write_atomically(path: Path, data: bytes, random: Random) -> None:
    """Replace ``path`` with ``data``: readers see the old or the new content, never half."""
    temp = _temp_name(path, random)
    _write_new(temp, data)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


__all__ = ["KEY_SIZE", "EnvKeySource", "FileKeySource", "MemoryKeySource", "new_kek_id"]
