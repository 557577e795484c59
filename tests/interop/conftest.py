"""Real outside checkers for interop tests: dciodvfy, a real Orthanc, and the FHIR validators.

Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``) is started once per session
on free loopback ports, in a temp dir with its own configuration, and stopped
by its PID. The npm validators live in .cache/npm (installed by scripts/test).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import ROOT

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
NPM_DIR = ROOT / ".cache" / "npm"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class OrthancServer:
    http: str  # base URL of the REST API
    host: str
    dicom_port: int
    aet: str
    dicomweb: bool

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.http, timeout=30)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    if not Path(ORTHANC).exists():
        pytest.fail("Orthanc is not installed: run scripts/test (it installs Debian orthanc)")
    home = tmp_path_factory.mktemp("orthanc")
    http_port, dicom_port = _free_port(), _free_port()
    plugins = [str(DICOMWEB_PLUGIN)] if DICOMWEB_PLUGIN.exists() else []
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
    (home / "orthanc.json").write_text(json.dumps(config))
    log = (home / "orthanc.log").open("wb")
    server = subprocess.Popen(
        [ORTHANC, str(home / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT, cwd=home
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"Orthanc exited at start-up ({server.returncode}):"
                    f" {(home / 'orthanc.log').read_text()[-2000:]}"
                )
            try:
                if httpx.get(base + "/system", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("Orthanc did not answer within 60 s")
            time.sleep(0.2)
        yield OrthancServer(base, "127.0.0.1", dicom_port, "ORTHANC", bool(plugins))
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
