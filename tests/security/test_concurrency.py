"""Finding 4: a busy database never answers 5xx.

200 parallel opens of a password link once answered 500 "database is locked": the Argon2
check ran inside the SQLite write transaction, so every open queued behind the others'
hashing until the busy timeout ran out. Here 50 opens of a password link and 20 uploads
run at once against a live ``skinvault serve`` (SQLite and PostgreSQL): every answer is
a success, none is a 5xx, and every open is in the audit log.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx2 as httpx

from skinvault.actors import Role
from skinvault.services import api_tokens, photo_store, sharing
from tests import factories
from tests.security.conftest import Live

OPENS = 50
UPLOADS = 20
LINK_PASSWORD = "blue heron at dawn"


def test_fifty_opens_and_twenty_uploads_at_once_never_answer_5xx(live: Live) -> None:
    patient = live.person(Role.PATIENT)
    assert patient.patient_id
    stored = photo_store.store_photo(
        live.vault, patient_id=patient.patient_id, data=factories.jpeg(), actor=patient.actor
    )
    link = sharing.create_share_link(
        live.vault, photo_id=stored.id, actor=patient.actor, recipient="gp@surgery.example",
        expires_in=timedelta(days=1), single_use=False, password=LINK_PASSWORD,
    )  # fmt: skip
    token = api_tokens.issue_api_token(live.vault, actor=patient.actor).token
    upload = factories.jpeg()

    def open_link(_: int) -> int:
        with httpx.Client(base_url=live.base, timeout=120) as client:
            got = client.get(f"/s/{link.token}/content", headers={"x-link-password": LINK_PASSWORD})
            return got.status_code

    def store(i: int) -> int:
        with httpx.Client(base_url=live.base, timeout=120) as client:
            got = client.post(
                f"/api/v1/patients/{patient.patient_id}/photos",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": (f"p{i}.jpg", upload, "image/jpeg")},
            )
            return got.status_code

    with ThreadPoolExecutor(max_workers=OPENS + UPLOADS) as pool:
        opened = [pool.submit(open_link, i) for i in range(OPENS)]
        uploaded = [pool.submit(store, i) for i in range(UPLOADS)]
        open_codes = [f.result() for f in opened]
        upload_codes = [f.result() for f in uploaded]

    assert [c for c in open_codes + upload_codes if c >= 500] == []
    assert open_codes == [200] * OPENS
    assert upload_codes == [201] * UPLOADS
    allowed = [e for e in live.vault_events("share-link:open") if e.outcome == "allowed"]
    assert len(allowed) == OPENS


def _hold_check(live: Live, seconds: float) -> list[str]:
    """What the database shows while the server checks a slow link password for ``seconds``:
    on SQLite, whether another writer had to wait; on PostgreSQL, the sessions left open
    inside a transaction (each holds one of the pool's few connections: enough of them and
    the next request waits for the pool until it gives up with a 500)."""
    if live.database_url.startswith("sqlite"):
        import sqlite3

        path = live.database_url.removeprefix("sqlite:///")
        connection = sqlite3.connect(path, timeout=seconds / 4, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return []
        except sqlite3.OperationalError as exc:
            return [f"a writer waited {seconds / 4:.1f}s and gave up: {exc}"]
        finally:
            connection.close()
    from sqlalchemy import create_engine, text

    engine = create_engine(live.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT state, query FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                    " AND datname = current_database() AND state LIKE 'idle in transaction%'"
                )
            ).all()
            return [f"{state}: {query}" for state, query in rows]
    finally:
        engine.dispose()


def test_while_a_link_password_is_checked_the_database_is_not_held(live: Live) -> None:
    """The slow hash runs with no transaction open: another writer goes ahead meanwhile."""
    import threading
    import time

    from argon2 import PasswordHasher
    from sqlalchemy import update

    from skinvault.db.models import ShareLink

    patient = live.person(Role.PATIENT)
    assert patient.patient_id
    stored = photo_store.store_photo(
        live.vault, patient_id=patient.patient_id, data=factories.jpeg(), actor=patient.actor
    )
    link = sharing.create_share_link(
        live.vault, photo_id=stored.id, actor=patient.actor, recipient="gp@surgery.example",
        expires_in=timedelta(days=1), single_use=False, password=LINK_PASSWORD,
    )  # fmt: skip
    # The same password under a hash about twenty times as costly: a check takes seconds.
    slow = PasswordHasher(time_cost=60).hash(LINK_PASSWORD)
    started = time.monotonic()
    PasswordHasher().verify(slow, LINK_PASSWORD)
    cost = time.monotonic() - started
    with live.vault.sessions.begin() as session:
        session.execute(update(ShareLink).where(ShareLink.id == link.id).values(password_hash=slow))

    codes: list[int] = []

    def open_link() -> None:
        with httpx.Client(base_url=live.base, timeout=120) as client:
            got = client.get(f"/s/{link.token}/content", headers={"x-link-password": LINK_PASSWORD})
            codes.append(got.status_code)

    opener = threading.Thread(target=open_link)
    opener.start()
    time.sleep(min(0.5, cost / 4))  # the server is now inside the hash
    held = _hold_check(live, cost)
    opener.join()
    assert codes == [200]
    assert held == []
