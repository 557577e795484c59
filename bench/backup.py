"""How long ``admin backup`` and ``admin restore`` take at clinic size, beside the tools an
operator would otherwise script, in one run.

    .venv/bin/python bench/backup.py                         # 1,000,000 audit events, 40 photos
    .venv/bin/python bench/backup.py --pg postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/backup.py --quick                 # 2,000 events, 2 photos (CI)

Builds a data dir the way a clinic's grows: N audit events (bench/audit_verify.py's valid
chain, bulk-inserted), then a patient and P 12 MP phone photos (bench/scrub.py's batch,
~3.8 MB each) stored with ``store_photo`` (scrubbed, sealed, audited, chaining on from the
bulk events). With ``--pg URL`` the same again in a fresh schema of that PostgreSQL.

Then times, each as its own process (wall time and the process tree's peak RSS, from
``wait4``):

- ``skinvault admin backup OUT`` (the CLI an operator runs: snapshot, stream the rows
  gzipped and sealed, tar the blobs, manifest with SHA-256s, fsync) and ``skinvault admin
  restore OUT`` into a fresh data dir (SQLite) or schema (PostgreSQL), keys copied first;
- peers over the same database and blob folder: ``sqlite3 DB .backup`` then ``gzip -6``
  and ``openssl enc -aes-256-ctr`` (``openssl enc`` has no GCM), tarred with the blob
  folder; the same in Python (``sqlite3.Connection.backup``, ``gzip``, AES-256-GCM from
  ``cryptography``, streaming); ``pg_dump | gzip | openssl`` and back through ``psql``.
  Their restores decrypt, gunzip and write the file back (SQLite) or replay the SQL (psql).

The peers copy the database file or replay a dump; skinvault writes JSON rows that load
into either database (that is how SQLite moves to PostgreSQL), so "x peer" is skinvault's
time divided by the peer's.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PASS = "bench-only-passphrase"  # the peers' key; skinvault uses its own key files
PASSWORD = "a long enough password"  # a throwaway account in a temp dir


def _module(name: str) -> ModuleType:
    """bench/<name>.py as a module (bench/ is not a package), loaded once."""
    key = f"_bench_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, HERE / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


#: Runs its argv and reports the child's peak RSS. A child forked straight from this
#: (large) process would inherit its high-water mark in ``ru_maxrss``; one forked from
#: this small launcher counts only itself and its own children.
LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(proc.pid, 0)
print(f"\\nPEAK-RSS-KIB {usage.ru_maxrss}", file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measured(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``argv``; (seconds, peak RSS in MiB of it and its children). Fails loudly."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *argv], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=env or os.environ.copy(), cwd=ROOT,
                          check=False)  # fmt: skip
    seconds = time.perf_counter() - started
    err = done.stderr.decode(errors="replace")
    if done.returncode != 0:
        sys.exit(f"{shlex.join(argv)[:200]} failed ({done.returncode}):\n{err[-2000:]}")
    return seconds, int(err.rsplit("PEAK-RSS-KIB ", 1)[1]) / 1024  # KiB on Linux


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-ec", script]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}


def skinvault(*args: str) -> list[str]:
    return [sys.executable, "-m", "skinvault", *args]


def fill(data_dir: Path, url: str, events: int, photos: list[bytes]) -> None:
    """N chained audit events (bulk), then a patient and the photos through store_photo."""
    from skinvault.actors import Actor, Role
    from skinvault.bootstrap import bootstrap
    from skinvault.config import load_settings
    from skinvault.services import admin, photo_store

    audit = _module("audit_verify")
    built, prevs, hashes, _ = audit.build(events)
    audit.insert_all(url, built, prevs, hashes)
    del built, prevs, hashes
    vault = bootstrap(load_settings(data_dir=data_dir, database_url=url), create=True)
    try:
        made = admin.create_user(
            vault, role=Role.PATIENT, email="bench.backup@example.org",
            password=PASSWORD, actor=Actor.system("bench"), name="Bench Patient",
        )  # fmt: skip
        assert made.patient_id
        actor = Actor(made.user_id, Role.PATIENT, "Bench Patient")
        for data in photos:
            photo_store.store_photo(vault, patient_id=made.patient_id, data=data, actor=actor)
    finally:
        vault.close()


PY_PEER_BACKUP = """
import gzip, os, shutil, sqlite3, sys, tarfile
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
db, blobs, out, scratch = sys.argv[1:5]
snap = os.path.join(scratch, "snap.db")
src, dst = sqlite3.connect(db), sqlite3.connect(snap)
src.backup(dst); dst.close(); src.close()
key, nonce = os.urandom(32), os.urandom(12)
enc = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
sealed = os.path.join(scratch, "db.gz.sealed")
class Sink:
    def __init__(self, f): self.f = f
    def write(self, b): self.f.write(enc.update(bytes(b))); return len(b)
    def flush(self): pass
