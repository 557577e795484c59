"""What a FHIR read costs when the Media SHA-1 is computed from the decrypted bytes.

    .venv/bin/python bench/fhir_search.py            # 40 corpus JPEGs, one patient
    .venv/bin/python bench/fhir_search.py --quick    # 6 photos (CI: the script still runs)

skinvault stores only the SHA-256 of a photo, so ``Media.content.hash`` (R4: SHA-1)
is computed from the decrypted bytes on every read. The app (SQLite, a temp folder)
holds N corpus JPEGs of one patient; a clinician on the care team asks for a page of
``Media?patient=`` (only the page is decrypted), the whole ``$everything`` (every
photo is), ``Observation?patient=`` (no photo is), and one ``Media/{id}``. Prints the
median of 5 calls each and how many photos each call decrypted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from fastapi.testclient import TestClient  # noqa: E402

from skinvault.actors import Actor, Role  # noqa: E402
from skinvault.config import load_settings  # noqa: E402
from skinvault.errors import PhotoError  # noqa: E402
from skinvault.services import admin, api_tokens, photo_store  # noqa: E402
from skinvault.services.care import start_care  # noqa: E402
from skinvault.web.app import create_app  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "corpus"
PASSWORD = "a long enough password"  # throwaway accounts in a temp vault


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true", help="6 photos, to check the script")
    parser.add_argument("--photos", type=int, default=40)
    args = parser.parse_args()
    count = 6 if args.quick else args.photos
    files = sorted(CORPUS.glob("*.jpg"))[:count]
    operator = Actor.system("bench")
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(load_settings(data_dir=Path(tmp) / "data"))
        vault = app.state.vault
        ann = admin.create_user(
            vault, role=Role.PATIENT, email="ann@example.org", password=PASSWORD,
            actor=operator, name="Ann",
        )  # fmt: skip
        lee = admin.create_user(
            vault, role=Role.CLINICIAN, email="lee@example.org", password=PASSWORD,
            actor=operator, name="Dr. Lee",
        )  # fmt: skip
        assert ann.patient_id
        start_care(vault, patient_id=ann.patient_id, member_id=lee.user_id, actor=operator)
        clinician = Actor(lee.user_id, Role.CLINICIAN, "Dr. Lee")
        stored, total_bytes = [], 0
        for path in files:
            try:
                got = photo_store.store_photo(
                    vault, patient_id=ann.patient_id, data=path.read_bytes(), actor=clinician,
                    site="hand-left",
                )  # fmt: skip
            except PhotoError:
                continue
            stored.append(got.id)
            total_bytes += got.size
        token = api_tokens.issue_api_token(vault, actor=clinician).token
        h = {"Authorization": f"Bearer {token}"}
        pid = ann.patient_id
        calls = [
            ("Media?patient=&_count=10", f"/fhir/R4/Media?patient={pid}&_count=10",
             min(10, len(stored))),
            ("Patient/$everything", f"/fhir/R4/Patient/{pid}/$everything", len(stored)),
            ("Observation?patient=", f"/fhir/R4/Observation?patient={pid}", 0),
            ("Media/{id}", f"/fhir/R4/Media/{stored[0]}?purpose=care", 1),
        ]  # fmt: skip
        print(
            f"{len(stored)} JPEGs stored, {total_bytes / 1e6:.1f} MB in all (SQLite, temp folder)"
        )
        print(f"{'call':<26}{'decrypted':>10}{'median ms':>11}")
        with TestClient(app) as client:
            for name, url, decrypted in calls:
                times = []
                for _ in range(5):
                    start = time.perf_counter()
                    answer = client.get(url, headers=h)
                    times.append((time.perf_counter() - start) * 1000)
                    assert answer.status_code == 200, answer.text[:300]
                print(f"{name:<26}{decrypted:>10}{statistics.median(times):>11.0f}")
        vault.close()


if __name__ == "__main__":
    main()
