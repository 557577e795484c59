"""The audit log in the database: append inside the caller's transaction, verify by streaming.

    >>> with session_factory(engine).begin() as session:           # doctest: +SKIP
    ...     record(session, clock=clock, actor=actor.audit_name, action=Action.PHOTO_VIEW,
    ...            object=f"photo:{photo.id}", outcome=Outcome.ALLOWED, purpose="care")
    ...     maybe_checkpoint(session, clock=clock, signing_key=keys.signing_key(), every=1000)
    >>> with engine.connect() as conn:                              # doctest: +SKIP
    ...     verify_log(conn, {public_key_hex(keys.signing_key())})
    ChainReport(count=..., head_seq=..., head_hash='…', checkpoints_checked=...)

Nothing here commits: the service owns the transaction, so the audit row commits
(or rolls back) with the change it records.

Two writers never fork the chain: on SQLite every transaction is ``BEGIN
IMMEDIATE`` (see :mod:`skinvault.db.engine`), on PostgreSQL :func:`record` first
takes a transaction-scoped advisory lock, then reads the head. Under READ
COMMITTED (PostgreSQL's default) the head read after the lock sees every
committed append. The lock is held until the caller commits, so record late in
a transaction. Were the lock ever bypassed, the primary key on ``seq`` turns a
fork into an IntegrityError rather than two events with the same number.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Connection, TextClause, func, insert, select, text
from sqlalchemy.orm import Session

from skinvault.audit.actions import Action, Outcome
from skinvault.audit.chain import (
    GENESIS,
    ChainReport,
    Checkpoint,
    Event,
    Verifier,
    canonical_at,
    link,
    public_key_hex,
    sign_checkpoint,
)
from skinvault.db.models import AuditCheckpoint, AuditEvent
from skinvault.errors import AuditChainBroken
from skinvault.ports import Clock

__all__ = [
    "checkpoint",
    "hash_at",
    "head",
    "maybe_checkpoint",
    "public_key_hex",
    "record",
    "tail",
    "verify_log",
]

#: pg_advisory_xact_lock key of the audit appender ("skinvaul" in ASCII, as a signed int64).
ADVISORY_LOCK_KEY = 0x736B696E7661756C
_VERIFY_BATCH = 50_000


# Every event of a batch as one string: prev_hash and the eight fields joined by \x1f
# (absent values as \x1a), events joined by \x1e — chain.Verifier.feed_joined checks
# that no field needed escaping, so this *is* what was hashed, and Python only hashes.
def _fields_sql(at: str, null: str, ifnull: str) -> list[str]:
    return [
        "prev_hash",
        "seq",
        at,
        "actor",
        "action",
        "object",
        f"{ifnull}(purpose, {null})",
        "outcome",
        f"{ifnull}(reason, {null})",
    ]


_JOINED_SQL = {
    # seq is SQLite's rowid here, so the range scan (and group_concat) runs in seq order.
    "sqlite": (
        "SELECT count(*), min(seq), max(seq), 2 * count(*) - count(purpose) - count(reason),"
        " min(length(hash)),"
        " group_concat(hash, ''), group_concat({fields}, '\x1e')"
        " FROM audit_events WHERE seq BETWEEN :lo AND :hi"
    ),
    "postgresql": (
        "SELECT count(*), min(seq), max(seq), 2 * count(*) - count(purpose) - count(reason),"
        " min(length(hash)),"
        " string_agg(hash, '' ORDER BY seq), string_agg({fields}, E'\\x1e' ORDER BY seq)"
        " FROM audit_events WHERE seq BETWEEN :lo AND :hi"
    ),
}

# How each backend renders the stored UTC time as chain.canonical_at() does.
_AT_SQLITE = "rtrim(rtrim(at, '0'), '.')"  # SQLAlchemy stores "YYYY-MM-DD HH:MM:SS.ffffff"
# UTCDateTime stores UTC in a PostgreSQL "timestamp without time zone" column.
_AT_PG_ISO = "at::text"  # DateStyle ISO prints canonical_at's form
_AT_PG = "rtrim(rtrim(to_char(at, 'YYYY-MM-DD HH24\\:MI\\:SS.US'), '0'), '.')"


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})


def _head(session: Session | Connection) -> tuple[int, str]:
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return (0, GENESIS) if row is None else (row[0], row[1])


def head(session: Session | Connection) -> tuple[int, str]:
    """(seq, hash) of the newest event; ``(0, GENESIS)`` for an empty log."""
    return _head(session)


def hash_at(session: Session | Connection, seq: int) -> str | None:
    """The stored hash of event ``seq``, or ``None`` when there is no such event."""
    return session.execute(select(AuditEvent.hash).where(AuditEvent.seq == seq)).scalar()


def record(
    session: Session,
    *,
    clock: Clock,
    actor: str,
    action: Action,
    object: str,
    outcome: Outcome,
    purpose: str | None = None,
    reason: str | None = None,
) -> Event:
    """Append one event to the chain inside ``session``'s transaction and return it."""
    _lock(session)
    head_seq, head_hash = _head(session)
    event = Event(
        seq=head_seq + 1,
        at=clock.now(),
        actor=actor,
        action=Action(action).value,
        object=object,
        purpose=purpose,
        outcome=Outcome(outcome).value,
        reason=reason,
    )
    session.execute(
        insert(AuditEvent).values(
            seq=event.seq,
            at=event.at,
            actor=event.actor,
            action=event.action,
            object=event.object,
            purpose=event.purpose,
            outcome=event.outcome,
            reason=event.reason,
            prev_hash=head_hash,
            hash=link(head_hash, event),
        )
    )
    return event


