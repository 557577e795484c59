"""Privacy facts: every fact follows the settings, and no secret ever appears in them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from skinvault.config import Settings
from skinvault.governance_cli import privacy_app
from skinvault.services.privacy import PrivacyFacts, period, privacy_facts

PASSWORD = "s3cr3t-pa55w0rd"  # must never be shown
KEK = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="


@pytest.fixture(autouse=True)
def _no_environment_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SKINVAULT_"):
            monkeypatch.delenv(name)


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path / "vault", **overrides)


def everything(facts: PrivacyFacts) -> str:
    return facts.as_text() + json.dumps(facts.as_json())


def test_the_defaults_describe_a_local_folder_sqlite_and_key_files(tmp_path: Path) -> None:
    facts = privacy_facts(settings(tmp_path))
    assert facts.images_stored.startswith("On the server that runs the service")
    assert facts.database == "an SQLite database on the server that runs the service"
    assert "AES-256-GCM per photo" in facts.encryption
    assert "key files on the server that only the service's account can read" in facts.encryption
    assert facts.location == "not stated by the operator"
    assert facts.sub_processors == ()
    assert "sub-processors): none." in facts.as_text()
    assert facts.organisation == "This clinic"
    assert not facts.contact_configured
    assert "not configured (WARNING" in facts.as_text()
    assert facts.as_json()["contact"] is None
    assert "only with the patient's explicit consent for ai-training" in facts.ai_training
    assert "care" in facts.who_can_see and "consent" in facts.who_can_see


def test_reading_the_facts_touches_nothing(tmp_path: Path) -> None:
    privacy_facts(settings(tmp_path, database_url="postgresql+psycopg://nohost.invalid/db"))
    assert not (tmp_path / "vault").exists()


def test_an_s3_store_names_the_provider_and_region_but_no_bucket_or_credentials(
    tmp_path: Path,
) -> None:
    facts = privacy_facts(
        settings(
            tmp_path,
            blob_store="s3://clinic-photos/vault",
            s3_endpoint_url=f"https://s3user:{PASSWORD}@s3.eu.example.net:9000",
            s3_region="eu-central-1",
        )
    )
    assert facts.images_stored == (
        "In S3-compatible object storage at s3.eu.example.net, region eu-central-1;"
        " every photo is stored encrypted."
    )
    for hidden in (PASSWORD, "s3user", "clinic-photos", "vault/", ":9000"):
        assert hidden not in everything(facts)
    plain = privacy_facts(settings(tmp_path, blob_store="s3://photos"))
    assert plain.images_stored.startswith("In Amazon S3 (Amazon Web Services);")


def test_no_server_path_is_ever_published(tmp_path: Path) -> None:
    """Finding 11: the data dir, key folder, blob folder and database file stay private."""
    data = tmp_path / "srv-skinvault-data"
    cases = [
        Settings(data_dir=data),
        Settings(data_dir=data, blob_store="file:///srv/skinvault/blobs"),
        Settings(data_dir=data, database_url=f"sqlite:///{tmp_path}/elsewhere/vault.db"),
    ]
    for case in cases:
        published = everything(privacy_facts(case))
        for path in (str(data), str(tmp_path), "/srv/skinvault", "/keys", "/blobs", "vault.db"):
            assert path not in published, (path, published)
    assert "skinvault.db" not in everything(privacy_facts(cases[0]))


def test_the_operator_states_where_the_data_is(tmp_path: Path) -> None:
    where = "Germany, in Hetzner's Falkenstein data centre"
    facts = privacy_facts(settings(tmp_path, data_location=where))
    assert facts.as_json()["location"] == where
    assert f"Where photos are stored: {where}." in facts.as_text()


def test_a_postgresql_database_is_named_without_host_user_or_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://vault_app:{PASSWORD}@db.internal:5433/skinvault"
    facts = privacy_facts(settings(tmp_path, database_url=url))
    assert facts.database == "a PostgreSQL database run for this service"
    assert "db.internal" not in everything(facts)
    assert PASSWORD not in everything(facts)
    assert "vault_app" not in everything(facts)


def test_keys_from_the_environment_are_named_by_place_never_by_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKINVAULT_KEK", KEK)
    facts = privacy_facts(settings(tmp_path, key_source="env"))
    assert "the environment of the server process, never in the database" in facts.encryption
    assert "key files" not in facts.encryption
    assert KEK not in everything(facts)


def test_retention_periods_follow_the_settings(tmp_path: Path) -> None:
    default = privacy_facts(settings(tmp_path)).retention_text()
    assert "10 years (3650 days)" in default["clinical_photos"]
    assert "5 years (1825 days)" in default["teaching_copies"]
    assert "90 days" in default["share_links"]
    facts = privacy_facts(
        settings(
            tmp_path,
            retention_clinical_photo_days=7300,
            retention_teaching_copy_days=400,
            retention_share_link_days=1,
        )
    )
    assert facts.as_json()["retention"]["clinical_photo_days"] == 7300  # type: ignore[index]
    text = facts.as_text()
    assert "kept 20 years (7300 days) after upload" in text
    assert "kept 400 days, then shredded" in text
    assert "kept 1 day, then removed" in text
    assert [period(d) for d in (1, 2, 365, 730, 366)] == [
        "1 day",
        "2 days",
        "1 year (365 days)",
        "2 years (730 days)",
        "366 days",
    ]


def test_sub_processors_organisation_and_contact_are_listed(tmp_path: Path) -> None:
    facts = privacy_facts(
        settings(
            tmp_path,
            sub_processors=["Hetzner (hosting)", "Postmark (e-mail)"],
            organisation="Dermatology Clinic Nord",
            privacy_contact="privacy@clinic.example",
        )
    )
    assert facts.sub_processors == ("Hetzner (hosting)", "Postmark (e-mail)")
    assert "sub-processors): Hetzner (hosting), Postmark (e-mail)." in facts.as_text()
    assert facts.as_json()["sub_processors"] == ["Hetzner (hosting)", "Postmark (e-mail)"]
    assert facts.as_text().startswith("Who is responsible: Dermatology Clinic Nord.")
    assert facts.contact_configured and facts.as_json()["contact"] == "privacy@clinic.example"
    assert "WARNING" not in facts.as_text()


def test_the_facts_command_prints_text_or_json_without_a_database(tmp_path: Path) -> None:
    app = typer.Typer()  # registered as in cli.py
    app.add_typer(privacy_app, name="privacy")
    url = f"postgresql+psycopg://app:{PASSWORD}@db.internal/skinvault"
    args = ["privacy", "facts", "--data-dir", str(tmp_path / "v"), "--database-url", url]
    runner = CliRunner()
    text = runner.invoke(app, args)
    assert text.exit_code == 0, text.output
    assert "a PostgreSQL database run for this service" in text.stdout
    assert PASSWORD not in text.stdout
    as_json = runner.invoke(app, [*args, "--json", "--blob-store", "s3://b1/p"])
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.stdout)
    assert "Amazon S3" in body["images_stored"] and PASSWORD not in as_json.stdout
    assert not (tmp_path / "v").exists()
