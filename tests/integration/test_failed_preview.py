"""A photo whose pixels never decode gets a failed preview at once, said plainly; a
storage outage is still retried (SQLite and PostgreSQL).

The photo: a HEIC whose structure the scrubber accepts but whose coded data Pillow
cannot decode (tests/data/findings/upload500-mutants_r1-m02763.heic). An upload decodes
such a file and refuses it; here the scrubber is made to vouch for its pixels (as it
does for a JPEG whose structure proves they decode), so it is stored on its header alone
and only the thumbnail job finds out — the case the job must not retry for ever.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from skinvault.actors import Role
from skinvault.bootstrap import Vault, bootstrap
from skinvault.cli import app as cli_app
from skinvault.db.models import DerivativeFailure
from skinvault.errors import StorageUnavailable
from skinvault.photos.scrub import scrub
from skinvault.photos.thumbnail import thumbnail
from skinvault.services import jobs, photo_store, thumbnails
from skinvault.web.app import create_app
from tests import factories
from tests.integration.test_jobs import (
    OPERATOR,
    SettableClock,
    _job,
    _people,
    _settings,
    _thumbnails,
)

UNDECODABLE = (
    Path(__file__).resolve().parents[1] / "data" / "findings" / "upload500-mutants_r1-m02763.heic"
)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def vault(database_url: str, tmp_path: Path, clock: SettableClock) -> Iterator[Vault]:
    v = bootstrap(
        _settings(database_url, tmp_path, job_attempts=3, job_retry_seconds=10),
        create=True,
        clock=clock,
    )
    yield v
    v.close()


@pytest.fixture
def vouched(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The undecodable photo's bytes, with the upload's scrubber vouching for its pixels."""

    def vouching(data: bytes) -> Any:
        cleaned, report = scrub(data)
        return cleaned, dataclasses.replace(report, decodable=True)

    monkeypatch.setattr(photo_store, "scrub", vouching)
    return UNDECODABLE.read_bytes()


def _run_thumbnail_job(vault: Vault, photo_id: str) -> jobs.Outcome:
    """Run due jobs until the photo's thumbnail job has run once; its outcome."""
    thumb_job = _job(vault, thumbnails.job_key(photo_id)).id
    while (outcome := jobs.run_one(vault)) is not None:
        if outcome.job_id == thumb_job:
            return outcome
    raise AssertionError("the thumbnail job was not due")


def test_pixels_that_do_not_decode_fail_the_preview_after_one_run_not_retried(
    vault: Vault, clock: SettableClock, vouched: bytes
) -> None:
    patient, lee = _people(vault)
    stored = photo_store.store_photo(vault, patient_id=patient, data=vouched, actor=OPERATOR)
    assert thumbnails._handed_over(stored.id) is None  # the job decodes it itself

    outcome = _run_thumbnail_job(vault, stored.id)
    assert outcome.state is jobs.JobState.FAILED
    job = _job(vault, thumbnails.job_key(stored.id))
    assert (job.state, job.attempts) == ("failed", 1)
    assert "cannot be decoded" in (job.last_error or "")
    with vault.reading() as session:
        failure = session.scalars(
            select(DerivativeFailure).where(DerivativeFailure.photo_id == stored.id)
        ).one()
        assert failure.kind == "thumbnail" and "cannot be decoded" in failure.reason
    assert _thumbnails(vault, stored.id) == []

    got = thumbnails.read_preview(vault, photo_id=stored.id, actor=lee, purpose="care")
    assert isinstance(got, thumbnails.PreviewPending)
    assert got.state == "failed" and "cannot be decoded" in (got.reason or "")
    assert thumbnails.preview_failure(vault, stored.id) == failure.reason

    report = jobs.status(vault)
    assert report.counts["failed"] == 1 and [j.id for j in report.failed] == [job.id]
    assert "1 could not be done (not retried)" in report.line()
    clock.at += timedelta(days=1)
    jobs.run_pending(vault)
    assert _job(vault, thumbnails.job_key(stored.id)).attempts == 1  # never tried again
    # Its display copy (a HEIC's) cannot be made either: failed too, not "done".
    display = [j for j in jobs.list_jobs(vault) if j.kind == "display_version"]
    assert [(j.state, j.attempts) for j in display] == [("failed", 1)]


