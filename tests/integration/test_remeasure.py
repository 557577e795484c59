# ruff: noqa: F811  (pytest fixtures imported from test_vault are parameters here)
"""A new measurement method version reaches every chart: photos measured by an older one
are measured anew (same region and parts left out), the earlier rows kept for the record."""

from __future__ import annotations

from sqlalchemy import select, update

from skinvault.actors import Actor
from skinvault.bootstrap import Vault
from skinvault.db.models import AuditEvent, Measurement
from skinvault.services import job_kinds, jobs, photo_shredding, photo_store, tracking
from skinvault.tracking import measure as me
from tests.integration.test_tracking import _jpeg
from tests.integration.test_vault import OPERATOR, _clinician, patient, vault  # noqa: F401
from tests.unit.test_tracking_measure import _photo

REMEASURER = Actor.system("remeasure").audit_name


def _rows(vault: Vault, photo_id: str) -> list[Measurement]:
    with vault.reading() as session:
        found = session.scalars(
            select(Measurement)
            .where(Measurement.photo_id == photo_id, Measurement.kind == "depigmented-share")
            .order_by(Measurement.measured_at)
        ).all()
        for row in found:
            session.expunge(row)
        return list(found)


def _age(vault: Vault, photo_id: str) -> None:
    """As if an older version had made the photo's measurements (before an upgrade)."""
    with vault.sessions.begin() as session:
        session.execute(
            update(Measurement).where(Measurement.photo_id == photo_id).values(version="3")
        )


def test_photos_measured_by_an_older_version_are_measured_anew_once(
    vault: Vault, patient: str
) -> None:
    lee = _clinician(vault)
    stored = [
        photo_store.store_photo(
            vault,
            patient_id=patient,
            site="left-forearm",
            data=_jpeg(_photo(share)[0]),
            actor=OPERATOR,
        )
        for share in (0.10, 0.20, 0.30)
    ]
    jobs.run_pending(vault)  # every upload to a site is measured
    background, drawn, current = (p.id for p in stored)
    region, left_out = (100, 80, 600, 440), [(150, 120, 60, 60)]
    tracking.measure_photo(vault, drawn, actor=lee, region=region, exclude=left_out)
    _age(vault, background)
    _age(vault, drawn)
    before = {p: _rows(vault, p) for p in (background, drawn, current)}

    with vault.reading() as session:
        assert set(tracking.stale_photos(session)) == {background, drawn}
    assert tracking.remeasure_stale(vault) == 2
    assert tracking.remeasure_stale(vault) == 2  # queued once per photo and version
    assert jobs.run_pending(vault) == 2

    for photo_id in (background, drawn):
        rows = _rows(vault, photo_id)
        assert [r.id for r in rows[:-1]] == [r.id for r in before[photo_id]]  # kept
        latest = rows[-1]
        assert (latest.method, latest.version) == (me.METHOD, me.VERSION)
        assert latest.measured_by == REMEASURER
    drawn_latest = tracking._measurement_of(list(reversed(_rows(vault, drawn))))
    assert drawn_latest is not None
    assert tracking._region_of(drawn_latest) == region  # the person's region and parts
    assert tracking._left_out_of(drawn_latest) == left_out
    assert len(_rows(vault, current)) == len(before[current])  # already current: untouched
    with vault.reading() as session:
        assert tracking.stale_photos(session) == []
        redone = session.scalars(select(AuditEvent).where(AuditEvent.actor == REMEASURER)).all()
    assert len(redone) == 2 and all(e.reason == f"{me.METHOD}/{me.VERSION}" for e in redone)
    assert tracking.remeasure_stale(vault) == 0


def test_a_deleted_photo_is_not_measured_again(vault: Vault, patient: str) -> None:
    lee = _clinician(vault)
    stored = photo_store.store_photo(vault, patient_id=patient, site="left-forearm",
                                     data=_jpeg(_photo(0.2)[0]), actor=OPERATOR)  # fmt: skip
    jobs.run_pending(vault)
    _age(vault, stored.id)
    photo_shredding.delete_photo(vault, photo_id=stored.id, actor=lee, reason="asked")
    assert tracking.remeasure_stale(vault) == 0


def test_the_sweep_is_a_daily_job_of_every_worker() -> None:
    assert job_kinds.REMEASURE_STALE in {p.kind for p in job_kinds.PERIODIC}
    assert {job_kinds.REMEASURE, job_kinds.REMEASURE_STALE} <= set(jobs.handlers())
