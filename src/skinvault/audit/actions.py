"""The closed vocabulary of the audit log: what was attempted, and how it ended.

>>> from skinvault.audit.actions import Action, Outcome
>>> Action.PHOTO_VIEW, Outcome.DENIED
(<Action.PHOTO_VIEW: 'photo:view'>, <Outcome.DENIED: 'denied'>)
>>> str(Action("photo:view"))
'photo:view'
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """Every action the audit log can name; the stored text is the value."""

    PHOTO_STORE = "photo:store"
    PHOTO_VIEW = "photo:view"
    PHOTO_THUMBNAIL = "photo:thumbnail"
    PHOTO_DELETE = "photo:delete"
    PHOTO_SHARE = "photo:share"
    PHOTO_DESCRIBE = "photo:describe"
    PHOTO_REQUEST = "photo:request"
    PHOTO_SHRED = "photo:shred"  # retention: the data key destroyed when the period ended
    PHOTO_EXPORT_DICOM = "photo:export-dicom"  # a DICOM file made for someone (leaves skinvault)
    PHOTO_EXPORT_FHIR = "photo:export-fhir"  # the bytes as a FHIR Binary (leaves skinvault)
    PHOTO_SEND = "photo:send"  # a DICOM file sent to a configured destination (PACS)
    PHOTO_VERSION = "photo:version"  # a version made for a consent's limits or for browsers
    PHOTO_MARKUP = "photo:markup"  # face boxes confirmed/added or the crop region chosen
    RECORD_EXPORT_FHIR = "record:export-fhir"  # FHIR resources of a record read (Patient, …)
    RECORD_EXPORT_ARCHIVE = "record:export-archive"  # the patient's own encrypted 7z archive
    PHOTO_EXPORT_ARCHIVE = "photo:export-archive"  # one photo's bytes put in that archive
    PUBLIC_COPY_MAKE = "public-copy:make"  # a public copy made (the photo is never named)
    COPY_SHRED = "copy:shred"
    SHARE_LINK_PURGE = "share-link:purge"
    CONSENT_GRANT = "consent:grant"
    CONSENT_REFUSE = "consent:refuse"
    CONSENT_REVOKE = "consent:revoke"
    CARE_START = "care:start"
    CARE_END = "care:end"
    DELETION_REQUEST = "deletion:request"
    DELETION_DECIDE = "deletion:decide"
    RECORD_ACCESS = "record:access"  # record-level requests (list, upload, consents, history)
    PHOTO_MEASURE = "photo:measure"  # the depigmented share measured and stored (tracking)
    PHOTO_ANNOTATE = "photo:annotate"  # capture date / details / site corrected (tracking)
    MEASUREMENT_VIEW = "measurement:view"  # a photo's measurement shown (same decision as view)
    MEASUREMENT_EXPORT_FHIR = "measurement:export-fhir"  # measurements read as FHIR Observations
    AUTH_LOGIN = "auth:login"
    AUTH_LOGOUT = "auth:logout"
    AUTH_LOCKOUT = "auth:lockout"
    AUTH_PASSWORD_CHANGE = "auth:password-change"
    AUTH_TOTP_ENROL = "auth:totp-enrol"
    AUTH_TOTP_CONFIRM = "auth:totp-confirm"
    AUTH_TOKEN_ISSUE = "auth:token-issue"
    AUTH_TOKEN_REVOKE = "auth:token-revoke"
    AUTH_SESSION_START = "auth:session-start"
    AUTH_SETUP_TOKEN_CREATE = "auth:setup-token-create"
    AUTH_SETUP_TOKEN_USE = "auth:setup-token-use"
    SHARE_LINK_OPEN = "share-link:open"
    SHARE_LINK_REVOKE = "share-link:revoke"
    SHARE_LINK_EMAIL = "share-link:email"  # the sender had the link e-mailed to an address
    USER_CREATE = "user:create"
    USER_DISABLE = "user:disable"
    USER_ENABLE = "user:enable"
    USER_UNLOCK = "user:unlock"
    USER_RESET_PASSWORD = "user:reset-password"  # a one-time link to choose a new password
    USER_RESET_TOTP = "user:reset-totp"  # the second factor cleared; re-enrolment by link
    ACCOUNT_LINK_ISSUE = "account-link:issue"
    ACCOUNT_LINK_USE = "account-link:use"
    BREAK_GLASS_START = "break-glass:start"  # a clinician opened a record outside the care team
    BREAK_GLASS_REVIEW = "break-glass:review"  # the privacy officer closed a case, with a note
    BREAK_GLASS_ESCALATE = "break-glass:escalate"  # ... or passed it on for investigation
    KEY_ROTATE = "key:rotate"
    BLOB_SWEEP = "blob:sweep"


class Outcome(StrEnum):
    """How an attempt ended: a policy decision (allowed/denied) or a job result (done/failed)."""

    ALLOWED = "allowed"
    DENIED = "denied"
    DONE = "done"
    FAILED = "failed"
