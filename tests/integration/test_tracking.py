# ruff: noqa: F811  (pytest fixtures imported from test_vault are parameters here)
"""Series per site, capture dates, measurements and aligned comparison through the services."""

from __future__ import annotations

import io
from datetime import date

import cv2
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault
from skinvault.db.models import AuditEvent, Measurement
from skinvault.errors import AccessDenied, RequestInvalid
from skinvault.services import admin, jobs, photo_reads, photo_store, tracking
from tests.integration.test_vault import OPERATOR, _clinician, patient, vault  # noqa: F401
from tests.unit.test_tracking_align import _texture
from tests.unit.test_tracking_measure import _photo


def _jpeg(bgr: np.ndarray, taken: str | None = None) -> bytes:
    im = Image.fromarray(bgr[:, :, ::-1].copy())
    buf = io.BytesIO()
    exif = Image.Exif()
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken
    im.save(buf, "JPEG", quality=95, exif=exif)
    return buf.getvalue()


def _me(vault: Vault, patient_id: str) -> Actor:
    from skinvault.db.models import Patient

    with vault.sessions() as s:
        p = s.get(Patient, patient_id)
        assert p is not None and p.user_id
        return Actor(p.user_id, Role.PATIENT, "Pat")


def test_series_is_ordered_by_capture_date_read_before_scrubbing(
    vault: Vault, patient: str
) -> None:
    lee = _clinician(vault)
    later = photo_store.store_photo(
        vault,
        patient_id=patient,
        actor=lee,
        site="forearm-back-left",
        data=_jpeg(_photo(0.20)[0], "2026:03:02 10:00:00"),
    )
    earlier = photo_store.store_photo(
        vault,
        patient_id=patient,
        actor=lee,
        site="forearm-back-left",
        data=_jpeg(_photo(0.10)[0], "2025:11:20 09:00:00"),
    )
    photo_store.store_photo(
        vault, patient_id=patient, actor=lee, site="face", data=_jpeg(_photo(0.0)[0])
    )
    assert earlier.taken_on == date(2025, 11, 20)
    # The date is kept as a field; the scrubbed file no longer carries it.
    got = photo_reads.read_photo(vault, photo_id=earlier.id, actor=lee, purpose="care")
    assert Image.open(io.BytesIO(got.data)).getexif().get_ifd(0x8769).get(0x9003) is None

    for p in (earlier, later):
        tracking.measure_photo(vault, p.id)
    entries = tracking.series(
        vault, actor=_me(vault, patient), patient_id=patient, site="forearm-back-left"
    )
    assert [e.photo_id for e in entries] == [earlier.id, later.id]
    assert [e.taken_on_source for e in entries] == ["photo", "photo"]
    m0, m1 = (e.measurement for e in entries)
    assert m0 is not None and m1 is not None
    assert abs(m0.depigmented_percent - 10) < 3 and abs(m1.depigmented_percent - 20) < 3
    bmap = tracking.body_map(vault, actor=lee, patient_id=patient)
    assert bmap["forearm-back-left"].photos == 2 and bmap["face"].photos == 1

    with vault.sessions() as s:
        kinds = {m.kind for m in s.scalars(select(Measurement))}
        actions = [e.action for e in s.scalars(select(AuditEvent))]
    assert kinds == {"depigmented-share", "skin-share"}
    assert actions.count("photo:measure") == 2 and actions.count("measurement:view") == 2


def test_someone_outside_the_care_team_sees_no_series(vault: Vault, patient: str) -> None:
    lee = _clinician(vault)
    photo_store.store_photo(
        vault, patient_id=patient, actor=lee, site="face", data=_jpeg(_photo(0.1)[0])
    )
    other = admin.create_user(
        vault,
        role=Role.CLINICIAN,
        email="x@clinic.example",
        password="another long passphrase",
        actor=OPERATOR,
    )
    stranger = Actor(other.user_id, Role.CLINICIAN, "Dr. X")
    with pytest.raises(AccessDenied):
        tracking.series(vault, actor=stranger, patient_id=patient, site="face")
    with pytest.raises(AccessDenied):
        tracking.body_map(vault, actor=stranger, patient_id=patient)


def test_annotate_corrects_date_and_details(vault: Vault, patient: str) -> None:
    me = _me(vault, patient)
    p = photo_store.store_photo(
        vault, patient_id=patient, actor=me, site="knee-left", data=_jpeg(_photo(0.1)[0])
    )
    assert p.taken_on is None
    details = tracking.check_details("tacrolimus 0.1 %", "daylight", "30-cm", True)
    tracking.annotate(vault, actor=me, photo_id=p.id, taken_on=date(2026, 1, 5), details=details)
    [entry] = tracking.series(vault, actor=me, patient_id=patient, site="knee-left")
    assert entry.taken_on == date(2026, 1, 5) and entry.taken_on_source == "person"
    assert entry.details == details
    with pytest.raises(RequestInvalid):
        tracking.check_details("", "moonlight", "", None)
    with pytest.raises(RequestInvalid):
        tracking.annotate(vault, actor=me, photo_id=p.id, site="left-arm")


def test_compare_aligns_two_visits_or_says_it_cannot(vault: Vault, patient: str) -> None:
    lee = _clinician(vault)
    ref = _texture(seed=21)
    h, w = ref.shape[:2]
    shift = np.array([[1, 0, 18], [0, 1, 11], [0, 0, 1]], np.float64)
    mov = cv2.warpPerspective(ref, np.linalg.inv(shift), (w, h), borderMode=cv2.BORDER_REFLECT)
    a = photo_store.store_photo(
        vault, patient_id=patient, actor=lee, site="shin-right", data=_jpeg(ref)
    )
    b = photo_store.store_photo(
        vault, patient_id=patient, actor=lee, site="shin-right", data=_jpeg(mov)
    )
    c = photo_store.store_photo(
        vault, patient_id=patient, actor=lee, site="shin-right", data=_jpeg(_texture(seed=99))
    )
    got = tracking.compare(vault, actor=lee, reference_id=a.id, moving_id=b.id)
    assert got.confident and got.aligned_jpeg
    assert abs(got.matrix[0][2] - 18) < 1.5
    no = tracking.compare(vault, actor=lee, reference_id=a.id, moving_id=c.id)
    assert not no.confident and no.aligned_jpeg is None


def test_the_upload_measurement_job_keeps_a_measurement_a_person_made_first(
    vault: Vault, patient: str
) -> None:
    lee = _clinician(vault)
    stored = photo_store.store_photo(
        vault, patient_id=patient, actor=lee, site="forearm-left", data=_jpeg(_photo(0.1)[0])
    )  # its background measurement is queued, not run yet
    mine = tracking.measure_photo(vault, stored.id, actor=lee, exclude=[(250, 150, 300, 300)])
    jobs.run_pending(vault)  # now the upload's job runs
    with vault.sessions() as s:
        by = set(
            s.scalars(select(Measurement.measured_by).where(Measurement.photo_id == stored.id))
        )
    assert by == {lee.audit_name}  # the job did not measure the whole photo over it
    entry = tracking.series(vault, actor=lee, patient_id=patient, site="forearm-left")[0]
    assert entry.measurement == mine
