"""Recording a refused or failed attempt in the audit log, after the work rolled back.

    >>> audit_failure(vault, clinician, Action.PHOTO_MEASURE, f"photo:{photo_id}",
    ...               "the photo does not decode")                     # doctest: +SKIP

The attempt's own transaction rolled back, so its audit row could not commit with it;
:func:`audit_failure` writes the ``failed`` row in a transaction of its own. It needs the
:class:`~skinvault.bootstrap.Vault` (its sessions and clock), so it lives with the
services rather than in :mod:`skinvault.audit`, which stays below them.
"""

from __future__ import annotations

from skinvault.actors import Actor
from skinvault.audit.actions import Action, Outcome
from skinvault.audit.log import record
from skinvault.bootstrap import Vault


def audit_failure(
    vault: Vault, actor: Actor, action: Action, obj: str, reason: str, *, purpose: str | None = None
) -> None:
    """Record a refused or failed attempt in its own transaction (the work itself rolled back)."""
    with vault.sessions.begin() as session:
        record(
            session,
            clock=vault.clock,
            actor=actor.audit_name,
            action=action,
            object=obj,
            outcome=Outcome.FAILED,
            purpose=purpose,
            reason=reason,
        )


__all__ = ["audit_failure"]
