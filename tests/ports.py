"""Servers for tests on a free loopback port, without the bind-close-reuse race.

A port number from binding port 0 can be taken by another process before the server
binds it. :func:`serve_on_free_port` starts the server on such a number and, when the
server exits before answering (the usual sign of "address already in use"), takes
another number and starts it again.

    >>> proc, port = serve_on_free_port(lambda p: ["moto_server", "-p", str(p)])  # doctest: +SKIP
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Sequence


def free_port() -> int:
    """A port number nothing listens on right now (it may be taken before you bind it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def serve_on_free_port(
    argv: Callable[[int], Sequence[str]],
    *,
    ready: Callable[[int], bool] = answers,
    tries: int = 5,
    timeout: float = 60,
    **popen: object,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``argv(port)`` until one answers ``ready(port)``; raise if none does."""
    exits = []
    for _ in range(tries):
        port = free_port()
        proc: subprocess.Popen[bytes] = subprocess.Popen(list(argv(port)), **popen)  # type: ignore[call-overload]
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if ready(port):
                return proc, port
            time.sleep(0.1)
        if proc.poll() is None:  # alive but silent: not a port conflict
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{argv(port)[:3]} did not answer on port {port} in {timeout} s")
        exits.append(proc.returncode)
    raise RuntimeError(f"{argv(0)[:3]} exited at start-up {tries} times (codes {exits})")
