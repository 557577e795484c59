"""Consent-scoped photo versions and browser display versions, on SQLite and PostgreSQL.

What a reader of each consent gets is checked the way a person would: the pixels in the
face boxes changed, exiftool finds no date or identifying tag, a cropped version has the
chosen area's size, a refusal says why (to the reader and in the patient's history), and
deleting the photo leaves no ciphertext of any version behind.

The face photo is bench/clues_set/dlib-2008_002506.jpg (PASCAL VOC, with dlib's published
face boxes; see bench/clues_set/SOURCES.md); the HEIC is from tests/data/corpus (MANIFEST).
"""

from __future__ import annotations

import io
import json
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from skinvault.actors import Actor, Role
from skinvault.audit.actions import Action
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.db.models import AuditEvent, Derivative, PhotoMarkup
from skinvault.errors import AccessDenied, RequestInvalid
from skinvault.policy.purposes import Purpose, Scope
from skinvault.services import (
    admin,
    consents,
    deletion,
    history,
    jobs,
    photo_export,
    photo_reads,
    photo_shredding,
    photo_store,
    versions,
)
from skinvault.services.care import start_care

ROOT = Path(__file__).parents[2]
FACES = ROOT / "bench" / "clues_set" / "dlib-2008_002506.jpg"
HEIC = ROOT / "tests" / "data" / "corpus" / "005-heic-mobile-iphone-13-pro-max.heic"
OPERATOR = Actor.system("test")
NOTE = "started tacrolimus on the 3rd"


def _face_boxes() -> list[tuple[int, int, int, int]]:
    root = ET.parse(ROOT / "bench" / "clues_set" / "dlib-testing.xml").getroot()  # noqa: S314
    for node in root.iter("image"):
        if node.get("file") == FACES.name.removeprefix("dlib-"):
            return [
                (int(b.get("left", 0)), int(b.get("top", 0)), int(b.get("width", 0)),
                 int(b.get("height", 0)))
                for b in node.iter("box")
            ]  # fmt: skip
    raise AssertionError("the face photo's boxes are not in dlib-testing.xml")


@dataclass
class Clinic:
    vault: Vault
    patient: Actor
    patient_id: str
    clinician: Actor
    educator: Actor


def _user(vault: Vault, role: Role, email: str) -> tuple[Actor, str | None]:
    made = admin.create_user(
        vault, role=role, email=email, password="a long passphrase", actor=OPERATOR, name=email
    )
    return Actor(made.user_id, role, email), made.patient_id


@pytest.fixture
def clinic(database_url: str, tmp_path: Path) -> Iterator[Clinic]:
    vault = bootstrap(
        load_settings(data_dir=tmp_path / "data", database_url=database_url), create=True
    )
    patient, pid = _user(vault, Role.PATIENT, "pat@example.org")
    clinician, _ = _user(vault, Role.CLINICIAN, "lee@clinic.example")
    educator, _ = _user(vault, Role.EDUCATOR, "edu@clinic.example")
    assert pid
    start_care(vault, patient_id=pid, member_id=clinician.id, actor=OPERATOR)
    yield Clinic(vault, patient, pid, clinician, educator)
    vault.close()


def _store(c: Clinic, path: Path = FACES) -> photo_store.StoredPhoto:
    stored = photo_store.store_photo(
        c.vault, patient_id=c.patient_id, data=path.read_bytes(), actor=c.patient,
        site="left-cheek", note=NOTE,
    )  # fmt: skip
    jobs.run_pending(c.vault)
    return stored


def _consent(c: Clinic, *scopes: Scope) -> None:
    consents.record_consent(
        c.vault, patient_id=c.patient_id, purpose=Purpose.TEACHING, granted=True,
        scopes=set(scopes), actor=c.patient,
    )  # fmt: skip


