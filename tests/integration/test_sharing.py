"""Share links end to end on SQLite and PostgreSQL: policy, tokens, expiry, revocation, races."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from skinvault.actors import Actor, Role
from skinvault.audit.log import tail
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.db.models import AuditEvent, Base, ShareLink
from skinvault.errors import (
    AccessDenied,
    ConfigError,
    LinkLocked,
    LinkPasswordWrong,
    LinkUnavailable,
    NotFound,
    RequestInvalid,
    SkinvaultError,
    TooManyLinkTries,
)
from skinvault.policy.purposes import Purpose
from skinvault.services import (
    admin,
    consents,
    history,
    photo_reads,
    photo_shredding,
    photo_store,
    share_open,
    sharing,
)
from skinvault.services.care import start_care
from tests import factories

OPERATOR = Actor.system("test")
GP = "gp@surgery.example"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.at = datetime(2026, 5, 3, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class Clinic:
    vault: Vault
    clock: Clock
    patient_id: str
    patient: Actor
    lee: Actor
    ng: Actor
    photo_id: str


def _user(vault: Vault, role: Role, email: str, name: str) -> tuple[Actor, str | None]:
    made = admin.create_user(
        vault, role=role, email=email, password="a long passphrase", actor=OPERATOR, name=name
    )
    return Actor(made.user_id, role, name), made.patient_id


@pytest.fixture
def clinic(database_url: str, tmp_path: Path) -> Iterator[Clinic]:
    clock = Clock()
    settings = load_settings(data_dir=tmp_path / "data", database_url=database_url)
    vault = bootstrap(settings, create=True, clock=clock)
    patient, patient_id = _user(vault, Role.PATIENT, "ann@example.org", "Ann")
    assert patient_id
    lee, _ = _user(vault, Role.CLINICIAN, "lee@clinic.example", "Dr. Lee")
    ng, _ = _user(vault, Role.EDUCATOR, "ng@uni.example", "Prof. Ng")
    start_care(vault, patient_id=patient_id, member_id=lee.id, actor=OPERATOR)
    stored = photo_store.store_photo(
        vault, patient_id=patient_id, data=factories.jpeg(), actor=lee, site="left-hand"
    )
    clock.advance(days=1)
    yield Clinic(vault, clock, patient_id, patient, lee, ng, stored.id)
    vault.close()


def _share(c: Clinic, **kwargs: object) -> sharing.NewLink:
    options: dict[str, object] = {"expires_in": timedelta(days=2), "recipient": GP}
    options.update(kwargs)
    return sharing.create_share_link(
        c.vault,
        photo_id=c.photo_id,
        actor=c.patient,
        **options,  # type: ignore[arg-type]
    )


def test_patient_shares_own_photo_and_recipient_gets_the_scrubbed_bytes_once(
    clinic: Clinic,
) -> None:
    c = clinic
    link = _share(c)
    assert link.expires_at == c.clock.at + timedelta(days=2)
    status = sharing.link_status(c.vault, link.token)
    assert (status.state, status.recipient, status.needs_password) == ("ok", GP, False)
    assert sharing.link_status(c.vault, link.token).state == "ok"  # looking consumes nothing

    got = share_open.open_share_link(c.vault, token=link.token)
    stored = photo_reads.read_photo(c.vault, photo_id=c.photo_id, actor=c.patient, purpose="care")
    assert got.data == stored.data and got.media_type == "image/jpeg"

    with pytest.raises(LinkUnavailable, match=r"^this link has already been used$"):
        share_open.open_share_link(c.vault, token=link.token)
    assert sharing.link_status(c.vault, link.token).state == "used"
    with pytest.raises(NotFound, match=r"^this link does not exist$"):
        share_open.open_share_link(c.vault, token=link.token + "x")
    assert sharing.link_status(c.vault, "nonsense").state == "missing"
    assert admin.verify_audit(c.vault).count > 0


def test_a_multi_use_link_opens_until_it_expires_to_the_second(clinic: Clinic) -> None:
    c = clinic
    link = _share(c, single_use=False, expires_in=timedelta(hours=1))
    first = c.clock.at
    assert share_open.open_share_link(c.vault, token=link.token).data
    c.clock.at = link.expires_at - timedelta(seconds=1)
    assert share_open.open_share_link(c.vault, token=link.token).data
    c.clock.at = link.expires_at
    with pytest.raises(LinkUnavailable, match=r"^this link expired on 4 May 2026 at 10:00:00 UTC$"):
        share_open.open_share_link(c.vault, token=link.token)
    assert sharing.link_status(c.vault, link.token).state == "expired"
    [entry] = sharing.sent_log(c.vault, c.patient_id)
    assert (entry.state, entry.opened_at, entry.channel) == ("expired", first, "link")


def test_lifetimes_outside_five_minutes_to_thirty_days_are_refused(clinic: Clinic) -> None:
    with pytest.raises(ConfigError, match="between 5 minutes and 30 days"):
        _share(clinic, expires_in=timedelta(minutes=4))
    with pytest.raises(ConfigError, match="between 5 minutes and 30 days"):
        _share(clinic, expires_in=timedelta(days=30, seconds=1))
    assert _share(clinic, expires_in=timedelta(minutes=5)).token
    assert _share(clinic, expires_in=timedelta(days=30)).token


def test_a_revoked_link_is_refused_and_only_sender_or_patient_may_revoke(clinic: Clinic) -> None:
    c = clinic
    by_lee = sharing.create_share_link(
        c.vault, photo_id=c.photo_id, actor=c.lee, recipient="derm@hospital.example",
        expires_in=timedelta(days=1),
    )  # fmt: skip
    mine = _share(c)
    stranger, _ = _user(c.vault, Role.PATIENT, "bob@example.org", "Bob")
    for link in (by_lee, mine):
        with pytest.raises(AccessDenied, match="Only the person who sent a link"):
            sharing.revoke_share_link(c.vault, link_id=link.id, actor=stranger)
    with pytest.raises(AccessDenied):
        sharing.revoke_share_link(c.vault, link_id=mine.id, actor=c.ng)
    sharing.revoke_share_link(c.vault, link_id=by_lee.id, actor=c.patient)  # the patient's photo
    sharing.revoke_share_link(c.vault, link_id=mine.id, actor=c.patient)  # the sender
    sharing.revoke_share_link(c.vault, link_id=mine.id, actor=c.patient)  # twice is harmless
    for link in (by_lee, mine):
        with pytest.raises(LinkUnavailable, match=r"^this link was withdrawn by the sender$"):
            share_open.open_share_link(c.vault, token=link.token)
        assert sharing.link_status(c.vault, link.token).state == "revoked"
    assert [e.state for e in sharing.sent_log(c.vault, c.patient_id)] == ["revoked", "revoked"]


def test_a_password_link_needs_the_right_password_and_a_wrong_one_costs_nothing(
    clinic: Clinic,
) -> None:
    c = clinic
    link = _share(c, password="correct horse")
    assert sharing.link_status(c.vault, link.token).needs_password
    for missing in (None, ""):
        with pytest.raises(LinkPasswordWrong, match=r"^this link needs its password$"):
            share_open.open_share_link(c.vault, token=link.token, password=missing)
    with pytest.raises(LinkPasswordWrong, match=r"^that is not this link's password$"):
        share_open.open_share_link(c.vault, token=link.token, password="wrong horse")
    assert share_open.open_share_link(c.vault, token=link.token, password="correct horse").data
    with c.vault.sessions() as session:
        row = session.get(ShareLink, link.id)
        assert row is not None and row.password_hash
        assert row.password_hash.startswith("$argon2id$")
    refused = [e for e in history.access_history(c.vault, c.patient_id) if e.actor == GP]
    assert [e.outcome for e in refused] == ["denied", "denied", "denied", "allowed"]


def test_deleting_the_photo_ends_its_links(clinic: Clinic) -> None:
    c = clinic
    link = _share(c)
    photo_shredding.delete_photo(
        c.vault, photo_id=c.photo_id, actor=c.patient, reason="no longer needed"
    )
    with pytest.raises(LinkUnavailable, match=r"^the photo behind this link has been deleted$"):
        share_open.open_share_link(c.vault, token=link.token)
    assert sharing.link_status(c.vault, link.token).state == "deleted"


def test_secondary_uses_never_share_even_with_consent(clinic: Clinic) -> None:
    c = clinic
    consents.record_consent(
        c.vault, patient_id=c.patient_id, purpose=Purpose.TEACHING, granted=True, actor=c.patient
    )
    c.clock.advance(seconds=1)
    assert photo_reads.read_photo(c.vault, photo_id=c.photo_id, actor=c.ng, purpose="teaching").data
    with pytest.raises(AccessDenied, match="cannot be shared onward"):
        sharing.create_share_link(
            c.vault, photo_id=c.photo_id, actor=c.ng, recipient=GP,
            expires_in=timedelta(days=1), purpose="teaching",
        )  # fmt: skip
    stranger, _ = _user(c.vault, Role.PATIENT, "bob@example.org", "Bob")
    with pytest.raises(AccessDenied, match="only their own photos"):
        sharing.create_share_link(
            c.vault, photo_id=c.photo_id, actor=stranger, recipient=GP,
            expires_in=timedelta(days=1),
        )  # fmt: skip
    with c.vault.sessions() as session:
        assert session.scalars(select(ShareLink)).all() == []
        denied = session.scalars(select(AuditEvent).where(AuditEvent.action == "photo:share")).all()
    assert [e.outcome for e in denied] == ["denied", "denied"]


def test_the_token_is_stored_nowhere_in_plaintext(clinic: Clinic) -> None:
    c = clinic
    link = _share(c, password="correct horse")
    assert len(link.token) >= 43  # 32 random bytes, URL-safe base64
    share_open.open_share_link(c.vault, token=link.token, password="correct horse")
    with c.vault.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(table.select()):
                for value in row:
                    text = value.hex() if isinstance(value, bytes) else str(value)
                    assert link.token not in text, table.name
                    assert "correct horse" not in text, table.name


def test_concurrent_opens_of_a_single_use_link_let_exactly_one_through(clinic: Clinic) -> None:
    c = clinic
    link = _share(c)
    threads = 6
    barrier = threading.Barrier(threads)
    results: list[object] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        try:
            got: object = share_open.open_share_link(c.vault, token=link.token)
        except SkinvaultError as exc:
            got = exc
        with lock:
            results.append(got)

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    opened = [r for r in results if isinstance(r, photo_reads.PhotoBytes)]
    refused = [r for r in results if isinstance(r, LinkUnavailable)]
    assert len(opened) == 1 and len(refused) == threads - 1, results
    assert all(str(r) == "this link has already been used" for r in refused)
    assert admin.verify_audit(c.vault).count > 0


def test_sent_log_and_access_history_show_links_and_their_opens(clinic: Clinic) -> None:
    c = clinic
    opened = _share(c)
    pending = _share(c, recipient="mum@example.org", expires_in=timedelta(days=7))
    revoked = _share(c, recipient="old@example.org")
    sharing.revoke_share_link(c.vault, link_id=revoked.id, actor=c.patient)
    c.clock.advance(minutes=3)
    share_open.open_share_link(c.vault, token=opened.token)
    c.clock.advance(days=3)  # the first link's lifetime is over; used wins over expired
    log = {e.link_id: e for e in sharing.sent_log(c.vault, c.patient_id)}
    assert [log[x.id].state for x in (opened, pending, revoked)] == ["used", "ok", "revoked"]
    assert log[opened.id].opened_at is not None and log[pending.id].opened_at is None
    assert log[pending.id].recipient == "mum@example.org"

    entries = history.access_history(c.vault, c.patient_id)
    shares = [e for e in entries if e.action == "photo:share" and e.outcome == "done"]
    assert len(shares) == 3 and all(e.actor == "You" for e in shares)
    opens = [e for e in entries if e.actor == GP]
    assert [e.outcome for e in opens] == ["allowed"]
    assert "left hand photo" in opens[0].text
    assert admin.verify_audit(c.vault).count > 0


def test_a_clinicians_link_stops_working_when_their_care_ends(
    database_url: str, tmp_path: Path
) -> None:
    from skinvault.services.care import end_care

    clock = Clock()
    vault = bootstrap(
        load_settings(data_dir=tmp_path / "d", database_url=database_url), create=True, clock=clock
    )
    made = admin.create_user(
        vault,
        role=Role.PATIENT,
        email="p@example.org",
        password="a long passphrase",
        actor=OPERATOR,
    )
    doc = admin.create_user(
        vault,
        role=Role.CLINICIAN,
        email="d@example.org",
        password="a long passphrase",
        actor=OPERATOR,
    )
    assert made.patient_id
    start_care(vault, patient_id=made.patient_id, member_id=doc.user_id, actor=OPERATOR)
    lee = Actor(doc.user_id, Role.CLINICIAN, "Dr. Lee")
    photo = photo_store.store_photo(
        vault, patient_id=made.patient_id, data=factories.jpeg(), actor=lee
    )
    link = sharing.create_share_link(
        vault,
        photo_id=photo.id,
        actor=lee,
        recipient="GP",
        expires_in=timedelta(days=1),
        single_use=False,
    )
    assert share_open.open_share_link(vault, token=link.token).data
    end_care(vault, patient_id=made.patient_id, member_id=doc.user_id, actor=OPERATOR)
    clock.advance(seconds=1)
    with pytest.raises(LinkUnavailable, match="may no longer share"):
        share_open.open_share_link(vault, token=link.token)
    vault.close()


def test_ten_wrong_passwords_lock_the_link_until_the_sender_reissues_it(clinic: Clinic) -> None:
    c = clinic
    link = _share(c, password="correct horse", single_use=False)
    for i in range(1, 10):
        with pytest.raises(LinkPasswordWrong):
            share_open.open_share_link(c.vault, token=link.token, password=f"guess {i}")
    with pytest.raises(LinkLocked, match="locked after 10 wrong passwords"):
        share_open.open_share_link(c.vault, token=link.token, password="guess 10")
    with pytest.raises(LinkLocked):  # the right password no longer opens it
        share_open.open_share_link(c.vault, token=link.token, password="correct horse")
    assert sharing.link_status(c.vault, link.token).state == "locked"
    [entry] = sharing.sent_log(c.vault, c.patient_id)
    assert (entry.state, entry.wrong_passwords) == ("locked", 10)
    with c.vault.reading() as session:
        reasons = [
            e.reason for e in tail(session, 1000)
            if e.action == "share-link:open" and e.outcome == "denied"
        ]  # fmt: skip
    assert [r for r in reasons if "wrong password (try" in r][-1].startswith(
        "wrong password (try 10 of 10); the link is now locked"
    )

    stranger, _ = _user(c.vault, Role.PATIENT, "bob@example.org", "Bob")
    with pytest.raises(AccessDenied):
        sharing.reissue_share_link(c.vault, link_id=link.id, actor=stranger)
    new = sharing.reissue_share_link(c.vault, link_id=link.id, actor=c.patient)
    assert new.token != link.token and new.expires_at == c.clock.at + timedelta(days=2)
    assert share_open.open_share_link(c.vault, token=new.token, password="correct horse").data
    with pytest.raises(LinkUnavailable, match="withdrawn"):
        share_open.open_share_link(c.vault, token=link.token, password="correct horse")
    with pytest.raises(RequestInvalid, match="only a locked or expired link"):
        sharing.reissue_share_link(c.vault, link_id=link.id, actor=c.patient)
    assert sorted(e.state for e in sharing.sent_log(c.vault, c.patient_id)) == ["ok", "revoked"]


def test_a_right_password_gives_its_try_back(clinic: Clinic) -> None:
    c = clinic
    link = _share(c, password="correct horse", single_use=False)
    for _ in range(30):
        assert share_open.open_share_link(c.vault, token=link.token, password="correct horse").data
    [entry] = sharing.sent_log(c.vault, c.patient_id)
    assert (entry.state, entry.wrong_passwords) == ("ok", 0)


def test_refused_opens_from_one_address_are_limited_across_links(clinic: Clinic) -> None:
    c = clinic
    links = [_share(c, password="correct horse", single_use=False) for _ in range(4)]
    for i in range(30):
        with pytest.raises((LinkPasswordWrong, NotFound)):
            token = links[i % 4].token if i % 5 else "no-such-token"
            share_open.open_share_link(
                c.vault, token=token, password="guess", address="198.51.100.7"
            )
    with pytest.raises(TooManyLinkTries):
        share_open.open_share_link(
            c.vault, token=links[0].token, password="correct horse", address="198.51.100.7"
        )
    # Another address is not affected, and the window passes.
    assert share_open.open_share_link(
        c.vault, token=links[0].token, password="correct horse", address="203.0.113.9"
    ).data
    c.clock.advance(minutes=16)
    assert share_open.open_share_link(
        c.vault, token=links[0].token, password="correct horse", address="198.51.100.7"
    ).data
