"""Each FHIR validator is shown to fail on a broken resource before it is trusted."""

from __future__ import annotations

from datetime import UTC, datetime

from skinvault.interop import fhir
from skinvault.policy.purposes import Purpose, Scope
from tests.interop.validators import invariants, validate

NOW = datetime(2026, 5, 3, 10, 0, tzinfo=UTC)


def _good_consent() -> dict[str, object]:
    return fhir.consent(
        fhir.ConsentFacts(
            "c1",
            "pt1",
            Purpose.TEACHING,
            True,
            frozenset({Scope.NO_FACE}),
            NOW,
            None,
            None,
            True,
            "2026-11-1",
        )
    )


def test_each_validator_catches_what_it_checks_and_passes_the_good_ones() -> None:
    good = _good_consent()
    no_policy = {k: v for k, v in good.items() if k != "policyRule"}  # breaks ppc-1
    bad_type = {"resourceType": "Patient", "id": "p", "gender": 7, "nickname": "x"}
    bad_code = {"resourceType": "Patient", "id": "p", "gender": "x y "}
    no_status = {
        k: v
        for k, v in fhir.media(
            fhir.MediaFacts("m1", "pt1", "face", "face", NOW, "image/jpeg", 3, b"\0" * 20, 2, 2)
        ).items()
        if k != "status"
    }
    reports = validate([good, no_policy, bad_type, bad_code, no_status])
    ok, policy, typed, coded, status = reports
    assert ok.errors == [] and ok.invariants_checked > 0
    assert any("ppc-1" in e for e in policy.medplum), policy
    assert any("ppc-1" in e for e in policy.invariants), policy
    assert typed.schema, typed  # the R4 JSON schema: a number is not a code; no such element
    assert typed.medplum and typed.fhirkit
    assert any("gender" in e for e in coded.fhirkit), coded
    assert any("status" in e for e in status.medplum), status
    assert any("status" in e for e in status.fhirkit), status


def test_fhirpath_invariants_are_really_evaluated() -> None:
    checked, broken = invariants(fhir.bundle([_good_consent()], base="http://x/fhir/R4"))
    assert checked >= 10 and broken == []
    bad_bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "entry": [{"resource": _good_consent(), "request": {"method": "GET", "url": "x"}}],
    }
    assert invariants(bad_bundle)[1], "bdl-2: a searchset entry has no request"
