"""Patients creating their own account, limited per client address (shared by every
worker through the database), so one address cannot create accounts by the thousand.

>>> actor = sign_up(vault, email="sam@example.org", password="…", name="Sam",
...                 address="203.0.113.7")                              # doctest: +SKIP
"""

from __future__ import annotations

from datetime import timedelta

from skinvault.actors import Actor, Role
from skinvault.bootstrap import Vault
from skinvault.errors import TooManyAttempts
from skinvault.services import signin_limits as limits_mod
from skinvault.services.admin import create_user

_HOUR = timedelta(hours=1)


def sign_up(vault: Vault, *, email: str, password: str, name: str, address: str) -> Actor:
    """A new patient account (and patient record); the attempt counts against ``address``
    whether or not it succeeds."""
    now = vault.clock.now()
    limit = vault.settings.signups_per_address_per_hour
    key = limits_mod.signup_key(address)
    with vault.sessions.begin() as session:
        if limits_mod.count_since(session, key, now - _HOUR) >= limit:
            raise TooManyAttempts(
                "too many new accounts from your address in the last hour; try again later"
            )
        limits_mod.note_failure(session, key, now)
    made = create_user(
        vault,
        role=Role.PATIENT,
        email=email,
        password=password,
        actor=Actor.system("signup"),
        name=name,
    )
    return Actor(made.user_id, Role.PATIENT, name or email.strip().lower().split("@", 1)[0])
