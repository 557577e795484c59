"""Format detection from magic bytes, never from the file name.

>>> sniff(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(20))
<ImageFormat.PNG: 'png'>
"""

from __future__ import annotations

from enum import StrEnum

from skinvault.errors import DamagedFile, UnsupportedFormat


class ImageFormat(StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    HEIF = "heif"
    TIFF = "tiff"


# ISO BMFF brands of still images we handle (HEVC- and AV1-coded HEIF). The
# coded bytes are never touched, so any codec inside a HEIF container works.
_HEIF_BRANDS = {
    b"heic",
    b"heix",
    b"heim",
    b"heis",
    b"hevc",
    b"hevx",
    b"mif1",
    b"mif2",
    b"msf1",
    b"avif",
    b"avis",
}

# Recognised but unsupported formats, so the error can name what the file is.
_OTHER_SIGNATURES: list[tuple[bytes, str]] = [
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"%PDF", "PDF"),
    (b"BM", "BMP"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"8BPS", "Photoshop document"),
    (b"\x00\x00\x01\x00", "Windows icon"),
    (b"II\xbc", "JPEG XR"),
]


def sniff(data: bytes) -> ImageFormat:
    """Return the container format of ``data`` or raise a clear error."""
    if not data:
        raise DamagedFile("the file is empty (0 bytes)")
    if data.startswith(b"\xff\xd8\xff"):
        return ImageFormat.JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageFormat.PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageFormat.WEBP
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return ImageFormat.TIFF
    if data[4:8] == b"ftyp":
        major = data[8:12]
        compatible = {data[i : i + 4] for i in range(16, min(len(data), 64), 4)}
        if major in _HEIF_BRANDS or compatible & _HEIF_BRANDS:
            return ImageFormat.HEIF
        raise UnsupportedFormat(
            f"an ISO media file of brand {major.decode('latin-1')!r} (a video or other"
            " non-photo file); supported are JPEG, PNG, WebP, HEIC/HEIF and TIFF"
        )
    for magic, name in _OTHER_SIGNATURES:
        if data.startswith(magic):
            raise UnsupportedFormat(
                f"a {name} file, which skinvault does not handle;"
                " supported are JPEG, PNG, WebP, HEIC/HEIF and TIFF"
            )
    if len(data) < 12:
        raise DamagedFile(f"only {len(data)} bytes long: too short to be an image")
    raise UnsupportedFormat(
        "not an image skinvault recognises (supported: JPEG, PNG, WebP, HEIC/HEIF, TIFF)"
    )
