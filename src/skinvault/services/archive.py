"""The patient's personal archive: their whole record in one encrypted 7z they can keep.

    >>> with tempfile.TemporaryFile() as out:                            # doctest: +SKIP
    ...     made = build_archive(vault, actor=patient, patient_id=pid,
    ...                          passphrase="four words of my own", out=out)
    >>> made.photos, made.file_name                                      # doctest: +SKIP
    (3, 'skinvault-archive-2026-12-02.7z')

What is inside (``README.txt`` in the archive says the same):

- ``photos/``: every photo as stored (its hidden details already removed), named
  ``NN-<site>-<date>.<ext>``;
- ``photos.json`` and ``notes.txt``: site, dates, note, capture details and both
  SHA-256s of each photo;
- ``consents.json`` and ``consents.txt``: every consent answer ever given;
- ``receipts/``: the signed upload receipt of each photo (:mod:`.receipts`);
- ``access-history.txt`` and ``access-history.json``: the accounting of
  disclosures (:mod:`.history`).

The format is 7z with AES-256 (7-Zip, p7zip's ``7z``, Keka, The Unarchiver,
Windows 11 open it), its file list encrypted too (``header_encryption``), the key
derived from a passphrase the patient chooses. The passphrase is checked for a
minimum strength (:func:`passphrase_problem`), used, and never stored or logged.
The photos are stored without recompression (they are compressed already); the
texts go through the same AES stream.

Plaintext stays in memory: the archive is written to ``out``, which the caller
makes an anonymous temporary file (:func:`archive_file`) or a memory buffer, and
every byte written there is already encrypted by py7zr.

Audit: one ``record:export-archive`` event on the patient before any photo is
decrypted, then one ``photo:export-archive`` per photo (decided as an export, as
every photo that leaves the service is).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO

import py7zr
from sqlalchemy import select

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault
from skinvault.db.models import BodySite, Patient, Photo
from skinvault.errors import AccessDenied, RequestInvalid, VaultError
from skinvault.photos.naming import EXTENSIONS, slug
from skinvault.photos.sniff import ImageFormat
from skinvault.policy.decide import PatientAction
from skinvault.policy.purposes import PURPOSE_TEXTS, Purpose
from skinvault.services import consents as consent_service
from skinvault.services import history, receipts, records
from skinvault.services.passwords import common_passwords
from skinvault.services.photo_export import export_photo
from skinvault.services.photo_store import get_photo
from skinvault.services.tracking import _open_details

MIN_PASSPHRASE = 12
MAX_PASSPHRASE = 256
FILTERS = [{"id": py7zr.FILTER_COPY}, {"id": py7zr.FILTER_CRYPTO_AES256_SHA256}]

#: Called as progress(done, total, what) while the archive is built.
Progress = Callable[[int, int, str], None]


def passphrase_problem(passphrase: str, *, again: str | None = None) -> str | None:
    """What is wrong with a passphrase, in one sentence, or None when it may be used."""
    if again is not None and again != passphrase:
        return "The two passphrases are not the same."
    if len(passphrase) < MIN_PASSPHRASE:
        return (
            f"The passphrase needs at least {MIN_PASSPHRASE} characters: three or four words"
            " that belong together only for you work well."
        )
    if len(passphrase) > MAX_PASSPHRASE:
        return f"The passphrase may have at most {MAX_PASSPHRASE} characters."
    folded = passphrase.strip().lower()
    if folded in common_passwords() or folded.replace(" ", "") in common_passwords():
        return "This passphrase is on the list of the most common passwords; choose another."
    if len(set(folded.replace(" ", ""))) < 5:
        return "The passphrase repeats too few characters; choose another."
    return None


@dataclass(frozen=True)
class ArchiveMade:
    file_name: str
    size: int
    photos: int
    consents: int
    history_entries: int


def _photo_name(n: int, site: str | None, at: datetime, fmt: str) -> str:
    try:
        extension = EXTENSIONS[ImageFormat(fmt)]
    except ValueError:
        extension = ".bin"
    where = slug(site) if site else "photo"
    return f"photos/{n:02}-{where}-{at:%Y-%m-%d}{extension}"


_README = """\
Your skinvault archive
======================

Made by {organisation} on {made} for {name}.

