"""Retention on SQLite and PostgreSQL: due to the second, idempotent, dry runs change nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from skinvault.actors import Actor, Role
from skinvault.audit.chain import Event
from skinvault.audit.log import tail
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.crypto.envelope import seal
from skinvault.db.models import AuditEvent, Derivative, Photo, ShareLink
from skinvault.errors import NotFound
from skinvault.governance_cli import retention_app
from skinvault.services import admin, jobs, photo_reads, photo_shredding, photo_store
from skinvault.services.care import start_care
from skinvault.services.retention import RetentionKind, run_retention
from tests import factories

OPERATOR = Actor.system("test")
RETENTION = Actor.system("retention")
T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
SECOND = timedelta(seconds=1)


class SettableClock:
    """A clock the test moves; never goes backwards by itself."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


@pytest.fixture
def vault(database_url: str, tmp_path: Path, clock: SettableClock) -> Iterator[Vault]:
    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        retention_clinical_photo_days=30,
        retention_teaching_copy_days=10,
        retention_share_link_days=5,
    )
    v = bootstrap(settings, create=True, clock=clock)
    yield v
    v.close()


@pytest.fixture
def clinician(vault: Vault) -> Actor:
    user = admin.create_user(
        vault,
        role=Role.CLINICIAN,
        email="lee@clinic.example",
        password="a long passphrase",
        actor=OPERATOR,
    )
    return Actor(user.user_id, Role.CLINICIAN, "Dr. Lee")


@pytest.fixture
def patient(vault: Vault, clinician: Actor) -> str:
    user = admin.create_user(
        vault,
        role=Role.PATIENT,
        email="pat@example.org",
        password="correct horse 42",
        actor=OPERATOR,
    )
    assert user.patient_id
    start_care(vault, patient_id=user.patient_id, member_id=clinician.id, actor=OPERATOR)
    return user.patient_id


def store(vault: Vault, patient: str, clinician: Actor) -> photo_store.StoredPhoto:
    stored = photo_store.store_photo(
        vault, patient_id=patient, data=factories.jpeg(), actor=clinician, site="left-hand"
    )
    jobs.run_pending(vault)  # its thumbnail, as a worker would make it
    return stored


def add_copy(vault: Vault, photo_id: str, kind: str) -> str:
    """A derivative made for secondary use (no service makes them yet): sealed like the others."""
    copy_id = vault.tokens.new_id()
    kek = vault.keys.current()
    sealed = seal(b"a de-identified copy", object_id=copy_id, kind=kind, kek=kek)
    key = f"d/{vault.clock.now():%Y%m%d%H%M%S}-{copy_id}"
    vault.blobs.put(key, sealed.blob)
    with vault.sessions.begin() as session:
        session.add(
            Derivative(
                id=copy_id,
                photo_id=photo_id,
                kind=kind,
                blob_key=key,
                wrapped_dek=sealed.wrapped_dek,
                kek_id=kek.id,
                format="jpeg",
                width=1,
                height=1,
                created_at=vault.clock.now(),
            )
        )
    return copy_id


def add_link(
    vault: Vault, photo_id: str, *, expires_at: datetime, revoked_at: datetime | None = None
) -> str:
    link_id = vault.tokens.new_id()
    with vault.sessions.begin() as session:
        session.add(
            ShareLink(
                id=link_id,
                photo_id=photo_id,
                recipient="gp@example.org",
                token_hash=vault.tokens.new_id() * 2,
                created_at=vault.clock.now(),
                expires_at=expires_at,
                revoked_at=revoked_at,
            )
        )
    return link_id


def events(vault: Vault) -> list[Event]:
    with vault.sessions() as session:
        return tail(session, 10_000)


def audit_count(vault: Vault) -> int:
    with vault.sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def photo_row(vault: Vault, photo_id: str) -> Photo:
    with vault.sessions() as session:
        row = session.get(Photo, photo_id)
        assert row is not None
        return row


def derivatives(vault: Vault, photo_id: str) -> dict[str, Derivative]:
    with vault.sessions() as session:
        rows = session.scalars(select(Derivative).where(Derivative.photo_id == photo_id))
        return {d.kind: d for d in rows}


def link_ids(vault: Vault) -> set[str]:
    with vault.sessions() as session:
        return set(session.scalars(select(ShareLink.id)))