def test_a_failed_thumbnail_job_queued_again_after_a_fix_makes_it_and_clears_the_failure(
    vault: Vault, vouched: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient, lee = _people(vault)
    stored = photo_store.store_photo(vault, patient_id=patient, data=vouched, actor=OPERATOR)
    _run_thumbnail_job(vault, stored.id)
    job_id = _job(vault, thumbnails.job_key(stored.id)).id
    # A newer decoder, say: this one makes a thumbnail of any bytes.
    monkeypatch.setattr(
        thumbnails, "thumbnail", lambda data, size: thumbnail(factories.png(), size)
    )
    jobs.retry(vault, job_id)
    assert _run_thumbnail_job(vault, stored.id).state is jobs.JobState.DONE
    assert len(_thumbnails(vault, stored.id)) == 1
    assert thumbnails.preview_failure(vault, stored.id) is None
    got = thumbnails.read_preview(vault, photo_id=stored.id, actor=lee, purpose="care")
    assert not isinstance(got, thumbnails.PreviewPending)


def test_a_storage_outage_is_retried_and_the_preview_keeps_waiting(
    vault: Vault, clock: SettableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient, lee = _people(vault)
    stored = photo_store.store_photo(
        vault, patient_id=patient, data=factories.png(), actor=OPERATOR
    )
    thumbnails._handed_over(stored.id)  # another process's upload: the job reads the blob
    real_get = vault.blobs.get

    def away(key: str) -> bytes:
        raise StorageUnavailable("the blob store does not answer")

    monkeypatch.setattr(vault.blobs, "get", away)
    outcome = _run_thumbnail_job(vault, stored.id)
    assert outcome.state is jobs.JobState.QUEUED  # tried again later, as any failure
    assert thumbnails.preview_failure(vault, stored.id) is None
    got = thumbnails.read_preview(vault, photo_id=stored.id, actor=lee, purpose="care")
    assert isinstance(got, thumbnails.PreviewPending) and got.state == "waiting"

    monkeypatch.setattr(vault.blobs, "get", real_get)
    clock.at += timedelta(seconds=10)
    assert _run_thumbnail_job(vault, stored.id).state is jobs.JobState.DONE
    assert _job(vault, thumbnails.job_key(stored.id)).attempts == 2
    assert len(_thumbnails(vault, stored.id)) == 1


def _patient_with_token(client: TestClient, vault: Vault) -> tuple[Any, dict[str, str]]:
    """A patient account and the bearer header of an API token issued to it."""
    from tests.integration.test_api import PASSWORD as API_PASSWORD
    from tests.integration.test_api import _make

    ann = _make(vault, Role.PATIENT, "ann@example.org", "Ann")
    token = client.post(
        "/api/v1/auth/token", json={"email": ann.email, "password": API_PASSWORD}
    ).json()["access_token"]
    return ann, {"Authorization": f"Bearer {token}"}


def test_the_page_and_the_api_say_no_preview_could_be_made_never_a_5xx(
    database_url: str, tmp_path: Path, vouched: bytes
) -> None:
    from tests.integration.test_api import PASSWORD as API_PASSWORD

    app = create_app(_settings(database_url, tmp_path))
    vault = app.state.vault
    client = TestClient(app)
    try:
        ann, auth = _patient_with_token(client, vault)
        up = client.post(
            f"/api/v1/patients/{ann.patient_id}/photos",
            headers=auth,
            files={"file": ("IMG_0001.heic", vouched, "image/heic")},
        )
        assert up.status_code == 201, up.text
        photo_id = up.json()["id"]
        url = f"/api/v1/photos/{photo_id}/thumbnail?purpose=care"
        pending = client.get(url, headers=auth)
        assert pending.status_code == 202 and pending.json()["preview"] == "waiting"

        _run_thumbnail_job(vault, photo_id)
        failed = client.get(url, headers=auth)
        assert failed.status_code == 404, failed.text
        assert failed.headers["content-type"].startswith("application/problem+json")
        body = failed.json()
        assert body["preview"] == "failed" and body["photo_id"] == photo_id
        assert body["type"].endswith("/preview-failed")
        assert "No preview could be made from this photo" in body["detail"]
        assert body["content_url"] == f"/api/v1/photos/{photo_id}/content?purpose=care"
        original = client.get(body["content_url"], headers=auth)
        assert original.status_code == 200 and original.content  # the photo still reads

        signin = client.post(
            "/login", data={"email": ann.email, "password": API_PASSWORD}, follow_redirects=False
        )
        assert signin.status_code == 303, signin.text
        thumb = client.get(f"/portal/photos/{photo_id}/thumbnail?purpose=care")
        assert thumb.status_code == 200 and thumb.headers["x-preview"] == "failed"
        assert thumb.headers["content-type"].startswith("image/svg+xml")
        assert b"No preview could be made" in thumb.content
        assert b"download the original" in thumb.content
        assert b"being prepared" not in thumb.content
        page = client.get(f"/portal/photos/{photo_id}?purpose=care")
        assert page.status_code == 200
        assert "No preview could be made from this photo" in page.text
        assert "The original can still be downloaded" in page.text
    finally:
        client.close()
        vault.close()


def test_jobs_status_tells_a_failed_job_from_a_done_one(
    vault: Vault, vouched: bytes, tmp_path: Path, database_url: str
) -> None:
    patient, _ = _people(vault)
    stored = photo_store.store_photo(vault, patient_id=patient, data=vouched, actor=OPERATOR)
    _run_thumbnail_job(vault, stored.id)
    job_id = _job(vault, thumbnails.job_key(stored.id)).id
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path / "data"), "--database-url", database_url]
    status = runner.invoke(cli_app, ["jobs", "status", *where])
    assert status.exit_code == 0, status.output
    said = " ".join(status.output.split())  # rich wraps long lines
    assert "could not be done (not retried)" in said
    assert f"failed {job_id} thumbnail, not retried:" in said
    listed = runner.invoke(cli_app, ["jobs", "list", "--state", "failed", *where])
    assert listed.exit_code == 0, listed.output
    assert job_id[:10] in listed.output and "│ failed" in listed.output  # a narrow table