def checkpoint(session: Session, *, clock: Clock, signing_key: bytes) -> Checkpoint:
    """Sign the current head and store the checkpoint (returns the stored one if it exists).

    Raises ``ValueError`` on an empty log: there is nothing to vouch for yet.
    """
    _lock(session)
    head_seq, head_hash = _head(session)
    if head_seq == 0:
        raise ValueError("the audit log is empty: there is no event to checkpoint")
    existing = session.get(AuditCheckpoint, head_seq)
    if existing is not None:
        return _checkpoint_of(existing)
    signed = sign_checkpoint(head_seq, head_hash, clock.now(), signing_key)
    session.execute(
        insert(AuditCheckpoint).values(
            seq=signed.seq,
            hash=signed.hash,
            at=signed.at,
            public_key=signed.public_key_hex,
            signature=signed.signature_hex,
        )
    )
    return signed


def maybe_checkpoint(
    session: Session, *, clock: Clock, signing_key: bytes, every: int
) -> Checkpoint | None:
    """:func:`checkpoint` when ``every`` events or more came after the last checkpoint."""
    if every < 1:
        raise ValueError("every must be at least 1")
    last = session.execute(select(func.max(AuditCheckpoint.seq))).scalar_one_or_none() or 0
    head_seq, _ = _head(session)
    if head_seq - last < every:
        return None
    return checkpoint(session, clock=clock, signing_key=signing_key)


def _checkpoint_of(row: AuditCheckpoint) -> Checkpoint:
    return Checkpoint(row.seq, row.hash, row.at, row.public_key, row.signature)


def tail(session: Session, n: int, *, containing: str | None = None) -> list[Event]:
    """The last ``n`` events, oldest first; only those whose actor, action or object
    contains ``containing`` when it is given (the audit search of the admin page)."""
    query = select(
        AuditEvent.seq,
        AuditEvent.at,
        AuditEvent.actor,
        AuditEvent.action,
        AuditEvent.object,
        AuditEvent.purpose,
        AuditEvent.outcome,
        AuditEvent.reason,
    )
    if containing:
        needle = f"%{containing}%"
        query = query.where(
            AuditEvent.actor.ilike(needle)
            | AuditEvent.action.ilike(needle)
            | AuditEvent.object.ilike(needle)
        )
    rows = session.execute(query.order_by(AuditEvent.seq.desc()).limit(n)).all()
    return [Event(*row) for row in reversed(rows)]


