"""The upload preview kept as a sealed draft: one upload, save equals preview, expiry, resend
guard — through the portal, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.db.models import Photo, UploadDraft
from skinvault.services import admin, drafts, photo_reads, photo_store, sharing
from skinvault.services.care import start_care
from skinvault.services.maintenance import MaintenanceSchedule
from skinvault.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
TEXT_PHOTO = ROOT / "bench" / "clues_set" / "text-label-on-skin.jpg"
PASSWORD = "a long enough password"
OPERATOR = Actor.system("test")


class MovableClock:
    def __init__(self) -> None:
        self.t = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t

    def advance(self, **delta: float) -> None:
        self.t += timedelta(**delta)


@dataclass
class World:
    client: TestClient
    vault: Vault
    clock: MovableClock
    patient: Actor
    patient_id: str


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    clock = MovableClock()
    settings = load_settings(data_dir=tmp_path / "d", database_url=database_url)
    vault = bootstrap(settings, create=True, clock=clock)
    made = admin.create_user(
        vault, role=Role.PATIENT, email="ann@example.org", password=PASSWORD, actor=OPERATOR,
        name="Ann",
    )  # fmt: skip
    assert made.patient_id
    app = create_app(settings, vault=vault)
    with TestClient(app) as client:
        answer = client.post(
            "/login", data={"email": "ann@example.org", "password": PASSWORD},
            follow_redirects=False,
        )  # fmt: skip
        assert answer.status_code == 303
        yield World(client, vault, clock, Actor(made.user_id, Role.PATIENT, "Ann"), made.patient_id)
    vault.close()


def _csrf(w: World) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', w.client.get("/portal").text)
    assert match
    return match.group(1)


def _preview(w: World, data: bytes) -> tuple[str, str]:
    answer = w.client.post(
        "/portal/preview",
        data={"csrf": _csrf(w), "patient_id": w.patient_id},
        files={"file": ("IMG_0001.jpg", data, "image/jpeg")},
    )
    assert answer.status_code == 200, answer.text
    match = re.search(r'name="draft_id" value="([0-9a-f]{32})"', answer.text)
    assert match, answer.text
    return match.group(1), answer.text


def _save(w: World, draft_id: str, **fields: str) -> str:
    answer = w.client.post(
        "/portal/upload",
        data={"csrf": _csrf(w), "patient_id": w.patient_id, "site": "left-hand",
              "draft_id": draft_id, **fields},
        files={"unused": ("", b"", "application/octet-stream")},  # multipart, like the form
    )  # fmt: skip
    return answer.text


def _photo_count(w: World) -> int:
    with w.vault.reading() as session:
        return int(session.scalar(select(func.count()).select_from(Photo)) or 0)


def _jpeg(size: tuple[int, int] = (1200, 900), seed: int = 1) -> bytes:
    """A photo-like JPEG (smooth gradients + noise) that perceptual hashes can tell apart."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    base = np.stack([(xx * (seed + 1) + yy) % 256, (yy * 2) % 256, (xx + yy * seed) % 256], -1)
    blobs = (
        rng.integers(0, 60, (size[1] // 50 + 1, size[0] // 50 + 1, 3)).repeat(50, 0).repeat(50, 1)
    )
    pixels = (base + blobs[: size[1], : size[0]]).clip(0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_the_preview_shows_the_photo_with_its_boxes_and_keeps_it_sealed(world: World) -> None:
    data = TEXT_PHOTO.read_bytes()
    draft_id, html = _preview(world, data)
    assert f'src="/portal/drafts/{draft_id}/display"' in html
    assert 'class="box text' in html  # the label on the skin is drawn
    assert re.search(r'name="cover_\d{3}" value="\d+,\d+,\d+,\d+"', html)
    shown = world.client.get(f"/portal/drafts/{draft_id}/display")
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(shown.content)).size == (1280, 960)
    with world.vault.reading() as session:
        row = session.get(UploadDraft, draft_id)
        assert row is not None
        assert shown.content not in row.display_sealed  # sealed, not stored in the clear
        assert data[-2000:] not in row.photo_sealed


def test_what_is_saved_is_the_preview_with_the_covers_and_the_crop(world: World) -> None:
    data = _jpeg()
    draft_id, _html = _preview(world, data)
    page = _save(
        world, draft_id, cover_d000="300,200,100,80",
        crop_x="200", crop_y="100", crop_w="640", crop_h="480",
    )  # fmt: skip
    assert "Saved" in page, page
    with world.vault.reading() as session:
        [photo] = session.scalars(select(Photo)).all()
        assert photo.phash and len(photo.phash) == 16
    stored = photo_reads.read_photo(
        world.vault, photo_id=photo.id, actor=world.patient, purpose="care"
    ).data
    image = np.asarray(Image.open(io.BytesIO(stored)).convert("RGB")).astype(int)
    assert image.shape[:2] == (480, 640)  # the crop
    # the cover (300,200,100,80) is at (100,100) inside the crop, all but black
    assert image[100:180, 100:200].max() < 30
    assert image[300:400, 400:600].mean() > 40  # the rest is the picture
    with world.vault.reading() as session:
        assert session.get(UploadDraft, draft_id) is None  # the draft went with the save


def test_an_expired_draft_saves_nothing_and_says_so(world: World) -> None:
    draft_id, _ = _preview(world, _jpeg())
    world.clock.advance(minutes=drafts.DRAFT_LIFETIME.total_seconds() / 60 + 1)
    page = _save(world, draft_id)
    assert "This preview has expired" in page and "nothing was saved" in page
    assert _photo_count(world) == 0
    assert world.client.get(f"/portal/drafts/{draft_id}/display").status_code == 404
    MaintenanceSchedule(world.vault)._sweep()  # the scheduled sweep removes it
    with world.vault.reading() as session:
        assert session.get(UploadDraft, draft_id) is None


def test_someone_elses_draft_cannot_be_saved_or_seen(world: World) -> None:
    draft_id, _ = _preview(world, _jpeg())
    other = admin.create_user(
        world.vault, role=Role.PATIENT, email="bo@example.org", password=PASSWORD,
        actor=OPERATOR, name="Bo",
    )  # fmt: skip
    with pytest.raises(Exception, match="expired"):
        drafts.save_draft(
            world.vault, actor=Actor(other.user_id, Role.PATIENT, "Bo"), draft_id=draft_id,
            covers=[], crop=None, site="left-hand",
        )  # fmt: skip
    assert _photo_count(world) == 0


def test_a_photo_sent_before_is_named_with_when_and_to_whom(world: World) -> None:
    data = _jpeg(seed=3)
    first, html = _preview(world, data)
    assert "You sent" not in html
    assert "Saved" in _save(world, first)
    with world.vault.reading() as session:
        [photo] = session.scalars(select(Photo)).all()
    lee = admin.create_user(
        world.vault, role=Role.CLINICIAN, email="lee@clinic.example", password=PASSWORD,
        actor=OPERATOR, name="Dr. Lee",
    )  # fmt: skip
    start_care(world.vault, patient_id=world.patient_id, member_id=lee.user_id, actor=OPERATOR)
    sharing.create_share_link(
        world.vault, photo_id=photo.id, actor=world.patient, recipient="Dr. Second Opinion",
        expires_in=timedelta(days=2),
    )  # fmt: skip

    _again, html = _preview(world, data)  # the very same file
    assert "You sent this photo before" in html
    assert "on 02 Dec 2026 at 09:00" in html
    assert "your care team" in html and "Dr. Second Opinion, by share link" in html

    # the same picture re-encoded smaller: a near-duplicate
    small = io.BytesIO()
    Image.open(io.BytesIO(data)).resize((800, 600)).save(small, "JPEG", quality=70)
    _near, html = _preview(world, small.getvalue())
    assert "You sent a photo very like this one before" in html

    _other, html = _preview(world, _jpeg(seed=7))  # another picture
    assert "You sent" not in html

    assert "Saved" in _save(world, _again)  # the person can still save it
    assert _photo_count(world) == 2


def test_a_photo_saved_before_0012_has_no_hash_and_is_still_matched_by_its_bytes(
    world: World,
) -> None:
    data = _jpeg(seed=5)
    photo_store.store_photo(
        world.vault, patient_id=world.patient_id, data=data, actor=world.patient
    )
    with world.vault.sessions.begin() as session:
        for photo in session.scalars(select(Photo)):
            photo.phash = None  # as stored before this revision
    _draft, html = _preview(world, data)
    assert "You sent this photo before" in html


def test_the_preview_says_when_the_skin_is_too_overexposed_to_be_measured(world: World) -> None:
    from tests.integration.test_tracking import _jpeg as _skin_jpeg
    from tests.unit.test_tracking_measure import _photo

    _, bright = _preview(world, _skin_jpeg(_photo(0.1, gain=1.5)[0]))  # flash: red clipped
    assert "data-capture-warning" in bright and "overexposed" in bright
    assert "without flash" in bright and "You can still save this one." in bright
    _, fine = _preview(world, _skin_jpeg(_photo(0.1)[0]))
    assert "data-capture-warning" not in fine
