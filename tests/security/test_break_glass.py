"""Finding 9: break-glass must be visible to the patient and reviewed by the privacy officer.

An emergency access by a clinician outside the care team is named as such in the
patient's "who saw my photos" (by whom, and the reason given); every such access
lands in the privacy officer's review queue (open → reviewed with a note, or
escalated), each step audited; and it can be started from the clinician's pages
with a patient identifier and a reason. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from skinvault.actors import Actor, Role
from skinvault.audit.log import tail
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.errors import AccessDenied
from skinvault.services import admin, history, photo_reads, photo_store
from skinvault.services.care import start_care
from tests import factories
from tests.integration.conftest import BACKENDS, drop_schema, fresh_database_url
from tests.security.conftest import Live, csrf_of

OPERATOR = Actor.system("test")
REASON = "Unconscious in A&E, spreading rash, care team unreachable"


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 6, 12, 14, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class Ward:
    vault: Vault
    clock: Clock
    patient_id: str
    lee: Actor  # on the care team
    two: Actor  # not on the care team
    officer: Actor  # the privacy officer (today: an administrator)
    photo_id: str


def _user(vault: Vault, role: Role, email: str, name: str) -> tuple[Actor, str | None]:
    made = admin.create_user(
        vault, role=role, email=email, password="a long passphrase", actor=OPERATOR, name=name
    )
    return Actor(made.user_id, role, name), made.patient_id


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each backend (bootstrap migrates it)."""
    url, schema = fresh_database_url(request.param, tmp_path)
    yield url
    if schema:
        drop_schema(schema)


@pytest.fixture
def ward(database_url: str, tmp_path: Path) -> Iterator[Ward]:
    clock = Clock()
    settings = load_settings(data_dir=tmp_path / "data", database_url=database_url)
    vault = bootstrap(settings, create=True, clock=clock)
    _, patient_id = _user(vault, Role.PATIENT, "ann@example.org", "Ann")
    assert patient_id
    lee, _ = _user(vault, Role.CLINICIAN, "lee@clinic.example", "Dr. Lee")
    two, _ = _user(vault, Role.CLINICIAN, "two@clinic.example", "Dr. Two")
    officer, _ = _user(vault, Role.ADMIN, "po@clinic.example", "Pat Officer")
    start_care(vault, patient_id=patient_id, member_id=lee.id, actor=OPERATOR)
    stored = photo_store.store_photo(
        vault, patient_id=patient_id, data=factories.jpeg(), actor=lee, site="back"
    )
    clock.advance(days=1)
    yield Ward(vault, clock, patient_id, lee, two, officer, stored.id)
    vault.close()


def test_the_patients_history_names_an_emergency_access_by_whom_and_why(ward: Ward) -> None:
    v, w = ward.vault, ward
    photo_reads.read_photo(v, photo_id=w.photo_id, actor=w.lee, purpose="care")
    w.clock.advance(minutes=5)
    photo_reads.read_photo(
        v, photo_id=w.photo_id, actor=w.two, purpose="care", break_glass_reason=REASON
    )
    entries = history.access_history(v, w.patient_id)
    care = [e for e in entries if e.text.startswith("Dr. Lee viewed")]
    assert care and "for your care" in care[0].text
    emergency = [e for e in entries if "Dr. Two" in e.text]
    assert len(emergency) == 1, [e.text for e in entries]
    text = emergency[0].text
    assert "emergency access" in text.lower(), text
    assert "outside your care team" in text
    assert REASON in text
    assert "for your care" not in text  # it must not read like a care-team view
    # The page marks it apart, from these fields.
    assert emergency[0].emergency and not care[0].emergency
    assert emergency[0].reason_given == REASON


def test_every_break_glass_access_is_queued_for_the_privacy_officer(ward: Ward) -> None:
    from skinvault.services import review

    v, w = ward.vault, ward
    photo_reads.describe_photo(
        v, photo_id=w.photo_id, actor=w.two, purpose="care", break_glass_reason=REASON
    )
    photo_reads.read_photo(
        v, photo_id=w.photo_id, actor=w.two, purpose="care", break_glass_reason=REASON
    )
    photo_reads.read_photo(v, photo_id=w.photo_id, actor=w.lee, purpose="care")  # not break-glass
    queue = review.cases(v, actor=w.officer)
    assert len(queue) == 1  # one emergency episode: same clinician, patient and reason
    case = queue[0]
    assert (case.state, case.clinician_id, case.patient_id) == ("open", w.two.id, w.patient_id)
    assert case.reason == REASON and case.accesses == 2

    with pytest.raises(AccessDenied):
        review.cases(v, actor=w.two)  # the clinician does not review themselves
    with pytest.raises(ValueError, match="note"):
        review.mark_reviewed(v, actor=w.officer, case_id=case.id, note="  ")

    w.clock.advance(hours=1)
    escalated = review.escalate(
        v, actor=w.officer, case_id=case.id, note="No admission record; asked the ward."
    )
    assert escalated.state == "escalated"
    w.clock.advance(hours=1)
    done = review.mark_reviewed(
        v, actor=w.officer, case_id=case.id, note="Admission confirmed by A&E lead."
    )
    assert done.state == "reviewed" and done.note == "Admission confirmed by A&E lead."
    assert done.decided_by and "Pat Officer" in done.decided_by
    assert review.cases(v, actor=w.officer) == []  # the open queue is empty
    assert [c.id for c in review.cases(v, actor=w.officer, state=None)] == [case.id]
    with pytest.raises(ValueError, match="already reviewed"):
        review.escalate(v, actor=w.officer, case_id=case.id, note="again")

    with v.reading() as session:
        steps = [e for e in tail(session, 1000) if e.object == f"break-glass:{case.id}"]
    assert [(e.action, e.outcome) for e in steps] == [
        ("break-glass:escalate", "done"),
        ("break-glass:review", "done"),
    ]
    assert steps[0].reason == "No admission record; asked the ward."
    assert all("Pat Officer" in e.actor for e in steps)
    # The patient sees that the access was reviewed (not the officer's internal note).
    texts = [e.text for e in history.access_history(v, w.patient_id)]
    assert any("privacy officer reviewed" in t.lower() and "Dr. Two" in t for t in texts)
    assert not any("A&E lead" in t for t in texts)
    assert admin.verify_audit(v).count > 0