with open(sealed, "wb") as f:
    f.write(nonce)
    with open(snap, "rb") as s, gzip.GzipFile(fileobj=Sink(f), mode="wb", compresslevel=6) as z:
        shutil.copyfileobj(s, z, 1 << 20)
    enc.finalize(); f.write(enc.tag)
os.unlink(snap)
with tarfile.open(out, "w") as tar:
    tar.add(sealed, "db.gz.sealed"); tar.add(blobs, "blobs")
with open(out + ".key", "wb") as k: k.write(key)
os.unlink(sealed)
"""

PY_PEER_RESTORE = """
import gzip, io, os, shutil, sys, tarfile
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
archive, db, blobs = sys.argv[1:4]
key = open(archive + ".key", "rb").read()
with tarfile.open(archive, "r:") as tar:
    member = tar.extractfile("db.gz.sealed")
    size = tar.getmember("db.gz.sealed").size
    nonce = member.read(12)
    body = size - 28
    dec = Cipher(algorithms.AES(key), modes.GCM(nonce)).decryptor()
    tmp = db + ".gz"
    with open(tmp, "wb") as out:
        while body > 0:
            piece = member.read(min(body, 1 << 20)); body -= len(piece)
            out.write(dec.update(piece))
        dec.finalize_with_tag(member.read(16))
    with gzip.open(tmp, "rb") as z, open(db, "wb") as out:
        shutil.copyfileobj(z, out, 1 << 20)
    os.unlink(tmp)
    os.makedirs(blobs)
    for info in tar:
        if info.name.startswith("blobs/") and info.isfile():
            tar.extract(info, os.path.dirname(blobs), filter="data")
