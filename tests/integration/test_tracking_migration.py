"""Migration 0009 maps the old free-text body sites onto the vocabulary, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from skinvault.db.engine import make_engine, migrate
from tests.integration.conftest import BACKENDS, drop_schema, fresh_database_url


@pytest.fixture(params=BACKENDS)
def at_0008(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url, schema = fresh_database_url(request.param, tmp_path)
    engine = make_engine(url)
    migrate(engine, "0008")
    yield engine
    engine.dispose()
    if schema:
        drop_schema(schema)


def test_old_sites_become_coded_sites_and_duplicates_merge(at_0008: Engine) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with at_0008.begin() as conn:
        conn.execute(
            text("INSERT INTO patients (id, display_name, created_at) VALUES ('p1', 'P', :t)"),
            {"t": now},
        )
        for sid, code in [
            ("s1", "left-arm"),
            ("s2", "Left Arm"),
            ("s3", "face"),
            ("s4", "behind the ear"),
        ]:
            conn.execute(
                text(
                    "INSERT INTO body_sites (id, patient_id, code, label) VALUES (:i, 'p1', :c, :c)"
                ),
                {"i": sid, "c": code},
            )
        for pid, sid in [("ph1", "s1"), ("ph2", "s2")]:
            conn.execute(
                text(
                    "INSERT INTO photos (id, patient_id, site_id, uploaded_at, content_sha256,"
                    " blob_key, format, width, height, size, scrub_report_json) VALUES"
                    " (:p, 'p1', :s, :t, 'x', :p, 'jpeg', 1, 1, 1, '{}')"
                ),
                {"p": pid, "s": sid, "t": now},
            )
    migrate(at_0008)
    with at_0008.connect() as conn:
        rows = {
            r.id: r
            for r in conn.execute(
                text("SELECT id, code, label, laterality, snomed_code FROM body_sites")
            )
        }
        photo_sites = dict(conn.execute(text("SELECT id, site_id FROM photos")).fetchall())
    assert set(rows) == {"s1", "s3", "s4"}  # "Left Arm" merged into "left-arm"
    assert rows["s1"].code == "arm-left" and rows["s1"].laterality == "left"
    assert rows["s1"].snomed_code == "371311000"
    assert rows["s3"].code == "face" and rows["s3"].snomed_code == "73897004"
    assert rows["s4"].code == "other" and "behind the ear" in rows["s4"].label
    assert photo_sites == {"ph1": "s1", "ph2": "s1"}
