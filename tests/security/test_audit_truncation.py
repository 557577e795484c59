"""Finding 12: cutting the end off the audit log must not verify as "Intact".

Checkpoints in the database vouch only for what comes before them: an intruder who
deletes every event after the last one (a break-glass record among them), and the
checkpoint rows too, left a log that verified. Now the server signs the head on a
schedule and keeps the latest signed head outside the database (next to the keys, and
optionally in a second place); ``audit verify`` and the admin page compare with it by
default. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from skinvault.actors import Actor, Role
from skinvault.audit import Action, Outcome, record
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.errors import AuditChainBroken
from skinvault.services import admin, photo_reads, photo_store
from tests import factories
from tests.integration.conftest import BACKENDS, drop_schema, fresh_database_url
from tests.security.conftest import Live

HEAD = Path("keys") / "audit-head.json"


def _append(vault: Vault, n: int, what: str = "photo:x") -> None:
    for _ in range(n):
        with vault.sessions.begin() as session:
            record(
                session, clock=vault.clock, actor="u1 Dr. Two", action=Action.PHOTO_VIEW,
                object=what, outcome=Outcome.ALLOWED, purpose="care",
                reason="BREAK-GLASS, to be reviewed: Emergency access",
            )  # fmt: skip


def _cut_after(engine: Engine, seq: int) -> None:
    """What the intruder does: delete every event (and checkpoint) after ``seq``."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq > :s"), {"s": seq})
        conn.execute(text("DELETE FROM audit_checkpoints WHERE seq > :s"), {"s": seq})


