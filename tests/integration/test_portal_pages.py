"""Portal pages over HTTP (sessions, CSRF, the library, comparison, administration)."""

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
from skinvault.policy.purposes import Purpose
from skinvault.services import admin, consents, deletion, jobs, photo_store, totp
from skinvault.services.care import start_care
from skinvault.web.app import create_app
from tests import factories

PASSWORD = "a long enough password"
OPERATOR = Actor.system("test")


@pytest.fixture
def app_and_vault(tmp_path: Path) -> Iterator[tuple[TestClient, Vault]]:
    app = create_app(load_settings(data_dir=tmp_path / "data"))
    with TestClient(app) as client:
        yield client, app.state.vault
    app.state.vault.close()


def _user(vault: Vault, role: Role, email: str, name: str) -> tuple[Actor, str | None, str | None]:
    made = admin.create_user(
        vault, role=role, email=email, password=PASSWORD, actor=OPERATOR, name=name
    )
    secret = None
    if role is not Role.PATIENT:
        secret = totp.begin_totp_enrolment(vault, made.user_id).secret
        assert totp.confirm_totp(vault, made.user_id, pyotp.TOTP(secret).now())
    return Actor(made.user_id, role, name), made.patient_id, secret


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


def test_forms_without_the_csrf_token_are_refused(app_and_vault: tuple[TestClient, Vault]) -> None:
    client, vault = app_and_vault
    _user(vault, Role.PATIENT, "ann@example.org", "Ann")
    _sign_in(client, "ann@example.org", None)
    answer = client.post("/portal/consents/teaching", data={"answer": "yes"})
    assert answer.status_code == 401 and "out of date" in answer.text


def test_the_library_shows_only_consented_photos_and_compare_shows_two(
    app_and_vault: tuple[TestClient, Vault],
) -> None:
    client, vault = app_and_vault
    ann, ann_pid, _ = _user(vault, Role.PATIENT, "ann@example.org", "Ann")
    _bob, bob_pid, _ = _user(vault, Role.PATIENT, "bob@example.org", "Bob")
    lee, _, _ = _user(vault, Role.CLINICIAN, "lee@clinic.example", "Dr. Lee")
    _ng, _, ng_secret = _user(vault, Role.EDUCATOR, "ng@uni.example", "Prof. Ng")
    assert ann_pid and bob_pid
    for pid in (ann_pid, bob_pid):
        start_care(vault, patient_id=pid, member_id=lee.id, actor=OPERATOR)
    first = photo_store.store_photo(
        vault, patient_id=ann_pid, data=factories.jpeg(), actor=lee, site="left-hand"
    )
    second = photo_store.store_photo(
        vault, patient_id=ann_pid, data=factories.png(), actor=lee, site="left-hand"
    )
    hidden = photo_store.store_photo(
        vault, patient_id=bob_pid, data=factories.jpeg(), actor=lee, site="back"
    )
    jobs.run_pending(vault)  # the thumbnails, as the server's worker thread makes them
    consents.record_consent(
        vault, patient_id=ann_pid, purpose=Purpose.TEACHING, granted=True, actor=ann
    )

    _sign_in(client, "ng@uni.example", ng_secret)
    library = client.get("/portal/library?purpose=teaching")
    assert library.status_code == 200
    assert first.id in library.text and second.id in library.text and hidden.id not in library.text
    thumb = client.get(f"/portal/photos/{first.id}/thumbnail?purpose=teaching")
    assert thumb.status_code == 200 and thumb.content.startswith(b"\xff\xd8")
    refused = client.get(f"/portal/photos/{hidden.id}/thumbnail?purpose=teaching")
    assert refused.status_code == 403 and not refused.content.startswith(b"\xff\xd8")
    client.post("/logout")

    _sign_in(client, "ann@example.org", None)
    home = client.get("/portal")
    assert "Side by side" in home.text
    pair = client.get(f"/portal/compare?a={first.id}&b={second.id}")
    assert pair.status_code == 200
    assert pair.text.count('class="photo"') == 2
    assert client.get(f"/portal/compare?a={first.id}&b={hidden.id}").status_code == 403


def test_the_privacy_officer_decides_a_request_in_the_portal(
    app_and_vault: tuple[TestClient, Vault],
) -> None:
    client, vault = app_and_vault
    ann, ann_pid, _ = _user(vault, Role.PATIENT, "ann@example.org", "Ann")
    lee, _, lee_secret = _user(vault, Role.CLINICIAN, "lee@clinic.example", "Dr. Lee")
    _boss, _, boss_secret = _user(vault, Role.ADMIN, "boss@clinic.example", "Privacy officer")
    assert ann_pid
    start_care(vault, patient_id=ann_pid, member_id=lee.id, actor=OPERATOR)
    photo = photo_store.store_photo(vault, patient_id=ann_pid, data=factories.jpeg(), actor=lee)
    filed = deletion.file_request(
        vault, patient_id=ann_pid, scope=deletion.DeletionScope.PHOTO, scope_ref=photo.id,
        reason="moving away", actor=ann,
    )  # fmt: skip

    _sign_in(client, "lee@clinic.example", lee_secret)
    assert client.get("/portal/admin").status_code == 403
    client.post("/logout")

    _sign_in(client, "boss@clinic.example", boss_secret)
    page = client.get("/portal/admin")
    assert page.status_code == 200 and "moving away" in page.text
    done = client.post(
        f"/portal/admin/deletion/{filed.id}",
        data={"csrf": _csrf(page.text), "decision": "erase", "explanation": "Deleted as asked."},
    )
    assert done.status_code == 200 and "Decided: erase" in done.text
    assert deletion.requests_for(vault, ann_pid)[0].status != "open"
    checked = client.post("/portal/admin/verify", data={"csrf": _csrf(page.text)})
    assert "Intact:" in checked.text and "new events (after event" not in checked.text
    newer = client.post("/portal/admin/verify", data={"csrf": _csrf(page.text), "scope": "new"})
    assert "Intact: " in newer.text and "new events (after event" in newer.text
    found = client.get(f"/portal/admin?q=photo:{photo.id}")
    assert f"photo:{photo.id}" in found.text and "user:create" not in found.text
    due = client.post("/portal/admin/retention", data={"csrf": _csrf(page.text), "mode": "dry-run"})
    assert "Would shred or remove 0 items." in due.text


