"""``serve --workers N``, the request log and ``/metrics`` (issue 15).

Two worker processes on one database answer as one service: uploads through both are
all stored, a lockout earned in one holds in the other, the audit chain verifies and
``/metrics`` adds up the workers. The request log names route templates only.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from skinvault.actors import Actor, Role
from skinvault.bootstrap import bootstrap
from skinvault.config import load_settings
from skinvault.services import admin, api_tokens, photo_store, records, sharing
from skinvault.web.app import create_app
from skinvault.web.observe import Metrics
from tests import factories
from tests.integration.conftest import BACKENDS, drop_schema, fresh_database_url
from tests.security.conftest import start_server

OPERATOR = Actor.system("test")
PASSWORD = "a long enough password"
UPLOADS = 24


def _requests_of(metrics: str, method: str, route: str) -> int:
    pattern = rf'skinvault_http_requests_total{{method="{method}",route="{re.escape(route)}",status="(\d+)"}} (\d+)'  # noqa: E501
    return sum(int(n) for _, n in re.findall(pattern, metrics))


def _children(pid: int) -> list[int]:
    """Worker processes of ``pid`` (from /proc: children started by multiprocessing's spawn,
    which is how uvicorn starts its workers; its resource tracker does not count)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue  # it exited meanwhile
        if fields.get("PPid", "").strip() != str(pid):
            continue
        try:
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(int(status.parent.name))
    return found


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_answer_as_one_service(backend: str, tmp_path: Path) -> None:
    url, schema = fresh_database_url(backend, tmp_path)
    data = tmp_path / "v"
    vault = bootstrap(load_settings(data_dir=data, database_url=url), create=True)
    server = start_server(data, url, {"SKINVAULT_WORKERS": "2"})
    try:
        assert len(_children(server.proc.pid)) >= 2, "serve --workers 2 started fewer than two"
        made = admin.create_user(vault, role=Role.PATIENT, email="ann@example.org",
                                 password=PASSWORD, actor=OPERATOR, name="Ann")  # fmt: skip
        actor = Actor(made.user_id, Role.PATIENT, "Ann")
        bearer = {"Authorization": f"Bearer {api_tokens.issue_api_token(vault, actor=actor).token}"}
        upload = factories.jpeg()

        def store(i: int) -> int:
            with httpx.Client(base_url=server.base, timeout=60) as http:  # a new connection each
                return http.post(
                    f"/api/v1/patients/{made.patient_id}/photos",
                    headers=bearer,
                    files={"file": (f"p{i}.jpg", upload, "image/jpeg")},
                ).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(store, range(UPLOADS)))
        assert codes == [201] * UPLOADS
        assert len(records.list_photos(vault, patient_id=made.patient_id, actor=actor)) == UPLOADS

        # Five wrong passwords lock the account for this address, whichever worker answers.
        answers = []
        for _ in range(7):
            with httpx.Client(base_url=server.base, timeout=30) as http:
                wrong = {"email": "ann@example.org", "password": "wrong password here"}
                answers.append(http.post("/api/v1/auth/token", json=wrong).status_code)
        assert answers[:5] == [401] * 5 and answers[5:] == [429, 429], answers

        verify = subprocess.run(
            [sys.executable, "-m", "skinvault", "audit", "verify", "--data-dir", str(data),
             "--database-url", url], capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert verify.returncode == 0, verify.stdout + verify.stderr

        deadline = time.monotonic() + 15  # each worker shares its counts every 5 s
        route = "/api/v1/patients/{patient_id}/photos"
        while True:
            text = httpx.get(server.base + "/metrics", timeout=10).text
            if _requests_of(text, "POST", route) == UPLOADS:
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.5)
        assert "skinvault_http_request_duration_seconds_bucket" in text
        assert made.patient_id not in text  # route templates, never ids
    finally:
        server.stop()
        vault.close()
        if schema:
            drop_schema(schema)


