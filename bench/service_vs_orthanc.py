"""skinvault's upload and view paths side by side with Orthanc's, in one run.

    .venv/bin/python bench/service_vs_orthanc.py                  # 120 photos, 8 clients
    .venv/bin/python bench/service_vs_orthanc.py --photos 40 --workers 1 2 4
    .venv/bin/python bench/service_vs_orthanc.py --job-threads 0    # thumbnails after the run

The same 12 MP JPEGs (bench/scrub.py's batch: ~3.8 MB with full metadata) go to:

- **Orthanc** (Debian ``orthanc``, started here on free loopback ports with its default
  storage), wrapped as DICOM VL Photographic Image files by skinvault's own
  ``interop.dicom.build`` (the JPEG encapsulated unchanged): ``POST /instances``, then
  ``GET /instances/{id}/file``;
- **skinvault** (``skinvault serve --workers N``, SQLite and a local folder, for each N
  asked for): ``POST /api/v1/patients/{id}/photos`` (scrub, encrypt, one fsynced blob,
  audit, commit; the thumbnail is a job enqueued in the same transaction), then
  ``GET /api/v1/photos/{id}/content?purpose=care`` (decide, audit, decrypt). The
  thumbnail jobs run in ``--job-threads`` threads of each server process (the default
  1, as ``serve`` runs; 0 = none during the run): the table adds how long after the
  last upload every thumbnail was ready ("thumbs +s", read from /metrics), so the work
  moved out of the request is still counted.

Besides requests/s (which, with the clients on the same two cores, moves with whatever
else runs on the machine), the table gives each server's CPU per request (user + system
of all its processes, read from /proc), the upload's including the thumbnail jobs of the
run: the ratio of those is what a server with cores of its own would show.

Then, in this process, the store path against its floor (one photo at a time): the
floor is scrub + AES-256-GCM seal + a durable (fsynced) blob write; the store path is
``services.photo_store.store_photo`` (the floor plus SHA-256s, the database row, the audit
event and the job, one commit). The issue's goal is ≤ 1.5x.

Each path runs with C concurrent clients (threads, one httpx client each) over every
photo once. The table prints requests/s, p50/p95 latency and skinvault's ratio to
Orthanc; the issue's goal is ≥ 1.0x on both paths.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import httpx2 as httpx

HERE = Path(__file__).resolve().parent
ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"


def _module(name: str) -> ModuleType:
    """bench/<name>.py as a module (bench/ is not a package), loaded once."""
    key = f"_bench_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, HERE / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def _wait(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            sys.exit(f"{what} exited at start-up ({proc.returncode})")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not answer within 60 s")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Run:
    def __init__(self, name: str) -> None:
        self.name = name
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error = ""
        self.seconds = 0.0
        self.outputs: list[str] = []
        self.cpu = float("nan")  # server CPU seconds the run cost (all its processes)

    @property
    def cpu_ms(self) -> float:
        """Server CPU per request, in ms: what decides throughput once the server has the
        machine's cores to itself (the clients here share them)."""
        return 1000 * self.cpu / len(self.latencies) if self.latencies else float("nan")

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: int) -> float:
        if not self.latencies:
            return 0.0
        return statistics.quantiles(self.latencies, n=100)[q - 1] * 1000


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and every process under it."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}  # pid: (parent, cpu)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [pid]
    while todo:
        here = todo.pop()
        total += stats.get(here, (0, 0.0))[1]
        todo += [child for child, (parent, _) in stats.items() if parent == here]
    return total


def drive(name: str, count: int, clients: int, make: Callable[[], httpx.Client],
          call: Callable[[httpx.Client, int], str | None]) -> Run:  # fmt: skip
    """``call(client, i)`` for i in range(count) from ``clients`` threads; ``call`` returns
    an output (e.g. the new id) or raises/returns None on failure."""
    run = Run(name)
    outputs: dict[int, str] = {}
    local: dict[int, httpx.Client] = {}

    def one(i: int) -> None:
        import threading

        client = local.setdefault(threading.get_ident(), make())
        started = time.perf_counter()
        try:
            out = call(client, i)
        except Exception as exc:
            out, error = None, f"{type(exc).__name__}: {exc}"
        else:
            error = "no result"
        if out is None:
            run.errors += 1
            run.first_error = run.first_error or error
            return
        run.latencies.append(time.perf_counter() - started)
        outputs[i] = out

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(count)))
    run.seconds = time.perf_counter() - started
    for client in local.values():
        client.close()
    run.outputs = [outputs[i] for i in sorted(outputs)]
    return run


# -- Orthanc ---------------------------------------------------------------------------


def dicom_files(photos: list[bytes]) -> list[bytes]:
    from skinvault.interop.dicom import DicomPhoto, build

    now = datetime.now(UTC)
    return [
        build(DicomPhoto(photo_id=f"bench{i:05}", patient_id="benchpatient",
                         patient_name="Bench^Patient", site=None, site_label=None, data=data,
                         format="jpeg", taken_on=None, uploaded_at=now)).data
        for i, data in enumerate(photos)
    ]  # fmt: skip


