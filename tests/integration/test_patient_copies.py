"""F11, the patient's own copies, on SQLite and PostgreSQL: upload receipts (signed, checked
by hand with openssl), "check a copy" by either hash, the encrypted personal archive opened
with Debian's 7z, and the public copy (exiftool finds no metadata, faces are covered, and
nothing in the database or the audit log leads from the copy back to the record)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from skinvault.actors import Actor, Role
from skinvault.audit.chain import public_key_hex
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.db.models import AuditEvent, Base
from skinvault.errors import AccessDenied, RequestInvalid
from skinvault.policy.purposes import Purpose, Scope
from skinvault.services import (
    admin,
    archive,
    consents,
    photo_reads,
    photo_store,
    public_copy,
    receipts,
)
from skinvault.services.care import start_care
from tests import factories
from tests.conftest import exiftool_json

OPERATOR = Actor.system("test")
CLUES_SET = Path(__file__).parents[2] / "bench" / "clues_set"
FACES_PHOTO = CLUES_SET / "dlib-2008_002506.jpg"  # three faces of 90-109 px (PASCAL VOC)
PASSPHRASE = "marmalade under the old pier"


@dataclass
class World:
    vault: Vault
    patient: Actor
    patient_id: str
    clinician: Actor
    other: Actor
    other_id: str


def _person(vault: Vault, role: Role, email: str, name: str) -> tuple[Actor, str | None]:
    made = admin.create_user(
        vault, role=role, email=email, password="a long enough password", actor=OPERATOR,
        name=name,
    )  # fmt: skip
    return Actor(made.user_id, role, name), made.patient_id


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    vault = bootstrap(
        load_settings(data_dir=tmp_path / "data", database_url=database_url), create=True
    )
    ann, ann_pid = _person(vault, Role.PATIENT, "ann@example.org", "Ann Example")
    lee, _ = _person(vault, Role.CLINICIAN, "lee@clinic.example", "Dr. Lee")
    bob, bob_pid = _person(vault, Role.PATIENT, "bob@example.org", "Bob")
    assert ann_pid and bob_pid
    start_care(vault, patient_id=ann_pid, member_id=lee.id, actor=OPERATOR)
    yield World(vault, ann, ann_pid, lee, bob, bob_pid)
    vault.close()


def _faces_with_metadata() -> bytes:
    """The PASCAL VOC group photo with GPS, owner and camera EXIF added (a phone's photo)."""
    with Image.open(FACES_PHOTO) as image:
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=92, exif=factories.gps_exif())
        return out.getvalue()


def _annotated_faces() -> list[tuple[int, int, int, int]]:
    root = ET.parse(CLUES_SET / "dlib-testing.xml").getroot()  # noqa: S314 - our own file
    for node in root.iter("image"):
        if node.get("file") == FACES_PHOTO.name.removeprefix("dlib-"):
            return [
                (int(b.get("left", 0)), int(b.get("top", 0)), int(b.get("width", 0)),
                 int(b.get("height", 0)))
                for b in node.iter("box")
            ]  # fmt: skip
    raise AssertionError("the face photo is not annotated")


# -- receipts ------------------------------------------------------------------------------


def test_a_receipt_names_both_hashes_and_who_could_see_it_and_its_signature_checks(
    world: World, tmp_path: Path
) -> None:
    v = world.vault
    consents.record_consent(
        v, patient_id=world.patient_id, purpose=Purpose.TEACHING, granted=True,
        scopes={Scope.DEIDENTIFIED}, actor=world.patient,
    )  # fmt: skip
    raw = factories.jpeg()
    stored = photo_store.store_photo(
        v, patient_id=world.patient_id, data=raw, actor=world.patient, site="left-hand"
    )
    served = photo_reads.read_photo(v, photo_id=stored.id, actor=world.patient, purpose="care").data
    got = receipts.receipt_for(v, photo_id=stored.id, actor=world.patient)
    assert got.original_sha256 == hashlib.sha256(raw).hexdigest()
    assert got.stored_sha256 == hashlib.sha256(served).hexdigest() != got.original_sha256
    assert [m.name for m in got.care_team] == ["Dr. Lee"]
    text = receipts.signed_text(v, got)
    assert "Dr. Lee" in text and "Teaching: yes, de-identified only" in text
    assert "Left hand" in text and got.stored_sha256 in text and got.original_sha256 in text
    assert "Not used for: research" in text  # said as not used
    key = public_key_hex(v.keys.signing_key())
    assert receipts.verify_text(text, key)
    assert receipts.signed_text(v, receipts.receipt_for(v, photo_id=stored.id,
                                                         actor=world.patient)) == text  # fmt: skip
    forged = text.replace("Dr. Lee", "Dr. Evil")
    assert not receipts.verify_text(forged, key)
    assert not receipts.verify_text(text, "00" * 32)
    # A clinic checks it without skinvault: openssl with the service's public key.
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to check the documented verification steps")
    for body_text, expected in ((text, 0), (forged, 1)):
        _openssl_verify(tmp_path, body_text, key, expected)


