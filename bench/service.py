"""Throughput of the HTTP service (upload and view of 12 MP photos) next to its floor.

    .venv/bin/python bench/service.py                    # 8 clients, 20 s per path
    .venv/bin/python bench/service.py --seconds 10 --clients 4
    .venv/bin/python bench/service.py --requests 40      # a fixed count per path instead

Starts the service in a subprocess (uvicorn, one process, as ``skinvault serve``
runs it) on a free port with a temp data dir (SQLite), creates a patient and
signs in through the API, then runs N concurrent clients (asyncio + httpx2)
against, one path after another:

- "upload floor": POST /bench/echo with the same multipart body as an upload; the
  route reads the whole body and answers its length;
- "upload": POST /api/v1/patients/{pid}/photos (scrub, encrypt, thumbnail, store);
- "view floor": GET /bench/blob?size=N answering N fixed bytes, N the size of the
  stored photo the view path would return;
- "view": GET /api/v1/photos/{id}/content?purpose=care of the stored photos.

The floor routes are added by this script to the SAME app (create_app plus two
routes), so they go through the same server, process, middleware and event
loop: the ratio is what the service costs over moving the bytes. MB/s counts
the photo bytes sent (upload) or received (view). Goals (issue): upload at least
50 % of its floor's req/s, view at least 70 %, and no errors.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import httpx2
from fastapi import Request, Response  # module level: the routes' annotations are strings

HERE = Path(__file__).resolve().parent
PASSWORD = "a long enough bench password"
EMAIL = "bench.patient@example.org"
GOALS = {"upload": 0.5, "view": 0.7}


# -- the server (subprocess) ---------------------------------------------------------


def settings_for(data_dir: Path):  # type: ignore[no-untyped-def]
    from skinvault.config import load_settings

    return load_settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'skinvault.db'}")


def serve(data_dir: Path, port: int) -> None:
    """The service plus the two floor routes, under uvicorn as ``skinvault serve`` runs it."""
    import uvicorn

    from skinvault.web.app import create_app

    app = create_app(settings_for(data_dir))
    blobs: dict[int, bytes] = {}

    @app.post("/bench/echo", include_in_schema=False)
    async def echo(request: Request) -> dict[str, int]:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
        return {"received": received}

    @app.get("/bench/blob", include_in_schema=False)
    def blob(size: int) -> Response:
        data = blobs.get(size)
        if data is None:
            data = blobs[size] = bytes(size)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=True)


# -- set-up ----------------------------------------------------------------------------


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


def create_patient(data_dir: Path) -> str:
    """A patient account in a fresh vault (before the server starts); its patient id."""
    from skinvault.actors import Actor, Role
    from skinvault.bootstrap import bootstrap
    from skinvault.services import admin

    vault = bootstrap(settings_for(data_dir), create=True)
    try:
        made = admin.create_user(
            vault,
            role=Role.PATIENT,
            email=EMAIL,
            password=PASSWORD,
            actor=Actor.system("bench"),
            name="Bench Patient",
        )
    finally:
        vault.close()
    assert made.patient_id
    return made.patient_id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(data_dir), "--port", str(port)],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            sys.exit(f"the server exited at start-up:\n{log.read_text()[-3000:]}")
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx2.TransportError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            sys.exit("the server did not answer /healthz within 60 s")
        time.sleep(0.1)


# -- load ------------------------------------------------------------------------------


@dataclass
class Result:
    path: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # of successful requests, in s
    errors: int = 0
    nbytes: int = 0
    first_error: str = ""
    outputs: list[object] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0] * 1000
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1] * 1000


# One request: (client, i) -> (ok, bytes moved, error text, output kept for later).
Call = Callable[[httpx2.AsyncClient, int], Awaitable[tuple[bool, int, str, object]]]


async def run_path(
    name: str, call: Call, base: str, token: str, load: tuple[int, float, int]
) -> Result:
    """``call`` from ``clients`` workers for ``seconds``, or ``requests`` calls in all."""
    clients, seconds, requests = load
    result = Result(name)
    counter = iter(range(requests or sys.maxsize))
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=300
    ) as client:
        start = time.perf_counter()
        deadline = start + seconds if not requests else float("inf")

        async def worker() -> None:
            while time.perf_counter() < deadline:
                i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                try:
                    ok, nbytes, error, output = await call(client, i)
                except httpx2.HTTPError as exc:
                    ok, nbytes, error, output = False, 0, f"{type(exc).__name__}: {exc}", None
                if ok:
                    result.latencies.append(time.perf_counter() - t0)
                    result.nbytes += nbytes
                    if output is not None:
                        result.outputs.append(output)
                else:
                    result.errors += 1
                    result.first_error = result.first_error or error

        await asyncio.gather(*(worker() for _ in range(clients)))
        result.seconds = time.perf_counter() - start
    return result


def upload_calls(pid: str, photos: list[bytes]) -> tuple[Call, Call]:
    def form(i: int) -> tuple[dict[str, tuple[str, bytes, str]], dict[str, str]]:
        data = photos[i % len(photos)]
        return {"file": (f"IMG_{i:04}.jpg", data, "image/jpeg")}, {"site": "left forearm"}

    async def floor(client: httpx2.AsyncClient, i: int) -> tuple[bool, int, str, object]:
        files, data = form(i)
        answer = await client.post("/bench/echo", files=files, data=data)
        ok = answer.status_code == 200
        return ok, len(files["file"][1]), "" if ok else f"{answer.status_code} {answer.text}", None

    async def upload(client: httpx2.AsyncClient, i: int) -> tuple[bool, int, str, object]:
        files, data = form(i)
        answer = await client.post(f"/api/v1/patients/{pid}/photos", files=files, data=data)
        if answer.status_code != 201:
            return False, 0, f"{answer.status_code} {answer.text[:300]}", None
        return True, len(files["file"][1]), "", answer.json()["id"]

    return floor, upload


def view_calls(stored: list[tuple[str, int]]) -> tuple[Call, Call]:
    async def floor(client: httpx2.AsyncClient, i: int) -> tuple[bool, int, str, object]:
        _, size = stored[i % len(stored)]
        answer = await client.get("/bench/blob", params={"size": size})
        ok = answer.status_code == 200 and len(answer.content) == size
        return ok, len(answer.content), "" if ok else f"{answer.status_code}", None

    async def view(client: httpx2.AsyncClient, i: int) -> tuple[bool, int, str, object]:
        photo_id, size = stored[i % len(stored)]
        answer = await client.get(f"/api/v1/photos/{photo_id}/content", params={"purpose": "care"})
        ok = answer.status_code == 200 and len(answer.content) == size
        return (
            ok,
            len(answer.content),
            "" if ok else f"{answer.status_code} {answer.text[:300]}",
            None,
        )

    return floor, view


# -- report ----------------------------------------------------------------------------


def print_table(rows: list[tuple[Result, Result | None]]) -> None:
    header = (
        f"{'path':<14}{'requests':>9}{'errors':>8}{'req/s':>9}{'MB/s':>9}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'x floor':>9}"
    )
    print(header)
    print("-" * len(header))
    for result, floor in rows:
        ratio = f"{result.rate / floor.rate:.2f}" if floor and floor.rate else "-"
        print(
            f"{result.path:<14}{result.requests:>9}{result.errors:>8}{result.rate:>9.1f}"
            f"{result.nbytes / 1e6 / result.seconds:>9.1f}{result.pct(50):>9.0f}"
            f"{result.pct(95):>9.0f}{result.pct(99):>9.0f}{ratio:>9}"
        )


async def bench(args: argparse.Namespace, base: str, pid: str, photos: list[bytes]) -> bool:
    answer = httpx2.post(
        f"{base}/api/v1/auth/token", json={"email": EMAIL, "password": PASSWORD}, timeout=30
    )
    answer.raise_for_status()
    token = answer.json()["access_token"]
    run = (args.clients, args.seconds, args.requests)

    up_floor_call, upload_call = upload_calls(pid, photos)
    print(f"upload floor: {args.clients} clients …", file=sys.stderr)
    up_floor = await run_path("upload floor", up_floor_call, base, token, run)
    print("upload …", file=sys.stderr)
    upload = await run_path("upload", upload_call, base, token, run)

    ids = [str(x) for x in upload.outputs][: max(args.photos, 1) * 4]
    if not ids:
        sys.exit(f"no upload succeeded, so there is nothing to view: {upload.first_error}")
    stored: list[tuple[str, int]] = []
    async with httpx2.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        for photo_id in ids:  # sizes of the scrubbed photos, and a warm cache for both paths
            got = await client.get(f"/api/v1/photos/{photo_id}/content?purpose=care")
            got.raise_for_status()
            stored.append((photo_id, len(got.content)))
    view_floor_call, view_call = view_calls(stored)
    print("view floor …", file=sys.stderr)
    view_floor = await run_path("view floor", view_floor_call, base, token, run)
    print("view …", file=sys.stderr)
    view = await run_path("view", view_call, base, token, run)

    print()
    print_table([(up_floor, None), (upload, up_floor), (view_floor, None), (view, view_floor)])
    print()
    results = [up_floor, upload, view_floor, view]
    for r in results:
        if r.errors:
            print(f"{r.path}: first error: {r.first_error}")
    met = True
    for result, floor in ((upload, up_floor), (view, view_floor)):
        ratio = result.rate / floor.rate if floor.rate else 0.0
        ok = ratio >= GOALS[result.path]
        met &= ok
        print(
            f"goal {result.path}: ≥ {GOALS[result.path]:.0%} of floor req/s"
            f" — {ratio:.0%}: {'met' if ok else 'NOT met'}"
        )
    errors = sum(r.errors for r in results)
    print(f"goal errors: none — {errors}: {'met' if not errors else 'NOT met'}")
    return met and not errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--seconds", type=float, default=20, help="per path (default 20)")
    parser.add_argument(
        "--requests", type=int, default=0, help="a fixed number of requests per path instead"
    )
    parser.add_argument("--photos", type=int, default=4, help="distinct 12 MP JPEGs (default 4)")
    parser.add_argument("--serve", type=Path, metavar="DATA_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--quick", action="store_true", help="a tiny run (seconds) for CI")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.seconds, args.requests, args.photos = 2, 1.0, 4, 1
    if args.serve:
        serve(args.serve, args.port)
        return

    with tempfile.TemporaryDirectory(prefix="skinvault-bench-") as tmp:
        work = Path(tmp)
        photos = load_photos(work, args.photos)
        mb = sum(map(len, photos)) / len(photos) / 1e6
        print(f"photos: {len(photos)} distinct 12 MP JPEGs, {mb:.1f} MB each", file=sys.stderr)
        data_dir = work / "data"
        pid = create_patient(data_dir)
        port = args.port or free_port()
        server = start_server(data_dir, port, work / "server.log")
        try:
            met = asyncio.run(bench(args, f"http://127.0.0.1:{port}", pid, photos))
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    sys.exit(0 if met or args.quick else 1)  # --quick checks the script, not the goal


if __name__ == "__main__":
    main()
