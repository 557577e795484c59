"""Settings from defaults, a TOML file, environment variables and command-line overrides.

Later sources win: defaults < TOML file (``--config`` or ``SKINVAULT_CONFIG``)
< ``SKINVAULT_*`` environment variables < explicit overrides.

    >>> s = load_settings(data_dir="/tmp/sv")                 # doctest: +SKIP
    >>> s.effective_database_url
    'sqlite:////tmp/sv/skinvault.db'

Nothing here is created at import time: callers ask for :func:`load_settings`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from skinvault.errors import ConfigError


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/skinvault``, i.e. ``~/.local/share/skinvault`` on most systems."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "skinvault"


class Settings(BaseSettings):
    """Every setting of skinvault. Each is documented in docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="SKINVAULT_", frozen=True, extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    #: SQLAlchemy URL; empty means SQLite in the data dir.
    database_url: str = ""
    #: PostgreSQL connections each process keeps pooled, and how many more it may open at
    #: busy times (each worker is a process: N workers use up to N × (size + overflow)).
    database_pool_size: int = Field(default=5, ge=1, le=200)
    database_pool_overflow: int = Field(default=10, ge=0, le=200)
    #: "local" (the data dir's blobs/ folder), "file:///path", or "s3://bucket/prefix".
    blob_store: str = "local"
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    #: Seconds to wait for the S3 endpoint to accept a connection, and for each answer.
    s3_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    s3_read_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    #: Tries per S3 call (with backoff) before the blob store counts as unavailable (503).
    s3_max_attempts: int = Field(default=3, ge=1, le=10)
    #: Seconds /readyz waits for the database and for the blob store before it answers 503.
    readiness_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    #: One JSON line per request on stderr (method, route template, status, duration, actor
    #: id; never query strings, addresses or names).
    request_log: bool = True
    #: A token /metrics asks for (``Authorization: Bearer …``); empty: /metrics answers only
    #: requests from this machine (loopback).
    metrics_token: SecretStr = SecretStr("")
    #: "file": key files in <data dir>/keys (created 0600); "env": SKINVAULT_KEK.
    key_source: Literal["file", "env"] = "file"
    #: A signed audit checkpoint is written after this many events.
    audit_checkpoint_every: int = Field(default=1000, ge=1)
    #: The server signs the log's head this often (seconds) when anything was appended, and
    #: keeps the latest signed head outside the database, in <data dir>/keys/audit-head.json.
    audit_checkpoint_seconds: int = Field(default=300, ge=1)
    #: A second folder the signed head is also written to (another disk, a mounted share).
    audit_head_copy_dir: Path | None = None
    #: Uploads larger than this are refused before they are read in full.
    max_upload_bytes: int = Field(default=40 * 1024 * 1024, ge=1024)
    #: Longest side, in pixels, of the thumbnail derivative.
    thumbnail_size: int = Field(default=320, ge=32, le=2048)

    #: Days a clinical photo (and its thumbnail) is kept after upload; then it is shredded.
    retention_clinical_photo_days: int = Field(default=3650, ge=1)
    #: Days a teaching/research copy (a derivative made for secondary use) is kept.
    retention_teaching_copy_days: int = Field(default=1825, ge=1)
    #: Days an expired or revoked share link's record is kept before it is removed.
    retention_share_link_days: int = Field(default=90, ge=1)
    #: ``serve`` applies the retention rules this often, in seconds; 0 (the default): never —
    #: it shreds photos, so it is turned on once the periods above are the clinic's own.
    retention_run_seconds: int = Field(default=0, ge=0)
    #: ``serve`` removes orphaned blobs (older than 15 minutes) this often; 0: never.
    sweep_seconds: int = Field(default=3600, ge=0)
    #: Failed sign-ins from one client address, within the window, before it must wait.
    sign_in_failures_per_address: int = Field(default=20, ge=1)
    #: Minutes over which failed sign-ins of one address are counted.
    sign_in_window_minutes: int = Field(default=5, ge=1)
    #: Failed sign-ins for one account from one address that lock that pair.
    lockout_failures: int = Field(default=5, ge=1)
    #: Minutes the pair stays locked; doubles with every further run of failures that day.
    lockout_minutes: int = Field(default=15, ge=1)
    #: New patient accounts one client address may create per hour.
    signups_per_address_per_hour: int = Field(default=10, ge=1)
    #: Hours a one-time account link (set up, password reset, TOTP reset) stays valid.
    account_link_hours: int = Field(default=72, ge=1, le=24 * 30)
    #: Addresses of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are trusted
    #: (e.g. ["127.0.0.1"] behind a local nginx). Empty: forwarded headers are ignored.
    trusted_proxies: list[str] = Field(default_factory=list)
    #: The address patients and recipients use to reach the service (e.g.
    #: "https://photos.clinic.example"): every link that leaves it (share links, set-up and
    #: reset links) is built on it. Empty: the address ``serve`` listens on and prints.
    public_base_url: str = ""
    #: Wrong passwords a share link takes before it locks (the sender can reissue it).
    share_link_password_tries: int = Field(default=10, ge=1)
    #: Refused share-link opens (wrong password, unknown link) from one client address,
    #: within the window, before that address must wait.
    share_link_failures_per_address: int = Field(default=30, ge=1)
    #: Minutes over which refused share-link opens of one address are counted.
    share_link_window_minutes: int = Field(default=15, ge=1)
    #: Where the data is kept, in words a patient understands (e.g. "Germany, in Hetzner's
    #: Falkenstein data centre"); shown in the privacy facts.
    data_location: str = ""
    #: Who runs this service, as the privacy facts name it.
    organisation: str = "This clinic"
    #: Where patients send privacy questions and deletion requests (e-mail or URL).
    privacy_contact: str = ""
    #: Outside companies that process data for the service (hosting, storage, e-mail).
    sub_processors: list[str] = Field(default_factory=list)
    #: DICOM destinations a clinician may send a photo to, by name: "dicom://AET@host:port"
    #: (C-STORE) or "https://host/dicom-web" (STOW-RS). See docs/interop.md.
    dicom_destinations: dict[str, str] = Field(default_factory=dict)
    #: The AE title skinvault calls itself when it sends by C-STORE.
    dicom_calling_aet: str = Field(default="SKINVAULT", min_length=1, max_length=16)
    #: Attempts per send before it is recorded as failed (waits 1 s, 2 s, … in between).
    dicom_send_attempts: int = Field(default=3, ge=1, le=10)
    #: Seconds one send attempt may take (connect, association, answer) before it counts as
    #: failed; a portal send waits at most attempts x this, plus 1 s, 2 s, ... between tries.
    dicom_send_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    #: The mail relay notification e-mails go through; empty: no e-mail is ever sent (the
    #: portal's notification list still works). See docs/notifications.md.
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    #: "starttls" (upgrade on the submission port), "tls" (implicit TLS, usually port 465),
    #: or "none" — allowed only for a relay on this machine (localhost, 127.0.0.1, ::1).
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    #: The relay password; better kept out of the TOML file: SKINVAULT_SMTP_PASSWORD or
    #: smtp_password_file.
    smtp_password: SecretStr = SecretStr("")
    #: A file holding the relay password (first line), e.g. a container secret.
    smtp_password_file: Path | None = None
    #: Certificate authorities (PEM) the relay's certificate is checked against; empty: the
    #: system's.
    smtp_ca_file: Path | None = None
    #: Seconds one SMTP conversation may take before the attempt counts as failed.
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    #: The From address of notification e-mails (required when smtp_host is set).
    mail_from: str = ""
    #: How the privacy facts name the mail relay as a sub-processor (default: its host name).
    mail_relay_name: str = ""
    #: Tries per e-mail before it is given up (waits mail_retry_seconds, doubling, between).
    mail_attempts: int = Field(default=8, ge=1, le=50)
    mail_retry_seconds: int = Field(default=60, ge=1)
    #: How a new user's notices are delivered until they choose: "portal" (the list only),
    #: "immediate" (also an e-mail) or "digest" (also one e-mail a day at most).
    notification_default_delivery: Literal["portal", "immediate", "digest"] = "immediate"
    #: The background worker sends due e-mails and runs the notice sweeps (links expired
    #: unused, consents about to end, digests) this often, in seconds.
    notification_sweep_seconds: int = Field(default=60, ge=1)
    #: Days before a consent ends that the patient is told.
    consent_expiry_notice_days: int = Field(default=14, ge=1, le=365)
    #: Background job threads each ``serve`` process runs (thumbnails, display versions,
    #: scheduled upkeep); 0: none, jobs wait for a separate ``skinvault worker``.
    job_threads: int = Field(default=1, ge=0, le=32)
    #: Seconds a worker holds a job it took; a worker killed mid-job gives it back after.
    job_lease_seconds: int = Field(default=300, ge=1)
    #: Tries per job before it is dead (kept with its error for ``skinvault jobs``).
    job_attempts: int = Field(default=5, ge=1, le=50)
    #: Wait after a job's first failed try; doubles after each further one (at most an hour).
    job_retry_seconds: int = Field(default=10, ge=1)
    #: How often an idle worker looks for new jobs (a job enqueued in the same process
    #: wakes it at once).
    job_poll_seconds: float = Field(default=2.0, gt=0, le=60)

    @field_validator("public_base_url")
    @classmethod
    def _public_base(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value:
            return ""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"public_base_url must be an http(s):// address, not {value!r}")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("public_base_url takes no user, query or fragment")
        return value

    @model_validator(mode="after")
    def _mail(self) -> Settings:
        if not self.smtp_host:
            return self
        if not self.mail_from or "@" not in self.mail_from:
            raise ValueError("smtp_host is set: mail_from must be an e-mail address")
        if self.smtp_security == "none" and self.smtp_host not in ("localhost", "127.0.0.1", "::1"):
            raise ValueError("smtp_security = none is allowed only for a relay on this machine")
        return self

    @property
    def mail_enabled(self) -> bool:
        return bool(self.smtp_host)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'skinvault.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def _with_file(path: Path) -> type[Settings]:
    """Settings that also read ``path`` (TOML), below the environment in priority."""

    class FileSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            toml = TomlConfigSettingsSource(settings_cls, toml_file=path)
            return (init_settings, env_settings, toml)

    return FileSettings


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from all sources; ``None`` overrides are ignored (option not given)."""
    env_file = os.environ.get("SKINVAULT_CONFIG")
    path = config_file or (Path(env_file) if env_file else None)
    if path is not None and not path.is_file():
        raise ConfigError(f"the configuration file {path} does not exist")
    chosen = Settings if path is None else _with_file(path)
    try:
        return chosen(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        raise ConfigError(f"invalid setting: {exc}") from exc