def _verify_queries(conn: Connection) -> tuple[TextClause | None, TextClause | None]:
    """(one-string-per-batch query, rows query) for ``conn``'s backend, or ``None``s."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        at = _AT_SQLITE
        fields = " || '\x1f' || ".join(_fields_sql(at, "'\x1a'", "ifnull"))
    elif dialect == "postgresql":
        datestyle = conn.exec_driver_sql("SHOW DateStyle").scalar()
        at = _AT_PG_ISO if str(datestyle).upper().startswith("ISO") else _AT_PG
        listed = ", ".join(_fields_sql(at, "E'\\x1a'", "coalesce"))
        fields = f"concat_ws(E'\\x1f', {listed})"
    else:
        return None, None
    # Built only from the constants above, never from input.
    rows = text(
        f"SELECT seq, {at}, actor, action, object, purpose, outcome, reason, prev_hash, hash"  # noqa: S608
        " FROM audit_events WHERE seq > :after ORDER BY seq LIMIT :n"
    )
    return text(_JOINED_SQL[dialect].format(fields=fields)), rows


def verify_log(
    session_or_connection: Session | Connection,
    public_keys: Collection[str] | None = None,
    *,
    start: Checkpoint | None = None,
) -> ChainReport:
    """Verify every event and checkpoint; raise ``AuditChainBroken`` at the first broken link.

    With ``start`` — the signed record of an earlier verify (the head it found intact) —
    only the events after it are hashed, so the cost grows with new events only; the log
    must still hold that head with the same hash (else it was cut or rewritten before
    it). Events before ``start`` are not read again: a change to one that left every
    stored hash as it was is found only by a verify without ``start``.

    Events are read in seq order in batches, so memory stays flat however long
    the log is. On SQLite and PostgreSQL the database joins each batch into one
    string (see :meth:`Verifier.feed_joined`); a batch that is not plainly intact
    is read again row by row, which names the first broken event.
    ``public_keys`` are the trusted checkpoint keys (hex); ``None`` accepts any
    key whose signature verifies.
    """
    db = session_or_connection
    conn: Connection = db.connection() if isinstance(db, Session) else db
    checkpoints = [
        Checkpoint(seq, hash_, at, key, sig)
        for seq, hash_, at, key, sig in conn.execute(
            select(
                AuditCheckpoint.seq,
                AuditCheckpoint.hash,
                AuditCheckpoint.at,
                AuditCheckpoint.public_key,
                AuditCheckpoint.signature,
            ).order_by(AuditCheckpoint.seq)
        )
    ]
    after = 0
    if start is not None:
        _still_holds(conn, start)
        after = start.seq
    verifier = Verifier(checkpoints, public_keys, start)
    joined_query, rows_query = _verify_queries(conn)
    # The database builds the next batch (no interpreter lock held) while a second
    # thread hashes this one: the two costs overlap instead of adding up.
    ahead: tuple[int, Any] | None = None  # (lo, result) of a batch read ahead
    # One batch is hashed while the next is read: any pool size and name do the same here.
    with ThreadPoolExecutor(1, "sv-audit-verify") as hasher:  # pragma: no mutate
        while True:
            if joined_query is not None:
                lo = after + 1
                if ahead is not None and ahead[0] == lo:
                    row = ahead[1]
                else:
                    row = conn.execute(joined_query, {"lo": lo, "hi": after + _VERIFY_BATCH}).one()
                ahead = None
                count, first, last, nulls, shortest, hashes, joined = row
                if count == 0:
                    more = conn.execute(
                        select(func.min(AuditEvent.seq)).where(AuditEvent.seq > after)
                    ).scalar()
                    if more is None:
                        break  # the end of the log
                elif shortest == 64:  # every hash has 64 characters
                    hashed = hasher.submit(
                        verifier.feed_joined, first, last, count=count, nulls=nulls,
                        hashes=hashes, joined=joined.encode(),
                    )  # fmt: skip
                    nxt = last + 1
                    ahead = (nxt, conn.execute(
                        joined_query, {"lo": nxt, "hi": last + _VERIFY_BATCH}
                    ).one())  # fmt: skip
                    if hashed.result():
                        after = last
                        continue
                    ahead = None
            # Exact path: rows as they are (a gap, a field needing escapes, a broken link).
            batch = _rows(conn, rows_query, after)
            if not batch:
                break
            verifier.feed(batch)
            after = batch[-1][0]
    return verifier.finish()


def _still_holds(conn: Connection, start: Checkpoint) -> None:
    when = f"{start.at:%Y-%m-%d %H:%M} UTC"
    stored = hash_at(conn, start.seq)
    if stored is None:
        raise AuditChainBroken(
            start.seq,
            f"the log no longer holds event {start.seq}, which the verify of {when} found"
            " intact: events were removed",
        )
    if stored != start.hash:
        raise AuditChainBroken(
            start.seq,
            f"event {start.seq} is not the one the verify of {when} found intact: the log"
            f" was rewritten up to event {start.seq}",
        )


def _rows(conn: Connection, query: TextClause | None, after: int) -> list[Any]:
    if query is not None:
        return [tuple(r) for r in conn.execute(query, {"after": after, "n": _VERIFY_BATCH})]
    rows = conn.execute(
        select(
            AuditEvent.seq,
            AuditEvent.at,
            AuditEvent.actor,
            AuditEvent.action,
            AuditEvent.object,
            AuditEvent.purpose,
            AuditEvent.outcome,
            AuditEvent.reason,
            AuditEvent.prev_hash,
            AuditEvent.hash,
        )
        .where(AuditEvent.seq > after)
        .order_by(AuditEvent.seq)
        .limit(_VERIFY_BATCH)
    )
    return [(r[0], canonical_at(r[1]), *r[2:]) for r in rows]
