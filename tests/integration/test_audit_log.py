"""The audit log on real SQLite and PostgreSQL: appends, tampering in SQL, concurrent writers."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from skinvault.audit import (
    Action,
    Outcome,
    maybe_checkpoint,
    public_key_hex,
    record,
    tail,
    verify_log,
)
from skinvault.audit.chain import Verifier
from skinvault.db.engine import make_engine, session_factory
from skinvault.errors import AuditChainBroken

KEY = bytes(range(32))


class StepClock:
    """A clock that moves one second (and one microsecond) per reading."""

    def __init__(self) -> None:
        self.t = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        self.t += timedelta(seconds=1, microseconds=1)
        return self.t


def append(engine: Engine, n: int, clock: StepClock | None = None, actor: str = "user:a") -> None:
    clock = clock or StepClock()
    for i in range(n):
        with session_factory(engine).begin() as session:
            record(
                session,
                clock=clock,
                actor=actor,
                action=Action.PHOTO_VIEW,
                object=f"photo:{i:04d}",
                outcome=Outcome.DENIED if i % 3 == 0 else Outcome.ALLOWED,
                purpose="care" if i % 2 else None,
                reason='no consent — für Forschung "quoted"\n' if i % 3 == 0 else None,
            )


def broken_seq(engine: Engine) -> int:
    with engine.connect() as conn, pytest.raises(AuditChainBroken) as info:
        verify_log(conn)
    return info.value.seq


def execute(engine: Engine, sql: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql))


def test_recorded_events_verify_and_read_back(engine: Engine) -> None:
    append(engine, 25)
    with engine.connect() as conn:
        report = verify_log(conn)
    assert (report.count, report.head_seq) == (25, 25)
    with session_factory(engine)() as session:
        last = tail(session, 3)
        assert verify_log(session).head_hash == report.head_hash
    assert [e.seq for e in last] == [23, 24, 25]
    assert last[-1].at.tzinfo is not None
    assert last[0].reason is None and last[2].reason is not None


def test_an_empty_log_verifies(engine: Engine) -> None:
    with engine.connect() as conn:
        assert verify_log(conn).count == 0


@pytest.mark.parametrize(
    ("sql", "seq"),
    [
        ("UPDATE audit_events SET actor = 'user:intruder' WHERE seq = 7", 7),
        ("UPDATE audit_events SET outcome = 'allowed' WHERE seq = 4", 4),
        ("UPDATE audit_events SET reason = NULL WHERE seq = 10", 10),
        ("UPDATE audit_events SET purpose = 'research' WHERE seq = 1", 1),
        ("UPDATE audit_events SET at = at - INTERVAL '1 day' WHERE seq = 9", 9),
        ("DELETE FROM audit_events WHERE seq = 6", 6),
        ("DELETE FROM audit_events WHERE seq = 1", 1),
        ("UPDATE audit_events SET prev_hash = hash WHERE seq = 12", 12),
    ],
    ids=["actor", "outcome", "reason", "purpose", "at", "delete", "delete-first", "prev"],
)
def test_tampering_in_sql_is_caught_at_the_tampered_event(
    engine: Engine, sql: str, seq: int
) -> None:
    append(engine, 15)
    if "INTERVAL" in sql and engine.dialect.name == "sqlite":
        sql = "UPDATE audit_events SET at = datetime(at, '-1 day') || '.000000' WHERE seq = 9"
    execute(engine, sql)
    assert broken_seq(engine) == seq


def test_an_inserted_event_with_a_correct_own_hash_is_caught(engine: Engine) -> None:
    append(engine, 10)
    # Make room after event 5 and insert a copy of event 5's links as event 6.
    execute(engine, "UPDATE audit_events SET seq = seq + 100 WHERE seq > 5")
    execute(engine, "UPDATE audit_events SET seq = seq - 99 WHERE seq > 100")
    execute(
        engine,
        "INSERT INTO audit_events (seq, at, actor, action, object, purpose, outcome, reason,"
        " prev_hash, hash) SELECT 6, at, 'user:intruder', action, object, purpose, outcome,"
        " reason, prev_hash, hash FROM audit_events WHERE seq = 7",
    )
    assert broken_seq(engine) == 6


def test_swapping_the_seq_of_two_rows_is_caught(engine: Engine) -> None:
    append(engine, 12)
    execute(engine, "UPDATE audit_events SET seq = -1 WHERE seq = 4")
    execute(engine, "UPDATE audit_events SET seq = 4 WHERE seq = 9")
    execute(engine, "UPDATE audit_events SET seq = 9 WHERE seq = -1")
    assert broken_seq(engine) == 4


def test_a_rolled_back_transaction_leaves_no_event(engine: Engine) -> None:
    append(engine, 3)
    with session_factory(engine)() as session:
        session.begin()
        record(
            session,
            clock=StepClock(),
            actor="user:a",
            action=Action.PHOTO_DELETE,
            object="photo:x",
            outcome=Outcome.DONE,
        )
        session.rollback()
    append(engine, 1)
    with engine.connect() as conn:
        assert verify_log(conn).count == 4


def test_checkpoints_every_n_events_and_a_truncated_tail_is_caught(engine: Engine) -> None:
    clock = StepClock()
    signed = []
    for _ in range(23):
        append(engine, 1, clock)
        with session_factory(engine).begin() as session:
            cp = maybe_checkpoint(session, clock=clock, signing_key=KEY, every=5)
            if cp:
                signed.append(cp.seq)
    assert signed == [5, 10, 15, 20]
    keys = {public_key_hex(KEY)}
    with engine.connect() as conn:
        assert verify_log(conn, keys).checkpoints_checked == 4
        with pytest.raises(AuditChainBroken, match="not trusted"):
            verify_log(conn, {public_key_hex(bytes(32))})
    execute(engine, "DELETE FROM audit_events WHERE seq > 17")
    with engine.connect() as conn, pytest.raises(AuditChainBroken, match="checkpoint 20"):
        verify_log(conn, keys)


def _writer(url: str, actor: str, n: int) -> None:
    engine = make_engine(url)
    try:
        append(engine, n, actor=actor)
    finally:
        engine.dispose()


def test_concurrent_writers_never_fork_the_chain(engine: Engine, database_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(database_url, f"user:w{i}", 50)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=180)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    with engine.connect() as conn:
        seqs = [row[0] for row in conn.execute(text("SELECT seq FROM audit_events ORDER BY seq"))]
        report = verify_log(conn)
    assert seqs == list(range(1, 201))
    assert report.count == 200


def test_an_intact_log_verifies_without_reading_rows(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    append(engine, 30)

    def refuse(self: object, rows: object) -> None:
        raise AssertionError("the one-string-per-batch path was not taken")

    monkeypatch.setattr(Verifier, "feed", refuse)
    with engine.connect() as conn:
        assert verify_log(conn).count == 30


EDIT_AT_5 = {
    "actor": "UPDATE audit_events SET actor = actor || 'x' WHERE seq = 5",
    "object": "UPDATE audit_events SET object = object || 'x' WHERE seq = 5",
    "reason": "UPDATE audit_events SET reason = reason || 'x' WHERE seq = 5",
}


@pytest.mark.parametrize("field", sorted(EDIT_AT_5))
def test_fields_holding_separators_and_backslashes_verify_and_edits_are_caught(
    engine: Engine, field: str
) -> None:
    odd = "a\\b\x1fc\x1ed\x1ae\\z\\u"
    append(engine, 4)
    with session_factory(engine).begin() as session:
        kwargs = {"actor": "user:a", "object": "photo:x", "reason": None} | {field: odd}
        record(
            session, clock=StepClock(), action=Action.PHOTO_VIEW, outcome=Outcome.ALLOWED, **kwargs
        )  # type: ignore[arg-type]
    append(engine, 4)
    with engine.connect() as conn:
        assert verify_log(conn).count == 9
    execute(engine, EDIT_AT_5[field])
    assert broken_seq(engine) == 5


def test_events_far_after_a_gap_are_caught(engine: Engine) -> None:
    append(engine, 12)
    execute(engine, "UPDATE audit_events SET seq = seq + 1000000 WHERE seq > 10")
    assert broken_seq(engine) == 11


def test_a_non_iso_datestyle_on_postgresql_still_verifies(engine: Engine) -> None:
    append(engine, 12)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET DateStyle = 'SQL, DMY'")
        assert verify_log(conn).count == 12
    execute(engine, "UPDATE audit_events SET outcome = 'allowed' WHERE seq = 4")
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET DateStyle = 'SQL, DMY'")
        with pytest.raises(AuditChainBroken) as info:
            verify_log(conn)
    assert info.value.seq == 4


def test_a_nul_appended_to_a_field_on_sqlite_is_caught(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL text cannot hold NUL")
    append(engine, 8)
    execute(engine, "UPDATE audit_events SET actor = actor || char(0) || 'x' WHERE seq = 6")
    assert broken_seq(engine) == 6


def test_a_character_moved_between_two_stored_hashes_is_caught(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("varchar(64) on PostgreSQL refuses a 65-character hash")
    append(engine, 6)
    execute(
        engine,
        "UPDATE audit_events SET hash ="
        " (SELECT substr(hash, 64, 1) FROM audit_events WHERE seq = 3) || hash WHERE seq = 4",
    )
    execute(engine, "UPDATE audit_events SET hash = substr(hash, 1, 63) WHERE seq = 3")
    assert broken_seq(engine) == 3


def test_a_kept_head_file_is_written_whole_and_never_replaced_by_an_older_head(
    tmp_path: object,
) -> None:
    import stat
    from pathlib import Path

    from skinvault.audit.chain import sign_checkpoint
    from skinvault.audit.head import InvalidHead, read_head, write_head

    folder = Path(str(tmp_path)) / "keys"
    path = folder / "audit-head.json"
    at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    newer, older = sign_checkpoint(5, "a" * 64, at, KEY), sign_checkpoint(3, "b" * 64, at, KEY)
    assert read_head(path).checkpoint is None  # nothing kept yet
    assert write_head(path, newer)
    assert not write_head(path, older)  # a late writer never moves the kept head back
    assert read_head(path).checkpoint == newer
    names = sorted(p.name for p in folder.iterdir())
    assert names == [".audit-head.json.lock", "audit-head.json"]  # no temp file left
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("{not json")
    with pytest.raises(InvalidHead, match="not a signed head"):
        read_head(path)
