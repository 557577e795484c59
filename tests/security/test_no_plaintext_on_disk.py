"""F3 "no plaintext image bytes ever written to disk by the service", checked on a live
server: photos go in through every upload path (portal upload and preview, API upload,
FHIR Media), large enough that a spooling form parser would put them in a temporary file.

Three looks, since a scan of the data folder alone misses the rest:

- every file the server process opens for writing is recorded by a Python audit hook
  (``open`` and ``os.open`` events, so also unnamed ``O_TMPFILE`` files that no directory
  scan can see): each must be inside the data folder;
- every file in the data folder and in the server's own temporary folder (``TMPDIR``,
  a fresh folder for this server) is scanned for any 32-byte run of the uploads or of
  what the service serves back;
- blobs never start like an image.
"""

from __future__ import annotations

import base64
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

from skinvault.actors import Role
from tests.conftest import CORPUS
from tests.security.conftest import Live

#: Installed in the server process through ``sitecustomize``: log each open-for-writing.
HOOK = textwrap.dedent(
    """
    import os, sys
    _log = os.environ.get("SKINVAULT_TEST_WRITE_LOG")
    if _log:
        _fd = os.open(_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        _WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

        def _hook(event, args):
            if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
                path, mode, flags = args
                writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                    isinstance(flags, int) and flags & _WRITES
                )
                if writes:
                    frame, callers = sys._getframe(1), []
                    while frame is not None and len(callers) < 12:
                        callers.append(frame.f_code.co_name)
                        frame = frame.f_back
                    line = os.fsencode(os.fspath(path)) + b"\\t" + " ".join(callers).encode()
                    os.write(_fd, line + b"\\n")

        sys.addaudithook(_hook)
    """
)
BIG = CORPUS / "060-jpg-mobile-hmd-nokia-8-3-5g.jpg"  # 2.2 MB: past a 1 MB spool limit
SMALL = CORPUS / "007-jpg-canon-40d.jpg"
SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"RIFF", b"ftyp", b"II*\x00", b"MM\x00*")


def _chunks(*plaintexts: bytes) -> set[bytes]:
    # Any shared 64-byte run contains one of these 32-byte chunks at a multiple of 32.
    return {p[o : o + 32] for p in plaintexts for o in range(0, len(p) - 31, 32)}


def _leak(path: Path, chunks: set[bytes]) -> int | None:
    data = path.read_bytes()
    return next((i for i in range(len(data) - 31) if data[i : i + 32] in chunks), None)


def test_no_upload_path_writes_plaintext_anywhere(
    live_with: Callable[[dict[str, str]], Live], tmp_path: Path
) -> None:
    hook_dir, server_tmp, log = tmp_path / "hook", tmp_path / "server-tmp", tmp_path / "writes"
    hook_dir.mkdir()
    server_tmp.mkdir()
    (hook_dir / "sitecustomize.py").write_text(HOOK)
    live = live_with({
        "PYTHONPATH": os.pathsep.join([str(hook_dir), os.environ.get("PYTHONPATH", "")]),
        "SKINVAULT_TEST_WRITE_LOG": str(log),
        "TMPDIR": str(server_tmp),
    })  # fmt: skip
    patient = live.person(Role.PATIENT)
    clinician = live.person(Role.CLINICIAN)
    live.relate(patient, clinician)
    assert patient.patient_id
    uploads = [BIG.read_bytes(), SMALL.read_bytes()]
    client = live.client()
    csrf = live.sign_in(client, patient)
    served: list[bytes] = []
    for data in uploads:
        files = {"file": ("photo.jpg", data, "image/jpeg")}
        form = {"csrf": csrf, "patient_id": patient.patient_id, "site": "back"}
        preview = client.post("/portal/preview", data={"csrf": csrf}, files=files)
        assert preview.status_code == 200, preview.text[:300]
        done = client.post("/portal/upload", data=form, files=files)
        assert done.status_code in (200, 303), done.text[:300]
        api = client.post(
            f"/api/v1/patients/{patient.patient_id}/photos",
            files=files, data={"site": "back"}, headers={"x-csrf-token": csrf},
        )  # fmt: skip
        assert api.status_code == 201, api.text[:300]
        served.append(client.get(f"/api/v1/photos/{api.json()['id']}/content?purpose=care").content)
    fhir = client.post(
        "/fhir/R4/Media",
        json={
            "resourceType": "Media",
            "status": "completed",
            "subject": {"reference": f"Patient/{patient.patient_id}"},
            "content": {"contentType": "image/jpeg", "data": base64.b64encode(uploads[1]).decode()},
        },
        headers={"x-csrf-token": csrf, "content-type": "application/fhir+json"},
    )
    assert fhir.status_code < 500, fhir.text[:300]
    assert all(s.startswith(b"\xff\xd8") for s in served)

    data_dir = live.data.resolve()
    written = [line.split("\t") for line in log.read_text().splitlines() if line]
    assert written, "the audit hook saw no write at all: it is not installed"
    outside = sorted(
        f"{path} (from {callers})"
        for path, callers in written
        if not Path(path).resolve().is_relative_to(data_dir)
        and path != "/dev/null"
        and "_get_default_tempdir" not in callers.split()  # tempfile's 4-byte "blat" probe
    )
    assert outside == [], f"the server wrote outside its data folder: {outside}"

    chunks = _chunks(*uploads, *served)
    scanned = [p for root in (data_dir, server_tmp) for p in root.rglob("*") if p.is_file()]
    assert any("blobs" in p.parts for p in scanned)
    for file in scanned:
        if "blobs" in file.parts:
            assert not file.read_bytes()[:16].startswith(SIGNATURES), f"{file} is an image"
        leaked = _leak(file, chunks)
        assert leaked is None, f"{file} holds plaintext photo bytes at offset {leaked}"
