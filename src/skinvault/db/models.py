"""SQLAlchemy 2 tables of the vault (the first-cut data model of ARCHITECTURE.md).

These classes are storage shapes only: services turn them into domain objects
and the web layer into response schemas. Times are stored as UTC and always
read back timezone-aware (:class:`UTCDateTime`), on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = String(32)  # uuid4 hex

# Stable constraint names, so Alembic migrations read the same on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive values are refused."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware UTC time")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200))
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: True once the user proved a TOTP code at enrolment; before that the secret is pending.
    totp_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The 30-second step of the last accepted code: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CareRelationship(Base):
    __tablename__ = "care_relationships"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    clinician_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BodySite(Base):
    __tablename__ = "body_sites"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))  # a skinvault.tracking.sites code
    label: Mapped[str] = mapped_column(String(200))
    laterality: Mapped[str | None] = mapped_column(String(8))  # left | right | None
    snomed_code: Mapped[str | None] = mapped_column(String(18))  # SNOMED CT body structure


class Photo(Base):
    __tablename__ = "photos"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("body_sites.id"))
    taken_on: Mapped[date | None] = mapped_column(Date, index=True)  # the photo-due sweep
    #: where taken_on came from: "photo" (read before scrubbing), "person" (typed), None
    taken_on_source: Mapped[str | None] = mapped_column(String(10))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    uploaded_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    #: capture details (treatment, lighting, distance, card) as JSON, sealed like the note
    details_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: The note (treatment, lighting, …) sealed like the photo itself (kind "note"); None if empty.
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    content_sha256: Mapped[str] = mapped_column(String(64))
    #: SHA-256 of the file as the person chose it (before scrubbing); None before 0013.
    original_sha256: Mapped[str | None] = mapped_column(String(64))
    #: 64-bit perceptual hash (photos/phash.py) as 16 hex digits, for the resend guard;
    #: None for photos stored before 0012.
    phash: Mapped[str | None] = mapped_column(String(16))
    blob_key: Mapped[str] = mapped_column(String(200), unique=True)
    #: None once shredded: the blob can never be decrypted again.
    wrapped_dek: Mapped[bytes | None] = mapped_column(LargeBinary)
    kek_id: Mapped[str | None] = mapped_column(String(32), index=True)
    format: Mapped[str] = mapped_column(String(10))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    scrub_report_json: Mapped[str] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Derivative(Base):
    __tablename__ = "derivatives"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # thumbnail | deidentified | redacted | aligned
    blob_key: Mapped[str] = mapped_column(String(200), unique=True)
    wrapped_dek: Mapped[bytes | None] = mapped_column(LargeBinary)
    kek_id: Mapped[str | None] = mapped_column(String(32), index=True)
    format: Mapped[str] = mapped_column(String(10))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: How a photo version was made: boxes covered, region kept (JSON); None for thumbnails.
    spec_json: Mapped[str | None] = mapped_column(Text)
    #: Who confirmed the boxes/region a version used (a user id), None if only detected.
    confirmed_by: Mapped[str | None] = mapped_column(String(32))


class DerivativeFailure(Base):
    """A derivative that could not be made and will not be by trying again (0016): the
    photo's pixels do not decode, so no thumbnail. ``reason`` is plain words (no health
    information); the preview says so instead of "being prepared". Made later after all
    (a retry after an upgrade of the decoder), the derivative's row replaces it."""

    __tablename__ = "derivative_failures"

    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # as Derivative.kind
    reason: Mapped[str] = mapped_column(String(1000))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PhotoMarkup(Base):
    """What the patient or clinician chose for a photo's versions (0011): face boxes
    confirmed or added, the crop region, and the detector's own boxes."""

    __tablename__ = "photo_markups"

    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id"), primary_key=True)
    detected_json: Mapped[str | None] = mapped_column(Text)
    boxes_json: Mapped[str] = mapped_column(Text)
    crop_json: Mapped[str | None] = mapped_column(Text)
    confirmed_by: Mapped[str | None] = mapped_column(String(32))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revision: Mapped[int] = mapped_column(Integer)


