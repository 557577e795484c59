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
          └── ScrubFailed         cleaning would leave metadata behind; nothing written
"""

from __future__ import annotations


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
