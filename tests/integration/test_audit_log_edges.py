"""The audit log's database side, as an auditor reads it: what a row stores, the head and a
stored hash, when checkpoints are signed, the admin search, and verification across many
batches — on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from skinvault.audit import Action, Outcome, checkpoint, maybe_checkpoint, record, tail, verify_log
from skinvault.audit import log as audit_log
from skinvault.audit.chain import GENESIS, Verifier, canonical, public_key_hex, signature_ok
from skinvault.audit.log import hash_at, head
from skinvault.db.engine import session_factory
from skinvault.errors import AuditChainBroken

KEY = bytes(range(32))
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class StepClock:
    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        self.t += timedelta(seconds=1, microseconds=250)
        return self.t


def add(engine: Engine, clock: StepClock, **fields: object) -> None:
    values = {"actor": "user:a", "action": Action.PHOTO_VIEW, "object": "photo:1",
              "outcome": Outcome.ALLOWED} | fields  # fmt: skip
    with session_factory(engine).begin() as session:
        record(session, clock=clock, **values)  # type: ignore[arg-type]


def stored_rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT seq, actor, action, object, purpose, outcome, reason, prev_hash, hash"
            " FROM audit_events ORDER BY seq"))]  # fmt: skip


def test_a_recorded_event_is_stored_chained_to_the_one_before(engine: Engine) -> None:
    clock = StepClock()
    with session_factory(engine).begin() as session:
        first = record(session, clock=clock, actor="user:ann", action=Action.PHOTO_STORE,
                       object="photo:9", outcome=Outcome.ALLOWED, purpose="care")  # fmt: skip
        text_values: dict[str, object] = {"action": "photo:view", "outcome": "denied"}
        second = record(session, clock=clock, actor="user:bob", object="photo:9",
                        reason="no consent", **text_values)  # type: ignore[arg-type]  # fmt: skip
    assert (first.seq, second.seq) == (1, 2)
    assert first.at == T0 + timedelta(seconds=1, microseconds=250)
    assert (second.action, second.outcome) == ("photo:view", "denied")
    h1 = hashlib.sha256(b"0" * 64 + b"\x1f" + canonical(first)).hexdigest()
    h2 = hashlib.sha256(h1.encode() + b"\x1f" + canonical(second)).hexdigest()
    assert stored_rows(engine) == [
        (1, "user:ann", "photo:store", "photo:9", "care", "allowed", None, GENESIS, h1),
        (2, "user:bob", "photo:view", "photo:9", None, "denied", "no consent", h1, h2),
    ]
    with session_factory(engine)() as session:
        assert head(session) == (2, h2)
        assert (hash_at(session, 1), hash_at(session, 2), hash_at(session, 3)) == (h1, h2, None)
        assert tail(session, 5) == [first, second]


def test_an_unknown_action_or_outcome_is_refused_and_nothing_is_stored(engine: Engine) -> None:
    for bad in ({"action": "photo:steal"}, {"outcome": "maybe"}):
        with pytest.raises(ValueError):
            add(engine, StepClock(), **bad)
    assert stored_rows(engine) == []


def test_the_head_of_an_empty_log_is_the_genesis_value(engine: Engine) -> None:
    with engine.connect() as conn:
        assert head(conn) == (0, GENESIS)
        assert hash_at(conn, 1) is None


def test_an_empty_log_has_nothing_to_checkpoint(engine: Engine) -> None:
    with session_factory(engine).begin() as session, pytest.raises(ValueError, match="empty"):
        checkpoint(session, clock=StepClock(), signing_key=KEY)


def test_signing_the_same_head_twice_keeps_the_first_checkpoint(engine: Engine) -> None:
    clock = StepClock()
    add(engine, clock)
    with session_factory(engine).begin() as session:
        one = checkpoint(session, clock=clock, signing_key=KEY)
    with session_factory(engine).begin() as session:
        again = checkpoint(session, clock=clock, signing_key=KEY)
    assert again == one and signature_ok(again)
    assert (one.seq, one.public_key_hex) == (1, public_key_hex(KEY))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_checkpoints")).scalar() == 1
        assert verify_log(conn, {public_key_hex(KEY)}).checkpoints_checked == 1


def test_maybe_checkpoint_signs_exactly_when_every_events_came_after_the_last(
    engine: Engine,
) -> None:
    clock = StepClock()
    signed = []
    for _ in range(7):
        add(engine, clock)
        with session_factory(engine).begin() as session:
            cp = maybe_checkpoint(session, clock=clock, signing_key=KEY, every=3)
            signed.append(cp.seq if cp else None)
    assert signed == [None, None, 3, None, None, 6, None]
    with session_factory(engine).begin() as session:
        every_one = maybe_checkpoint(session, clock=clock, signing_key=KEY, every=1)
    assert every_one is not None and every_one.seq == 7
    with session_factory(engine).begin() as session:
        assert maybe_checkpoint(session, clock=clock, signing_key=KEY, every=1) is None
        with pytest.raises(ValueError, match="every must be at least 1"):
            maybe_checkpoint(session, clock=clock, signing_key=KEY, every=0)


def test_the_audit_search_matches_actor_action_or_object_only(engine: Engine) -> None:
    clock = StepClock()
    add(engine, clock, actor="user:Ann Smith", object="photo:1")
    add(engine, clock, actor="user:bob", action=Action.PHOTO_DELETE, object="photo:2")
    add(engine, clock, actor="user:carl", object="photo:ANNEX")
    add(engine, clock, actor="user:dora", object="photo:4", purpose="annual", reason="ann")
    with session_factory(engine)() as session:
        assert [e.seq for e in tail(session, 10, containing="ann")] == [1, 3]
        assert [e.seq for e in tail(session, 10, containing="delete")] == [2]
        assert [e.seq for e in tail(session, 1, containing="ann")] == [3]
        assert [e.seq for e in tail(session, 2)] == [3, 4]
        assert [e.seq for e in tail(session, 10, containing="")] == [1, 2, 3, 4]


def test_verification_walks_every_batch_and_names_a_break_in_a_later_one(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_log, "_VERIFY_BATCH", 4)  # 11 events: three batches
    clock = StepClock()
    for i in range(11):
        add(engine, clock, purpose=None if i % 2 else "care", reason="r" if i % 3 else None)
    with session_factory(engine).begin() as session:
        checkpoint(session, clock=clock, signing_key=KEY)
    with engine.connect() as conn:
        report = verify_log(conn, {public_key_hex(KEY)})
    assert (report.count, report.head_seq, report.checkpoints_checked) == (11, 11, 1)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET object = 'photo:2' WHERE seq = 10"))
    with engine.connect() as conn, pytest.raises(AuditChainBroken) as info:
        verify_log(conn)
    assert info.value.seq == 10


def test_a_gap_longer_than_a_batch_is_named(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_log, "_VERIFY_BATCH", 3)
    clock = StepClock()
    for _ in range(12):
        add(engine, clock)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq BETWEEN 4 AND 10"))
    with engine.connect() as conn, pytest.raises(AuditChainBroken, match="from 3 to 11") as info:
        verify_log(conn)
    assert info.value.seq == 4


def test_a_stored_hash_of_the_wrong_length_is_read_row_by_row_and_named(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("varchar(64) on PostgreSQL refuses a longer hash")
    clock = StepClock()
    for _ in range(5):
        add(engine, clock)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET hash = hash || 'a' WHERE seq = 3"))
    with engine.connect() as conn, pytest.raises(AuditChainBroken) as info:
        verify_log(conn)
    assert info.value.seq == 3


def test_verify_log_takes_a_session_too(engine: Engine) -> None:
    clock = StepClock()
    for _ in range(3):
        add(engine, clock)
    with session_factory(engine)() as session:
        assert verify_log(session).count == 3


class WholeSeconds(StepClock):
    """A clock that moves exactly one second per reading (no microseconds)."""

    def now(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


def test_events_at_whole_seconds_verify_on_the_fast_path(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database renders a time without microseconds with no trailing "." (as
    # canonical_at does), or every event recorded at a whole second would look tampered.
    clock = WholeSeconds()
    for _ in range(4):
        add(engine, clock)

    def refuse(self: object, rows: object) -> None:
        raise AssertionError("the one-string-per-batch path was not taken")

    with engine.connect() as conn:
        assert verify_log(conn).count == 4
    monkeypatch.setattr(Verifier, "feed", refuse)
    with engine.connect() as conn:
        assert verify_log(conn).count == 4
