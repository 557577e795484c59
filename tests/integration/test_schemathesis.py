"""Property-based API tests: schemathesis against the app's own /openapi.json (SQLite).

Every operation in the schema gets 25 generated requests (valid and invalid ones), once
with a patient's bearer token and once with no credentials. Two properties must hold for
every answer:

- no 5xx (schemathesis' ``not_a_server_error`` check);
- every 4xx is an RFC 9457 document (``Content-Type: application/problem+json``).

Half of the generated requests have their ``patient_id`` replaced by the patient's own,
so authorized paths (uploads, consents, history) are reached, not only 403/404.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from skinvault.actors import Actor, Role
from skinvault.config import load_settings
from skinvault.services import admin
from skinvault.web.app import create_app
from tests import factories

pytestmark = pytest.mark.slow

PASSWORD = "a long enough password"
OPERATOR = Actor.system("test")
MAX_EXAMPLES = 25
PROBLEM = "application/problem+json"
FHIR_JSON = "application/fhir+json"


@dataclass
class Target:
    app: FastAPI
    patient_id: str
    token: str
    photo_id: str


@dataclass
class Findings:
    failures: list[str] = field(default_factory=list)

    def add(self, label: str, case: schemathesis.Case, status: int, why: str) -> None:
        if len(self.failures) < 40:  # enough to act on; the rest would be repeats
            body = f"\n    body: {case.body!r:.200}" if isinstance(case.body, bytes | str) else ""
            self.failures.append(
                f"{label}: {why} (HTTP {status})\n    {case.as_curl_command()}{body}"
            )


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    settings_ = load_settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'skinvault.db'}",
        max_upload_bytes=2 * 1024 * 1024,
    )
    app = create_app(settings_)
    vault = app.state.vault
    made = admin.create_user(
        vault,
        role=Role.PATIENT,
        email="ann@example.org",
        password=PASSWORD,
        actor=OPERATOR,
        name="Ann",
    )
    assert made.patient_id
    with TestClient(app) as client:
        answer = client.post(
            "/api/v1/auth/token", json={"email": "ann@example.org", "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        uploaded = client.post(
            f"/api/v1/patients/{made.patient_id}/photos",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": ("IMG_0001.jpg", factories.jpeg(), "image/jpeg")},
        )
        assert uploaded.status_code == 201, uploaded.text
    yield Target(app, made.patient_id, token, uploaded.json()["id"])
    vault.close()


def _fuzz_operation(
    operation: schemathesis.APIOperation, target: Target, headers: dict[str, str], found: Findings
) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    # valid requests and, as often, ones that break the schema (wrong types, missing fields)
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @given(case=cases, own=st.booleans())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,  # no .hypothesis/ examples database written into the repo
        derandomize=True,  # the same requests on every run: failures reproduce
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case, own: bool) -> None:
        if own and case.path_parameters:
            if "patient_id" in case.path_parameters:
                case.path_parameters["patient_id"] = target.patient_id
            if "photo_id" in case.path_parameters:
                case.path_parameters["photo_id"] = target.photo_id
        response = case.call(headers=headers)
        status = response.status_code
        try:
            case.validate_response(response, checks=[not_a_server_error], headers=headers)
        except AssertionError as exc:
            found.add(label, case, status, str(exc).strip().splitlines()[0] or "server error")
            return
        content_type = response.headers.get("content-type", [""])
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        # FHIR answers its errors as OperationOutcome resources (docs/interop.md), not problem+json.
        expected = FHIR_JSON if " /fhir/R4/" in label else PROBLEM
        if 400 <= status < 500 and not content_type.startswith(expected):
            found.add(label, case, status, f"4xx with Content-Type {content_type!r}")

    run()


def _fuzz(target: Target, headers: dict[str, str]) -> Findings:
    schema = schemathesis.openapi.from_asgi("/openapi.json", target.app)
    found = Findings()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the schema lost its operations"
    for operation in operations:
        _fuzz_operation(operation, target, headers, found)
    return found


def test_no_server_errors_and_problem_json_with_a_patient_token(target: Target) -> None:
    found = _fuzz(target, {"Authorization": f"Bearer {target.token}"})
    assert not found.failures, "\n".join(found.failures)


def test_no_server_errors_and_problem_json_without_credentials(target: Target) -> None:
    found = _fuzz(target, {})
    assert not found.failures, "\n".join(found.failures)
