"""F3 "no plaintext on disk" for the patient's own copies, on a live server: the archive
download (built in an anonymous temporary file that may only ever hold ciphertext), the
public copy and the check-a-copy fallback that sends the file. The same three looks as
``test_no_plaintext_on_disk.py``: every file the server opens for writing is inside its
data folder, no file there or in its TMPDIR holds a 32-byte run of the photo or of what
was served, and the archive itself holds none either.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from skinvault.actors import Role
from skinvault.services import photo_reads, photo_store
from tests.security.conftest import Live
from tests.security.test_no_plaintext_on_disk import BIG, HOOK, _chunks, _leak

PASSPHRASE = "marmalade under the old pier"


def test_archive_public_copy_and_check_a_copy_write_no_plaintext(
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
    assert patient.patient_id
    raw = BIG.read_bytes()  # 2.2 MB: past any 1 MB spooling limit
    stored = photo_store.store_photo(
        live.vault, patient_id=patient.patient_id, data=raw, actor=patient.actor, site="back",
        note="a note that must stay encrypted",
    )  # fmt: skip
    scrubbed = photo_reads.read_photo(
        live.vault, photo_id=stored.id, actor=patient.actor, purpose="care"
    ).data
    client = live.client()
    csrf = live.sign_in(client, patient)

    archive = client.post(
        "/portal/archive",
        data={"csrf": csrf, "passphrase": PASSPHRASE, "passphrase_again": PASSPHRASE},
    )
    assert archive.status_code == 200 and archive.content.startswith(b"7z\xbc\xaf"), archive.text
    public = client.post(
        "/portal/public-copy",
        data={"csrf": csrf},
        files={"file": ("IMG_1.jpg", raw, "image/jpeg")},
    )
    assert public.status_code == 200 and public.content.startswith(b"\xff\xd8")
    checked = client.post(
        "/portal/check-copy", data={"csrf": csrf}, files={"file": ("IMG_1.jpg", raw, "image/jpeg")}
    )
    assert checked.status_code == 200 and "Yes: this is a photo in your record" in checked.text

    chunks = _chunks(raw, scrubbed, public.content)
    assert _leak_in(archive.content, _chunks(raw, scrubbed)) is None  # ciphertext only
    data_dir = live.data.resolve()
    written = [line.split("\t") for line in log.read_text().splitlines() if line]
    assert any("archives" in path for path, _ in written), "the archive's temporary file"
    outside = sorted(
        f"{path} (from {callers})"
        for path, callers in written
        if not Path(path).resolve().is_relative_to(data_dir)
        and path != "/dev/null"
        and "_get_default_tempdir" not in callers.split()
    )
    assert outside == [], f"the server wrote outside its data folder: {outside}"
    for file in (p for root in (data_dir, server_tmp) for p in root.rglob("*") if p.is_file()):
        leaked = _leak(file, chunks)
        assert leaked is None, f"{file} holds plaintext photo bytes at offset {leaked}"
    assert not list((data_dir / "run" / "archives").iterdir())  # nothing left behind


def _leak_in(data: bytes, chunks: set[bytes]) -> int | None:
    return next((i for i in range(len(data) - 31) if data[i : i + 32] in chunks), None)
