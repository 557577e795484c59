"""Liveness and readiness: ``/healthz`` says the process answers, ``/readyz`` that it can work.

    >>> ready = Readiness(vault, timeout=2.0)           # doctest: +SKIP
    >>> ready.check()                                   # doctest: +SKIP
    {'database': 'ok', 'blob_store': 'ok'}

A load balancer sends traffic only to an instance whose ``/readyz`` is 200: the database
answers ``SELECT 1`` and the blob store answers a lookup, each within the timeout. A probe
that hangs (a frozen S3 endpoint, a pool with no free connection) is not waited for past
the timeout and is not started again while it still runs, so a dead dependency never piles
up threads — each check costs at most one stuck thread per dependency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from sqlalchemy import text

from skinvault.bootstrap import Vault

_PROBE_KEY = "readyz/probe"  # never written: a lookup of a missing key is the cheapest call


@runtime_checkable
class _Checkable(Protocol):
    def check(self) -> None: ...


@dataclass
class _Probe:
    done: threading.Event = field(default_factory=threading.Event)
    failure: str | None = None


class Readiness:
    """Checks the vault's database and blob store with a bounded wait."""

    def __init__(self, vault: Vault, timeout: float) -> None:
        self._vault = vault
        self._timeout = timeout
        self._lock = threading.Lock()
        self._running: dict[str, _Probe] = {}

    def _database(self) -> None:
        with self._vault.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def _blob_store(self) -> None:
        store = self._vault.blobs
        if isinstance(store, _Checkable):
            store.check()  # S3: the bucket answers; local: the folder can be written
        else:
            store.exists(_PROBE_KEY)

    def _start(self, name: str, work: Callable[[], None]) -> _Probe:
        """The probe of ``name`` still running, or a new one started in its own thread."""
        with self._lock:
            probe = self._running.get(name)
            if probe is not None and not probe.done.is_set():
                return probe
            probe = self._running[name] = _Probe()

        def run() -> None:
            try:
                work()
            except Exception as exc:  # any failure means "not ready"; its kind is enough
                probe.failure = type(exc).__name__
            finally:
                probe.done.set()

        threading.Thread(target=run, name=f"readyz-{name}", daemon=True).start()
        return probe

    def check(self) -> dict[str, str]:
        """``{"database": "ok" | why not, "blob_store": "ok" | why not}``; both probes run
        at once, so the answer takes at most one timeout."""
        probes = {
            "database": self._start("database", self._database),
            "blob_store": self._start("blob_store", self._blob_store),
        }
        deadline = time.monotonic() + self._timeout
        results: dict[str, str] = {}
        for name, probe in probes.items():
            if probe.done.wait(max(0.0, deadline - time.monotonic())):
                results[name] = probe.failure or "ok"
            else:
                results[name] = f"no answer within {self._timeout:g} s"
        return results
