"""The password rule (NIST SP 800-63B §5.1.1.2): long enough, not a common password,
no composition rules. Pure apart from reading the list shipped in the package once.

>>> problem_with("correct horse battery staple")   # None: acceptable
>>> problem_with("password1234")
'this password is on the list of the 20,000 most common passwords; choose another'
"""

from __future__ import annotations

import gzip
import os
from functools import cache
from importlib.resources import files

from argon2 import PasswordHasher

MIN_PASSWORD_LENGTH = 12
#: Argon2 hashes whatever it gets; a cap keeps a 10 MB "password" from costing a request.
MAX_PASSWORD_LENGTH = 1024
#: The one hasher of the project (Argon2id, the library's defaults: RFC 9106's second
#: recommended option, 64 MiB, 3 passes, ~0.1 s here). ``SKINVAULT_ARGON2_PROFILE=test``
#: (set by the test suite only, for the servers it starts too) uses Argon2id at its
#: smallest cost: the same code path, a fraction of the time; a hash records its own
#: parameters, so either verifies the other's. Never set it in production.
HASHER = (
    PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    if os.environ.get("SKINVAULT_ARGON2_PROFILE") == "test"
    else PasswordHasher()
)


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list (Django's, see ``skinvault/data/SOURCES.md``), lower-case."""
    raw = files("skinvault.data").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(raw).decode("utf-8").split())


def problem_with(password: str, *, email: str = "") -> str | None:
    """What is wrong with ``password`` in one sentence, or None when it may be used."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"the password may have at most {MAX_PASSWORD_LENGTH} characters"
    folded = password.strip().lower()
    if folded in common_passwords():
        return "this password is on the list of the 20,000 most common passwords; choose another"
    if len(set(folded)) <= 2:
        return "the password repeats one or two characters; choose another"
    if email and folded == email.strip().lower():
        return "the password must not be the e-mail address"
    return None
