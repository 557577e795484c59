"""Who is acting: roles (a closed vocabulary) and the actor every service call names.

>>> Actor("u1", Role.CLINICIAN, "Dr. Lee").label
'Dr. Lee (clinician)'
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    PATIENT = "patient"
    CLINICIAN = "clinician"
    STAFF = "staff"
    EDUCATOR = "educator"
    RESEARCHER = "researcher"
    ADMIN = "admin"


#: Roles that must enrol a second factor (TOTP) before they can sign in.
NEEDS_TOTP = frozenset({Role.CLINICIAN, Role.STAFF, Role.EDUCATOR, Role.RESEARCHER, Role.ADMIN})


@dataclass(frozen=True)
class Actor:
    """A signed-in user, or the system itself (``Actor.system()``) for scheduled work."""

    id: str
    role: Role | None
    name: str

    @classmethod
    def system(cls, what: str = "skinvault") -> Actor:
        return cls(f"system:{what}", None, what)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.role.value})" if self.role else self.name

    @property
    def audit_name(self) -> str:
        """How the audit log names the actor: stable id first, readable name after."""
        return f"{self.id} {self.name}".strip()
