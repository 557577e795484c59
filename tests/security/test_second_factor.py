"""Finding 1: a password alone must not open a role that needs a second factor.

A clinician (or staff, educator, researcher, admin) who has not enrolled TOTP gets, at
sign-in, a session that can only show the "not set up yet" page or sign out: every
other route refuses it, on SQLite and PostgreSQL. The first enrolment is bound to a
one-time link the administrator hands over, so a leaked initial password is not enough.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import httpx2 as httpx
import pyotp
import pytest

from skinvault.actors import Role
from skinvault.services import photo_store, users
from skinvault.web.app import create_app
from tests import factories
from tests.security.conftest import PASSWORD, SETUP, Live, csrf_of

#: Routes anyone may reach; a pending session must get nothing more from them.
PUBLIC = {
    "/", "/login", "/signup", "/setup/{token}", "/enrol-totp", "/logout", "/healthz",
    "/privacy-facts", "/privacy-facts.json", "/s/{token}", "/s/{token}/content",
    "/account/{token}", "/openapi.json", "/api/docs", "/docs/oauth2-redirect",
    "/api/v1/auth/token", "/fhir/R4/metadata", "/readyz",
    "/metrics",  # loopback (the tests' client) or metrics_token only; no patient data
}  # fmt: skip
IMAGE_MAGIC = (b"\xff\xd8", b"\x89PNG", b"RIFF", b"\x00\x00\x00")


def _walk(routes: list[object], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        included = getattr(route, "original_router", None)  # an included router, not flattened
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(included.routes, prefix + str(getattr(context, "prefix", "")))
            continue
        if hasattr(route, "routes") and not hasattr(route, "methods"):
            yield from _walk(route.routes, prefix + str(getattr(route, "path", "")))
            continue
        path = prefix + str(getattr(route, "path", ""))
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method != "HEAD" and path and not path.startswith("/static"):
                yield method, path


def route_list(live: Live) -> list[tuple[str, str]]:
    """Every (method, path) the service answers, read from the app itself."""
    app = create_app(live.vault.settings, vault=live.vault)
    found = sorted(set(_walk(list(app.routes))))
    assert len(found) > 40, f"the route list looks incomplete: {found}"
    return found


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: ids.get(m.group(1), secrets.token_hex(8)), path)


@pytest.fixture
def world(live: Live) -> dict[str, object]:
    patient = live.person(Role.PATIENT)
    pending = live.person(Role.CLINICIAN, enrol=False)
    live.relate(patient, pending)
    assert patient.patient_id
    stored = photo_store.store_photo(
        live.vault, patient_id=patient.patient_id, data=factories.jpeg(), actor=patient.actor,
        site="back",
    )  # fmt: skip
    return {"patient": patient, "pending": pending, "photo": stored.id}


def _pending_client(live: Live, email: str) -> tuple[httpx.Client, str]:
    client = live.client()
    answer = client.post("/login", data={"email": email, "password": PASSWORD})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/enrol-totp"
    page = client.get("/enrol-totp")
    assert page.status_code == 200
    assert "set-up link" in page.text
    assert "totp-secret" not in page.text and "<svg" not in page.text  # no enrolment here
    return client, csrf_of(page.text)


def test_a_pending_session_is_refused_by_every_route_but_enrolment_and_sign_out(
    live: Live, world: dict[str, object]
) -> None:
    pending = world["pending"]
    client, csrf = _pending_client(live, pending.email)  # type: ignore[attr-defined]
    ids = {
        "photo_id": str(world["photo"]),
        "patient_id": world["patient"].patient_id,  # type: ignore[attr-defined]
        "purpose": "care",
        "user_id": pending.actor.id,  # type: ignore[attr-defined]
    }
    opened = []
    for method, path in route_list(live):
        if path == "/logout":
            continue  # signs out: checked last
        url = _fill(path, ids) + "?purpose=care"
        answer = client.request(
            method, url, headers={"x-csrf-token": csrf}, data={"csrf": csrf, "reason": "test"}
        )
        assert answer.status_code < 500, (method, path, answer.status_code, answer.text[:200])
        assert not answer.content.startswith(IMAGE_MAGIC), (method, path)
        if path not in PUBLIC and 200 <= answer.status_code < 300:
            opened.append((method, path, answer.status_code))
        if path not in PUBLIC and answer.status_code in (301, 302, 303, 307):
            assert answer.headers["location"].startswith(("/enrol-totp", "/login")), (method, path)
    assert opened == [], f"a password-only session opened {opened}"
    # The public home does not treat the pending session as signed in either.
    assert client.get("/").status_code == 200
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/enrol-totp").headers["location"] == "/login"


def test_the_findings_requests_are_refused(live: Live, world: dict[str, object]) -> None:
    """The three requests of the outside test, one by one."""
    client, _csrf = _pending_client(live, world["pending"].email)  # type: ignore[attr-defined]
    photo = world["photo"]
    image = client.get(f"/portal/photos/{photo}/image?purpose=care")
    assert image.status_code == 303 and image.headers["location"] == "/enrol-totp"
    api = client.get(f"/api/v1/photos/{photo}/content?purpose=care")
    assert api.status_code == 401
    assert api.json()["type"].endswith("/second-factor-pending")
    token = client.post("/api/v1/auth/token", json={"email": world["pending"].email, "password": PASSWORD})  # type: ignore[attr-defined]  # noqa: E501
    assert token.status_code == 401


def test_a_new_admin_without_a_second_factor_cannot_create_another_admin(live: Live) -> None:
    admin = live.person(Role.ADMIN, enrol=False)
    client, csrf = _pending_client(live, admin.email)
    made = client.post(
        "/portal/admin/users",
        data={"csrf": csrf, "role": "admin", "email": "evil@clinic.example", "name": "Evil"},
    )
    assert made.status_code in (303, 401) and "account-link" not in made.text
    assert client.get("/portal/admin").headers.get("location") == "/enrol-totp"
    assert "evil@clinic.example" not in [u.email for u in users.list_users(live.vault, actor=SETUP)]


def test_enrolment_needs_the_one_time_link_and_then_sign_in_needs_the_code(live: Live) -> None:
    made = users.create_account(
        live.vault, actor=SETUP, role=Role.CLINICIAN, email="new@clinic.example", name="Dr New"
    )
    client = live.client()
    # Without a password set, the account cannot sign in at all.
    refused = client.post("/login", data={"email": "new@clinic.example", "password": PASSWORD})
    assert refused.status_code == 401
    page = client.get(f"/account/{made.link_token}")
    assert page.status_code == 200 and "new@clinic.example" in page.text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
    assert secret
    wrong = client.post(
        f"/account/{made.link_token}",
        data={"password": PASSWORD, "password_again": PASSWORD, "code": "000000"},
    )
    assert wrong.status_code == 400 and "did not match" in wrong.text
    page = client.get(f"/account/{made.link_token}")  # a wrong code spends nothing
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
    assert secret
    done = client.post(
        f"/account/{made.link_token}",
        data={
            "password": PASSWORD,
            "password_again": PASSWORD,
            "code": pyotp.TOTP(secret.group(1)).now(),
        },
    )
    assert done.status_code == 200 and "Your account is ready" in done.text
    again = client.get(f"/account/{made.link_token}")
    assert again.status_code == 410  # the link works once
    no_code = client.post("/login", data={"email": "new@clinic.example", "password": PASSWORD})
    assert no_code.status_code == 401
    signed = client.post(
        "/login",
        data={
            "email": "new@clinic.example",
            "password": PASSWORD,
            "totp": pyotp.TOTP(secret.group(1)).at(pyotp.TOTP(secret.group(1)).timecode(
                __import__("datetime").datetime.now(__import__("datetime").UTC)) * 30 + 30),
        },
    )  # the next step's code: the one used at enrolment is spent
    assert signed.status_code == 303 and signed.headers["location"] == "/portal"


def test_a_common_or_short_password_is_refused_at_set_up(live: Live) -> None:
    made = users.create_account(
        live.vault, actor=SETUP, role=Role.PATIENT, email="pat@example.org", name="Pat"
    )
    client = live.client()
    for bad, why in (("short", "at least 12"), ("password1234", "most common")):
        answer = client.post(
            f"/account/{made.link_token}", data={"password": bad, "password_again": bad}
        )
        assert answer.status_code == 400 and why in answer.text
    good = "a perfectly long passphrase"
    answer = client.post(
        f"/account/{made.link_token}", data={"password": good, "password_again": good}
    )
    assert answer.status_code == 200
