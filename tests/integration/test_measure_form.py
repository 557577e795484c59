"""The series page's "measure again" form over HTTP: a region, parts left out, clear refusals."""

from __future__ import annotations

import json
import re
import time

from fastapi.testclient import TestClient
from sqlalchemy import select

from skinvault.actors import Role
from skinvault.bootstrap import Vault
from skinvault.db.models import Measurement
from skinvault.services import jobs, photo_store
from tests.integration.test_portal_pages import _csrf, _sign_in, _user, app_and_vault  # noqa: F401
from tests.integration.test_tracking import _jpeg
from tests.unit.test_tracking_measure import _photo


def _stored(client: TestClient, vault: Vault) -> tuple[str, str]:
    ann, pid, _ = _user(vault, Role.PATIENT, "ann@example.org", "Ann")
    assert pid
    img, _ = _photo(0.1)  # 800 x 600, a pale disc in the middle
    stored = photo_store.store_photo(
        vault, patient_id=pid, data=_jpeg(img), actor=ann, site="forearm-left"
    )
    _sign_in(client, "ann@example.org", None)
    return stored.id, _csrf(client.get("/portal/sites/forearm-left").text)


def _latest(vault: Vault, photo_id: str) -> Measurement:
    with vault.sessions() as s:
        rows = s.scalars(
            select(Measurement)
            .where(Measurement.photo_id == photo_id, Measurement.kind == "depigmented-share")
            .order_by(Measurement.measured_at.desc())
        ).all()
    assert rows
    return rows[0]


def test_a_region_and_parts_left_out_are_measured_kept_and_shown_again(
    app_and_vault: tuple[TestClient, Vault],  # noqa: F811
) -> None:
    client, vault = app_and_vault
    photo_id, csrf = _stored(client, vault)
    form = {
        "csrf": csrf,
        "back": "/portal/sites/forearm-left",
        "x": "0", "y": "0", "w": "800", "h": "600",
        "exclude": "250, 150, 300, 300\n\n700 500 100 100\n",
    }  # fmt: skip
    answer = client.post(f"/portal/photos/{photo_id}/measure", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    jobs.run_pending(vault)  # the upload's background measurement comes after hers
    row = _latest(vault, photo_id)
    assert not row.measured_by.startswith("system:")  # asked for by Ann, and it stays
    assert json.loads(row.details_json)["exclude"] == [[250, 150, 300, 300], [700, 500, 100, 100]]
    assert row.value <= 1.0  # the pale disc was left out
    page = client.get("/portal/sites/forearm-left").text
    assert "in the chosen region, 2 parts left out" in page
    # The form shows what was drawn, to confirm or change it.
    assert re.search(r'name="w" value="800"', page)
    assert "250, 150, 300, 300\n700, 500, 100, 100" in page
    assert 'data-width="800" data-height="600"' in page


def test_bad_boxes_are_refused_with_what_to_fix_and_nothing_is_stored(
    app_and_vault: tuple[TestClient, Vault],  # noqa: F811
) -> None:
    client, vault = app_and_vault
    photo_id, csrf = _stored(client, vault)
    url = f"/portal/photos/{photo_id}/measure"
    cases = {
        "250, 150, 300": "Line 1 of the parts to leave out should be four whole numbers",
        "\n1, 2, 0, 4": "Line 2 of the parts to leave out needs x, y of 0 or more",
        "\n".join(["1 1 5 5"] * 21): "Leave out at most 20 parts",
        "900, 0, 10, 10": "The part to leave out 900,0,10,10 is not inside the photo (800 × 600",
    }
    for exclude, words in cases.items():
        answer = client.post(url, data={"csrf": csrf, "exclude": exclude})
        assert answer.status_code == 422, (exclude, answer.status_code)
        assert words in answer.text, (exclude, answer.text[:2000])
    answer = client.post(url, data={"csrf": csrf, "x": "5000", "y": "0", "w": "9", "h": "9"})
    assert answer.status_code == 422 and "The region 5000,0,9,9 is not inside" in answer.text
    with vault.sessions() as s:  # only the background measurement of the upload, if any
        asked = s.scalars(select(Measurement.measured_by).where(Measurement.photo_id == photo_id))
        assert all(name.startswith("system:") for name in asked)


def test_the_series_page_says_a_photo_was_not_measured_and_why(
    app_and_vault: tuple[TestClient, Vault],  # noqa: F811
) -> None:
    client, vault = app_and_vault
    ann, pid, _ = _user(vault, Role.PATIENT, "ann@example.org", "Ann")
    assert pid
    img, _ = _photo(0.1, gain=1.5)  # red clipped on all the skin
    stored = photo_store.store_photo(
        vault, patient_id=pid, data=_jpeg(img), actor=ann, site="forearm-left"
    )
    for _ in range(100):  # here or on the app's own worker thread, which may have taken it
        jobs.run_pending(vault)
        with vault.sessions() as s:
            if s.scalars(select(Measurement).where(Measurement.photo_id == stored.id)).first():
                break
        time.sleep(0.1)
    _sign_in(client, "ann@example.org", None)
    page = client.get("/portal/sites/forearm-left").text
    assert "Not measured." in page and "overexposed" in page and "without flash" in page
    assert "Depigmented:" not in page