def test_the_admin_page_lists_a_failed_job_apart_from_the_done_ones(
    database_url: str, tmp_path: Path, vouched: bytes
) -> None:
    from tests.integration.test_portal_pages import _csrf, _sign_in, _user

    app = create_app(_settings(database_url, tmp_path))
    vault = app.state.vault
    with TestClient(app) as client:
        secret = _user(vault, Role.ADMIN, "ops@clinic.example", "Ops")[2]
        patient, _ = _people(vault)
        stored = photo_store.store_photo(vault, patient_id=patient, data=vouched, actor=OPERATOR)
        _run_thumbnail_job(vault, stored.id)
        job_id = _job(vault, thumbnails.job_key(stored.id)).id
        _sign_in(client, "ops@clinic.example", secret)
        page = client.get("/portal/admin")
        assert page.status_code == 200
        assert "1 could not be done (not retried)" in page.text
        assert "Could not be done, not retried" in page.text
        assert f"/portal/admin/jobs/{job_id}/retry" in page.text
        retry_form = page.text.split(f"/portal/admin/jobs/{job_id}/retry", 1)[1][:300]
        assert f'name="csrf" value="{_csrf(page.text)}"' in retry_form  # the form can be sent
        again = client.post(f"/portal/admin/jobs/{job_id}/retry", data={"csrf": _csrf(page.text)})
        assert again.status_code == 200 and "Queued again" in again.text
    vault.close()


