"""Consent, the policy decision and the access history, end to end on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.errors import AccessDenied, ConfigError
from skinvault.photos.scrub import inspect
from skinvault.policy.decide import Obligation
from skinvault.policy.purposes import Purpose, Scope
from skinvault.services import admin, consents, history, photo_reads, photo_store
from skinvault.services.care import end_care, start_care
from tests import factories

OPERATOR = Actor.system("test")


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
        vault, patient_id=patient_id, data=factories.jpeg(), actor=lee, site="left-hand",
        note="day 3 of treatment",
    )  # fmt: skip
    clock.advance(days=40)
    yield Clinic(vault, clock, patient_id, patient, lee, ng, stored.id)
    vault.close()


def test_teaching_consent_then_revocation_end_to_end(clinic: Clinic) -> None:
    v, c = clinic.vault, clinic
    with pytest.raises(AccessDenied, match="has not given consent for teaching"):
        photo_reads.read_photo(v, photo_id=c.photo_id, actor=c.ng, purpose="teaching")

    consents.record_consent(
        v, patient_id=c.patient_id, purpose=Purpose.TEACHING, granted=True,
        scopes={Scope.DEIDENTIFIED}, actor=c.patient,
    )  # fmt: skip
    c.clock.advance(hours=2)
    got = photo_reads.read_photo(v, photo_id=c.photo_id, actor=c.ng, purpose="teaching")
    assert got.obligations == {Obligation.DEIDENTIFIED}
    assert inspect(got.data).findings == ()  # nothing in the file links it to Ann
    details = photo_reads.describe_photo(v, photo_id=c.photo_id, actor=c.ng, purpose="teaching")
    assert details.patient_id is None and details.note is None and details.uploaded_at is None
    assert details.site == "Left hand"  # the vocabulary label of old "left-hand"

    c.clock.advance(days=1)
    consents.record_consent(
        v, patient_id=c.patient_id, purpose=Purpose.TEACHING, granted=False, actor=c.patient
    )
    c.clock.advance(seconds=1)
    with pytest.raises(AccessDenied, match="withdrew consent for teaching") as refused:
        photo_reads.read_photo(v, photo_id=c.photo_id, actor=c.ng, purpose="teaching")
    assert "withdrew" in refused.value.reason

    # Care never depended on the teaching answer.
    assert photo_reads.read_photo(v, photo_id=c.photo_id, actor=c.lee, purpose="care").data

    texts = [e.text for e in history.access_history(v, c.patient_id)]
    viewed = [t for t in texts if t.startswith("Prof. Ng viewed your left hand photo")]
    assert viewed and "for teaching" in viewed[0]
    refusals = [t for t in texts if t.startswith("Prof. Ng was refused your left hand photo")]
    assert len(refusals) == 2 and "withdrew consent for teaching" in refusals[-1]
    assert any(t.startswith("You gave consent for teaching") for t in texts)
    assert any(t.startswith("You withdrew consent for teaching") for t in texts)
    assert any(t.startswith("Dr. Lee viewed your left hand photo") and "for your care" in t
               for t in texts)  # fmt: skip
    assert admin.verify_audit(v).count > 0


def test_ending_care_ends_access_and_break_glass_is_flagged(clinic: Clinic) -> None:
    v, c = clinic.vault, clinic
    end_care(v, patient_id=c.patient_id, member_id=c.lee.id, actor=OPERATOR)
    c.clock.advance(seconds=1)
    with pytest.raises(AccessDenied, match="care relationship with this patient ended"):
        photo_reads.read_photo(v, photo_id=c.photo_id, actor=c.lee, purpose="care")
    reason = "Patient admitted unconscious to A&E, rash spreading fast"
    got = photo_reads.read_photo(
        v, photo_id=c.photo_id, actor=c.lee, purpose="care", break_glass_reason=reason
    )
    assert got.obligations == {Obligation.REVIEW}
    from skinvault.audit.log import tail

    with v.sessions() as session:
        last = tail(session, 1)[0]
    assert last.outcome == "allowed" and last.reason and last.reason.startswith("BREAK-GLASS")
    assert reason in last.reason


def test_a_no_face_consent_serves_a_face_free_version_not_the_photo(clinic: Clinic) -> None:
    v, c = clinic.vault, clinic
    consents.record_consent(
        v, patient_id=c.patient_id, purpose=Purpose.TEACHING, granted=True,
        scopes={Scope.NO_FACE}, actor=c.patient,
    )  # fmt: skip
    c.clock.advance(seconds=1)
    served = photo_reads.read_photo(v, photo_id=c.photo_id, actor=c.ng, purpose="teaching")
    original = photo_reads.read_photo(v, photo_id=c.photo_id, actor=c.lee, purpose="care")
    assert served.data != original.data  # a version made for the limit, never the photo itself
    assert "no_face" in served.obligations


def test_a_cropped_consent_without_a_chosen_area_is_refused_with_the_reason(
    clinic: Clinic,
) -> None:
    v, c = clinic.vault, clinic
    consents.record_consent(
        v, patient_id=c.patient_id, purpose=Purpose.TEACHING, granted=True,
        scopes={Scope.CROPPED}, actor=c.patient,
    )  # fmt: skip
    c.clock.advance(seconds=1)
    with pytest.raises(AccessDenied, match="no area has been chosen"):
        photo_reads.read_photo(v, photo_id=c.photo_id, actor=c.ng, purpose="teaching")


def test_an_expired_consent_denies_from_the_second_it_expires(clinic: Clinic) -> None:
    v, c = clinic.vault, clinic
    expires = c.clock.at + timedelta(days=30)
    consents.record_consent(
        v, patient_id=c.patient_id, purpose=Purpose.TEACHING, granted=True,
        expires_at=expires, actor=c.patient,
    )  # fmt: skip
    c.clock.at = expires - timedelta(seconds=1)
    assert photo_reads.read_photo(v, photo_id=c.photo_id, actor=c.ng, purpose="teaching").data
    c.clock.at = expires
    with pytest.raises(AccessDenied, match="expired"):
        photo_reads.read_photo(v, photo_id=c.photo_id, actor=c.ng, purpose="teaching")


def test_unknown_purposes_and_care_consent_are_refused_clearly(clinic: Clinic) -> None:
    v, c = clinic.vault, clinic
    with pytest.raises(AccessDenied, match="is not a purpose; name one of: care, teaching"):
        photo_reads.read_photo(v, photo_id=c.photo_id, actor=c.lee, purpose="marketing")
    with pytest.raises(ConfigError, match="care needs no consent"):
        consents.record_consent(
            v, patient_id=c.patient_id, purpose=Purpose.CARE, granted=False, actor=c.patient
        )


def test_consent_receipts_name_the_text_version_and_the_hl7_code(clinic: Clinic) -> None:
    v, c = clinic.vault, clinic
    view = consents.record_consent(
        v, patient_id=c.patient_id, purpose=Purpose.RESEARCH, granted=True,
        scopes={Scope.CROPPED, Scope.INTERNAL}, actor=c.patient,
    )  # fmt: skip
    receipt = consents.receipt(view)
    assert receipt["purpose_code"] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
        "code": "HRESCH",
    }
    assert receipt["scopes"] == ["cropped", "internal"]
    assert receipt["text_shown"]["version"]  # type: ignore[index]
    page = consents.receipt_html(view)
    assert "Consent receipt: Research" in page and view.id in page
    embedded = page.split("id=receipt>", 1)[1].split("</script>", 1)[0]
    assert "HRESCH" in embedded
    assert json.loads(embedded.replace("&quot;", '"'))["answer"] == "granted"
    current = consents.consents_for(v, c.patient_id)
    assert current[Purpose.RESEARCH].granted and Purpose.TEACHING not in current


def test_admins_and_other_patients_never_see_photos(clinic: Clinic) -> None:
    v, c = clinic.vault, clinic
    boss, _ = _user(v, Role.ADMIN, "boss@clinic.example", "Admin")
    bob, _ = _user(v, Role.PATIENT, "bob@example.org", "Bob")
    for actor in (boss, bob):
        for purpose in Purpose:
            with pytest.raises(AccessDenied):
                photo_reads.read_photo(v, photo_id=c.photo_id, actor=actor, purpose=purpose)
    assert photo_reads.read_photo(v, photo_id=c.photo_id, actor=c.patient, purpose="care").data
