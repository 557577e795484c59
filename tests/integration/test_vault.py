"""The vault end to end on SQLite and PostgreSQL: store, read, delete, rotate, tamper."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.crypto.envelope import open_blob
from skinvault.crypto.keys import MemoryKeySource
from skinvault.db.models import Derivative, Photo
from skinvault.errors import BlobUnreadable, KeyUnavailable, NotFound, PhotoError, TooLarge
from skinvault.photos.scrub import scrub
from skinvault.services import admin, jobs, photo_reads, photo_shredding, photo_store
from skinvault.services.care import start_care
from tests import factories
from tests.conftest import CORPUS_FILES

OPERATOR = Actor.system("test")

# A few small real photos of every container.
SAMPLES = [
    f.path
    for f in CORPUS_FILES
    if f.path.stat().st_size < 400_000
    and f.format in {"jpeg", "png", "webp", "heif", "tiff"}
    and f.pillow_opens
][:12]


@pytest.fixture
def vault(database_url: str, tmp_path: Path) -> Iterator[Vault]:
    settings = load_settings(data_dir=tmp_path / "data", database_url=database_url)
    v = bootstrap(settings, create=True)
    yield v
    v.close()


def _clinician(vault: Vault) -> Actor:
    """The clinician user of this vault (created on first use)."""
    from skinvault.db.models import User

    with vault.sessions() as session:
        user = session.scalars(select(User).where(User.role == "clinician")).first()
        user_id = user.id if user else None
    if user_id is None:
        user_id = admin.create_user(
            vault,
            role=Role.CLINICIAN,
            email="lee@clinic.example",
            password="a long passphrase",
            actor=OPERATOR,
        ).user_id
    return Actor(user_id, Role.CLINICIAN, "Dr. Lee")


@pytest.fixture
def patient(vault: Vault) -> str:
    user = admin.create_user(
        vault,
        role=Role.PATIENT,
        email="pat@example.org",
        password="correct horse 42",
        actor=OPERATOR,
    )
    assert user.patient_id
    start_care(vault, patient_id=user.patient_id, member_id=_clinician(vault).id, actor=OPERATOR)
    return user.patient_id


def _store(vault: Vault, patient: str, data: bytes | None = None) -> photo_store.StoredPhoto:
    """Store a photo and run the jobs it enqueued (its thumbnail), as a worker would."""
    stored = photo_store.store_photo(
        vault,
        patient_id=patient,
        data=data if data is not None else factories.jpeg(),
        actor=_clinician(vault),
        site="left-hand",
        note="day 3",
    )
    jobs.run_pending(vault)
    return stored


def _blob_path(vault: Vault, key: str) -> Path:
    """Where the local store keeps ``key`` (read through the store's own mapping)."""
    path = vault.blobs._path(key)  # type: ignore[attr-defined]
    assert isinstance(path, Path) and path.is_file(), key
    return path


def _photo_row(vault: Vault, photo_id: str) -> Photo:
    with vault.sessions() as session:
        row = session.get(Photo, photo_id)
        assert row is not None
        return row


def test_a_stored_photo_reads_back_scrubbed_and_the_access_is_audited(
    vault: Vault, patient: str
) -> None:
    original = factories.jpeg()
    stored = _store(vault, patient, original)
    assert stored.format == "jpeg" and stored.lossless
    assert {f.category.value for f in stored.findings} >= {"location", "device", "person"}
    got = photo_reads.read_photo(vault, photo_id=stored.id, actor=_clinician(vault), purpose="care")
    assert got.data == scrub(original)[0]
    assert got.media_type == "image/jpeg"
    assert b"Jane Patient" not in got.data
    thumb = photo_reads.read_thumbnail(
        vault, photo_id=stored.id, actor=_clinician(vault), purpose="care"
    )
    assert thumb.data.startswith(b"\xff\xd8") and b"Exif" not in thumb.data[:64]
    actions = [(e.action, e.outcome) for e in _events(vault)]
    assert ("photo:store", "done") in actions
    assert ("photo:view", "allowed") in actions
    assert ("photo:thumbnail", "allowed") in actions
    assert admin.verify_audit(vault).count == len(actions)


def _events(vault: Vault) -> list[object]:
    from skinvault.audit.log import tail

    with vault.sessions() as session:
        return list(tail(session, 1000))  # type: ignore[arg-type]


@pytest.mark.skipif(not SAMPLES, reason="no corpus")
def test_nothing_under_the_data_dir_holds_an_image_signature_or_plaintext(
    vault: Vault, patient: str
) -> None:
    plaintexts = []
    for path in SAMPLES:
        stored = _store(vault, patient, path.read_bytes())
        plaintexts.append(
            photo_reads.read_photo(
                vault, photo_id=stored.id, actor=_clinician(vault), purpose="care"
            ).data
        )
        plaintexts.append(path.read_bytes())
    # Any shared 64-byte run contains one of these 32-byte chunks at a multiple of 32.
    chunks = {p[o : o + 32] for p in plaintexts for o in range(0, len(p) - 31, 32)}
    files = [p for p in vault.settings.data_dir.rglob("*") if p.is_file()]
    assert any("blobs" in p.parts for p in files)
    for file in files:
        data = file.read_bytes()
        if "blobs" in file.parts:
            for signature in (
                b"\xff\xd8\xff",
                b"\x89PNG",
                b"RIFF",
                b"ftyp",
                b"II*\x00",
                b"MM\x00*",
            ):
                assert signature not in data[:16], f"{file} starts like an image"
        leaked = next((i for i in range(len(data) - 31) if data[i : i + 32] in chunks), None)
        assert leaked is None, f"{file} holds plaintext photo bytes at offset {leaked}"


def test_bad_uploads_are_refused_clearly_and_leave_nothing_behind(
    vault: Vault, patient: str
) -> None:
    for bad in (b"", b"GIF89a" + bytes(100), factories.jpeg()[:300]):
        with pytest.raises(PhotoError):
            _store(vault, patient, bad)
    small = load_settings(
        data_dir=vault.settings.data_dir,
        database_url=vault.settings.effective_database_url,
        max_upload_bytes=2048,
    )
    capped = bootstrap(small)
    with pytest.raises(TooLarge, match="limit"):
        _store(capped, patient)
    capped.close()
    with vault.sessions() as session:
        assert session.scalars(select(Photo)).first() is None
    assert list(vault.blobs.keys()) == []
    failed = [e for e in _events(vault) if e.outcome == "failed"]  # type: ignore[attr-defined]
    assert len(failed) == 4  # every refused upload is on the record
    with pytest.raises(NotFound):
        _store(vault, "no-such-patient")
    assert list(vault.blobs.keys()) == []


def test_corrupted_swapped_and_missing_blobs_are_errors_naming_the_photo(
    vault: Vault, patient: str
) -> None:
    a, b, c = (_store(vault, patient) for _ in range(3))
    path_a = _blob_path(vault, _photo_row(vault, a.id).blob_key)
    path_b = _blob_path(vault, _photo_row(vault, b.id).blob_key)
    # swapped: b's ciphertext under a's name
    shutil.copyfile(path_b, path_a)
    with pytest.raises(BlobUnreadable, match=a.id):
        photo_reads.read_photo(vault, photo_id=a.id, actor=_clinician(vault), purpose="care")
    # corrupted: one byte flipped in the middle
    data = bytearray(path_b.read_bytes())
    data[len(data) // 2] ^= 0x01
    path_b.write_bytes(bytes(data))
    with pytest.raises(BlobUnreadable, match=b.id):
        photo_reads.read_photo(vault, photo_id=b.id, actor=_clinician(vault), purpose="care")
    # missing
    _blob_path(vault, _photo_row(vault, c.id).blob_key).unlink()
    with pytest.raises(BlobUnreadable, match=c.id):
        photo_reads.read_photo(vault, photo_id=c.id, actor=_clinician(vault), purpose="care")
    failures = [e for e in _events(vault) if e.action == "photo:view"]  # type: ignore[attr-defined]
    # The decision (allowed) is recorded before decrypting; the failure follows it.
    assert [e.outcome for e in failures] == ["allowed", "failed"] * 3  # type: ignore[attr-defined]


def test_a_wrong_key_is_a_clear_error_not_garbage(vault: Vault, patient: str) -> None:
    stored = _store(vault, patient)
    other_keys = Vault(
        settings=vault.settings,
        engine=vault.engine,
        sessions=vault.sessions,
        blobs=vault.blobs,
        keys=MemoryKeySource(),
    )
    with pytest.raises(KeyUnavailable, match=stored.id):
        photo_reads.read_photo(
            other_keys, photo_id=stored.id, actor=_clinician(vault), purpose="care"
        )


def test_deleting_shreds_the_key_so_a_backup_copy_of_the_blob_stays_unreadable(
    vault: Vault, patient: str, tmp_path: Path
) -> None:
    stored = _store(vault, patient)
    row = _photo_row(vault, stored.id)
    backup = tmp_path / "backup.blob"
    shutil.copyfile(_blob_path(vault, row.blob_key), backup)
    photo_shredding.delete_photo(
        vault, photo_id=stored.id, actor=_clinician(vault), reason="patient asked"
    )
    with pytest.raises(NotFound):
        photo_reads.read_photo(vault, photo_id=stored.id, actor=_clinician(vault), purpose="care")
    after = _photo_row(vault, stored.id)
    assert after.wrapped_dek is None and after.deleted_at is not None
    with vault.sessions() as session:
        assert all(d.wrapped_dek is None for d in session.scalars(select(Derivative)))
    assert list(vault.blobs.keys()) == []
    with pytest.raises(BlobUnreadable):
        open_blob(
            backup.read_bytes(),
            after.wrapped_dek,
            object_id=stored.id,
            kind="photo",
            keys=vault.keys,
        )  # type: ignore[arg-type]
    assert ("photo:delete", "done") in [(e.action, e.outcome) for e in _events(vault)]  # type: ignore[attr-defined]


def test_key_rotation_rewraps_every_key_without_touching_blobs(vault: Vault, patient: str) -> None:
    stored = [_store(vault, patient) for _ in range(3)]
    blobs_before = {k: hashlib.sha256(vault.blobs.get(k)).hexdigest() for k in vault.blobs.keys()}
    old = vault.keys.current().id
    report = admin.rotate_key(vault, actor=OPERATOR)
    # 3 photos, 3 thumbnails and their 3 sealed notes
    assert report.new_kek != old and report.rewrapped == 9 and not report.resumed
    assert old in report.retired
    assert {
        k: hashlib.sha256(vault.blobs.get(k)).hexdigest() for k in vault.blobs.keys()
    } == blobs_before
    for s in stored:
        assert _photo_row(vault, s.id).kek_id == report.new_kek
        photo_reads.read_photo(vault, photo_id=s.id, actor=_clinician(vault), purpose="care")


def test_an_interrupted_rotation_is_finished_by_running_it_again(
    vault: Vault, patient: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = [_store(vault, patient) for _ in range(4)]
    monkeypatch.setattr(admin, "_ROTATE_BATCH", 1)

    def crash(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        admin.rotate_key(vault, actor=OPERATOR, progress=crash)
    report = admin.rotate_key(vault, actor=OPERATOR)
    assert (
        report.resumed and report.rewrapped == 10
    )  # 12 keys (4 photos, 4 thumbnails, 4 notes), 2 done before
    for s in stored:
        photo_reads.read_photo(vault, photo_id=s.id, actor=_clinician(vault), purpose="care")
    assert len(vault.keys.known_ids()) == 1


def test_audit_verify_catches_an_edit_made_directly_in_the_database(
    vault: Vault, patient: str
) -> None:
    from skinvault.db.models import AuditEvent
    from skinvault.errors import AuditChainBroken

    _store(vault, patient)
    _store(vault, patient)
    with vault.sessions.begin() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(actor="someone else"))
    with pytest.raises(AuditChainBroken) as broken:
        admin.verify_audit(vault)
    assert broken.value.seq == 2


@pytest.mark.skipif(not SAMPLES, reason="no corpus")
def test_on_s3_the_bucket_holds_only_ciphertext_and_photos_read_back(
    database_url: str, tmp_path: Path, s3_endpoint: str
) -> None:
    from tests.integration.conftest import s3_store

    bucket = s3_store(s3_endpoint)
    settings = load_settings(data_dir=tmp_path / "data", database_url=database_url)
    vault = bootstrap(settings, create=True, blobs=bucket)
    patient = admin.create_user(
        vault,
        role=Role.PATIENT,
        email="s3@example.org",
        password="correct horse 42",
        actor=OPERATOR,
    ).patient_id
    assert patient
    start_care(vault, patient_id=patient, member_id=_clinician(vault).id, actor=OPERATOR)
    plaintexts, display_copies = [], 0
    for path in SAMPLES[:6]:
        stored = _store(vault, patient, path.read_bytes())
        display_copies += stored.format in {"heif", "tiff"}  # a browser copy (a job) too
        got = photo_reads.read_photo(
            vault, photo_id=stored.id, actor=_clinician(vault), purpose="care"
        )
        assert got.data == scrub(path.read_bytes())[0]
        plaintexts += [got.data, path.read_bytes()]
    chunks = {p[o : o + 32] for p in plaintexts for o in range(0, len(p) - 31, 32)}
    objects = list(bucket.keys())
    assert len(objects) == 12 + display_copies  # six photos, six thumbnails
    for key in objects:
        data = bucket.get(key)
        assert not data.startswith((b"\xff\xd8\xff", b"\x89PNG", b"RIFF", b"II*\x00", b"MM\x00*"))
        assert not any(data[i : i + 32] in chunks for i in range(len(data) - 31)), key
    assert not (settings.data_dir / "blobs").exists()  # nothing fell back to the local folder
    vault.close()


def test_a_photo_note_is_stored_encrypted_and_survives_key_rotation(
    vault: Vault, patient: str
) -> None:
    note = "treated with tacrolimus 0.1% since March, lamp at 30 cm"
    stored = photo_store.store_photo(
        vault, patient_id=patient, data=factories.jpeg(), actor=_clinician(vault), note=note
    )
    assert stored.note == note
    if vault.engine.dialect.name == "sqlite":
        for file in vault.settings.data_dir.rglob("*"):
            if file.is_file():
                assert b"tacrolimus" not in file.read_bytes(), file
    with vault.sessions() as session:
        raw = session.get(Photo, stored.id)
        assert raw is not None and raw.note_enc and b"tacrolimus" not in raw.note_enc
    old = vault.keys.current().id
    report = admin.rotate_key(vault, actor=OPERATOR)
    assert old in report.retired
    assert photo_store.get_photo(vault, stored.id).note == note
    photo_shredding.delete_photo(vault, photo_id=stored.id, actor=_clinician(vault), reason="asked")
    with vault.sessions() as session:
        gone = session.get(Photo, stored.id)
        assert gone is not None and gone.note_enc is None
