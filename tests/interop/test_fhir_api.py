"""The FHIR R4 interface and the DICOM routes against the app, on SQLite and PostgreSQL.

Every resource and Bundle the server returns is checked by the outside validators
(tests/interop/validators.py); the audit log and the patient's history show each export.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from fastapi.testclient import TestClient

from skinvault.actors import Actor, Role
from skinvault.config import load_settings
from skinvault.policy.purposes import Purpose, Scope
from skinvault.services import admin, api_tokens
from skinvault.services.care import start_care
from skinvault.services.consents import record_consent
from skinvault.services.history import access_history
from skinvault.services.photo_store import store_photo
from skinvault.web.app import create_app
from tests import factories
from tests.integration.conftest import database_url  # noqa: F401 — the sqlite+postgresql fixture
from tests.interop.validators import assert_valid

OPERATOR = Actor.system("test")
FHIR_JSON = "application/fhir+json"


@dataclass
class World:
    client: TestClient
    vault: Any
    actors: dict[str, Actor]
    patients: dict[str, str]
    tokens: dict[str, str]
    photo_id: str
    photo_bytes: bytes

    def h(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:  # noqa: F811
    settings = load_settings(data_dir=tmp_path / "data", database_url=database_url)
    app = create_app(settings)
    vault = app.state.vault
    actors, patients, tokens = {}, {}, {}
    for key, role, name in [
        ("ann", Role.PATIENT, "Ann Smith"),
        ("bob", Role.PATIENT, "Bob Jones"),
        ("lee", Role.CLINICIAN, "Dr. Lee"),
        ("ng", Role.EDUCATOR, "Prof. Ng"),
        ("boss", Role.ADMIN, "Admin"),
    ]:
        made = admin.create_user(
            vault,
            role=role,
            email=f"{key}@example.org",
            password="a long enough password",
            actor=OPERATOR,
            name=name,
        )
        actors[key] = Actor(made.user_id, role, name)
        if made.patient_id:
            patients[key] = made.patient_id
        tokens[key] = api_tokens.issue_api_token(vault, actor=actors[key]).token
    start_care(vault, patient_id=patients["ann"], member_id=actors["lee"].id, actor=OPERATOR)
    stored = store_photo(
        vault,
        patient_id=patients["ann"],
        data=factories.jpeg(),
        actor=actors["ann"],
        site="left-hand",
        note="day 3",
    )
    from skinvault.services.photo_reads import read_photo

    data = read_photo(vault, photo_id=stored.id, actor=actors["ann"], purpose="care").data
    client = TestClient(app)
    yield World(client, vault, actors, patients, tokens, stored.id, data)
    client.close()
    vault.close()


def _fhir(answer: Any, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = answer.json()
    return body


def test_every_fhir_answer_validates_and_says_what_the_record_holds(world: World) -> None:
    c, ann, photo = world.client, world.patients["ann"], world.photo_id
    record_consent(
        world.vault,
        patient_id=ann,
        purpose=Purpose.TEACHING,
        granted=True,
        scopes={Scope.DEIDENTIFIED},
        actor=world.actors["ann"],
    )
    record_consent(
        world.vault,
        patient_id=ann,
        purpose=Purpose.RESEARCH,
        granted=False,
        actor=world.actors["ann"],
    )
    metadata = _fhir(c.get("/fhir/R4/metadata"))
    patient = _fhir(c.get(f"/fhir/R4/Patient/{ann}", headers=world.h("lee")))
    media = _fhir(c.get(f"/fhir/R4/Media/{photo}?purpose=care", headers=world.h("lee")))
    binary = _fhir(
        c.get(f"/fhir/R4/Binary/{photo}?purpose=care", headers=world.h("lee", Accept=FHIR_JSON))
    )
    media_search = _fhir(c.get(f"/fhir/R4/Media?patient={ann}", headers=world.h("lee")))
    consents = _fhir(c.get(f"/fhir/R4/Consent?patient=Patient/{ann}", headers=world.h("ann")))
    events = _fhir(c.get(f"/fhir/R4/AuditEvent?patient={ann}&_count=3", headers=world.h("ann")))
    everything = _fhir(c.get(f"/fhir/R4/Patient/{ann}/$everything", headers=world.h("ann")))
    denied = _fhir(c.get(f"/fhir/R4/Media/{photo}?purpose=care", headers=world.h("ng")), 403)
    missing = _fhir(c.get("/fhir/R4/Media/nope?purpose=care", headers=world.h("lee")), 404)
    unauthenticated = _fhir(c.get(f"/fhir/R4/Patient/{ann}"), 401)
    no_purpose = _fhir(c.get(f"/fhir/R4/Binary/{photo}", headers=world.h("lee")), 403)
    assert_valid(
        metadata,
        patient,
        media,
        binary,
        media_search,
        consents,
        events,
        everything,
        denied,
        missing,
        unauthenticated,
        no_purpose,
    )

    assert metadata["fhirVersion"] == "4.0.1"
    assert patient["name"] == [{"text": "Ann Smith"}]
    assert media["subject"] == {"reference": f"Patient/{ann}"}
    codes = {c["code"] for c in media["bodySite"]["coding"]}
    assert {"33712006", "33712006:272741003=7771000"} == codes  # skin of hand; ..., left
    content = media["content"]
    assert content["contentType"] == "image/jpeg" and content["size"] == len(world.photo_bytes)
    assert base64.b64decode(content["hash"]) == hashlib.sha1(world.photo_bytes).digest()  # noqa: S324
    assert base64.b64decode(binary["data"]) == world.photo_bytes
    assert media_search["total"] == 1 and media_search["entry"][0]["resource"]["id"] == photo
    by_purpose = {
        c["resource"]["provision"]["purpose"][0]["code"]: c["resource"] for c in consents["entry"]
    }
    assert by_purpose["HOPERAT"]["provision"]["type"] == "permit"
    assert by_purpose["HOPERAT"]["provision"]["securityLabel"][0]["code"] == "DEID"
    assert by_purpose["HRESCH"]["provision"]["type"] == "deny"
    assert events["total"] > 3 and len(events["entry"]) == 3
    assert any(link["relation"] == "next" for link in events["link"])
    kinds = {e["resource"]["resourceType"] for e in everything["entry"]}
    assert kinds == {"Patient", "Media", "Consent", "AuditEvent"}
    assert denied["issue"][0]["code"] == "forbidden"
    assert missing["issue"][0]["code"] == "not-found"
    assert unauthenticated["issue"][0]["code"] == "login"


def test_binary_bytes_are_the_scrubbed_photo_and_reads_are_audited_as_exports(
    world: World,
) -> None:
    c, photo = world.client, world.photo_id
    raw = c.get(f"/fhir/R4/Binary/{photo}", headers=world.h("lee", **{"X-Purpose-Of-Use": "TREAT"}))
    assert raw.status_code == 200 and raw.content == world.photo_bytes
    assert raw.headers["content-type"] == "image/jpeg"
    assert c.get(f"/fhir/R4/Patient/{world.patients['ann']}", headers=world.h("lee")).is_success
    history = [e.text for e in access_history(world.vault, world.patients["ann"])]
    assert any(t.startswith("Dr. Lee exported, through the FHIR interface, your") for t in history)
    assert any(
        t.startswith("Dr. Lee read, through the FHIR interface, the details of your photos")
        for t in history
    ), history


def test_a_refused_fhir_read_is_in_the_patients_history(world: World) -> None:
    answer = world.client.get(
        f"/fhir/R4/Binary/{world.photo_id}?purpose=teaching", headers=world.h("ng")
    )
    assert answer.status_code == 403
    history = [e for e in access_history(world.vault, world.patients["ann"])]
    refused = [e for e in history if e.action == "photo:export-fhir" and e.outcome == "denied"]
    assert refused and "Prof. Ng was refused" in refused[0].text


def test_the_dicom_route_serves_the_export_and_audits_it(world: World) -> None:
    c = world.client
    answer = c.get(f"/api/v1/photos/{world.photo_id}/dicom?purpose=care", headers=world.h("lee"))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/dicom"
    ds = pydicom.dcmread(io.BytesIO(answer.content))
    assert ds.PatientID == world.patients["ann"] and str(ds.PatientName) == "Ann Smith"
    again = c.get(f"/api/v1/photos/{world.photo_id}/dicom?purpose=care", headers=world.h("lee"))
    assert pydicom.dcmread(io.BytesIO(again.content)).SOPInstanceUID == ds.SOPInstanceUID
    refused = c.get(f"/api/v1/photos/{world.photo_id}/dicom?purpose=care", headers=world.h("ng"))
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    history = access_history(world.vault, world.patients["ann"])
    assert [e.outcome for e in history if e.action == "photo:export-dicom"] == [
        "allowed",
        "allowed",
        "denied",
    ]
    assert any("exported, as a DICOM file," in e.text for e in history)


def test_an_internal_only_consent_refuses_an_export_but_not_a_view(world: World) -> None:
    ann = world.patients["ann"]
    record_consent(
        world.vault,
        patient_id=ann,
        purpose=Purpose.TEACHING,
        granted=True,
        scopes={Scope.INTERNAL},
        actor=world.actors["ann"],
    )
    c = world.client
    view = c.get(f"/api/v1/photos/{world.photo_id}/content?purpose=teaching", headers=world.h("ng"))
    export = c.get(f"/api/v1/photos/{world.photo_id}/dicom?purpose=teaching", headers=world.h("ng"))
    assert view.status_code == 200
    assert export.status_code == 403 and "inside this clinic only" in export.json()["detail"]


def _media_body(patient_id: str, content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Media",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "createdDateTime": "2026-05-02",
        "bodySite": {
            "coding": [{"system": "http://snomed.info/sct", "code": "33712006:272741003=24028007"}]
        },
        "content": content,
        **extra,
    }


def test_post_media_stores_a_scrubbed_photo_three_ways(world: World) -> None:
    c, ann = world.client, world.patients["ann"]
    image = factories.jpeg()
    encoded = base64.b64encode(image).decode()
    inline = _media_body(ann, {"contentType": "image/jpeg", "data": encoded})
    contained = _media_body(
        ann,
        {"contentType": "image/jpeg", "url": "#img"},
        contained=[
            {"resourceType": "Binary", "id": "img", "contentType": "image/jpeg", "data": encoded}
        ],
    )
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:5d2c1c4e-0000-4000-8000-000000000001",
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "image/jpeg",
                    "data": encoded,
                },
                "request": {"method": "POST", "url": "Binary"},
            },
            {
                "resource": _media_body(
                    ann,
                    {
                        "contentType": "image/jpeg",
                        "url": "urn:uuid:5d2c1c4e-0000-4000-8000-000000000001",
                    },
                ),
                "request": {"method": "POST", "url": "Media"},
            },
        ],
    }
    assert_valid(inline, contained, transaction)  # what an integrator sends is valid R4 too
    created = []
    for body in (inline, contained, transaction):
        answer = c.post("/fhir/R4/Media", json=body, headers=world.h("lee"))
        media = _fhir(answer, 201)
        assert answer.headers["location"].endswith(f"/fhir/R4/Media/{media['id']}")
        created.append(media)
    assert_valid(*created)
    stored = c.get(f"/fhir/R4/Binary/{created[0]['id']}?purpose=care", headers=world.h("lee"))
    assert stored.status_code == 200
    assert b"GPS" not in stored.content and b"Jane Patient" not in stored.content  # scrubbed
    again = _fhir(c.get(f"/fhir/R4/Media/{created[2]['id']}?purpose=care", headers=world.h("lee")))
    assert again["createdDateTime"] == "2026-05-02"
    site = again["bodySite"]
    assert "33712006:272741003=24028007" in {x["code"] for x in site.get("coding", [])}, site


def test_post_media_refusals_are_operation_outcomes(world: World) -> None:
    c, ann = world.client, world.patients["ann"]
    not_an_image = _media_body(ann, {"contentType": "image/jpeg", "data": "aGVsbG8="})
    no_subject = {"resourceType": "Media", "status": "completed", "content": {"data": "aGk="}}
    outcomes = [
        _fhir(c.post("/fhir/R4/Media", content=b"{", headers=world.h("lee")), 400),
        _fhir(c.post("/fhir/R4/Media", json=no_subject, headers=world.h("lee")), 400),
        _fhir(c.post("/fhir/R4/Media", json=not_an_image, headers=world.h("lee")), 422),
        _fhir(c.post("/fhir/R4/Media", json=not_an_image, headers=world.h("ng")), 403),
    ]
    assert_valid(*outcomes)


def test_paging_follows_count_and_offset_and_refuses_a_bad_count(world: World) -> None:
    c, ann = world.client, world.patients["ann"]
    first = _fhir(c.get(f"/fhir/R4/AuditEvent?patient={ann}&_count=2", headers=world.h("ann")))
    assert len(first["entry"]) == 2 and first["total"] > 2, first["total"]
    (following,) = [link["url"] for link in first["link"] if link["relation"] == "next"]
    assert "_count=2" in following and "_offset=2" in following
    second = _fhir(c.get(following, headers=world.h("ann")))
    ids = {e["resource"]["id"] for e in first["entry"]}
    assert ids.isdisjoint({e["resource"]["id"] for e in second["entry"]})
    for bad in ("_count=0", "_count=many", "_offset=-1"):
        outcome = _fhir(
            c.get(f"/fhir/R4/AuditEvent?patient={ann}&{bad}", headers=world.h("ann")), 400
        )
        assert bad.split("=")[0] in str(outcome["issue"]), outcome
    assert_valid(first, second)

