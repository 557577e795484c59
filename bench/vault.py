"""Store and read throughput of the vault, next to the floor: scrub + AES-GCM + file write.

    .venv/bin/python bench/vault.py                  # 50 photos of 12 MP (default)
    .venv/bin/python bench/vault.py --photos 30 --no-pg

Builds a batch of 12 MP JPEGs with a real camera's full EXIF/GPS/thumbnail/XMP
(the generator of bench/scrub.py), then times, one photo after another:

- the floor, per photo: ``scrub`` + AES-256-GCM with a fresh key and nonce +
  a durable file write (temp file, fsync, rename, fsync of the folder — what
  any crash-safe store pays), and each of these three parts on its own;
- "thumbnail only": ``thumbnail`` on the scrubbed bytes (a reduced-scale JPEG
  decode, resize, JPEG encode), which ``store_photo`` does and the floor does not;
- ``store_photo`` on SQLite and on PostgreSQL (a fresh schema, dropped at the
  end), both with the local blob store in a data dir under --dir;
- ``read_photo`` of every stored photo on each database.

MB/s counts the uploaded (unscrubbed) bytes for scrub/store rows and the bytes
handed in or out for the others; "x floor" is ms/photo divided by the floor's.
The goal (issue): store costs at most 1.5x the floor.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.photos.scrub import scrub
from skinvault.photos.thumbnail import thumbnail
from skinvault.services.admin import create_user
from skinvault.services.care import start_care
from skinvault.services.photo_reads import read_photo
from skinvault.services.photo_store import store_photo

HERE = Path(__file__).resolve().parent
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
GOAL = 1.5


def _scrub_bench() -> ModuleType:
    """bench/scrub.py as a module, for its batch generator (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("_bench_scrub", HERE / "scrub.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_photos(work: Path, count: int) -> list[bytes]:
    folder = work / "in"
    folder.mkdir()
    _scrub_bench().make_batch(folder, count)
    return [p.read_bytes() for p in sorted(folder.iterdir())]


def durable_write(folder: Path, name: str, data: bytes) -> None:
    """Temp file, fsync, rename into place, fsync the folder: a crash-safe write."""
    temp = folder / f".tmp-{secrets.token_hex(8)}"
    fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, folder / name)
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def encrypt(data: bytes) -> bytes:
    key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, data, b"bench")


def timed(items: list[bytes], work: Callable[[int, bytes], object], repeat: int = 1) -> float:
    """Median seconds for ``work`` over every item, one after another, of ``repeat`` runs
    (each after a flush of writeback, so earlier writes do not land in its timing)."""
    runs = []
    for _ in range(repeat):
        os.sync()
        start = time.perf_counter()
        for i, item in enumerate(items):
            work(i, item)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


class Row:
    def __init__(self, what: str, seconds: float | None, count: int, nbytes: int, note: str = ""):
        self.what, self.seconds, self.count = what, seconds, count
        self.nbytes, self.note = nbytes, note

    @property
    def ms(self) -> float:
        assert self.seconds is not None
        return self.seconds * 1000 / self.count


def open_vault(data_dir: Path, database_url: str | None) -> tuple[Vault, str, Actor]:
    """A fresh vault, a patient in it, and a clinician who stores and reads."""
    vault = bootstrap(load_settings(data_dir=data_dir, database_url=database_url), create=True)
    system = Actor.system("bench")
    patient = create_user(
        vault,
        role=Role.PATIENT,
        email="patient@bench.example",
        password=secrets.token_hex(12),
        actor=system,
    )
    clinician = create_user(
        vault,
        role=Role.CLINICIAN,
        email="clinician@bench.example",
        password=secrets.token_hex(12),
        actor=system,
    )
    assert patient.patient_id
    # The clinician stores and reads as the patient's care team (without this, every store
    # is refused: "bench has no care relationship").
    start_care(vault, patient_id=patient.patient_id, member_id=clinician.user_id, actor=system)
    return vault, patient.patient_id, Actor(clinician.user_id, Role.CLINICIAN, "bench")


def bench_vault(
    label: str, data_dir: Path, database_url: str | None, photos: list[bytes], total: int
) -> list[Row]:
    vault, patient_id, actor = open_vault(data_dir, database_url)
    try:
        # One untimed store and read first: imports, connection pool, statement caches.
        warm = store_photo(vault, patient_id=patient_id, data=photos[0], actor=actor, site="arm")
        read_photo(vault, photo_id=warm.id, actor=actor, purpose="care")
        ids: list[str] = []

        def store(_i: int, data: bytes) -> None:
            ids.append(
                store_photo(vault, patient_id=patient_id, data=data, actor=actor, site="arm").id
            )

        store_s = timed(photos, store)
        read_bytes = 0

        def read(i: int, _data: bytes) -> None:
            nonlocal read_bytes
            read_bytes += len(read_photo(vault, photo_id=ids[i], actor=actor, purpose="care").data)

        read_s = timed(photos, read)
    finally:
        vault.close()
    n = len(photos)
    return [
        Row(f"store_photo ({label})", store_s, n, total),
        Row(f"read_photo ({label})", read_s, n, read_bytes),
    ]


