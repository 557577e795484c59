"""Sign-in attempts per client address, so one address cannot try password after password.

Account lockout (services.accounts) stops guessing one account; this stops one
address spraying many accounts. Kept in memory: ``skinvault serve`` is one process.
(``clock`` is any object with ``now()``, e.g. :class:`skinvault.ports.SystemClock`.)

    >>> from skinvault.ports import SystemClock
    >>> limiter = AttemptLimiter(limit=3, window=timedelta(minutes=5), clock=SystemClock())
    >>> limiter.allow("203.0.113.7")
    True
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from skinvault.errors import TooManyAttempts
from skinvault.ports import Clock


class AttemptLimiter:
    """A sliding window of attempt times per key (a client address)."""

    def __init__(self, *, limit: int, window: timedelta, clock: Clock) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._seen: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Record an attempt from ``key``; False once it is over the limit in the window."""
        now = self.clock.now()
        with self._lock:
            times = self._seen.setdefault(key, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                return False
            times.append(now)
            if len(self._seen) > 100_000:  # forget idle addresses rather than grow forever
                for stale in [k for k, v in self._seen.items() if not v]:
                    del self._seen[stale]
            return True

    def check(self, key: str) -> None:
        if not self.allow(key):
            minutes = int(self.window.total_seconds() // 60)
            raise TooManyAttempts(
                f"too many sign-in attempts from your address; wait {minutes} minutes"
            )