def _openssl_verify(folder: Path, text: str, key_hex: str, expected: int) -> None:
    """The steps of docs/patient-copies.md, as a shell would run them."""
    body, _, signature = text.rpartition(receipts.SIGNATURE_PREFIX)
    (folder / "body.txt").write_bytes(body.encode())
    (folder / "sig.bin").write_bytes(bytes.fromhex(signature.strip()))
    der = bytes.fromhex("302a300506032b6570032100" + key_hex)
    (folder / "key.der").write_bytes(der)
    subprocess.run(["openssl", "pkey", "-pubin", "-inform", "DER", "-in", "key.der",
                    "-out", "key.pem"], cwd=folder, check=True, capture_output=True)  # fmt: skip
    done = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "key.pem", "-rawin",
         "-in", "body.txt", "-sigfile", "sig.bin"],
        cwd=folder, capture_output=True, check=False,
    )  # fmt: skip
    assert done.returncode == expected, done.stdout + done.stderr


def test_receipts_are_for_the_patient_and_their_care_team_only(world: World) -> None:
    stored = photo_store.store_photo(
        world.vault, patient_id=world.patient_id, data=factories.png(), actor=world.clinician
    )
    got = receipts.receipt_for(world.vault, photo_id=stored.id, actor=world.clinician)
    assert got.saved_by == "Dr. Lee"
    with pytest.raises(AccessDenied):
        receipts.receipt_for(world.vault, photo_id=stored.id, actor=world.other)


def test_check_a_copy_finds_the_photo_by_either_hash_and_nothing_else(world: World) -> None:
    v = world.vault
    raw = factories.jpeg()
    stored = photo_store.store_photo(v, patient_id=world.patient_id, data=raw, actor=world.patient)
    served = photo_reads.read_photo(v, photo_id=stored.id, actor=world.patient, purpose="care").data
    for data, which in ((raw, "original"), (served, "stored")):
        found = receipts.find_copy(
            v, actor=world.patient, patient_id=world.patient_id,
            sha256=hashlib.sha256(data).hexdigest().upper(),
        )  # fmt: skip
        assert [(m.photo_id, m.which) for m in found] == [(stored.id, which)]
    assert receipts.find_copy(v, actor=world.patient, patient_id=world.patient_id,
                              sha256=hashlib.sha256(factories.png()).hexdigest()) == []  # fmt: skip
    assert receipts.find_copy(v, actor=world.patient, patient_id=world.patient_id,
                              sha256="not a hash") == []  # fmt: skip
    with pytest.raises(AccessDenied):  # another patient cannot probe this record
        receipts.find_copy(v, actor=world.other, patient_id=world.patient_id,
                           sha256=hashlib.sha256(raw).hexdigest())  # fmt: skip


# -- the personal archive ------------------------------------------------------------------


def _seven_zip() -> str:
    found = shutil.which("7z")
    if found is None:
        pytest.fail("Debian's 7z (p7zip-full) is needed to open the archive (scripts/test)")
    return found


