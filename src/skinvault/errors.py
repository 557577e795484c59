"""The one exception tree of skinvault.

Every error the project raises on purpose derives from :class:`SkinvaultError`;
the CLI maps it to an exit code and a one-line message, the web layer (later)
to a problem+json document. Anything else escaping is a bug.

    SkinvaultError
     └── PhotoError               a photo that cannot be inspected or scrubbed
          ├── UnsupportedFormat   not a JPEG, PNG, WebP, HEIC/HEIF or TIFF
          ├── DamagedFile         truncated, lengths past the end, broken structure
          ├── TooLarge            declared pixel count or file size over the limit
          │                       (decompression-bomb guard)
          ├── ScrubFailed         cleaning would leave metadata behind; nothing written
          └── RegionOutside       a crop or box that does not overlap the image
     ├── ConfigError              an input or setting that cannot be used as given (in a
     │    │                       request: the client's input, 400)
     │    └── ServerMisconfigured the server's own settings, data dir or key files are
     │                            unusable (500: never the client's fault)
     ├── ServiceUnavailable       a dependency (database, blob store) is down or too slow (503)
     │    └── StorageUnavailable  the blob store cannot be reached, refuses us or has no bucket
     ├── VaultError               stored data that cannot be found or trusted
     │    ├── NotFound            no such photo, user or patient (or it was deleted)
     │    ├── BlobUnreadable      blob missing, corrupted or swapped; names the object id
     │    └── KeyUnavailable      the key that wraps a data key is missing or wrong
     ├── RequestInvalid           a request or decision that cannot be accepted as given
     ├── AuthenticationFailed     sign-in, token, session or setup link refused (never says why
     │    │                       in a way that reveals whether an e-mail has an account)
     │    ├── AccountLocked       too many failed sign-ins; ``until`` says when it opens again
     │    ├── TooManyAttempts     too many sign-in attempts from one address
     │    └── SecondFactorPending signed in with a password only; the role's second factor
     │                            is not set up, so the session may only enrol or sign out
     ├── LinkUnavailable          a share link that was withdrawn, expired or used up
     ├── LinkRefused              a share link that is there but refused this try (403)
     │    ├── LinkPasswordWrong   the password given is not the link's
     │    ├── LinkLocked          too many wrong passwords: the sender must reissue it
     │    └── TooManyLinkTries    too many refused opens from one address (429)
     ├── Busy                     the database stayed busy past the wait bound (429, retry)
     ├── AccessDenied             the policy decision said no; carries its plain reason
     ├── DestinationUnavailable   a DICOM destination refused or could not be reached
     └── AuditChainBroken         the audit log fails verification at a sequence number
"""

from __future__ import annotations

from datetime import datetime


class SkinvaultError(Exception):
    """Root of every error skinvault raises on purpose."""


class PhotoError(SkinvaultError):
    """A photo that cannot be inspected or scrubbed; the message says why in plain words."""


class UnsupportedFormat(PhotoError):
    """The bytes are not one of the formats skinvault handles."""


class DamagedFile(PhotoError):
    """The file's structure is broken: truncated, or a length points past the end."""


class TooLarge(PhotoError):
    """The file or the image it declares is larger than skinvault will process."""


class ScrubFailed(PhotoError):
    """Cleaning produced output that still carries metadata; nothing is written."""


class RegionOutside(PhotoError):
    """A crop (or box) that does not overlap the image at all."""


class ConfigError(SkinvaultError):
    """Settings, the data directory or the key files cannot be used as configured."""


class ServerMisconfigured(ConfigError):
    """The server's own configuration (settings, data dir, key files) is unusable: an
    operator must fix it; a request that meets it is answered 500, never 400."""


class ServiceUnavailable(SkinvaultError):
    """Something the service depends on is down or does not answer in time (503, retry)."""


class StorageUnavailable(ServiceUnavailable):
    """The blob store cannot be written or read right now (unreachable, timed out, refused,
    or its bucket is missing); nothing was stored."""


class VaultError(SkinvaultError):
    """Stored data that cannot be found or cannot be trusted."""


class NotFound(VaultError):
    """No such object, or it has been deleted."""


class BlobUnreadable(VaultError):
    """A stored blob is missing, damaged or belongs to another object; never returns garbage."""


class KeyUnavailable(VaultError):
    """The key-encryption key needed to unwrap a data key is missing or wrong."""


class RequestInvalid(SkinvaultError):
    """A request or decision that cannot be accepted as given (wrong state, missing field)."""


class AuthenticationFailed(SkinvaultError):
    """Sign-in or a credential (token, session, setup link) was refused; the message is
    safe to show: it never tells whether an e-mail address has an account."""


class AccountLocked(AuthenticationFailed):
    """Too many failed sign-ins in a row; ``until`` is when the account opens again."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"too many failed sign-ins; try again after {until:%H:%M} UTC")
        self.until = until


class TooManyAttempts(AuthenticationFailed):
    """Too many sign-in attempts from one address in a short time."""


class SecondFactorPending(AuthenticationFailed):
    """A session of a role that needs a second factor it has not set up: only the
    enrolment page and sign-out accept it."""


class LinkUnavailable(SkinvaultError):
    """A share link that no longer opens: withdrawn, expired, used, or the photo deleted."""


class LinkRefused(SkinvaultError):
    """A share link that still exists but did not open for this try."""


class LinkPasswordWrong(LinkRefused):
    """The password given is not the link's (or none was given)."""


class LinkLocked(LinkRefused):
    """Too many wrong passwords were tried: the link stays shut until the sender reissues it."""


class TooManyLinkTries(LinkRefused):
    """Too many refused share-link opens from one client address in a short time."""


class Busy(SkinvaultError):
    """The database stayed busy for longer than the bounded wait; the client may retry."""


class AccessDenied(SkinvaultError):
    """The one policy decision refused this access; ``reason`` is a sentence a patient can read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DestinationUnavailable(SkinvaultError):
    """A configured DICOM destination refused the photo or could not be reached (after retries)."""


class AuditChainBroken(SkinvaultError):
    """The audit log's hash chain (or a signed checkpoint) does not verify."""

    def __init__(self, seq: int, message: str) -> None:
        super().__init__(f"audit chain broken at event {seq}: {message}")
        self.seq = seq
