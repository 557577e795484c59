"""The job queue on SQLite and PostgreSQL: durable, retried, never run twice at once.

The thumbnail of an upload is the job these tests follow: it is what leaves the upload
request, and a user sees it (a placeholder, then the preview).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.db.models import Derivative, Job, Photo
from skinvault.photos.thumbnail import decode, thumbnail_of
from skinvault.services import admin, jobs, photo_reads, photo_shredding, photo_store, thumbnails
from skinvault.services.care import start_care
from skinvault.web.app import create_app
from tests import factories

OPERATOR = Actor.system("test")
PASSWORD = "a long passphrase 42"


class SettableClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


def _settings(database_url: str, tmp_path: Path, **extra: Any):  # type: ignore[no-untyped-def]
    return load_settings(
        data_dir=tmp_path / "data", database_url=database_url, job_threads=0, **extra
    )


@pytest.fixture
def vault(database_url: str, tmp_path: Path, clock: SettableClock) -> Iterator[Vault]:
    v = bootstrap(
        _settings(database_url, tmp_path, job_attempts=3, job_retry_seconds=10),
        create=True,
        clock=clock,
    )
    yield v
    v.close()


def _people(vault: Vault) -> tuple[str, Actor]:
    """A patient in the care of a clinician: (patient id, clinician)."""
    doc = admin.create_user(
        vault, role=Role.CLINICIAN, email="lee@clinic.example", password=PASSWORD, actor=OPERATOR
    )
    pat = admin.create_user(
        vault, role=Role.PATIENT, email="pat@example.org", password=PASSWORD, actor=OPERATOR
    )
    assert pat.patient_id and doc.user_id
    start_care(vault, patient_id=pat.patient_id, member_id=doc.user_id, actor=OPERATOR)
    return pat.patient_id, Actor(doc.user_id, Role.CLINICIAN, "Dr. Lee")


def _thumbnails(vault: Vault, photo_id: str) -> list[Derivative]:
    with vault.reading() as session:
        return list(
            session.scalars(
                select(Derivative).where(
                    Derivative.photo_id == photo_id, Derivative.kind == "thumbnail"
                )
            )
        )


def _job(vault: Vault, key: str) -> Job:
    with vault.reading() as session:
        job = session.scalars(select(Job).where(Job.key == key)).one()
        session.expunge(job)
        return job


def test_upload_returns_before_the_thumbnail_which_appears_after_the_worker_runs(
    vault: Vault,
) -> None:
    patient, lee = _people(vault)
    stored = photo_store.store_photo(
        vault, patient_id=patient, data=factories.jpeg(), actor=OPERATOR
    )
    assert _thumbnails(vault, stored.id) == []
    assert stored.width == 64 and stored.height == 48  # read from the header, not a decode
    pending = thumbnails.read_preview(vault, photo_id=stored.id, actor=lee, purpose="care")
    assert pending == thumbnails.PreviewPending(stored.id, "waiting")
    assert jobs.status(vault).counts["queued"] == 1

    assert jobs.run_pending(vault) == 1
    got = thumbnails.read_preview(vault, photo_id=stored.id, actor=lee, purpose="care")
    assert isinstance(got, photo_reads.PhotoBytes) and got.data.startswith(b"\xff\xd8")
    assert jobs.status(vault).counts == {
        "queued": 0, "running": 0, "done": 1, "dead": 0, "failed": 0
    }


def test_a_thumbnail_job_run_twice_makes_one_thumbnail(vault: Vault) -> None:
    patient, _ = _people(vault)
    stored = photo_store.store_photo(
        vault, patient_id=patient, data=factories.jpeg(), actor=OPERATOR
    )
    assert thumbnails.make_thumbnail(vault, stored.id) is True
    assert thumbnails.make_thumbnail(vault, stored.id) is False  # idempotent
    jobs.run_pending(vault)
    assert len(_thumbnails(vault, stored.id)) == 1
    assert len(list(vault.blobs.keys())) == 2  # the photo and one thumbnail, no orphan


def test_the_thumbnail_job_makes_the_thumbnail_from_the_pixels_the_upload_decoded(
    vault: Vault,
) -> None:
    """A PNG's upload decodes the pixels anyway (to refuse a file that does not decode);
    the job in the same process uses them: it makes the thumbnail even with the photo's
    blob gone (so it neither read nor decoded it), and the very same thumbnail as a job
    that decodes the photo again. Nothing stays in memory once the job ran."""
    patient, lee = _people(vault)
    data = factories.png(orientation=6)
    handed = photo_store.store_photo(vault, patient_id=patient, data=data, actor=OPERATOR)
    decoded = photo_store.store_photo(vault, patient_id=patient, data=data, actor=OPERATOR)
    assert thumbnails._handed_over(decoded.id) is not None  # this one decodes in the job
    with vault.reading() as session:
        blob_key = session.get(Photo, handed.id).blob_key  # type: ignore[union-attr]
    vault.blobs.delete(blob_key)

    assert jobs.run_pending(vault) == 2
    assert jobs.status(vault).counts["dead"] == 0
    made = [
        thumbnails.read_preview(vault, photo_id=p.id, actor=lee, purpose="care")
        for p in (handed, decoded)
    ]
    assert all(isinstance(m, photo_reads.PhotoBytes) for m in made)
    assert made[0].data == made[1].data  # type: ignore[union-attr]
    assert (handed.width, handed.height) == (48, 64)  # upright: orientation 6 turns it
    assert handed.id not in thumbnails._handoff  # taken by its job


def test_a_large_decoded_photo_is_handed_over_reduced_and_still_makes_its_thumbnail(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Formats without scaled decoding (HEIF here) decode in full at upload: the job gets
    them reduced by a whole factor, and makes the thumbnail without its blob."""
    import pillow_heif
    from PIL import Image

    monkeypatch.setattr(thumbnails, "_HANDOFF_PIXELS", 100)
    vault = bootstrap(_settings(database_url, tmp_path, thumbnail_size=32), create=True)
    try:
        patient, lee = _people(vault)
        out = io.BytesIO()
        pillow_heif.from_pillow(Image.effect_noise((400, 300), 60).convert("RGB")).save(out)
        stored = photo_store.store_photo(vault, patient_id=patient, data=out.getvalue(),
                                    actor=OPERATOR)  # fmt: skip
        kept = thumbnails._handoff[stored.id]
        assert kept.image.size == (400 // 4, 300 // 4)  # 300 // (2 × 32) = a factor of 4
        assert (kept.width, kept.height) == (stored.width, stored.height) == (400, 300)
        with vault.reading() as session:
            blob_key = session.get(Photo, stored.id).blob_key  # type: ignore[union-attr]
        vault.blobs.delete(blob_key)
        jobs.run_pending(vault)
        got = thumbnails.read_preview(vault, photo_id=stored.id, actor=lee, purpose="care")
        assert isinstance(got, photo_reads.PhotoBytes)
        assert Image.open(io.BytesIO(got.data)).size == (32, 24)
    finally:
        vault.close()


def test_the_hand_off_keeps_only_the_latest_uploads(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(thumbnails, "HANDOFF_MAX", 2)
    patient, _ = _people(vault)
    stored = [
        photo_store.store_photo(vault, patient_id=patient, data=factories.png(), actor=OPERATOR)
        for _ in range(3)
    ]
    assert list(thumbnails._handoff) == [stored[1].id, stored[2].id]
    assert jobs.run_pending(vault) == 3  # the first decodes its photo again
    assert all(len(_thumbnails(vault, p.id)) == 1 for p in stored)
    assert not any(p.id in thumbnails._handoff for p in stored)


def test_a_jpeg_whose_structure_proves_it_decodes_is_not_decoded_at_upload(
    vault: Vault,
) -> None:
    """Its size comes from the header (upright), nothing is decoded nor kept for the job,
    and the job makes the thumbnail from the stored photo: the same bytes as from pixels
    an upload decoded."""
    patient, lee = _people(vault)
    data = factories.jpeg(orientation=6)
    stored = photo_store.store_photo(vault, patient_id=patient, data=data, actor=OPERATOR)
    assert (stored.width, stored.height) == (48, 64)
    assert stored.id not in thumbnails._handoff
    assert jobs.run_pending(vault) == 1
    got = thumbnails.read_preview(vault, photo_id=stored.id, actor=lee, purpose="care")
    assert isinstance(got, photo_reads.PhotoBytes)
    scrubbed = photo_reads.read_photo(vault, photo_id=stored.id, actor=lee, purpose="care")
    size = vault.settings.thumbnail_size
    from_pixels = thumbnail_of(decode(scrubbed.data, size), size)
    assert got.data == from_pixels.data


def test_a_deleted_photo_gets_no_thumbnail_and_its_job_ends(vault: Vault) -> None:
    patient, lee = _people(vault)
    stored = photo_store.store_photo(
        vault, patient_id=patient, data=factories.png(), actor=OPERATOR
    )
    assert stored.id in thumbnails._handoff
    photo_shredding.delete_photo(vault, photo_id=stored.id, actor=lee, reason="asked")
    assert stored.id not in thumbnails._handoff  # its pixels go with it, not at the job
    assert jobs.run_pending(vault) == 1
    job = _job(vault, thumbnails.job_key(stored.id))
    assert job.state == "done" and "gone" in (job.last_error or "")
    assert _thumbnails(vault, stored.id) == []
    assert list(vault.blobs.keys()) == []


def test_a_failing_job_is_retried_with_backoff_then_dead_with_its_error(
    vault: Vault, clock: SettableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def broken(ctx: jobs.JobContext, payload: dict[str, Any]) -> None:
        calls.append(ctx.attempt)
        raise OSError(f"disk on fire (try {ctx.attempt})")

    monkeypatch.setitem(jobs.handlers(), "test-broken", broken)
    job_id = jobs.submit(vault, "test-broken", {"n": 1})
    assert jobs.run_one(vault).state is jobs.JobState.QUEUED  # type: ignore[union-attr]
    assert jobs.run_one(vault) is None  # waits 10 s before the second try
    clock.at += timedelta(seconds=9)
    assert jobs.run_one(vault) is None
    clock.at += timedelta(seconds=1)
    assert jobs.run_one(vault).state is jobs.JobState.QUEUED  # type: ignore[union-attr]
    clock.at += timedelta(seconds=19)
    assert jobs.run_one(vault) is None  # then 20 s
    clock.at += timedelta(seconds=1)
    outcome = jobs.run_one(vault)
    assert outcome is not None and outcome.state is jobs.JobState.DEAD
    assert calls == [1, 2, 3]

    report = jobs.status(vault)
    assert report.counts["dead"] == 1
    assert report.dead[0].id == job_id
    assert report.dead[0].last_error == "OSError: disk on fire (try 3)"
    clock.at += timedelta(days=1)
    assert jobs.run_one(vault) is None  # dead stays dead ...
    jobs.retry(vault, job_id)  # ... until someone queues it again
    assert jobs.run_one(vault).state is jobs.JobState.QUEUED  # type: ignore[union-attr]
    assert calls == [1, 2, 3, 1]


def test_an_unknown_kind_is_kept_with_a_plain_error(vault: Vault) -> None:
    jobs.submit(vault, "no-such-kind")
    outcome = jobs.run_one(vault)
    assert outcome is not None and "no handler" in (outcome.error or "")


def test_a_run_that_lost_its_lease_writes_nothing(
    vault: Vault, clock: SettableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker too slow for its lease: another took the job over; the slow one's commit
    is refused, so the effect happens once."""
    patient, _ = _people(vault)
    stored = photo_store.store_photo(
        vault, patient_id=patient, data=factories.jpeg(), actor=OPERATOR
    )
    slow = jobs.claim(vault, "slow-worker")
    assert slow is not None
    clock.at += timedelta(seconds=vault.settings.job_lease_seconds + 1)
    assert jobs.run_one(vault, "second-worker").state is jobs.JobState.DONE  # type: ignore[union-attr]
    ctx = jobs.JobContext(vault, slow.id, slow.kind, slow.attempt, slow.lease)
    with pytest.raises(jobs.LeaseLost), ctx.transaction() as session:  # the slow run's result
        session.add(
            Derivative(id="f" * 32, photo_id=stored.id, kind="thumbnail", blob_key="t/slow",
                       wrapped_dek=b"x", kek_id="k", format="jpeg", width=1, height=1,
                       created_at=clock.at)
        )  # fmt: skip
    assert len(_thumbnails(vault, stored.id)) == 1
    assert _job(vault, thumbnails.job_key(stored.id)).attempts == 2


def test_postgresql_claims_skip_a_job_another_worker_has_locked(
    vault: Vault, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("FOR UPDATE SKIP LOCKED is PostgreSQL's")
    first, second = jobs.submit(vault, "a"), jobs.submit(vault, "b")
    held = threading.Event()
    release = threading.Event()
    taken: list[str | None] = []

    def hold_first() -> None:
        with vault.sessions.begin() as session:  # a worker in the middle of claiming `first`
            session.scalars(select(Job).where(Job.id == first).with_for_update()).one()
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_first)
    holder.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        claimed = jobs.claim(vault, "other")
        taken.append(claimed.id if claimed else None)
        assert time.monotonic() - started < 5  # it did not wait for the lock (held 10 s)
    finally:
        release.set()
        holder.join()
    assert taken == [second]


def test_a_photo_deleted_while_its_thumbnail_is_being_listed_loses_the_thumbnail_too(
    vault: Vault, database_url: str
) -> None:
    """The shred holds the photo row before it lists derivatives, so a thumbnail listed
    in a transaction still open when the deletion starts is shredded with the photo."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: the two transactions cannot interleave")
    patient, _ = _people(vault)
    stored = photo_store.store_photo(
        vault, patient_id=patient, data=factories.jpeg(), actor=OPERATOR
    )
    listed, deleting = threading.Event(), threading.Event()

    @contextlib.contextmanager
    def slow_commit() -> Iterator[Any]:
        with vault.sessions.begin() as session:
            yield session  # the job locked the photo and added the thumbnail row
            session.flush()
            listed.set()
            assert deleting.wait(10)
            time.sleep(0.5)  # the deletion is now waiting for the photo row (or, unfixed,
            # has already listed the derivatives without this one)

    def delete() -> None:
        assert listed.wait(10)
        deleting.set()
        photo_shredding.delete_photo(vault, photo_id=stored.id, actor=OPERATOR, reason="asked to")

    deleter = threading.Thread(target=delete)
    deleter.start()
    assert thumbnails.make_thumbnail(vault, stored.id, transaction=slow_commit)
    deleter.join(20)
    (thumb,) = _thumbnails(vault, stored.id)
    assert thumb.deleted_at is not None and thumb.wrapped_dek is None
    assert not vault.blobs.exists(thumb.blob_key)


# -- real worker processes ---------------------------------------------------------------


def _worker_env(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SKINVAULT_DATA_DIR": str(tmp_path / "data"),
        "SKINVAULT_DATABASE_URL": database_url,
        "SKINVAULT_JOB_POLL_SECONDS": "0.2",
        **extra,
    }


def _wait_for(check: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def real_vault(database_url: str, tmp_path: Path) -> Iterator[Vault]:
    """A vault on the system clock, shared with worker processes through the data dir."""
    v = bootstrap(_settings(database_url, tmp_path), create=True)
    yield v
    v.close()


def test_a_job_survives_a_worker_killed_mid_job(
    real_vault: Vault, database_url: str, tmp_path: Path
) -> None:
    vault = real_vault
    patient, lee = _people(vault)
    stored = photo_store.store_photo(
        vault, patient_id=patient, data=factories.jpeg(), actor=OPERATOR
    )
    with vault.reading() as session:
        from skinvault.db.models import Photo

        blob_key = session.get(Photo, stored.id).blob_key  # type: ignore[union-attr]
    # The photo's blob becomes a FIFO: the worker blocks reading it, mid-job, for certain.
    path = vault.blobs._path(blob_key)  # type: ignore[attr-defined]
    real = path.read_bytes()
    path.unlink()
    os.mkfifo(path)
    env = _worker_env(database_url, tmp_path, SKINVAULT_JOB_LEASE_SECONDS="2")
    worker = [sys.executable, "-m", "skinvault", "worker"]
    first = subprocess.Popen(worker, env=env, stderr=subprocess.DEVNULL)
    try:
        key = thumbnails.job_key(stored.id)
        _wait_for(lambda: _job(vault, key).state == "running", "the first worker to take the job")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    path.unlink()
    path.write_bytes(real)
    assert _job(vault, key).state == "running"  # nobody finished it

    second = subprocess.Popen(worker, env=env, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _job(vault, key).state == "done", "the second worker to finish it")
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    job = _job(vault, key)
    assert job.attempts == 2  # the killed try and the one that finished
    assert len(_thumbnails(vault, stored.id)) == 1  # exactly once in effect
    got = thumbnails.read_preview(vault, photo_id=stored.id, actor=lee, purpose="care")
    assert isinstance(got, photo_reads.PhotoBytes)


def test_two_workers_on_postgresql_never_run_the_same_job_twice(
    real_vault: Vault, database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("two processes claiming at once: PostgreSQL's SKIP LOCKED")
    vault = real_vault
    patient, _ = _people(vault)
    stored = [
        photo_store.store_photo(vault, patient_id=patient, data=factories.jpeg(), actor=OPERATOR)
        for _ in range(16)
    ]
    env = _worker_env(database_url, tmp_path)
    run = [sys.executable, "-m", "skinvault", "jobs", "run"]
    procs = [subprocess.Popen(run, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    ran = [int(o.split("Ran ")[1].split()[0]) for o in outs]
    assert sum(ran) == 16  # every job ran once in all, whoever took it
    with vault.reading() as session:
        assert {j.attempts for j in session.scalars(select(Job))} == {1}
    for s in stored:
        assert len(_thumbnails(vault, s.id)) == 1


# -- what a user sees ---------------------------------------------------------------------


def test_thumbnail_routes_while_pending_answer_a_placeholder_never_a_5xx(
    database_url: str, tmp_path: Path
) -> None:
    from tests.integration.test_api import PASSWORD as API_PASSWORD
    from tests.integration.test_api import _make

    app = create_app(_settings(database_url, tmp_path))
    vault = app.state.vault
    client = TestClient(app)
    try:
        ann = _make(vault, Role.PATIENT, "ann@example.org", "Ann")
        token = client.post(
            "/api/v1/auth/token", json={"email": ann.email, "password": API_PASSWORD}
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        up = client.post(
            f"/api/v1/patients/{ann.patient_id}/photos",
            headers=auth,
            files={"file": ("IMG_0001.jpg", factories.jpeg(), "image/jpeg")},
        )
        assert up.status_code == 201, up.text
        photo_id = up.json()["id"]
        url = f"/api/v1/photos/{photo_id}/thumbnail?purpose=care"
        pending = client.get(url, headers=auth)
        assert pending.status_code == 202
        assert pending.json()["status"] == "being prepared"
        assert pending.headers["retry-after"] == "2"

        signin = client.post(
            "/login", data={"email": ann.email, "password": API_PASSWORD}, follow_redirects=False
        )
        assert signin.status_code == 303, signin.text
        portal = client.get(f"/portal/photos/{photo_id}/thumbnail?purpose=care")
        assert portal.status_code == 200, portal.text
        assert portal.headers["content-type"].startswith("image/svg+xml")
        assert b"Preview being prepared" in portal.content

        jobs.run_pending(vault)
        ready = client.get(url, headers=auth)
        assert ready.status_code == 200 and ready.content.startswith(b"\xff\xd8")
        portal = client.get(f"/portal/photos/{photo_id}/thumbnail?purpose=care")
        assert portal.headers["content-type"] == "image/jpeg"
    finally:
        client.close()
        vault.close()


def test_the_app_runs_the_jobs_itself_with_nothing_else_started(
    database_url: str, tmp_path: Path
) -> None:
    """The embedded default: ``serve``'s own worker thread makes the thumbnail."""
    settings = load_settings(
        data_dir=tmp_path / "data", database_url=database_url, job_poll_seconds=0.2
    )
    app = create_app(settings)
    vault = app.state.vault
    try:
        patient, _lee = _people(vault)
        with TestClient(app):  # the lifespan starts (and stops) the worker thread
            stored = photo_store.store_photo(
                vault, patient_id=patient, data=factories.jpeg(), actor=OPERATOR
            )
            _wait_for(lambda: _thumbnails(vault, stored.id), "the in-process worker", 20)
        assert jobs.status(vault).counts["done"] >= 1
    finally:
        vault.close()


def test_a_heic_upload_gets_its_display_copy_ahead_of_the_first_view(vault: Vault) -> None:
    patient, _ = _people(vault)
    stored = photo_store.store_photo(
        vault, patient_id=patient, data=factories.heif(), actor=OPERATOR
    )
    assert stored.format == "heif"
    assert jobs.run_pending(vault) == 2  # its thumbnail and its display copy
    with vault.reading() as session:
        kinds = set(
            session.scalars(select(Derivative.kind).where(Derivative.photo_id == stored.id))
        )
    assert kinds == {"thumbnail", "display"}
    assert jobs.status(vault).counts["dead"] == 0


def _heic(
    size: tuple[int, int] = (400, 300), orientation: int = 6, profile: bytes | None = None
) -> bytes:
    """A noisy HEVC HEIF with an ICC profile (LittleCMS's sRGB unless ``profile``) and an
    EXIF orientation that turns it."""
    import pillow_heif
    from PIL import Image, ImageCms

    pixels = Image.effect_noise(size, 60).convert("RGB")
    pixels.info["icc_profile"] = (
        profile or ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    )
    heif_file = pillow_heif.from_pillow(pixels)
    heif_file.info["exif"] = factories.gps_exif(orientation)
    out = io.BytesIO()
    heif_file.save(out)
    return out.getvalue()


def _display_bytes(vault: Vault, photo_id: str) -> bytes:
    with vault.reading() as session:
        row = session.scalars(
            select(Derivative).where(Derivative.photo_id == photo_id, Derivative.kind == "display")
        ).one()
        derivative_id, blob_key, wrapped = row.id, row.blob_key, row.wrapped_dek
    assert wrapped is not None
    return photo_reads.decrypt_blob(vault, object_id=derivative_id, kind="display",
                                    blob_key=blob_key, wrapped=wrapped)  # fmt: skip


def test_a_heic_display_version_is_made_from_the_pixels_the_upload_decoded(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A HEIC upload is decoded in full (no scaled HEVC decoding): its display-version job
    in the same process uses those pixels — it succeeds with the photo's blob gone (so it
    neither decrypted nor decoded it) and makes byte for byte the version a job that
    decodes the photo again makes (turned upright by its EXIF orientation)."""
    from PIL import Image

    monkeypatch.setattr(thumbnails, "_HANDOFF_PIXELS", 100)
    vault = bootstrap(_settings(database_url, tmp_path, thumbnail_size=32), create=True)
    try:
        patient, _ = _people(vault)
        data = _heic()
        handed = photo_store.store_photo(vault, patient_id=patient, data=data, actor=OPERATOR)
        decoded = photo_store.store_photo(vault, patient_id=patient, data=data, actor=OPERATOR)
        assert thumbnails.full_pixels(decoded.id) is not None  # this one decodes in its job
        assert thumbnails._handed_over(decoded.id) is not None
        assert thumbnails._full[handed.id][2].size == (300, 400)  # whole and upright
        with vault.reading() as session:
            blob_key = session.get(Photo, handed.id).blob_key  # type: ignore[union-attr]
        vault.blobs.delete(blob_key)

        assert jobs.run_pending(vault) == 4  # two thumbnails, two display versions
        assert jobs.status(vault).counts["dead"] == 0
        made = [_display_bytes(vault, p.id) for p in (handed, decoded)]
        assert made[0] == made[1]
        shown = Image.open(io.BytesIO(made[0]))
        assert shown.format == "JPEG" and shown.size == (300, 400)
        assert handed.id not in thumbnails._full  # taken by its job
    finally:
        vault.close()


def test_a_display_p3_heic_keeps_its_scrubbed_profile_in_thumbnail_and_display_version(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An iPhone's Display P3 profile (ICC v4, taken from the corpus HEIC) stays with the
    photo's copies: the thumbnail and the display JPEG carry the profile of the stored,
    scrubbed photo byte for byte (its colour tags, neutral text, none of Apple's), made
    from the pixels the upload decoded or from a second decode alike (the display
    versions byte for byte the same)."""
    import pillow_heif
    from PIL import Image

    from skinvault.photos import icc
    from skinvault.photos.scrub import scrub
    from tests.conftest import icc_profile

    pillow_heif.register_heif_opener()
    corpus = Path(__file__).parents[1] / "data" / "corpus"
    with Image.open(corpus / "005-heic-mobile-iphone-13-pro-max.heic") as iphone:
        p3 = bytes(iphone.info["icc_profile"])
    monkeypatch.setattr(thumbnails, "_HANDOFF_PIXELS", 100)
    vault = bootstrap(_settings(database_url, tmp_path, thumbnail_size=32), create=True)
    try:
        patient, lee = _people(vault)
        data = _heic(profile=p3)
        stored_profile = icc_profile(scrub(data)[0])  # what the stored photo carries
        assert stored_profile == icc.rebuild(p3) and b"Apple" not in stored_profile
        handed = photo_store.store_photo(vault, patient_id=patient, data=data, actor=OPERATOR)
        decoded = photo_store.store_photo(vault, patient_id=patient, data=data, actor=OPERATOR)
        thumbnails.full_pixels(decoded.id), thumbnails._handed_over(decoded.id)  # decodes again
        assert jobs.run_pending(vault) == 4
        assert jobs.status(vault).counts["dead"] == 0
        shown = [_display_bytes(vault, p.id) for p in (handed, decoded)]
        previews = [
            thumbnails.read_preview(vault, photo_id=p.id, actor=lee, purpose="care")
            for p in (handed, decoded)
        ]
        assert shown[0] == shown[1]
        assert icc_profile(shown[0]) == stored_profile
        # (The handed thumbnail's pixels were reduced by a whole factor first, so they may
        # differ from a fresh decode's by a level; its profile may not.)
        for preview in previews:
            assert isinstance(preview, photo_reads.PhotoBytes)
            assert icc_profile(preview.data) == stored_profile
    finally:
        vault.close()


def test_full_decodes_are_kept_within_their_budget_and_only_for_display_formats(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst keeps the oldest full decodes that fit (jobs run oldest first); a PNG, which
    gets no display version, loses its full decode when its thumbnail job runs."""
    from collections import OrderedDict

    from PIL import Image

    monkeypatch.setattr(thumbnails, "_HANDOFF_PIXELS", 100)
    monkeypatch.setattr(thumbnails, "FULL_BUDGET", 400 * 300 * 4)  # one of these photos
    monkeypatch.setattr(thumbnails, "_full", OrderedDict())  # none left by earlier tests
    vault = bootstrap(_settings(database_url, tmp_path, thumbnail_size=32), create=True)
    try:
        patient, _ = _people(vault)
        first, _second = (photo_store.store_photo(vault, patient_id=patient, data=_heic(),
                                             actor=OPERATOR) for _ in range(2))  # fmt: skip
        assert list(thumbnails._full) == [first.id]
        assert jobs.run_pending(vault) == 4  # the second decodes its photo again
        assert jobs.status(vault).counts["dead"] == 0
        assert not thumbnails._full

        out = io.BytesIO()
        Image.effect_noise((400, 300), 60).convert("RGB").save(out, "PNG")
        png = photo_store.store_photo(
            vault, patient_id=patient, data=out.getvalue(), actor=OPERATOR
        )
        assert png.id in thumbnails._full
        assert jobs.run_pending(vault) == 1  # its thumbnail only
        assert png.id not in thumbnails._full
    finally:
        vault.close()


def test_a_server_without_job_threads_keeps_no_pixels_for_jobs(
    database_url: str, tmp_path: Path
) -> None:
    """``job_threads = 0``: a separate worker runs the jobs, so the uploads this process
    takes leave nothing in its memory; once it stops, a process that runs jobs keeps them."""
    settings = load_settings(data_dir=tmp_path / "data", database_url=database_url,
                             job_threads=0)  # fmt: skip
    app = create_app(settings)
    vault = app.state.vault
    try:
        patient, _ = _people(vault)
        with TestClient(app):  # the lifespan starts its Workers, with no threads
            assert not jobs.jobs_run_here()
            stored = [photo_store.store_photo(vault, patient_id=patient, data=data, actor=OPERATOR)
                      for data in (factories.png(), _heic((2100, 2100)))]  # fmt: skip
            assert not any(p.id in thumbnails._handoff or p.id in thumbnails._full
                           for p in stored)  # fmt: skip
        assert jobs.jobs_run_here()
        threaded = jobs.Workers(vault, threads=1, poll=60)
        idle = jobs.Workers(vault, threads=0)
        threaded.start()
        idle.start()
        try:
            assert jobs.jobs_run_here()  # some thread here runs jobs
        finally:
            idle.stop()
            threaded.stop()
        after = photo_store.store_photo(vault, patient_id=patient, data=factories.png(),
                                   actor=OPERATOR)  # fmt: skip
        assert after.id in thumbnails._handoff
        jobs.run_pending(vault)  # (the threaded Workers may have run some already)
        assert jobs.status(vault).counts["dead"] == 0
        assert all(len(_thumbnails(vault, p.id)) == 1 for p in [*stored, after])
    finally:
        vault.close()


def test_a_periodic_kind_is_enqueued_once_per_period_whoever_schedules_it(
    vault: Vault, clock: SettableClock
) -> None:
    def purges() -> int:
        with vault.reading() as session:
            return len(list(session.scalars(select(Job).where(Job.kind == "jobs_purge"))))

    every = (jobs.Periodic("jobs_purge", 3600),)
    one, other = (jobs.Workers(vault, threads=0, periodic=every) for _ in range(2))
    one._schedule()
    one._schedule()
    other._schedule()  # another process, the same hour
    assert purges() == 1
    clock.at += timedelta(hours=1)
    other._schedule()
    assert purges() == 2
    assert jobs.run_pending(vault) == 2