def test_a_clinician_asks_for_a_photo_and_the_patient_answers_it(
    app_and_vault: tuple[TestClient, Vault],
) -> None:
    client, vault = app_and_vault
    _ann, ann_pid, _ = _user(vault, Role.PATIENT, "ann@example.org", "Ann")
    lee, _, lee_secret = _user(vault, Role.CLINICIAN, "lee@clinic.example", "Dr. Lee")
    _kim, _, kim_secret = _user(vault, Role.CLINICIAN, "kim@clinic.example", "Dr. Kim")
    assert ann_pid
    start_care(vault, patient_id=ann_pid, member_id=lee.id, actor=OPERATOR)

    _sign_in(client, "kim@clinic.example", kim_secret)
    page = client.get(f"/portal/patients/{ann_pid}")
    assert page.status_code == 403  # not on Ann's care team
    client.post("/logout")

    _sign_in(client, "lee@clinic.example", lee_secret)
    page = client.get(f"/portal/patients/{ann_pid}")
    asked = client.post(
        f"/portal/patients/{ann_pid}/ask",
        data={"csrf": _csrf(page.text), "site": "left-hand", "note": "Same lamp as last time."},
    )
    assert "capture guidance" in asked.text
    client.post("/logout")

    _sign_in(client, "ann@example.org", None)
    home = client.get("/portal")
    assert "Your care team asked for photos" in home.text and "Same lamp as last time." in home.text
    assert "fingers apart" in home.text  # the site's own guidance
    request_id = re.search(r'<option value="([0-9a-f]{32})">the request for left hand', home.text)
    assert request_id
    stored = client.post(
        "/portal/upload",
        data={"csrf": _csrf(home.text), "patient_id": ann_pid, "site": "left-hand",
              "request_id": request_id.group(1)},
        files={"file": ("IMG.jpg", factories.jpeg(), "image/jpeg")},
    )  # fmt: skip
    assert "Saved. Hidden details were removed" in stored.text
    assert "Your care team asked for photos" not in client.get("/portal").text


def test_capture_conditions_read_as_words_on_the_site_series(
    app_and_vault: tuple[TestClient, Vault],
) -> None:
    client, vault = app_and_vault
    ann, pid, _ = _user(vault, Role.PATIENT, "ann@example.org", "Ann")
    assert pid
    stored = photo_store.store_photo(vault, patient_id=pid, data=factories.jpeg(), actor=ann,
                                site="knee-left")  # fmt: skip
    _sign_in(client, "ann@example.org", None)
    series = client.get("/portal/sites/knee-left")
    assert series.status_code == 200
    assert "UV (Wood&#39;s) lamp</option>" in series.text  # the choices, in words
    saved = client.post(
        f"/portal/photos/{stored.id}/capture",
        data={"csrf": _csrf(series.text), "lighting": "uv-wood-lamp", "distance": "arm-length",
              "back": "/portal/sites/knee-left"},
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303
    shown = client.get("/portal/sites/knee-left").text
    assert "Light: UV (Wood&#39;s) lamp." in shown and "Distance: arm&#39;s length." in shown
    assert "uv wood lamp" not in shown


def test_the_admin_page_shows_failed_jobs_and_queues_one_again(tmp_path: Path) -> None:
    app = create_app(load_settings(data_dir=tmp_path / "data", job_attempts=1, job_threads=0))
    with TestClient(app) as client:
        vault = app.state.vault
        _root, _, secret = _user(vault, Role.ADMIN, "root@clinic.example", "Root")
        failed = jobs.submit(vault, "no-such-kind")
        assert jobs.run_one(vault) is not None
        _sign_in(client, "root@clinic.example", secret)
        page = client.get("/portal/admin")
        assert page.status_code == 200
        assert "0 waiting, 0 running, 0 done, 1 failed for good" in page.text
        assert "no handler" in page.text and f"/portal/admin/jobs/{failed}/retry" in page.text
        again = client.post(f"/portal/admin/jobs/{failed}/retry", data={"csrf": _csrf(page.text)})
        assert again.status_code == 200 and "Queued again" in again.text
        assert "1 waiting" in again.text
        assert [j.state for j in jobs.list_jobs(vault)] == ["queued"]
        twice = client.post(f"/portal/admin/jobs/{failed}/retry", data={"csrf": _csrf(page.text)})
        assert "Not queued again" in twice.text  # it is not dead any more
    app.state.vault.close()
