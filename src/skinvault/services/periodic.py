"""A named daemon thread that calls one function every N seconds until stopped.

    >>> loop = PeriodicThread("skinvault-example", 60, sign_the_head)   # doctest: +SKIP
    >>> loop.start()          # the first call comes one interval after start
    >>> loop.stop()           # returns as soon as the call in hand (if any) is done

The wait between rounds is an :class:`threading.Event`, never ``time.sleep``, so
``stop`` does not wait out a long interval. A round that raises is logged with its
traceback and the next round runs as usual: a background schedule must outlive a
database that is away for a moment. ``stop`` is idempotent; ``start`` after ``stop``
starts a fresh thread. With ``final_round`` the thread calls the function once more
after it was told to stop (the audit checkpoints sign the head a last time).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

_log = logging.getLogger("skinvault.periodic")


class PeriodicThread:
    """Calls ``run`` every ``seconds`` in a daemon thread named ``name``."""

    def __init__(
        self,
        name: str,
        seconds: float,
        run: Callable[[], object],
        *,
        final_round: bool = False,
        log: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self.seconds = float(seconds)
        self.final_round = final_round
        self._call = run
        self._log = log or _log
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None
        self._stopped: threading.Thread | None = None  # the last one stopped, maybe not ended

    @property
    def running(self) -> bool:
        """Whether a thread was started and not stopped yet."""
        return self._thread is not None

    def start(self) -> None:
        """Start the thread (a no-op while it runs). After a ``stop`` that gave up waiting,
        this waits for that thread's round to end first: two rounds never overlap."""
        with self._lock:
            if self._thread is not None:
                return
            if self._stopped is not None and self._stopped is not threading.current_thread():
                self._stopped.join()
            self._stopped = None
            # Each thread gets its own event: a thread that outlived its stop's timeout
            # must still see its own stop, not a cleared one meant for its successor.
            stop = threading.Event()
            thread = threading.Thread(target=self._loop, args=(stop,), name=self.name, daemon=True)
            self._thread, self._stop = thread, stop
            thread.start()

    def stop(self, timeout: float = 30) -> None:
        """Ask the thread to stop and wait up to ``timeout`` seconds for it (for the round
        in hand and, with ``final_round``, the last one). Stopping twice is harmless."""
        with self._lock:
            thread, stop = self._thread, self._stop
            self._thread = self._stop = None
            if thread is not None:
                self._stopped = thread
        if thread is None or stop is None:
            return
        stop.set()
        if thread is not threading.current_thread():  # stopped from inside a round
            thread.join(timeout)

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.seconds):
            self._round()
        if self.final_round:
            self._round()

    def _round(self) -> None:
        try:
            self._call()
        except Exception:  # a bug or an outage: say so, and try again next round
            self._log.exception("%s: a scheduled round failed", self.name)


__all__ = ["PeriodicThread"]
