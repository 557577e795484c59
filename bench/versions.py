"""How long does serving a photo version take? One run, one table.

Usage: ``.venv/bin/python bench/versions.py [--quick]`` (about half a minute on an idle
machine; ``--quick`` only the small JPEG).

On SQLite with a local folder: an iPhone HEIC (12 MP, tests/data/corpus) and the face
photo of bench/clues_set are stored; then, per version, the first read (decrypt,
detect faces and text where needed, cover, re-encode, seal, store, serve) and a second
read (the stored version decrypted and served).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skinvault.actors import Actor, Role
from skinvault.bootstrap import bootstrap
from skinvault.config import load_settings
from skinvault.policy.purposes import Purpose, Scope
from skinvault.services import admin, consents, photo_reads, photo_store, versions

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = {
    "iPhone HEIC 12 MP": ROOT
    / "tests"
    / "data"
    / "corpus"
    / "005-heic-mobile-iphone-13-pro-max.heic",
    "JPEG 500 x 375, 3 faces": ROOT / "bench" / "clues_set" / "dlib-2008_002506.jpg",
}
OPERATOR = Actor.system("bench")


def _timed(read: object) -> float:
    start = time.perf_counter()
    read()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the small JPEG")
    quick = parser.parse_args().quick
    chosen = {k: v for k, v in PHOTOS.items() if not quick or "JPEG" in k}
    with tempfile.TemporaryDirectory() as folder:
        vault = bootstrap(load_settings(data_dir=Path(folder) / "data"), create=True)
        rows = []
        for name, path in chosen.items():
            made = [
                admin.create_user(vault, role=role, email=f"{role.value}-{len(rows)}@x.org",
                                  password="a long enough password", actor=OPERATOR)  # noqa: S106
                for role in (Role.PATIENT, Role.EDUCATOR)
            ]  # fmt: skip
            pid = made[0].patient_id
            assert pid
            patient = Actor(made[0].user_id, Role.PATIENT, "patient")
            educator = Actor(made[1].user_id, Role.EDUCATOR, "educator")
            stored = photo_store.store_photo(vault, patient_id=pid, data=path.read_bytes(),
                                        actor=patient)  # fmt: skip
            w, h = stored.width, stored.height
            versions.set_markup(vault, photo_id=stored.id, actor=patient,
                                crop=(w // 4, h // 4, w // 2, h // 2))  # fmt: skip
            cases = [("display", patient, "care", set())] if stored.format == "heif" else []
            cases += [
                ("face_free", educator, "teaching", {Scope.NO_FACE}),
                ("cropped", educator, "teaching", {Scope.CROPPED}),
                ("deidentified", educator, "teaching", {Scope.DEIDENTIFIED}),
            ]
            for kind, actor, purpose, scopes in cases:
                if scopes:
                    consents.record_consent(vault, patient_id=pid, purpose=Purpose.TEACHING,
                                            granted=True, scopes=scopes, actor=patient)  # fmt: skip

                def read(
                    actor: Actor = actor, purpose: str = purpose, photo_id: str = stored.id
                ) -> None:
                    photo_reads.read_photo(vault, photo_id=photo_id, actor=actor, purpose=purpose,
                                      for_browser=True)  # fmt: skip

                first, again = _timed(read), _timed(read)
                rows.append((name, kind, first, again))
        vault.close()
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.1f} while measuring")
    print(f"{'photo':26} {'version':14} {'first read':>11} {'next read':>10}")
    for name, kind, first, again in rows:
        print(f"{name:26} {kind:14} {first:10.2f}s {again:9.3f}s")


if __name__ == "__main__":
    main()
