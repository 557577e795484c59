# ruff: noqa: F811  (the `world` fixture imported from test_api is a parameter here)
"""Progress tracking through the JSON API: sites, series, measuring again, comparing."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from skinvault.bootstrap import Vault
from skinvault.services import jobs
from tests.integration.test_api import PASSWORD, World, _assert_problem, world  # noqa: F401
from tests.integration.test_tracking import _jpeg
from tests.unit.test_tracking_align import visit_jpeg as _visit
from tests.unit.test_tracking_measure import _photo

SITE = "forearm-left"


def _upload(w: World, data: bytes, site: str = SITE) -> str:
    pid = w.users["ann"].patient_id
    answer = w.client.post(
        f"/api/v1/patients/{pid}/photos",
        headers=w.headers("ann"),
        files={"file": ("visit.jpg", data, "image/jpeg")},
        data={"site": site},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _two_visits(w: World) -> tuple[str, str]:
    first = _upload(w, _visit(90, (0, 0), "2026:01:10 10:00:00"))
    second = _upload(w, _visit(130, (24, -15), "2026:03:07 10:00:00"))
    vault: Vault = w.client.app.state.vault  # type: ignore[attr-defined]
    jobs.run_pending(vault)  # thumbnails and the background measurements
    return first, second


def test_sites_and_the_series_of_one_site_for_the_patient_and_the_care_team(world: World) -> None:
    c, pid = world.client, world.users["ann"].patient_id
    first = _upload(world, _jpeg(_photo(0.05)[0], "2026:01:10 10:00:00"))
    second = _upload(world, _jpeg(_photo(0.2, seed=1)[0], "2026:03:07 10:00:00"))
    jobs.run_pending(world.client.app.state.vault)  # type: ignore[attr-defined]

    sites = c.get("/api/v1/body-sites", headers=world.headers("ann")).json()["sites"]
    forearm = next(s for s in sites if s["code"] == SITE)
    assert forearm["laterality"] == "left" and forearm["view"] == "front"
    assert forearm["laterality_snomed"] == {"code": "7771000", "display": "Left"}
    assert forearm["snomed"]["code"].isdigit() and len(sites) > 40

    mapped = c.get(f"/api/v1/patients/{pid}/sites", headers=world.headers("lee")).json()
    mine = {s["site"]["code"]: s for s in mapped["sites"]}
    assert mine[SITE]["photos"] == 2 and mine[SITE]["last_taken"] == "2026-03-07"

    for who in ("ann", "lee"):  # the patient and the care clinician
        answer = c.get(
            f"/api/v1/patients/{pid}/sites/{SITE}/series?purpose=care", headers=world.headers(who)
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["disclaimer"] == "A measurement aid, not a diagnosis."
        entries = body["entries"]
        assert [e["photo_id"] for e in entries] == [first, second]
        assert [e["taken_on"] for e in entries] == ["2026-01-10", "2026-03-07"]
        assert {e["taken_on_source"] for e in entries} == {"photo"}
        assert (entries[0]["width"], entries[0]["height"]) == (800, 600)
        grown = [e["measurement"]["depigmented_percent"] for e in entries]
        assert grown[0] < 10 and grown[1] > 15  # the pale disc grew (5 → 20 % of the skin)
        assert entries[0]["measurement"]["disclaimer"] == "A measurement aid, not a diagnosis."

    series = f"/api/v1/patients/{pid}/sites/{SITE}/series?purpose=care"
    _assert_problem(c.get(series, headers=world.headers("kim")), 403)  # outside the care team
    _assert_problem(c.get(series, headers=world.headers("ng")), 403)  # an educator
    _assert_problem(c.get(series), 401)
    _assert_problem(
        c.get(f"/api/v1/patients/{pid}/sites/elbow-of-nowhere/series?purpose=care",
              headers=world.headers("ann")), 404,
    )  # fmt: skip


def test_measuring_again_in_a_region_less_parts_left_out(world: World) -> None:
    c = world.client
    pid = world.users["ann"].patient_id
    first = _upload(world, _jpeg(_photo(0.1)[0]))  # even skin, a pale disc in the middle
    url = f"/api/v1/photos/{first}/measurements"
    body = {
        "region": {"x": 0, "y": 0, "w": 800, "h": 600},
        "exclude": [{"x": 250, "y": 150, "w": 300, "h": 300}],  # the pale disc
    }
    answer = c.post(url, json=body, headers=world.headers("lee"))
    assert answer.status_code == 201, answer.text
    got = answer.json()
    assert got["exclude"] == body["exclude"] and got["region"] == body["region"]
    assert got["depigmented_percent"] <= 1.0
    entries = c.get(
        f"/api/v1/patients/{pid}/sites/{SITE}/series?purpose=care", headers=world.headers("ann")
    ).json()["entries"]
    assert entries[0]["measurement"]["exclude"] == body["exclude"]  # the latest one is shown

    outside = {"exclude": [{"x": 900, "y": 0, "w": 10, "h": 10}]}
    answer = c.post(url, json=outside, headers=world.headers("ann"))
    _assert_problem(answer, 422)
    assert "not inside the photo (800 × 600 pixels" in answer.json()["detail"]
    _assert_problem(c.post(url, json={"region": {"x": 0, "y": 0, "w": 0, "h": 5}},
                           headers=world.headers("ann")), 422)  # fmt: skip
    many = {"exclude": [{"x": 1, "y": 1, "w": 5, "h": 5}] * 21}
    _assert_problem(c.post(url, json=many, headers=world.headers("ann")), 422)  # 20 at most
    _assert_problem(c.post(url, json=body, headers=world.headers("kim")), 403)
    # A token issued for reading only cannot measure.
    reader = c.post(
        "/api/v1/auth/token",
        json={"email": "ann@example.org", "password": PASSWORD, "scopes": ["photos:read"]},
    ).json()["access_token"]
    _assert_problem(c.post(url, json=body, headers={"Authorization": f"Bearer {reader}"}), 403)


def test_capture_details_are_corrected_and_bad_values_refused(world: World) -> None:
    c, pid = world.client, world.users["ann"].patient_id
    first, _ = _two_visits(world)
    url = f"/api/v1/photos/{first}/capture"
    fix = {"taken_on": "2026-01-09", "treatment": "tacrolimus 0.1 %", "lighting": "daylight",
           "distance": "30-cm", "card": True}  # fmt: skip
    answer = c.put(url, json=fix, headers=world.headers("ann"))
    assert answer.status_code == 204, answer.text
    entry = c.get(
        f"/api/v1/patients/{pid}/sites/{SITE}/series?purpose=care", headers=world.headers("lee")
    ).json()["entries"][0]
    assert entry["taken_on"] == "2026-01-09" and entry["taken_on_source"] == "person"
    assert entry["capture"] == {"treatment": "tacrolimus 0.1 %", "lighting": "daylight",
                                "distance": "30-cm", "card": True}  # fmt: skip
    _assert_problem(c.put(url, json={"lighting": "candle"}, headers=world.headers("ann")), 400)
    _assert_problem(c.put(url, json={"taken_on": "2999-01-01"}, headers=world.headers("ann")), 400)
    _assert_problem(c.put(url, json=fix, headers=world.headers("ng")), 403)


def test_a_photo_moved_to_a_site_is_measured_there(world: World) -> None:
    c, pid = world.client, world.users["ann"].patient_id
    vault: Vault = c.app.state.vault  # type: ignore[attr-defined]
    answer = c.post(
        f"/api/v1/patients/{pid}/photos",
        headers=world.headers("ann"),
        files={"file": ("p.jpg", _jpeg(_photo(0.2)[0]), "image/jpeg")},
    )  # no site: not part of a series, not measured
    photo_id = answer.json()["id"]
    jobs.run_pending(vault)
    answer = c.put(f"/api/v1/photos/{photo_id}/capture", json={"site": "cheek-right"},
                   headers=world.headers("ann"))  # fmt: skip
    assert answer.status_code == 204, answer.text
    jobs.run_pending(vault)
    entries = c.get(
        f"/api/v1/patients/{pid}/sites/cheek-right/series?purpose=care",
        headers=world.headers("ann"),
    ).json()["entries"]
    assert [e["photo_id"] for e in entries] == [photo_id]
    assert 15 < entries[0]["measurement"]["depigmented_percent"] < 25


def test_comparing_two_visits_aligned_or_saying_it_cannot(world: World) -> None:
    c = world.client
    first, second = _two_visits(world)
    unrelated = _upload(world, _visit(60, (0, 0), "2026:04:01 10:00:00", seed=99))
    url = f"/api/v1/photos/{first}/compare/{second}?purpose=care"
    got = c.get(url, headers=world.headers("lee")).json()
    assert got["confident"] is True, got
    matrix = np.array(got["matrix"])
    # The second visit was seen shifted by (24, -15): its pixel (x, y) is the first's (x+24, y-15).
    mapped = matrix @ np.array([400.0, 300.0, 1.0])
    assert np.allclose(mapped[:2] / mapped[2], (424, 285), atol=1.5), mapped
    image = c.get(url, headers={**world.headers("lee"), "Accept": "image/jpeg"})
    assert image.status_code == 200 and image.content.startswith(b"\xff\xd8\xff")
    with Image.open(io.BytesIO(image.content)) as im:
        assert im.size == (800, 600)

    apart = f"/api/v1/photos/{first}/compare/{unrelated}?purpose=care"
    got = c.get(apart, headers=world.headers("ann")).json()
    assert got["confident"] is False and got["reason"]
    answer = c.get(apart, headers={**world.headers("ann"), "Accept": "image/jpeg"})
    _assert_problem(answer, 409)
    assert "side by side" in answer.json()["detail"]
    _assert_problem(c.get(url, headers=world.headers("kim")), 403)


def test_an_overexposed_photo_is_in_the_series_as_not_measured(world: World) -> None:
    c, pid = world.client, world.users["ann"].patient_id
    _upload(world, _jpeg(_photo(0.2, gain=1.5)[0], "2026:01:10 10:00:00"))  # red clipped
    jobs.run_pending(world.client.app.state.vault)  # type: ignore[attr-defined]
    answer = c.get(
        f"/api/v1/patients/{pid}/sites/{SITE}/series?purpose=care", headers=world.headers("ann")
    )
    assert answer.status_code == 200, answer.text
    (entry,) = answer.json()["entries"]
    measured = entry["measurement"]
    assert measured["depigmented_percent"] is None
    assert "overexposed" in measured["not_measured"] and "again" in measured["not_measured"]
