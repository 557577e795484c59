"""Notifications on SQLite and PostgreSQL, e-mailed through a real SMTP server on loopback.

Every kind is caused by the real service that does the thing; every e-mail that reaches
the relay, and every text in the portal list, is searched for the body site, the notes,
a diagnosis word, the clinicians' names, the reason given for an emergency access and
every share-link token used in the test: none may appear.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.db.models import MailOutbox, Notification
from skinvault.errors import ConfigError, LinkRefused, NotFound
from skinvault.policy.purposes import Purpose, Scope
from skinvault.services import (
    admin,
    capture,
    consents,
    deletion,
    mailer,
    notice_sweep,
    notifications,
    photo_reads,
    photo_store,
    retention,
    share_open,
    sharing,
)
from skinvault.services.care import start_care
from skinvault.services.notifications import Kind
from tests import factories
from tests.mailserver import SilentServer, SmtpServer

OPERATOR = Actor.system("test")
BASE = "https://photos.clinic.example"
NOTE_ASK = "Please show the scar beside the suspected melanoma"
NOTE = "Bleeding since Tuesday, suspected melanoma, after the biopsy"
REASON = "Unconscious in A&E, no care team reachable"
EXPLANATION = "Erased as you asked; your eczema notes went with it."
GP = "gp@surgery.example"


class Clock:
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
    relay: SmtpServer
    patient_id: str
    patient: Actor
    lee: Actor
    two: Actor
    officer: Actor


def _user(vault: Vault, role: Role, email: str, name: str) -> tuple[Actor, str | None]:
    made = admin.create_user(
        vault, role=role, email=email, password="a long passphrase", actor=OPERATOR, name=name
    )
    return Actor(made.user_id, role, name), made.patient_id


def _vault(
    database_url: str, tmp_path: Path, clock: Clock, port: int, ca: Path | None, **extra: object
) -> Vault:
    secret = tmp_path / "smtp-password"
    secret.write_text("relay-secret\n")
    options: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "public_base_url": BASE,
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_ca_file": ca,
        "smtp_username": "relay",
        "smtp_password_file": secret,
        "smtp_timeout_seconds": 1.5,
        "mail_from": "portal@clinic.example",
        "share_link_password_tries": 2,
    }
    settings = load_settings(**(options | extra))
    return bootstrap(settings, create=True, clock=clock)


@pytest.fixture
def clinic(database_url: str, tmp_path: Path) -> Iterator[Clinic]:
    clock = Clock()
    relay = SmtpServer(tmp_path).start()
    vault = _vault(database_url, tmp_path, clock, relay.port, relay.ca)
    patient, patient_id = _user(vault, Role.PATIENT, "ann@example.org", "Annika Berg")
    assert patient_id
    lee, _ = _user(vault, Role.CLINICIAN, "lee@clinic.example", "Dr. Leandra Okafor")
    two, _ = _user(vault, Role.CLINICIAN, "two@clinic.example", "Dr. Tomasz Wielgosz")
    officer, _ = _user(vault, Role.ADMIN, "po@clinic.example", "Pat Officer")
    start_care(vault, patient_id=patient_id, member_id=lee.id, actor=OPERATOR)
    yield Clinic(vault, clock, relay, patient_id, patient, lee, two, officer)
    vault.close()
    relay.stop()


def _forbidden(c: Clinic, tokens: list[str]) -> list[str]:
    return [
        "hand",  # the body site, as code ("left-hand", "hand-left") or label ("Left hand")
        "melanoma",
        "eczema",
        "biopsy",
        "Bleeding",
        "scar",
        "Okafor",
        "Leandra",
        "Wielgosz",
        "Tomasz",
        "Unconscious",
        "A&E",
        ".jpg",
        *tokens,
    ]


def _assert_clean(texts: list[str], forbidden: list[str]) -> None:
    for text in texts:
        for word in forbidden:
            assert word.lower() not in text.lower(), f"{word!r} leaked into: {text!r}"


def _kinds(vault: Vault, user: Actor) -> set[Kind]:
    return {n.kind for n in notifications.notifications_for(vault, user_id=user.id)}


def _share(c: Clinic, photo_id: str, **kwargs: object) -> sharing.NewLink:
    options: dict[str, object] = {"expires_in": timedelta(days=2), "recipient": GP}
    options.update(kwargs)
    return sharing.create_share_link(
        c.vault,
        photo_id=photo_id,
        actor=c.patient,
        **options,  # type: ignore[arg-type]
    )


def test_every_kind_arrives_in_the_portal_and_by_mail_and_none_holds_health_information(
    clinic: Clinic,
) -> None:
    c, v = clinic, clinic.vault
    asked = capture.ask_for_photo(
        v, actor=c.lee, patient_id=c.patient_id, site="left-hand", note=NOTE_ASK
    )
    stored = photo_store.store_photo(
        v,
        patient_id=c.patient_id,
        data=factories.jpeg(),
        actor=c.patient,
        site="left-hand",
        note=NOTE,
    )
    capture.fulfil(v, request_id=asked.id, photo_id=stored.id)
    opened = _share(c, stored.id)
    share_open.open_share_link(v, token=opened.token)
    locked = _share(c, stored.id, password="correct horse battery")
    for _ in range(2):
        with pytest.raises(LinkRefused):
            share_open.open_share_link(v, token=locked.token, password="wrong guess")
    unused = _share(c, stored.id, expires_in=timedelta(hours=1))
    photo_reads.read_photo(
        v, photo_id=stored.id, actor=c.two, purpose="care", break_glass_reason=REASON
    )
    consents.record_consent(
        v,
        patient_id=c.patient_id,
        purpose=Purpose.TEACHING,
        granted=True,
        actor=c.patient,
        scopes={Scope.DEIDENTIFIED},
        expires_at=c.clock.at + timedelta(days=20),
    )
    c.clock.advance(hours=2)
    first = notice_sweep.sweep(v)
    assert (first.links_expired, first.consents_ending) == (1, 0)  # 20 days away: not yet
    c.clock.advance(days=7)
    assert notice_sweep.sweep(v).consents_ending == 1
    assert notice_sweep.sweep(v) == notice_sweep.SweepReport()  # each told once
    filed = deletion.file_request(
        v,
        patient_id=c.patient_id,
        scope=deletion.DeletionScope.PHOTO,
        scope_ref=stored.id,
        reason="Please remove it",
        actor=c.patient,
    )
    deletion.decide_request(
        v,
        request_id=filed.id,
        decision=deletion.DeletionDecision.ERASE,
        explanation=EXPLANATION,
        actor=c.officer,
    )
    retention.run_retention(v, actor=c.officer)

    assert _kinds(v, c.patient) == {
        Kind.PHOTO_ASKED,
        Kind.LINK_OPENED,
        Kind.LINK_LOCKED,
        Kind.LINK_EXPIRED,
        Kind.EMERGENCY_ACCESS,
        Kind.CONSENT_EXPIRING,
        Kind.DELETION_DECIDED,
    }
    assert _kinds(v, c.lee) == {Kind.PHOTO_ANSWERED, Kind.NEW_PHOTO}
    assert _kinds(v, c.officer) == {Kind.REVIEW_WAITING, Kind.RETENTION_RUN}
    assert _kinds(v, c.two) == set()
    decided = next(
        n
        for n in notifications.notifications_for(v, user_id=c.patient.id)
        if n.kind is Kind.DELETION_DECIDED
    )
    assert decided.text == "Your deletion request was decided: erased."
    assert decided.link == "/portal/deletion"

    delivered = mailer.deliver_due(v)
    assert delivered == mailer.Delivery(sent=11)
    assert len(c.relay.texts_for("ann@example.org")) == 7
    assert len(c.relay.texts_for("lee@clinic.example")) == 2
    assert len(c.relay.texts_for("po@clinic.example")) == 2
    assert c.relay.texts_for("two@clinic.example") == []
    assert all(authenticated for _, _, authenticated in c.relay.received)  # AUTH after STARTTLS
    forbidden = _forbidden(c, [opened.token, locked.token, unused.token, stored.id, c.patient_id])
    raw = [raw.decode("utf-8", "replace") for _, raw, _ in c.relay.received]
    _assert_clean(raw, forbidden)
    for message in c.relay.messages:
        assert message["Subject"] == "Something new in the portal"
        body = message.get_payload(decode=True)
        assert isinstance(body, bytes)
        assert f"{BASE}/login" in body.decode()
        assert "/portal/" not in body.decode()
    portal_texts = [
        n.text
        for user in (c.patient, c.lee, c.officer)
        for n in notifications.notifications_for(v, user_id=user.id)
    ]
    _assert_clean(portal_texts, forbidden)
    with v.reading() as session:  # sent bodies are erased from the outbox
        assert all(r.body_enc is None for r in session.scalars(select(MailOutbox)))


def test_the_list_counts_unread_and_marks_read_only_for_its_owner(clinic: Clinic) -> None:
    c, v = clinic, clinic.vault
    for site in ("face", "back"):
        capture.ask_for_photo(v, actor=c.lee, patient_id=c.patient_id, site=site)
        c.clock.advance(minutes=1)
    listed = notifications.notifications_for(v, user_id=c.patient.id)
    assert [n.text for n in listed] == ["Your care team asked you for a photo."] * 2
    assert listed[0].created_at > listed[1].created_at  # newest first
    assert notifications.unread_count(v, user_id=c.patient.id) == 2
    with pytest.raises(NotFound):
        notifications.mark_read(v, actor=c.lee, notification_id=listed[0].id)
    assert notifications.mark_read(v, actor=c.patient, notification_id=listed[0].id) == "/portal"
    assert notifications.unread_count(v, user_id=c.patient.id) == 1
    notifications.mark_read(v, actor=c.patient)
    assert notifications.unread_count(v, user_id=c.patient.id) == 0


def test_preferences_off_portal_and_a_daily_digest(clinic: Clinic) -> None:
    c, v = clinic, clinic.vault
    with pytest.raises(ConfigError):
        notifications.set_preferences(v, actor=c.patient, choices={"review-waiting": "off"})
    with pytest.raises(ConfigError):
        notifications.set_preferences(v, actor=c.patient, choices={"photo-asked": "loud"})
    notifications.set_preferences(v, actor=c.patient, choices={"photo-asked": "digest"})
    notifications.set_preferences(
        v, actor=c.lee, choices={"new-photo": "off", "photo-answered": "portal"}
    )
    asked = capture.ask_for_photo(v, actor=c.lee, patient_id=c.patient_id, site="face")
    stored = photo_store.store_photo(
        v, patient_id=c.patient_id, data=factories.jpeg(), actor=c.patient, site="face"
    )
    capture.fulfil(v, request_id=asked.id, photo_id=stored.id)
    c.clock.advance(hours=3)
    capture.ask_for_photo(v, actor=c.lee, patient_id=c.patient_id, site="back")
    assert _kinds(v, c.lee) == {Kind.PHOTO_ANSWERED}  # new-photo is off: not even listed
    assert notice_sweep.sweep(v).digests == 0
    assert mailer.deliver_due(v) == mailer.Delivery()  # digest waits, portal-only never mails
    c.clock.advance(hours=21)  # the oldest waiting notice is a day old
    assert notice_sweep.sweep(v).digests == 1
    assert mailer.deliver_due(v).sent == 1
    [text] = c.relay.texts_for("ann@example.org")
    assert "There are 2 new things for you in the portal." in text
    c.clock.advance(hours=1)
    capture.ask_for_photo(v, actor=c.lee, patient_id=c.patient_id, site="scalp")
    c.clock.advance(hours=23)
    assert notice_sweep.sweep(v).digests == 0  # the next digest only a day after its notice
    c.clock.advance(hours=1)
    assert notice_sweep.sweep(v).digests == 1
    # Read in the portal before the digest was due: no e-mail is needed for it.
    capture.ask_for_photo(v, actor=c.lee, patient_id=c.patient_id, site="neck")
    notifications.mark_read(v, actor=c.patient)
    c.clock.advance(days=1, minutes=1)
    assert notice_sweep.sweep(v).digests == 0


def test_a_relay_that_is_down_then_up_gets_the_mail_on_a_later_try(clinic: Clinic) -> None:
    c, v = clinic, clinic.vault
    c.relay.stop()  # refused connections
    started = time.monotonic()
    capture.ask_for_photo(v, actor=c.lee, patient_id=c.patient_id, site="face")
    # Far below the 10 s SMTP timeout a send in the request would wait; far above a
    # busy CI host's pauses.
    assert time.monotonic() - started < 5
    assert mailer.deliver_due(v) == mailer.Delivery(retrying=1)
    with v.reading() as session:
        [row] = session.scalars(select(MailOutbox)).all()
        assert row.attempts == 1 and row.last_error and row.sent_at is None
        assert row.next_attempt_at == c.clock.at + timedelta(seconds=60)
    c.relay.start()  # back, on the same port
    assert mailer.deliver_due(v) == mailer.Delivery()  # not due yet
    c.clock.advance(seconds=61)
    assert mailer.deliver_due(v) == mailer.Delivery(sent=1)
    assert len(c.relay.texts_for("ann@example.org")) == 1


def test_mail_is_given_up_after_its_attempts_and_the_waits_double(
    database_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    silent = SilentServer()
    v = _vault(
        database_url, tmp_path, clock, silent.port, None, mail_attempts=3, smtp_timeout_seconds=0.3
    )
    try:
        _, patient_id = _user(v, Role.PATIENT, "ann@example.org", "Annika Berg")
        lee, _ = _user(v, Role.CLINICIAN, "lee@clinic.example", "Dr. Leandra Okafor")
        assert patient_id
        start_care(v, patient_id=patient_id, member_id=lee.id, actor=OPERATOR)
        capture.ask_for_photo(v, actor=lee, patient_id=patient_id, site="face")
        waits = []
        for _ in range(3):
            delivered = mailer.deliver_due(v)
            with v.reading() as session:
                row = session.scalars(select(MailOutbox)).one()
            if row.next_attempt_at:
                waits.append(row.next_attempt_at - clock.at)
                clock.at = row.next_attempt_at
        assert waits == [timedelta(seconds=60), timedelta(seconds=120)]
        assert delivered == mailer.Delivery(given_up=1)
        assert row.failed_at is not None and row.body_enc is None
        assert "timed out" in (row.last_error or "").lower()
    finally:
        v.close()
        silent.close()


def test_a_hung_relay_does_not_slow_the_action_while_the_worker_waits_on_it(
    database_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    silent = SilentServer()
    v = _vault(
        database_url,
        tmp_path,
        clock,
        silent.port,
        None,
        smtp_timeout_seconds=3,
        notification_sweep_seconds=1,
    )
    worker = notice_sweep.NotificationWorker(v, seconds=0.05)
    try:
        _, patient_id = _user(v, Role.PATIENT, "ann@example.org", "Annika Berg")
        lee, _ = _user(v, Role.CLINICIAN, "lee@clinic.example", "Dr. Leandra Okafor")
        assert patient_id
        start_care(v, patient_id=patient_id, member_id=lee.id, actor=OPERATOR)
        capture.ask_for_photo(v, actor=lee, patient_id=patient_id, site="face")
        worker.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # wait until the worker is inside the SMTP wait
            if any(t.name == "skinvault-notifications" for t in threading.enumerate()):
                with v.reading() as session:
                    if session.scalars(select(MailOutbox.attempts)).first() == 1:
                        break
            time.sleep(0.02)
        timings = []
        for site in ("back", "scalp", "neck"):
            started = time.monotonic()
            capture.ask_for_photo(v, actor=lee, patient_id=patient_id, site=site)
            timings.append(time.monotonic() - started)
        assert max(timings) < 1.0, timings  # the relay's 3 s timeout is nowhere in them
        assert notifications.unread_count(v, user_id=_patient_user(v, patient_id)) == 4
    finally:
        worker.stop()
        v.close()
        silent.close()


def _patient_user(v: Vault, patient_id: str) -> str:
    from skinvault.db.models import Patient

    with v.reading() as session:
        row = session.get(Patient, patient_id)
        assert row is not None and row.user_id
        return row.user_id


def test_a_share_link_is_mailed_with_the_link_and_the_sender_only(clinic: Clinic) -> None:
    c, v = clinic, clinic.vault
    stored = photo_store.store_photo(
        v, patient_id=c.patient_id, data=factories.jpeg(), actor=c.lee, site="left-hand", note=NOTE
    )
    link = sharing.create_share_link(
        v,
        photo_id=stored.id,
        actor=c.lee,
        recipient="Dr. GP",
        expires_in=timedelta(days=1),
        password="correct horse",
    )
    with pytest.raises(NotFound):  # only the sender may mail their link
        notifications.email_share_link(v, actor=c.patient, token=link.token, to_address=GP)
    with pytest.raises(ConfigError):
        notifications.email_share_link(
            v, actor=c.lee, token=link.token, to_address="a@b.example, c@d.example"
        )
    notifications.email_share_link(v, actor=c.lee, token=link.token, to_address=GP)
    assert mailer.deliver_due(v).sent == 1
    [text] = c.relay.texts_for(GP)
    [message] = c.relay.messages
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert f"{BASE}/s/{link.token}" in body.decode()
    assert "Dr. Leandra Okafor sent you a link" in body.decode()
    _assert_clean(
        [text], ["correct horse", "hand", "melanoma", "Bleeding", "Annika", "Berg", stored.id]
    )
    with v.reading() as session:
        assert session.scalars(select(MailOutbox.body_enc)).one() is None  # the token is gone


def test_a_rolled_back_action_leaves_no_notice(clinic: Clinic) -> None:
    c, v = clinic, clinic.vault
    with pytest.raises(NotFound):
        deletion.decide_request(
            v,
            request_id="nope",
            decision=deletion.DeletionDecision.ERASE,
            explanation="x",
            actor=c.officer,
        )
    with v.reading() as session:
        assert session.scalars(select(Notification)).all() == []
        assert session.scalars(select(MailOutbox)).all() == []


def test_notices_of_a_sweep_are_kept_once_even_when_two_sweeps_race(clinic: Clinic) -> None:
    c, v = clinic, clinic.vault
    stored = photo_store.store_photo(
        v, patient_id=c.patient_id, data=factories.jpeg(), actor=c.patient, site="face"
    )
    for _ in range(3):
        _share(c, stored.id, expires_in=timedelta(hours=1))
    c.clock.advance(hours=2)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(notice_sweep.sweep(v).links_expired)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sum(results) == 3
    kinds = [n.kind for n in notifications.notifications_for(v, user_id=c.patient.id)]
    assert kinds.count(Kind.LINK_EXPIRED) == 3


def test_the_mail_settings_refuse_plaintext_to_a_remote_relay_and_need_a_sender() -> None:
    with pytest.raises(ConfigError, match="only for a relay on this machine"):
        load_settings(smtp_host="smtp.example.net", smtp_security="none", mail_from="a@b.example")
    with pytest.raises(ConfigError, match="mail_from"):
        load_settings(smtp_host="smtp.example.net")
    assert load_settings(smtp_host="localhost", smtp_security="none", mail_from="a@b.example")


def test_the_password_comes_from_the_environment_or_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SKINVAULT_SMTP_PASSWORD", "from-env")
    settings = load_settings(smtp_host="smtp.example.net", mail_from="a@b.example")
    assert mailer.smtp_password(settings) == "from-env"
    assert "from-env" not in repr(settings)
    secret = tmp_path / "pw"
    secret.write_text("from-file\nignored\n")
    with_file = load_settings(
        smtp_host="smtp.example.net", mail_from="a@b.example", smtp_password_file=secret
    )
    assert mailer.smtp_password(with_file) == "from-file"


def test_the_privacy_facts_name_the_mail_relay_only_when_one_is_configured() -> None:
    from skinvault.services.privacy import privacy_facts

    assert not any("relay" in s for s in privacy_facts(load_settings()).sub_processors)
    facts = privacy_facts(
        load_settings(
            smtp_host="smtp.eu.example",
            mail_from="a@b.example",
            mail_relay_name="Example Mail (EU)",
        )
    )
    assert any(re.match(r"^Example Mail \(EU\) \(e-mail relay", s) for s in facts.sub_processors)


def test_an_outbox_row_that_cannot_be_opened_is_given_up_and_the_others_still_go(
    clinic: Clinic,
) -> None:
    c, v = clinic, clinic.vault
    capture.ask_for_photo(v, actor=c.lee, patient_id=c.patient_id, site="face")
    c.clock.advance(seconds=1)
    capture.ask_for_photo(v, actor=c.lee, patient_id=c.patient_id, site="back")
    with v.sessions.begin() as session:
        first = session.scalars(select(MailOutbox).order_by(MailOutbox.created_at)).first()
        assert first is not None
        first.body_enc = b"not a sealed body"
    assert mailer.deliver_due(v) == mailer.Delivery(sent=1)
    with v.reading() as session:
        broken = session.get(MailOutbox, first.id)
        assert broken is not None and broken.failed_at is not None and broken.body_enc is None
    assert len(c.relay.texts_for("ann@example.org")) == 1


def test_a_photo_reminder_comes_once_when_a_site_falls_due_in_the_portal_only_by_default(
    clinic: Clinic,
) -> None:
    from tests.integration.test_tracking import _jpeg
    from tests.unit.test_tracking_measure import _photo

    c, v = clinic, clinic.vault
    undated = _jpeg(_photo(0.1)[0])  # no capture date: the upload's date counts

    def upload() -> None:
        photo_store.store_photo(v, patient_id=c.patient_id, data=undated, actor=c.patient,
                                site="hand-left")  # fmt: skip

    upload()
    assert notifications.preferences(v, actor=c.patient)[Kind.PHOTO_DUE].value == "portal"
    c.clock.advance(days=27)
    assert notice_sweep.sweep(v).photos_due == 0  # not due yet
    c.clock.advance(days=1)
    assert notice_sweep.sweep(v).photos_due == 1  # four weeks: due
    assert notice_sweep.sweep(v).photos_due == 0  # told once
    due = [n for n in notifications.notifications_for(v, user_id=c.patient.id)
           if n.kind is Kind.PHOTO_DUE]  # fmt: skip
    assert [(n.text, n.link) for n in due] == [
        ("The next photo of a place you follow is due.", "/portal")
    ]
    mailer.deliver_due(v)  # (the care team's e-mail about the new photo goes)
    assert c.relay.texts_for("ann@example.org") == []  # none to her unless she asks
    c.clock.advance(days=30)
    assert notice_sweep.sweep(v).photos_due == 0  # a site left alone is not told again

    # The patient asks for e-mail; the next photo of the site starts a new four weeks.
    notifications.set_preferences(v, actor=c.patient, choices={"photo-due": "immediate"})
    upload()
    c.clock.advance(days=28)
    assert notice_sweep.sweep(v).photos_due == 1
    mailer.deliver_due(v)
    mails = c.relay.texts_for("ann@example.org")
    assert len(mails) == 1
    _assert_clean(mails, _forbidden(c, [c.patient_id]))
