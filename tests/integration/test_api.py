"""The JSON API with httpx against the app, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient

from skinvault.actors import Actor, Role
from skinvault.config import load_settings
from skinvault.photos.scrub import scrub
from skinvault.policy.decide import (
    Access,
    CareFacts,
    ConsentFacts,
    PhotoFacts,
    decide,
)
from skinvault.policy.purposes import Purpose
from skinvault.services import admin, jobs
from skinvault.services.care import care_facts, start_care
from skinvault.services.consents import consent_facts
from skinvault.services.totp import begin_totp_enrolment, confirm_totp
from skinvault.web.app import create_app
from tests import factories

PASSWORD = "a long enough password"
OPERATOR = Actor.system("test")
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"RIFF", b"II*\x00", b"MM\x00*")


@dataclass
class User:
    actor: Actor
    email: str
    patient_id: str | None
    token: str


@dataclass
class World:
    client: TestClient
    users: dict[str, User]
    photo_id: str  # Ann's photo
    other_photo_id: str  # Bob's photo

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.users[who].token}"}


def _make(app_vault: object, role: Role, email: str, name: str) -> User:
    vault = app_vault
    made = admin.create_user(
        vault,
        role=role,
        email=email,
        password=PASSWORD,
        actor=OPERATOR,
        name=name,  # type: ignore[arg-type]
    )
    totp = None
    if role is not Role.PATIENT:
        enrolment = begin_totp_enrolment(vault, made.user_id)  # type: ignore[arg-type]
        code = pyotp.TOTP(enrolment.secret).now()
        assert confirm_totp(vault, made.user_id, code)  # type: ignore[arg-type]
        totp = enrolment.secret
    return User(Actor(made.user_id, role, name), email, made.patient_id, totp or "")


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    settings = load_settings(
        data_dir=tmp_path / "data", database_url=database_url, max_upload_bytes=2 * 1024 * 1024
    )
    app = create_app(settings)
    vault = app.state.vault
    client = TestClient(app)
    users = {
        "ann": _make(vault, Role.PATIENT, "ann@example.org", "Ann"),
        "bob": _make(vault, Role.PATIENT, "bob@example.org", "Bob"),
        "lee": _make(vault, Role.CLINICIAN, "lee@clinic.example", "Dr. Lee"),
        "kim": _make(vault, Role.CLINICIAN, "kim@clinic.example", "Dr. Kim"),
        "sam": _make(vault, Role.STAFF, "sam@clinic.example", "Sam"),
        "ng": _make(vault, Role.EDUCATOR, "ng@uni.example", "Prof. Ng"),
        "rao": _make(vault, Role.RESEARCHER, "rao@uni.example", "Dr. Rao"),
        "boss": _make(vault, Role.ADMIN, "boss@clinic.example", "Admin"),
    }
    start_care(
        vault, patient_id=users["ann"].patient_id, member_id=users["lee"].actor.id, actor=OPERATOR
    )
    start_care(
        vault, patient_id=users["bob"].patient_id, member_id=users["kim"].actor.id, actor=OPERATOR
    )
    for user in users.values():
        body = {"email": user.email, "password": PASSWORD}
        if user.token:
            body["totp"] = pyotp.TOTP(user.token).now()
        answer = client.post("/api/v1/auth/token", json=body)
        assert answer.status_code == 200, answer.text
        user.token = answer.json()["access_token"]
    w = World(client, users, "", "")
    w.photo_id = _upload(w, "ann", factories.jpeg()).json()["id"]
    w.other_photo_id = _upload(w, "bob", factories.png()).json()["id"]
    jobs.run_pending(vault)  # their thumbnails, as the server's worker thread makes them
    yield w
    client.close()
    vault.close()


def _upload(w: World, who: str, data: bytes, patient: str | None = None, site: str = "left-hand"):  # type: ignore[no-untyped-def]
    pid = w.users[patient or who].patient_id
    return w.client.post(
        f"/api/v1/patients/{pid}/photos",
        headers=w.headers(who),
        files={"file": ("IMG_0001.jpg", data, "image/jpeg")},
        data={"site": site, "note": "day 3"},
    )


def _assert_problem(answer, status: int) -> None:  # type: ignore[no-untyped-def]
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert not answer.content.startswith(IMAGE_MAGIC)


def test_tokens_need_the_right_password_and_totp(world: World) -> None:
    c = world.client
    _assert_problem(
        c.post("/api/v1/auth/token", json={"email": "ann@example.org", "password": "nope"}), 401
    )
    _assert_problem(
        c.post("/api/v1/auth/token", json={"email": "lee@clinic.example", "password": PASSWORD}),
        401,
    )
    _assert_problem(c.get(f"/api/v1/photos/{world.photo_id}/content?purpose=care"), 401)
    _assert_problem(
        c.get(f"/api/v1/photos/{world.photo_id}/content?purpose=care",
              headers={"Authorization": "Bearer svk_forged"}), 401
    )  # fmt: skip


def test_an_upload_is_scrubbed_and_reads_back_for_care(world: World) -> None:
    original = factories.jpeg()
    answer = _upload(world, "ann", original)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["site"] == "hand-left"  # the old free-text "left-hand" maps to the coded site
    assert {"location", "device", "person"} <= {f["category"] for f in body["findings"]}
    content = world.client.get(
        f"/api/v1/photos/{body['id']}/content?purpose=care", headers=world.headers("lee")
    )
    assert content.status_code == 200
    assert content.content == scrub(original)[0]
    assert content.headers["content-type"] == "image/jpeg"
    assert content.headers["cache-control"] == "no-store"
    listed = world.client.get(
        f"/api/v1/patients/{world.users['ann'].patient_id}/photos", headers=world.headers("ann")
    ).json()
    assert body["id"] in {p["id"] for p in listed["photos"]}


def test_bad_and_oversized_uploads_get_one_clear_error_and_store_nothing(world: World) -> None:
    before = world.client.get(
        f"/api/v1/patients/{world.users['ann'].patient_id}/photos", headers=world.headers("ann")
    ).json()["photos"]
    _assert_problem(_upload(world, "ann", b"GIF89a" + bytes(64)), 422)
    _assert_problem(_upload(world, "ann", factories.jpeg()[:200]), 422)
    _assert_problem(_upload(world, "ann", b"\xff\xd8\xff" + bytes(3 * 1024 * 1024)), 413)
    no_file = world.client.post(
        f"/api/v1/patients/{world.users['ann'].patient_id}/photos",
        headers=world.headers("ann"),
        data={"site": "x"},
        files={"other": ("a.txt", b"hello", "text/plain")},
    )
    _assert_problem(no_file, 400)
    after = world.client.get(
        f"/api/v1/patients/{world.users['ann'].patient_id}/photos", headers=world.headers("ann")
    ).json()["photos"]
    assert after == before


def test_purpose_is_required_and_must_be_known(world: World) -> None:
    url = f"/api/v1/photos/{world.photo_id}/content"
    _assert_problem(world.client.get(url, headers=world.headers("lee")), 422)
    _assert_problem(world.client.get(url + "?purpose=marketing", headers=world.headers("lee")), 422)


def test_consent_grant_then_revoke_through_the_api(world: World) -> None:
    ann = world.users["ann"]
    url = f"/api/v1/patients/{ann.patient_id}/consents/teaching"
    content = f"/api/v1/photos/{world.photo_id}/content?purpose=teaching"
    _assert_problem(world.client.get(content, headers=world.headers("ng")), 403)
    granted = world.client.put(
        url, json={"granted": True, "scopes": ["deidentified"], "expires_at": None},
        headers=world.headers("ann"),
    )  # fmt: skip
    assert granted.status_code == 200 and granted.json()["granted"] is True
    seen = world.client.get(content, headers=world.headers("ng"))
    assert seen.status_code == 200 and seen.headers["x-obligations"] == "deidentified"
    details = world.client.get(
        f"/api/v1/photos/{world.photo_id}?purpose=teaching", headers=world.headers("ng")
    ).json()
    assert details["patient_id"] is None and details["note"] is None
    _assert_problem(world.client.put(url, json={"granted": True}, headers=world.headers("ng")), 403)
    revoked = world.client.put(url, json={"granted": False}, headers=world.headers("ann"))
    assert revoked.json()["granted"] is False
    _assert_problem(world.client.get(content, headers=world.headers("ng")), 403)
    history = world.client.get(
        f"/api/v1/patients/{ann.patient_id}/access-history", headers=world.headers("ann")
    ).json()["events"]
    texts = [e["text"] for e in history]
    assert any(t.startswith("Prof. Ng viewed your left hand photo") for t in texts)
    assert any("withdrew consent for teaching" in t for t in texts)
    receipt = world.client.get(url + "/receipt", headers=world.headers("ann")).json()
    assert receipt["answer"] == "refused" and receipt["purpose_code"]["code"] == "HOPERAT"


def test_share_links_open_once_and_then_say_why_not(world: World) -> None:
    made = world.client.post(
        f"/api/v1/photos/{world.photo_id}/share-links",
        json={"recipient": "Dr. Gray (GP)", "expires_in": 3600, "single_use": True},
        headers=world.headers("ann"),
    )
    assert made.status_code == 201, made.text
    url = made.json()["url"]
    path = url.split("://", 1)[1].split("/", 1)[1]
    landing = world.client.get("/" + path)
    assert landing.status_code == 200 and "Open the photo" in landing.text
    first = world.client.get("/" + path + "/content")
    assert first.status_code == 200 and first.content.startswith(b"\xff\xd8")
    _assert_problem(world.client.get("/" + path + "/content"), 410)
    assert world.client.get("/" + path).status_code == 410
    sent = world.client.get(
        f"/api/v1/patients/{world.users['ann'].patient_id}/sent", headers=world.headers("ann")
    ).json()["sent"]
    assert sent[0]["recipient"] == "Dr. Gray (GP)" and sent[0]["state"] == "used"
    revoke = world.client.delete(
        f"/api/v1/share-links/{made.json()['id']}", headers=world.headers("bob")
    )
    _assert_problem(revoke, 403)


def test_the_openapi_document_describes_the_contract(world: World) -> None:
    spec = world.client.get("/openapi.json").json()
    for path in (
        "/api/v1/auth/token",
        "/api/v1/patients/{patient_id}/photos",
        "/api/v1/photos/{photo_id}",
        "/api/v1/photos/{photo_id}/content",
        "/api/v1/photos/{photo_id}/share-links",
        "/api/v1/share-links/{link_id}",
        "/api/v1/patients/{patient_id}/consents",
        "/api/v1/patients/{patient_id}/consents/{purpose}",
        "/api/v1/patients/{patient_id}/access-history",
        "/api/v1/patients/{patient_id}/sent",
    ):
        assert path in spec["paths"], path
    assert world.client.get("/healthz").json()["status"] == "ok"
    assert world.client.get("/privacy-facts.json").status_code == 200
    page = world.client.get("/privacy-facts")
    assert page.status_code == 200 and "AI training" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"


# -- the authorization matrix -------------------------------------------------------------------

ROLES = ["ann", "bob", "lee", "kim", "sam", "ng", "rao", "boss"]


def _expected(world: World, who: str, photo: str, purpose: Purpose) -> bool:
    """What policy.decide says, from the same facts the service gathers."""
    from skinvault.db.models import Patient, Photo

    vault = world.client.app.state.vault  # type: ignore[attr-defined]
    with vault.sessions() as session:
        row = session.get(Photo, photo)
        patient = session.get(Patient, row.patient_id)
        facts = PhotoFacts(row.id, row.patient_id, patient.user_id)
    relationships: list[CareFacts] = care_facts(vault, facts.patient_id)
    consents: list[ConsentFacts] = consent_facts(vault, facts.patient_id)
    return decide(
        world.users[who].actor, Access.VIEW, facts, purpose, consents=consents,
        relationships=relationships, now=vault.clock.now(),
    ).allowed  # fmt: skip


def test_every_photo_route_answers_as_the_policy_decides(world: World) -> None:
    ann = world.users["ann"].patient_id
    world.client.put(
        f"/api/v1/patients/{ann}/consents/research", json={"granted": True},
        headers=world.headers("ann"),
    )  # fmt: skip
    checked = 0
    for who, photo, purpose in itertools.product(
        ROLES, [world.photo_id, world.other_photo_id], list(Purpose)
    ):
        allowed = _expected(world, who, photo, purpose)
        for route in ("", "/content", "/thumbnail"):
            answer = world.client.get(
                f"/api/v1/photos/{photo}{route}?purpose={purpose.value}", headers=world.headers(who)
            )
            if allowed:
                assert answer.status_code == 200, (who, purpose, route, answer.text)
            else:
                _assert_problem(answer, 403)
            checked += 1
        no_purpose = world.client.get(f"/api/v1/photos/{photo}/content", headers=world.headers(who))
        _assert_problem(no_purpose, 422)
    assert checked == len(ROLES) * 2 * len(Purpose) * 3


def test_record_routes_answer_as_the_policy_decides(world: World) -> None:
    ann = world.users["ann"].patient_id
    routes = {
        "list": ("GET", f"/api/v1/patients/{ann}/photos", {"ann", "lee"}),
        "consents": ("GET", f"/api/v1/patients/{ann}/consents", {"ann"}),
        "history": ("GET", f"/api/v1/patients/{ann}/access-history", {"ann", "boss"}),
        "sent": ("GET", f"/api/v1/patients/{ann}/sent", {"ann"}),
    }
    for who in ROLES:
        for _name, (method, url, allowed) in routes.items():
            answer = world.client.request(method, url, headers=world.headers(who))
            if who in allowed:
                assert answer.status_code == 200, (who, url, answer.text)
            else:
                _assert_problem(answer, 403)
        upload = _upload(world, who, factories.jpeg(), patient="ann")
        if who in {"ann", "lee"}:
            assert upload.status_code == 201, (who, upload.text)
        else:
            _assert_problem(upload, 403)


def test_deletion_requests_are_filed_by_the_patient_and_decided_by_the_privacy_officer(
    world: World,
) -> None:
    ann = world.users["ann"].patient_id
    filed = world.client.post(
        f"/api/v1/patients/{ann}/deletion-requests",
        json={"scope": "photo", "scope_ref": world.photo_id, "reason": "moving away"},
        headers=world.headers("ann"),
    )
    assert filed.status_code == 201, filed.text
    request_id = filed.json()["id"]
    _assert_problem(
        world.client.post(
            f"/api/v1/patients/{ann}/deletion-requests",
            json={"scope": "everything"},
            headers=world.headers("lee"),
        ),
        403,
    )
    for who in ("ann", "lee"):
        _assert_problem(
            world.client.post(
                f"/api/v1/deletion-requests/{request_id}/decision",
                json={"decision": "erase", "explanation": "ok"},
                headers=world.headers(who),
            ),
            403,
        )
    decided = world.client.post(
        f"/api/v1/deletion-requests/{request_id}/decision",
        json={"decision": "erase", "explanation": "Done as you asked."},
        headers=world.headers("boss"),
    )
    assert decided.status_code == 200, decided.text
    mine = world.client.get(
        f"/api/v1/patients/{ann}/deletion-requests", headers=world.headers("ann")
    ).json()["requests"]
    assert mine[0]["decision"] == "erase" and mine[0]["explanation"] == "Done as you asked."
    _assert_problem(
        world.client.get(
            f"/api/v1/photos/{world.photo_id}/content?purpose=care", headers=world.headers("lee")
        ),
        404,
    )


def test_a_token_does_only_what_its_scopes_allow(world: World) -> None:
    answer = world.client.post(
        "/api/v1/auth/token",
        json={"email": "ann@example.org", "password": PASSWORD, "scopes": ["photos:read"]},
    )
    assert answer.status_code == 200, answer.text
    read_only = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    content = world.client.get(
        f"/api/v1/photos/{world.photo_id}/content?purpose=care", headers=read_only
    )
    assert content.status_code == 200
    refused = world.client.post(
        f"/api/v1/patients/{world.users['ann'].patient_id}/photos",
        headers=read_only,
        files={"file": ("a.jpg", factories.jpeg(), "image/jpeg")},
    )
    _assert_problem(refused, 403)
    assert "photos:write" in refused.json()["detail"]
    _assert_problem(
        world.client.post(
            "/api/v1/auth/token",
            json={"email": "ann@example.org", "password": PASSWORD, "scopes": ["everything"]},
        ),
        400,
    )


def test_one_address_cannot_keep_trying_passwords(world: World) -> None:
    # The fixture signed in 8 users from this address: successes do not count, so a clinic
    # behind one address is never refused; 20 failures per 5 minutes are allowed.
    answers = [
        world.client.post(
            "/api/v1/auth/token", json={"email": f"x{i}@example.org", "password": "guess"}
        )
        for i in range(21)
    ]
    assert [a.status_code for a in answers] == [401] * 20 + [429]
    assert "too many failed sign-ins from your address" in answers[-1].json()["detail"]
    assert "too many" not in answers[-2].json()["detail"]


def test_an_upload_cut_off_mid_way_stores_nothing(world: World) -> None:
    """The client disconnects half-way through the body: nothing is stored, nothing is left."""
    import asyncio

    from starlette.requests import ClientDisconnect

    ann = world.users["ann"]
    body = (
        b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n"
        + factories.jpeg() + b"\r\n--B--\r\n"
    )  # fmt: skip
    half = body[: len(body) // 2]
    messages = [
        {"type": "http.request", "body": half, "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": f"/api/v1/patients/{ann.patient_id}/photos", "raw_path": b"",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {ann.token}".encode()),
            (b"content-type", b"multipart/form-data; boundary=B"),
            (b"content-length", str(len(body)).encode()),
        ],
    }  # fmt: skip
    with pytest.raises(ClientDisconnect):
        asyncio.run(world.client.app(scope, receive, send))  # type: ignore[arg-type]
    listed = world.client.get(
        f"/api/v1/patients/{ann.patient_id}/photos", headers=world.headers("ann")
    ).json()["photos"]
    assert [p["id"] for p in listed] == [world.photo_id]
    vault = world.client.app.state.vault  # type: ignore[attr-defined]
    assert len(list(vault.blobs.keys())) == 4  # the two fixture photos and their thumbnails
