"""The privacy facts of this installation, in plain words, from its configuration alone.

    >>> facts = privacy_facts(load_settings(blob_store="s3://clinic-photos/vault"))
    ...                                                                    # doctest: +SKIP
    >>> facts.images_stored                                                # doctest: +SKIP
    'In the S3 bucket "clinic-photos" (under "vault/") at the default AWS endpoint.'
    >>> print(facts.as_text())                                             # doctest: +SKIP

Pure: no file, database or network is touched, so the page and the CLI can
show the facts even when the vault is down, and a test can check that each
setting changes them. The facts say what a patient needs (who, where, how long,
how it is protected, which outside companies) and nothing an attacker could use:
no server path (data dir, key folder, database file), no database host, no
credentials, and keys are named by the kind of place they are kept, never by
their value or location on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from skinvault.config import Settings

NOT_CONFIGURED = "not configured"

AI_TRAINING = (
    "Photos are used to train AI models only with the patient's explicit consent for"
    " ai-training; without it, never."
)
WHO_CAN_SEE = (
    "The patient, and the clinicians and staff of their care team, can see their photos."
    " Anyone else (teachers, researchers, publishers, someone a photo is shared with)"
    " sees a photo only with the patient's consent for that purpose, and every view is"
    " written to a tamper-evident audit log."
)


@dataclass(frozen=True)
class Retention:
    clinical_photo_days: int
    teaching_copy_days: int
    share_link_days: int


@dataclass(frozen=True)
class PrivacyFacts:
    """What a patient or auditor may ask about this installation; every field is plain text."""

    organisation: str
    contact: str
    contact_configured: bool
    location: str
    images_stored: str
    database: str
    encryption: str
    retention: Retention
    sub_processors: tuple[str, ...]
    ai_training: str
    who_can_see: str

    def retention_text(self) -> dict[str, str]:
        r = self.retention
        return {
            "clinical_photos": (
                f"Clinical photos are kept {period(r.clinical_photo_days)} after upload,"
                " then shredded."
            ),
            "teaching_copies": (
                f"Copies made for teaching or research are kept {period(r.teaching_copy_days)},"
                " then shredded."
            ),
            "share_links": (
                f"Records of expired or revoked share links are kept {period(r.share_link_days)},"
                " then removed."
            ),
        }

    def as_json(self) -> dict[str, object]:
        r = self.retention
        return {
            "organisation": self.organisation,
            "contact": self.contact if self.contact_configured else None,
            "contact_configured": self.contact_configured,
            "location": self.location,
            "images_stored": self.images_stored,
            "database": self.database,
            "encryption": self.encryption,
            "retention": {
                "clinical_photo_days": r.clinical_photo_days,
                "teaching_copy_days": r.teaching_copy_days,
                "share_link_days": r.share_link_days,
                "text": self.retention_text(),
            },
            "sub_processors": list(self.sub_processors),
            "ai_training": self.ai_training,
            "who_can_see": self.who_can_see,
        }

    def as_text(self) -> str:
        contact = (
            self.contact
            if self.contact_configured
            else f"{NOT_CONFIGURED} (WARNING: set privacy_contact so patients can reach you)"
        )
        processors = ", ".join(self.sub_processors) if self.sub_processors else "none"
        paragraphs = [
            f"Who is responsible: {self.organisation}. Privacy questions and deletion"
            f" requests: {contact}.",
            f"Where photos are stored: {self.location}. {self.images_stored} Records (who,"
            f" what, when; never the image itself) are kept in {self.database}.",
            f"How they are protected: {self.encryption}",
            "How long they are kept: " + " ".join(self.retention_text().values()),
            f"Who can see them: {self.who_can_see}",
            f"AI training: {self.ai_training}",
            f"Outside companies that process data for us (sub-processors): {processors}.",
        ]
        return "\n\n".join(paragraphs) + "\n"


def period(days: int) -> str:
    """``3650`` → ``'10 years (3650 days)'``; ``90`` → ``'90 days'``."""
    if days == 1:
        return "1 day"
    if days % 365 == 0:
        years = days // 365
        return f"{years} year{'s' if years != 1 else ''} ({days} days)"
    return f"{days} days"


def _host(netloc_url: str) -> str:
    """An endpoint URL without any user or password in it."""
    parts = urlsplit(netloc_url)
    if not parts.hostname:
        return "(an endpoint that is not understood)"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}".rstrip("/")


def _images_stored(settings: Settings) -> str:
    """Where the photos are, as a patient needs it: on whose machines, never a server path."""
    url = settings.blob_store.strip()
    if url in ("", "local") or urlsplit(url).scheme == "file":
        return (
            "On the server that runs the service, in storage only the service can read;"
            " every photo is stored encrypted."
        )
    if url == "memory://":
        return "In the server's memory only (a test set-up: everything is lost when it stops)."
    if urlsplit(url).scheme == "s3":
        if settings.s3_endpoint_url:
            where = f"S3-compatible object storage at {_hostname(settings.s3_endpoint_url)}"
        else:
            where = "Amazon S3 (Amazon Web Services)"
        region = f", region {settings.s3_region}" if settings.s3_region else ""
        return f"In {where}{region}; every photo is stored encrypted."
    return "In a storage location that is not understood (the blob_store setting is invalid)."


def _hostname(endpoint: str) -> str:
    """The company's host name of an endpoint, without user, password, port or path."""
    return urlsplit(endpoint).hostname or "an endpoint that is not understood"


