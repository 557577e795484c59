"""The audit log's hash chain and signed checkpoints — pure: no database, no clock, no files.

Each event is hashed together with the hash of the event before it, so changing,
removing, inserting or reordering any stored event breaks every later link::

    >>> from datetime import UTC, datetime
    >>> e1 = Event(1, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "user:ab", "photo:view",
    ...            "photo:cd", "care", "allowed", None)
    >>> canonical(e1).decode().split(SEP)
    ['1', '2026-01-02 03:04:05', 'user:ab', 'photo:view', 'photo:cd', 'care', 'allowed', '\\x1a']
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

Speed: verifying is bounded by SHA-256 itself, so the encoding is one a database
can produce for a whole batch at once with plain string concatenation: the fields
joined by ``\x1f``, an absent value written ``\x1a``, and only the four
characters ``\\ \x1a \x1e \x1f`` escaped. A batch in which none of those
occurs inside a field (checked once on the whole batch, by counting) needs no
per-event work in Python besides the hash; :meth:`Verifier.feed_joined` takes
such a batch, :meth:`Verifier.feed` takes rows and is exact whatever they hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Sequence
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
#: (seq, at as :func:`canonical_at` text, actor, action, object, purpose, outcome, reason,
#: prev_hash, hash).
FlatRow = tuple[int, str, str, str, str, str | None, str, str | None, str, str]

#: Between two fields of the hashed bytes.
SEP = "\x1f"
#: Between two events of a batch (never inside an event's hashed bytes).
ROW = "\x1e"
#: An absent value (``None``).
NULL = "\x1a"

_BATCH = 4096
_NOT_GENESIS = "(its previous-hash is not the genesis value)"
_PREV_MISMATCH = "(its previous-hash does not match)"
_CHECKPOINT_DOMAIN = "skinvault audit checkpoint v1"

# Escapes are a backslash and one distinct letter, so the encoding stays injective:
# after escaping, SEP, ROW and NULL occur only as structure.
_ESCAPE = str.maketrans({"\\": "\\\\", SEP: "\\u", ROW: "\\r", NULL: "\\z"})
_FIELDS_PER_ROW = 9  # prev_hash and the eight event fields
_PURPOSE = itemgetter(5)
_REASON = itemgetter(7)
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
    #: The seq the signed head kept outside the database names (``None``: none is kept).
    kept_head_seq: int | None = None
    #: How many kept copies of the signed head (data dir, second place) were compared.
    kept_heads_checked: int = 0
    #: Warnings that do not break the chain (a configured copy is missing, say).
    notes: tuple[str, ...] = ()
    #: Events up to this seq were not hashed again: an earlier verify, whose signed
    #: record the log still matches, found them intact (0: the whole log was hashed).
    start_seq: int = 0


def format_at(at: datetime) -> str:
    """``at`` as ISO-8601 UTC with microseconds and "Z": ``2026-01-02T03:04:05.000000Z``."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware UTC time")
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_at(at: datetime) -> str:
    """``at`` as hashed: UTC ``YYYY-MM-DD HH:MM:SS`` plus ``.ffffff`` without trailing zeros.

    This is how PostgreSQL prints a timestamp (DateStyle ISO), so the database
    can render it for the verifier.
    """
    if at.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware UTC time")
    u = at.astimezone(UTC)
    text = f"{u.year:04d}-{u.month:02d}-{u.day:02d} {u.hour:02d}:{u.minute:02d}:{u.second:02d}"
    # An equivalent mutant (rstrip of other characters too) cannot change digits: no mutate.
    return f"{text}.{u.microsecond:06d}".rstrip("0") if u.microsecond else text  # pragma: no mutate


def _fields(event: Event) -> tuple[int, str, str, str, str, str | None, str, str | None]:
    return (
        event.seq,
        canonical_at(event.at),
        str(event.actor),
        str(event.action),
        str(event.object),
        None if event.purpose is None else str(event.purpose),
        str(event.outcome),
        None if event.reason is None else str(event.reason),
    )


def _encode(value: object) -> str:
    return NULL if value is None else str(value).translate(_ESCAPE)


def canonical(event: Event) -> bytes:
    """The bytes hashed for ``event``: its eight fields, UTF-8, joined by ``SEP``.

    Field order is fixed (seq, at, actor, action, object, purpose, outcome, reason);
    ``at`` is :func:`canonical_at`; an absent value is ``NULL``; in a value, ``\\``,
    ``SEP``, ``ROW`` and ``NULL`` are escaped as ``\\\\``, ``\\u``, ``\\r``, ``\\z``.
    """
    return SEP.join(map(_encode, _fields(event))).encode()