"""


def q(path: Path | str) -> str:
    return shlex.quote(str(path))


def sqlite_rows(work: Path, data: Path) -> list[tuple[str, float, float, int]]:
    """(what, seconds, peak MiB, archive bytes) for skinvault and the peers on SQLite."""
    db, blobs = data / "skinvault.db", data / "blobs"
    assert db.is_file() and blobs.is_dir(), sorted(p.name for p in data.iterdir())
    url = f"sqlite:///{db}"
    rows: list[tuple[str, float, float, int]] = []
    env = _env()

    archive = work / "sv.svbackup"
    s, rss = measured(skinvault("admin", "backup", str(archive), "--data-dir", str(data),
                                "--database-url", url), env)  # fmt: skip
    rows.append(("skinvault admin backup", s, rss, archive.stat().st_size))
    target = work / "restored"
    target.mkdir()
    shutil.copytree(data / "keys", target / "keys")
    s, rss = measured(skinvault("admin", "restore", str(archive), "--data-dir", str(target),
                                "--database-url", f"sqlite:///{target / 'skinvault.db'}"),
                      env)  # fmt: skip
    rows.append(("skinvault admin restore", s, rss, archive.stat().st_size))

    scratch = work / "peer"
    scratch.mkdir()
    out = work / "peer.tar"
    s, rss = measured(sh(
        f"sqlite3 {q(db)} '.backup {scratch / 'snap.db'}'\n"
        f"gzip -6 -c {q(scratch / 'snap.db')} | openssl enc -aes-256-ctr -pbkdf2 -pass"
        f" pass:{PASS} -out {q(scratch / 'db.gz.enc')}\n"
        f"rm {q(scratch / 'snap.db')}\n"
        f"tar cf {q(out)} -C {q(scratch)} db.gz.enc -C {q(data)} blobs\n"
        f"rm {q(scratch / 'db.gz.enc')}"
    ))  # fmt: skip
    rows.append(("sqlite3 .backup | gzip | openssl + tar", s, rss, out.stat().st_size))
    back = work / "peer-back"
    back.mkdir()
    s, rss = measured(sh(
        f"tar xf {q(out)} -C {q(back)}\n"
        f"openssl enc -d -aes-256-ctr -pbkdf2 -pass pass:{PASS} -in {q(back / 'db.gz.enc')}"
        f" | gunzip > {q(back / 'skinvault.db')}\n"
        f"rm {q(back / 'db.gz.enc')}"
    ))  # fmt: skip
    rows.append(("tar x + openssl -d | gunzip", s, rss, out.stat().st_size))

    py_out = work / "py.tar"
    py_scratch = work / "py-scratch"
    py_scratch.mkdir()
    s, rss = measured([sys.executable, "-c", PY_PEER_BACKUP, str(db), str(blobs), str(py_out),
                       str(py_scratch)])  # fmt: skip
    rows.append(("Python backup() + gzip + AES-GCM + tar", s, rss, py_out.stat().st_size))
    py_back = work / "py-back"
    py_back.mkdir()
    s, rss = measured([sys.executable, "-c", PY_PEER_RESTORE, str(py_out),
                       str(py_back / "skinvault.db"), str(py_back / "blobs")])  # fmt: skip
    rows.append(("Python untar + AES-GCM + gunzip", s, rss, py_out.stat().st_size))
    with sqlite3.connect(py_back / "skinvault.db") as check:
        events = check.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    with sqlite3.connect(target / "skinvault.db") as check:
        assert check.execute("SELECT count(*) FROM audit_events").fetchone()[0] == events
    return rows


def pg_rows(work: Path, base: str, events: int, photos: list[bytes]
            ) -> list[tuple[str, float, float, int]]:  # fmt: skip
    from sqlalchemy import create_engine, text

    admin_url = base.replace("postgresql://", "postgresql+psycopg://", 1)
    schemas = [f"bench_{secrets.token_hex(4)}" for _ in range(3)]  # source, restore, psql
    admin = create_engine(admin_url)
    with admin.begin() as conn:
        for schema in schemas:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in admin_url else "?"
    url = [f"{admin_url}{sep}options=-csearch_path%3D{schema}" for schema in schemas]
    rows: list[tuple[str, float, float, int]] = []
    env = _env()
    try:
        data = work / "pg-data"
        print(f"filling PostgreSQL schema {schemas[0]} …", file=sys.stderr)
        fill(data, url[0], events, photos)
        archive = work / "pg.svbackup"
        s, rss = measured(skinvault("admin", "backup", str(archive), "--data-dir", str(data),
                                    "--database-url", url[0]), env)  # fmt: skip
        rows.append(("skinvault admin backup", s, rss, archive.stat().st_size))
        target = work / "pg-restored"
        target.mkdir()
        shutil.copytree(data / "keys", target / "keys")
        s, rss = measured(skinvault("admin", "restore", str(archive), "--data-dir", str(target),
                                    "--database-url", url[1]), env)  # fmt: skip
        rows.append(("skinvault admin restore", s, rss, archive.stat().st_size))

        dump = work / "pg.tar"
        scratch = work / "pg-peer"
        scratch.mkdir()
        s, rss = measured(sh(
            f"pg_dump --no-owner --schema={schemas[0]} {q(base)} | gzip -6 |"
            f" openssl enc -aes-256-ctr -pbkdf2 -pass pass:{PASS} -out {q(scratch / 'db.gz.enc')}\n"
            f"tar cf {q(dump)} -C {q(scratch)} db.gz.enc -C {q(data)} blobs\n"
            f"rm {q(scratch / 'db.gz.enc')}"
        ))  # fmt: skip
        rows.append(("pg_dump | gzip | openssl + tar", s, rss, dump.stat().st_size))
        back = work / "pg-peer-back"
        back.mkdir()
        # The dump names its schema; replay it renamed into the third (empty) schema.
        s, rss = measured(sh(
            f"tar xf {q(dump)} -C {q(back)}\n"
            f"openssl enc -d -aes-256-ctr -pbkdf2 -pass pass:{PASS} -in {q(back / 'db.gz.enc')}"
            f" | gunzip | sed -e 's/{schemas[0]}/{schemas[2]}/g'"
            f" -e '/^CREATE SCHEMA {schemas[2]};$/d'"
            f" | psql -q -v ON_ERROR_STOP=1 --single-transaction {q(base)}\n"
            f"rm {q(back / 'db.gz.enc')}"
        ))  # fmt: skip
        rows.append(("tar x + openssl -d | gunzip | psql", s, rss, dump.stat().st_size))
        with admin.connect() as conn:
            counts = [conn.execute(text(f'SELECT count(*) FROM "{s}".audit_events')).scalar()  # noqa: S608 (our own random names)
                      for s in schemas]  # fmt: skip
        assert counts[0] == counts[1] == counts[2], counts
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    return rows


def table(title: str, rows: list[tuple[str, float, float, int]]) -> None:
    print(f"\n{title}\n")
    print(f"{'what':42} {'seconds':>8} {'peak MiB':>9} {'archive MB':>11} {'x peer':>7}")
    # skinvault backup vs the first peer backup, restore vs the first peer restore
    peer = {0: rows[2][1], 1: rows[3][1]}
    for i, (name, seconds, rss, size) in enumerate(rows):
        ratio = f"{seconds / peer[i]:.1f}x" if i in peer else ""
        print(f"{name:42} {seconds:>8.2f} {rss:>9.0f} {size / 1e6:>11.1f} {ratio:>7}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="audit events")
    parser.add_argument("--photos", type=int, default=40, help="12 MP photos")
    parser.add_argument("--pg", metavar="URL", help="also on this PostgreSQL (fresh schemas)")
    parser.add_argument("--quick", action="store_true", help="2,000 events, 2 photos (CI)")
    args = parser.parse_args()
    events, count = (2_000, 2) if args.quick else (args.events, args.photos)
    for tool in ("sqlite3", "openssl", "gzip", "tar") + (("pg_dump", "psql") if args.pg else ()):
        if shutil.which(tool) is None:
            parser.error(f"needs {tool} on PATH (Debian: sqlite3, openssl, postgresql-client)")

    with tempfile.TemporaryDirectory(prefix="sv-bench-backup-") as scratch:
        work = Path(scratch)
        print(f"making {count} 12 MP photos …", file=sys.stderr)
        photos = _module("service").load_photos(work, count)
        data = work / "data"
        print(f"filling SQLite with {events:,} audit events and {count} photos …",
              file=sys.stderr)  # fmt: skip
        started = time.perf_counter()
        fill(data, f"sqlite:///{data / 'skinvault.db'}", events, photos)
        print(f"  filled in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        db_mb = (data / "skinvault.db").stat().st_size / 1e6
        blob_mb = sum(p.stat().st_size for p in (data / "blobs").rglob("*") if p.is_file()) / 1e6
        rows = sqlite_rows(work, data)
        table(f"SQLite: {events:,} audit events, {count} photos (database {db_mb:.0f} MB,"
              f" blobs {blob_mb:.0f} MB)", rows)  # fmt: skip
        if args.pg:
            pg = pg_rows(work, args.pg, events, photos)
            table(f"PostgreSQL: {events:,} audit events, {count} photos", pg)
    print("\nx peer: skinvault's seconds / the shell peer's (sqlite3 or pg_dump, gzip, openssl)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
