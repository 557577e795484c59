"""Sending a photo to DICOM destinations in the settings: a real Orthanc, C-STORE and STOW-RS."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from skinvault.actors import Actor, Role
from skinvault.config import load_settings
from skinvault.errors import DestinationUnavailable
from skinvault.services import admin, api_tokens, dicom_send, jobs, record_export
from skinvault.services.care import start_care
from skinvault.services.history import access_history
from skinvault.services.photo_reads import read_photo
from skinvault.services.photo_store import store_photo
from skinvault.web.app import create_app
from tests import factories
from tests.integration.conftest import database_url  # noqa: F401
from tests.interop.conftest import OrthancServer
from tests.ports import free_port

OPERATOR = Actor.system("test")


@pytest.fixture
def app_world(
    database_url: str,  # noqa: F811
    tmp_path: Path,
    orthanc: OrthancServer,
) -> Iterator[dict[str, Any]]:
    closed = free_port()  # nothing listens here
    later = free_port()  # nothing listens here until a test forwards it to Orthanc
    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        dicom_destinations={
            "pacs": f"dicom://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}",
            "web": f"{orthanc.http}/dicom-web",
            "down": f"dicom://NOBODY@127.0.0.1:{closed}",
            "later": f"dicom://{orthanc.aet}@127.0.0.1:{later}",
        },
        dicom_send_attempts=2,
        job_retry_seconds=1,
        job_attempts=2,
    )
    app = create_app(settings)
    vault = app.state.vault
    made = {}
    for key, role, name in [
        ("ann", Role.PATIENT, "Ann Smith"),
        ("lee", Role.CLINICIAN, "Dr. Lee"),
        ("ng", Role.EDUCATOR, "Prof. Ng"),
    ]:
        user = admin.create_user(
            vault,
            role=role,
            email=f"{key}@example.org",
            password="a long enough password",
            actor=OPERATOR,
            name=name,
        )
        made[key] = (Actor(user.user_id, role, name), user.patient_id)
    ann, patient_id = made["ann"]
    lee, _ = made["lee"]
    start_care(vault, patient_id=patient_id, member_id=lee.id, actor=OPERATOR)
    photo = store_photo(
        vault, patient_id=patient_id, data=factories.jpeg(), actor=ann, site="right-foot"
    )
    tokens = {k: api_tokens.issue_api_token(vault, actor=a).token for k, (a, _) in made.items()}
    jobs.run_pending(vault)  # the upload's thumbnail: the queue holds only sends from here on
    client = TestClient(app)
    yield {
        "client": client,
        "vault": vault,
        "patient_id": patient_id,
        "photo_id": photo.id,
        "lee": lee,
        "tokens": tokens,
        "orthanc": orthanc,
        "later_port": later,
        "jpeg": read_photo(vault, photo_id=photo.id, actor=ann, purpose="care").data,
    }
    client.close()
    vault.close()


def _auth(w: dict[str, Any], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {w['tokens'][who]}"}


@pytest.mark.parametrize("destination", ["pacs", "web"])
def test_a_clinician_sends_a_photo_and_the_pacs_holds_the_same_jpeg(
    app_world: dict[str, Any], destination: str
) -> None:
    w = app_world
    answer = w["client"].post(
        f"/api/v1/photos/{w['photo_id']}/send",
        json={"destination": destination, "purpose": "care"},
        headers=_auth(w, "lee"),
    )
    assert answer.status_code == 200, answer.text
    sent = answer.json()
    assert sent["attempts"] == 1
    with w["orthanc"].client() as pacs:
        found = pacs.post("/tools/lookup", content=sent["sop_instance_uid"]).json()
        (instance,) = [f["ID"] for f in found if f["Type"] == "Instance"]
        raw = pacs.get(f"/instances/{instance}/frames/0/raw").content
        assert raw.rstrip(b"\x00") == w["jpeg"].rstrip(b"\x00")
        preview = Image.open(io.BytesIO(pacs.get(f"/instances/{instance}/preview").content))
        assert preview.size == Image.open(io.BytesIO(w["jpeg"])).size
        pacs.delete(f"/instances/{instance}")
    log = w["client"].get(
        f"/api/v1/patients/{w['patient_id']}/dicom-sends", headers=_auth(w, "ann")
    )
    assert log.status_code == 200
    assert [s["outcome"] for s in log.json()["sends"]] == ["done"]
    texts = [e.text for e in access_history(w["vault"], w["patient_id"])]
    sent_lines = [t for t in texts if "sent, to a connected imaging system (PACS), your" in t]
    assert sent_lines and all("foot" in t.lower() for t in sent_lines), texts


def test_a_send_nobody_answers_is_retried_recorded_as_failed_and_shown(
    app_world: dict[str, Any],
) -> None:
    w = app_world
    waits: list[float] = []
    with pytest.raises(DestinationUnavailable, match="after 2 attempts"):
        dicom_send.send_photo(
            w["vault"],
            photo_id=w["photo_id"],
            actor=w["lee"],
            destination="down",
            wait=waits.append,
        )
    assert waits == [1.0]
    answer = w["client"].post(
        f"/api/v1/photos/{w['photo_id']}/send",
        json={"destination": "down"},
        headers=_auth(w, "lee"),
    )
    assert answer.status_code == 202, answer.text  # not taken yet: the queue tries again
    queued = answer.json()
    assert queued["delivered"] is False and queued["retry_job"]
    sends = dicom_send.sends_for(w["vault"], w["patient_id"])
    assert [s.outcome for s in sends] == ["failed", "failed"]
    assert "no association" in sends[0].detail and "the queue tries again" in sends[1].detail
    # The queue: try 1 fails quietly (its error is on the job), try 2 is the last (job_attempts
    # is 2 here): audited as failed, and the job is dead with its error.
    for _ in range(2):
        time.sleep(2.1)  # job_retry_seconds=1, doubling
        assert jobs.run_pending(w["vault"]) == 1
    (job,) = [j for j in jobs.list_jobs(w["vault"]) if j.id == queued["retry_job"]]
    assert job.state == "dead" and "no association" in (job.last_error or "")
    sends = dicom_send.sends_for(w["vault"], w["patient_id"])
    assert [s.outcome for s in sends] == ["failed", "failed", "failed"]
    assert "gave up after try 2" in sends[-1].detail


def _forward(listen_port: int, to: tuple[str, int]) -> socket.socket:
    """A TCP forwarder on ``listen_port`` (the PACS "comes back"); close the socket to stop."""
    server = socket.create_server(("127.0.0.1", listen_port))

    def pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        for s in (a, b):  # one side ended: end both (the other thread then stops too)
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = server.accept()
                upstream = socket.create_connection(to)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server


def test_a_send_the_pacs_missed_is_delivered_by_the_queue_when_it_is_back(
    app_world: dict[str, Any],
) -> None:
    w = app_world
    answer = w["client"].post(
        f"/api/v1/photos/{w['photo_id']}/send",
        json={"destination": "later"},
        headers=_auth(w, "lee"),
    )
    assert answer.status_code == 202, answer.text
    time.sleep(1.1)
    orthanc = w["orthanc"]
    server = _forward(w["later_port"], (orthanc.host, orthanc.dicom_port))
    try:
        assert jobs.run_pending(w["vault"]) == 1
    finally:
        server.close()
    (job,) = [j for j in jobs.list_jobs(w["vault"]) if j.id == answer.json()["retry_job"]]
    assert job.state == "done"
    sends = dicom_send.sends_for(w["vault"], w["patient_id"])
    assert [s.outcome for s in sends] == ["failed", "done"]
    assert "queued try 1" in sends[-1].detail
    with orthanc.client() as pacs:
        uid = answer.json()["sop_instance_uid"]
        found = pacs.post("/tools/lookup", content=uid).json()
        (instance,) = [f["ID"] for f in found if f["Type"] == "Instance"]
        raw = pacs.get(f"/instances/{instance}/frames/0/raw").content
        assert raw.rstrip(b"\x00") == w["jpeg"].rstrip(b"\x00")
        pacs.delete(f"/instances/{instance}")


def test_a_queued_send_is_decided_again_and_stops_when_consent_is_gone(
    app_world: dict[str, Any],
) -> None:
    """The queue re-decides as the person who asked: after their care relationship ends,
    the retry is refused (audited denied) and the job ends without another try."""
    from skinvault.services.care import end_care

    w = app_world
    answer = w["client"].post(
        f"/api/v1/photos/{w['photo_id']}/send",
        json={"destination": "down"},
        headers=_auth(w, "lee"),
    )
    assert answer.status_code == 202
    end_care(w["vault"], patient_id=w["patient_id"], member_id=w["lee"].id, actor=OPERATOR)
    time.sleep(1.1)
    assert jobs.run_pending(w["vault"]) == 1
    (job,) = [j for j in jobs.list_jobs(w["vault"]) if j.id == answer.json()["retry_job"]]
    assert job.state == "done" and "Permanent" in (job.last_error or "")  # no more tries
    events = [
        e for e in record_export._events(w["vault"], w["patient_id"]) if e.action == "photo:send"
    ]
    assert [e.outcome for e in events][-1] == "denied"


def test_sending_is_decided_by_policy_and_unknown_destinations_are_refused(
    app_world: dict[str, Any],
) -> None:
    w = app_world
    refused = w["client"].post(
        f"/api/v1/photos/{w['photo_id']}/send",
        json={"destination": "pacs", "purpose": "teaching"},
        headers=_auth(w, "ng"),
    )
    assert refused.status_code == 403
    unknown = w["client"].post(
        f"/api/v1/photos/{w['photo_id']}/send",
        json={"destination": "elsewhere"},
        headers=_auth(w, "lee"),
    )
    assert unknown.status_code == 404
    assert dicom_send.sends_for(w["vault"], w["patient_id"]) == []


def test_a_clinician_sends_from_the_photo_page_and_a_destination_down_is_said_plainly(
    app_world: dict[str, Any],
) -> None:
    """The portal's "Send to PACS/EHR" button: the real Orthanc gets the photo; a destination
    that is down gives a plain sentence on the page, never a 5xx; both are audited."""
    from tests.integration.test_portal_pages import _csrf, _sign_in, _user

    w = app_world
    vault, client, pid = w["vault"], w["client"], w["patient_id"]
    kim, _, secret = _user(vault, Role.CLINICIAN, "kim@clinic.example", "Dr. Kim")
    start_care(vault, patient_id=pid, member_id=kim.id, actor=OPERATOR)
    _sign_in(client, "kim@clinic.example", secret)
    page = client.get(f"/portal/photos/{w['photo_id']}")
    assert page.status_code == 200 and "Send to PACS/EHR" in page.text
    assert all(f'<option value="{d}">' in page.text for d in ("pacs", "web", "down"))
    csrf = _csrf(page.text)
    url = f"/portal/photos/{w['photo_id']}/send"

    sent = client.post(url, data={"csrf": csrf, "destination": "pacs"})
    assert sent.status_code == 200, sent.text
    assert "Sent to pacs. It arrived." in sent.text
    with w["orthanc"].client() as pacs:
        found = pacs.post(
            "/tools/find", json={"Level": "Instance", "Query": {"PatientID": pid}}
        ).json()
        assert found, "Orthanc holds no instance of the patient"
        for instance in found:
            pacs.delete(f"/instances/{instance}")

    down = client.post(url, data={"csrf": csrf, "destination": "down"})
    assert down.status_code == 200, down.text  # the destination's fault: a page, not a 5xx
    assert 'role="alert"' in down.text
    assert "Not sent yet: down did not take the photo" in down.text
    assert "no association" in down.text and "tries again in the background" in down.text
    unknown = client.post(url, data={"csrf": csrf, "destination": "elsewhere"})
    assert unknown.status_code == 404 and "no DICOM destination" in unknown.text
    assert client.post(url, data={"destination": "pacs"}).status_code == 401  # no CSRF token

    sends = dicom_send.sends_for(vault, pid)
    assert [(s.outcome, s.actor.endswith("Dr. Kim")) for s in sends] == [
        ("done", True),
        ("failed", True),
    ]
    texts = [e.text for e in access_history(vault, pid)]
    assert any(
        t.startswith("Dr. Kim sent, to a connected imaging system (PACS), your") for t in texts
    )

    client.post("/logout")
    _sign_in(client, "ann@example.org", None)
    own = client.get(f"/portal/photos/{w['photo_id']}")
    assert own.status_code == 200 and "Send to PACS/EHR" not in own.text  # clinicians only
