"""DICOM Part 10 files (VL Photographic Image Storage) from a stored photo: pure, on bytes.

    >>> part10 = build(DicomPhoto(photo_id="p1", patient_id="pt1", patient_name="Ann Smith",
    ...                           site="left-hand", data=jpeg_bytes, format="jpeg",
    ...                           width=640, height=480, taken_on=None,
    ...                           uploaded_at=now))                     # doctest: +SKIP
    >>> part10.transfer_syntax, part10.photometric
    ('1.2.840.10008.1.2.4.50', 'YBR_FULL_422')

A JPEG is encapsulated **unchanged** (one fragment, one frame) in the
transfer syntax of its coding process: baseline → JPEG Baseline (Process 1),
extended → JPEG Extended (Process 2 & 4), lossless → JPEG Lossless (Process
14, or its first-order-prediction SV1 form). The photometric interpretation is
read from the JPEG itself: one component → MONOCHROME2; three with an Adobe
marker saying "no transform" → RGB; otherwise YCbCr, ``YBR_FULL_422`` — the
only YCbCr value the VL image IODs allow for lossy JPEG, used for 4:2:2, 4:2:0
and 4:4:4 alike (dciodvfy rejects ``YBR_FULL`` in this IOD).

Everything else is a stated conversion to native (uncompressed) pixels in
Explicit VR Little Endian, so no pixel changes beyond the decode: progressive
or arithmetic-coded JPEGs (no current DICOM transfer syntax carries them),
CMYK JPEGs, PNG, WebP, HEIC/HEIF and TIFF. Alpha is flattened onto white, and
16-bit samples are reduced to 8 bits; :attr:`Part10.conversion` says what was
done, and the file carries it in Derivation Description.

UIDs are derived (UUID-derived ``2.25.`` form) from skinvault's own ids, so the
same photo exported twice has the same SOP Instance UID, the photos of one
patient share a Study Instance UID and those of one body site share a Series
Instance UID. A de-identified export names no patient, and its study and series
are derived from the photo alone so nothing links it to the patient's other
photos. Nothing is written that the record does not hold: no birth date, sex,
device or referring physician (those type-2 attributes are present and empty).
"""

from __future__ import annotations

import hashlib
import io
import struct
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    VLPhotographicImageStorage,
)

from skinvault import __version__
from skinvault.errors import DamagedFile
from skinvault.interop.sites import LATERALITY, SNOMED_DICOM, coded
from skinvault.photos.limits import open_image

#: Our implementation's UID (derived once, like every other UID here).
IMPLEMENTATION_UID = "2.25." + str(uuid.uuid5(uuid.NAMESPACE_URL, "urn:skinvault:dicom").int)
IMPLEMENTATION_VERSION = f"SKINVAULT_{__version__}"[:16]
DICOM_MEDIA_TYPE = "application/dicom"