def test_emergency_access_by_patient_identifier_lists_photos_through_break_glass(
    ward: Ward,
) -> None:
    from skinvault.services import emergency

    v, w = ward.vault, ward
    with pytest.raises(AccessDenied):
        emergency.open_record(v, actor=w.two, patient=w.patient_id, reason="short")
    with pytest.raises(AccessDenied):
        emergency.open_record(v, actor=w.officer, patient=w.patient_id, reason=REASON)
    opened = emergency.open_record(v, actor=w.two, patient="ann@example.org", reason=REASON)
    assert opened.patient_id == w.patient_id
    assert [p.id for p in opened.photos] == [w.photo_id]
    with v.reading() as session:
        start = [e for e in tail(session, 100) if e.action == "break-glass:start"]
    assert [e.outcome for e in start] == ["denied", "denied", "allowed"]
    assert start[-1].reason and REASON in start[-1].reason
    from skinvault.services import review

    (case,) = review.cases(v, actor=w.officer)
    assert case.clinician_id == w.two.id and case.reason == REASON
    texts = [e.text for e in history.access_history(v, w.patient_id)]
    assert any("Dr. Two" in t and "emergency" in t.lower() and REASON in t for t in texts)
    # The refused attempt is in the patient's history too.
    assert any(t.startswith("Dr. Two was refused your photos") for t in texts), texts


def test_break_glass_from_the_clinician_home_over_the_live_portal(live: Live) -> None:
    patient = live.person(Role.PATIENT, name="Ann Patient")
    lee = live.person(Role.CLINICIAN, name="Dr. Lee")
    two = live.person(Role.CLINICIAN, name="Dr. Two")
    officer = live.person(Role.ADMIN, name="Pat Officer")
    live.relate(patient, lee)
    assert patient.patient_id
    stored = photo_store.store_photo(
        live.vault, patient_id=patient.patient_id, data=factories.jpeg(), actor=lee.actor,
        site="back",
    )  # fmt: skip

    doctor = live.client()
    csrf = live.sign_in(doctor, two)
    home = doctor.get("/portal").text
    assert 'action="/portal/emergency"' in home  # the entry is on the clinician's home
    opened = doctor.post(
        "/portal/emergency",
        data={"csrf": csrf, "patient": patient.patient_id, "reason": REASON},
    )
    assert opened.status_code == 200, opened.text
    assert stored.id in opened.text and "data:image/jpeg;base64," in opened.text
    refused = doctor.post(
        "/portal/emergency", data={"csrf": csrf, "patient": patient.patient_id, "reason": "x"}
    )
    assert refused.status_code == 403

    me = live.client()
    live.sign_in(me, patient)
    page = me.get("/portal/history").text
    assert "Dr. Two" in page and "mergency access" in page
    assert REASON.replace("&", "&amp;") in page

    po = live.client()
    po_csrf = live.sign_in(po, officer)
    queue = po.get("/portal/review")
    assert queue.status_code == 200 and "Dr. Two" in queue.text
    case_id = re.search(r'href="/portal/review/([0-9a-f]+)"', queue.text)
    assert case_id, queue.text
    done = po.post(
        f"/portal/review/{case_id.group(1)}",
        data={"csrf": po_csrf, "step": "reviewed", "note": "Confirmed with A&E."},
    )
    assert done.status_code in (200, 303), done.text
    assert [e.outcome for e in live.vault_events("break-glass:review")] == ["done"]
    assert doctor.get("/portal/review").status_code == 403
    assert csrf_of(home)


def test_an_emergency_export_joins_the_review_queue_like_an_emergency_view(ward: Ward) -> None:
    from skinvault.audit.actions import Action
    from skinvault.services import photo_export, review

    v, w = ward.vault, ward
    got = photo_export.export_photo(
        v, photo_id=w.photo_id, actor=w.two, purpose="care",
        action=Action.PHOTO_EXPORT_DICOM, break_glass_reason=REASON,
    )  # fmt: skip
    assert got.data
    queued = review.cases(v, actor=w.officer)
    assert len(queued) == 1 and queued[0].reason == REASON
    emergency = [e for e in history.access_history(v, w.patient_id) if "Dr. Two" in e.text]
    assert emergency and emergency[0].emergency