def _heif_profile(data: bytes) -> bytes | None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    with Image.open(io.BytesIO(data)) as image:
        return image.info.get("icc_profile")


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def _exiftool(data: bytes, tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "served.jpg"
    path.write_bytes(data)
    out = subprocess.run(
        ["exiftool", "-j", "-a", "-G1", "-u", str(path)], capture_output=True, check=True
    )
    tags = json.loads(out.stdout)[0]
    return {k: v for k, v in tags.items() if not k.startswith(("System:", "ExifTool:"))}


def test_an_educator_with_a_deidentified_consent_gets_faces_covered_and_no_metadata(
    clinic: Clinic, tmp_path: Path
) -> None:
    stored = _store(clinic)
    _consent(clinic, Scope.DEIDENTIFIED)
    original = photo_reads.read_photo(
        clinic.vault, photo_id=stored.id, actor=clinic.clinician, purpose="care"
    )
    got = photo_reads.read_photo(
        clinic.vault, photo_id=stored.id, actor=clinic.educator, purpose="teaching"
    )
    assert got.version == "deidentified" and got.media_type == "image/jpeg"
    before, after = _pixels(original.data), _pixels(got.data)
    assert before.shape == after.shape
    for x, y, w, h in _face_boxes():
        face_before = before[y : y + h, x : x + w]
        face_after = after[y : y + h, x : x + w]
        # The face is gone: the box is a flat fill, far from what it showed.
        assert float(np.abs(face_before - face_after).mean()) > 30, (x, y, w, h)
        assert float(face_after.std()) < 3, (x, y, w, h)
    # Outside the faces the picture is the same picture (re-encoded, so not bit-identical).
    assert float(np.abs(before[-60:, :100] - after[-60:, :100]).mean()) < 6
    tags = _exiftool(got.data, tmp_path)
    assert not [k for k in tags if any(g in k for g in ("EXIF", "XMP", "IPTC", "ICC", "MakerNotes",
                                                        "Photoshop", "Comment"))]  # fmt: skip
    assert not [k for k, v in tags.items() if "Date" in k or "2008" in str(v)]
    assert stored.id not in got.data.decode("latin-1")
    details = photo_reads.describe_photo(
        clinic.vault, photo_id=stored.id, actor=clinic.educator, purpose="teaching"
    )
    assert details.version == "deidentified"
    assert (details.note, details.patient_id, details.taken_on, details.uploaded_at) == (
        None, None, None, None,
    )  # fmt: skip
    # The thumbnail is of the version, not of the face-showing photo.
    thumb = photo_reads.read_thumbnail(
        clinic.vault, photo_id=stored.id, actor=clinic.educator, purpose="teaching"
    )
    assert thumb.version == "deidentified"
    own_thumb = photo_reads.read_thumbnail(
        clinic.vault, photo_id=stored.id, actor=clinic.patient, purpose="care"
    )
    assert thumb.data != own_thumb.data
    # The audit log names the version served.
    with clinic.vault.reading() as session:
        reasons = list(
            session.scalars(
                select(AuditEvent.reason).where(AuditEvent.action == Action.PHOTO_VIEW.value)
            )
        )
    assert any("Served: the de-identified" in (r or "") for r in reasons)


def test_a_no_face_consent_serves_the_face_free_version_with_boxes_people_added(
    clinic: Clinic,
) -> None:
    stored = _store(clinic)
    _consent(clinic, Scope.NO_FACE)
    extra = (10, 300, 60, 40)  # a tattoo, say, that the patient wants covered too
    versions.set_markup(clinic.vault, photo_id=stored.id, actor=clinic.patient, added=[extra])
    got = photo_reads.read_photo(
        clinic.vault, photo_id=stored.id, actor=clinic.educator, purpose="teaching"
    )
    assert got.version == "face_free"
    after = _pixels(got.data)
    x, y, w, h = extra
    assert float(after[y : y + h, x : x + w].std()) < 3
    for fx, fy, fw, fh in _face_boxes():
        assert float(after[fy : fy + fh, fx : fx + fw].std()) < 3
    with clinic.vault.reading() as session:
        row = session.scalars(select(Derivative).where(Derivative.kind == "face_free")).one()
        assert row.confirmed_by == clinic.patient.id
        assert list(extra) in json.loads(row.spec_json or "{}")["cover"]


def test_cropped_is_refused_with_a_reason_until_an_area_is_chosen_then_has_its_size(
    clinic: Clinic,
) -> None:
    stored = _store(clinic)
    _consent(clinic, Scope.CROPPED)
    with pytest.raises(AccessDenied, match="no area has been chosen") as refused:
        photo_reads.read_photo(
            clinic.vault, photo_id=stored.id, actor=clinic.educator, purpose="teaching"
        )
    with pytest.raises(AccessDenied, match="no area has been chosen"):
        photo_reads.describe_photo(
            clinic.vault, photo_id=stored.id, actor=clinic.educator, purpose="teaching"
        )
    # The patient's history shows the same reason.
    seen = history.access_history(clinic.vault, clinic.patient_id)
    assert any(e.outcome == "denied" and refused.value.reason in e.text for e in seen)
    versions.set_markup(
        clinic.vault, photo_id=stored.id, actor=clinic.clinician, crop=(100, 150, 240, 180)
    )
    got = photo_reads.read_photo(
        clinic.vault, photo_id=stored.id, actor=clinic.educator, purpose="teaching"
    )
    assert got.version == "cropped"
    assert Image.open(io.BytesIO(got.data)).size == (240, 180)
    # Limits compose: de-identified and cropped is cropped *and* has the faces covered.
    _consent(clinic, Scope.CROPPED, Scope.DEIDENTIFIED)
    both = photo_reads.read_photo(
        clinic.vault, photo_id=stored.id, actor=clinic.educator, purpose="teaching"
    )
    assert both.version == "deidentified+cropped"
    assert Image.open(io.BytesIO(both.data)).size == (240, 180)
    assert not np.array_equal(_pixels(both.data), _pixels(got.data))
    with pytest.raises(RequestInvalid):
        versions.set_markup(
            clinic.vault, photo_id=stored.id, actor=clinic.patient, crop=(9000, 0, 10, 10)
        )


def test_a_version_that_cannot_be_made_is_refused_with_the_reason(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = _store(clinic)
    _consent(clinic, Scope.NO_FACE)

    def broken(*_: object, **__: object) -> list[object]:
        raise ValueError("model file unreadable")

    # The real detector replaced by one that fails, as a damaged install would.
    monkeypatch.setattr("skinvault.photos.derivative.find_faces", broken)
    with pytest.raises(AccessDenied, match="could not be made: the face detector failed"):
        photo_reads.read_photo(
            clinic.vault, photo_id=stored.id, actor=clinic.educator, purpose="teaching"
        )
    with clinic.vault.reading() as session:
        denied = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == Action.PHOTO_VIEW.value, AuditEvent.outcome == "denied"
            )
        ).one()
        assert "face detector failed" in (denied.reason or "")


