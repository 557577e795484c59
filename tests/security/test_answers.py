"""Findings 5, 6, 7, 8 and 10: what the service answers when something goes wrong.

- files the scrubber accepts but Pillow cannot decode: 422, nothing stored, a refused
  store in the audit log (API and portal);
- the patient home with photos with and without a body site;
- a real server fault (a table gone from the database) answers a page or a problem
  document that still carries every security header;
- sign-out needs the session's CSRF token; no answer with patient data may be cached;
- an ended session on a portal page goes to sign-in and comes back after it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from skinvault.actors import Role
from skinvault.services import api_tokens, photo_store, records
from skinvault.web.middleware import SECURITY_HEADERS
from tests import factories
from tests.security.conftest import PASSWORD, Live, csrf_of

FINDINGS = Path(__file__).resolve().parent.parent / "data" / "findings"
UNDECODABLE = sorted(FINDINGS.glob("upload500-*"))


@pytest.mark.parametrize("path", UNDECODABLE, ids=lambda p: p.name)
def test_a_file_pillow_cannot_decode_is_refused_with_422_and_nothing_is_kept(
    live: Live, path: Path
) -> None:
    patient = live.person(Role.PATIENT)
    assert patient.patient_id
    token = api_tokens.issue_api_token(live.vault, actor=patient.actor).token
    client = live.client()
    answer = client.post(
        f"/api/v1/patients/{patient.patient_id}/photos",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "cannot be decoded" in answer.json()["detail"]
    portal = live.client()
    csrf = live.sign_in(portal, patient)
    page = portal.post(
        "/portal/upload",
        data={"csrf": csrf, "patient_id": patient.patient_id, "site": "back"},
        files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
    )
    assert page.status_code == 422 and "cannot be decoded" in page.text
    assert records.list_photos(live.vault, actor=patient.actor, patient_id=patient.patient_id) == []
    assert list(live.vault.blobs.keys()) == []
    refused = [e for e in live.vault_events("photo:store") if e.outcome == "failed"]
    assert len(refused) == 2


def test_the_patient_home_shows_photos_with_and_without_a_site(live: Live) -> None:
    patient, clinician = live.person(Role.PATIENT), live.person(Role.CLINICIAN)
    live.relate(patient, clinician)
    assert patient.patient_id
    for site in ("back", None):  # a care-team member's upload without a site is enough
        photo_store.store_photo(
            live.vault, patient_id=patient.patient_id, data=factories.jpeg(),
            actor=clinician.actor, site=site,
        )  # fmt: skip
    client = live.client()
    live.sign_in(client, patient)
    home = client.get("/portal")
    assert home.status_code == 200
    assert "no site" in home.text and "back" in home.text


def test_a_server_fault_answers_with_every_security_header(live: Live) -> None:
    patient = live.person(Role.PATIENT)
    client = live.client()
    live.sign_in(client, patient)
    token = api_tokens.issue_api_token(live.vault, actor=patient.actor).token
    with live.vault.engine.begin() as conn:
        conn.execute(text("DROP TABLE consents"))  # a fault no user could cause
    page = client.get("/portal/consents")
    api = client.get(
        f"/api/v1/patients/{patient.patient_id}/consents",
        headers={"Authorization": f"Bearer {token}"},
    )
    for answer in (page, api):
        assert answer.status_code == 500
        for name in SECURITY_HEADERS:
            assert name in answer.headers, (answer.request.url, name)
        assert answer.headers["cache-control"] == "no-store"
        assert "consents" not in answer.text.lower().replace("/portal/consents", "")
    assert page.headers["content-type"].startswith("text/html")
    assert "Something went wrong on our side" in page.text
    assert api.headers["content-type"].startswith("application/problem+json")


def test_sign_out_needs_the_csrf_token(live: Live) -> None:
    patient = live.person(Role.PATIENT)
    client = live.client()
    csrf = live.sign_in(client, patient)
    forged = client.post("/logout")  # what another site's form could send
    assert forged.status_code == 401
    assert client.get("/portal").status_code == 200  # still signed in
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/portal").status_code == 303


def test_nothing_with_patient_data_may_be_cached(live: Live) -> None:
    patient = live.person(Role.PATIENT)
    assert patient.patient_id
    stored = photo_store.store_photo(
        live.vault, patient_id=patient.patient_id, data=factories.jpeg(), actor=patient.actor,
        site="back",
    )  # fmt: skip
    client = live.client()
    live.sign_in(client, patient)
    token = api_tokens.issue_api_token(live.vault, actor=patient.actor).token
    bearer = {"Authorization": f"Bearer {token}"}
    for url, headers in (
        ("/portal", {}),
        (f"/portal/photos/{stored.id}?purpose=care", {}),
        ("/portal/history", {}),
        (f"/api/v1/patients/{patient.patient_id}/photos", bearer),
        (f"/api/v1/photos/{stored.id}?purpose=care", bearer),
        (f"/api/v1/patients/{patient.patient_id}/access-history", bearer),
    ):
        answer = client.get(url, headers=headers)
        assert answer.status_code == 200, url
        assert answer.headers.get("cache-control") == "no-store", url


def test_an_ended_session_goes_to_sign_in_and_comes_back(live: Live) -> None:
    patient = live.person(Role.PATIENT)
    client = live.client()
    csrf = live.sign_in(client, patient)
    client.post("/logout", data={"csrf": csrf})
    page = client.get("/portal/history?x=1")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fportal%2Fhistory%3Fx%3D1"
    form = client.get(page.headers["location"])
    assert 'name="next" value="/portal/history?x=1"' in form.text
    back = client.post(
        "/login", data={"email": patient.email, "password": PASSWORD, "next": "/portal/history?x=1"}
    )
    assert back.status_code == 303 and back.headers["location"] == "/portal/history?x=1"
    # Never a redirect off the site.
    client.post("/logout", data={"csrf": csrf_of(client.get("/portal/account").text)})
    away = client.post(
        "/login", data={"email": patient.email, "password": PASSWORD, "next": "//evil.example/"}
    )
    assert away.headers["location"] == "/portal"
    # The API keeps answering problem documents.
    api = live.client().get(f"/api/v1/patients/{patient.patient_id}/photos")
    assert api.status_code == 401
    assert api.headers["content-type"].startswith("application/problem+json")
