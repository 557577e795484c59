"""The one access decision, enumerated: roles × relationship × purpose × consent × access."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skinvault.actors import Actor, Role
from skinvault.policy.decide import (
    SECONDARY_ROLES,
    Access,
    CareFacts,
    ConsentFacts,
    Obligation,
    PatientAction,
    PhotoFacts,
    decide,
    decide_patient,
)
from skinvault.policy.purposes import PURPOSE_TEXTS, Purpose, Scope

NOW = datetime(2026, 6, 12, 14, 2, tzinfo=UTC)
DAY = timedelta(days=1)
PATIENT_USER = "u-patient"
PHOTO = PhotoFacts("ph1", "pat1", PATIENT_USER)

RELATIONSHIPS = {
    "none": [],
    "current": [CareFacts("u-actor", NOW - 30 * DAY)],
    "ended": [CareFacts("u-actor", NOW - 30 * DAY, NOW - DAY)],
}


def consents(state: str, purpose: Purpose) -> list[ConsentFacts]:
    granted = ConsentFacts(purpose, True, NOW - 10 * DAY)
    return {
        "none": [],
        "granted": [granted],
        "refused": [ConsentFacts(purpose, False, NOW - 10 * DAY)],
        "expired": [ConsentFacts(purpose, True, NOW - 10 * DAY, expires_at=NOW - DAY)],
        "revoked": [
            ConsentFacts(purpose, True, NOW - 10 * DAY, revoked_at=NOW - DAY),
            ConsentFacts(purpose, False, NOW - DAY),
        ],
        "out-of-scope": [ConsentFacts(purpose, True, NOW - 10 * DAY, frozenset({Scope.INTERNAL}))],
        "other-purpose": [
            ConsentFacts(p, True, NOW - 10 * DAY)
            for p in Purpose
            if p not in (purpose, Purpose.CARE)
        ],
    }[state]


def expected(role: Role, rel: str, purpose: Purpose, consent: str, access: Access) -> bool:
    """The rules of the issue, restated independently of the implementation."""
    if role is Role.ADMIN:
        return False
    if purpose is Purpose.CARE:
        return role in (Role.CLINICIAN, Role.STAFF) and rel == "current"
    if role not in SECONDARY_ROLES[purpose] or access is Access.SHARE:
        return False
    if consent == "out-of-scope":
        return purpose is not Purpose.PUBLICATION and access is not Access.EXPORT
    return consent == "granted"


CASES = list(
    itertools.product(
        [r for r in Role if r is not Role.PATIENT],
        RELATIONSHIPS,
        Purpose,
        ["none", "granted", "refused", "expired", "revoked", "out-of-scope", "other-purpose"],
        Access,
    )
)


@pytest.mark.parametrize(("role", "rel", "purpose", "consent", "access"), CASES)
def test_the_decision_table(
    role: Role, rel: str, purpose: Purpose, consent: str, access: Access
) -> None:
    actor = Actor("u-actor", role, "Dr. Lee")
    decision = decide(
        actor,
        access,
        PHOTO,
        purpose,
        consents=consents(consent, purpose),
        relationships=RELATIONSHIPS[rel],
        now=NOW,
    )
    assert decision.allowed is expected(role, rel, purpose, consent, access), decision.reason
    assert decision.reason.strip().endswith(".")
    assert len(decision.reason) > 15


@pytest.mark.parametrize("purpose", list(Purpose))
@pytest.mark.parametrize("access", list(Access))
def test_patients_see_their_own_photos_and_only_theirs(purpose: Purpose, access: Access) -> None:
    me = Actor(PATIENT_USER, Role.PATIENT, "Ann")
    other = Actor("u-someone", Role.PATIENT, "Bob")
    kwargs = {"consents": [], "relationships": [], "now": NOW}
    assert decide(me, access, PHOTO, purpose, **kwargs).allowed  # type: ignore[arg-type]
    refused = decide(other, access, PHOTO, purpose, **kwargs)  # type: ignore[arg-type]
    assert not refused.allowed and "only their own" in refused.reason


def test_reasons_are_sentences_a_patient_can_read() -> None:
    lee = Actor("u-actor", Role.CLINICIAN, "Dr. Lee")
    ok = decide(lee, Access.VIEW, PHOTO, Purpose.CARE, consents=[],
                relationships=RELATIONSHIPS["current"], now=NOW)  # fmt: skip
    assert ok.reason == "Dr. Lee is part of your care team."
    ended = decide(lee, Access.VIEW, PHOTO, Purpose.CARE, consents=[],
                   relationships=RELATIONSHIPS["ended"], now=NOW)  # fmt: skip
    assert ended.reason == "Dr. Lee's care relationship with this patient ended on 11 June 2026."
    educator = Actor("u-edu", Role.EDUCATOR, "Prof. Ng")
    history = consents("revoked", Purpose.TEACHING)
    revoked = decide(educator, Access.VIEW, PHOTO, Purpose.TEACHING,
                     consents=history, relationships=[], now=NOW)  # fmt: skip
    assert revoked.reason == "The patient withdrew consent for teaching on 11 June 2026."


def test_scopes_become_obligations_and_research_is_always_deidentified() -> None:
    researcher = Actor("u-r", Role.RESEARCHER, "R")
    scoped = [ConsentFacts(Purpose.RESEARCH, True, NOW - DAY, frozenset({Scope.CROPPED}))]
    d = decide(researcher, Access.VIEW, PHOTO, Purpose.RESEARCH, consents=scoped,
               relationships=[], now=NOW)  # fmt: skip
    assert d.allowed and d.obligations == {Obligation.CROPPED, Obligation.DEIDENTIFIED}
    educator = Actor("u-e", Role.EDUCATOR, "E")
    plain = [ConsentFacts(Purpose.TEACHING, True, NOW - DAY)]
    t = decide(educator, Access.VIEW, PHOTO, Purpose.TEACHING, consents=plain,
               relationships=[], now=NOW)  # fmt: skip
    assert t.allowed and t.obligations == frozenset()


def test_break_glass_needs_a_written_reason_and_is_flagged() -> None:
    lee = Actor("u-actor", Role.CLINICIAN, "Dr. Lee")
    args = (lee, Access.VIEW, PHOTO, Purpose.CARE)
    assert not decide(*args, consents=[], relationships=[], now=NOW, break_glass_reason="x").allowed
    d = decide(*args, consents=[], relationships=[], now=NOW,
               break_glass_reason="Unconscious patient in A&E, rash spreading")  # fmt: skip
    assert d.allowed and d.break_glass and "flagged for review" in d.reason
    staff = Actor("u-actor", Role.STAFF, "Sam")
    assert not decide(staff, Access.VIEW, PHOTO, Purpose.CARE, consents=[], relationships=[],
                      now=NOW, break_glass_reason="Unconscious patient in A&E").allowed  # fmt: skip


def test_every_purpose_has_a_versioned_text_and_an_hl7_code() -> None:
    for purpose in Purpose:
        text = PURPOSE_TEXTS[purpose]
        assert text.version and 1 <= text.text.count(". ") + 1 <= 3
        assert purpose.hl7_code.isupper()


# -- properties -----------------------------------------------------------------------

moments = st.integers(-400, 400).map(lambda d: NOW + timedelta(days=d))
consent_rows = st.lists(
    st.builds(
        ConsentFacts,
        st.sampled_from(list(Purpose)),
        st.booleans(),
        moments,
        st.frozensets(st.sampled_from(list(Scope))),
        st.none() | moments,
        st.none() | moments,
    ),
    max_size=6,
)
care_rows = st.lists(
    st.builds(CareFacts, st.sampled_from(["u-actor", "u-other"]), moments, st.none() | moments),
    max_size=3,
)
actors = st.builds(
    Actor, st.sampled_from(["u-actor", PATIENT_USER, "u-other"]), st.sampled_from(list(Role)),
    st.just("X"),
)  # fmt: skip


@given(actors, st.sampled_from(list(Access)), consent_rows, care_rows, moments)
def test_only_the_patient_and_a_current_care_team_member_see_a_photo_for_care(
    actor: Actor, access: Access, given_consents: list[ConsentFacts], rels: list[CareFacts],
    now: object,
) -> None:  # fmt: skip
    d = decide(actor, access, PHOTO, Purpose.CARE, consents=given_consents, relationships=rels,
               now=now)  # type: ignore[arg-type]  # fmt: skip
    if d.allowed:
        own = actor.role is Role.PATIENT and actor.id == PATIENT_USER
        team = actor.role in (Role.CLINICIAN, Role.STAFF) and any(
            r.member_id == actor.id and r.current(now)
            for r in rels  # type: ignore[arg-type]
        )
        assert own or team
    # Care never depends on any consent answer.
    assert decide(actor, access, PHOTO, Purpose.CARE, consents=[], relationships=rels,
                  now=now) == d  # type: ignore[arg-type]  # fmt: skip


@given(
    actors,
    st.sampled_from([p for p in Purpose if p is not Purpose.CARE]),
    st.sampled_from(list(Access)),
    consent_rows,
    st.integers(-300, 300),
    st.integers(1, 500),
)
def test_a_revocation_at_t_denies_every_later_access(
    actor: Actor, purpose: Purpose, access: Access, earlier: list[ConsentFacts], t_days: int,
    later_days: int,
) -> None:  # fmt: skip
    t = NOW + timedelta(days=t_days)
    history = [c for c in earlier if c.recorded_at < t]
    history.append(ConsentFacts(purpose, False, t))  # the patient says no at t
    later = t + timedelta(days=later_days, seconds=1)
    d = decide(actor, access, PHOTO, purpose, consents=history, relationships=[], now=later)
    if not (actor.role is Role.PATIENT and actor.id == PATIENT_USER):
        assert not d.allowed


@pytest.mark.parametrize("action", list(PatientAction))
@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("rel", list(RELATIONSHIPS))
def test_record_level_actions(action: PatientAction, role: Role, rel: str) -> None:
    own_id = PATIENT_USER if role is Role.PATIENT else "u-actor"
    d = decide_patient(
        Actor(own_id, role, "X"), action, patient_user_id=PATIENT_USER,
        relationships=RELATIONSHIPS[rel], now=NOW,
    )  # fmt: skip
    if role is Role.PATIENT:
        assert d.allowed is (action is not PatientAction.DECIDE_DELETION)
    elif role is Role.ADMIN:
        assert d.allowed is (action in (PatientAction.READ_HISTORY, PatientAction.DECIDE_DELETION))
    elif role in (Role.CLINICIAN, Role.STAFF):
        care_action = action in (
            PatientAction.LIST_PHOTOS,
            PatientAction.UPLOAD,
            PatientAction.REQUEST_PHOTO,
        )
        assert d.allowed is (care_action and rel == "current")
    else:
        assert not d.allowed
    assert d.reason.endswith(".")
    other = decide_patient(
        Actor("u-someone", Role.PATIENT, "Bob"), action, patient_user_id=PATIENT_USER,
        relationships=[], now=NOW,
    )  # fmt: skip
    assert not other.allowed
