"""Incremental audit verify: only the events after the head the last verify found intact
are hashed again; cuts and rewrites up to that head are still found. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from skinvault.audit import Action, Outcome, record
from skinvault.audit.chain import Event, link
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.errors import AuditChainBroken
from skinvault.services import admin

VERIFIED = Path("keys") / "audit-verified.json"


@pytest.fixture
def vault(database_url: str, tmp_path: Path) -> Iterator[Vault]:  # database_url: conftest
    v = bootstrap(load_settings(data_dir=tmp_path / "data", database_url=database_url), create=True)
    yield v
    v.close()


def _append(vault: Vault, n: int) -> None:
    with vault.sessions.begin() as session:
        for i in range(n):
            record(
                session, clock=vault.clock, actor="u1 Dr. Two", action=Action.PHOTO_VIEW,
                object=f"photo:p{i}", outcome=Outcome.ALLOWED, purpose="care",
            )  # fmt: skip


def _head(vault: Vault) -> int:
    with vault.engine.connect() as conn:
        return int(conn.execute(text("SELECT max(seq) FROM audit_events")).scalar() or 0)


def _set_actor(vault: Vault, seq: int, actor: str, *, rehash: bool = False) -> None:
    """An intruder edits one event; with ``rehash`` they also recompute every later link
    and drop the checkpoint rows, so the chain alone looks intact."""
    with vault.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = :a WHERE seq = :s"),
                     {"a": actor, "s": seq})  # fmt: skip
        if not rehash:
            return
        conn.execute(text("DELETE FROM audit_checkpoints"))
        rows = conn.execute(
            text("SELECT seq, at, actor, action, object, purpose, outcome, reason, prev_hash"
                 " FROM audit_events WHERE seq >= :s ORDER BY seq"), {"s": seq},
        ).all()  # fmt: skip
        prev = rows[0][8]
        for r in rows:
            at = datetime.fromisoformat(r[1]) if isinstance(r[1], str) else r[1]
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            new = link(prev, Event(r[0], at, r[2], r[3], r[4], r[5], r[6], r[7]))
            conn.execute(text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE seq = :s"),
                         {"p": prev, "h": new, "s": r[0]})  # fmt: skip
            prev = new


def test_incremental_verify_hashes_only_the_events_since_the_last_verify(vault: Vault) -> None:
    _append(vault, 30)
    first = admin.verify_audit(vault, incremental=True)  # nothing recorded yet: the whole log
    assert first.start_seq == 0 and first.count == _head(vault)
    assert (vault.settings.data_dir / VERIFIED).exists()

    _append(vault, 7)
    again = admin.verify_audit(vault, incremental=True)
    assert (again.start_seq, again.count, again.head_seq) == (first.head_seq, 7, _head(vault))
    assert "7 new events (after event" in admin.verify_summary(again)
    nothing_new = admin.verify_audit(vault, incremental=True)
    assert nothing_new.count == 0 and nothing_new.head_seq == again.head_seq


def test_incremental_verify_finds_a_changed_event_after_the_last_verify(vault: Vault) -> None:
    _append(vault, 10)
    verified = admin.verify_audit(vault).head_seq
    _append(vault, 5)
    _set_actor(vault, verified + 2, "someone else")
    with pytest.raises(AuditChainBroken) as broken:
        admin.verify_audit(vault, incremental=True)
    assert broken.value.seq == verified + 2


def test_a_rewrite_up_to_the_verified_head_is_found_without_hashing_the_old_events(
    vault: Vault,
) -> None:
    _append(vault, 10)
    verified = admin.verify_audit(vault).head_seq
    _append(vault, 3)
    _set_actor(vault, 4, "someone else", rehash=True)  # every later hash recomputed
    with pytest.raises(AuditChainBroken, match="rewritten up to event") as broken:
        admin.verify_audit(vault, incremental=True, kept_head=False)
    assert broken.value.seq == verified
    assert re.fullmatch(
        rf"audit chain broken at event {verified}: event {verified} is not the one the verify"
        rf" of \d{{4}}-\d\d-\d\d \d\d:\d\d UTC found intact: the log was rewritten up to"
        rf" event {verified}",
        str(broken.value),
    ), str(broken.value)


def test_an_old_event_changed_with_its_hash_left_alone_needs_the_full_verify(
    vault: Vault,
) -> None:
    """The trade-off, shown: the incremental verify does not read events it verified
    before; the full one (the default) does, and names the changed event."""
    _append(vault, 10)
    admin.verify_audit(vault)
    _append(vault, 3)
    _set_actor(vault, 4, "someone else")
    assert admin.verify_audit(vault, incremental=True).count == 3
    with pytest.raises(AuditChainBroken, match="event 4 was changed"):
        admin.verify_audit(vault)


def test_a_log_cut_below_the_verified_head_is_found(vault: Vault) -> None:
    _append(vault, 10)
    verified = admin.verify_audit(vault).head_seq
    with vault.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq > :s"), {"s": verified - 3})
        conn.execute(text("DELETE FROM audit_checkpoints"))
    with pytest.raises(AuditChainBroken) as broken:
        admin.verify_audit(vault, incremental=True, kept_head=False)
    assert broken.value.seq == verified
    assert re.fullmatch(
        rf"audit chain broken at event {verified}: the log no longer holds event {verified},"
        r" which the verify of \d{4}-\d\d-\d\d \d\d:\d\d UTC found intact: events were removed",
        str(broken.value),
    ), str(broken.value)


def test_a_forged_record_of_the_last_verify_is_refused(vault: Vault) -> None:
    _append(vault, 10)
    admin.verify_audit(vault)
    path = vault.settings.data_dir / VERIFIED
    record_ = json.loads(path.read_text())
    record_["seq"] = 2  # "only events after 2 need checking"
    path.write_text(json.dumps(record_))
    with pytest.raises(AuditChainBroken, match="altered or forged"):
        admin.verify_audit(vault, incremental=True)
    path.write_text("not json")
    with pytest.raises(AuditChainBroken, match="altered or damaged"):
        admin.verify_audit(vault, incremental=True)


def test_the_cli_verifies_incrementally_and_says_so(vault: Vault, database_url: str) -> None:
    _append(vault, 12)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "skinvault", "audit", "verify", *args, "--data-dir",
             str(vault.settings.data_dir), "--database-url", database_url],
            check=False, capture_output=True, text=True, timeout=120,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip

    full = cli("--json")
    assert full.returncode == 0, full.stderr
    head = json.loads(full.stdout)["head_seq"]
    _append(vault, 4)
    got = cli("--incremental", "--json")
    assert got.returncode == 0, got.stderr
    answer = json.loads(got.stdout)
    assert (answer["verified_after"], answer["events"]) == (head, 4)
    words = cli("--incremental")
    assert "0 new events (after event" in words.stdout
    _append(vault, 2)  # events head+5 and head+6, after the last verified head (head+4)
    _set_actor(vault, head + 5, "someone else")
    broken = cli("--incremental")
    assert broken.returncode == 1 and f"event {head + 5} was changed" in broken.stderr


def test_after_a_cut_the_full_verify_sets_the_record_back_so_incremental_works_again(
    vault: Vault,
) -> None:
    """As after restoring an older backup on purpose: the incremental verify refuses the
    shorter log; a full verify (which hashes everything) records the head it now has."""
    _append(vault, 10)
    verified = admin.verify_audit(vault, kept_head=False).head_seq
    with vault.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq > :s"), {"s": verified - 3})
        conn.execute(text("DELETE FROM audit_checkpoints"))
    with pytest.raises(AuditChainBroken):
        admin.verify_audit(vault, incremental=True, kept_head=False)
    assert admin.verify_audit(vault, kept_head=False).head_seq == verified - 3
    _append(vault, 2)
    again = admin.verify_audit(vault, incremental=True, kept_head=False)
    assert (again.start_seq, again.count) == (verified - 3, 2)
