"""Real outside checkers for interop tests: dciodvfy, a real Orthanc, and the FHIR validators.

Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``) is started once per session
on free loopback ports (tests/ports.py: a port taken before Orthanc binds it is
retried), in a temp dir with its own configuration, and stopped by its PID.
The npm validators live in .cache/npm (installed by scripts/test).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import ROOT
from tests.ports import free_port, serve_on_free_port

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
NPM_DIR = ROOT / ".cache" / "npm"


@dataclass(frozen=True)
class OrthancServer:
    http: str  # base URL of the REST API
    host: str
    dicom_port: int
    aet: str
    dicomweb: bool

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.http, timeout=30)


def _orthanc_config(home: Path, http_port: int, dicom_port: int, plugins: list[str]) -> Path:
    config = {
        "Name": "skinvault-test",
        "StorageDirectory": str(home / "db"),
        "IndexDirectory": str(home / "db"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "HttpServerEnabled": True,
        "Plugins": plugins,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "StableAge": 1,
    }
    path = home / f"orthanc-{http_port}.json"
    path.write_text(json.dumps(config))
    return path


def _orthanc_answers(http_port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{http_port}/system", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """A real Orthanc on free loopback ports (tests/ports.py retries a port taken meanwhile)."""
    if not Path(ORTHANC).exists():
        pytest.fail("Orthanc is not installed: run scripts/test (it installs Debian orthanc)")
    home = tmp_path_factory.mktemp("orthanc")
    plugins = [str(DICOMWEB_PLUGIN)] if DICOMWEB_PLUGIN.exists() else []
    dicom_ports: dict[int, int] = {}

    def argv(http_port: int) -> list[str]:
        # A taken DICOM port makes Orthanc exit at start-up too, so both are chosen per try.
        dicom_ports[http_port] = free_port()
        return [ORTHANC, str(_orthanc_config(home, http_port, dicom_ports[http_port], plugins))]

    log = (home / "orthanc.log").open("wb")
    try:
        server, http_port = serve_on_free_port(
            argv, ready=_orthanc_answers, timeout=60, stdout=log, stderr=subprocess.STDOUT, cwd=home
        )
    except RuntimeError as exc:
        log.close()
        pytest.fail(f"Orthanc did not start: {exc}: {(home / 'orthanc.log').read_text()[-2000:]}")
    try:
        yield OrthancServer(
            f"http://127.0.0.1:{http_port}",
            "127.0.0.1",
            dicom_ports[http_port],
            "ORTHANC",
            bool(plugins),
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@dataclass(frozen=True)
class Dciodvfy:
    returncode: int
    output: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.startswith("Error")]


def dciodvfy(path: Path) -> Dciodvfy:
    """dicom3tools' IOD checker; its output lists Errors and Warnings line by line."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.fail("dciodvfy is not installed: run scripts/test (Debian dicom3tools)")
    done = subprocess.run(
        [exe, "-new", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    return Dciodvfy(done.returncode, done.stdout + done.stderr)