def _cli(data: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skinvault", "audit", *args, "--data-dir", str(data),
         "--database-url", url],
        check=False, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each backend (bootstrap migrates it)."""
    url, schema = fresh_database_url(request.param, tmp_path)
    yield url
    if schema:
        drop_schema(schema)


@pytest.fixture
def vault(database_url: str, tmp_path: Path) -> Iterator[Vault]:
    v = bootstrap(load_settings(data_dir=tmp_path / "data", database_url=database_url), create=True)
    yield v
    v.close()


def _copy_vault(tmp_path: Path, database_url: str) -> Vault:
    settings = load_settings(
        data_dir=tmp_path / "data", database_url=database_url,
        audit_head_copy_dir=tmp_path / "elsewhere",
    )  # fmt: skip
    return bootstrap(settings, create=True)


def test_cutting_the_end_after_the_last_checkpoint_is_found(vault: Vault) -> None:
    from skinvault.services import checkpoints

    _append(vault, 5)
    admin.sign_head(vault)  # the last checkpoint row: event 5
    _append(vault, 4)  # 6..9, break-glass records
    signed = checkpoints.sign_and_keep(vault)  # what the schedule does every few minutes
    assert signed is not None and signed.seq == 9
    kept = json.loads((vault.settings.data_dir / HEAD).read_text())
    assert kept["seq"] == 9 and kept["hash"] == signed.hash
    assert admin.verify_audit(vault).kept_head_seq == 9

    _cut_after(vault.engine, 5)
    with pytest.raises(AuditChainBroken) as broken:
        admin.verify_audit(vault)
    message = str(broken.value)
    assert "ends at event 5" in message and "event 9" in message
    assert "removed" in message and "outside the database" in message
    # The schedule refuses to sign over the cut (which would hide it).
    with pytest.raises(AuditChainBroken):
        checkpoints.sign_and_keep(vault)
    assert json.loads((vault.settings.data_dir / HEAD).read_text())["seq"] == 9


def test_cutting_and_appending_again_is_found(vault: Vault) -> None:
    from skinvault.services import checkpoints

    _append(vault, 6)
    assert checkpoints.sign_and_keep(vault) is not None
    _cut_after(vault.engine, 3)
    _append(vault, 5, what="photo:y")  # the log is longer again, but event 6 is another one
    with pytest.raises(AuditChainBroken, match=r"event 6 .*not the one the signed head"):
        admin.verify_audit(vault)
    with pytest.raises(AuditChainBroken):
        checkpoints.sign_and_keep(vault)  # never overwrites the evidence


def test_nothing_appended_means_nothing_signed(vault: Vault) -> None:
    from skinvault.services import checkpoints

    assert checkpoints.sign_and_keep(vault) is None  # an empty log
    _append(vault, 2)
    assert checkpoints.sign_and_keep(vault) is not None
    assert checkpoints.sign_and_keep(vault) is None  # nothing new since
    report = admin.verify_audit(vault)
    assert (report.count, report.kept_head_seq) == (2, 2)


def test_the_copy_in_the_second_place_still_finds_the_cut(
    tmp_path: Path,
    database_url: str,
) -> None:
    from skinvault.services import checkpoints

    vault = _copy_vault(tmp_path, database_url)
    try:
        _append(vault, 4)
        checkpoints.sign_and_keep(vault)
        copy = tmp_path / "elsewhere" / "audit-head.json"
        assert json.loads(copy.read_text())["seq"] == 4
        _cut_after(vault.engine, 2)
        (vault.settings.data_dir / HEAD).unlink()  # the intruder removes the local head too
        with pytest.raises(AuditChainBroken, match="ends at event 2"):
            admin.verify_audit(vault)
    finally:
        vault.close()


def test_a_forged_head_file_is_refused(vault: Vault) -> None:
    from skinvault.services import checkpoints

    _append(vault, 3)
    checkpoints.sign_and_keep(vault)
    path = vault.settings.data_dir / HEAD
    kept = json.loads(path.read_text())
    path.write_text(json.dumps({**kept, "seq": 2}))
    with pytest.raises(AuditChainBroken, match="signature"):
        admin.verify_audit(vault)


def test_without_a_kept_head_the_report_says_so(vault: Vault) -> None:
    _append(vault, 3)
    report = admin.verify_audit(vault)
    assert report.kept_head_seq is None
    result = _cli(vault.settings.data_dir, str(vault.engine.url.render_as_string(False)), "verify")
    assert result.returncode == 0, result.stderr
    assert "no signed head is kept outside the database" in result.stdout.replace("\n", " ")


def test_the_server_signs_on_a_schedule_and_verify_finds_the_cut(live_with: object) -> None:
    """Live: ``skinvault serve`` signs within seconds; a cut log fails the CLI and the page."""
    start = live_with  # type: ignore[assignment]
    live: Live = start({"SKINVAULT_AUDIT_CHECKPOINT_SECONDS": "1"})  # type: ignore[operator]
    patient = live.person(Role.PATIENT)
    lee = live.person(Role.CLINICIAN)
    two = live.person(Role.CLINICIAN, name="Dr. Two")
    officer = live.person(Role.ADMIN)
    live.relate(patient, lee)
    assert patient.patient_id
    stored = photo_store.store_photo(
        live.vault, patient_id=patient.patient_id, data=factories.jpeg(), actor=lee.actor
    )
    signed = admin.sign_head(live.vault)  # `skinvault audit checkpoint`: a checkpoint row
    photo_reads.read_photo(
        live.vault, photo_id=stored.id, actor=Actor(two.actor.id, Role.CLINICIAN, "Dr. Two"),
        purpose="care", break_glass_reason="Unconscious in A&E, no care team reachable",
    )  # fmt: skip
    with live.vault.reading() as session:
        from skinvault.audit.log import tail

        head = tail(session, 1)[0].seq
    head_file = live.data / HEAD
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the server's schedule signs within its interval
        if head_file.exists() and json.loads(head_file.read_text())["seq"] >= head:
            break
        time.sleep(0.2)

    _cut_after(live.vault.engine, signed.seq)  # the break-glass record is gone
    result = _cli(live.data, live.database_url, "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    said = (result.stdout + result.stderr).replace("\n", " ")
    assert "BROKEN" in said and "removed" in said and f"ends at event {signed.seq}" in said

    po = live.client()
    csrf = live.sign_in(po, officer)
    page = po.post("/portal/admin/verify", data={"csrf": csrf}).text
    # (signing in appended events after the cut, so the page names the cut its own way)
    assert "BROKEN" in page and "outside the database" in page


def test_the_schedule_thread_signs_once_more_when_it_stops(vault: Vault) -> None:
    from skinvault.services import checkpoints

    schedule = checkpoints.CheckpointSchedule(vault, seconds=3600)  # no round while it runs
    schedule.start()
    _append(vault, 3)
    started = time.monotonic()
    schedule.stop()
    assert time.monotonic() - started < 30
    assert json.loads((vault.settings.data_dir / HEAD).read_text())["seq"] == 3
    assert admin.verify_audit(vault).kept_head_seq == 3
