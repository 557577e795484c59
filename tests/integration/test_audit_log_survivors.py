"""The audit log where mutation testing found the tests silent (issue 17): what the admin is
told when there is nothing to sign, and verification on a backend without the
one-string-per-batch SQL (the plain-rows path), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from skinvault.audit import Action, Outcome, checkpoint, maybe_checkpoint, record, verify_log
from skinvault.audit import log as audit_log
from skinvault.audit.chain import FlatRow, Verifier, public_key_hex
from skinvault.db.engine import session_factory
from skinvault.errors import AuditChainBroken

KEY = bytes(range(32))


class StepClock:
    """Alternates whole seconds and seconds with microseconds (both render differently)."""

    def __init__(self) -> None:
        self.t = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        self.n = 0

    def now(self) -> datetime:
        self.n += 1
        self.t = self.t.replace(microsecond=0) + timedelta(seconds=1)
        if self.n % 2:
            self.t += timedelta(microseconds=1500)
        return self.t


def add(engine: Engine, clock: StepClock, n: int) -> None:
    for i in range(n):
        with session_factory(engine).begin() as session:
            record(session, clock=clock, actor=f"user:{i}", action=Action.PHOTO_VIEW,
                   object=f"photo:{i}", outcome=Outcome.DENIED if i % 3 else Outcome.ALLOWED,
                   purpose="care" if i % 2 else None, reason="r" if i % 3 else None)  # fmt: skip


def test_signing_an_empty_log_tells_the_admin_why(engine: Engine) -> None:
    # admin_cli's sign-head prints this text as it is.
    with session_factory(engine).begin() as session, pytest.raises(ValueError) as info:
        checkpoint(session, clock=StepClock(), signing_key=KEY)
    assert str(info.value) == "the audit log is empty: there is no event to checkpoint"
    with session_factory(engine).begin() as session, pytest.raises(ValueError) as info:
        maybe_checkpoint(session, clock=StepClock(), signing_key=KEY, every=0)
    assert str(info.value) == "every must be at least 1"


@pytest.fixture
def rows_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify as on a backend other than SQLite and PostgreSQL: no SQL joins, rows only."""
    monkeypatch.setattr(audit_log, "_verify_queries", lambda conn: (None, None))
    monkeypatch.setattr(audit_log, "_VERIFY_BATCH", 4)


@pytest.mark.usefixtures("rows_only")
def test_without_the_sql_joins_an_intact_log_verifies_across_batches(engine: Engine) -> None:
    clock = StepClock()
    add(engine, clock, 10)
    with session_factory(engine).begin() as session:
        signed = checkpoint(session, clock=clock, signing_key=KEY)
    with engine.connect() as conn:
        report = verify_log(conn, {public_key_hex(KEY)})
        (last_hash,) = conn.execute(text("SELECT hash FROM audit_events WHERE seq = 10")).one()
    assert (report.count, report.head_seq, report.checkpoints_checked) == (10, 10, 1)
    assert report.head_hash == last_hash == signed.hash


@pytest.mark.usefixtures("rows_only")
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_events SET actor = 'user:x' WHERE seq = 7",
        "UPDATE audit_events SET reason = 'x' WHERE seq = 7",
        "DELETE FROM audit_events WHERE seq = 7",
    ],
    ids=["actor", "reason", "deleted"],
)
def test_without_the_sql_joins_verify_names_the_tampered_event(engine: Engine, sql: str) -> None:
    add(engine, StepClock(), 10)
    with engine.begin() as conn:
        conn.execute(text(sql))
    with engine.connect() as conn, pytest.raises(AuditChainBroken) as info:
        verify_log(conn)
    assert info.value.seq == 7


@pytest.mark.usefixtures("rows_only")
def test_without_the_sql_joins_a_cut_tail_is_found_by_its_checkpoint(engine: Engine) -> None:
    clock = StepClock()
    add(engine, clock, 9)
    with session_factory(engine).begin() as session:
        checkpoint(session, clock=clock, signing_key=KEY)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq > 6"))
    with engine.connect() as conn, pytest.raises(AuditChainBroken, match="checkpoint 9") as info:
        verify_log(conn, {public_key_hex(KEY)})
    assert info.value.seq == 7


@pytest.mark.usefixtures("rows_only")
def test_without_the_sql_joins_verify_reads_in_batches(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Memory stays flat however long the log is: never more than a batch (4 here) at once.
    add(engine, StepClock(), 10)
    sizes: list[int] = []
    feed = Verifier.feed

    def spy(self: Verifier, rows: list[FlatRow]) -> None:
        sizes.append(len(rows))
        feed(self, rows)

    monkeypatch.setattr(Verifier, "feed", spy)
    with engine.connect() as conn:
        assert verify_log(conn).count == 10
    assert sizes == [4, 4, 2]


@pytest.mark.usefixtures("rows_only")
def test_without_the_sql_joins_rows_rewritten_unchanged_still_verify(engine: Engine) -> None:
    # An UPDATE that changes nothing moves the row on disk (PostgreSQL writes a new row
    # version): verify must read by seq, not in storage order.
    add(engine, StepClock(), 10)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = actor WHERE seq IN (2, 5)"))
    with engine.connect() as conn:
        assert verify_log(conn).count == 10


def test_an_intact_log_of_many_batches_verifies_on_the_fast_path_only(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 9 events in batches of 4: two full batches and one of a single event, each checked
    # as one string from the database, none read again row by row.
    monkeypatch.setattr(audit_log, "_VERIFY_BATCH", 4)
    add(engine, StepClock(), 9)

    def refuse(self: object, rows: object) -> None:
        raise AssertionError("a batch was read again row by row")

    monkeypatch.setattr(Verifier, "feed", refuse)
    with engine.connect() as conn:
        report = verify_log(conn)
    assert (report.count, report.head_seq) == (9, 9)