def bench_orthanc(work: Path, files: list[bytes], clients: int) -> tuple[Run, Run]:
    home = work / "orthanc"
    home.mkdir()
    bench_service = _module("service")
    http_port, dicom_port = bench_service.free_port(), bench_service.free_port()
    config = {
        "Name": "bench", "StorageDirectory": str(home / "db"), "IndexDirectory": str(home / "db"),
        "HttpPort": http_port, "DicomPort": dicom_port, "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "HttpServerEnabled": True, "Plugins": [],
        "HttpThreadsCount": 50,
    }  # fmt: skip
    (home / "orthanc.json").write_text(json.dumps(config))
    with (home / "orthanc.log").open("wb") as log:
        proc = subprocess.Popen([ORTHANC, str(home / "orthanc.json")], stdout=log,
                                stderr=subprocess.STDOUT, cwd=home)  # fmt: skip
    base = f"http://127.0.0.1:{http_port}"
    try:
        _wait(base + "/system", proc, "Orthanc")

        def make() -> httpx.Client:
            return httpx.Client(base_url=base, timeout=300)

        def upload(client: httpx.Client, i: int) -> str | None:
            got = client.post("/instances", content=files[i],
                              headers={"Content-Type": "application/dicom"})  # fmt: skip
            return str(got.json()["ID"]) if got.status_code == 200 else None

        before = tree_cpu(proc.pid)
        up = drive("orthanc upload", len(files), clients, make, upload)
        up.cpu = tree_cpu(proc.pid) - before
        ids = up.outputs

        def view(client: httpx.Client, i: int) -> str | None:
            got = client.get(f"/instances/{ids[i % len(ids)]}/file")
            return "ok" if got.status_code == 200 and len(got.content) > 1000 else None

        before = tree_cpu(proc.pid)
        seen = drive("orthanc view", len(files), clients, make, view)
        seen.cpu = tree_cpu(proc.pid) - before
        return up, seen
    finally:
        _stop(proc)


# -- skinvault -------------------------------------------------------------------------


def _jobs_waiting(base: str) -> int:
    """Jobs queued or running, from /metrics (loopback needs no token)."""
    text = httpx.get(base + "/metrics", timeout=30).text
    waiting = 0
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in {"skinvault_jobs_queued", "skinvault_jobs_running"}:
            waiting += int(float(value))
    return waiting


def bench_skinvault(
    work: Path, photos: list[bytes], clients: int, workers: int, job_threads: int
) -> tuple[Run, Run, float]:
    bench_service = _module("service")
    data = work / f"skinvault-{workers}"
    pid = bench_service.create_patient(data)
    port = bench_service.free_port()
    env = {**os.environ, "SKINVAULT_REQUEST_LOG": "false",
           "SKINVAULT_JOB_THREADS": str(job_threads)}  # fmt: skip
    with (work / f"skinvault-{workers}.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "skinvault", "serve", "--data-dir", str(data),
             "--port", str(port), "--workers", str(workers)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base + "/healthz", proc, "skinvault serve")
        login = {"email": bench_service.EMAIL, "password": bench_service.PASSWORD}
        token = httpx.post(base + "/api/v1/auth/token", timeout=30, json=login).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}

        def make() -> httpx.Client:
            return httpx.Client(base_url=base, timeout=300, headers=headers)

        def upload(client: httpx.Client, i: int) -> str | None:
            form = {"file": (f"IMG_{i:04}.jpg", photos[i], "image/jpeg")}
            got = client.post(f"/api/v1/patients/{pid}/photos", files=form)
            return str(got.json()["id"]) if got.status_code == 201 else None

        before = tree_cpu(proc.pid)
        up = drive(f"skinvault upload ({workers}w)", len(photos), clients, make, upload)
        ids = up.outputs
        uploaded = time.perf_counter()
        if job_threads == 0:
            drained = float("nan")
        else:
            while _jobs_waiting(base):
                time.sleep(0.1)
            drained = time.perf_counter() - uploaded
        up.cpu = tree_cpu(proc.pid) - before  # with the thumbnail jobs, when they ran

        def view(client: httpx.Client, i: int) -> str | None:
            got = client.get(f"/api/v1/photos/{ids[i % len(ids)]}/content",
                             params={"purpose": "care"})  # fmt: skip
            return "ok" if got.status_code == 200 and len(got.content) > 1000 else None

        before = tree_cpu(proc.pid)
        seen = drive(f"skinvault view ({workers}w)", len(photos), clients, make, view)
        seen.cpu = tree_cpu(proc.pid) - before
        return up, seen, drained
    finally:
        _stop(proc)


