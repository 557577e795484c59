"""The shared background loop of the schedules: real threads, real time, short intervals.

Nothing here asserts how fast anything is: each wait is bounded by a generous timeout
(a loaded 2-core machine may be slow), and "promptly" means "the thread is gone once
``stop`` returned, although its interval is an hour".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import pytest

from skinvault.services.periodic import PeriodicThread

SHORT = 0.02  # seconds between rounds
HOUR = 3600.0
PATIENCE = 10.0  # how long a test waits for something that should take milliseconds


class Calls:
    """A callable that counts its calls and lets a test wait for the n-th."""

    def __init__(self, fail_first: int = 0) -> None:
        self.count = 0
        self.fail_first = fail_first
        self._changed = threading.Condition()

    def __call__(self) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()
            n = self.count
        if n <= self.fail_first:
            raise RuntimeError(f"round {n} broke")

    def wait_for(self, n: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.count >= n, PATIENCE)


def _alive(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name and t.is_alive()]


@pytest.fixture
def loops() -> Iterator[list[PeriodicThread]]:
    """Loops a test started; stopped at the end even when the test failed."""
    started: list[PeriodicThread] = []
    yield started
    for loop in started:
        loop.stop(timeout=PATIENCE)


def _loop(
    loops: list[PeriodicThread],
    name: str,
    seconds: float,
    run: Callable[[], object],
    *,
    final_round: bool = False,
    log: logging.Logger | None = None,
) -> PeriodicThread:
    loop = PeriodicThread(name, seconds, run, final_round=final_round, log=log)
    loops.append(loop)
    return loop


def test_it_calls_the_function_again_and_again_at_its_interval(
    loops: list[PeriodicThread],
) -> None:
    calls = Calls()
    loop = _loop(loops, "test-periodic-runs", SHORT, calls)
    loop.start()
    assert calls.wait_for(3), f"only {calls.count} rounds in {PATIENCE} s"
    loop.stop(timeout=PATIENCE)
    after_stop = calls.count
    assert not _alive("test-periodic-runs")
    assert calls.count == after_stop  # no round after stop returned


def test_stop_returns_without_waiting_out_a_long_interval(loops: list[PeriodicThread]) -> None:
    calls = Calls()
    loop = _loop(loops, "test-periodic-long", HOUR, calls)
    loop.start()
    assert _alive("test-periodic-long")
    loop.stop(timeout=PATIENCE)  # were it sleeping, the thread would still be alive
    assert not _alive("test-periodic-long")
    assert calls.count == 0  # the first round comes one interval after start, not at once


def test_a_round_that_raises_is_logged_with_its_traceback_and_the_next_one_runs(
    loops: list[PeriodicThread], caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls(fail_first=1)
    logger = logging.getLogger("skinvault.test-periodic")
    loop = _loop(loops, "test-periodic-fails", SHORT, calls, log=logger)
    with caplog.at_level(logging.ERROR, logger="skinvault.test-periodic"):
        loop.start()
        assert calls.wait_for(2), "the round after the failing one never ran"
        loop.stop(timeout=PATIENCE)
    failed = [r for r in caplog.records if r.name == "skinvault.test-periodic"]
    assert len(failed) == 1
    assert "test-periodic-fails" in failed[0].getMessage()
    assert failed[0].exc_info is not None and "round 1 broke" in str(failed[0].exc_info[1])


def test_stopping_twice_or_before_starting_is_harmless(loops: list[PeriodicThread]) -> None:
    loop = _loop(loops, "test-periodic-twice", HOUR, Calls())
    loop.stop()  # never started
    loop.start()
    loop.stop(timeout=PATIENCE)
    loop.stop(timeout=PATIENCE)
    assert not loop.running
    assert not _alive("test-periodic-twice")


def test_the_thread_is_a_daemon_with_the_given_name_and_starting_twice_adds_none(
    loops: list[PeriodicThread],
) -> None:
    loop = _loop(loops, "test-periodic-named", HOUR, Calls())
    loop.start()
    loop.start()
    found = _alive("test-periodic-named")
    assert len(found) == 1 and found[0].daemon
    assert loop.running


def test_a_stopped_loop_starts_again(loops: list[PeriodicThread]) -> None:
    calls = Calls()
    loop = _loop(loops, "test-periodic-again", SHORT, calls)
    loop.start()
    assert calls.wait_for(1)
    loop.stop(timeout=PATIENCE)
    loop.start()
    assert calls.wait_for(calls.count + 2), "no rounds after the second start"
    assert len(_alive("test-periodic-again")) == 1


def test_with_a_final_round_it_calls_once_more_when_stopped(loops: list[PeriodicThread]) -> None:
    calls = Calls()
    loop = _loop(loops, "test-periodic-final", HOUR, calls, final_round=True)
    loop.start()
    loop.stop(timeout=PATIENCE)  # returns after the final round
    assert calls.count == 1
    assert not _alive("test-periodic-final")


def test_a_round_may_stop_its_own_loop(loops: list[PeriodicThread]) -> None:
    box: list[PeriodicThread] = []
    calls = Calls()

    def stop_myself() -> None:
        calls()
        box[0].stop()

    loop = _loop(loops, "test-periodic-self", SHORT, stop_myself)
    box.append(loop)
    loop.start()
    assert calls.wait_for(1)
    for thread in _alive("test-periodic-self"):
        thread.join(PATIENCE)
    assert not _alive("test-periodic-self")
    assert calls.count == 1 and not loop.running


def test_a_start_after_a_stop_that_gave_up_waiting_never_overlaps_two_rounds(
    loops: list[PeriodicThread],
) -> None:
    in_round, most, entered = 0, 0, threading.Event()
    guard = threading.Lock()

    def slow() -> None:
        nonlocal in_round, most
        with guard:
            in_round += 1
            most = max(most, in_round)
        entered.set()
        threading.Event().wait(0.3)  # a round that takes a while
        with guard:
            in_round -= 1

    loop = _loop(loops, "test-periodic-overlap", SHORT, slow, final_round=True)
    loop.start()
    assert entered.wait(PATIENCE)
    loop.stop(timeout=0.01)  # gives up while the round (and the final one) still run
    loop.start()  # waits for them before the new thread's first round
    entered.clear()
    assert entered.wait(PATIENCE)
    loop.stop(timeout=PATIENCE)
    assert most == 1, f"{most} rounds ran at once"
    assert _alive("test-periodic-overlap") == []