def link(prev_hash: str, event: Event) -> str:
    """The hash of ``event`` chained to ``prev_hash``: hex SHA-256(prev hex || SEP || canonical)."""
    return _sha256((prev_hash + SEP).encode() + canonical(event)).hexdigest()


def flat_row(event: Event, prev_hash: str, hash_: str) -> FlatRow:
    """``event`` and its stored hashes in the :data:`FlatRow` shape :func:`verify_rows` reads."""
    return (*_fields(event), prev_hash, hash_)


def _hashed(row: FlatRow) -> bytes:
    """The exact bytes whose hash ``row`` must store (any field types)."""
    return SEP.join(map(_encode, (row[8], *row[:8]))).encode()


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
    """:func:`_hashed` of every row, without per-field escaping when no field needs it."""
    texts = [
        f"{r[8]}{SEP}{r[0]}{SEP}{r[1]}{SEP}{r[2]}{SEP}{r[3]}{SEP}{r[4]}{SEP}"
        f"{NULL if r[5] is None else r[5]}{SEP}{r[6]}{SEP}{NULL if r[7] is None else r[7]}"
        for r in rows
    ]
    joined = ROW.join(texts)
    nulls = list(map(_PURPOSE, rows)).count(None) + list(map(_REASON, rows)).count(None)
    if not _plain(joined, len(rows), nulls):
        return list(map(_hashed, rows))
    return joined.encode().split(ROW.encode())


def _plain(joined: str | bytes, n: int, nulls: int) -> bool:
    """Whether ``n`` rows joined by ROW, fields by SEP, need no escaping (so are canonical)."""
    if isinstance(joined, bytes):
        sep, row, null, esc = b"\x1f", b"\x1e", b"\x1a", b"\\"
        return (
            joined.count(row) == n - 1
            and joined.count(sep) == (_FIELDS_PER_ROW - 1) * n
            and joined.count(null) == nulls
            and esc not in joined
        )
    return (
        joined.count(ROW) == n - 1
        and joined.count(SEP) == (_FIELDS_PER_ROW - 1) * n
        and joined.count(NULL) == nulls
        and "\\" not in joined
    )