def test_the_archive_opens_with_7z_and_the_right_passphrase_only(
    world: World, tmp_path: Path
) -> None:
    v = world.vault
    raw = factories.jpeg()
    stored = photo_store.store_photo(
        v, patient_id=world.patient_id, data=raw, actor=world.patient, site="left-hand",
        note="tacrolimus, week 6",
    )  # fmt: skip
    photo_store.store_photo(
        v, patient_id=world.patient_id, data=factories.png(), actor=world.patient
    )
    consents.record_consent(
        v, patient_id=world.patient_id, purpose=Purpose.RESEARCH, granted=False,
        actor=world.patient,
    )  # fmt: skip
    served = photo_reads.read_photo(v, photo_id=stored.id, actor=world.patient, purpose="care").data
    seen: list[tuple[int, int, str]] = []
    target = tmp_path / "archive.7z"
    with target.open("w+b") as out:
        made = archive.build_archive(
            v, actor=world.patient, patient_id=world.patient_id, passphrase=PASSPHRASE,
            out=out, progress=lambda done, total, what: seen.append((done, total, what)),
        )  # fmt: skip
    assert made.photos == 2 and made.size == target.stat().st_size
    assert seen[-1][0] == seen[-1][1] and len(seen) == 5
    blob = target.read_bytes()
    assert blob.startswith(b"7z\xbc\xaf\x27\x1c")
    for secret in (served, raw, b"tacrolimus", b"Ann Example", b"photos/01"):
        assert not _shares_a_run(blob, secret), f"the archive holds plaintext: {secret[:20]!r}"

    seven = _seven_zip()
    wrong = subprocess.run([seven, "t", "-pnot the passphrase", str(target)],
                           capture_output=True, check=False)  # fmt: skip
    assert wrong.returncode != 0
    listed = subprocess.run([seven, "l", "-pnot the passphrase", str(target)],
                            capture_output=True, check=False)  # fmt: skip
    assert b"left-hand" not in listed.stdout  # the file list is encrypted too
    out_dir = tmp_path / "opened"
    done = subprocess.run([seven, "x", f"-p{PASSPHRASE}", f"-o{out_dir}", str(target)],
                          capture_output=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    files = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file())
    assert "README.txt" in files and "consents.json" in files and "access-history.txt" in files
    [first] = [f for f in files if f.startswith("photos/01-left-hand-")]
    assert (out_dir / first).read_bytes() == served
    index = json.loads((out_dir / "photos.json").read_text())
    assert index[0]["note"] == "tacrolimus, week 6"
    assert index[0]["sha256_original"] == hashlib.sha256(raw).hexdigest()
    receipt = (out_dir / index[0]["receipt"]).read_text()
    assert receipts.verify_text(receipt, public_key_hex(v.keys.signing_key()))
    said = json.loads((out_dir / "consents.json").read_text())
    assert [(c["purpose"], c["answer"]) for c in said] == [("research", "refused")]
    assert "You added your left hand photo" in (out_dir / "access-history.txt").read_text()
    with v.reading() as session:
        actions = [e.action for e in session.scalars(select(AuditEvent))]
    assert "record:export-archive" in actions and actions.count("photo:export-archive") == 2


def _shares_a_run(blob: bytes, secret: bytes, run: int = 16) -> bool:
    if len(secret) <= run:
        return secret in blob
    return any(secret[o : o + run] in blob for o in range(0, len(secret) - run + 1, run))


def test_a_weak_passphrase_or_another_person_gets_no_archive(world: World) -> None:
    v = world.vault
    photo_store.store_photo(
        v, patient_id=world.patient_id, data=factories.jpeg(), actor=world.patient
    )
    for weak in ("short", "password1234", "aaaaaaaaaaaaaaaa"):
        with pytest.raises(RequestInvalid):
            archive.build_archive(v, actor=world.patient, patient_id=world.patient_id,
                                  passphrase=weak, out=io.BytesIO())  # fmt: skip
    for someone in (world.clinician, world.other):
        with pytest.raises(AccessDenied):
            archive.build_archive(v, actor=someone, patient_id=world.patient_id,
                                  passphrase=PASSPHRASE, out=io.BytesIO())  # fmt: skip


# -- the public copy -----------------------------------------------------------------------


def _everything_in_the_database(v: Vault) -> str:
    with v.reading() as session:
        return "\n".join(
            json.dumps(
                {k: (val.hex() if isinstance(val, bytes) else str(val)) for k, val in row.items()}
            )
            for table in Base.metadata.sorted_tables
            for row in session.execute(select(table)).mappings()
        )


