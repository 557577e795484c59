"""The one access decision: who may do what with a photo, for which purpose.

Everything here is pure (no I/O): :func:`decide` takes facts and returns a
:class:`Decision`; services gather the facts and write the decision to the
audit log.
"""

from skinvault.policy.decide import Access, CareFacts, ConsentFacts, Decision, PhotoFacts, decide
from skinvault.policy.purposes import PURPOSE_TEXTS, Purpose, Scope

__all__ = [
    "PURPOSE_TEXTS",
    "Access",
    "CareFacts",
    "ConsentFacts",
    "Decision",
    "PhotoFacts",
    "Purpose",
    "Scope",
    "decide",
]