def test_no_ciphertext_of_any_version_survives_deleting_the_photo(clinic: Clinic) -> None:
    stored = _store(clinic)
    _consent(clinic, Scope.DEIDENTIFIED)
    photo_reads.read_photo(
        clinic.vault, photo_id=stored.id, actor=clinic.educator, purpose="teaching"
    )
    versions.set_markup(clinic.vault, photo_id=stored.id, actor=clinic.patient, crop=(0, 0, 50, 50))
    _consent(clinic, Scope.CROPPED)
    photo_reads.read_photo(
        clinic.vault, photo_id=stored.id, actor=clinic.educator, purpose="teaching"
    )
    with clinic.vault.reading() as session:
        live = {
            d.kind: d.blob_key
            for d in session.scalars(select(Derivative).where(Derivative.deleted_at.is_(None)))
        }
    assert {"cropped", "thumbnail"} <= set(live)
    blobs = {k: clinic.vault.blobs.get(k) for k in live.values()}
    photo_shredding.delete_photo(
        clinic.vault, photo_id=stored.id, actor=clinic.patient, reason="mine"
    )
    remaining = set(clinic.vault.blobs.keys())
    assert not remaining & set(live.values())
    stored_bytes = b"".join(clinic.vault.blobs.get(k) for k in remaining)
    for key, blob in blobs.items():
        assert blob[13:77] not in stored_bytes, key  # no copy of its ciphertext anywhere
    with clinic.vault.reading() as session:
        rows = list(session.scalars(select(Derivative)))
        assert rows and all(r.wrapped_dek is None and r.deleted_at for r in rows)
        assert session.get(PhotoMarkup, stored.id) is None