def test_a_measurement_of_pixels_that_do_not_decode_fails_and_is_not_called_done(
    vault: Vault, vouched: bytes
) -> None:
    patient, _ = _people(vault)
    stored = photo_store.store_photo(
        vault, patient_id=patient, data=vouched, actor=OPERATOR, site="forearm-left"
    )
    jobs.run_pending(vault)
    job = _job(vault, f"{photo_store.MEASURE_JOB}:{stored.id}")
    assert (job.state, job.attempts) == ("failed", 1), (job.state, job.last_error)
    assert "not a photo this can read" in (job.last_error or "")
    assert "BytesIO" not in (job.last_error or "")


def test_a_preview_whose_job_gave_up_on_storage_is_delayed_not_failed(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storage away for every try: the job is dead, an operator's retry makes the preview.
    Nobody is told the photo cannot be previewed or should be uploaded again."""
    from tests.integration.test_api import PASSWORD as API_PASSWORD

    app = create_app(_settings(database_url, tmp_path, job_attempts=1))
    vault = app.state.vault
    client = TestClient(app)
    try:
        ann, auth = _patient_with_token(client, vault)
        stored = photo_store.store_photo(
            vault, patient_id=str(ann.patient_id), data=factories.png(), actor=OPERATOR
        )
        thumbnails._handed_over(stored.id)  # the job reads the blob, which is away

        def away(key: str) -> bytes:
            raise StorageUnavailable("the blob store does not answer")

        monkeypatch.setattr(vault.blobs, "get", away)
        assert _run_thumbnail_job(vault, stored.id).state is jobs.JobState.DEAD
        delayed = client.get(f"/api/v1/photos/{stored.id}/thumbnail?purpose=care", headers=auth)
        assert delayed.status_code == 503, delayed.text
        body = delayed.json()
        assert body["preview"] == "unavailable" and body["type"].endswith("/preview-unavailable")
        assert "no need to upload it again" in body["detail"]
        assert delayed.headers["retry-after"] == "300"
        client.post("/login", data={"email": ann.email, "password": API_PASSWORD})
        thumb = client.get(f"/portal/photos/{stored.id}/thumbnail?purpose=care")
        assert thumb.headers["x-preview"] == "unavailable"
        assert b"upload it again" not in thumb.content and b"clinic will retry" in thumb.content
    finally:
        client.close()
        vault.close()


def test_a_failed_job_waits_a_quarter_for_a_retry_and_shredding_forgets_the_failure(
    vault: Vault, clock: SettableClock, vouched: bytes
) -> None:
    from skinvault.services import job_kinds
    from skinvault.services.photo_shredding import delete_photo

    patient, _ = _people(vault)
    stored = photo_store.store_photo(vault, patient_id=patient, data=vouched, actor=OPERATOR)
    _run_thumbnail_job(vault, stored.id)
    key = thumbnails.job_key(stored.id)

    def purge_after(days: int) -> None:
        clock.at += timedelta(days=days)
        with vault.sessions.begin() as session:
            jobs.enqueue(session, vault, job_kinds.JOBS_PURGE, {}, key=f"purge:{clock.at}")
        jobs.run_pending(vault)

    purge_after(8)  # a done job of that age is gone; the failed one waits for "Try again"
    assert _job(vault, key).state == "failed"
    assert thumbnails.preview_failure(vault, stored.id) is not None
    delete_photo(vault, photo_id=stored.id, actor=OPERATOR, reason="asked by the patient")
    assert thumbnails.preview_failure(vault, stored.id) is None  # nothing outlives the photo
    purge_after(90)
    with vault.reading() as session:
        assert session.scalars(select(jobs.Job).where(jobs.Job.key == key)).first() is None