class Verifier:
    """Incremental :func:`verify_rows`: ``feed`` batches in seq order, then ``finish``.

    Walks batches of rows, carrying the expected seq and previous hash between them.
    With ``start`` (a signed head an earlier verify found intact, whose hash the caller
    has checked is still the stored one) the walk begins after it: only later events
    and checkpoints are checked."""

    def __init__(
        self,
        checkpoints: Iterable[Checkpoint],
        public_keys: Collection[str] | None,
        start: Checkpoint | None = None,
    ):
        self.public_keys = None if public_keys is None else frozenset(public_keys)
        self.next_cp = 0
        self.start_seq = 0 if start is None else start.seq
        # From a start, the checkpoints up to it were checked by the verify that made it;
        # without one every checkpoint counts (one naming no event is refused).
        kept = checkpoints if start is None else (c for c in checkpoints if c.seq > start.seq)
        self.pending = sorted(kept, key=lambda c: c.seq)
        self.last_good_cp = self.start_seq
        self.expect = self.start_seq + 1
        self.prev = GENESIS if start is None else start.hash
        if start is not None:
            self._check_signature(start)

    def feed(self, rows: list[FlatRow]) -> None:
        """Verify the next rows (any content); raise ``AuditChainBroken`` at the first bad one."""
        first = self.expect
        n = len(rows)
        hashes = list(map(_HASH, rows))
        ok = list(map(_SEQ, rows)) == list(range(first, first + n))
        if ok:
            prevs = list(map(_PREV, rows))
            ok = prevs[0] == self.prev and prevs[1:] == hashes[:-1]
        if ok:
            sha = _sha256
            ok = [sha(data).hexdigest() for data in _encode_batch(rows)] == hashes
        if not ok:
            broken = self._walk(rows)  # the exact first failure, in order
            self._checkpoints(hashes.__getitem__, first, broken.seq)
            raise broken
        self._checkpoints(hashes.__getitem__, first, first + n)
        self.expect = first + n
        self.prev = hashes[-1]

    def feed_joined(
        self, first: int, last: int, *, count: int, nulls: int, hashes: str, joined: bytes
    ) -> bool:
        """Verify events ``first``..``last`` given as one string each, as a database builds them.

        ``joined`` is every event's prev_hash and eight fields joined by ``SEP`` with ``None``
        as ``NULL`` and *no* escaping, events joined by ``ROW`` in seq order; ``hashes`` their
        stored hashes concatenated (the caller checks that each has 64 characters);
        ``count`` the number of rows and ``nulls`` the number of absent purposes and reasons.
        Returns ``False``, having accepted nothing, when the batch is not plainly intact
        (a gap, a field that needs escaping, a broken link…): the caller then feeds the
        same events as rows to :meth:`feed`, which names the first broken one.
        Checkpoint failures raise as in :meth:`feed`.
        """
        n = last - first + 1
        # A ``hashes`` of any other length than 64 × n fails both compares below.
        if first != self.expect or count != n or n < 1:
            return False
        if not _plain(joined, n, nulls):
            return False
        parts = joined.split(b"\x1e")
        if b"".join([p[:64] for p in parts]) != (self.prev + hashes[:-64]).encode():
            return False
        sha = _sha256
        if "".join([sha(p).hexdigest() for p in parts]) != hashes:
            return False
        self._checkpoints(lambda i: hashes[64 * i : 64 * i + 64], first, first + n)
        self.expect = first + n
        self.prev = hashes[-64:]
        return True

    def _walk(self, rows: list[FlatRow]) -> AuditChainBroken:
        expect, prev = self.expect, self.prev
        for row in rows:
            seq = row[0]
            if isinstance(seq, int) and seq > expect:
                jump = (
                    f"the log starts at event {seq}"
                    if expect == 1
                    else (f"the sequence jumps from {expect - 1} to {seq}")
                )
                return AuditChainBroken(expect, f"event {expect} is missing ({jump})")
            if seq != expect:
                return AuditChainBroken(
                    expect,
                    f"event {seq} appears where event {expect} should be "
                    "(events are duplicated or out of order)",
                )
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
            if _sha256(_hashed(row)).hexdigest() != row[9]:
                return AuditChainBroken(
                    seq,
                    f"event {seq} was changed after it was written "
                    "(its hash does not match its contents)",
                )
            expect, prev = expect + 1, row[9]
        raise AssertionError("a batch failed the fast check but every event verifies")

    def _checkpoints(self, hash_at: Callable[[int], str], first: int, stop: int) -> None:
        """Check the pending checkpoints for verified events ``first`` ≤ seq < ``stop``.

        ``hash_at(i)`` is the stored hash of event ``first + i``."""
        while self.next_cp < len(self.pending) and self.pending[self.next_cp].seq < stop:
            cp = self.pending[self.next_cp]
            if cp.seq < first:
                raise AuditChainBroken(cp.seq, f"checkpoint {cp.seq} names no event of the log")
            self._check_signature(cp)
            if hash_at(cp.seq - first) != cp.hash:
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
            count=head - self.start_seq,
            head_seq=head,
            head_hash=self.prev,
            checkpoints_checked=self.next_cp,
            start_seq=self.start_seq,
        )


def signature_ok(cp: Checkpoint) -> bool:
    """Whether ``cp`` was signed by the key it names (say nothing yet about whose key it is)."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(cp.public_key_hex))
        key.verify(bytes.fromhex(cp.signature_hex), checkpoint_message(cp.seq, cp.hash, cp.at))
    except (InvalidSignature, ValueError):
        return False
    return True


def checkpoint_json(cp: Checkpoint) -> dict[str, object]:
    """A signed head an outside party keeps, to prove later that nothing before it changed."""
    return {
        "seq": cp.seq,
        "hash": cp.hash,
        "at": format_at(cp.at),
        "public_key": cp.public_key_hex,
        "signature": cp.signature_hex,
    }


def checkpoint_from_json(data: dict[str, object]) -> Checkpoint:
    """The inverse of :func:`checkpoint_json`; a malformed document raises ``ValueError``."""
    at = datetime.fromisoformat(str(data["at"]))  # Python 3.11 reads the trailing "Z"
    seq = data["seq"]
    if not isinstance(seq, int):
        raise ValueError("seq must be a number")
    return Checkpoint(seq, str(data["hash"]), at, str(data["public_key"]), str(data["signature"]))