What is in it
- photos/               every photo of your record, as stored: the hidden details
                        (place, camera, dates inside the file) were removed when
                        it was saved
- photos.json, notes.txt  for each photo: body site, dates, your note, and two
                        SHA-256 fingerprints (of the stored photo and of the file
                        you chose) so any copy can be recognised
- consents.json, consents.txt  every consent answer you gave, with the words shown
- receipts/             the signed upload receipt of each photo
- access-history.txt, access-history.json  everyone who looked at, shared or
                        exported your photos, and when

How to open it
This is a 7z archive encrypted with AES-256. 7-Zip (Windows), Keka (macOS), The
Unarchiver, or `7z x` on Linux open it with the passphrase you chose. The
passphrase was not stored anywhere: if it is lost, nobody can open this file.

How to check a receipt
Each receipt's last line is an Ed25519 signature over every line above it, made
with the service's audit key (printed in the receipt). The clinic can confirm
that key is theirs; the steps are in skinvault's docs/patient-copies.md.
"""


def archive_file(vault: Vault) -> IO[bytes]:
    """An anonymous temporary file in the data folder (no name, gone when closed)."""
    folder = vault.settings.data_dir / "run" / "archives"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return tempfile.TemporaryFile(dir=folder)  # O_TMPFILE: only ciphertext ever lands here


def build_archive(
    vault: Vault,
    *,
    actor: Actor,
    patient_id: str,
    passphrase: str,
    out: IO[bytes],
    progress: Progress | None = None,
) -> ArchiveMade:
    """Write the patient's encrypted archive to ``out``; only the patient may make it.

    Raises :class:`RequestInvalid` for a weak passphrase (nothing is read then) and
    :class:`AccessDenied` for anyone but the patient (audited as a refused record access).
    """
    problem = passphrase_problem(passphrase)
    if problem:
        raise RequestInvalid(problem)
    # The whole record: photos, consents and history, which only the patient may all read.
    for action in (PatientAction.LIST_PHOTOS, PatientAction.MANAGE_CONSENT,
                   PatientAction.READ_HISTORY):  # fmt: skip
        records.authorize(vault, actor, patient_id, action)
    patient_of_actor = records.patient_of_user(vault, actor.id)
    if patient_of_actor != patient_id:
        raise AccessDenied("Only the patient can download their personal archive.")
    with vault.reading() as session:
        patient = session.get(Patient, patient_id)
        patient_name = patient.display_name if patient else "you"
        sites = {
            s.id: s
            for s in session.scalars(select(BodySite).where(BodySite.patient_id == patient_id))
        }
        rows = [
            (p.id, sites.get(p.site_id or ""), p.uploaded_at, p.format)
            for p in session.scalars(
                select(Photo)
                .where(Photo.patient_id == patient_id, Photo.deleted_at.is_(None))
                .order_by(Photo.uploaded_at)
            )
        ]
    with vault.sessions.begin() as session:
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=Action.RECORD_EXPORT_ARCHIVE,
            object=f"patient:{patient_id}",
            outcome=Outcome.ALLOWED,
            reason=f"personal archive (encrypted 7z): {len(rows)} photo(s), notes, consents,"
            " receipts and access history",
        )
    total = len(rows) + 3
    step = 0

    def tick(what: str) -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(step, total, what)

    entries: list[dict[str, object]] = []
    missing: list[str] = []
    notes_text: list[str] = []
    with py7zr.SevenZipFile(
        out, "w", password=passphrase, header_encryption=True, filters=FILTERS
    ) as archive:
        for n, (photo_id, site, uploaded_at, fmt) in enumerate(rows, start=1):
            try:
                got = export_photo(
                    vault,
                    photo_id=photo_id,
                    actor=actor,
                    purpose=Purpose.CARE,
                    action=Action.PHOTO_EXPORT_ARCHIVE,
                    detail="personal archive",
                )
            except AccessDenied:
                continue  # audited; not the patient's to take (cannot happen for the owner)
            except VaultError as exc:  # audited as failed; the rest of the record still goes
                missing.append(f"photo {photo_id} of {uploaded_at:%Y-%m-%d %H:%M} UTC: {exc}")
                continue
            name = _photo_name(n, site.label if site else None, uploaded_at, fmt)
            archive.writestr(got.data, name)
            del got
            receipt = receipts.receipt_for(vault, photo_id=photo_id, actor=actor)
            receipt_name = f"receipts/{name.removeprefix('photos/').rsplit('.', 1)[0]}.txt"
            archive.writestr(receipts.signed_text(vault, receipt).encode("utf-8"), receipt_name)
            stored = get_photo(vault, photo_id)
            with vault.reading() as session:
                row = session.get(Photo, photo_id)
                capture = _open_details(vault, row).as_json() if row is not None else {}
            entries.append({
                "file": name,
                "receipt": receipt_name,
                "photo_id": photo_id,
                "site": site.label if site else None,
                "taken_on": stored.taken_on.isoformat() if stored.taken_on else None,
                "uploaded_at": uploaded_at.isoformat(),
                "note": stored.note,
                "capture": capture,
                "format": stored.format,
                "width": stored.width,
                "height": stored.height,
                "sha256_stored": receipt.stored_sha256,
                "sha256_original": receipt.original_sha256,
            })  # fmt: skip
            notes_text.append(
                f"{name}\n  site: {site.label if site else 'not given'}\n"
                f"  saved: {uploaded_at:%Y-%m-%d %H:%M} UTC\n"
                f"  taken on: {stored.taken_on or 'not known'}\n"
                f"  note: {stored.note or '(none)'}\n"
                + "".join(f"  {k}: {v}\n" for k, v in capture.items() if v not in ("", None))
            )
            tick(f"photo {n} of {len(rows)}")
        archive.writestr(json.dumps(entries, indent=2, ensure_ascii=False), "photos.json")
        if missing:
            archive.writestr(
                "These photos could not be read from storage and are not in this archive;"
                " the clinic has been told through its audit log:\n"
                + "".join(f"- {m}\n" for m in missing),
                "MISSING.txt",
            )
        archive.writestr("\n".join(notes_text) or "No photos.\n", "notes.txt")
        views = consent_service.consent_history(vault, patient_id)
        archive.writestr(
            json.dumps([consent_service.receipt(v) for v in views], indent=2, ensure_ascii=False),
            "consents.json",
        )
        archive.writestr(_consents_text(views), "consents.txt")
        tick("consents")
        told = history.access_history(vault, patient_id)
        archive.writestr("\n".join(e.text for e in told) + "\n", "access-history.txt")
        archive.writestr(
            json.dumps(
                [
                    {
                        "at": e.at.isoformat(),
                        "who": e.actor,
                        "action": e.action,
                        "purpose": e.purpose,
                        "outcome": e.outcome,
                        "text": e.text,
                        "emergency": e.emergency,
                    }
                    for e in told
                ],
                indent=2,
                ensure_ascii=False,
            ),
            "access-history.json",
        )
        tick("access history")
        archive.writestr(
            _README.format(
                organisation=vault.settings.organisation,
                made=f"{vault.clock.now():%d %B %Y %H:%M} UTC".lstrip("0"),
                name=patient_name,
            ),
            "README.txt",
        )
        tick("done")
    out.flush()
    size = out.seek(0, os.SEEK_END)
    out.seek(0)
    return ArchiveMade(
        file_name=f"skinvault-archive-{vault.clock.now():%Y-%m-%d}.7z",
        size=size,
        photos=len(entries),
        consents=len(views),
        history_entries=len(told),
    )


def _consents_text(views: list[consent_service.ConsentView]) -> str:
    if not views:
        return "You have not answered any consent question.\n"
    lines = []
    for v in views:
        text = PURPOSE_TEXTS[v.purpose]
        answer = "yes" if v.granted else "no"
        limits = f" (limits: {', '.join(sorted(s.value for s in v.scopes))})" if v.scopes else ""
        withdrawn = f"; withdrawn {v.revoked_at:%Y-%m-%d %H:%M} UTC" if v.revoked_at else ""
        lines.append(
            f"{v.recorded_at:%Y-%m-%d %H:%M} UTC  {text.title}: {answer}{limits}{withdrawn}\n"
            f"  words shown (version {text.version}): {text.text}\n"
        )
    return "\n".join(lines)


__all__ = ["ArchiveMade", "archive_file", "build_archive", "passphrase_problem"]