def test_a_clinical_photo_is_shredded_when_due_and_not_a_second_before(
    vault: Vault, clock: SettableClock, patient: str, clinician: Actor
) -> None:
    stored = store(vault, patient, clinician)
    keys = {
        photo_row(vault, stored.id).blob_key,
        derivatives(vault, stored.id)["thumbnail"].blob_key,
    }
    assert keys <= set(vault.blobs.keys())

    clock.at = T0 + timedelta(days=30) - SECOND
    before = audit_count(vault)
    assert run_retention(vault, actor=RETENTION).actions == []
    assert audit_count(vault) == before
    assert photo_reads.read_photo(vault, photo_id=stored.id, actor=clinician, purpose="care").data

    clock.at = T0 + timedelta(days=30)
    before = audit_count(vault)
    report = run_retention(vault, actor=RETENTION)
    assert [(a.kind, a.object_id, a.due_at, a.done) for a in report.actions] == [
        (RetentionKind.CLINICAL_PHOTO, stored.id, T0 + timedelta(days=30), True)
    ]
    assert audit_count(vault) == before + 1
    last = events(vault)[-1]
    assert (last.action, last.object, last.outcome) == ("photo:shred", f"photo:{stored.id}", "done")
    assert last.reason == "retention: clinical photos are kept 30 days"
    assert last.actor.startswith("system:retention")
    row = photo_row(vault, stored.id)
    assert row.wrapped_dek is None and row.kek_id is None and row.deleted_at == clock.at
    thumb = derivatives(vault, stored.id)["thumbnail"]
    assert thumb.wrapped_dek is None and thumb.deleted_at == clock.at
    assert not keys & set(vault.blobs.keys())
    with pytest.raises(NotFound):
        photo_reads.read_photo(vault, photo_id=stored.id, actor=clinician, purpose="care")
    with pytest.raises(NotFound):
        photo_reads.read_thumbnail(vault, photo_id=stored.id, actor=clinician, purpose="care")
    admin.verify_audit(vault)


def test_a_second_run_finds_nothing_and_writes_nothing(
    vault: Vault, clock: SettableClock, patient: str, clinician: Actor
) -> None:
    photo = store(vault, patient, clinician)
    add_copy(vault, photo.id, "teaching")
    add_link(vault, photo.id, expires_at=T0 + timedelta(days=1))
    clock.at = T0 + timedelta(days=40)
    first = run_retention(vault, actor=RETENTION)
    assert {a.kind for a in first.actions} == {
        RetentionKind.CLINICAL_PHOTO,
        RetentionKind.SHARE_LINK,
    }  # the teaching copy goes with its photo, not as a copy of its own
    count, blobs = audit_count(vault), set(vault.blobs.keys())
    clock.at += timedelta(days=400)
    assert run_retention(vault, actor=RETENTION).actions == []
    assert run_retention(vault, actor=RETENTION, dry_run=True).actions == []
    assert audit_count(vault) == count
    assert set(vault.blobs.keys()) == blobs
    assert admin.verify_audit(vault).count == count


def test_a_dry_run_reports_what_is_due_and_changes_and_audits_nothing(
    vault: Vault, clock: SettableClock, patient: str, clinician: Actor
) -> None:
    photo = store(vault, patient, clinician)
    copy = add_copy(vault, photo.id, "deidentified")
    link = add_link(vault, photo.id, expires_at=T0 + timedelta(days=2))
    clock.at = T0 + timedelta(days=30)
    count, blobs = audit_count(vault), set(vault.blobs.keys())
    dry = run_retention(vault, actor=RETENTION, dry_run=True)
    assert dry.dry_run
    assert [(a.kind, a.object_id, a.done) for a in dry.actions] == [
        (RetentionKind.CLINICAL_PHOTO, photo.id, False),
        (RetentionKind.SHARE_LINK, link, False),
    ]
    assert audit_count(vault) == count
    assert set(vault.blobs.keys()) == blobs
    assert photo_row(vault, photo.id).wrapped_dek is not None
    assert derivatives(vault, photo.id)["deidentified"].wrapped_dek is not None
    assert link in link_ids(vault)
    assert photo_reads.read_photo(vault, photo_id=photo.id, actor=clinician, purpose="care").data

    real = run_retention(vault, actor=RETENTION)
    assert [(a.kind, a.object_id, a.done) for a in real.actions] == [
        (a.kind, a.object_id, True) for a in dry.actions
    ]
    assert derivatives(vault, photo.id)["deidentified"].wrapped_dek is None
    assert copy not in {d.id for d in derivatives(vault, photo.id).values() if d.wrapped_dek}
    admin.verify_audit(vault)


