"""Reminders for the next photo of a site: on the patient's home page, the body map and the
site's series, with a link that opens the upload form on that site."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from skinvault.actors import Role
from skinvault.bootstrap import Vault
from skinvault.db.engine import make_engine, migrate
from skinvault.services import photo_store
from skinvault.services.tracking import REMIND_AFTER, SiteSummary, due_sites, recent_site_photos
from skinvault.tracking import sites as body_sites
from tests.integration.test_portal_pages import _sign_in, _user, app_and_vault  # noqa: F401
from tests.integration.test_tracking import _jpeg
from tests.unit.test_tracking_measure import _photo


def test_due_sites_are_those_photographed_four_weeks_ago_or_more_oldest_first() -> None:
    today = date(2026, 12, 4)

    def at(code: str, days_ago: int) -> SiteSummary:
        return SiteSummary(body_sites.get(code), 1, today - timedelta(days=days_ago))

    sites = (at("cheek-left", 28), at("upper-back", 27), at("scalp", 90))
    summary = {s.site.code: s for s in sites}
    assert timedelta(days=28) == REMIND_AFTER
    assert [s.site.code for s in due_sites(summary, today)] == ["scalp", "cheek-left"]
    assert due_sites({}, today) == []


def test_the_home_page_reminds_and_its_link_opens_the_upload_on_that_site(
    app_and_vault: tuple[TestClient, Vault],  # noqa: F811
) -> None:
    client, vault = app_and_vault
    ann, pid, _ = _user(vault, Role.PATIENT, "ann@example.org", "Ann")
    assert pid
    img, _ = _photo(0.1)
    old = (date.today() - timedelta(weeks=6)).strftime("%Y:%m:%d 10:00:00")
    recent = (date.today() - timedelta(days=3)).strftime("%Y:%m:%d 10:00:00")
    photo_store.store_photo(vault, patient_id=pid, data=_jpeg(img, old), actor=ann,
                            site="forearm-left")  # fmt: skip
    photo_store.store_photo(vault, patient_id=pid, data=_jpeg(img, recent), actor=ann,
                            site="cheek-right")  # fmt: skip
    _sign_in(client, "ann@example.org", None)

    home = client.get("/portal").text
    due = re.search(r'<section aria-labelledby="due-h".*?</section>', home, re.S)
    assert due, "no reminder on the home page"
    assert "Left forearm (front)" in due.group(0) and "Right cheek" not in due.group(0)
    assert 'href="/portal?site=forearm-left#add"' in due.group(0)
    # Nothing chosen by default; the reminder's link chooses its site on the upload form.
    assert '<option value="" selected>' in home
    chosen = client.get("/portal?site=forearm-left").text
    assert '<option value="forearm-left" selected>' in chosen
    assert '<option value="" selected>' not in chosen
    unknown = client.get("/portal?site=elbow-of-nowhere").text
    assert '<option value="" selected>' in unknown
    assert "Time for a new photo" in client.get("/portal/body-map").text
    next_cheek = (date.today() - timedelta(days=3) + REMIND_AFTER).strftime("%d %b %Y")
    cheek = client.get("/portal/sites/cheek-right").text
    assert f"Next photo suggested from {next_cheek}" in cheek


def test_the_photo_due_sweep_reads_the_photos_through_their_date_indexes(
    tmp_path: Path,
) -> None:
    """The sweep runs every minute: on SQLite's plan its query looks photos up by date
    (0015's indexes) instead of reading the whole table."""
    engine = make_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    migrate(engine)
    query = recent_site_photos(date(2026, 11, 1), datetime(2026, 11, 1, tzinfo=UTC))
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})

    def plan() -> str:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
            return " | ".join(r[-1] for r in rows)

    indexed = plan()
    assert "SEARCH photos USING INDEX ix_photos_" in indexed and "SCAN photos" not in indexed
    with engine.begin() as conn:  # without the indexes the same check sees the table read
        conn.exec_driver_sql("DROP INDEX ix_photos_taken_on")
        conn.exec_driver_sql("DROP INDEX ix_photos_uploaded_at")
    engine.dispose()  # (a pooled connection would reuse the cached plan)
    assert "SCAN photos" in plan()
    engine.dispose()
