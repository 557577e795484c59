"""A process storing photos is killed (SIGKILL) mid-store; the vault stays whole.

The writer reports each photo it has stored; the test kills it only after that report (a
seeded number of stores in), a seeded fraction of one store's duration later, so a slow
runner still has stored photos and the kill still lands at different points of a store.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from skinvault.actors import Actor, Role
from skinvault.bootstrap import bootstrap
from skinvault.config import load_settings
from skinvault.db.models import Photo
from skinvault.services import admin, jobs, photo_reads
from skinvault.services.care import start_care

WRITER = """
import sys
from pathlib import Path
from skinvault.actors import Actor
from skinvault.bootstrap import bootstrap
from skinvault.config import load_settings
from skinvault.services.photo_store import store_photo
from tests import factories

vault = bootstrap(load_settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2]))
photo = factories.jpeg()
print("ready", flush=True)
while True:
    store_photo(vault, patient_id=sys.argv[3], data=photo, actor=Actor.system("crash-writer"))
    print("stored", flush=True)
"""
ROOT = Path(__file__).resolve().parents[2]


def test_killed_writers_leave_only_readable_photos_a_valid_chain_and_sweepable_orphans(
    database_url: str, tmp_path: Path
) -> None:
    settings = load_settings(data_dir=tmp_path / "data", database_url=database_url)
    vault = bootstrap(settings, create=True)
    operator = Actor.system("test")
    patient = admin.create_user(
        vault, role=Role.PATIENT, email="p@example.org", password="long enough pw", actor=operator
    ).patient_id
    assert patient
    doctor = admin.create_user(
        vault, role=Role.CLINICIAN, email="d@example.org", password="long enough pw", actor=operator
    ).user_id
    start_care(vault, patient_id=patient, member_id=doctor, actor=operator)
    clinician = Actor(doctor, Role.CLINICIAN, "Dr. Test")
    rng = random.Random(7)
    for _ in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(settings.data_dir), database_url, patient],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready", (
            child.stderr.read() if child.stderr else ""
        )
        took = 0.0
        for _ in range(rng.randint(1, 3)):
            started = time.monotonic()
            line = child.stdout.readline()
            took = time.monotonic() - started  # how long one store takes on this runner
            assert line.strip() == b"stored", (
                line, child.stderr.read() if child.stderr else ""
            )  # fmt: skip
        # Into the next store by a fraction of how long one took: a different moment each time.
        time.sleep(rng.uniform(0, 1) * min(took, 1.0))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        if child.stderr:
            child.stderr.close()

    with vault.sessions() as session:
        listed = [p.id for p in session.query(Photo).all()]
    assert listed, "the writers stored nothing before being killed"
    for photo_id in listed:
        got = photo_reads.read_photo(vault, photo_id=photo_id, actor=clinician, purpose="care")
        assert got.data.startswith(b"\xff\xd8")
    assert admin.verify_audit(vault).count >= len(listed)
    blob_dir = settings.data_dir / "blobs"
    jobs.run_pending(vault)  # every listed photo's thumbnail job survived the kills
    admin.sweep(vault, actor=operator, grace=timedelta(0))
    assert len(list(vault.blobs.keys())) == 2 * len(listed)  # each photo and its thumbnail
    assert not [p for p in blob_dir.rglob(".tmp-*")]
    vault.close()
