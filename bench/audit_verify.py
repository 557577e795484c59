"""How fast the audit log verifies, against raw SHA-256 over the same bytes.

    .venv/bin/python bench/audit_verify.py                    # 1,000,000 events (default)
    .venv/bin/python bench/audit_verify.py --events 200000 --pg

Builds a valid chain of N events in memory (computed in Python, bulk-inserted
with executemany into a fresh SQLite database in a temp dir; with --pg also
into a fresh schema on SKINVAULT_TEST_PG), then times:

- verify_log on each database (streaming, batched reads);
- the incremental verify (``audit verify --incremental``): verify_log from a signed
  head 1,000 events before the end, as after an earlier verify;
- verify_rows on the rows held in memory (no database);
- verify on (Event, prev_hash, hash) triples (formats each datetime in Python);
- raw hashlib: sha256(prev hex || SEP || canonical).hexdigest() over the
  precomputed byte strings (exactly the bytes every verifier hashes) — the
  floor any verifier pays for hashing.

"% of raw" is events/s divided by raw events/s; MB/s counts the hashed bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, text

from skinvault.audit.chain import (
    GENESIS,
    SEP,
    Checkpoint,
    Event,
    canonical,
    flat_row,
    sign_checkpoint,
    verify,
    verify_rows,
)
from skinvault.audit.log import verify_log
from skinvault.db.engine import make_engine, migrate
from skinvault.db.models import AuditEvent

ACTIONS = ["photo:view", "photo:store", "photo:thumbnail", "photo:share"]


def build(n: int) -> tuple[list[Event], list[str], list[str], list[bytes]]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    events, prevs, hashes, blobs = [], [], [], []
    prev = GENESIS
    for seq in range(1, n + 1):
        event = Event(
            seq=seq,
            at=t0 + timedelta(seconds=seq, microseconds=seq % 999_983),
            actor=f"user:{seq % 97:032x} Dr Ana Silva",
            action=ACTIONS[seq % 4],
            object=f"photo:{seq:032x}",
            purpose="care" if seq % 5 else None,
            outcome="allowed" if seq % 7 else "denied",
            reason=None if seq % 7 else "no consent for this purpose",
        )
        blob = (prev + SEP).encode() + canonical(event)  # exactly what link() hashes
        h = hashlib.sha256(blob).hexdigest()
        events.append(event)
        prevs.append(prev)
        hashes.append(h)
        blobs.append(blob)
        prev = h
    return events, prevs, hashes, blobs


def insert_all(url: str, events: list[Event], prevs: list[str], hashes: list[str]) -> None:
    engine = make_engine(url)
    migrate(engine)
    chunk = 50_000
    with engine.begin() as conn:
        for start in range(0, len(events), chunk):
            conn.execute(
                insert(AuditEvent),
                [
                    {
                        "seq": e.seq,
                        "at": e.at,
                        "actor": e.actor,
                        "action": e.action,
                        "object": e.object,
                        "purpose": e.purpose,
                        "outcome": e.outcome,
                        "reason": e.reason,
                        "prev_hash": p,
                        "hash": h,
                    }
                    for e, p, h in zip(
                        events[start : start + chunk],
                        prevs[start : start + chunk],
                        hashes[start : start + chunk],
                        strict=True,
                    )
                ],
            )
    engine.dispose()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def raw_sha256(blobs: list[bytes]) -> None:
    sha = hashlib.sha256
    for blob in blobs:
        sha(blob).hexdigest()


def db_verify(url: str, start: Checkpoint | None = None) -> Callable[[], object]:
    def run() -> object:
        engine = make_engine(url)
        with engine.connect() as conn:
            report = verify_log(conn, start=start)
        engine.dispose()
        assert report.count == report.head_seq - (start.seq if start else 0)
        return report

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--pg", action="store_true", help="also run on SKINVAULT_TEST_PG")
    parser.add_argument("--quick", action="store_true", help="a tiny run (seconds) for CI")
    args = parser.parse_args()
    n = 2_000 if args.quick else args.events

    print(f"building {n:,} events …", file=sys.stderr)
    events, prevs, hashes, blobs = build(n)
    mb = sum(map(len, blobs)) / 1e6
    rows = [flat_row(e, p, h) for e, p, h in zip(events, prevs, hashes, strict=True)]
    triples = list(zip(events, prevs, hashes, strict=True))

    new = min(1_000, n // 2)  # events since the last verify, for the incremental row
    start = sign_checkpoint(n - new, hashes[n - new - 1], events[n - new - 1].at,
                            secrets.token_bytes(32))  # fmt: skip
    results: list[tuple[str, int, float]] = []
    results.append(("raw hashlib sha256", n, timed(lambda: raw_sha256(blobs))))
    results.append(("verify_rows (memory)", n, timed(lambda: verify_rows(rows))))
    results.append(("verify Event triples (memory)", n, timed(lambda: verify(triples))))

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        print("inserting into SQLite …", file=sys.stderr)
        insert_all(url, events, prevs, hashes)
        results.append(("verify_log (SQLite)", n, timed(db_verify(url))))
        results.append(("incremental (SQLite)", new, timed(db_verify(url, start))))

        if args.pg:
            base = os.environ.get("SKINVAULT_TEST_PG", "")
            if not base:
                parser.error("--pg needs SKINVAULT_TEST_PG=postgresql://…")
            admin_url = base.replace("postgresql://", "postgresql+psycopg://", 1)
            schema = f"bench_{secrets.token_hex(4)}"
            admin = create_engine(admin_url)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            try:
                sep = "&" if "?" in admin_url else "?"
                pg_url = f"{admin_url}{sep}options=-csearch_path%3D{schema}"
                print("inserting into PostgreSQL …", file=sys.stderr)
                insert_all(pg_url, events, prevs, hashes)
                results.append(("verify_log (PostgreSQL)", n, timed(db_verify(pg_url))))
                results.append(("incremental (PostgreSQL)", new,
                                timed(db_verify(pg_url, start))))  # fmt: skip
            finally:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()

    raw_rate = n / results[0][2]
    print(f"{'what':32} {'events':>10} {'seconds':>8} {'events/s':>11} {'MB/s':>7} {'% raw':>6}")
    for name, count, seconds in results:
        rate = count / seconds
        print(
            f"{name:32} {count:>10,} {seconds:>8.3f} {rate:>11,.0f}"
            f" {mb * count / n / seconds:>7.1f} {100 * rate / raw_rate:>5.0f}%"
        )
    print(f"the incremental verify of {new:,} new events in a log of {n:,}: "
          f"{results[-1][2] * 1000:.1f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