def pg_schema(base: str) -> tuple[str | None, str]:
    """(URL of a fresh schema, schema name) or (None, why not)."""
    admin_url = base.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = f"bench_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, connect_args={"connect_timeout": 5})
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        return None, f"PostgreSQL at {base} is unreachable ({str(exc.orig).splitlines()[0]})"
    finally:
        admin.dispose()
    sep = "&" if "?" in admin_url else "?"
    return f"{admin_url}{sep}options=-csearch_path%3D{schema}", schema


def drop_schema(base: str, schema: str) -> None:
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=50)
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="runs of the floor and its parts; the median counts (default: %(default)s)."
        " The thumbnail and vault rows run once: they take seconds per batch",
    )
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SKINVAULT_TEST_PG") or DEFAULT_PG,
        help="PostgreSQL server (default: $SKINVAULT_TEST_PG or %(default)s); a fresh schema"
        " is created in it and dropped afterwards",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where the temp data dirs go (default: /tmp on the real disk, not /dev/shm:"
        " fsync is part of what is measured)",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run (seconds) for CI")
    args = parser.parse_args()
    if args.quick:
        args.photos, args.repeat = 2, 1
        args.no_pg = args.no_pg or not os.environ.get("SKINVAULT_TEST_PG")
    if args.photos < 1 or args.repeat < 1:
        parser.error("--photos and --repeat must be at least 1")

    with tempfile.TemporaryDirectory(prefix="skinvault-bench-vault-", dir=args.dir) as tmp:
        work = Path(tmp)
        print(
            f"making {args.photos} JPEGs of 12 MP with full EXIF/GPS/thumbnail/XMP …",
            file=sys.stderr,
        )
        photos = load_photos(work, args.photos)
        total = sum(map(len, photos))
        n = len(photos)
        print(f"batch: {n} photos, {total / 1e6:.0f} MB", file=sys.stderr)

        # Warm-up: first-use imports (container modules, Pillow plugins, OpenSSL).
        scrub(photos[0])
        thumbnail(scrub(photos[0])[0], 320)
        encrypt(b"warm")

        r = args.repeat
        floor_dir = work / "floor"
        floor_dir.mkdir()
        rows: list[Row] = []
        print("  floor …", file=sys.stderr)
        floor_s = timed(
            photos,
            lambda i, d: durable_write(floor_dir, f"p{i:05}", encrypt(scrub(d)[0])),
            r,
        )
        floor = Row("floor: scrub + AES-GCM + write", floor_s, n, total)
        rows.append(floor)

        scrubbed = [scrub(d)[0] for d in photos]
        sealed = [encrypt(d) for d in scrubbed]
        rows.append(
            Row(
                "  scrub only",
                timed(photos, lambda _i, d: scrub(d), r),
                n,
                total,
            )
        )
        rows.append(
            Row(
                "  AES-256-GCM only",
                timed(scrubbed, lambda _i, d: encrypt(d), r),
                n,
                sum(map(len, scrubbed)),
            )
        )
        write_dir = work / "write"
        write_dir.mkdir()
        rows.append(
            Row(
                "  write + fsync only",
                timed(sealed, lambda i, d: durable_write(write_dir, f"p{i:05}", d), r),
                n,
                sum(map(len, sealed)),
            )
        )
        thumb = Row(
            "thumbnail only (not in floor)",
            timed(scrubbed, lambda _i, d: thumbnail(d, 320)),
            n,
            sum(map(len, scrubbed)),
        )
        rows.append(thumb)

        print("  SQLite …", file=sys.stderr)
        rows += bench_vault("SQLite", work / "sqlite", None, photos, total)

        pg_reason = "skipped (--no-pg)"
        if not args.no_pg:
            url, schema = pg_schema(args.pg_url)
            if url is None:
                pg_reason = f"skipped: {schema}"
            else:
                print("  PostgreSQL …", file=sys.stderr)
                try:
                    rows += bench_vault("PostgreSQL", work / "pg", url, photos, total)
                finally:
                    drop_schema(args.pg_url, schema)
        if not any("PostgreSQL" in r.what for r in rows):
            rows.append(Row("store/read (PostgreSQL)", None, n, 0, pg_reason))

    header = f"{'what':<32}{'photos/s':>9}{'MB/s':>8}{'ms/photo':>10}{'x floor':>9}"
    print(
        f"\n{n} JPEGs, 12 MP, {total / 1e6:.0f} MB ({total / n / 1e6:.1f} MB each),"
        f" data in {args.dir}, {os.cpu_count()} cores, one photo at a time;"
        f" floor rows: median of {args.repeat} runs\n"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        if r.seconds is None:
            print(f"{r.what:<32}{r.note}")
            continue
        print(
            f"{r.what:<32}{n / r.seconds:>9.1f}{r.nbytes / 1e6 / r.seconds:>8.1f}"
            f"{r.ms:>10.1f}{r.ms / floor.ms:>8.2f}x"
        )
    print()
    for r in rows:
        if r.seconds is None or not r.what.startswith("store_photo"):
            continue
        ratio = r.ms / floor.ms
        rest = (r.ms - thumb.ms) / floor.ms
        verdict = "met" if ratio <= GOAL else "NOT met"
        print(
            f"{r.what}: store / floor = {ratio:.2f}x — goal ≤ {GOAL}x {verdict};"
            f" thumbnail is {thumb.ms:.0f} of {r.ms:.0f} ms/photo"
            f" ({100 * thumb.ms / r.ms:.0f}% of store time); without it {rest:.2f}x"
        )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
