"""The audit log's hash chain and signed checkpoints — pure: no database, no clock, no files.

Each event is hashed together with the hash of the event before it, so changing,
removing, inserting or reordering any stored event breaks every later link::

    >>> from datetime import UTC, datetime
    >>> e1 = Event(1, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "user:ab", "photo:view",
    ...            "photo:cd", "care", "allowed", None)
    >>> canonical(e1).decode()
    '1\\n"2026-01-02T03:04:05.000000Z"\\n"user:ab"\\n"photo:view"\\n"photo:cd"\\n"care"\\n"allowed"\\nnull'
    >>> h1 = link(GENESIS, e1)
    >>> verify([(e1, GENESIS, h1)]).head_seq
    1
    >>> verify([(e1, GENESIS, "0" * 64)])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    skinvault.errors.AuditChainBroken: audit chain broken at event 1: event 1 was changed ...

A chain alone cannot catch someone who rewrites an event *and* recomputes every
later hash; a :class:`Checkpoint` — the head's hash signed with an Ed25519 key
whose public half is kept elsewhere — can::

    >>> key = bytes(range(32))
    >>> cp = sign_checkpoint(1, h1, e1.at, key)
    >>> verify([(e1, GENESIS, h1)], [cp], {public_key_hex(key)}).checkpoints_checked
    1

Speed: verifying is bounded by SHA-256 itself. Per-event Python work (building
a dict, ``json.dumps``, ``datetime.isoformat``) costs several times one hash of
a ~250-byte event, so :func:`verify_rows` encodes a whole batch with *one*
``json.dumps`` call, hashes with C-level ``map`` and compares whole lists; only a
batch that fails is walked event by event to name the first broken link.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from operator import itemgetter

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from skinvault.errors import AuditChainBroken

#: The previous-hash of event 1.
GENESIS = "0" * 64

#: One stored event as plain values, the shape databases return cheaply:
#: (seq, at as :func:`format_at` text, actor, action, object, purpose, outcome, reason,
#: prev_hash, hash).
FlatRow = tuple[int, str, str, str, str, str | None, str, str | None, str, str]

_BATCH = 4096
_NOT_GENESIS = "(its previous-hash is not the genesis value)"
_PREV_MISMATCH = "(its previous-hash does not match)"
_CHECKPOINT_DOMAIN = "skinvault audit checkpoint v1"

# Compact JSON with "\n" between items: a JSON value never contains a raw newline
# (strings escape it), so "\n" can only be a field separator and "]\n[" only the
# boundary between two rows of a batch. That is what makes the encoding unambiguous
# and lets one json call encode thousands of events.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=("\n", ":"), check_circular=False, allow_nan=False
)
_FIELDS = itemgetter(0, 1, 2, 3, 4, 5, 6, 7)
_SEQ = itemgetter(0)
_PREV = itemgetter(8)
_HASH = itemgetter(9)
_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class Event:
    """One audited attempt: who (actor) did what (action) to which object, and how it ended.

    ``at`` must be timezone-aware; it is kept in UTC.
    """

    seq: int
    at: datetime
    actor: str
    action: str
    object: str
    purpose: str | None
    outcome: str
    reason: str | None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("naive datetime: an audit event needs a timezone-aware UTC time")
        if self.at.utcoffset():
            object.__setattr__(self, "at", self.at.astimezone(UTC))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "event ``seq`` has hash ``hash``" made at ``at``."""

    seq: int
    hash: str
    at: datetime
    public_key_hex: str
    signature_hex: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What a successful verification covered."""

    count: int
    head_seq: int
    head_hash: str
    checkpoints_checked: int


def format_at(at: datetime) -> str:
    """``at`` as ISO-8601 UTC with microseconds and "Z": ``2026-01-02T03:04:05.000000Z``."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware UTC time")
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _fields(event: Event) -> tuple[int, str, str, str, str, str | None, str, str | None]:
    return (
        event.seq,
        format_at(event.at),
        str(event.actor),
        str(event.action),
        str(event.object),
        None if event.purpose is None else str(event.purpose),
        str(event.outcome),
        None if event.reason is None else str(event.reason),
    )