class Consent(Base):
    __tablename__ = "consents"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    granted: Mapped[bool] = mapped_column(Boolean)
    scopes: Mapped[str] = mapped_column(String(200), default="")  # comma-separated flags
    text_version: Mapped[str] = mapped_column(String(20))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    method: Mapped[str] = mapped_column(String(40), default="portal")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ShareLink(Base):
    __tablename__ = "share_links"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    single_use: Mapped[bool] = mapped_column(Boolean, default=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Password tries taken (reserved before the hash is checked, given back when right).
    password_tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Set when the tries ran out; the link stays shut until the sender reissues it.
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """One link of the hash chain; ``seq`` is assigned by the appender, never reused."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    object: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


Index("ix_audit_events_object", AuditEvent.object)


class AuditCheckpoint(Base):
    """A signed statement "event ``seq`` has hash ``hash``" an outside party can keep."""

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    public_key: Mapped[str] = mapped_column(String(64))  # Ed25519, hex
    signature: Mapped[str] = mapped_column(String(128))  # hex


class DeletionRequest(Base):
    __tablename__ = "deletion_requests"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    requested_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    scope: Mapped[str] = mapped_column(String(20))  # photo | series | everything
    scope_ref: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="open")
    decision: Mapped[str | None] = mapped_column(String(40))
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    explanation: Mapped[str | None] = mapped_column(Text)


class RetentionRule(Base):
    __tablename__ = "retention_rules"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    keep_for_days: Mapped[int] = mapped_column(Integer)


class ApiToken(Base):
    """A bearer token for an API client; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A signed-in browser; only the cookie's SHA-256 is stored."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Signed in with the password only, by a role that needs a second factor it has not
    #: set up: such a session may only see the enrolment page or sign out.
    second_factor_pending: Mapped[bool] = mapped_column(Boolean, default=False)


class AccountLink(Base):
    """A one-time, expiring link an administrator hands to a user: set up the account
    (choose a password, enrol the second factor), reset the password, or re-enrol TOTP.
    Only the token's SHA-256 is stored."""

    __tablename__ = "account_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignInFailure(Base):
    """One failed sign-in (or sign-up) attempt, keyed by what it limits: a client address,
    or an account name together with an address. Kept in the database so every worker
    counts the same attempts."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(400), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SetupToken(Base):
    """The one-time link that creates the first administrator of a fresh vault."""

    __tablename__ = "setup_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PhotoRequest(Base):
    """A clinician asking the patient for a photo of a body site, with capture guidance."""

    __tablename__ = "photo_requests"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    requested_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    site: Mapped[str] = mapped_column(String(64))
    guidance: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fulfilled_photo_id: Mapped[str | None] = mapped_column(ForeignKey("photos.id"))
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BreakGlassReview(Base):
    """One emergency access outside the care team, waiting for (or closed by) the privacy
    officer: a clinician's accesses to one patient's record for one reason, while open.

    States: ``open`` → ``reviewed`` (with a note), or ``open`` → ``escalated`` (with a
    note) → ``reviewed``. Each step is also an audit event on ``break-glass:<id>``.
    """

    __tablename__ = "break_glass_reviews"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    clinician_id: Mapped[str] = mapped_column(String(64), index=True)
    clinician: Mapped[str] = mapped_column(String(200))  # the audit name, id and display name
    reason: Mapped[str] = mapped_column(Text)  # as the clinician gave it
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_seq: Mapped[int] = mapped_column(Integer)  # audit events of this access, first ...
    last_seq: Mapped[int] = mapped_column(Integer)  # ... and last
    accesses: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(20), default="open", index=True)
    note: Mapped[str | None] = mapped_column(Text)  # the officer's latest note
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Measurement(Base):
    """One measured value of one photo (e.g. the depigmented share of its skin), exportable."""

    __tablename__ = "measurements"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # depigmented-share | skin-share
    value: Mapped[float | None] = mapped_column(Float)  # None: not measured (notes say why)
    unit: Mapped[str] = mapped_column(String(10))  # "%"
    method: Mapped[str] = mapped_column(String(60))
    version: Mapped[str] = mapped_column(String(20))
    region_json: Mapped[str | None] = mapped_column(Text)  # {"x","y","w","h"} or null
    details_json: Mapped[str] = mapped_column(Text, default="{}")  # card, colour ref, notes
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    measured_by: Mapped[str] = mapped_column(String(200))  # audit name, "system:measure"


class Notification(Base):
    """One thing a user should know happened, pointing to the page where it is. It holds no
    health information: a kind (closed vocabulary), an outcome word, a portal path and what
    it is about (``ref``, e.g. ``share-link:<id>``: one notice per user, kind and ref)."""

    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str | None] = mapped_column(String(40))
    link: Mapped[str] = mapped_column(String(200))
    ref: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: None (portal only) | "queued" (an e-mail is in the outbox) | "digest" (waits for the
    #: daily digest) | "digested" (went out in one)
    mail_state: Mapped[str | None] = mapped_column(String(10), index=True)


Index("uq_notifications_user_kind_ref", Notification.user_id, Notification.kind,
      Notification.ref, unique=True)  # fmt: skip


class NotificationPreference(Base):
    """How one user wants one kind of notice: off, portal, immediate (e-mail) or digest."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    delivery: Mapped[str] = mapped_column(String(10))


class MailOutbox(Base):
    """An e-mail waiting to go out (or gone). The body is sealed like a note (a share link's
    e-mail carries its token) and erased once sent; failures wait and are tried again."""

    __tablename__ = "mail_outbox"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    body_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(400))


class UploadDraft(Base):
    """A previewed upload kept for a few minutes so the save needs no second upload (0012).

    The scrubbed photo and its display image are sealed like a photo (their own data
    keys, bound to the draft id); deleting the row shreds both.
    """

    __tablename__ = "upload_drafts"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    photo_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    display_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(10))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    display_width: Mapped[int] = mapped_column(Integer)
    display_height: Mapped[int] = mapped_column(Integer)
    clues_json: Mapped[str] = mapped_column(Text)
    source_sha256: Mapped[str] = mapped_column(String(64))
    scrubbed_sha256: Mapped[str] = mapped_column(String(64))
    phash: Mapped[str] = mapped_column(String(16))
    #: the capture date read before scrubbing removed it
    taken_on: Mapped[date | None] = mapped_column(Date)


class Job(Base):
    """Background work waiting, running, done or dead (0014). The payload holds ids only,
    never health information; ``key`` makes enqueueing idempotent (one thumbnail job per
    photo, one purge a day)."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    payload_json: Mapped[str] = mapped_column(Text, default="{}")
    #: queued | running | done | dead (every try failed) | failed (no retry can help)
    state: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime)
    #: a fresh token per claim: only the holder of the current one may finish the job
    lease: Mapped[str | None] = mapped_column(String(32))
    leased_by: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(1000))


Index("ix_jobs_state_run_after", Job.state, Job.run_after)
