"""The policy at its edges: the exact instants a relationship or a consent starts and ends,
and the plain words a patient or a refused user reads. Written to kill mutmut's survivors
in ``policy/decide.py`` (docs/testing.md), each from a promise: "revocable at any time with
immediate effect", an expiry is the last moment, the reasons are shown to people.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from skinvault.actors import Actor, Role
from skinvault.policy.decide import (
    MIN_BREAK_GLASS_REASON,
    Access,
    CareFacts,
    ConsentFacts,
    Obligation,
    PatientAction,
    PhotoFacts,
    consent_in_force,
    decide,
    decide_patient,
)
from skinvault.policy.purposes import Purpose, Scope

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PHOTO = PhotoFacts("ph1", "pt1", "u-patient")
LEE = Actor("u-lee", Role.CLINICIAN, "Dr. Lee")
NG = Actor("u-ng", Role.EDUCATOR, "Prof. Ng")
RAY = Actor("u-ray", Role.RESEARCHER, "Dr. Ray")
ANN = Actor("u-patient", Role.PATIENT, "Ann")
BOSS = Actor("u-boss", Role.ADMIN, "Officer")


def _care(since: datetime, until: datetime | None = None) -> list[CareFacts]:
    return [CareFacts(LEE.id, since, until)]


def _read(actor: Actor, purpose: Purpose, consents: list[ConsentFacts], **kw: object):  # type: ignore[no-untyped-def]
    return decide(
        actor, kw.pop("access", Access.VIEW), PHOTO, purpose, consents=consents,  # type: ignore[arg-type]
        relationships=kw.pop("relationships", []), now=kw.pop("now", NOW),  # type: ignore[arg-type]
        break_glass_reason=kw.pop("reason", None),  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_care_relationship_counts_from_its_first_instant_to_before_its_end() -> None:
    assert CareFacts(LEE.id, NOW).current(NOW)
    assert not CareFacts(LEE.id, NOW + timedelta(microseconds=1)).current(NOW)
    assert not CareFacts(LEE.id, NOW - timedelta(days=1), NOW).current(NOW)
    assert CareFacts(LEE.id, NOW - timedelta(days=1), NOW + timedelta(microseconds=1)).current(NOW)


def test_care_that_ended_this_instant_is_refused_with_the_day_it_ended() -> None:
    ended = _read(LEE, Purpose.CARE, [], relationships=_care(NOW - timedelta(days=9), NOW))
    assert not ended.allowed
    assert ended.reason == "Dr. Lee's care relationship with this patient ended on 1 June 2026."
    later = _read(LEE, Purpose.CARE, [], relationships=_care(NOW, NOW + timedelta(days=11)),
                  now=NOW + timedelta(days=11))  # fmt: skip
    assert later.reason.endswith("ended on 12 June 2026.")
    never = _read(LEE, Purpose.CARE, [])
    assert never.reason == "Dr. Lee has no care relationship with this patient."


def test_break_glass_needs_a_reason_of_at_least_the_minimum_length() -> None:
    exact = "x" * MIN_BREAK_GLASS_REASON
    assert _read(LEE, Purpose.CARE, [], reason=exact).obligations == {Obligation.REVIEW}
    assert not _read(LEE, Purpose.CARE, [], reason=exact[:-1]).allowed
    assert not _read(LEE, Purpose.CARE, [], reason=f"  {exact[:-1]}  ").allowed


def _consent(at: datetime = NOW, granted: bool = True, **kw: object) -> ConsentFacts:
    return ConsentFacts(Purpose.TEACHING, granted, at, **kw)  # type: ignore[arg-type]


def test_an_answer_recorded_this_instant_is_in_force() -> None:
    answer = _consent(NOW)
    assert consent_in_force([answer], Purpose.TEACHING, NOW) is answer
    assert consent_in_force([_consent(NOW + timedelta(seconds=1))], Purpose.TEACHING, NOW) is None
    assert _read(NG, Purpose.TEACHING, [answer]).allowed


def test_withdrawal_and_expiry_take_effect_at_their_instant() -> None:
    start = NOW - timedelta(days=3)
    revoked = _read(NG, Purpose.TEACHING, [_consent(start, revoked_at=NOW)])
    assert not revoked.allowed
    assert revoked.reason == "The patient withdrew consent for teaching on 1 June 2026."
    expired = _read(NG, Purpose.TEACHING, [_consent(start, expires_at=NOW)])
    assert not expired.allowed
    assert expired.reason == "The patient's consent for teaching expired on 1 June 2026."
    second = timedelta(seconds=1)
    assert _read(NG, Purpose.TEACHING, [_consent(start, revoked_at=NOW + second)]).allowed
    assert _read(NG, Purpose.TEACHING, [_consent(start, expires_at=NOW + second)]).allowed


def test_no_after_a_yes_is_a_withdrawal_and_a_first_no_is_a_refusal() -> None:
    grant = _consent(NOW - timedelta(days=2))
    withdrawn = _read(NG, Purpose.TEACHING, [grant, _consent(NOW - timedelta(days=1), False)])
    assert withdrawn.reason == "The patient withdrew consent for teaching on 31 May 2026."
    refused = _read(NG, Purpose.TEACHING, [_consent(NOW - timedelta(days=1), False)])
    assert refused.reason == "The patient said no to teaching on 31 May 2026."
    # A grant for another purpose, or a refusal recorded at the same instant, is not a yes.
    other = ConsentFacts(Purpose.RESEARCH, True, NOW - timedelta(days=2))
    assert "said no to" in _read(NG, Purpose.TEACHING, [other, _consent(NOW, False)]).reason
    same = _consent(NOW, False)
    assert "said no to" in _read(NG, Purpose.TEACHING, [same, _consent(NOW, False)]).reason


def test_the_allowed_reason_names_the_day_and_every_scope() -> None:
    plain = _read(NG, Purpose.TEACHING, [_consent(NOW - timedelta(days=1))])
    assert plain.reason == "The patient consented to teaching on 31 May 2026."
    assert plain.obligations == frozenset()
    scoped = _read(
        NG, Purpose.TEACHING,
        [_consent(NOW - timedelta(days=1), scopes=frozenset({Scope.DEIDENTIFIED, Scope.INTERNAL}))],
    )  # fmt: skip
    assert scoped.reason == (
        "The patient consented to teaching on 31 May 2026, without details that identify them"
        " and inside this clinic only."
    )
    assert scoped.obligations == {Obligation.DEIDENTIFIED}


def test_internal_only_forbids_export_and_publication() -> None:
    internal = [_consent(scopes=frozenset({Scope.INTERNAL}))]
    assert _read(NG, Purpose.TEACHING, internal).allowed
    exported = _read(NG, Purpose.TEACHING, internal, access=Access.EXPORT)
    assert exported.reason == "The patient allowed teaching inside this clinic only."
    pub = [ConsentFacts(Purpose.PUBLICATION, True, NOW, frozenset({Scope.INTERNAL}))]
    assert not _read(NG, Purpose.PUBLICATION, pub).allowed


@pytest.mark.parametrize("action", list(PatientAction))
def test_the_record_level_decisions_in_plain_words(action: PatientAction) -> None:
    def ask(actor: Actor, owner: str | None = "u-patient", care: bool = True) -> tuple[bool, str]:
        got = decide_patient(
            actor, action, patient_user_id=owner,
            relationships=_care(NOW - timedelta(days=1)) if care else [], now=NOW,
        )  # fmt: skip
        return got.allowed, got.reason

    if action is PatientAction.DECIDE_DELETION:
        assert ask(ANN) == (False, "A privacy officer decides deletion requests, not the patient.")
        assert ask(BOSS) == (True, "Officer decides deletion requests as the privacy officer.")
    else:
        assert ask(ANN) == (True, "This is your own record.")
    assert ask(ANN, owner="someone else")[1] in {
        "Patients can see only their own record.",
        "A privacy officer decides deletion requests, not the patient.",
    }
    assert ask(ANN, owner=None)[0] is False
    if action is PatientAction.READ_HISTORY:
        assert ask(BOSS) == (True, "Officer reviews access as the privacy officer.")
    team = action in {PatientAction.LIST_PHOTOS, PatientAction.UPLOAD, PatientAction.REQUEST_PHOTO}
    if team:
        assert ask(LEE) == (True, "Dr. Lee is part of the patient's care team.")
        assert ask(LEE, care=False) == (
            False,
            "Dr. Lee has no care relationship with this patient.",
        )
    else:
        assert ask(LEE) == (
            False,
            "People in the clinician role cannot do this on a patient's record.",
        )
    assert ask(RAY) == (
        False,
        "People in the researcher role cannot do this on a patient's record.",
    )
    nobody = Actor("anon", None, "nobody")
    assert ask(nobody) == (
        False,
        "People in the this account role cannot do this on a patient's record.",
    )


def test_the_first_refusals_say_why_in_plain_words() -> None:
    gone = decide(
        NG, Access.VIEW, PhotoFacts("ph1", "pt1", "u-patient", deleted=True), Purpose.TEACHING,
        consents=[], relationships=[], now=NOW,
    )  # fmt: skip
    assert (gone.allowed, gone.reason) == (False, "This photo has been deleted.")
    nobody = _read(Actor.system("job"), Purpose.CARE, [])
    assert (nobody.allowed, nobody.reason) == (False, "Only signed-in people can open photos.")
    own = _read(ANN, Purpose.CARE, [])
    assert (own.allowed, own.reason) == (True, "This is your own photo.")
    # A grant recorded at the same instant as the refusal in force is not an earlier yes.
    tie = [_consent(NOW, False), _consent(NOW, True)]
    assert (
        _read(NG, Purpose.TEACHING, tie).reason == "The patient said no to teaching on 1 June 2026."
    )


def test_operating_the_service_and_managing_accounts_are_for_administrators() -> None:
    from skinvault.policy.decide import decide_account_management, decide_operation

    ok = decide_operation(BOSS)
    assert (ok.allowed, ok.reason) == (True, "Officer operates the service as an administrator.")
    no = decide_operation(LEE)
    assert (no.allowed, no.reason) == (False, "Only administrators operate the service.")
    manage = decide_account_management(BOSS, target_id="u-lee", action="disable")
    assert (manage.allowed, manage.reason) == (
        True,
        "Officer manages accounts as an administrator.",
    )
    console = decide_account_management(
        Actor.system("console"), target_id="u-boss", action="disable"
    )
    assert console.allowed
    refused = decide_account_management(LEE, target_id="u-ng", action="create")
    assert (refused.allowed, refused.reason) == (False, "Only administrators manage accounts.")
    for action in ("disable", "reset-totp"):
        own = decide_account_management(BOSS, target_id=BOSS.id, action=action)
        assert (own.allowed, own.reason) == (
            False, "You cannot do this to your own account; ask another administrator."
        )  # fmt: skip
    assert decide_account_management(BOSS, target_id=BOSS.id, action="unlock").allowed
    assert not decide_account_management(
        Actor("system-ish", None, "x"), target_id="t", action="create"
    ).allowed


def test_links_and_tokens_are_withdrawn_by_who_the_contract_names() -> None:
    from skinvault.policy.decide import decide_link_revocation, decide_token_revocation

    def link(actor: Actor, sender: str | None = "u-lee", owner: str | None = "u-patient"):  # type: ignore[no-untyped-def]
        got = decide_link_revocation(actor, sender_id=sender, patient_user_id=owner)
        return got.allowed, got.reason

    assert link(LEE) == (True, "You sent this link.")
    assert link(ANN) == (True, "The link shows your photo.")
    assert link(NG) == (False, "Only the person who sent a link, or the patient, can withdraw it.")
    assert link(Actor("u-lee", None, "x")) == (False, "Only signed-in people can withdraw a link.")
    assert link(LEE, sender=None)[0] is False and link(ANN, owner=None)[0] is False
    mine = decide_token_revocation(LEE, owner_id=LEE.id)
    assert (mine.allowed, mine.reason) == (True, "This is your own token.")
    boss = decide_token_revocation(BOSS, owner_id=LEE.id)
    assert (boss.allowed, boss.reason) == (True, "Officer revokes tokens as an administrator.")
    other = decide_token_revocation(NG, owner_id=LEE.id)
    assert (other.allowed, other.reason) == (
        False,
        "Only the token's owner or an administrator can revoke it.",
    )
    assert not decide_token_revocation(Actor(LEE.id, None, "x"), owner_id=LEE.id).allowed


def test_other_patients_admins_and_future_care_are_refused_in_plain_words() -> None:
    other = _read(Actor("u-bob", Role.PATIENT, "Bob"), Purpose.CARE, [])
    assert (other.allowed, other.reason) == (False, "Patients can see only their own photos.")
    boss = _read(BOSS, Purpose.CARE, [])
    assert boss.reason == "Administrators manage the service but do not look at photos."
    future = _read(LEE, Purpose.CARE, [], relationships=_care(NOW + timedelta(days=1)))
    assert (future.allowed, future.reason) == (
        False, "Dr. Lee has no care relationship with this patient."
    )  # fmt: skip
