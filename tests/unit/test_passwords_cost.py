"""Outside the test suite, passwords are hashed with Argon2id at the library's defaults
(RFC 9106's second recommended option); the suite's cheap profile is opt-in only."""

from __future__ import annotations

import os
import subprocess
import sys

from argon2 import PasswordHasher

SHOW = "from skinvault.services.passwords import HASHER as H; print(H.time_cost, H.memory_cost)"


def _parameters(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "SKINVAULT_ARGON2_PROFILE"}
    done = subprocess.run([sys.executable, "-c", SHOW], env={**clean, **env},
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def test_production_hashes_at_the_library_defaults() -> None:
    defaults = PasswordHasher()
    assert _parameters() == f"{defaults.time_cost} {defaults.memory_cost}"
    assert defaults.memory_cost >= 65536  # 64 MiB
    assert _parameters(SKINVAULT_ARGON2_PROFILE="anything else") == _parameters()


def test_the_test_profile_is_cheaper_and_verifies_production_hashes() -> None:
    assert _parameters(SKINVAULT_ARGON2_PROFILE="test") == "1 1024"
    from skinvault.services.passwords import HASHER

    assert HASHER.verify(PasswordHasher().hash("a long enough password"), "a long enough password")
