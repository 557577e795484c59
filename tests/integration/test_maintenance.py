"""Retention and the orphan sweep run on their own inside the server (issue 15): an orphan
left by a killed upload goes without anyone running ``admin sweep``; retention runs only
when turned on; two workers of one host never run the same round at once."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from skinvault.actors import Actor, Role
from skinvault.audit.log import tail
from skinvault.bootstrap import bootstrap
from skinvault.config import load_settings
from skinvault.errors import NotFound
from skinvault.services import admin, photo_reads, photo_store
from skinvault.services.maintenance import MaintenanceSchedule
from tests import factories

OPERATOR = Actor.system("test")
ORPHAN = "p/20200101000000-killedupload"


@dataclass
class Then:
    at: datetime

    def now(self) -> datetime:
        return self.at


def _wait(condition: object, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the schedule did not run in time"
        time.sleep(0.1)


def test_the_server_schedule_sweeps_an_orphan_without_admin_sweep(
    database_url: str, tmp_path: Path
) -> None:
    vault = bootstrap(load_settings(data_dir=tmp_path / "v", database_url=database_url),
                      create=True)  # fmt: skip
    vault.blobs.put(ORPHAN, b"ciphertext of an upload whose process was killed")
    schedule = MaintenanceSchedule(vault, sweep_seconds=0.3, retention_seconds=0)
    assert set(schedule.jobs) == {"sweep"}
    schedule.start()
    try:
        _wait(lambda: not vault.blobs.exists(ORPHAN))
    finally:
        schedule.stop()
    with vault.reading() as session:
        swept = [e for e in tail(session, 100) if e.action == "blob:sweep"]
    assert [e.actor for e in swept] == [Actor.system("scheduler").audit_name]
    vault.close()


def test_retention_runs_on_schedule_only_when_turned_on(database_url: str, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "v", database_url=database_url,
                             retention_clinical_photo_days=1)  # fmt: skip
    earlier = bootstrap(settings, create=True, clock=Then(datetime.now(UTC) - timedelta(days=3)))
    made = admin.create_user(
        earlier, role=Role.PATIENT, email="ann@example.org",
        password="a long enough password", actor=OPERATOR, name="Ann",
    )  # fmt: skip
    ann = Actor(made.user_id, Role.PATIENT, "Ann")
    old = photo_store.store_photo(earlier, patient_id=made.patient_id or "", data=factories.jpeg(),
                             actor=ann)  # fmt: skip
    earlier.close()
    vault = bootstrap(settings)
    assert MaintenanceSchedule(vault).jobs.keys() == {"sweep"}  # retention is off by default
    schedule = MaintenanceSchedule(vault, sweep_seconds=0, retention_seconds=0.3)
    schedule.start()
    try:
        _wait(lambda: schedule.runs["retention"] >= 1)
    finally:
        schedule.stop()
    try:
        photo_reads.read_photo(vault, photo_id=old.id, actor=ann, purpose="care")
        raise AssertionError("the photo past its retention period can still be read")
    except NotFound:
        pass
    vault.close()


def test_two_workers_of_one_host_never_run_the_same_round_at_once(tmp_path: Path) -> None:
    vault = bootstrap(load_settings(data_dir=tmp_path / "v"), create=True)
    first, second = MaintenanceSchedule(vault), MaintenanceSchedule(vault)
    with first._turn("sweep") as mine:
        assert mine
        with second._turn("sweep") as theirs:
            assert not theirs
    with second._turn("sweep") as theirs:
        assert theirs  # released when the first finished
    assert MaintenanceSchedule(vault, sweep_seconds=0, retention_seconds=0).jobs == {}
    vault.close()