def _database(settings: Settings) -> str:
    try:
        url = make_url(settings.effective_database_url)
    except ArgumentError:
        return "a database whose address is not understood"
    backend = url.get_backend_name()
    if backend == "sqlite":
        if (url.database or ":memory:") == ":memory:":
            return "an SQLite database in memory (a test set-up)"
        return "an SQLite database on the server that runs the service"
    kind = {"postgresql": "PostgreSQL"}.get(backend, backend)
    return f"a {kind} database run for this service"


def _encryption(settings: Settings) -> str:
    where = (
        "key files on the server that only the service's account can read"
        if settings.key_source == "file"
        else "the environment of the server process, never in the database"
    )
    return (
        "Every photo is encrypted with its own key (AES-256-GCM per photo); those keys are"
        f" wrapped by a key-encryption key kept in {where}. Location and camera details are"
        " removed from every photo before it is stored. Deleting a photo destroys its key,"
        " so the encrypted file, and any copy of it, can no longer be opened; only a database"
        " backup made before the deletion still holds the key, until that backup expires."
    )


def _mail_relay(settings: Settings) -> tuple[str, ...]:
    """The mail relay, when e-mail is on: it sees addresses and "something new" notices."""
    if not settings.smtp_host:
        return ()
    name = settings.mail_relay_name.strip() or settings.smtp_host
    return (f"{name} (e-mail relay: sign-in notices without health information)",)


def privacy_facts(settings: Settings) -> PrivacyFacts:
    """The facts for ``settings``; reads nothing but the settings object."""
    contact = settings.privacy_contact.strip()
    return PrivacyFacts(
        organisation=settings.organisation,
        contact=contact or NOT_CONFIGURED,
        contact_configured=bool(contact),
        location=settings.data_location.strip() or "not stated by the operator",
        images_stored=_images_stored(settings),
        database=_database(settings),
        encryption=_encryption(settings),
        retention=Retention(
            settings.retention_clinical_photo_days,
            settings.retention_teaching_copy_days,
            settings.retention_share_link_days,
        ),
        sub_processors=(
            *(s for s in settings.sub_processors if s.strip()),
            *_mail_relay(settings),
        ),
        ai_training=AI_TRAINING,
        who_can_see=WHO_CAN_SEE,
    )


__all__ = ["PrivacyFacts", "Retention", "period", "privacy_facts"]
