"""Consent answers at their edges, as a patient or an auditor checks them: the instant a
consent stops (expiry, withdrawal), which answer a withdrawal ends, what is recorded and
audited, and the receipt — on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from skinvault.actors import Actor, Role
from skinvault.audit.log import tail
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.db.models import AuditEvent
from skinvault.errors import ConfigError, NotFound
from skinvault.policy.purposes import Purpose, Scope
from skinvault.services import admin, consents

OPERATOR = Actor.system("test")
US = timedelta(microseconds=1)


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 5, 3, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class Patient:
    vault: Vault
    clock: Clock
    id: str
    actor: Actor

    def answer(self, purpose: Purpose, granted: bool, **kw: object) -> consents.ConsentView:
        view = consents.record_consent(
            self.vault, patient_id=self.id, purpose=purpose, granted=granted, actor=self.actor,
            **kw,  # type: ignore[arg-type]
        )  # fmt: skip
        self.clock.advance(minutes=1)
        return view

    def history(self, purpose: Purpose) -> list[consents.ConsentView]:
        return [c for c in consents.consent_history(self.vault, self.id) if c.purpose is purpose]

    def audit(self) -> list[tuple[str, str | None, str | None]]:
        with self.vault.reading() as session:
            return [(e.action, e.purpose, e.reason) for e in tail(session, 50)
                    if e.action.startswith("consent:")]  # fmt: skip


@pytest.fixture
def ann(database_url: str, tmp_path: Path) -> Iterator[Patient]:
    clock = Clock()
    settings = load_settings(data_dir=tmp_path / "data", database_url=database_url)
    vault = bootstrap(settings, create=True, clock=clock)
    made = admin.create_user(vault, role=Role.PATIENT, email="ann@example.org",
                             password="a long passphrase", actor=OPERATOR, name="Ann")  # fmt: skip
    assert made.patient_id
    yield Patient(vault, clock, made.patient_id, Actor(made.user_id, Role.PATIENT, "Ann"))
    vault.close()


def test_a_consent_is_in_force_up_to_but_not_at_its_expiry(ann: Patient) -> None:
    given = ann.clock.now()
    ends = given + timedelta(days=30)
    view = ann.answer(Purpose.TEACHING, True, expires_at=ends)
    assert view.expires_at == ends and view.recorded_at == given
    assert view.in_force(given) and view.in_force(ends - US)
    assert not view.in_force(ends) and not view.in_force(ends + US)


def test_a_consent_must_expire_after_the_moment_it_is_given(ann: Patient) -> None:
    now = ann.clock.now()
    for ends in (now, now - US):
        with pytest.raises(ConfigError, match="cannot expire before it is given"):
            ann.answer(Purpose.TEACHING, True, expires_at=ends)
    assert ann.history(Purpose.TEACHING) == [] and ann.audit() == []
    ann.clock.at = now  # the next possible instant is accepted
    assert ann.answer(Purpose.TEACHING, True, expires_at=now + US).expires_at == now + US


def test_withdrawing_ends_the_grant_at_that_instant_and_is_audited_as_a_withdrawal(
    ann: Patient,
) -> None:
    ann.answer(Purpose.RESEARCH, True, scopes={Scope.DEIDENTIFIED, Scope.CROPPED})
    withdrawn_at = ann.clock.now()
    no = ann.answer(Purpose.RESEARCH, False)
    grant, refusal = ann.history(Purpose.RESEARCH)
    assert grant.revoked_at == withdrawn_at and refusal == no
    assert grant.in_force(withdrawn_at - US) and not grant.in_force(withdrawn_at)
    assert not refusal.in_force(withdrawn_at) and refusal.revoked_at is None
    assert ann.audit() == [
        ("consent:grant", "research", "cropped,deidentified"),
        ("consent:revoke", "research", None),
    ]
    assert consents.consents_for(ann.vault, ann.id)[Purpose.RESEARCH] == no


def test_a_first_no_or_a_no_after_a_no_is_a_refusal_that_ends_nothing(ann: Patient) -> None:
    ann.answer(Purpose.TEACHING, False)
    ann.answer(Purpose.TEACHING, False)
    assert [c.revoked_at for c in ann.history(Purpose.TEACHING)] == [None, None]
    assert [a[0] for a in ann.audit()] == ["consent:refuse", "consent:refuse"]


def test_withdrawing_again_after_a_new_grant_ends_the_newest_grant(ann: Patient) -> None:
    ann.answer(Purpose.TEACHING, True)
    first_end = ann.clock.now()
    ann.answer(Purpose.TEACHING, False)
    ann.answer(Purpose.TEACHING, True)
    second_end = ann.clock.now()
    ann.answer(Purpose.TEACHING, False)
    first, _, second, _ = ann.history(Purpose.TEACHING)
    assert (first.revoked_at, second.revoked_at) == (first_end, second_end)
    assert [a[0] for a in ann.audit()] == ["consent:grant", "consent:revoke"] * 2


def test_a_withdrawal_answers_only_its_own_purpose(ann: Patient) -> None:
    ann.answer(Purpose.RESEARCH, True)
    teaching = ann.answer(Purpose.TEACHING, True)  # the newest answer of any purpose
    withdrawn_at = ann.clock.now()
    ann.answer(Purpose.RESEARCH, False)
    assert ann.history(Purpose.TEACHING)[0].revoked_at is None
    assert ann.history(Purpose.RESEARCH)[0].revoked_at == withdrawn_at
    assert [a[:2] for a in ann.audit()][-1] == ("consent:revoke", "research")
    current = consents.consents_for(ann.vault, ann.id)
    assert current[Purpose.TEACHING] == teaching and not current[Purpose.RESEARCH].granted
    assert set(current) == {Purpose.TEACHING, Purpose.RESEARCH}


def test_a_refusal_keeps_no_expiry_and_stores_who_and_how(ann: Patient) -> None:
    no = ann.answer(Purpose.TEACHING, False, expires_at=ann.clock.now() + timedelta(days=1),
                    method="paper form")  # fmt: skip
    assert no.expires_at is None and no.method == "paper form"
    assert no.recorded_by == ann.actor.id
    by_system = consents.record_consent(ann.vault, patient_id=ann.id, purpose=Purpose.RESEARCH,
                                        granted=True, actor=OPERATOR)  # fmt: skip
    assert by_system.recorded_by is None and by_system.method == "portal"
    assert by_system.scopes == frozenset()


def test_care_needs_no_consent_and_an_unknown_patient_records_nothing(ann: Patient) -> None:
    with pytest.raises(ConfigError, match="care needs no consent"):
        ann.answer(Purpose.CARE, False)
    with pytest.raises(NotFound, match="there is no patient nobody"):
        consents.record_consent(ann.vault, patient_id="nobody", purpose=Purpose.TEACHING,
                                granted=True, actor=OPERATOR)  # fmt: skip
    with ann.vault.reading() as session:
        actions = session.scalars(select(AuditEvent.action)).all()
        assert not [a for a in actions if a.startswith("consent:")]
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == len(actions)


def test_the_receipt_says_what_was_answered_and_how_to_withdraw(ann: Patient) -> None:
    ends = ann.clock.now() + timedelta(days=3)
    view = ann.answer(Purpose.TEACHING, True, scopes={Scope.DEIDENTIFIED}, expires_at=ends)
    data = consents.receipt(view)
    assert data["answer"] == "granted" and data["scopes"] == ["deidentified"]
    assert data["expires_at"] == ends.isoformat() and data["patient_id"] == ann.id
    assert data["purpose"] == "teaching" and data["receipt_id"] == view.id
    assert "at any time" in str(data["how_to_withdraw"])
    page = consents.receipt_html(view)
    assert "<th>Your answer</th><td>Yes</td>" in page
    assert f"<th>Expires</th><td>{ends:%Y-%m-%d}</td>" in page
    assert "<th>Limits</th><td>deidentified</td>" in page
    embedded = page.split("id=receipt>")[1].split("</script>")[0]
    assert json.loads(embedded.replace("&quot;", '"').replace("&#x27;", "'")) == json.loads(
        json.dumps(data)
    )
    no = consents.receipt_html(ann.answer(Purpose.RESEARCH, False))
    assert "<td>No</td>" in no and "<th>Expires</th><td>never</td>" in no
    assert "<th>Limits</th><td>none</td>" in no
