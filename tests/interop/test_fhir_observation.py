"""Observations for the depigmented-area measurements, and Consent/AuditEvent read by id.

Run on SQLite and PostgreSQL; every answer goes through the outside validators
(tests/interop/validators.py), which are first shown to fail on a broken Observation.
"""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, datetime
from typing import Any

import numpy as np
from PIL import Image

from skinvault.interop import fhir
from skinvault.interop.sites import coded
from skinvault.services import record_export, tracking
from skinvault.services.history import access_history
from skinvault.services.photo_reads import read_photo
from skinvault.services.photo_store import store_photo
from tests.integration.conftest import database_url  # noqa: F401 — sqlite+postgresql
from tests.interop import test_fhir_api
from tests.interop.test_fhir_api import World, _fhir
from tests.interop.validators import assert_valid, validate
from tests.unit.test_tracking_measure import _photo

NOW = datetime(2026, 5, 3, 10, 0, tzinfo=UTC)
world = test_fhir_api.world  # the same app, accounts and photo as the other FHIR tests


def _jpeg(bgr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(bgr[:, :, ::-1].copy()).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _good_observation() -> dict[str, Any]:
    return fhir.observation(
        fhir.ObservationFacts(
            measurement_id="m1",
            photo_id="p1",
            patient_id="pt1",
            site="forearm-back-left",
            site_label="Back of the left forearm",
            effective=NOW.date(),
            issued=NOW,
            kind="depigmented-share",
            value=12.345,
            method="chroma-own-skin",
            version="2",
            notes=("no colour card found",),
            colour_reference="own-skin",
        )
    )


def test_the_validators_fail_a_broken_observation_and_pass_the_good_one() -> None:
    good = _good_observation()
    no_status = {k: v for k, v in good.items() if k != "status"}
    text_value = {**good, "valueQuantity": {"value": "twelve", "unit": "%"}}
    no_code = {k: v for k, v in good.items() if k != "code"}
    value_and_absent = {  # obs-6: dataAbsentReason only when there is no value
        **good,
        "dataAbsentReason": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "code": "error",
                }
            ]
        },
    }
    ok, status, typed, code, absent = validate(
        [good, no_status, text_value, no_code, value_and_absent]
    )
    assert ok.errors == [] and ok.invariants_checked > 0, ok.errors
    assert any("status" in e for e in status.medplum), status  # (the schema lists no required)
    assert any("status" in e for e in status.fhirkit), status
    assert typed.schema and typed.medplum and typed.fhirkit, typed
    assert code.schema and any("code" in e for e in code.medplum), code
    assert any("obs-6" in e for e in absent.invariants), absent
    assert any("obs-6" in e for e in absent.medplum), absent


def _measured(world: World, share: float, gain: float = 1.0) -> str:
    stored = store_photo(
        world.vault,
        patient_id=world.patients["ann"],
        data=_jpeg(_photo(share, gain=gain)[0]),
        actor=world.actors["ann"],
        site="forearm-back-left",
    )
    tracking.measure_photo(world.vault, stored.id)
    return stored.id


def test_observations_carry_the_stored_measurement_and_validate(world: World) -> None:
    c, ann = world.client, world.patients["ann"]
    photo = _measured(world, 0.20)
    stored = {
        m.kind: m for m in _rows(world, photo)
    }  # what tracking stored: depigmented-share and skin-share
    search = _fhir(c.get(f"/fhir/R4/Observation?patient={ann}", headers=world.h("lee")))
    dep = next(
        e["resource"]
        for e in search["entry"]
        if e["resource"]["code"]["coding"][0]["code"] == "depigmented-share"
    )
    one = _fhir(c.get(f"/fhir/R4/Observation/{dep['id']}?purpose=care", headers=world.h("lee")))
    everything = _fhir(c.get(f"/fhir/R4/Patient/{ann}/$everything", headers=world.h("ann")))
    metadata = _fhir(c.get("/fhir/R4/metadata"))
    missing = _fhir(c.get("/fhir/R4/Observation/nope?purpose=care", headers=world.h("lee")), 404)
    no_purpose = _fhir(c.get(f"/fhir/R4/Observation/{dep['id']}", headers=world.h("lee")), 403)
    refused = _fhir(
        c.get(f"/fhir/R4/Observation/{dep['id']}?purpose=teaching", headers=world.h("ng")), 403
    )
    assert_valid(search, one, everything, metadata, missing, no_purpose, refused)

    assert search["total"] == 2 and one == dep
    quantity = one["valueQuantity"]
    assert quantity == {
        "value": round(stored["depigmented-share"].value, 2),
        "unit": "%",
        "system": "http://unitsofmeasure.org",
        "code": "%",
    }
    assert abs(quantity["value"] - 20) < 3  # the disc covers a fifth of the skin
    assert one["subject"] == {"reference": f"Patient/{ann}"}
    assert one["derivedFrom"] == [{"reference": f"Media/{photo}"}]
    site = coded("forearm-back-left")
    assert site is not None and site.laterality == "L"
    codes = {x["code"] for x in one["bodySite"]["coding"]}
    assert codes == {site.code, f"{site.code}:272741003=7771000"}  # the region; ..., left
    assert one["method"]["coding"][0]["code"] == stored["depigmented-share"].method
    assert "not a diagnosis" in one["note"][0]["text"]
    kinds = [e["resource"]["resourceType"] for e in everything["entry"]]
    assert kinds.count("Observation") == 2
    rest = {
        r["type"]: {i["code"] for i in r["interaction"]} for r in metadata["rest"][0]["resource"]
    }
    assert rest["Observation"] == {"read", "search-type"}
    assert "read" in rest["Consent"] and "read" in rest["AuditEvent"]
    assert refused["issue"][0]["code"] == "forbidden"

    history = access_history(world.vault, ann)
    shown = [e for e in history if e.action == "measurement:export-fhir"]
    assert [e.outcome for e in shown] == ["allowed", "allowed", "allowed", "denied"]
    assert shown[0].text.startswith(
        "Dr. Lee exported, through the FHIR interface, the measurements of your"
    ), shown[0].text
    assert "Prof. Ng was refused" in shown[-1].text


