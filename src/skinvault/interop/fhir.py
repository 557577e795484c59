"""FHIR R4 (4.0.1) resources as JSON dicts, built from plain facts: pure, no I/O.

    >>> patient("pt1", "Ann Smith")["resourceType"]
    'Patient'
    >>> outcome("forbidden", "The patient withdrew consent for teaching.")["issue"][0]["code"]
    'forbidden'

The mapping tables (purposes → v3-ActReason, consent scopes → security labels,
body sites → SNOMED CT, audit actions → DICOM audit event types) are in
docs/interop.md; tests/interop check every resource built here with the R4
JSON schema, a StructureDefinition-driven validator and the FHIRPath
invariants.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from skinvault import __version__
from skinvault.interop.sites import LATERALITY, LATERALITY_ATTRIBUTE, SNOMED_SYSTEM, coded
from skinvault.policy.purposes import HL7_PURPOSE_SYSTEM, Purpose, Scope

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
LOCAL_SCOPE = "urn:skinvault:consent-scope"
LOCAL_ACTION = "urn:skinvault:audit-action"
#: No LOINC or SNOMED CT concept names "share of the visible skin that is depigmented",
#: so the measurements have local codes (docs/interop.md lists them).
LOCAL_MEASUREMENT = "urn:skinvault:measurement"
LOCAL_METHOD = "urn:skinvault:measurement-method"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
#: measurement kind (tracking's Measurement.kind) -> display of its local code
MEASUREMENT_CODES = {
    "depigmented-share": "Depigmented share of the visible skin in the photographed region",
    "skin-share": "Share of the photographed region that is skin",
}

Json = dict[str, Any]

#: Consent scopes as security labels: HL7 where HL7 has the obligation, ours otherwise.
SCOPE_LABELS: dict[Scope, tuple[str, str, str]] = {
    Scope.DEIDENTIFIED: (ACT_CODE, "DEID", "deidentify"),
    Scope.INTERNAL: (LOCAL_SCOPE, "internal", "inside this organisation only"),
    Scope.CROPPED: (LOCAL_SCOPE, "cropped", "only a crop to the skin area"),
    Scope.NO_FACE: (LOCAL_SCOPE, "no-face", "only versions in which no face can be seen"),
}

#: audit action -> (DICOM audit event type code, display, FHIR AuditEvent.action)
_EVENT_TYPES = {
    "photo:export-dicom": ("110106", "Export", "R"),
    "photo:export-fhir": ("110106", "Export", "R"),
    "photo:send": ("110106", "Export", "R"),
    "record:export-fhir": ("110106", "Export", "R"),
    "photo:store": ("110107", "Import", "C"),
    "photo:delete": ("110110", "Patient Record", "D"),
    "photo:shred": ("110110", "Patient Record", "D"),
}
_OUTCOMES = {"allowed": "0", "done": "0", "denied": "4", "failed": "8"}


def instant(moment: datetime) -> str:
    """An R4 instant/dateTime with a time zone (stored times are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def purpose_coding(purpose: Purpose | str) -> Json:
    chosen = Purpose(purpose)
    return {"system": HL7_PURPOSE_SYSTEM, "code": chosen.hl7_code}


def outcome(code: str, diagnostics: str, severity: str = "error") -> Json:
    """An OperationOutcome; ``code`` from the R4 issue-type value set (forbidden, not-found, …)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def patient(patient_id: str, name: str) -> Json:
    """A minimal Patient: the id and the name as the record holds it (free text)."""
    resource: Json = {"resourceType": "Patient", "id": patient_id}
    if name.strip():
        resource["name"] = [{"text": name.strip()}]
    return resource


def body_site(site: str | None, label: str | None) -> Json | None:
    code = coded(site)
    if code is None:
        return {"text": label or site} if (label or site) else None
    codings = [{"system": SNOMED_SYSTEM, "code": code.code, "display": code.meaning}]
    if code.laterality:
        side_code, side = LATERALITY[code.laterality]
        # Post-coordinated SNOMED CT expression: the region with its laterality.
        codings.insert(
            0,
            {
                "system": SNOMED_SYSTEM,
                "code": f"{code.code}:{LATERALITY_ATTRIBUTE}={side_code}",
                "display": f"{code.meaning}, {side.lower()}",
            },
        )
    return {"coding": codings, "text": label or site}


@dataclass(frozen=True)
class MediaFacts:
    photo_id: str
    patient_id: str | None  # None when de-identified
    site: str | None
    site_label: str | None
    created: date | datetime | None
    media_type: str
    size: int
    sha1: bytes | None  # None: not computed (a photo just stored; read it to get the hash)
    width: int
    height: int


def media(facts: MediaFacts) -> Json:
    """The photo as an R4 Media; its bytes are the Binary the content url names."""
    resource: Json = {
        "resourceType": "Media",
        "id": facts.photo_id,
        "status": "completed",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/media-type",
                    "code": "image",
                    "display": "Image",
                }
            ]
        },
        "modality": {
            "coding": [{"system": DCM, "code": "XC", "display": "External-camera Photography"}]
        },
    }
    if facts.patient_id:
        resource["subject"] = {"reference": f"Patient/{facts.patient_id}"}
    if isinstance(facts.created, datetime):
        resource["createdDateTime"] = instant(facts.created)
    elif isinstance(facts.created, date):
        resource["createdDateTime"] = facts.created.isoformat()
    site = body_site(facts.site, facts.site_label)
    if site is not None:
        resource["bodySite"] = site
    resource["height"] = facts.height
    resource["width"] = facts.width
    resource["content"] = {
        "contentType": facts.media_type,
        "url": f"Binary/{facts.photo_id}",
        "size": facts.size,
    }
    if facts.sha1 is not None:
        resource["content"]["hash"] = base64.b64encode(facts.sha1).decode("ascii")
    return resource


def binary(photo_id: str, media_type: str, data: bytes, patient_id: str | None) -> Json:
    resource: Json = {
        "resourceType": "Binary",
        "id": photo_id,
        "contentType": media_type,
        "data": base64.b64encode(data).decode("ascii"),
    }
    if patient_id:
        resource["securityContext"] = {"reference": f"Patient/{patient_id}"}
    return resource


@dataclass(frozen=True)
class ConsentFacts:
    consent_id: str
    patient_id: str
    purpose: Purpose
    granted: bool
    scopes: frozenset[Scope]
    recorded_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    current: bool  # the answer in force for its purpose (older answers are inactive)
    text_version: str


def consent(facts: ConsentFacts) -> Json:
    """One recorded answer for one purpose as an R4 Consent."""
    end = min((t for t in (facts.expires_at, facts.revoked_at) if t is not None), default=None)
    period: Json = {"start": instant(facts.recorded_at)}
    if end is not None:
        period["end"] = instant(end)
    provision: Json = {
        "type": "permit" if facts.granted else "deny",
        "period": period,
        "purpose": [purpose_coding(facts.purpose)],
    }
    labels = [
        {"system": s, "code": c, "display": d}
        for scope, (s, c, d) in sorted(SCOPE_LABELS.items())
        if scope in facts.scopes
    ]
    if labels:
        provision["securityLabel"] = labels
    return {
        "resourceType": "Consent",
        "id": facts.consent_id,
        "status": "active" if facts.current else "inactive",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                    "display": "Privacy Consent",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}
                ]
            }
        ],
        "patient": {"reference": f"Patient/{facts.patient_id}"},
        "dateTime": instant(facts.recorded_at),
        "policyRule": {
            "coding": [
                {
                    "system": ACT_CODE,
                    "code": "OPTIN" if facts.granted else "OPTOUT",
                }
            ],
            "text": f"skinvault consent text {facts.purpose.value} version {facts.text_version}",
        },
        "provision": provision,
    }


@dataclass(frozen=True)
class ObservationFacts:
    measurement_id: str
    photo_id: str
    patient_id: str | None  # None when de-identified
    site: str | None
    site_label: str | None
    effective: date | datetime | None  # when the photo was taken (None when de-identified)
    issued: datetime | None  # when it was measured (None when de-identified)
    kind: str  # depigmented-share | skin-share
    value: float | None  # None: not measured (a note says why; dataAbsentReason is sent)
    method: str
    version: str
    notes: tuple[str, ...] = ()
    colour_reference: str | None = None  # "own-skin" or the reference card found


def observation(facts: ObservationFacts) -> Json:
    """One stored measurement of a photo as an R4 Observation (a measurement aid)."""
    resource: Json = {
        "resourceType": "Observation",
        "id": facts.measurement_id,
        "status": "final",
        "category": [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": "imaging", "display": "Imaging"}]}
        ],
        "code": {
            "coding": [
                {
                    "system": LOCAL_MEASUREMENT,
                    "code": facts.kind,
                    "display": MEASUREMENT_CODES.get(facts.kind, facts.kind),
                }
            ],
            "text": MEASUREMENT_CODES.get(facts.kind, facts.kind),
        },
    }
    if facts.patient_id:
        resource["subject"] = {"reference": f"Patient/{facts.patient_id}"}
    if isinstance(facts.effective, datetime):
        resource["effectiveDateTime"] = instant(facts.effective)
    elif isinstance(facts.effective, date):
        resource["effectiveDateTime"] = facts.effective.isoformat()
    if facts.issued is not None:
        resource["issued"] = instant(facts.issued)
    if facts.value is None:  # obs-6: dataAbsentReason only when there is no value
        resource["dataAbsentReason"] = {
            "coding": [
                {"system": DATA_ABSENT_REASON, "code": "not-performed", "display": "Not Performed"}
            ],
            "text": "not measured (the photo could not show it; a note says why)",
        }
    else:
        resource["valueQuantity"] = {
            "value": round(float(facts.value), 2),
            "unit": "%",
            "system": UCUM,
            "code": "%",
        }
    notes = ["A measurement aid, not a diagnosis.", *facts.notes]
    resource["note"] = [{"text": n} for n in notes if n]
    site = body_site(facts.site, facts.site_label)
    if site is not None:
        resource["bodySite"] = site
    method_text = f"{facts.method} version {facts.version}"
    if facts.colour_reference:
        method_text += f"; colour reference: {facts.colour_reference}"
    resource["method"] = {
        "coding": [{"system": LOCAL_METHOD, "code": facts.method, "version": facts.version}],
        "text": method_text,
    }
    resource["derivedFrom"] = [{"reference": f"Media/{facts.photo_id}"}]
    return resource


@dataclass(frozen=True)
class EventFacts:
    seq: int
    at: datetime
    actor: str  # "<id> <name>" as the audit log stores it
    action: str
    object: str  # photo:<id> | patient:<id>
    purpose: str | None
    outcome: str
    reason: str | None


def audit_event(facts: EventFacts) -> Json:
    """One event of the hash-chained log as an R4 AuditEvent."""
    code, display, verb = _EVENT_TYPES.get(facts.action, ("110110", "Patient Record", "R"))
    actor_id, _, name = facts.actor.partition(" ")
    kind, _, ref = facts.object.partition(":")
    resource: Json = {
        "resourceType": "AuditEvent",
        "id": str(facts.seq),
        "type": {"system": DCM, "code": code, "display": display},
        "subtype": [{"system": LOCAL_ACTION, "code": facts.action}],
        "action": verb,
        "recorded": instant(facts.at),
        "outcome": _OUTCOMES.get(facts.outcome, "8"),
        "agent": [
            {
                "who": {
                    "identifier": {"system": "urn:skinvault:user", "value": actor_id},
                    "display": name or actor_id,
                },
                "requestor": True,
            }
        ],
        "source": {"observer": {"display": f"skinvault {__version__}"}},
    }
    if facts.reason:
        resource["outcomeDesc"] = facts.reason
    if facts.purpose in {p.value for p in Purpose}:
        # (an unknown purpose someone typed stays in the log's text, uncoded)
        resource["purposeOfEvent"] = [{"coding": [purpose_coding(facts.purpose)]}]
    target = {"photo": "Media", "patient": "Patient"}.get(kind)
    if target and ref:
        resource["entity"] = [{"what": {"reference": f"{target}/{ref}"}}]
    return resource


def bundle(
    resources: Sequence[Json],
    *,
    base: str,
    kind: str = "searchset",
    total: int | None = None,
    links: Iterable[tuple[str, str]] = (),
) -> Json:
    """A searchset (paged) or collection Bundle of ``resources``."""
    result: Json = {"resourceType": "Bundle", "type": kind}
    if kind == "searchset":
        result["total"] = len(resources) if total is None else total
    link_list = [{"relation": rel, "url": url} for rel, url in links]
    if link_list:
        result["link"] = link_list
    entries = []
    for r in resources:
        entry: Json = {"resource": r}
        if "id" in r:
            entry = {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", **entry}
        if kind == "searchset":
            entry["search"] = {"mode": "match"}
        entries.append(entry)
    if entries:
        result["entry"] = entries
    return result


SEARCHES = {
    "Media": ["patient", "_count", "_offset"],
    "Consent": ["patient", "_count", "_offset"],
    "AuditEvent": ["patient", "_count", "_offset"],
    "Observation": ["patient", "_count", "_offset"],
}


def capability_statement(base: str, now: datetime) -> Json:
    """What this server supports (read, search, create Media, Patient/$everything)."""

    def res(kind: str, interactions: list[str]) -> Json:
        entry: Json = {"type": kind, "interaction": [{"code": i} for i in interactions]}
        params = [p for p in SEARCHES.get(kind, []) if not p.startswith("_")]
        if params:
            entry["searchParam"] = [{"name": p, "type": "reference"} for p in params]
        if kind == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                }
            ]
        return entry

    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(now),
        "publisher": "skinvault",
        "kind": "instance",
        "software": {"name": "skinvault", "version": __version__},
        "implementation": {"description": "skinvault FHIR R4 interface", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Bearer tokens from /api/v1/auth/token. Reading photo bytes (Binary),"
                    " Media and Observation needs a purpose of use:"
                    " ?purpose=care|teaching|research|publication|ai-training, or the HL7"
                    " v3-ActReason code in the X-Purpose-Of-Use header."
                ),
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "OAuth",
                                }
                            ]
                        }
                    ]
                },
                "resource": [
                    res("Patient", ["read"]),
                    res("Media", ["read", "search-type", "create"]),
                    res("Binary", ["read"]),
                    res("Consent", ["read", "search-type"]),
                    res("AuditEvent", ["read", "search-type"]),
                    res("Observation", ["read", "search-type"]),
                ],
            }
        ],
    }
