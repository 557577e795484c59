"""The notification pages over HTTP, on SQLite and PostgreSQL: the header's unread count,
the list, opening a notice (read, and on to its page), choices, and other users' notices."""

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
from skinvault.services import admin, capture, mailer, notifications, photo_store, totp
from skinvault.services.care import start_care
from skinvault.web.app import create_app

PASSWORD = "a long enough password"
OPERATOR = Actor.system("test")


@pytest.fixture
def portal(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Vault]]:
    app = create_app(load_settings(data_dir=tmp_path / "data", database_url=database_url))
    with TestClient(app) as client:
        yield client, app.state.vault
    app.state.vault.close()


def _user(vault: Vault, role: Role, email: str, name: str) -> tuple[Actor, str | None]:
    made = admin.create_user(
        vault, role=role, email=email, password=PASSWORD, actor=OPERATOR, name=name
    )
    return Actor(made.user_id, role, name), made.patient_id


def _sign_in(client: TestClient, email: str, totp: str | None = None) -> None:
    form = {"email": email, "password": PASSWORD} | ({"totp": totp} if totp else {})
    answer = client.post("/login", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_the_header_counts_unread_notices_and_opening_one_reads_it(
    portal: tuple[TestClient, Vault],
) -> None:
    client, vault = portal
    ann, ann_pid = _user(vault, Role.PATIENT, "ann@example.org", "Ann")
    lee, _ = _user(vault, Role.CLINICIAN, "lee@clinic.example", "Dr. Lee")
    assert ann_pid
    start_care(vault, patient_id=ann_pid, member_id=lee.id, actor=OPERATOR)
    capture.ask_for_photo(vault, actor=lee, patient_id=ann_pid, site="face", note="Mole?")
    capture.ask_for_photo(vault, actor=lee, patient_id=ann_pid, site="back")

    _sign_in(client, "ann@example.org")
    home = client.get("/portal").text
    assert 'aria-label="Notifications, 2 new"' in home and '<span class="badge">2</span>' in home
    page = client.get("/portal/notifications")
    assert page.status_code == 200
    assert page.text.count('aria-label="Open: Your care team asked you for a photo."') == 2
    # The list tells no details. Looked for in the list only: the page's random CSRF token is
    # hex and may itself contain "face".
    notices = page.text.split('<ul class="notices">', 1)[1].split("</ul>", 1)[0]
    notices = re.sub(r'name="csrf" value="[0-9a-f]+"', "", notices)
    assert "Mole?" not in notices and "face" not in notices
    [first, _second] = re.findall(r'action="/portal/notifications/([0-9a-f]{32})/open"', page.text)
    opened = client.post(
        f"/portal/notifications/{first}/open",
        data={"csrf": _csrf(page.text)},
        follow_redirects=False,
    )
    assert (opened.status_code, opened.headers["location"]) == (303, "/portal")
    assert '<span class="badge">1</span>' in client.get("/portal/notifications").text
    without_token = client.post("/portal/notifications/read", data={}, follow_redirects=False)
    assert without_token.status_code >= 400
    assert notifications.unread_count(vault, user_id=ann.id) == 1
    client.post("/portal/notifications/read", data={"csrf": _csrf(page.text)})
    assert 'class="badge"' not in client.get("/portal/notifications").text
    client.post("/logout", data={"csrf": _csrf(page.text)})

    secret = totp.begin_totp_enrolment(vault, lee.id).secret
    assert totp.confirm_totp(vault, lee.id, pyotp.TOTP(secret).now())
    _sign_in(client, "lee@clinic.example", totp=pyotp.TOTP(secret).now())
    foreign = client.post(
        f"/portal/notifications/{first}/open",
        data={"csrf": _csrf(client.get("/portal/notifications").text)},
        follow_redirects=False,
    )
    assert foreign.status_code == 404  # the same as a notice that never existed


def test_the_choices_offer_e_mail_only_when_the_clinic_sends_it(
    portal: tuple[TestClient, Vault],
) -> None:
    client, vault = portal
    ann, _ = _user(vault, Role.PATIENT, "ann@example.org", "Ann")
    _sign_in(client, "ann@example.org")
    page = client.get("/portal/notifications/preferences")
    assert page.status_code == 200
    assert 'value="portal"' in page.text and 'value="immediate"' not in page.text
    refused = client.post(
        "/portal/notifications/preferences",
        data={"csrf": _csrf(page.text), "photo-asked": "immediate"},
    )
    assert refused.status_code == 400 and "Choose one of the offered answers" in refused.text
    unknown = client.post(
        "/portal/notifications/preferences",
        data={"csrf": _csrf(page.text), "review-waiting": "off"},
    )
    assert unknown.status_code == 400 and "not a notification your account receives" in unknown.text
    saved = client.post(
        "/portal/notifications/preferences",
        data={"csrf": _csrf(page.text), "photo-asked": "off", "link-opened": "portal"},
    )
    assert saved.status_code == 200 and "Saved." in saved.text
    chosen = notifications.preferences(vault, actor=ann)
    assert chosen[notifications.Kind.PHOTO_ASKED] is notifications.Delivery.OFF


def test_a_patient_has_a_new_share_link_e_mailed_from_the_page_that_shows_it(
    database_url: str, tmp_path: Path
) -> None:
    from tests import factories
    from tests.mailserver import SmtpServer

    relay = SmtpServer(tmp_path).start()
    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        public_base_url="https://photos.clinic.example",
        smtp_host="127.0.0.1",
        smtp_port=relay.port,
        smtp_ca_file=relay.ca,
        smtp_username="relay",
        smtp_password="relay-secret",
        mail_from="portal@clinic.example",
    )
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            vault = app.state.vault
            ann, ann_pid = _user(vault, Role.PATIENT, "ann@example.org", "Ann Example")
            assert ann_pid
            stored = photo_store.store_photo(
                vault,
                patient_id=ann_pid,
                data=factories.jpeg(),
                actor=ann,
                site="hand-left",
                note="itchy",
            )
            _sign_in(client, "ann@example.org")
            page = client.get(f"/portal/photos/{stored.id}")
            made = client.post(
                f"/portal/photos/{stored.id}/share",
                data={
                    "csrf": _csrf(page.text),
                    "recipient": "Dr. Gray",
                    "hours": "24",
                    "password": "correct horse",
                },
            )
            url = re.search(r'name="url" value="([^"]+)"', made.text)
            assert url and url.group(1).startswith("https://photos.clinic.example/s/")
            forged = client.post(
                "/portal/share-links/email",
                data={
                    "csrf": _csrf(made.text),
                    "url": "https://evil.example/s/nope",
                    "to": "gray@surgery.example",
                },
            )
            assert forged.status_code == 404
            sent = client.post(
                "/portal/share-links/email",
                data={"csrf": _csrf(made.text), "url": url.group(1), "to": "gray@surgery.example"},
            )
            assert sent.status_code == 200 and "The link is on its way" in sent.text
            assert mailer.deliver_due(vault).sent == 1
        [text] = relay.texts_for("gray@surgery.example")
        assert url.group(1) in text and "Ann Example sent you a link" in text
        for secret in ("correct horse", "hand", "itchy", stored.id):
            assert secret not in text
    finally:
        app.state.vault.close()
        relay.stop()
