"""Sign-in attempts per address: a sliding window, exact at its edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from skinvault.errors import TooManyAttempts
from skinvault.web.ratelimit import AttemptLimiter


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


def test_an_address_over_the_limit_waits_for_the_window_to_pass() -> None:
    clock = Clock()
    limiter = AttemptLimiter(limit=3, window=timedelta(minutes=5), clock=clock)
    assert all(limiter.allow("203.0.113.7") for _ in range(3))
    with pytest.raises(TooManyAttempts, match="wait 5 minutes"):
        limiter.check("203.0.113.7")
    assert limiter.allow("198.51.100.1")  # other addresses are not affected
    clock.at += timedelta(minutes=5) - timedelta(microseconds=1)
    assert not limiter.allow("203.0.113.7")
    clock.at += timedelta(microseconds=1)
    assert limiter.allow("203.0.113.7")
