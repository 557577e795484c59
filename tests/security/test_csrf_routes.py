"""Every state-changing portal form and cookie-authenticated API write, read from the route
list (a new form is covered without editing this file), sent without a CSRF token, with a
wrong one and with another signed-in user's: each is refused as out of date, and nothing
in the database changes. Bearer-token clients are not asked for one (browsers do not send
bearer tokens on their own).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2 as httpx
from sqlalchemy import select

from skinvault.actors import Role
from skinvault.db.models import Base, Patient, WebSession
from skinvault.services import photo_store
from tests import factories
from tests.security.conftest import PASSWORD, Live, Person, csrf_of
from tests.security.test_second_factor import _fill, route_list

#: Writes that happen before there is a session to protect (the token in the URL or the
#: password in the form is what proves the caller), so no CSRF token is asked for.
BEFORE_A_SESSION = {
    "/login", "/signup", "/setup/{token}", "/account/{token}", "/s/{token}",
    "/api/v1/auth/token",
}  # fmt: skip
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _snapshot(live: Live) -> dict[str, list[str]]:
    """Every row of every table (sessions without their touch time), as sorted text."""
    with live.vault.reading() as session:
        tables: dict[str, list[str]] = {}
        for table in Base.metadata.sorted_tables:
            rows = session.execute(select(table)).mappings().all()
            shown = []
            for row in rows:
                values = {k: str(v) for k, v in row.items()}
                if table.name == WebSession.__tablename__:
                    values.pop("last_seen_at", None)
                shown.append(json.dumps(values, sort_keys=True))
            tables[table.name] = sorted(shown)
        return tables


def _changed(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


def _send(
    client: httpx.Client, method: str, url: str, token: str | None, *, api: bool
) -> httpx.Response:
    """A request that would do its work if the CSRF check were missing."""
    if api:
        headers = {} if token is None else {"x-csrf-token": token}
        body = {"granted": True, "purpose": "teaching", "recipient": "gp@surgery.example",
                "expires_in_hours": 24, "decision": "erase", "explanation": "csrf test",
                "scope": "all", "reason": "csrf test"}  # fmt: skip
        return client.request(method, url, headers=headers, json=body)
    fields = {"answer": "yes", "site": "back", "note": "csrf test", "recipient":
              "gp@surgery.example", "reason": "csrf test: emergency", "decision": "erase",
              "explanation": "csrf test", "mode": "dry-run", "role": "patient",
              "email": "csrf-made@example.org", "name": "Made by CSRF", "purpose": "care",
              "scope": "all", "password": PASSWORD, "new_password": "another long password",
              "new_password_again": "another long password", "message": "csrf test"}  # fmt: skip
    if token is not None:
        fields["csrf"] = token
    files = {"file": ("photo.jpg", factories.jpeg(), "image/jpeg")}
    return client.request(method, url, data=fields, files=files)


def _refused_as_out_of_date(answer: httpx.Response) -> bool:
    return answer.status_code in (401, 403) and "out of date" in answer.text


#: Nothing writes in the background while the tables are compared: no job worker (the
#: thumbnail job of the photo below would land mid-comparison) and no checkpoint signing.
QUIET = {
    "SKINVAULT_JOB_THREADS": "0",
    "SKINVAULT_AUDIT_CHECKPOINT_EVERY": "100000000",
    "SKINVAULT_AUDIT_CHECKPOINT_SECONDS": "100000000",
}


def test_every_cookie_write_needs_the_sessions_own_csrf_token(
    live_with: Callable[[dict[str, str]], Live],
) -> None:
    live = live_with(QUIET)
    owner = live.person(Role.PATIENT)
    clinician = live.person(Role.CLINICIAN)
    admin_user = live.person(Role.ADMIN)
    stranger = live.person(Role.PATIENT)
    live.relate(owner, clinician)
    assert owner.patient_id
    stored = photo_store.store_photo(
        live.vault, patient_id=owner.patient_id, data=factories.jpeg(), actor=owner.actor,
        site="back",
    )  # fmt: skip
    other_client = live.client()
    others_token = live.sign_in(other_client, stranger)

    writes = [(m, p) for m, p in route_list(live) if m in WRITES and p not in BEFORE_A_SESSION]
    assert len(writes) >= 30, writes  # the walk found the forms and API writes
    assert ("POST", "/portal/photos/{photo_id}/share") in writes
    assert ("PUT", "/api/v1/patients/{patient_id}/consents/{purpose}") in writes

    failures: list[str] = []
    csrf_refusals: dict[tuple[str, str], int] = {w: 0 for w in writes}
    for person in (owner, clinician, admin_user):
        failures += _attack(live, person, others_token, writes, stored.id, csrf_refusals)
    assert failures == [], "\n".join(failures)
    # Somebody who may use each write got the CSRF refusal itself, not a role refusal that
    # would hide a missing check (admin pages answer 403 to others before looking at CSRF);
    # a catch-all ("{rest:path}": no such FHIR operation) writes nothing for anyone.
    unchecked = [w for w, n in csrf_refusals.items() if n < 3 and not w[1].endswith(":path}")]
    assert unchecked == [], f"no caller got the CSRF refusal from {unchecked}"
    # The other user's session was never disturbed either.
    assert csrf_of(other_client.get("/portal/account").text) == others_token


def _attack(
    live: Live,
    person: Person,
    others_token: str,
    writes: list[tuple[str, str]],
    photo_id: str,
    csrf_refusals: dict[tuple[str, str], int],
) -> list[str]:
    """Each write three times with a bad token: a 4xx and no change, else a failure line."""
    client = live.client()
    own = live.sign_in(client, person)
    assert own != others_token
    ids = {
        "photo_id": photo_id, "patient_id": person.patient_id or _patient_of(live),
        "user_id": person.actor.id, "purpose": "teaching", "action": "disable",
    }  # fmt: skip
    failures = []
    for method, path in writes:
        url = _fill(path, ids)
        api = path.startswith(("/api/", "/fhir/"))
        for label, token in (("no token", None), ("a wrong token", "0" * len(own)),
                             ("another user's token", others_token)):  # fmt: skip
            before = _snapshot(live)
            answer = _send(client, method, url, token, api=api)
            changed = _changed(before, _snapshot(live))
            csrf_refusals[(method, path)] += _refused_as_out_of_date(answer)
            if not 400 <= answer.status_code < 500 or changed:
                failures.append(
                    f"{person.email}: {method} {path} with {label} answered "
                    f"{answer.status_code} {answer.text[:120]!r}; changed {changed}"
                )
    # Still signed in, with the same token: no refused request ended the session.
    assert csrf_of(client.get("/portal/account").text) == own
    return failures


def _patient_of(live: Live) -> str:
    with live.vault.reading() as session:
        first = session.scalars(select(Patient.id)).first()
        assert first
        return first


def test_a_bearer_token_write_needs_no_csrf_token_and_the_right_token_passes(live: Live) -> None:
    """The control: the same write succeeds with the session's own token, and a bearer
    token (never sent by a browser on its own) needs none."""
    owner = live.person(Role.PATIENT)
    assert owner.patient_id
    client = live.client()
    own = live.sign_in(client, owner)
    url = f"/api/v1/patients/{owner.patient_id}/consents/teaching"
    refused = client.put(url, json={"granted": True})
    assert refused.status_code == 401 and "CSRF" in refused.text
    done = client.put(url, json={"granted": True}, headers={"x-csrf-token": own})
    assert done.status_code == 200, done.text
    form = client.post("/portal/consents/research", data={"answer": "yes", "csrf": own})
    assert form.status_code in (200, 303), form.text
    answer = live.client().post(
        "/api/v1/auth/token", json={"email": owner.email, "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    bearer = live.client().put(
        f"/api/v1/patients/{owner.patient_id}/consents/research",
        json={"granted": False},
        headers={"authorization": f"Bearer {answer.json()['access_token']}"},
    )
    assert bearer.status_code == 200, bearer.text