def _rows(world: World, photo_id: str) -> list[Any]:
    from sqlalchemy import select

    from skinvault.db.models import Measurement

    with world.vault.reading() as session:
        rows = list(session.scalars(select(Measurement).where(Measurement.photo_id == photo_id)))
        session.expunge_all()
        return rows


def test_consent_and_audit_event_read_by_id_follow_the_search_policy(world: World) -> None:
    from skinvault.policy.purposes import Purpose
    from skinvault.services.consents import record_consent

    c, ann = world.client, world.patients["ann"]
    record_consent(
        world.vault,
        patient_id=ann,
        purpose=Purpose.RESEARCH,
        granted=False,
        actor=world.actors["ann"],
    )
    listed = _fhir(c.get(f"/fhir/R4/Consent?patient={ann}", headers=world.h("ann")))
    consent_id = listed["entry"][0]["resource"]["id"]
    events = _fhir(c.get(f"/fhir/R4/AuditEvent?patient={ann}", headers=world.h("ann")))
    event_id = events["entry"][0]["resource"]["id"]
    consent = _fhir(c.get(f"/fhir/R4/Consent/{consent_id}", headers=world.h("ann")))
    event = _fhir(c.get(f"/fhir/R4/AuditEvent/{event_id}", headers=world.h("ann")))
    other = _fhir(c.get(f"/fhir/R4/Consent/{consent_id}", headers=world.h("bob")), 403)
    other_event = _fhir(c.get(f"/fhir/R4/AuditEvent/{event_id}", headers=world.h("bob")), 403)
    gone = _fhir(c.get("/fhir/R4/Consent/nope", headers=world.h("ann")), 404)
    no_event = _fhir(c.get("/fhir/R4/AuditEvent/999999", headers=world.h("ann")), 404)
    assert_valid(consent, event, other, other_event, gone, no_event)
    assert consent == listed["entry"][0]["resource"]
    assert event == events["entry"][0]["resource"]
    reads = [
        e
        for e in record_export._events(world.vault, ann)
        if e.action == "record:export-fhir" and e.actor.startswith(world.actors["bob"].id)
    ]
    assert [e.outcome for e in reads] == ["denied", "denied"]  # Bob's tries are in Ann's log


def test_media_search_pages_decrypt_only_the_page_and_hash_the_bytes(world: World) -> None:
    c, ann = world.client, world.patients["ann"]
    second = store_photo(
        world.vault,
        patient_id=ann,
        data=_jpeg(_photo(0.1)[0]),
        actor=world.actors["ann"],
        site="face",
    )
    first = _fhir(c.get(f"/fhir/R4/Media?patient={ann}&_count=1", headers=world.h("lee")))
    following = _fhir(
        c.get(f"/fhir/R4/Media?patient={ann}&_count=1&_offset=1", headers=world.h("lee"))
    )
    assert_valid(first, following)
    assert first["total"] == following["total"] == 2
    assert [len(first["entry"]), len(following["entry"])] == [1, 1]
    assert any(link["relation"] == "next" for link in first["link"])
    assert not any(link["relation"] == "next" for link in following["link"])
    media = following["entry"][0]["resource"]
    data = read_photo(world.vault, photo_id=second.id, actor=world.actors["ann"], purpose="care")
    assert media["id"] == second.id
    assert base64.b64decode(media["content"]["hash"]) == hashlib.sha1(data.data).digest()  # noqa: S324


def test_a_photo_not_measured_is_an_observation_with_a_data_absent_reason(world: World) -> None:
    c = world.client
    photo = _measured(world, 0.20, gain=1.5)  # red clipped on all the skin: not measured
    dep = next(m for m in _rows(world, photo) if m.kind == "depigmented-share")
    assert dep.value is None
    one = _fhir(c.get(f"/fhir/R4/Observation/{dep.id}?purpose=care", headers=world.h("lee")))
    assert_valid(one)  # obs-6 holds: a reason, and no value
    assert "valueQuantity" not in one
    assert one["dataAbsentReason"]["coding"][0]["code"] == "not-performed"
    assert any("overexposed" in n["text"] for n in one["note"]), one["note"]
    skin = next(m for m in _rows(world, photo) if m.kind == "skin-share")
    shown = _fhir(c.get(f"/fhir/R4/Observation/{skin.id}?purpose=care", headers=world.h("lee")))
    assert shown["valueQuantity"]["value"] > 50  # the skin share was measured
    assert not any("not measured" in n["text"] for n in shown["note"]), shown["note"]
