"""``skinvault export dicom|fhir`` end to end: decided for the named account, audited, valid."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from skinvault.actors import Actor, Role
from skinvault.bootstrap import bootstrap
from skinvault.cli import app
from skinvault.config import load_settings
from skinvault.services import admin
from skinvault.services.care import start_care
from skinvault.services.history import access_history
from skinvault.services.photo_store import store_photo
from tests import factories
from tests.interop.conftest import dciodvfy
from tests.interop.validators import assert_valid

OPERATOR = Actor.system("test")


def test_operators_export_dicom_and_fhir_for_a_named_account(tmp_path: Path) -> None:
    data_dir = tmp_path / "vault"
    vault = bootstrap(load_settings(data_dir=data_dir), create=True)
    ann = admin.create_user(
        vault,
        role=Role.PATIENT,
        email="ann@example.org",
        password="a long enough password",
        actor=OPERATOR,
        name="Ann Smith",
    )
    lee = admin.create_user(
        vault,
        role=Role.CLINICIAN,
        email="lee@example.org",
        password="a long enough password",
        actor=OPERATOR,
        name="Dr. Lee",
    )
    admin.create_user(
        vault,
        role=Role.EDUCATOR,
        email="ng@example.org",
        password="a long enough password",
        actor=OPERATOR,
        name="Prof. Ng",
    )
    assert ann.patient_id
    start_care(vault, patient_id=ann.patient_id, member_id=lee.user_id, actor=OPERATOR)
    photo = store_photo(
        vault, patient_id=ann.patient_id, data=factories.jpeg(), actor=OPERATOR, site="face"
    )
    runner = CliRunner()
    common = ["--data-dir", str(data_dir)]
    dcm, record = tmp_path / "photo.dcm", tmp_path / "record.json"
    done = runner.invoke(
        app, ["export", "dicom", photo.id, "--as", "lee@example.org", "--out", str(dcm), *common]
    )
    assert done.exit_code == 0, done.output
    assert "1.2.840.10008.1.2.4.50" in done.output
    assert dciodvfy(dcm).errors == []
    done = runner.invoke(
        app,
        [
            "export",
            "fhir",
            ann.patient_id,
            "--as",
            "lee@example.org",
            "--out",
            str(record),
            *common,
        ],
    )
    assert done.exit_code == 0, done.output
    bundle = json.loads(record.read_text())
    assert_valid(bundle)
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"Patient", "Media"}
    refused = runner.invoke(
        app, ["export", "dicom", photo.id, "--as", "ng@example.org", "--out", str(dcm), *common]
    )
    assert refused.exit_code == 1 and "skinvault:" in refused.output
    texts = [e.text for e in access_history(vault, ann.patient_id)]
    assert any(t.startswith("Dr. Lee exported, as a DICOM file,") for t in texts)
    assert any(t.startswith("Prof. Ng was refused") for t in texts)
    vault.close()