def store_floor(work: Path, photos: list[bytes]) -> tuple[float, float]:
    """Median seconds per photo: (floor, store path), one photo at a time, same vault.

    The two alternate photo by photo (a floor write, then a store of the same photo), so
    a slow spell of the disk's fsync or of other work on the machine falls on both."""
    from skinvault.actors import Actor
    from skinvault.bootstrap import bootstrap
    from skinvault.crypto.envelope import seal
    from skinvault.photos.scrub import scrub
    from skinvault.services.photo_store import store_photo

    bench_service = _module("service")
    data = work / "store-floor"
    pid = bench_service.create_patient(data)
    vault = bootstrap(bench_service.settings_for(data))
    actor = Actor.system("bench")
    floors: list[float] = []
    stores: list[float] = []
    try:
        for i, raw in enumerate(photos):
            started = time.perf_counter()
            clean, _ = scrub(raw)
            sealed = seal(clean, object_id=f"floor{i}", kind="photo", kek=vault.keys.current())
            vault.blobs.put(f"f/{i:06}", sealed.blob)
            floors.append(time.perf_counter() - started)
            started = time.perf_counter()
            store_photo(vault, patient_id=pid, data=raw, actor=actor)
            stores.append(time.perf_counter() - started)
    finally:
        vault.close()
    return statistics.median(floors), statistics.median(stores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=120)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--job-threads", type=int, default=1,
                        help="job threads per server process (0: thumbnails wait)")  # fmt: skip
    parser.add_argument(
        "--quick", action="store_true", help="a few photos, one client, one worker (seconds)"
    )
    args = parser.parse_args()
    if args.quick:
        args.photos, args.clients, args.workers = 3, 1, [1]
    if not Path(ORTHANC).exists():
        sys.exit("Orthanc is not installed (Debian package orthanc; scripts/test installs it)")
    with tempfile.TemporaryDirectory(prefix="sv-vs-orthanc-") as scratch:
        work = Path(scratch)
        print(f"making {args.photos} 12 MP photos …", file=sys.stderr)
        photos = _module("service").load_photos(work, args.photos)
        files = dicom_files(photos)
        mean = sum(map(len, photos)) / len(photos) / 1e6
        print(f"orthanc … ({args.clients} clients)", file=sys.stderr)
        o_up, o_view = bench_orthanc(work, files, args.clients)
        rows: list[tuple[Run, Run | None, float | None]] = [(o_up, None, None),
                                                            (o_view, None, None)]  # fmt: skip
        for workers in args.workers:
            print(f"skinvault --workers {workers} …", file=sys.stderr)
            s_up, s_view, drained = bench_skinvault(work, photos, args.clients, workers,
                                                    args.job_threads)  # fmt: skip
            rows += [(s_up, o_up, drained), (s_view, o_view, None)]
        print("store path vs floor …", file=sys.stderr)
        floor, store = store_floor(work, photos[: min(len(photos), 30)])
    print(f"\n{args.photos} photos (mean {mean:.1f} MB), {args.clients} clients, "
          f"{os.cpu_count()} cores\n")  # fmt: skip
    columns = [("ok", 6), ("errors", 8), ("req/s", 9), ("p50 ms", 9), ("p95 ms", 9)]
    header = f"{'path':<26}" + "".join(f"{name:>{width}}" for name, width in columns)
    header += f"{'x Orthanc':>11}{'thumbs +s':>11}{'cpu ms/req':>12}{'x Orthanc':>11}"
    print(header)
    print("-" * len(header))
    for run, peer, drained in rows:
        ratio = f"{run.rate / peer.rate:.2f}x" if peer and peer.rate else "-"
        thumbs = "-" if drained is None or math.isnan(drained) else f"{drained:.1f}"
        # Orthanc's CPU per request over ours: above 1 means ours spends less than it does.
        cpu_ratio = f"{peer.cpu_ms / run.cpu_ms:.2f}x" if peer and run.cpu_ms > 0 else "-"
        print(f"{run.name:<26}{len(run.latencies):>6}{run.errors:>8}{run.rate:>9.1f}"
              f"{run.pct(50):>9.0f}{run.pct(95):>9.0f}{ratio:>11}{thumbs:>11}"
              f"{run.cpu_ms:>12.1f}{cpu_ratio:>11}")  # fmt: skip
    print(
        "(cpu ms/req: the server processes' CPU per request, an upload's with its thumbnail"
        " job when jobs ran in the run; its x Orthanc is Orthanc's CPU over ours)"
    )
    for run, _, _ in rows:
        if run.errors:
            print(f"{run.name}: first error: {run.first_error}")
    print(f"\nstore path (one at a time, medians): floor {floor * 1000:.1f} ms (scrub + AES-GCM"
          f" + fsynced write), store_photo {store * 1000:.1f} ms: {store / floor:.2f}x the floor"
          " (goal <= 1.5x)")  # fmt: skip
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
