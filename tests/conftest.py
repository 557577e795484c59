"""Shared fixtures: the real-world corpus, its manifest, and exiftool as the oracle."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

# Argon2id at its smallest cost for every password the tests hash, in this process and in
# the servers and CLIs it starts (they inherit the environment): same code, ~1 ms instead
# of ~0.1 s a hash. tests/unit/test_passwords_cost.py checks the production parameters.
os.environ.setdefault("SKINVAULT_ARGON2_PROFILE", "test")

ROOT = Path(__file__).resolve().parent.parent
#: The test corpus lives in the repository (tests/data/corpus, with its MANIFEST,
#: sources and licences); the regression files of outside tests beside it.
CORPUS = ROOT / "tests" / "data" / "corpus"
FINDINGS = ROOT / "tests" / "data" / "findings"


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    format: str
    identifying: frozenset[str]
    pillow_opens: bool
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name

    def orientation(self) -> int:
        for item in self.identifying:
            if item.startswith("orientation="):
                return int(item.split("=", 1)[1])
        return 1


def load_manifest() -> list[CorpusFile]:
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.exists():
        return []
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        CorpusFile(
            path=CORPUS / row["file"],
            format=row["format"],
            identifying=frozenset(x for x in row["identifying"].split(",") if x and x != "-"),
            pillow_opens=row["pillow_opens"] == "yes",
            sha256=row["sha256"],
        )
        for row in rows
    ]


CORPUS_FILES = load_manifest()


def corpus_params(formats: set[str] | None = None) -> list[object]:
    """Corpus files as pytest params (ids are file names)."""
    chosen = [f for f in CORPUS_FILES if formats is None or f.format in formats]
    if not chosen:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no corpus at {CORPUS}"))]
    return [pytest.param(f, id=f.name) for f in chosen]


def exiftool_json(*paths: Path) -> list[dict[str, object]]:
    """Everything exiftool can read from the files, grouped by location (-G1)."""
    if shutil.which("exiftool") is None:
        pytest.fail("exiftool is required as the metadata oracle (scripts/test installs it)")
    result = subprocess.run(
        ["exiftool", "-j", "-G1", "-a", "-u", "-b", "-q", "-q", *map(str, paths)],
        capture_output=True,
        check=False,
    )
    return list(json.loads(result.stdout or b"[]"))


def decoded(data: bytes) -> tuple[object, ...]:
    """Pixels after applying orientation, plus mode and size, for equality checks."""
    import numpy as np
    import pillow_heif
    from PIL import Image, ImageOps

    pillow_heif.register_heif_opener()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        upright = ImageOps.exif_transpose(image)
        return upright.mode, upright.size, np.asarray(upright).tobytes()


def icc_profile(data: bytes) -> bytes | None:
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    with Image.open(io.BytesIO(data)) as image:
        profile = image.info.get("icc_profile")
        return bytes(profile) if profile else None


def icc_colour(data: bytes) -> dict[bytes, bytes] | None:
    """The colour tags of a photo's ICC profile: what scrubbing keeps byte for byte."""
    from skinvault.photos import icc

    profile = icc_profile(data)
    return icc.colour_tags(profile) if profile else None