_SOF = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive", 0xC3: "lossless"}
_SOF_UNSUPPORTED = {0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def uid_for(*parts: str) -> str:
    """A stable DICOM UID for a tuple of our ids: ``2.25.`` + the decimal of a name-based UUID."""
    return "2.25." + str(uuid.uuid5(uuid.NAMESPACE_URL, "urn:skinvault:" + ":".join(parts)).int)


@dataclass(frozen=True)
class JpegFrame:
    """What the frame header (SOFn) and an Adobe APP14 marker say about a JPEG's coding."""

    process: str  # baseline | extended | progressive | lossless | other
    precision: int
    rows: int
    columns: int
    sampling: tuple[tuple[int, int], ...]  # (H, V) per component
    adobe_transform: int | None  # None: no APP14 marker
    predictor: int | None = None  # lossless only: the first scan's selection value

    @property
    def components(self) -> int:
        return len(self.sampling)

    @property
    def subsampled(self) -> bool:
        return len(set(self.sampling)) > 1


def jpeg_frame(data: bytes) -> JpegFrame:
    """Parse the markers up to the first scan; :class:`DamagedFile` if there is no frame."""
    if not data.startswith(b"\xff\xd8"):
        raise DamagedFile("not a JPEG: no start-of-image marker")
    pos, adobe, frame = 2, None, None
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise DamagedFile(f"JPEG marker expected at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        body = data[pos + 4 : pos + 2 + length]
        if length < 2 or len(body) != length - 2:
            raise DamagedFile(f"JPEG segment at byte {pos} runs past the end")
        if marker == 0xEE and body.startswith(b"Adobe") and len(body) >= 12:
            adobe = body[11]
        elif marker in _SOF or marker in _SOF_UNSUPPORTED:
            if len(body) < 6:
                raise DamagedFile("JPEG frame header is too short")
            precision, rows, columns, count = struct.unpack(">BHHB", body[:6])
            if len(body) < 6 + 3 * count or count == 0:
                raise DamagedFile("JPEG frame header lists more components than it holds")
            sampling = tuple((body[7 + 3 * i] >> 4, body[7 + 3 * i] & 0x0F) for i in range(count))
            frame = (_SOF.get(marker, "other"), precision, rows, columns, sampling)
        elif marker == 0xDA:
            if frame is None:
                break
            predictor = body[1 + 2 * body[0]] if frame[0] == "lossless" and body else None
            return JpegFrame(*frame, adobe_transform=adobe, predictor=predictor)
        pos += 2 + length
    raise DamagedFile("the JPEG has no frame header before its first scan")


def jpeg_transfer_syntax(frame: JpegFrame) -> UID | None:
    """The transfer syntax that carries this JPEG unchanged, or None when none does."""
    if frame.process == "baseline" and frame.precision == 8:
        return JPEGBaseline8Bit
    if frame.process in ("baseline", "extended") and frame.precision in (8, 12):
        return JPEGExtended12Bit
    if frame.process == "lossless":
        return JPEGLosslessSV1 if frame.predictor == 1 else JPEGLossless
    return None


def jpeg_photometric(frame: JpegFrame) -> str | None:
    """The Photometric Interpretation matching the JPEG's colour coding, or None (CMYK, …)."""
    if frame.components == 1:
        return "MONOCHROME2"
    if frame.components != 3:
        return None
    if frame.adobe_transform == 0:
        return "RGB"
    if frame.process == "lossless":
        return "RGB" if not frame.subsampled else None
    # The VL image IODs enumerate YBR_FULL_422 (not YBR_FULL) for lossy JPEG: in a compressed
    # syntax it says "YCbCr"; the JPEG's own frame header says how the chroma is sampled.
    return "YBR_FULL_422"


@dataclass(frozen=True)
class DicomPhoto:
    """The record's facts about one photo that a DICOM file may carry."""

    photo_id: str
    patient_id: str
    patient_name: str
    site: str | None
    site_label: str | None
    data: bytes  # the scrubbed, stored bytes
    format: str  # jpeg | png | webp | heif | tiff
    taken_on: date | None
    uploaded_at: datetime
    deidentified: bool = False
    issuer: str = "skinvault"


@dataclass(frozen=True)
class Part10:
    data: bytes
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    transfer_syntax: str
    photometric: str
    conversion: str | None  # None: the stored JPEG is encapsulated unchanged


def _pn(name: str) -> str:
    # A display name is free text; the PN component separators must not appear in it.
    cleaned = " ".join(name.replace("^", " ").replace("=", " ").replace("\\", " ").split())
    return cleaned[:64]


def _native(photo: DicomPhoto) -> tuple[Dataset, str, str]:
    """Decoded pixels (RGB or MONOCHROME2, 8-bit) and the sentence describing the conversion."""
    try:
        opened = open_image(photo.data)
        opened.load()
        img: Image.Image = opened
    except (
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        RuntimeError,
    ) as exc:
        # (pillow-heif raises EOFError for a truncated HEVC stream the scrubber accepted)
        raise DamagedFile(f"the stored photo cannot be decoded for DICOM: {exc}") from exc
    steps = [f"{photo.format.upper()} decoded to uncompressed pixels"]
    lossy = photo.format in ("jpeg", "heif")
    if photo.format == "webp":
        lossy = b"VP8 " in photo.data[12:40]
    if photo.format == "tiff":
        lossy = str(img.info.get("compression", "")).startswith("jpeg")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        background = Image.new("RGB", img.size, "white")
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        img = background
        steps.append("transparency flattened onto white")
    if img.mode in ("I;16", "I;16B", "I", "F"):
        steps.append("16-bit samples reduced to 8 bits")
    if img.mode == "CMYK":
        steps.append("CMYK converted to RGB")
    if img.mode not in ("L", "RGB"):
        img = img.convert("L" if img.mode in ("1", "I;16", "I;16B", "I", "F") else "RGB")
    ds = Dataset()
    ds.Rows, ds.Columns = img.height, img.width
    ds.SamplesPerPixel = 1 if img.mode == "L" else 3
    ds.PhotometricInterpretation = "MONOCHROME2" if img.mode == "L" else "RGB"
    if img.mode == "RGB":
        ds.PlanarConfiguration = 0
    raw = img.tobytes()
    ds.PixelData = raw + (b"\x00" if len(raw) % 2 else b"")
    ds["PixelData"].VR = "OB"
    ds.LossyImageCompression = "01" if lossy else "00"
    if lossy:
        ds.LossyImageCompressionMethod = "ISO_10918_1" if photo.format == "jpeg" else "ISO_23008_2"
        if photo.format in ("webp", "tiff"):
            del ds.LossyImageCompressionMethod
    return ds, str(ds.PhotometricInterpretation), "; ".join(steps)


def _pixels(photo: DicomPhoto) -> tuple[Dataset, UID, str, str | None]:
    if photo.format == "jpeg":
        frame = jpeg_frame(photo.data)
        syntax, photometric = jpeg_transfer_syntax(frame), jpeg_photometric(frame)
        if syntax is not None and photometric is not None:
            ds = Dataset()
            ds.Rows, ds.Columns = frame.rows, frame.columns
            ds.SamplesPerPixel = frame.components
            ds.PhotometricInterpretation = photometric
            if frame.components > 1:
                ds.PlanarConfiguration = 0
            ds.PixelData = encapsulate([photo.data])
            ds["PixelData"].VR = "OB"
            ds["PixelData"].is_undefined_length = True
            lossy = frame.process != "lossless"
            ds.LossyImageCompression = "01" if lossy else "00"
            if lossy:
                ds.LossyImageCompressionMethod = "ISO_10918_1"
            bits = frame.precision
            ds.BitsAllocated = 8 if bits <= 8 else 16
            ds.BitsStored, ds.HighBit = bits, bits - 1
            return ds, syntax, photometric, None
        why = f"a {frame.process} JPEG" if photometric is not None else "a JPEG in CMYK or YCCK"
        ds, photometric, steps = _native(photo)
        conversion = f"{steps} ({why} has no DICOM transfer syntax)"
    else:
        ds, photometric, conversion = _native(photo)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    return ds, ExplicitVRLittleEndian, photometric, conversion


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = SNOMED_DICOM
    item.CodeMeaning = meaning
    return item


def build(photo: DicomPhoto) -> Part10:
    """A VL Photographic Image Part 10 file for ``photo``."""
    pixels, syntax, photometric, conversion = _pixels(photo)
    if photo.deidentified:
        study = uid_for("deid-study", photo.photo_id)
        series = uid_for("deid-series", photo.photo_id)
    else:
        study = uid_for("study", photo.patient_id)
        series = uid_for("series", photo.patient_id, photo.site or "")
    instance = uid_for("photo", photo.photo_id)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = VLPhotographicImageStorage
    meta.MediaStorageSOPInstanceUID = UID(instance)
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = UID(IMPLEMENTATION_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = VLPhotographicImageStorage
    ds.SOPInstanceUID = instance
    # Patient: only what the record holds.
    if photo.deidentified:
        ds.PatientName = ""
        ds.PatientID = hashlib.sha256(f"deid:{photo.photo_id}".encode()).hexdigest()[:16]
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "skinvault: no name, dates, note or linking identifiers"
    else:
        ds.PatientName = _pn(photo.patient_name)
        ds.PatientID = photo.patient_id[:64]
        ds.IssuerOfPatientID = photo.issuer[:64]
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    # Study and series.
    ds.StudyInstanceUID = study
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.StudyDescription = "Skin photographs"
    ds.Modality = "XC"
    ds.SeriesInstanceUID = series
    ds.SeriesNumber = None
    site = coded(photo.site)
    if photo.site_label:
        ds.SeriesDescription = photo.site_label[:64]
    ds.Manufacturer = ""
    # Image.
    ds.InstanceNumber = None
    ds.PatientOrientation = ""
    if not photo.deidentified:
        # Content date/time: when the photo entered the record (a full time is known); the day
        # it was taken, when the record has it, as a date-only Acquisition DateTime.
        ds.ContentDate = f"{photo.uploaded_at:%Y%m%d}"
        ds.ContentTime = f"{photo.uploaded_at:%H%M%S}"
        if photo.taken_on:
            ds.AcquisitionDateTime = f"{photo.taken_on:%Y%m%d}"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    if conversion:
        ds.DerivationDescription = conversion[:1024]
    ds.AcquisitionContextSequence = []
    if site is not None:
        region = _code(site.code, site.meaning)
        if site.laterality:
            code, meaning = LATERALITY[site.laterality]
            region.AnatomicRegionModifierSequence = [_code(code, meaning)]
        # U: an unpaired structure (the face, the back) — known, not missing.
        ds.ImageLaterality = site.laterality or "U"
        ds.AnatomicRegionSequence = [region]
    else:
        ds.Laterality = ""  # the record does not say which side (a free-text site)
        ds.AnatomicRegionSequence = []
    ds.PixelRepresentation = 0
    ds.update(pixels)

    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return Part10(out.getvalue(), instance, series, study, str(syntax), photometric, conversion)
