"""Promises an outside mutation test found unguarded (issue 17), on SQLite and PostgreSQL.

- A single-use link is consumed by a conditional ``UPDATE … WHERE used_at IS NULL``: the
  guard that makes two opens racing past the first check let exactly one through. On
  PostgreSQL the threaded race in test_sharing.py reaches it; on SQLite writers queue, so
  here the race is set up by hand: the link is read while unused, another open uses it,
  and the first open's consume must still be refused.
- The teaching/research library follows the consent decision: withdrawing (or an
  expired, or a narrower-scoped consent) takes a patient's photos out of it at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.db.models import ShareLink
from skinvault.errors import AccessDenied, LinkUnavailable, SkinvaultError
from skinvault.policy.purposes import Purpose
from skinvault.services import (
    admin,
    consents,
    photo_reads,
    photo_store,
    records,
    share_open,
    sharing,
)
from skinvault.services.care import start_care
from tests import factories

OPERATOR = Actor.system("test")


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


@dataclass
class World:
    vault: Vault
    clock: Clock
    lee: Actor
    ng: Actor
    patients: dict[str, tuple[Actor, str, str]]  # name -> (actor, patient id, photo id)


def _user(vault: Vault, role: Role, email: str) -> tuple[Actor, str | None]:
    made = admin.create_user(
        vault, role=role, email=email, password="a long passphrase", actor=OPERATOR, name=email
    )
    return Actor(made.user_id, role, email), made.patient_id


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    clock = Clock()
    vault = bootstrap(
        load_settings(data_dir=tmp_path / "data", database_url=database_url),
        create=True,
        clock=clock,
    )
    lee, _ = _user(vault, Role.CLINICIAN, "lee@clinic.example")
    ng, _ = _user(vault, Role.EDUCATOR, "ng@uni.example")
    patients = {}
    for name in ("ann", "bea", "cat"):
        actor, pid = _user(vault, Role.PATIENT, f"{name}@example.org")
        assert pid
        start_care(vault, patient_id=pid, member_id=lee.id, actor=OPERATOR)
        stored = photo_store.store_photo(
            vault, patient_id=pid, data=factories.jpeg(), actor=lee, site="left-hand"
        )
        patients[name] = (actor, pid, stored.id)
    yield World(vault, clock, lee, ng, patients)
    vault.close()


def test_a_single_use_link_read_while_unused_is_not_consumed_twice(world: World) -> None:
    ann, _pid, photo_id = world.patients["ann"]
    link = sharing.create_share_link(
        world.vault, photo_id=photo_id, actor=ann, recipient="gp@surgery.example",
        expires_in=timedelta(days=1),
    )  # fmt: skip
    # Open A has read the link: unused.
    with world.vault.reading() as session:
        seen = session.scalars(select(ShareLink).where(ShareLink.id == link.id)).one()
        assert seen.single_use and seen.used_at is None
    # Open B gets there first, through the real path.
    assert share_open.open_share_link(world.vault, token=link.token).data
    # Open A now consumes with what it read: the guard must refuse it.
    with world.vault.sessions.begin() as session:
        late = share_open._consume(session, seen, world.clock.now())
    assert isinstance(late, LinkUnavailable), late
    assert str(late) == "this link has already been used"
    with world.vault.reading() as session:
        used = session.get(ShareLink, link.id)
        assert used is not None and used.used_at is not None
    with pytest.raises(LinkUnavailable):
        share_open.open_share_link(world.vault, token=link.token)


def _library(world: World, purpose: Purpose = Purpose.TEACHING) -> set[str]:
    return {p.id for p in records.library(world.vault, actor=world.ng, purpose=purpose)}


def _readable(world: World, photo_id: str, purpose: Purpose = Purpose.TEACHING) -> bool:
    try:
        photo_reads.read_photo(world.vault, photo_id=photo_id, actor=world.ng, purpose=purpose)
    except AccessDenied:
        return False
    except SkinvaultError as exc:  # a consent refusal is a denial too
        assert "consent" in str(exc).lower(), exc
        return False
    return True


def test_withdrawing_consent_takes_the_photos_out_of_the_library_at_once(world: World) -> None:
    ann, ann_pid, ann_photo = world.patients["ann"]
    bea, bea_pid, bea_photo = world.patients["bea"]
    cat, cat_pid, cat_photo = world.patients["cat"]
    for actor, pid in ((ann, ann_pid), (bea, bea_pid)):
        consents.record_consent(
            world.vault, patient_id=pid, purpose=Purpose.TEACHING, granted=True, actor=actor
        )
    consents.record_consent(
        world.vault, patient_id=cat_pid, purpose=Purpose.TEACHING, granted=True, actor=cat,
        expires_at=world.clock.now() + timedelta(days=30),
    )  # fmt: skip
    assert _library(world) == {ann_photo, bea_photo, cat_photo}
    assert _library(world, Purpose.RESEARCH) == set()  # teaching consent is not research

    consents.record_consent(
        world.vault, patient_id=bea_pid, purpose=Purpose.TEACHING, granted=False, actor=bea
    )
    assert _library(world) == {ann_photo, cat_photo}
    assert not _readable(world, bea_photo) and _readable(world, ann_photo)

    world.clock.at += timedelta(days=31)  # Cat's consent ran out
    assert _library(world) == {ann_photo}
    assert not _readable(world, cat_photo)