def test_the_request_log_names_route_templates_never_tokens_ids_or_queries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(data_dir=tmp_path / "v")
    app = create_app(settings)
    vault = app.state.vault
    made = admin.create_user(vault, role=Role.PATIENT, email="ann@example.org",
                             password=PASSWORD, actor=OPERATOR, name="Ann")  # fmt: skip
    actor = Actor(made.user_id, Role.PATIENT, "Ann")
    token = api_tokens.issue_api_token(vault, actor=actor).token
    stored = photo_store.store_photo(vault, patient_id=made.patient_id or "", data=factories.jpeg(),
                                actor=actor)  # fmt: skip
    link = sharing.create_share_link(vault, photo_id=stored.id, actor=actor,
                                     recipient="gp@surgery.example", expires_in=timedelta(days=1),
                                     single_use=False, password=None)  # fmt: skip
    caplog.set_level(logging.INFO, logger="skinvault.requests")
    with TestClient(app) as http:
        assert http.get(f"/s/{link.token}/content?note=Jane+Patient").status_code == 200
        got = http.get(
            f"/api/v1/photos/{stored.id}/content",
            params={"purpose": "care", "access_token": "query-secret"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert got.status_code == 200
        assert http.get("/no/such/page/with-a-secret").status_code == 404
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "skinvault.requests"]
    assert [(x["method"], x["route"], x["status"]) for x in lines] == [
        ("GET", "/s/{token}/content", 200),
        ("GET", "/api/v1/photos/{photo_id}/content", 200),
        ("GET", "(unmatched)", 404),
    ]
    assert lines[1]["actor"] == made.user_id and "actor" not in lines[0]
    everything = caplog.text
    for secret in (link.token, token, "query-secret", "Jane", stored.id, "with-a-secret"):
        assert secret not in everything
    assert all(x["ms"] >= 0 for x in lines)
    app.state.vault.close()


def test_metrics_need_the_token_or_this_machine(tmp_path: Path) -> None:
    open_app = create_app(load_settings(data_dir=tmp_path / "a"))
    with TestClient(open_app) as http:  # the test client is not on loopback
        refused = http.get("/metrics")
        assert refused.status_code == 403
        assert "skinvault_" not in refused.text
    open_app.state.vault.close()
    guarded = create_app(load_settings(data_dir=tmp_path / "b", metrics_token="s3cret-scrape"))
    with TestClient(guarded) as http:
        assert http.get("/metrics").status_code == 403
        wrong = {"Authorization": "Bearer nope"}
        assert http.get("/metrics", headers=wrong).status_code == 403
        good = http.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert good.status_code == 200
        assert good.headers["content-type"].startswith("text/plain")
        assert 'route="/metrics"' in good.text  # the refused scrapes above were counted
        assert "skinvault_audit_events_total" in good.text
    guarded.state.vault.close()


PATIENCE = 10.0  # seconds a test waits for what should take milliseconds (2 loaded cores)


class _GatedMetrics(Metrics):
    """Metrics whose snapshot writes are counted and, while ``gate`` is shut, held."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.saves = 0
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self._saved = threading.Condition()

    def save(self) -> None:
        self.entered.set()
        self.gate.wait(PATIENCE)
        super().save()
        with self._saved:
            self.saves += 1
            self._saved.notify_all()

    def wait_for_saves(self, n: int) -> bool:
        with self._saved:
            return self._saved.wait_for(lambda: self.saves >= n, PATIENCE)


def _metrics_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "skinvault-metrics" and t.is_alive()}


def test_metrics_stop_waits_for_the_snapshot_in_hand_and_start_after_stop_runs_again(
    tmp_path: Path,
) -> None:
    before = _metrics_threads()  # an app of another test may still be shutting down
    metrics = _GatedMetrics(tmp_path / "metrics")
    try:
        metrics.start(every=0.01)
        assert metrics.wait_for_saves(1), "no snapshot written after start"
        mine = _metrics_threads() - before
        assert len(mine) == 1
        metrics.gate.clear()
        metrics.entered.clear()
        assert metrics.entered.wait(PATIENCE), "no snapshot begun"
        stopper = threading.Thread(target=metrics.stop)
        stopper.start()
        stopper.join(0.2)
        assert stopper.is_alive(), "stop returned while a snapshot was being written"
        metrics.gate.set()
        stopper.join(PATIENCE)
        assert not stopper.is_alive()
        assert not any(t.is_alive() for t in mine)  # the thread ended before stop returned
        assert not list((tmp_path / "metrics").glob("metrics-*.json"))  # no late rewrite

        done = metrics.saves
        metrics.start(every=0.01)
        assert metrics.wait_for_saves(done + 2), "no snapshots after the second start"
        assert len(_metrics_threads() - before) == 1
        assert list((tmp_path / "metrics").glob("metrics-*.json"))
    finally:
        metrics.gate.set()
        metrics.stop()
    assert not _metrics_threads() - before
