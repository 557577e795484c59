"""Photos sent in as FHIR (``POST /fhir/R4/Media``): what a posted Media or transaction carries.

Pure: reads the photo, patient, site and date from the resource (or a transaction
Bundle holding it and its Binary); storing the photo is the caller's job.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date

from skinvault.errors import RequestInvalid
from skinvault.interop import fhir
from skinvault.interop.sites import SNOMED_SYSTEM, site_of


@dataclass(frozen=True)
class MediaUpload:
    patient_id: str
    data: bytes
    site: str | None
    taken_on: date | None


def media_upload(body: object) -> MediaUpload:
    """The photo, patient, site and date a posted Media (or transaction Bundle) carries.

    Raises :class:`RequestInvalid` with the reason when the resource is not one we can store.
    """
    if not isinstance(body, dict):
        raise RequestInvalid("the body must be a FHIR Media resource or a transaction Bundle")
    binaries: dict[str, fhir.Json] = {}
    media_resource: object = body
    if body.get("resourceType") == "Bundle":
        if body.get("type") != "transaction":
            raise RequestInvalid("a Bundle sent here must be a transaction")
        media_resource = None
        for entry in _list(body.get("entry")):
            if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
                continue
            resource = entry["resource"]
            if resource.get("resourceType") == "Binary":
                for key in (entry.get("fullUrl"), f"Binary/{resource.get('id')}"):
                    if key:
                        binaries[str(key)] = resource
            elif resource.get("resourceType") == "Media":
                media_resource = resource
    if not isinstance(media_resource, dict) or media_resource.get("resourceType") != "Media":
        raise RequestInvalid("the body must be a Media (or a transaction Bundle holding one)")
    for contained in _list(media_resource.get("contained")):
        if isinstance(contained, dict) and contained.get("resourceType") == "Binary":
            binaries[f"#{contained.get('id')}"] = contained
    subject_ref = media_resource.get("subject")
    subject = subject_ref.get("reference", "") if isinstance(subject_ref, dict) else ""
    if not isinstance(subject, str) or not subject.startswith("Patient/"):
        raise RequestInvalid("Media.subject must reference the patient: Patient/<id>")
    content = media_resource.get("content")
    if not isinstance(content, dict):
        raise RequestInvalid("Media.content is missing")
    encoded = content.get("data")
    if encoded is None:
        url = content.get("url")
        binary = binaries.get(str(url)) if isinstance(url, str) and url else None
        if binary is None:
            raise RequestInvalid(
                "Media.content needs the image: data, or url naming a contained Binary (#id)"
                " or a Binary in the same transaction"
            )
        encoded = binary.get("data")
    if not isinstance(encoded, str) or not encoded:
        raise RequestInvalid("the image data is missing")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise RequestInvalid(f"the image data is not base64: {exc}") from exc
    site = None
    body_site = media_resource.get("bodySite")
    if isinstance(body_site, dict):
        for coding in _list(body_site.get("coding")):
            if isinstance(coding, dict) and coding.get("system") == SNOMED_SYSTEM:
                site = site_of(str(coding.get("code", "")))
                if site:
                    break
        if site is None and isinstance(body_site.get("text"), str):
            site = body_site["text"].strip()[:64] or None
    taken_on = None
    created = media_resource.get("createdDateTime")
    if isinstance(created, str) and created:
        try:
            taken_on = date.fromisoformat(created[:10])
        except ValueError as exc:
            raise RequestInvalid(f"createdDateTime is not a date: {created!r}") from exc
    return MediaUpload(subject.removeprefix("Patient/"), data, site, taken_on)


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []
