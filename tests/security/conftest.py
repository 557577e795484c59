"""A live ``skinvault serve`` for security tests, on SQLite and PostgreSQL.

The server is a real subprocess on a loopback port; the test process opens the same
database and data dir through :func:`skinvault.bootstrap.bootstrap` to arrange users,
care teams and photos through the services, then attacks the server over HTTP.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import pyotp
import pytest

from skinvault.actors import Actor, Role
from skinvault.audit.chain import Event
from skinvault.audit.log import tail
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.services import admin, care, totp
from tests.integration.conftest import BACKENDS, drop_schema, fresh_database_url

PASSWORD = "a long enough password"
SETUP = Actor.system("test-setup")


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One ``skinvault serve`` process."""

    base: str
    proc: subprocess.Popen[str]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def start_server(data: Path, database_url: str, env: dict[str, str] | None = None) -> Server:
    """Start ``skinvault serve``; a port taken in the meantime is retried with another."""
    for _attempt in range(5):
        port = _port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "skinvault", "serve", "--data-dir", str(data),
             "--database-url", database_url, "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            # The request log is off unless asked for: nobody reads this pipe while it runs.
            env={**os.environ, "SKINVAULT_REQUEST_LOG": "false", **(env or {})},
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    return Server(base, proc)
            except httpx.HTTPError:
                time.sleep(0.1)
        output = proc.stdout.read() if proc.poll() is not None and proc.stdout else ""
        Server(base, proc).stop()
        if "address already in use" not in output.lower():
            pytest.fail(f"skinvault serve did not start: {output}")
    pytest.fail("skinvault serve found no free port in 5 tries")


@dataclass
class Person:
    actor: Actor
    email: str
    patient_id: str | None = None
    totp_secret: str | None = None

    def code(self) -> str | None:
        return pyotp.TOTP(self.totp_secret).now() if self.totp_secret else None


@dataclass
class Live:
    """The running service and an in-process view of its vault."""

    server: Server
    vault: Vault
    data: Path
    database_url: str
    _people: int = field(default=0)
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.server.base

    def client(self, **kwargs: object) -> httpx.Client:
        """An HTTP client on the server (closed when the test ends)."""
        options: dict[str, object] = {"base_url": self.base, "timeout": 30, **kwargs}
        client = httpx.Client(follow_redirects=False, **options)  # type: ignore[arg-type]
        self._clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self._clients:
            client.close()

    def person(self, role: Role, *, enrol: bool = True, name: str = "") -> Person:
        """A user with ``PASSWORD``; roles that need a second factor get one (``enrol``)."""
        self._people += 1
        email = f"{role.value}{self._people}@clinic.example"
        made = admin.create_user(
            self.vault, role=role, email=email, password=PASSWORD, actor=SETUP,
            name=name or f"{role.value.title()} {self._people}",
        )  # fmt: skip
        person = Person(Actor(made.user_id, role, name or email), email, made.patient_id)
        if enrol and role is not Role.PATIENT:
            secret = totp.begin_totp_enrolment(self.vault, made.user_id).secret
            assert totp.confirm_totp(self.vault, made.user_id, pyotp.TOTP(secret).now())
            person.totp_secret = secret
        return person

    def relate(self, patient: Person, member: Person) -> None:
        assert patient.patient_id
        care.start_care(
            self.vault, patient_id=patient.patient_id, member_id=member.actor.id, actor=SETUP
        )

    def vault_events(self, action: str) -> list[Event]:
        """The audit events with ``action``, oldest first."""
        with self.vault.reading() as session:
            return [e for e in tail(session, 100_000) if e.action == action]

    def sign_in(self, client: httpx.Client, person: Person) -> str:
        """Sign ``client`` in through the login form; returns the session's CSRF token."""
        answer = client.post(
            "/login",
            data={"email": person.email, "password": PASSWORD, "totp": person.code() or ""},
        )
        assert answer.status_code == 303, answer.text
        return csrf_of(client.get("/portal/account").text)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


def _live(backend: str, tmp_path: Path, env: dict[str, str] | None) -> Iterator[Live]:
    url, schema = fresh_database_url(backend, tmp_path)
    data = tmp_path / "vault"
    settings = load_settings(data_dir=data, database_url=url)
    vault = bootstrap(settings, create=True)
    server = start_server(data, url, env)
    live = Live(server, vault, data, url)
    try:
        yield live
    finally:
        live.close_clients()
        server.stop()
        vault.close()
        if schema:
            drop_schema(schema)


@pytest.fixture(params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    """A live service on a fresh database of each backend."""
    yield from _live(request.param, tmp_path, None)


@pytest.fixture(params=BACKENDS)
def live_with(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[dict[str, str]], Live]]:
    """``live_with({"SKINVAULT_…": "…"})``: a live service with extra settings."""
    started: list[Iterator[Live]] = []

    def start(env: dict[str, str]) -> Live:
        gen = _live(request.param, tmp_path / f"s{len(started)}", env)
        started.append(gen)
        return next(gen)

    yield start
    for gen in started:
        for _ in gen:
            pass
