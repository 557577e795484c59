"""docs/interop.md's mapping tables match the code."""

from __future__ import annotations

from skinvault.interop.fhir import SCOPE_LABELS
from skinvault.interop.sites import table
from skinvault.policy.purposes import Purpose
from tests.conftest import ROOT

GUIDE = (ROOT / "docs" / "interop.md").read_text()


def test_every_purpose_scope_and_site_mapping_is_in_the_guide() -> None:
    for purpose in Purpose:
        assert f"| `{purpose.value}` | `{purpose.hl7_code}` |" in GUIDE, purpose
    for scope, (system, code, _display) in SCOPE_LABELS.items():
        assert f"| `{scope.value}` | `{system}` | `{code}` |" in GUIDE, scope
    for site, coded in table():
        assert f"| `{site}` | {coded.code} | {coded.meaning} |" in GUIDE, site