def test_teaching_copies_are_shredded_alone_on_their_own_period(
    vault: Vault, clock: SettableClock, patient: str, clinician: Actor
) -> None:
    photo = store(vault, patient, clinician)
    teaching = add_copy(vault, photo.id, "teaching")
    clock.at = T0 + timedelta(days=1)
    deidentified = add_copy(vault, photo.id, "deidentified")
    copy_keys = {d.kind: d.blob_key for d in derivatives(vault, photo.id).values()}

    clock.at = T0 + timedelta(days=10) - SECOND
    assert run_retention(vault, actor=RETENTION).actions == []

    clock.at = T0 + timedelta(days=10)
    report = run_retention(vault, actor=RETENTION)
    assert [(a.kind, a.object_id, a.due_at) for a in report.actions] == [
        (RetentionKind.TEACHING_COPY, teaching, T0 + timedelta(days=10))
    ]
    last = events(vault)[-1]
    assert (last.action, last.object) == ("copy:shred", f"derivative:{teaching}")
    assert last.reason == "retention: teaching copies are kept 10 days"
    kept = derivatives(vault, photo.id)
    assert kept["teaching"].wrapped_dek is None and kept["teaching"].deleted_at == clock.at
    assert kept["deidentified"].wrapped_dek is not None
    assert kept["thumbnail"].wrapped_dek is not None
    assert copy_keys["teaching"] not in set(vault.blobs.keys())
    assert copy_keys["deidentified"] in set(vault.blobs.keys())

    clock.at = T0 + timedelta(days=11)
    report = run_retention(vault, actor=RETENTION)
    assert [a.object_id for a in report.actions] == [deidentified]
    # The clinical photo itself is untouched by the copies' period.
    assert photo_reads.read_photo(vault, photo_id=photo.id, actor=clinician, purpose="care").data
    assert photo_reads.read_thumbnail(
        vault, photo_id=photo.id, actor=clinician, purpose="care"
    ).data
    admin.verify_audit(vault)


def test_share_link_records_go_after_the_later_of_expiry_and_revocation(
    vault: Vault, clock: SettableClock, patient: str, clinician: Actor
) -> None:
    photo = store(vault, patient, clinician)
    expired = add_link(vault, photo.id, expires_at=T0 + timedelta(days=1))
    revoked_early = add_link(
        vault, photo.id, expires_at=T0 + timedelta(days=20), revoked_at=T0 + timedelta(days=1)
    )
    revoked_late = add_link(
        vault, photo.id, expires_at=T0 + timedelta(days=2), revoked_at=T0 + timedelta(days=3)
    )

    clock.at = T0 + timedelta(days=6) - SECOND
    assert run_retention(vault, actor=RETENTION).actions == []
    clock.at = T0 + timedelta(days=6)
    assert [a.object_id for a in run_retention(vault, actor=RETENTION).actions] == [expired]
    assert link_ids(vault) == {revoked_early, revoked_late}
    last = events(vault)[-1]
    assert (last.action, last.object, last.outcome) == (
        "share-link:purge",
        f"share-link:{expired}",
        "done",
    )
    assert last.reason == "retention: records of expired or revoked share links are kept 5 days"

    clock.at = T0 + timedelta(days=8) - SECOND
    assert run_retention(vault, actor=RETENTION).actions == []
    clock.at = T0 + timedelta(days=8)
    assert [a.object_id for a in run_retention(vault, actor=RETENTION).actions] == [revoked_late]

    clock.at = T0 + timedelta(days=25) - SECOND
    assert run_retention(vault, actor=RETENTION).actions == []
    clock.at = T0 + timedelta(days=25)
    report = run_retention(vault, actor=RETENTION)
    assert [(a.object_id, a.due_at) for a in report.actions] == [
        (revoked_early, T0 + timedelta(days=25))
    ]
    assert link_ids(vault) == set()
    # A share link's purge leaves its photo alone.
    assert photo_row(vault, photo.id).wrapped_dek is not None
    admin.verify_audit(vault)


def test_a_photo_deleted_by_hand_is_not_shredded_again(
    vault: Vault, clock: SettableClock, patient: str, clinician: Actor
) -> None:
    photo = store(vault, patient, clinician)
    photo_shredding.delete_photo(vault, photo_id=photo.id, actor=clinician, reason="wrong patient")
    clock.at = T0 + timedelta(days=365)
    count = audit_count(vault)
    assert run_retention(vault, actor=RETENTION).actions == []
    assert audit_count(vault) == count


def test_the_retention_command_prints_json_and_a_dry_run_keeps_everything(
    database_url: str, tmp_path: Path
) -> None:
    """The command uses the real clock: a photo stored "in 2001" is long past 3650 days."""
    data = tmp_path / "cli"
    settings = load_settings(data_dir=data, database_url=database_url)
    old = SettableClock(datetime(2001, 1, 1, tzinfo=UTC))
    vault = bootstrap(settings, create=True, clock=old)
    try:
        user = admin.create_user(
            vault,
            role=Role.PATIENT,
            email="p@example.org",
            password="a long passphrase",
            actor=OPERATOR,
        )
        assert user.patient_id
        photo = photo_store.store_photo(
            vault, patient_id=user.patient_id, data=factories.jpeg(), actor=OPERATOR
        )
    finally:
        vault.close()
    app = typer.Typer()  # registered as in cli.py
    app.add_typer(retention_app, name="retention")
    args = ["retention", "run", "--data-dir", str(data), "--database-url", database_url]
    runner = CliRunner()

    dry = runner.invoke(app, [*args, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    body = json.loads(dry.stdout)
    assert body["dry_run"] is True
    assert [(a["kind"], a["object_id"], a["done"]) for a in body["actions"]] == [
        ("clinical-photo", photo.id, False)
    ]

    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert photo.id in done.stdout and "1 item handled" in done.stdout

    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "Nothing is due." in again.stdout