def canonical(event: Event) -> bytes:
    """The bytes hashed for ``event``: its eight fields, each as compact JSON, joined by "\\n".

    Field order is fixed (seq, at, actor, action, object, purpose, outcome, reason);
    strings are JSON strings (UTF-8, not ASCII-escaped), absent values ``null``.
    """
    return _ENCODER.encode(_fields(event))[1:-1].encode()


def link(prev_hash: str, event: Event) -> str:
    """The hash of ``event`` chained to ``prev_hash``: hex SHA-256(prev bytes || canonical)."""
    return _sha256(bytes.fromhex(prev_hash) + canonical(event)).hexdigest()


def flat_row(event: Event, prev_hash: str, hash_: str) -> FlatRow:
    """``event`` and its stored hashes in the :data:`FlatRow` shape :func:`verify_rows` reads."""
    return (*_fields(event), prev_hash, hash_)


def public_key_hex(private_key: bytes) -> str:
    """The hex Ed25519 public key of a 32-byte private key (what verifiers keep)."""
    return Ed25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw().hex()


def checkpoint_message(seq: int, hash_: str, at: datetime) -> bytes:
    """The exact bytes a checkpoint signs (domain-separated, so they sign nothing else)."""
    return f"{_CHECKPOINT_DOMAIN}\nseq {seq}\nhash {hash_}\nat {format_at(at)}\n".encode()


def sign_checkpoint(seq: int, hash_: str, at: datetime, private_key: bytes) -> Checkpoint:
    """Sign "event ``seq`` has hash ``hash_``" with a 32-byte Ed25519 private key."""
    key = Ed25519PrivateKey.from_private_bytes(private_key)
    signature = key.sign(checkpoint_message(seq, hash_, at))
    return Checkpoint(seq, hash_, at, public_key_hex(private_key), signature.hex())


def verify(
    rows: Iterable[tuple[Event, str, str]],
    checkpoints: Iterable[Checkpoint] = (),
    public_keys: Collection[str] | None = None,
) -> ChainReport:
    """Check (event, prev_hash, hash) rows in seq order; raise at the first broken link.

    ``public_keys`` are the hex keys trusted to sign checkpoints; ``None`` accepts
    any key whose signature verifies (which only proves internal consistency —
    pass the keys you kept to catch a rewritten log).
    """
    return verify_rows((flat_row(e, p, h) for e, p, h in rows), checkpoints, public_keys)


def verify_rows(
    rows: Iterable[FlatRow],
    checkpoints: Iterable[Checkpoint] = (),
    public_keys: Collection[str] | None = None,
) -> ChainReport:
    """:func:`verify` over :data:`FlatRow` tuples (``at`` already formatted) — the fast path."""
    verifier = Verifier(checkpoints, public_keys)
    iterator = iter(rows)
    while batch := list(islice(iterator, _BATCH)):
        verifier.feed(batch)
    return verifier.finish()


def _encode_batch(rows: Sequence[FlatRow]) -> list[bytes]:
    """canonical() of every row, from one json call."""
    fields = list(map(_FIELDS, rows))
    parts = _ENCODER.encode(fields)[2:-2].encode().split(b"]\n[")
    if len(parts) != len(rows):  # only if a field holds a non-scalar; stay exact
        parts = [_ENCODER.encode(f)[1:-1].encode() for f in fields]
    return parts


