"""The latest signed head, kept outside the database: written atomically, compared on verify.

Checkpoint rows live in the database they vouch for, so whoever can delete the
newest events can delete the newest checkpoints with them, and the shortened log
still verifies. A copy of the latest signed head in a file (next to the keys, and
optionally in a second place) is out of that reach: the log must reach at least
the event it names, with the same hash.

    >>> write_head(path, signed)                                   # doctest: +SKIP
    >>> compare(read_head(path), path, head_seq=9, hash_at=lookup, trusted={key})  # doctest: +SKIP

Nothing here opens a database: :func:`compare` is handed the log's head and a
lookup of stored hashes.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from skinvault.audit.chain import Checkpoint, checkpoint_from_json, checkpoint_json, signature_ok
from skinvault.errors import AuditChainBroken

#: The file name of a kept head, in the data dir's key folder and in the second place.
HEAD_FILE = "audit-head.json"


@dataclass(frozen=True)
class KeptHead:
    """One kept copy: where it is, and the signed head it holds (``None``: no file)."""

    path: Path
    checkpoint: Checkpoint | None


class InvalidHead(ValueError):
    """A head file that is there but is not a signed head (damaged or forged)."""


def read_head(path: Path) -> KeptHead:
    """The signed head in ``path``; a missing file is a :class:`KeptHead` without one."""
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return KeptHead(path, None)
    except OSError as exc:
        raise InvalidHead(f"the signed head {path} cannot be read ({exc.strerror})") from exc
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return KeptHead(path, checkpoint_from_json(data))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidHead(f"the signed head {path} is not a signed head ({exc})") from exc


def write_head(path: Path, cp: Checkpoint, *, only_newer: bool = True) -> bool:
    """Write ``cp`` to ``path`` atomically (temp file, fsync, rename) unless the file
    already holds a later head (``only_newer=False``: whatever it holds); returns
    whether it wrote.

    Readers see the old file or the new one, never half of one; a crash leaves at worst a
    stray temp file. The folder is created 0700 if it is missing.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # One writer at a time (the server's thread, `audit checkpoint`, another worker), so
    # the compare-then-replace below cannot put an older head back over a newer one.
    with open(path.parent / f".{HEAD_FILE}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _replace_if_newer(path, cp, only_newer)


def _replace_if_newer(path: Path, cp: Checkpoint, only_newer: bool = True) -> bool:
    try:
        current = read_head(path).checkpoint
    except InvalidHead:
        current = None  # a damaged file is replaced by a good one
    if only_newer and current is not None and current.seq >= cp.seq:
        return False
    body = (json.dumps(checkpoint_json(cp), indent=2) + "\n").encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{HEAD_FILE}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return True  # the rename is done; only its durability across a power cut is not
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


def compare(
    kept: Checkpoint,
    where: Path,
    *,
    head_seq: int,
    hash_at: Callable[[int], str | None],
    trusted: Collection[str],
) -> None:
    """Raise :class:`AuditChainBroken`, in plain words, unless the log still holds ``kept``.

    ``head_seq`` is the log's newest event, ``hash_at(seq)`` a stored hash (``None`` if
    the event is gone), ``trusted`` the hex keys whose signatures count.
    """
    if kept.public_key_hex not in trusted or not signature_ok(kept):
        raise AuditChainBroken(
            kept.seq,
            f"the signed head kept outside the database ({where}) has no valid signature of"
            " this vault's audit key: it was altered or forged",
        )
    signed_at = f"{kept.at:%Y-%m-%d %H:%M} UTC"
    if head_seq < kept.seq:
        first = head_seq + 1
        gone = f"event {first} was" if first == kept.seq else f"events {first} to {kept.seq} were"
        raise AuditChainBroken(
            first,
            f"the log ends at event {head_seq}, but the signed head kept outside the database"
            f" ({where}, signed {signed_at}) names event {kept.seq}: {gone} removed from"
            " the end of the log",
        )
    if hash_at(kept.seq) != kept.hash:
        raise AuditChainBroken(
            kept.seq,
            f"event {kept.seq} is not the one the signed head kept outside the database"
            f" ({where}, signed {signed_at}) names: the log was cut and written again, or"
            f" rewritten, up to event {kept.seq}",
        )