def test_a_public_copy_has_no_metadata_covered_faces_and_no_link_to_the_record(
    world: World, tmp_path: Path
) -> None:
    v = world.vault
    raw = _faces_with_metadata()
    stored = photo_store.store_photo(
        v, patient_id=world.patient_id, data=raw, actor=world.patient, site="left-hand"
    )
    before = _everything_in_the_database(v)
    copy = public_copy.public_copy_of_photo(v, photo_id=stored.id, actor=world.patient)
    assert copy.file_name == "left-hand-public-copy.jpg" and copy.faces_found >= 3
    assert copy.reminders and any("Tattoos" in r for r in copy.reminders)

    path = tmp_path / copy.file_name
    path.write_bytes(copy.data)
    [tags] = exiftool_json(path)
    groups = {key.split(":")[0] for key in tags if ":" in key}
    assert groups <= {"ExifTool", "System", "File", "Composite", "JFIF"}, groups
    assert not any("GPS" in k or "Owner" in k or "Model" in k for k in tags)

    with Image.open(io.BytesIO(copy.data)) as image:
        pixels = image.convert("L")
        for x, y, w, h in _annotated_faces():
            face = pixels.crop((x, y, x + w, y + h))
            assert face.getextrema()[1] < 40, f"the face at {x},{y} shows through"

    # Nothing leads from the copy back to the record: not its hash, not its name, and the
    # one audit event says only that a public copy was made.
    digest = hashlib.sha256(copy.data).hexdigest()
    after = _everything_in_the_database(v)
    assert digest not in after and copy.file_name not in after
    with v.reading() as session:
        made = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "public-copy:make")
        ).all()
    assert [(e.object, e.reason, e.outcome) for e in made] == [
        (f"patient:{world.patient_id}", "a public copy was made", "allowed")
    ]
    new_rows = set(after.splitlines()) - set(before.splitlines())
    assert not any(stored.id in row for row in new_rows), new_rows
    assert (
        digest
        != hashlib.sha256(
            photo_reads.read_photo(v, photo_id=stored.id, actor=world.patient, purpose="care").data
        ).hexdigest()
    )


def test_faces_stay_when_the_person_chooses_and_only_the_patient_may_make_one(
    world: World,
) -> None:
    v = world.vault
    stored = photo_store.store_photo(
        v, patient_id=world.patient_id, data=_faces_with_metadata(), actor=world.patient
    )
    kept = public_copy.public_copy_of_photo(
        v, photo_id=stored.id, actor=world.patient, cover_faces=False
    )
    assert kept.covered == kept.text_found and kept.faces_found >= 3  # only text covered
    assert any(r.startswith(f"You chose to leave {kept.faces_found} face") for r in kept.reminders)
    for someone in (world.clinician, world.other):
        with pytest.raises(AccessDenied):
            public_copy.public_copy_of_photo(v, photo_id=stored.id, actor=someone)
    from_file = public_copy.public_copy_of_file(
        v, data=factories.jpeg(), actor=world.patient, patient_id=world.patient_id
    )
    assert from_file.file_name == "public-copy.jpg" and from_file.data.startswith(b"\xff\xd8")


# -- the portal pages ----------------------------------------------------------------------


def test_the_portal_pages_give_receipts_checks_archives_and_public_copies(
    database_url: str, tmp_path: Path
) -> None:
    import re

    import pyotp  # noqa: F401 - the patient needs no second factor
    from fastapi.testclient import TestClient

    from skinvault.web.app import create_app

    app = create_app(load_settings(data_dir=tmp_path / "data", database_url=database_url))
    with TestClient(app) as client:
        v = app.state.vault
        ann, ann_pid = _person(v, Role.PATIENT, "ann@example.org", "Ann Example")
        assert ann_pid
        raw = factories.jpeg()
        stored = photo_store.store_photo(v, patient_id=ann_pid, data=raw, actor=ann, site="back")
        signed = client.post(
            "/login", data={"email": "ann@example.org", "password": "a long enough password"},
            follow_redirects=False,
        )  # fmt: skip
        assert signed.status_code == 303
        home = client.get("/portal")
        assert f"/portal/photos/{stored.id}/receipt" in home.text and "My copies" in home.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', home.text)
        assert csrf
        token = csrf.group(1)

        page = client.get(f"/portal/photos/{stored.id}/receipt")
        assert page.status_code == 200 and hashlib.sha256(raw).hexdigest() in page.text
        text = client.get(f"/portal/photos/{stored.id}/receipt.txt")
        assert text.headers["content-type"].startswith("text/plain")
        assert "attachment" in text.headers["content-disposition"]
        assert receipts.verify_text(text.text, public_key_hex(v.keys.signing_key()))

        by_hash = client.post("/portal/check-copy", data={"csrf": token,
                              "sha256": hashlib.sha256(raw).hexdigest()},
                              files={"file": ("", b"", "application/octet-stream")})  # fmt: skip
        assert by_hash.status_code == 200 and "Yes: this is a photo in your record" in by_hash.text
        by_file = client.post("/portal/check-copy", data={"csrf": token},
                              files={"file": ("x.png", factories.png(), "image/png")})  # fmt: skip
        assert by_file.status_code == 200 and "No: this file is not" in by_file.text
        assert "fingerprinted and dropped" in by_file.text

        weak = client.post("/portal/archive", data={"csrf": token, "passphrase": "short",
                           "passphrase_again": "short"})  # fmt: skip
        assert weak.status_code == 400 and "at least 12 characters" in weak.text
        got = client.post("/portal/archive", data={"csrf": token, "passphrase": PASSPHRASE,
                          "passphrase_again": PASSPHRASE})  # fmt: skip
        assert got.status_code == 200 and got.content.startswith(b"7z\xbc\xaf\x27\x1c")
        assert got.headers["content-length"] == str(len(got.content))
        assert not list((tmp_path / "data" / "run" / "archives").iterdir())  # nothing left

        made = client.post("/portal/public-copy", data={"csrf": token, "photo_id": stored.id},
                           files={"file": ("", b"", "application/octet-stream")})  # fmt: skip
        assert made.status_code == 200 and made.content.startswith(b"\xff\xd8")
        assert 'filename="back-public-copy.jpg"' in made.headers["content-disposition"]
        nothing = client.post("/portal/public-copy", data={"csrf": token},
                              files={"file": ("", b"", "application/octet-stream")})  # fmt: skip
        assert nothing.status_code == 400 and "Choose a photo" in nothing.text
        for path in ("/portal/copies", "/portal/check-copy", "/portal/archive",
                     "/portal/public-copy"):  # fmt: skip
            assert client.get(path).status_code == 200, path
        history = client.get("/portal/history").text
        assert "downloaded an encrypted personal archive" in history
        assert "made a public copy" in history
    v.close()


