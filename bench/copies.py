"""How long do the patient's own copies take? One run, one table.

Usage: ``.venv/bin/python bench/copies.py [--photos N] [--quick]`` (about a minute with the
default N = 20; ``--quick`` stores 2 photos).

On SQLite with a local folder: N photos of the corpus (``tests/data/corpus``, the largest
JPEGs first, repeated if needed) are stored for one patient; then the time to build the
encrypted personal archive of all of them (7z, AES-256, into an anonymous temporary
file), to make one public copy of the largest photo (scrub, face and text detection,
fill, re-encode), and to sign one upload receipt.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from skinvault.actors import Actor, Role
from skinvault.bootstrap import bootstrap
from skinvault.config import load_settings
from skinvault.services import admin, archive, photo_store, public_copy, receipts

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "corpus"
OPERATOR = Actor.system("bench")
PASSWORD = "a long enough password"
PASSPHRASE = "marmalade under the old pier"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--photos", type=int, default=20, help="photos in the archive (20)")
    parser.add_argument("--quick", action="store_true", help="2 photos: seconds, for CI")
    args = parser.parse_args()
    count = 2 if args.quick else args.photos
    jpegs = sorted(CORPUS.glob("*.jpg"), key=lambda p: -p.stat().st_size)[:10]
    with tempfile.TemporaryDirectory() as folder:
        vault = bootstrap(load_settings(data_dir=Path(folder) / "data"), create=True)
        made = admin.create_user(vault, role=Role.PATIENT, email="bench@example.org",
                                 password=PASSWORD, actor=OPERATOR, name="Bench")  # fmt: skip
        assert made.patient_id
        me = Actor(made.user_id, Role.PATIENT, "Bench")
        stored, total = [], 0
        for n in range(count):
            data = jpegs[n % len(jpegs)].read_bytes()
            try:
                stored.append(photo_store.store_photo(vault, patient_id=made.patient_id, data=data,
                                                 actor=me, site="back"))  # fmt: skip
                total += len(data)
            except Exception as exc:
                print(f"skipped {jpegs[n % len(jpegs)].name}: {exc}")
        started = time.perf_counter()
        with archive.archive_file(vault) as out:
            built = archive.build_archive(vault, actor=me, patient_id=made.patient_id,
                                          passphrase=PASSPHRASE, out=out)  # fmt: skip
        took_archive = time.perf_counter() - started
        largest = max(stored, key=lambda s: s.width * s.height)
        started = time.perf_counter()
        copy = public_copy.public_copy_of_photo(vault, photo_id=largest.id, actor=me)
        took_copy = time.perf_counter() - started
        started = time.perf_counter()
        receipts.signed_text(vault, receipts.receipt_for(vault, photo_id=largest.id, actor=me))
        took_receipt = time.perf_counter() - started
        vault.close()
    with Image.open(io.BytesIO(copy.data)) as image:
        size = image.size
    print("| what | input | time |")
    print("|---|---|---|")
    print(f"| personal archive | {built.photos} photos, {total / 1e6:.1f} MB in, "
          f"{built.size / 1e6:.1f} MB out | {took_archive:.2f} s |")  # fmt: skip
    print(f"| public copy | {size[0]} × {size[1]} px, {copy.faces_found} face(s), "
          f"{copy.text_found} text | {took_copy:.2f} s |")  # fmt: skip
    print(f"| signed receipt | one photo | {took_receipt * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
