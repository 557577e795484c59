"""Who may read a photo, as a table written by hand from the product's promises.

The expected answers below come from ../shared/design/PRODUCT.md (F4 to F7) and
docs/purposes.md, not from ``skinvault.policy`` or from the services' own fact gathering:
a bug in either moves only the observed side. Each cell is checked over HTTP (bearer
tokens, in process) on three routes, and for an allowed read the exact bytes and version:

- ``O`` the scrubbed original with its details (patient, note, dates);
- ``D`` the de-identified version (faces and text covered, re-encoded with no metadata):
  not the original's bytes, obligation ``deidentified`` on the content, and details
  without patient id, note, dates;
- ``F`` the face-free version (faces covered), not the original's bytes;
- ``C`` the cropped version: exactly the area chosen on the photo's page;
- ``D+C`` de-identified and cropped: both at once;
- ``-`` refused (403 or 404), no image bytes, nothing about the patient in the answer.

Rules taken from the contract, one per line of the table:

- care needs no consent and is the patient's and their current care team's only (F4, F5);
  a care relationship that ended, another clinician, another patient, an educator, a
  researcher or an administrator get nothing for care (break-glass is another route);
- any other purpose needs the patient's consent in force for exactly that purpose:
  none, refused, withdrawn or expired means refused, at once (F5, F7);
- a "cropped" or "no face" scope means only such a version may be served (F5: "versions
  of the photo made and stored"): no face serves the face-free version; cropped serves
  the chosen area and is refused while no area has been chosen;
- "de-identified" scope serves the de-identified version; research, publication and AI
  training always do (docs/purposes.md); "internal" forbids publication;
- teaching is for educators, research and AI training for researchers (F4 users).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault, bootstrap
from skinvault.config import load_settings
from skinvault.photos.scrub import scrub
from skinvault.policy.purposes import Purpose, Scope
from skinvault.services import admin, api_tokens, consents, jobs, photo_reads, photo_store, versions
from skinvault.services.care import end_care, start_care
from skinvault.web.app import create_app
from tests import factories

OPERATOR = Actor.system("test")
NOTE = "a note only the care team reads"
SECONDARY = (Purpose.TEACHING, Purpose.RESEARCH, Purpose.PUBLICATION, Purpose.AI_TRAINING)

#: One patient (and photo) per consent state; the state holds for every secondary purpose.
STATES = (
    "none", "granted", "deidentified", "cropped", "cropped-area", "no-face", "internal",
    "refused", "withdrawn", "expired",
)  # fmt: skip
#: The area chosen for the "cropped-area" photo (x, y, width, height of the 64 x 48 photo).
AREA = (8, 8, 32, 24)
ACTORS = (
    "owner", "care-clinician", "care-staff", "former-clinician", "outside-clinician",
    "other-patient", "educator", "researcher", "admin",
)  # fmt: skip

#: (actor, purpose) -> the outcome in each consent state, in STATES order.
#:                                        none granted deid cropped area noface internal refused withdrawn expired  # noqa: E501
TABLE: dict[tuple[str, str], str] = {
    ("owner", "care"):                        "O O O O O   O O O O O",
    ("care-clinician", "care"):               "O O O O O   O O O O O",
    ("care-staff", "care"):                   "O O O O O   O O O O O",
    ("former-clinician", "care"):             "- - - - -   - - - - -",
    ("outside-clinician", "care"):            "- - - - -   - - - - -",
    ("other-patient", "care"):                "- - - - -   - - - - -",
    ("educator", "care"):                     "- - - - -   - - - - -",
    ("researcher", "care"):                   "- - - - -   - - - - -",
    ("admin", "care"):                        "- - - - -   - - - - -",
    ("educator", "teaching"):                 "- O D - C   F O - - -",
    ("researcher", "research"):               "- D D - D+C D D - - -",
    ("researcher", "ai-training"):            "- D D - D+C D D - - -",
    ("educator", "publication"):              "- D D - D+C D - - - -",
    ("other-patient", "teaching"):            "- - - - -   - - - - -",
    ("other-patient", "research"):            "- - - - -   - - - - -",
    ("former-clinician", "teaching"):         "- . . - .   . . - - -",
    ("outside-clinician", "research"):        "- . . - .   . . - - -",
    ("admin", "teaching"):                    "- . . - .   . . - - -",
    ("admin", "research"):                    "- . . - .   . . - - -",
    ("admin", "publication"):                 "- . . - .   . - - - -",
}  # fmt: skip
#: Whose row says what a ``.`` cell may serve at most (the role the purpose is for).
REFERENCE = {
    "teaching": ("educator", "teaching"),
    "research": ("researcher", "research"),
    "publication": ("educator", "publication"),
    "ai-training": ("researcher", "ai-training"),
}
#: ``.``: the contract does not say whether this role may use the photo for this purpose
#: with consent; checked only to never serve more than the version the purpose's own role
#: gets in that state (:data:`REFERENCE`), and never answer 5xx.


SCOPES = {
    "deidentified": {Scope.DEIDENTIFIED},
    "cropped": {Scope.CROPPED},
    "cropped-area": {Scope.CROPPED},
    "no-face": {Scope.NO_FACE},
    "internal": {Scope.INTERNAL},
}


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


@dataclass
class Clinic:
    client: TestClient
    tokens: dict[str, str]  # actor -> bearer token
    photos: dict[str, tuple[str, str]]  # state -> (patient id, photo id)
    owners: dict[str, str]  # state -> the owner's token
    scrubbed: bytes  # what every allowed read of the original must serve
    thumbnails: dict[str, bytes]  # photo id -> the original's thumbnail


def _user(vault: Vault, role: Role, email: str) -> tuple[Actor, str | None]:
    made = admin.create_user(
        vault, role=role, email=email, password="a long passphrase", actor=OPERATOR, name=email
    )
    return Actor(made.user_id, role, email), made.patient_id


def _token(vault: Vault, actor: Actor) -> str:
    return api_tokens.issue_api_token(vault, actor=actor, scopes=api_tokens.API_SCOPES).token


def _consent(vault: Vault, state: str, patient: Actor, pid: str, clock: Clock) -> None:
    scopes = SCOPES.get(state, set())
    for purpose in SECONDARY:
        if state == "none":
            continue
        granted = state != "refused"
        expires = clock.now() + timedelta(hours=1) if state == "expired" else None
        consents.record_consent(
            vault, patient_id=pid, purpose=purpose, granted=granted, actor=patient,
            scopes=scopes, expires_at=expires,
        )  # fmt: skip
        if state == "withdrawn":
            consents.record_consent(
                vault, patient_id=pid, purpose=purpose, granted=False, actor=patient
            )


@pytest.fixture
def clinic(database_url: str, tmp_path: Path) -> Iterator[Clinic]:
    clock = Clock()
    vault = bootstrap(
        load_settings(data_dir=tmp_path / "data", database_url=database_url),
        create=True,
        clock=clock,
    )
    people = {name: _user(vault, role, f"{name}@clinic.example")[0] for name, role in (
        ("care-clinician", Role.CLINICIAN), ("care-staff", Role.STAFF),
        ("former-clinician", Role.CLINICIAN), ("outside-clinician", Role.CLINICIAN),
        ("educator", Role.EDUCATOR), ("researcher", Role.RESEARCHER), ("admin", Role.ADMIN),
    )}  # fmt: skip
    other, _ = _user(vault, Role.PATIENT, "other@example.org")
    upload = factories.jpeg()
    stored: dict[str, tuple[str, str]] = {}
    owners: dict[str, Actor] = {}
    for state in STATES:
        patient, pid = _user(vault, Role.PATIENT, f"{state}@example.org")
        assert pid
        for member in ("care-clinician", "care-staff", "former-clinician"):
            start_care(vault, patient_id=pid, member_id=people[member].id, actor=OPERATOR)
        photo = photo_store.store_photo(
            vault, patient_id=pid, data=upload, actor=patient, site="back", note=NOTE
        )
        end_care(vault, patient_id=pid, member_id=people["former-clinician"].id, actor=OPERATOR)
        _consent(vault, state, patient, pid, clock)
        if state == "cropped-area":
            versions.set_markup(vault, photo_id=photo.id, actor=patient, crop=AREA)
        stored[state] = (pid, photo.id)
        owners[state] = patient
    jobs.run_pending(vault)  # the thumbnails, as a worker would make them
    thumbnails = {
        photo_id: photo_reads.read_thumbnail(
            vault, photo_id=photo_id, actor=owners[state], purpose="care"
        ).data
        for state, (_, photo_id) in stored.items()
    }
    clock.at += timedelta(hours=2)  # the "expired" consents ran out; nothing else did
    tokens = {name: _token(vault, actor) for name, actor in people.items()}
    tokens["other-patient"] = _token(vault, other)
    owner_tokens = {state: _token(vault, owners[state]) for state in STATES}
    app = create_app(vault.settings, vault=vault)
    with TestClient(app) as client:
        yield Clinic(client, tokens, stored, owner_tokens, scrub(upload)[0], thumbnails)
    vault.close()


def _cells() -> list[tuple[str, str, str, str]]:
    cells = []
    for (actor, purpose), row in TABLE.items():
        outcomes = row.split()
        assert len(outcomes) == len(STATES), (actor, purpose)
        cells += [(actor, purpose, s, o) for s, o in zip(STATES, outcomes, strict=True)]
    return cells


def _observe(c: Clinic, actor: str, purpose: str, state: str) -> tuple[str, list[str]]:
    """What the three read routes gave: O, D or -, and any inconsistency between them."""
    token = c.owners[state] if actor == "owner" else c.tokens[actor]
    auth = {"authorization": f"Bearer {token}"}
    pid, photo_id = c.photos[state]
    q = {"purpose": purpose}
    content = c.client.get(f"/api/v1/photos/{photo_id}/content", params=q, headers=auth)
    details = c.client.get(f"/api/v1/photos/{photo_id}", params=q, headers=auth)
    thumb = c.client.get(f"/api/v1/photos/{photo_id}/thumbnail", params=q, headers=auth)
    problems = []
    for name, answer in (("content", content), ("details", details), ("thumbnail", thumb)):
        if answer.status_code >= 500:
            problems.append(f"{name} answered {answer.status_code}")
    if content.status_code != 200:
        for name, answer in (("content", content), ("details", details), ("thumbnail", thumb)):
            if answer.status_code not in (403, 404):
                problems.append(f"{name} answered {answer.status_code} though content was refused")
            if answer.content.startswith(b"\xff\xd8") or pid in answer.text or NOTE in answer.text:
                problems.append(f"{name} refused but still told something")
        return "-", problems
    version = content.headers.get("x-photo-version", "")
    obligations = set(filter(None, content.headers.get("x-obligations", "").split(",")))
    shown = details.json() if details.status_code == 200 else {}
    if thumb.status_code != 200 or not thumb.content.startswith(b"\xff\xd8"):
        problems.append(f"thumbnail answered {thumb.status_code} though content was served")
    if version:
        letter = {"deidentified": "D", "face_free": "F", "cropped": "C",
                  "deidentified+cropped": "D+C"}.get(version, f"?{version}")  # fmt: skip
        if content.content == c.scrubbed or not content.content.startswith(b"\xff\xd8"):
            problems.append(f"the {version} version is the original's bytes or no JPEG")
        size = Image.open(io.BytesIO(content.content)).size
        if "C" in letter and size != AREA[2:]:
            problems.append(f"the cropped version is {size}, not the chosen {AREA[2:]}")
        if "C" not in letter and size != Image.open(io.BytesIO(c.scrubbed)).size:
            problems.append(f"the {version} version is {size}, not the photo's size")
        if thumb.content == c.thumbnails.get(photo_id):
            problems.append("the thumbnail is the original's, not the version's")
        if "deidentified" in obligations:
            if any(shown.get(k) for k in ("patient_id", "note", "taken_on", "uploaded_at")):
                problems.append(f"de-identified details still show {shown}")
        elif shown.get("patient_id") != pid or shown.get("note") != NOTE:
            problems.append(f"the version's details are incomplete: {shown}")
        return letter, problems
    if content.content != c.scrubbed:
        problems.append("content is not the scrubbed original's bytes")
    if "deidentified" in obligations:
        problems.append("de-identified obligation but the original was served")
    if shown.get("patient_id") != pid or shown.get("note") != NOTE:
        problems.append(f"the original's details are incomplete: {shown}")
    return "O", problems


def test_every_cell_of_the_hand_written_table(clinic: Clinic) -> None:
    wrong = []
    for actor, purpose, state, expected in _cells():
        got, problems = _observe(clinic, actor, purpose, state)
        if expected == ".":
            reference = TABLE[REFERENCE[purpose]].split()[STATES.index(state)]
            allowed = {"-", reference}
        else:
            allowed = {expected}
        if got not in allowed or problems:
            wrong.append(
                f"{actor:18} {purpose:12} {state:13} expected {expected} got {got} {problems}"
            )
    assert wrong == [], "\n" + "\n".join(wrong)


def test_the_table_covers_every_actor_state_and_purpose() -> None:
    """A new purpose, role or consent state must get its rows here."""
    assert {a for a, _ in TABLE} == set(ACTORS)
    assert {p for _, p in TABLE} == {p.value for p in Purpose}
    assert {r.value for r in Role} <= {"patient", "clinician", "staff", "educator",
                                       "researcher", "admin"}  # fmt: skip
    assert {s.value for s in Scope} == {"deidentified", "cropped", "internal", "no-face"}
