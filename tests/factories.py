"""Small photos built in memory for tests: real encoders, chosen metadata."""

from __future__ import annotations

import io
import struct

from PIL import Image


def gps_exif(orientation: int = 1) -> bytes:
    """An EXIF block with camera, time, GPS, owner and the given Orientation."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "Model X"
    exif[0x0131] = "EditorApp 2.0"
    exif[0x013B] = "Jane Patient"
    exif[0x0132] = "2024:05:03 10:11:12"
    exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 31.0, 12.0)
    gps[3], gps[4] = "E", (13.0, 24.0, 36.0)
    return exif.tobytes()


def image(mode: str = "RGB", size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A deterministic, non-flat test image."""
    img = Image.new(mode, size)
    img.putdata(
        [
            tuple((x * 7 + y * 3 + c * 50) % 256 for c in range(len(mode)))
            if len(mode) > 1
            else (x * 5 + y * 11) % 256
            for y in range(size[1])
            for x in range(size[0])
        ]
    )
    return img


def jpeg(
    orientation: int = 1, mode: str = "RGB", icc: bytes | None = None, comment: bytes = b"hi"
) -> bytes:
    buf = io.BytesIO()
    extra: dict[str, object] = {"exif": gps_exif(orientation), "comment": comment}
    if icc:
        extra["icc_profile"] = icc
    image(mode).save(buf, "JPEG", quality=90, **extra)
    return buf.getvalue()


def png(orientation: int = 1) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Patient")
    info.add_text("Comment", "left hand, day 3", zip=True)
    buf = io.BytesIO()
    image().save(buf, "PNG", pnginfo=info, exif=gps_exif(orientation))
    return buf.getvalue()


def webp(orientation: int = 1) -> bytes:
    buf = io.BytesIO()
    image().save(buf, "WEBP", lossless=True, exif=gps_exif(orientation), xmp=b"<x:xmpmeta/>")
    return buf.getvalue()


def jpeg_with_sof_size(width: int, height: int) -> bytes:
    """A tiny JPEG whose frame header declares another size (bomb test)."""
    data = bytearray(jpeg())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def heif(orientation: int = 1) -> bytes:
    """A real HEVC-coded HEIF (pillow-heif's encoder) with EXIF GPS/owner and XMP."""
    import pillow_heif

    heif_file = pillow_heif.from_pillow(image())
    heif_file.info["exif"] = gps_exif(orientation)
    heif_file.info["xmp"] = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
        b' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">'
        b"<dc:creator><rdf:Seq><rdf:li>Jane Patient</rdf:li></rdf:Seq></dc:creator>"
        b"</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    buf = io.BytesIO()
    heif_file.save(buf, quality=90)
    return buf.getvalue()
