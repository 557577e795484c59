"""The whole route list × {anonymous, each role}: an expectation written from the
product's promises, not from ``policy.decide``, so a bug in gathering facts cannot move
both sides at once.

Only the patient and their current care team ever receive the photo's bytes (a
clinician outside the team only through break-glass, with a reason); educators,
researchers and administrators without the patient's consent never do; anonymous
callers get nothing outside the public pages. No request any of them can make answers
5xx.
"""

from __future__ import annotations

import pytest

from skinvault.actors import Role
from skinvault.services import photo_store
from tests import factories
from tests.security.conftest import Live, Person, csrf_of
from tests.security.test_second_factor import IMAGE_MAGIC, PUBLIC, _fill, route_list

#: Who may receive the photo's bytes, and through which routes.
MAY_SEE = {
    "owner": None,  # every photo route
    "care-clinician": None,
    "care-staff": None,
    "outside-clinician": {"/portal/photos/{photo_id}/break-glass"},
}
NEVER = ("anonymous", "other-patient", "educator", "researcher", "admin")


@pytest.fixture
def cast(live: Live) -> tuple[dict[str, Person | None], str, dict[str, str]]:
    owner = live.person(Role.PATIENT)
    people: dict[str, Person | None] = {
        "anonymous": None,
        "owner": owner,
        "other-patient": live.person(Role.PATIENT),
        "care-clinician": live.person(Role.CLINICIAN),
        "care-staff": live.person(Role.STAFF),
        "outside-clinician": live.person(Role.CLINICIAN),
        "educator": live.person(Role.EDUCATOR),
        "researcher": live.person(Role.RESEARCHER),
        "admin": live.person(Role.ADMIN),
    }
    for member in ("care-clinician", "care-staff"):
        person = people[member]
        assert person is not None
        live.relate(owner, person)
    assert owner.patient_id
    stored = photo_store.store_photo(
        live.vault, patient_id=owner.patient_id, data=factories.jpeg(), actor=owner.actor,
        site="back", note="a note only the care team reads",
    )  # fmt: skip
    ids = {"photo_id": stored.id, "patient_id": owner.patient_id}
    return people, stored.id, ids


def _revealed(content: bytes, text: str) -> bool:
    return content.startswith(IMAGE_MAGIC) or "data:image/" in text


def test_every_route_answers_each_caller_as_the_product_promises(
    live: Live, cast: tuple[dict[str, Person | None], str, dict[str, str]]
) -> None:
    people, _photo_id, ids = cast
    routes = route_list(live)
    for who in [*MAY_SEE, *NEVER]:
        _check(live, who, people[who], ids, routes)


def _check(
    live: Live,
    who: str,
    person: Person | None,
    ids: dict[str, str],
    routes: list[tuple[str, str]],
) -> None:
    client = live.client()
    csrf = live.sign_in(client, person) if person else ""
    ids = {**ids, "user_id": person.actor.id if person else "nobody", "purpose": "care"}
    revealed, opened = [], []
    for method, path in routes:
        if path == "/logout" or "/admin/users/{user_id}" in path or "/revoke" in path:
            continue  # sign-out and account changes would end the caller's own test
        url = _fill(path, ids) + "?purpose=care"
        answer = client.request(
            method,
            url,
            headers={"x-csrf-token": csrf},
            data={"csrf": csrf, "reason": "matrix test: emergency", "purpose": "care"},
        )
        assert answer.status_code < 500, (who, method, path, answer.text[:300])
        if _revealed(answer.content, answer.text if "text" in answer.headers.get(
            "content-type", "") else ""):  # fmt: skip
            revealed.append((method, path))
        if person is None and path not in PUBLIC and 200 <= answer.status_code < 300:
            opened.append((method, path))
    if who in NEVER:
        assert revealed == [], f"{who} received the photo through {revealed}"
    elif MAY_SEE[who] is not None:
        assert {p for _, p in revealed} <= MAY_SEE[who], (who, revealed)  # type: ignore[operator]
    else:
        assert revealed, f"{who} could not see their photo anywhere (the test is blind)"
    assert opened == [], f"anonymous callers reached {opened}"
    if person is not None:  # still signed in: nothing above signed the caller out
        assert csrf_of(client.get("/portal/account").text) == csrf
