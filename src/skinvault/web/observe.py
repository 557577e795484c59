"""What an operator watches: one JSON line per request, and ``/metrics`` for Prometheus.

    {"time": "2026-12-01T23:10:04.120Z", "method": "GET",
     "route": "/api/v1/photos/{photo_id}/content", "status": 200, "ms": 12.4,
     "actor": "3f0c…", "worker": 4121}

The log names the route *template*, never the path a client sent: ids, share-link and
set-up tokens stay out, and so does the query string (it can carry a token). No names,
notes, addresses or bytes either; ``actor`` is the signed-in account's opaque id.

Metrics are counted per process and, so that ``--workers N`` answers as one service,
each process also keeps a snapshot in ``<data dir>/run/metrics/`` (every few seconds and
at each scrape); ``/metrics`` adds up the snapshots of the processes still alive on this
host. Nothing about a patient is ever a label: method, route template and status only.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import socket
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request

from skinvault.services.periodic import PeriodicThread

log = logging.getLogger("skinvault.requests")

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def route_of(request: Request) -> str:
    """The matched route's template (``/s/{token}/content``), or a fixed word: a path
    that matched nothing is never logged as sent (it could be anything a client typed)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if request.url.path.startswith("/static/"):
        return "/static"
    return "(unmatched)"


def log_request(request: Request, route: str, status: int, seconds: float) -> None:
    actor = getattr(request.state, "actor_id", None)
    line: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "method": request.method,
        "route": route,
        "status": status,
        "ms": round(seconds * 1000, 1),
        "worker": os.getpid(),
    }
    if actor:
        line["actor"] = actor
    log.info(json.dumps(line, separators=(",", ":")))


class Metrics:
    """Request counts and latency histograms of this process, shareable across workers."""

    def __init__(self, folder: Path | None) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}  # "method route status" -> n
        self._hist: dict[str, list[float]] = {}  # "method route" -> buckets..., +Inf, sum
        self._folder = folder
        self._file = (
            folder / f"metrics-{socket.gethostname()}-{os.getpid()}.json" if folder else None
        )
        self._saver: PeriodicThread | None = None

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = f"{method} {route} {status}"
            self._counts[key] = self._counts.get(key, 0) + 1
            hist = self._hist.setdefault(f"{method} {route}", [0.0] * (len(BUCKETS) + 2))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    hist[i] += 1
            hist[len(BUCKETS)] += 1
            hist[-1] += seconds

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            hist = {k: list(v) for k, v in self._hist.items()}
            return {"counts": dict(self._counts), "hist": hist}

    # -- sharing between workers ------------------------------------------------

    def save(self) -> None:
        if self._folder is None or self._file is None:
            return
        try:
            self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            temp = self._file.with_suffix(".tmp")
            temp.write_text(json.dumps(self.snapshot()))
            os.replace(temp, self._file)
        except OSError:  # metrics must never take the service down
            log.debug("metrics snapshot not written", exc_info=True)

    def start(self, every: float = 5.0) -> None:
        """Write this process's snapshot every ``every`` seconds (a no-op without a folder
        or while running); after :meth:`stop` it starts again."""
        if self._folder is None or (self._saver is not None and self._saver.running):
            return
        # The periodic module's own logger, not the request log: that one is JSON lines only.
        self._saver = PeriodicThread("skinvault-metrics", every, self.save)
        self._saver.start()

    def stop(self) -> None:
        """Stop the snapshots, waiting for one being written, then remove this process's
        file (in that order: a late write would bring back a stopped worker's share)."""
        if self._saver is not None:
            self._saver.stop()
        if self._file is not None:
            self._file.unlink(missing_ok=True)  # a stopped worker's share is gone with it

    def gathered(self) -> list[dict[str, Any]]:
        """This process's snapshot and those of the other live processes on this host."""
        self.save()
        if self._folder is None:
            return [self.snapshot()]
        found = []
        host = socket.gethostname()
        for path in self._folder.glob(f"metrics-{host}-*.json"):
            pid = path.stem.rsplit("-", 1)[-1]
            if not pid.isdigit() or not _alive(int(pid)):
                path.unlink(missing_ok=True)
                continue
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue  # being replaced right now: it is in the next scrape
        return found or [self.snapshot()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(snapshots: Iterable[dict[str, Any]], gauges: dict[str, tuple[str, float]]) -> str:
    """Prometheus text format (version 0.0.4) of the summed snapshots and ``gauges``
    (name -> (help, value))."""
    counts: dict[str, int] = {}
    hist: dict[str, list[float]] = {}
    for snap in snapshots:
        for key, n in snap.get("counts", {}).items():
            counts[key] = counts.get(key, 0) + int(n)
        for key, values in snap.get("hist", {}).items():
            mine = hist.setdefault(key, [0.0] * len(values))
            for i, v in enumerate(values):
                mine[i] += float(v)
    out = [
        "# HELP skinvault_http_requests_total Requests answered, by method, route and status.",
        "# TYPE skinvault_http_requests_total counter",
    ]
    for key in sorted(counts):
        method, route, status = key.split(" ")
        out.append(
            f'skinvault_http_requests_total{{method="{method}",route="{_label(route)}",'
            f'status="{status}"}} {counts[key]}'
        )
    out += [
        "# HELP skinvault_http_request_duration_seconds Time to answer, by method and route.",
        "# TYPE skinvault_http_request_duration_seconds histogram",
    ]
    for key in sorted(hist):
        method, route = key.split(" ")
        labels = f'method="{method}",route="{_label(route)}"'
        values = hist[key]
        for bound, n in zip(BUCKETS, values, strict=False):
            out.append(
                f'skinvault_http_request_duration_seconds_bucket{{{labels},le="{bound:g}"}} {n:g}'
            )
        total = values[len(BUCKETS)]
        inf = f'{labels},le="+Inf"'
        out.append(f"skinvault_http_request_duration_seconds_bucket{{{inf}}} {total:g}")
        out.append(f"skinvault_http_request_duration_seconds_sum{{{labels}}} {values[-1]:.6f}")
        out.append(f"skinvault_http_request_duration_seconds_count{{{labels}}} {total:g}")
    for name, (text, value) in sorted(gauges.items()):
        kind = "counter" if name.endswith("_total") else "gauge"
        out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value:g}"]
    return "\n".join(out) + "\n"


def may_scrape(request: Request, token: str) -> bool:
    """With a metrics token: only a request bearing it. Without: only this machine."""
    if token:
        sent = request.headers.get("authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    return bool(request.client and request.client.host in _LOOPBACK)