def test_a_deletion_decision_that_keeps_the_record_shreds_the_consent_versions(
    clinic: Clinic,
) -> None:
    stored = _store(clinic)
    _consent(clinic, Scope.NO_FACE)
    photo_reads.read_photo(
        clinic.vault, photo_id=stored.id, actor=clinic.educator, purpose="teaching"
    )
    officer, _ = _user(clinic.vault, Role.ADMIN, "privacy@clinic.example")
    asked = deletion.file_request(
        clinic.vault, patient_id=clinic.patient_id, scope=deletion.DeletionScope.EVERYTHING,
        scope_ref=None, reason="stop teaching use", actor=clinic.patient,
    )  # fmt: skip
    deletion.decide_request(
        clinic.vault, request_id=asked.id, decision=deletion.DeletionDecision.KEEP_CLINICAL,
        explanation="kept by law; every other use stopped", actor=officer,
    )  # fmt: skip
    with clinic.vault.reading() as session:
        version = session.scalars(select(Derivative).where(Derivative.kind == "face_free")).one()
        assert version.wrapped_dek is None and version.deleted_at is not None
    assert version.blob_key not in set(clinic.vault.blobs.keys())


def test_a_heic_photo_is_served_to_browsers_as_a_jpeg_and_downloads_as_heic(
    clinic: Clinic,
) -> None:
    stored = _store(clinic, HEIC)
    shown = photo_reads.read_photo(
        clinic.vault, photo_id=stored.id, actor=clinic.patient, purpose="care", for_browser=True
    )
    assert shown.version == "display" and shown.data[:2] == b"\xff\xd8"
    assert Image.open(io.BytesIO(shown.data)).size == (stored.width, stored.height)
    original = photo_reads.read_photo(
        clinic.vault, photo_id=stored.id, actor=clinic.patient, purpose="care"
    )
    assert original.version is None and original.media_type == "image/heif"
    # The iPhone's Display P3 profile, as scrubbed: kept byte for byte, not converted away.
    profile = Image.open(io.BytesIO(shown.data)).info.get("icc_profile")
    assert profile and profile == _heif_profile(original.data)
    assert versions.download_name(original) == "photo.heic"
    again = photo_reads.read_photo(
        clinic.vault, photo_id=stored.id, actor=clinic.clinician, purpose="care", for_browser=True
    )
    assert again.data == shown.data  # made once, stored encrypted, served again
    with clinic.vault.reading() as session:
        made = session.scalars(select(Derivative).where(Derivative.kind == "display")).all()
    assert len(made) == 1 and made[0].wrapped_dek


def test_an_export_of_a_deidentified_photo_is_the_deidentified_version(clinic: Clinic) -> None:
    stored = _store(clinic)
    consents.record_consent(
        clinic.vault, patient_id=clinic.patient_id, purpose=Purpose.RESEARCH, granted=True,
        actor=clinic.patient,
    )  # fmt: skip
    researcher, _ = _user(clinic.vault, Role.RESEARCHER, "res@uni.example")
    got = photo_export.export_photo(
        clinic.vault, photo_id=stored.id, actor=researcher, purpose="research",
        action=Action.PHOTO_EXPORT_DICOM,
    )  # fmt: skip
    assert got.record.format == "jpeg" and got.record.deidentified
    assert got.record.patient_id is None and got.record.uploaded_at is None
    plain = photo_reads.read_photo(
        clinic.vault, photo_id=stored.id, actor=clinic.patient, purpose="care"
    )
    assert got.data != plain.data
    x, y, w, h = _face_boxes()[0]
    assert float(_pixels(got.data)[y : y + h, x : x + w].std()) < 3
