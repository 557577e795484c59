"""Deletion requests on SQLite and PostgreSQL: filed, decided with an explanation, carried out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from skinvault.actors import Actor, Role
from skinvault.audit.chain import Event
from skinvault.audit.log import tail
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.crypto.envelope import seal
from skinvault.db.models import AuditEvent, Derivative, Photo, ShareLink
from skinvault.errors import NotFound
from skinvault.policy.purposes import Purpose
from skinvault.services import admin, deletion, jobs, photo_reads, photo_store
from skinvault.services.care import start_care
from skinvault.services.consents import consent_history, consents_for, record_consent
from skinvault.services.deletion import (
    DeletionDecision,
    DeletionScope,
    RequestInvalid,
    decide_request,
    file_request,
    requests_for,
)
from tests import factories

OPERATOR = Actor.system("test")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class SettableClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


@pytest.fixture
def vault(database_url: str, tmp_path: Path, clock: SettableClock) -> Iterator[Vault]:
    settings = load_settings(data_dir=tmp_path / "data", database_url=database_url)
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


def officer(vault: Vault) -> Actor:
    """The privacy officer (an administrator), created on first use."""
    from skinvault.services.records import user_by_email

    existing = user_by_email(vault, "privacy@clinic.example")
    user_id = (
        existing.id
        if existing
        else admin.create_user(
            vault,
            role=Role.ADMIN,
            email="privacy@clinic.example",
            password="a long passphrase",
            actor=OPERATOR,
        ).user_id
    )
    return Actor(user_id, Role.ADMIN, "Privacy officer")


def _new_patient(vault: Vault, clinician: Actor, email: str) -> tuple[Actor, str]:
    user = admin.create_user(
        vault, role=Role.PATIENT, email=email, password="correct horse 42", actor=OPERATOR
    )
    assert user.patient_id
    start_care(vault, patient_id=user.patient_id, member_id=clinician.id, actor=OPERATOR)
    return Actor(user.user_id, Role.PATIENT, "Pat"), user.patient_id


@pytest.fixture
def patient(vault: Vault, clinician: Actor) -> tuple[Actor, str]:
    return _new_patient(vault, clinician, "pat@example.org")


def store(vault: Vault, patient_id: str, clinician: Actor, site: str) -> str:
    stored = photo_store.store_photo(
        vault, patient_id=patient_id, data=factories.jpeg(), actor=clinician, site=site
    )
    jobs.run_pending(vault)  # its thumbnail, as a worker would make it
    return stored.id


def add_copy(vault: Vault, photo_id: str, kind: str) -> str:
    copy_id = vault.tokens.new_id()
    kek = vault.keys.current()
    sealed = seal(b"a teaching copy", object_id=copy_id, kind=kind, kek=kek)
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


def add_link(vault: Vault, photo_id: str) -> str:
    link_id = vault.tokens.new_id()
    with vault.sessions.begin() as session:
        session.add(
            ShareLink(
                id=link_id,
                photo_id=photo_id,
                recipient="gp@example.org",
                token_hash=vault.tokens.new_id() * 2,
                created_at=vault.clock.now(),
                expires_at=vault.clock.now() + timedelta(days=7),
            )
        )
    return link_id


def row(vault: Vault, model: type[Photo] | type[Derivative] | type[ShareLink], id_: str) -> object:
    with vault.sessions() as session:
        found = session.get(model, id_)
        assert found is not None
        return found


def events(vault: Vault) -> list[Event]:
    with vault.sessions() as session:
        return tail(session, 10_000)


def audit_count(vault: Vault) -> int:
    with vault.sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_keep_clinical_keeps_the_record_but_stops_every_secondary_use(
    vault: Vault, clock: SettableClock, clinician: Actor, patient: tuple[Actor, str]
) -> None:
    pat, patient_id = patient
    hand = store(vault, patient_id, clinician, "left-hand")
    knee = store(vault, patient_id, clinician, "right-knee")
    teaching = add_copy(vault, hand, "teaching")
    redacted = add_copy(vault, hand, "redacted")
    knee_copy = add_copy(vault, knee, "deidentified")
    link = add_link(vault, hand)
    for purpose in (Purpose.TEACHING, Purpose.RESEARCH):
        record_consent(vault, patient_id=patient_id, purpose=purpose, granted=True, actor=pat)
    record_consent(
        vault, patient_id=patient_id, purpose=Purpose.AI_TRAINING, granted=False, actor=pat
    )
    teaching_key = row(vault, Derivative, teaching).blob_key  # type: ignore[attr-defined]

    clock.at += timedelta(hours=1)
    filed = file_request(
        vault,
        patient_id=patient_id,
        scope=DeletionScope.SERIES,
        scope_ref="left-hand",
        reason="I no longer want these kept",
        actor=pat,
    )
    assert (filed.status, filed.decision, filed.explanation) == ("open", None, None)
    assert requests_for(vault, patient_id) == [filed]

    clock.at += timedelta(days=2)
    decided = decide_request(
        vault,
        request_id=filed.id,
        decision=DeletionDecision.KEEP_CLINICAL,
        explanation="Medical records must be kept 10 years; nobody else will see them.",
        actor=officer(vault),
    )
    trail = events(vault)  # before the care reads below add theirs
    assert decided.status == "decided"
    assert decided.decision is DeletionDecision.KEEP_CLINICAL
    assert decided.decided_at == clock.at and decided.decided_by == officer(vault).id
    assert requests_for(vault, patient_id) == [decided]
    assert "secondary use stops" in decided.as_json()["decision_means"]  # type: ignore[operator]

    # The clinical record stays, readable for care.
    assert row(vault, Photo, hand).wrapped_dek is not None  # type: ignore[attr-defined]
    assert photo_reads.read_photo(vault, photo_id=hand, actor=clinician, purpose="care").data
    assert photo_reads.read_thumbnail(vault, photo_id=hand, actor=clinician, purpose="care").data
    # Every secondary consent in force is withdrawn; a refusal is not recorded twice.
    current = consents_for(vault, patient_id)
    assert current[Purpose.TEACHING].granted is False
    assert current[Purpose.RESEARCH].granted is False
    assert current[Purpose.AI_TRAINING].granted is False
    ai_answers = [c for c in consent_history(vault, patient_id) if c.purpose is Purpose.AI_TRAINING]
    assert len(ai_answers) == 1
    # Secondary copies of photos in scope are shredded; the knee series is out of scope.
    for copy in (teaching, redacted):
        shredded = row(vault, Derivative, copy)
        assert shredded.wrapped_dek is None and shredded.deleted_at == clock.at  # type: ignore[attr-defined]
    assert teaching_key not in set(vault.blobs.keys())
    assert row(vault, Derivative, knee_copy).wrapped_dek is not None  # type: ignore[attr-defined]
    assert row(vault, ShareLink, link).revoked_at == clock.at  # type: ignore[attr-defined]

    steps = [(e.action, e.object, e.purpose) for e in trail]
    request_obj = f"deletion-request:{filed.id}"
    assert steps.index(("deletion:request", request_obj, None)) < steps.index(
        ("consent:revoke", f"patient:{patient_id}", "teaching")
    )
    assert ("consent:revoke", f"patient:{patient_id}", "research") in steps
    assert ("copy:shred", f"derivative:{teaching}", None) in steps
    assert ("copy:shred", f"derivative:{redacted}", None) in steps
    assert steps[-1] == ("deletion:decide", request_obj, None)
    decide_event = trail[-1]
    assert decide_event.reason is not None and decide_event.reason.startswith("keep-clinical")
    assert "Medical records must be kept" in decide_event.reason
    admin.verify_audit(vault)


def test_erasing_one_photo_shreds_it_and_leaves_the_others(
    vault: Vault, clinician: Actor, patient: tuple[Actor, str]
) -> None:
    pat, patient_id = patient
    gone = store(vault, patient_id, clinician, "left-hand")
    kept = store(vault, patient_id, clinician, "left-hand")
    add_copy(vault, gone, "teaching")
    gone_keys = {d.blob_key for d in _derivatives(vault, gone)} | {
        row(vault, Photo, gone).blob_key  # type: ignore[attr-defined]
    }
    filed = file_request(
        vault,
        patient_id=patient_id,
        scope=DeletionScope.PHOTO,
        scope_ref=gone,
        reason="taken by mistake",
        actor=pat,
    )
    decide_request(
        vault,
        request_id=filed.id,
        decision=DeletionDecision.ERASE,
        explanation="Erased as you asked.",
        actor=officer(vault),
    )
    with pytest.raises(NotFound):
        photo_reads.read_photo(vault, photo_id=gone, actor=clinician, purpose="care")
    assert row(vault, Photo, gone).wrapped_dek is None  # type: ignore[attr-defined]
    assert all(d.wrapped_dek is None for d in _derivatives(vault, gone))
    assert not gone_keys & set(vault.blobs.keys())
    assert photo_reads.read_photo(vault, photo_id=kept, actor=clinician, purpose="care").data
    actions = [(e.action, e.object) for e in events(vault)]
    assert ("photo:delete", f"photo:{gone}") in actions
    assert ("deletion:decide", f"deletion-request:{filed.id}") in actions
    admin.verify_audit(vault)


def test_erasing_everything_shreds_every_photo_of_that_patient_only(
    vault: Vault, clinician: Actor, patient: tuple[Actor, str]
) -> None:
    pat, patient_id = patient
    _, other_id = _new_patient(vault, clinician, "other@example.org")
    mine = [store(vault, patient_id, clinician, site) for site in ("left-hand", "back", "")]
    theirs = store(vault, other_id, clinician, "left-hand")
    filed = file_request(
        vault,
        patient_id=patient_id,
        scope=DeletionScope.EVERYTHING,
        scope_ref="ignored",
        reason="",
        actor=pat,
    )
    assert filed.scope_ref is None
    decide_request(
        vault,
        request_id=filed.id,
        decision=DeletionDecision.ERASE,
        explanation="No legal hold applies.",
        actor=officer(vault),
    )
    for photo_id in mine:
        assert row(vault, Photo, photo_id).wrapped_dek is None  # type: ignore[attr-defined]
    assert photo_reads.read_photo(vault, photo_id=theirs, actor=clinician, purpose="care").data
    admin.verify_audit(vault)


def test_a_refusal_changes_nothing_but_the_patient_reads_why(
    vault: Vault, clinician: Actor, patient: tuple[Actor, str]
) -> None:
    pat, patient_id = patient
    photo = store(vault, patient_id, clinician, "left-hand")
    copy = add_copy(vault, photo, "teaching")
    record_consent(vault, patient_id=patient_id, purpose=Purpose.TEACHING, granted=True, actor=pat)
    filed = file_request(
        vault,
        patient_id=patient_id,
        scope=DeletionScope.SERIES,
        scope_ref="left-hand",
        reason="please",
        actor=pat,
    )
    decide_request(
        vault,
        request_id=filed.id,
        decision=DeletionDecision.REFUSE,
        explanation="A court order requires us to keep this series.",
        actor=officer(vault),
    )
    (seen,) = requests_for(vault, patient_id)
    assert seen.decision is DeletionDecision.REFUSE
    assert seen.explanation == "A court order requires us to keep this series."
    assert seen.as_json()["explanation"] == seen.explanation
    assert row(vault, Derivative, copy).wrapped_dek is not None  # type: ignore[attr-defined]
    assert consents_for(vault, patient_id)[Purpose.TEACHING].granted
    assert photo_reads.read_photo(vault, photo_id=photo, actor=clinician, purpose="care").data
    admin.verify_audit(vault)


def test_a_decision_needs_an_explanation_and_an_open_request(
    vault: Vault, clinician: Actor, patient: tuple[Actor, str]
) -> None:
    pat, patient_id = patient
    officer(vault)  # made before counting audit events
    photo = store(vault, patient_id, clinician, "left-hand")
    filed = file_request(
        vault,
        patient_id=patient_id,
        scope=DeletionScope.PHOTO,
        scope_ref=photo,
        reason="",
        actor=pat,
    )
    count = audit_count(vault)
    with pytest.raises(RequestInvalid, match="explanation"):
        decide_request(
            vault,
            request_id=filed.id,
            decision=DeletionDecision.ERASE,
            explanation="  ",
            actor=officer(vault),
        )
    assert audit_count(vault) == count
    assert row(vault, Photo, photo).wrapped_dek is not None  # type: ignore[attr-defined]
    decide_request(
        vault,
        request_id=filed.id,
        decision=DeletionDecision.REFUSE,
        explanation="Needed for your ongoing treatment.",
        actor=officer(vault),
    )
    count = audit_count(vault)
    with pytest.raises(RequestInvalid, match="already decided"):
        decide_request(
            vault,
            request_id=filed.id,
            decision=DeletionDecision.ERASE,
            explanation="Changed my mind.",
            actor=officer(vault),
        )
    with pytest.raises(NotFound):
        decide_request(
            vault,
            request_id="0" * 32,
            decision=DeletionDecision.ERASE,
            explanation="x",
            actor=officer(vault),
        )
    assert audit_count(vault) == count
    assert row(vault, Photo, photo).wrapped_dek is not None  # type: ignore[attr-defined]


def test_a_request_must_name_something_of_that_patient(
    vault: Vault, clinician: Actor, patient: tuple[Actor, str]
) -> None:
    pat, patient_id = patient
    _, other_id = _new_patient(vault, clinician, "other@example.org")
    theirs = store(vault, other_id, clinician, "left-hand")
    with pytest.raises(NotFound):
        file_request(
            vault,
            patient_id=patient_id,
            scope=DeletionScope.PHOTO,
            scope_ref=theirs,
            reason="",
            actor=pat,
        )
    with pytest.raises(NotFound):
        file_request(
            vault,
            patient_id=patient_id,
            scope=DeletionScope.SERIES,
            scope_ref="left-hand",  # only the other patient has photos of it
            reason="",
            actor=pat,
        )
    with pytest.raises(RequestInvalid):
        file_request(
            vault,
            patient_id=patient_id,
            scope=DeletionScope.SERIES,
            scope_ref=None,
            reason="",
            actor=pat,
        )
    assert requests_for(vault, patient_id) == []


def _derivatives(vault: Vault, photo_id: str) -> list[Derivative]:
    with vault.sessions() as session:
        return list(session.scalars(select(Derivative).where(Derivative.photo_id == photo_id)))


def test_only_a_privacy_officer_decides_and_only_the_patient_files(
    vault: Vault, clinician: Actor
) -> None:
    from skinvault.errors import AccessDenied

    pat, patient_id = _new_patient(vault, clinician, "who@example.org")
    with pytest.raises(AccessDenied):
        deletion.file_request(
            vault,
            patient_id=patient_id,
            scope=deletion.DeletionScope.EVERYTHING,
            scope_ref=None,
            reason="",
            actor=clinician,
        )
    request = deletion.file_request(
        vault,
        patient_id=patient_id,
        scope=deletion.DeletionScope.EVERYTHING,
        scope_ref=None,
        reason="moving away",
        actor=pat,
    )
    for someone in (clinician, pat):
        with pytest.raises(AccessDenied):
            deletion.decide_request(
                vault,
                request_id=request.id,
                decision=deletion.DeletionDecision.ERASE,
                explanation="no",
                actor=someone,
            )
    assert deletion.requests_for(vault, patient_id)[0].status == "open"
