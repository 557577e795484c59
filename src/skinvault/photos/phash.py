"""A 64-bit perceptual hash of a photo's pixels, for noticing a photo sent before.

    >>> from PIL import Image
    >>> h = dhash(Image.new("RGB", (640, 480), (200, 150, 120)))
    >>> f"{h:016x}"
    '0000000000000000'
    >>> distance(0b1011, 0b0001)
    2

A difference hash (dHash): the picture shrunk to 9 × 8 grey pixels, one bit per
pair of horizontal neighbours (is the left one brighter?). Re-encoding, resizing and
mild colour changes keep most bits; another photo flips about half of them. The
threshold :data:`NEAR_DUPLICATE` comes from ``bench/preview.py`` (last table: the corpus
photos re-encoded at q70 and halved differ from themselves by at most 7 bits; different
structured photos by at least 12). Pure: pixels in, an int out.
"""

from __future__ import annotations

from PIL import Image, ImageOps

#: At most this many differing bits (of 64) and two photos count as the same picture.
NEAR_DUPLICATE = 10


def dhash(image: Image.Image) -> int:
    """The 64-bit difference hash of ``image`` (upright: EXIF orientation applied)."""
    upright = ImageOps.exif_transpose(image)
    if upright.mode not in ("L", "RGB"):
        upright = upright.convert("RGB")
    grey = upright.convert("L")
    # reduce() first: a box filter over a 12 MP photo is cheap and avoids aliasing.
    factor = max(1, min(grey.width // 72, grey.height // 64))
    if factor > 1:
        grey = grey.reduce(factor)
    small = grey.resize((9, 8), Image.Resampling.BOX)
    pixels = small.tobytes()  # one byte per grey pixel, row by row
    bits = 0
    for row in range(8):
        for col in range(8):
            left, right = pixels[row * 9 + col], pixels[row * 9 + col + 1]
            bits = (bits << 1) | int(left > right)
    return bits


def distance(a: int, b: int) -> int:
    """Hamming distance: how many of the 64 bits differ."""
    return (a ^ b).bit_count()


#: A hash with fewer 1s (or 0s) than this comes from a picture with almost no structure at
#: 9 × 8 (a flat colour, one smooth gradient): its likeness to another is no evidence.
MIN_STRUCTURE = 4


def near_duplicate(a: int, b: int) -> bool:
    """Whether two hashes are the same picture: close, and both from structured pictures.

    >>> near_duplicate(0, 0)  # two flat pictures look alike but prove nothing
    False
    """
    structured = all(MIN_STRUCTURE <= h.bit_count() <= 64 - MIN_STRUCTURE for h in (a, b))
    return structured and distance(a, b) <= NEAR_DUPLICATE


def to_hex(value: int) -> str:
    return f"{value:016x}"


def from_hex(text: str) -> int:
    return int(text, 16)
