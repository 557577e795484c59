"""Findings 3 and 11 against a live ``skinvault serve`` (SQLite and PostgreSQL).

3: a share-link password cannot be guessed without limit. After 10 wrong tries (in a row
or in parallel) the link is locked, the right password no longer opens it, the sender
sees "locked" in the sent log and can reissue it; one client address is limited across
links; every failure is audited; a wrong password answers 403, never 410 (gone).

11: the privacy facts print no server path, and every link that leaves the service is
built from ``public_base_url`` (or the address serve prints), never from the Host header.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx2 as httpx

from skinvault.actors import Role
from skinvault.services import api_tokens, photo_store, sharing
from tests import factories
from tests.security.conftest import Live, Person, csrf_of

RIGHT = "blue heron at dawn"
GP = "gp@surgery.example"


def _photo_and_link(
    live: Live, *, single_use: bool = False, password: str | None = RIGHT
) -> tuple[Person, str, sharing.NewLink]:
    patient = live.person(Role.PATIENT)
    assert patient.patient_id
    stored = photo_store.store_photo(
        live.vault, patient_id=patient.patient_id, data=factories.jpeg(), actor=patient.actor
    )
    link = sharing.create_share_link(
        live.vault, photo_id=stored.id, actor=patient.actor, recipient=GP,
        expires_in=timedelta(days=1), single_use=single_use, password=password,
    )  # fmt: skip
    return patient, stored.id, link


def _open(live: Live, token: str, password: str) -> int:
    with httpx.Client(base_url=live.base, timeout=60) as client:
        got = client.get(f"/s/{token}/content", headers={"x-link-password": password})
        return got.status_code


def _bearer(live: Live, person: Person) -> dict[str, str]:
    token = api_tokens.issue_api_token(live.vault, actor=person.actor).token
    return {"Authorization": f"Bearer {token}"}


def test_ten_wrong_passwords_lock_the_link_and_the_sender_can_reissue_it(live: Live) -> None:
    patient, _photo, link = _photo_and_link(live)
    codes = [_open(live, link.token, f"guess {i}") for i in range(10)]
    assert codes == [403] * 10  # refused, never "410 gone"
    assert _open(live, link.token, RIGHT) == 403  # locked: the right password is too late
    landing = live.client().get(f"/s/{link.token}")
    assert landing.status_code == 403
    assert "locked" in landing.text and "Ask the sender for a new link" in landing.text

    wrong = [
        e for e in live.vault_events("share-link:open")
        if e.outcome == "denied" and "wrong password (try" in e.reason
    ]  # fmt: skip
    assert len(wrong) == 10
    assert "try 10 of 10" in wrong[-1].reason and "locked" in wrong[-1].reason

    api = live.client(headers=_bearer(live, patient))
    [entry] = api.get(f"/api/v1/patients/{patient.patient_id}/sent").json()["sent"]
    assert entry["state"] == "locked"
    client = live.client()
    live.sign_in(client, patient)
    page = client.get("/portal/sent")
    assert "locked after 10 wrong passwords" in page.text and "Reissue" in page.text

    again = client.post(f"/portal/share-links/{link.id}/reissue", data={"csrf": csrf_of(page.text)})
    assert again.status_code == 200
    found = re.search(r"/s/([A-Za-z0-9_-]{40,})", again.text)
    assert found and found.group(1) != link.token
    assert _open(live, found.group(1), RIGHT) == 200  # same password, new link
    assert _open(live, link.token, RIGHT) == 410  # the old link is withdrawn

    made = api.post(f"/api/v1/share-links/{entry['link_id']}/reissue")
    assert made.status_code == 400  # already withdrawn (replaced): nothing to reissue
    assert "only a locked or expired link can be reissued" in made.json()["detail"]


def test_two_hundred_parallel_guesses_get_no_more_than_ten_tries(live: Live) -> None:
    _patient, _photo, link = _photo_and_link(live)
    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = list(pool.map(lambda i: _open(live, link.token, f"guess {i}"), range(200)))
    assert set(codes) <= {403, 429}, sorted(set(codes))
    assert _open(live, link.token, RIGHT) == 403
    checked = [
        e for e in live.vault_events("share-link:open")
        if e.outcome == "denied" and "wrong password (try" in e.reason
    ]  # fmt: skip
    assert len(checked) == 10  # only ten guesses were ever checked against the hash


def test_one_address_is_limited_across_links(live: Live) -> None:
    links = [_photo_and_link(live)[2] for _ in range(4)]
    codes = [_open(live, links[i % 4].token, f"guess {i}") for i in range(32)]
    assert codes[:30] == [403] * 30
    assert codes[30:] == [429, 429]
    assert _open(live, links[3].token, RIGHT) == 429  # the address waits, whatever it sends
    assert live.client().get("/s/" + "x" * 43 + "/content").status_code == 429
    limited = [
        e for e in live.vault_events("share-link:open")
        if e.outcome == "denied" and "too many" in e.reason
    ]  # fmt: skip
    assert len(limited) >= 3


def test_share_links_are_built_from_public_base_url_never_the_host_header(
    live_with: Callable[[dict[str, str]], Live],
) -> None:
    live = live_with({"SKINVAULT_PUBLIC_BASE_URL": "https://photos.clinic.example"})
    patient, photo_id, _link = _photo_and_link(live, password=None)
    forged = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    api = live.client(headers={**_bearer(live, patient), **forged})
    made = api.post(
        f"/api/v1/photos/{photo_id}/share-links",
        json={"recipient": GP, "expires_in": 3600},
    )
    assert made.status_code == 201, made.text
    assert made.json()["url"].startswith("https://photos.clinic.example/s/")

    clinician = live.person(Role.CLINICIAN)
    live.relate(patient, clinician)
    client = live.client()
    csrf = live.sign_in(client, clinician)
    page = client.post(
        f"/portal/photos/{photo_id}/share",
        data={"csrf": csrf, "recipient": GP, "hours": "2"},
        headers=forged,
    )
    assert page.status_code == 200, page.text
    assert "https://photos.clinic.example/s/" in page.text
    assert "evil.example" not in page.text


def test_without_public_base_url_links_use_the_address_serve_prints(live: Live) -> None:
    patient, photo_id, _link = _photo_and_link(live, password=None)
    api = live.client(headers={**_bearer(live, patient), "Host": "evil.example"})
    made = api.post(
        f"/api/v1/photos/{photo_id}/share-links", json={"recipient": GP, "expires_in": 3600}
    )
    assert made.status_code == 201, made.text
    assert made.json()["url"].startswith(live.base + "/s/")


def test_the_privacy_facts_show_no_server_path(live: Live) -> None:
    for path in ("/privacy-facts", "/privacy-facts.json"):
        text = live.client().get(path).text
        assert str(live.data) not in text
        assert "/keys" not in text and "/blobs" not in text and "skinvault.db" not in text


def test_serve_prints_the_first_admin_link_on_public_base_url(
    live_with: Callable[[dict[str, str]], Live],
) -> None:
    live = live_with({"SKINVAULT_PUBLIC_BASE_URL": "https://photos.clinic.example/vault"})
    assert live.server.proc.stdout
    printed = [live.server.proc.stdout.readline() for _ in range(3)]
    assert any("https://photos.clinic.example/vault/setup/" in line for line in printed), printed
    assert printed[0].startswith(f"skinvault is serving on {live.base}")