class Verifier:
    """Incremental :func:`verify_rows`: ``feed`` batches in seq order, then ``finish``.

    Walks batches of rows, carrying the expected seq and previous hash between them."""

    def __init__(self, checkpoints: Iterable[Checkpoint], public_keys: Collection[str] | None):
        self.pending = sorted(checkpoints, key=lambda c: c.seq)
        self.public_keys = None if public_keys is None else frozenset(public_keys)
        self.next_cp = 0
        self.last_good_cp = 0
        self.expect = 1
        self.prev = GENESIS

    def feed(self, rows: list[FlatRow]) -> None:
        first = self.expect
        n = len(rows)
        hashes = list(map(_HASH, rows))
        ok = list(map(_SEQ, rows)) == list(range(first, first + n))
        if ok:
            prevs = list(map(_PREV, rows))
            ok = prevs[0] == self.prev and prevs[1:] == hashes[:-1]
        if ok:
            try:
                prev_bytes = list(map(bytes.fromhex, prevs))
            except (ValueError, TypeError):
                ok = False
        if ok:
            sha = _sha256
            parts = _encode_batch(rows)
            ok = [sha(p + c).hexdigest() for p, c in zip(prev_bytes, parts, strict=True)] == hashes
        if not ok:
            broken = self._walk(rows)  # the exact first failure, in order
            self._checkpoints(hashes, first, broken.seq)
            raise broken
        self._checkpoints(hashes, first, first + n)
        self.expect = first + n
        self.prev = hashes[-1]

    def _walk(self, rows: list[FlatRow]) -> AuditChainBroken:
        expect, prev = self.expect, self.prev
        for row in rows:
            seq = row[0]
            if seq != expect:
                if not isinstance(seq, int) or seq < expect:
                    return AuditChainBroken(
                        expect,
                        f"event {seq} appears where event {expect} should be "
                        "(events are duplicated or out of order)",
                    )
                jump = (
                    f"the log starts at event {seq}"
                    if expect == 1
                    else (f"the sequence jumps from {expect - 1} to {seq}")
                )
                return AuditChainBroken(expect, f"event {expect} is missing ({jump})")
            if row[8] != prev:
                if seq == 1:
                    return AuditChainBroken(
                        1,
                        f"event 1 does not start the chain {_NOT_GENESIS}",
                    )
                return AuditChainBroken(
                    seq,
                    f"event {seq} does not follow event {seq - 1} {_PREV_MISMATCH}",
                )
            try:
                data = bytes.fromhex(row[8]) + _ENCODER.encode(row[:8])[1:-1].encode()
                intact = _sha256(data).hexdigest() == row[9]
            except (ValueError, TypeError):
                intact = False
            if not intact:
                return AuditChainBroken(
                    seq,
                    f"event {seq} was changed after it was written "
                    "(its hash does not match its contents)",
                )
            expect, prev = expect + 1, row[9]
        raise AssertionError("a batch failed the fast check but every event verifies")

    def _checkpoints(self, hashes: list[str], first: int, stop: int) -> None:
        """Check the pending checkpoints for verified events ``first`` ≤ seq < ``stop``."""
        while self.next_cp < len(self.pending) and self.pending[self.next_cp].seq < stop:
            cp = self.pending[self.next_cp]
            if cp.seq < first:
                raise AuditChainBroken(cp.seq, f"checkpoint {cp.seq} names no event of the log")
            self._check_signature(cp)
            if hashes[cp.seq - first] != cp.hash:
                raise AuditChainBroken(
                    cp.seq,
                    f"event {cp.seq} does not match signed checkpoint {cp.seq}: the log was "
                    f"rewritten between event {self.last_good_cp + 1} and event {cp.seq}",
                )
            self.last_good_cp = cp.seq
            self.next_cp += 1

    def _check_signature(self, cp: Checkpoint) -> None:
        if self.public_keys is not None and cp.public_key_hex not in self.public_keys:
            raise AuditChainBroken(
                cp.seq,
                f"checkpoint {cp.seq} was signed by a key that is not trusted "
                f"({cp.public_key_hex[:16]}…)",
            )
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(cp.public_key_hex))
            key.verify(bytes.fromhex(cp.signature_hex), checkpoint_message(cp.seq, cp.hash, cp.at))
        except (InvalidSignature, ValueError) as exc:
            raise AuditChainBroken(
                cp.seq, f"checkpoint {cp.seq} has an invalid signature (it was forged or altered)"
            ) from exc

    def finish(self) -> ChainReport:
        head = self.expect - 1
        if self.next_cp < len(self.pending):
            cp = self.pending[self.next_cp]
            self._check_signature(cp)
            raise AuditChainBroken(
                head + 1,
                f"the log ends at event {head} but checkpoint {cp.seq} was signed: "
                "events were removed from the end",
            )
        return ChainReport(
            count=head, head_seq=head, head_hash=self.prev, checkpoints_checked=self.next_cp
        )
