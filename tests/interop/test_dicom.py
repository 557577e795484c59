"""DICOM export checked by dciodvfy (dicom3tools) and accepted by a real Orthanc.

Orthanc accepts files that dciodvfy rejects, so every export goes through both.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pydicom
import pytest
from PIL import Image
from pydicom.encaps import generate_fragmented_frames
from pynetdicom import AE
from pynetdicom.sop_class import VLPhotographicImageStorage

from skinvault.interop.dicom import DicomPhoto, build, jpeg_frame
from skinvault.photos.scrub import scrub
from tests import factories
from tests.interop.conftest import OrthancServer, dciodvfy

NOW = datetime(2026, 5, 3, 10, 11, 12, tzinfo=UTC)


def _jpeg(**options: object) -> bytes:
    buf = io.BytesIO()
    mode = str(options.pop("mode", "RGB"))
    factories.image(mode, (96, 64)).save(buf, "JPEG", quality=90, **options)
    scrubbed, _ = scrub(buf.getvalue())
    return scrubbed


def _photo(
    data: bytes, fmt: str = "jpeg", site: str | None = "left-hand", **kw: object
) -> DicomPhoto:
    return DicomPhoto(
        photo_id=str(kw.get("photo_id", "ph-1")),
        patient_id="pt-1",
        patient_name="Ann Smith",
        site=site,
        site_label=site.replace("-", " ") if site else None,
        data=data,
        format=fmt,
        taken_on=None,
        uploaded_at=NOW,
        deidentified=bool(kw.get("deidentified", False)),
    )


def _fragment(part10: bytes) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(part10))
    (frame,) = list(generate_fragmented_frames(ds.PixelData, number_of_frames=1))
    (fragment,) = frame  # one frame in one fragment
    return bytes(fragment)


JPEG_CASES = [
    pytest.param({"subsampling": 2}, "YBR_FULL_422", id="4:2:0"),
    pytest.param({"subsampling": 1}, "YBR_FULL_422", id="4:2:2"),
    pytest.param({"subsampling": 0}, "YBR_FULL_422", id="4:4:4"),  # the IOD allows no YBR_FULL
    pytest.param({"mode": "L"}, "MONOCHROME2", id="grey"),
]


@pytest.mark.parametrize(("options", "photometric"), JPEG_CASES)
def test_a_baseline_jpeg_is_encapsulated_unchanged_and_valid(
    options: dict[str, object], photometric: str, tmp_path: Path
) -> None:
    data = _jpeg(**options)
    part10 = build(_photo(data))
    assert part10.transfer_syntax == "1.2.840.10008.1.2.4.50"
    assert part10.photometric == photometric
    assert part10.conversion is None
    fragment = _fragment(part10.data)
    assert fragment.rstrip(b"\x00") == data.rstrip(b"\x00") and len(fragment) % 2 == 0
    ds = pydicom.dcmread(io.BytesIO(part10.data))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.77.1.4"
    assert ds.Modality == "XC"
    assert (ds.Rows, ds.Columns) == (64, 96)
    assert ds.PhotometricInterpretation == photometric
    region = ds.AnatomicRegionSequence[0]
    assert (region.CodingSchemeDesignator, region.CodeValue) == ("SCT", "33712006")  # skin of hand
    assert region.AnatomicRegionModifierSequence[0].CodeValue == "7771000"  # left
    assert ds.ImageLaterality == "L"
    path = tmp_path / "photo.dcm"
    path.write_bytes(part10.data)
    checked = dciodvfy(path)
    assert checked.errors == [], checked.output


def test_the_same_photo_exported_twice_has_the_same_uids() -> None:
    data = _jpeg()
    first, second = build(_photo(data)), build(_photo(data))
    assert first.data == second.data
    other_photo_same_site = build(_photo(data, photo_id="ph-2"))
    other_site = build(_photo(data, site="face", photo_id="ph-3"))
    assert other_photo_same_site.sop_instance_uid != first.sop_instance_uid
    assert other_photo_same_site.series_instance_uid == first.series_instance_uid
    assert other_site.series_instance_uid != first.series_instance_uid
    assert other_site.study_instance_uid == first.study_instance_uid


def test_a_deidentified_export_names_no_patient_and_links_to_nothing(tmp_path: Path) -> None:
    data = _jpeg()
    named = build(_photo(data))
    part10 = build(_photo(data, deidentified=True))
    ds = pydicom.dcmread(io.BytesIO(part10.data))
    assert str(ds.PatientName) == ""
    assert "pt-1" not in ds.PatientID and b"Ann" not in part10.data
    assert ds.PatientIdentityRemoved == "YES"
    assert part10.study_instance_uid != named.study_instance_uid
    assert "ContentDate" not in ds and "AcquisitionDateTime" not in ds
    path = tmp_path / "deid.dcm"
    path.write_bytes(part10.data)
    assert dciodvfy(path).errors == []


def test_the_day_a_photo_was_taken_is_its_acquisition_date(tmp_path: Path) -> None:
    from dataclasses import replace
    from datetime import date

    part10 = build(replace(_photo(_jpeg()), taken_on=date(2026, 4, 30)))
    ds = pydicom.dcmread(io.BytesIO(part10.data))
    assert ds.AcquisitionDateTime == "20260430"
    assert (ds.ContentDate, ds.ContentTime) == ("20260503", "101112")
    path = tmp_path / "dated.dcm"
    path.write_bytes(part10.data)
    assert dciodvfy(path).errors == []


OTHER_FORMATS = [
    pytest.param(lambda: _jpeg(progressive=True), "jpeg", id="progressive-jpeg"),
    pytest.param(factories.png, "png", id="png"),
    pytest.param(factories.webp, "webp", id="webp"),
    pytest.param(factories.heif, "heif", id="heif"),
]


@pytest.mark.parametrize(("make", "fmt"), OTHER_FORMATS)
def test_other_formats_are_a_stated_conversion_to_native_pixels(
    make: object, fmt: str, tmp_path: Path
) -> None:
    raw = make()  # type: ignore[operator]
    data = raw if fmt == "jpeg" else scrub(raw)[0]
    part10 = build(_photo(data, fmt=fmt, site="face"))
    assert part10.transfer_syntax == "1.2.840.10008.1.2.1"
    assert part10.conversion and "decoded to uncompressed pixels" in part10.conversion
    ds = pydicom.dcmread(io.BytesIO(part10.data))
    assert ds.DerivationDescription == part10.conversion
    assert ds.ImageLaterality == "U"
    decoded = Image.open(io.BytesIO(data)) if fmt != "heif" else None
    if decoded is not None:
        assert (ds.Columns, ds.Rows) == decoded.size
        assert ds.pixel_array.shape[:2] == (decoded.height, decoded.width)
    path = tmp_path / "photo.dcm"
    path.write_bytes(part10.data)
    checked = dciodvfy(path)
    assert checked.errors == [], checked.output


def test_dciodvfy_fails_a_broken_file(tmp_path: Path) -> None:
    ds = pydicom.dcmread(io.BytesIO(build(_photo(_jpeg())).data))
    del ds.Rows
    del ds.Modality
    ds.PhotometricInterpretation = "PALETTE COLOR"
    path = tmp_path / "broken.dcm"
    ds.save_as(path, enforce_file_format=True)
    checked = dciodvfy(path)
    assert len(checked.errors) >= 2, checked.output
    assert any("Rows" in e for e in checked.errors)
    assert any("Modality" in e for e in checked.errors)


def test_a_jpeg_without_a_frame_header_is_refused_as_damaged() -> None:
    from skinvault.errors import DamagedFile

    with pytest.raises(DamagedFile):
        jpeg_frame(b"\xff\xd8\xff\xe0\x00\x04ab\xff\xd9")


# -- a real Orthanc --------------------------------------------------------------------


def _check_in_orthanc(orthanc: OrthancServer, part10: bytes, jpeg: bytes, sop_uid: str) -> None:
    with orthanc.client() as client:
        found = client.post("/tools/lookup", content=sop_uid).json()
        ids = [f["ID"] for f in found if f["Type"] == "Instance"]
        assert len(ids) == 1, found
        raw = client.get(f"/instances/{ids[0]}/frames/0/raw").content
        assert raw.rstrip(b"\x00") == jpeg.rstrip(b"\x00")
        assert len(raw) - len(jpeg) in (0, 1)
        preview = client.get(f"/instances/{ids[0]}/preview")
        assert preview.status_code == 200
        image = Image.open(io.BytesIO(preview.content))
        assert image.size == Image.open(io.BytesIO(jpeg)).size
        tags = client.get(f"/instances/{ids[0]}/simplified-tags").json()
        assert tags["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.77.1.4"
        client.delete(f"/instances/{ids[0]}")


def test_orthanc_accepts_the_export_by_rest_post_instances(orthanc: OrthancServer) -> None:
    jpeg = _jpeg(subsampling=1)
    part10 = build(_photo(jpeg, photo_id="rest-1"))
    with orthanc.client() as client:
        answer = client.post(
            "/instances", content=part10.data, headers={"Content-Type": "application/dicom"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["Status"] == "Success"
    _check_in_orthanc(orthanc, part10.data, jpeg, part10.sop_instance_uid)


def test_orthanc_accepts_the_export_by_c_store(orthanc: OrthancServer) -> None:
    jpeg = _jpeg()
    part10 = build(_photo(jpeg, photo_id="cstore-1"))
    ae = AE(ae_title="SKINVAULT")
    ae.add_requested_context(VLPhotographicImageStorage, "1.2.840.10008.1.2.4.50")
    assoc = ae.associate(orthanc.host, orthanc.dicom_port, ae_title=orthanc.aet)
    assert assoc.is_established
    try:
        status = assoc.send_c_store(pydicom.dcmread(io.BytesIO(part10.data)))
    finally:
        assoc.release()
    assert status.Status == 0x0000
    _check_in_orthanc(orthanc, part10.data, jpeg, part10.sop_instance_uid)


def test_orthanc_accepts_the_export_by_stow_rs(orthanc: OrthancServer) -> None:
    if not orthanc.dicomweb:
        pytest.fail("orthanc-dicomweb is not installed: run scripts/test")
    jpeg = _jpeg(subsampling=0)
    part10 = build(_photo(jpeg, photo_id="stow-1"))
    boundary = "skinvault-boundary"
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + part10.data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with orthanc.client() as client:
        answer = client.post(
            "/dicom-web/studies",
            content=body,
            headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                "Accept": "application/dicom+json",
            },
        )
    assert answer.status_code == 200, answer.text
    assert "00081199" in answer.json()  # ReferencedSOPSequence: stored
    _check_in_orthanc(orthanc, part10.data, jpeg, part10.sop_instance_uid)
