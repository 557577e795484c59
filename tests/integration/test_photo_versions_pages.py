"""The versions page and the photo page over HTTP: choices saved with CSRF, reasons shown.

In process (FastAPI's TestClient) on SQLite; the face photo is bench/clues_set's
dlib-2008_002506.jpg (see its SOURCES.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault
from skinvault.config import load_settings
from skinvault.policy.purposes import Purpose, Scope
from skinvault.services import admin, consents, jobs, photo_store, totp, versions
from skinvault.web.app import create_app

FACES = Path(__file__).parents[2] / "bench" / "clues_set" / "dlib-2008_002506.jpg"
PASSWORD = "a long enough password"
OPERATOR = Actor.system("test")


@pytest.fixture
def app_and_vault(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient, Vault]]:
    """One client for the patient, one for the educator (a TOTP code signs in only once)."""
    app = create_app(load_settings(data_dir=tmp_path / "data"))
    with TestClient(app) as client, TestClient(app) as other:
        yield client, other, app.state.vault
    app.state.vault.close()


def _user(vault: Vault, role: Role, email: str) -> tuple[Actor, str | None, str | None]:
    made = admin.create_user(
        vault, role=role, email=email, password=PASSWORD, actor=OPERATOR, name=email
    )
    secret = None
    if role is not Role.PATIENT:
        secret = totp.begin_totp_enrolment(vault, made.user_id).secret
        assert totp.confirm_totp(vault, made.user_id, pyotp.TOTP(secret).now())
    return Actor(made.user_id, role, email), made.patient_id, secret


def _sign_in(client: TestClient, email: str, secret: str | None) -> None:
    form = {"email": email, "password": PASSWORD}
    if secret:
        form["totp"] = pyotp.TOTP(secret).now()
    answer = client.post("/login", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _setup(vault: Vault) -> tuple[Actor, str, str, str | None]:
    ann, pid, _ = _user(vault, Role.PATIENT, "ann@example.org")
    _edu, _, secret = _user(vault, Role.EDUCATOR, "ng@uni.example")
    assert pid
    stored = photo_store.store_photo(vault, patient_id=pid, data=FACES.read_bytes(), actor=ann)
    jobs.run_pending(vault)
    return ann, pid, stored.id, secret


def test_the_patient_chooses_boxes_and_the_area_and_the_educator_then_gets_the_crop(
    app_and_vault: tuple[TestClient, TestClient, Vault],
) -> None:
    client, edu, vault = app_and_vault
    ann, pid, photo_id, secret = _setup(vault)
    consents.record_consent(vault, patient_id=pid, purpose=Purpose.TEACHING, granted=True,
                            scopes={Scope.CROPPED}, actor=ann)  # fmt: skip
    _sign_in(edu, "ng@uni.example", secret)
    refused = edu.get(f"/portal/photos/{photo_id}?purpose=teaching")
    assert refused.status_code == 403 and "no area has been chosen" in refused.text
    # The comparison says the same in the photo's place, instead of a broken image.
    compared = edu.get(f"/portal/compare?a={photo_id}&b={photo_id}&purpose=teaching")
    assert compared.status_code == 403 and compared.text.count("no area has been chosen") == 2
    assert "/image?purpose" not in compared.text

    _sign_in(client, "ann@example.org", None)
    page = client.get(f"/portal/photos/{photo_id}/versions")
    assert page.status_code == 200 and "<svg" in page.text
    token = _csrf(page.text)
    bad = client.post(f"/portal/photos/{photo_id}/versions",
                      data={"csrf": token, "do": "save", "crop": "left half"})  # fmt: skip
    assert bad.status_code == 422 and "is not an area" in bad.text
    saved = client.post(
        f"/portal/photos/{photo_id}/versions",
        data={"csrf": _csrf(page.text), "do": "save", "crop": "100, 150, 240, 180",
              "added": "10, 300, 60, 40"},
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303
    chosen = versions.get_markup(vault, photo_id=photo_id, actor=ann)
    assert chosen.crop == (100, 150, 240, 180) and chosen.added == ((10, 300, 60, 40),)
    assert "100, 150, 240, 180" in client.get(f"/portal/photos/{photo_id}/versions").text
    no_token = client.post(f"/portal/photos/{photo_id}/versions", data={"crop": "0,0,5,5"})
    assert no_token.status_code == 401

    shown = edu.get(f"/portal/photos/{photo_id}?purpose=teaching")
    assert shown.status_code == 200 and 'data-version="cropped"' in shown.text
    assert "Versions for limited consents" not in shown.text  # not the educator's to change
    image = edu.get(f"/portal/photos/{photo_id}/image?purpose=teaching")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    other = edu.get(f"/portal/photos/{photo_id}/versions")
    assert other.status_code == 403  # an educator cannot change what is covered


def test_a_version_that_cannot_be_made_is_explained_on_the_photo_page(
    app_and_vault: tuple[TestClient, TestClient, Vault], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, edu, vault = app_and_vault
    ann, pid, photo_id, secret = _setup(vault)
    consents.record_consent(vault, patient_id=pid, purpose=Purpose.TEACHING, granted=True,
                            scopes={Scope.NO_FACE}, actor=ann)  # fmt: skip

    def broken(*_: object, **__: object) -> list[object]:
        raise ValueError("model file unreadable")

    monkeypatch.setattr("skinvault.photos.derivative.find_faces", broken)
    _sign_in(edu, "ng@uni.example", secret)
    page = edu.get(f"/portal/photos/{photo_id}?purpose=teaching")
    assert page.status_code == 403 and "the face detector failed" in page.text
    image = edu.get(f"/portal/photos/{photo_id}/image?purpose=teaching")
    assert image.status_code == 403 and not image.content.startswith(b"\xff\xd8")