def test_the_public_copy_command_writes_unlinked_copies_without_metadata(tmp_path: Path) -> None:
    import sys

    source = tmp_path / "IMG_0412.jpg"
    source.write_bytes(_faces_with_metadata())
    before = source.read_bytes()
    out = tmp_path / "to-post"
    (out).mkdir()
    (out / "public-copy.jpg").write_bytes(b"someone else's file")
    done = subprocess.run(
        [sys.executable, "-m", "skinvault", "public-copy", str(source), str(tmp_path / "gone.jpg"),
         "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # one input is missing: named, the other done
    assert "gone.jpg" in done.stderr and "Tattoos" in done.stdout
    assert source.read_bytes() == before  # never modified
    assert (out / "public-copy.jpg").read_bytes() == b"someone else's file"  # never overwritten
    made = out / "public-copy-2.jpg"
    [tags] = exiftool_json(made)
    assert {k.split(":")[0] for k in tags if ":" in k} <= {
        "ExifTool", "System", "File", "Composite", "JFIF"
    }  # fmt: skip
    with Image.open(made) as image:
        for x, y, w, h in _annotated_faces():
            assert image.convert("L").crop((x, y, x + w, y + h)).getextrema()[1] < 40
    kept = subprocess.run(
        [sys.executable, "-m", "skinvault", "public-copy", str(source), "--out", str(out),
         "--keep-faces", "--keep-text"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert kept.returncode == 0 and "You chose to leave" in kept.stdout
    assert "0 area(s) covered" in kept.stdout and (out / "public-copy-3.jpg").exists()


def test_a_photo_whose_blob_is_gone_is_listed_as_missing_and_the_rest_is_archived(
    world: World, tmp_path: Path
) -> None:
    from skinvault.db.models import Photo

    v = world.vault
    kept = photo_store.store_photo(v, patient_id=world.patient_id, data=factories.jpeg(),
                              actor=world.patient, site="back")  # fmt: skip
    lost = photo_store.store_photo(v, patient_id=world.patient_id, data=factories.png(),
                              actor=world.patient, site="back")  # fmt: skip
    with v.reading() as session:
        lost_row = session.get(Photo, lost.id)
        assert lost_row is not None
        v.blobs.delete(lost_row.blob_key)
    target = tmp_path / "a.7z"
    with target.open("w+b") as out:
        made = archive.build_archive(v, actor=world.patient, patient_id=world.patient_id,
                                     passphrase=PASSPHRASE, out=out)  # fmt: skip
    assert made.photos == 1
    opened = tmp_path / "opened"
    subprocess.run([_seven_zip(), "x", f"-p{PASSPHRASE}", f"-o{opened}", str(target)],
                   check=True, capture_output=True)  # fmt: skip
    assert lost.id in (opened / "MISSING.txt").read_text()
    assert [e["photo_id"] for e in json.loads((opened / "photos.json").read_text())] == [kept.id]
    with v.reading() as session:
        failed = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "photo:export-archive", AuditEvent.outcome == "failed"
            )
        ).all()
    assert [e.object for e in failed] == [f"photo:{lost.id}"]
