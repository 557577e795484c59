"""Neutral output file names from a template, never from the original name.

>>> template = NameTemplate.parse("{site}-{n:02}")
>>> template.render(3, site="left-hand", extension=".jpg")
'left-hand-03.jpg'
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from skinvault.photos.sniff import ImageFormat

EXTENSIONS: dict[ImageFormat, str] = {
    ImageFormat.JPEG: ".jpg",
    ImageFormat.PNG: ".png",
    ImageFormat.WEBP: ".webp",
    ImageFormat.HEIF: ".heic",
    ImageFormat.TIFF: ".tif",
}
_FIELDS = {"n", "site"}
_IMAGE_SUFFIX = re.compile(r"\.(jpe?g|png|webp|heic|heif|avif|tiff?)$", re.IGNORECASE)
_SITE = re.compile(r"[^a-z0-9]+")


class TemplateError(ValueError):
    """The name template is unusable; the message says why."""


def slug(text: str) -> str:
    """A body-site label as a safe file-name part: ``"Left hand"`` -> ``"left-hand"``."""
    return _SITE.sub("-", text.lower()).strip("-") or "site"


@dataclass(frozen=True)
class NameTemplate:
    text: str

    @classmethod
    def parse(cls, text: str) -> NameTemplate:
        text = _IMAGE_SUFFIX.sub("", text)  # the real format decides the extension
        if not text or "/" in text or "\\" in text or text.startswith("."):
            raise TemplateError(f"name template {text!r} must be a plain, non-hidden file name")
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        except ValueError as exc:
            raise TemplateError(f"name template {text!r} is malformed: {exc}") from exc
        unknown = {f.split(".")[0].split("[")[0] for f in fields} - _FIELDS
        if unknown or any(not f for f in fields):
            raise TemplateError(
                f"name template {text!r} uses unknown placeholders {sorted(unknown) or ['{}']};"
                " use {n} and {site}"
            )
        if "n" not in fields:
            raise TemplateError(
                f"name template {text!r} needs {{n}} so every file gets its own name"
            )
        template = cls(text)
        template.render(1, "site", ".jpg")  # format specs like {n:xyz} fail here, not mid-batch
        return template

    def render(self, n: int, site: str, extension: str) -> str:
        try:
            return self.text.format(n=n, site=slug(site)) + extension
        except (ValueError, IndexError, KeyError) as exc:
            raise TemplateError(f"name template {self.text!r} cannot be filled: {exc}") from exc
