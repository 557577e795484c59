"""Does a mail relay slow down the actions that notify? One run, one table.

Usage: ``.venv/bin/python bench/notifications.py`` (about half a minute).

A clinician asks a patient for a photo (``capture.ask_for_photo``: a policy decision, an
audit event, a notice and, with e-mail on, an outbox row) 30 times on SQLite, with:
no e-mail; e-mail on and the relay refusing connections; e-mail on and a relay that
accepts connections and never answers, while the background worker is stuck waiting
on it (``smtp_timeout_seconds`` = 5). The table gives the median and the slowest call.
"""

from __future__ import annotations

import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skinvault.actors import Actor, Role
from skinvault.bootstrap import bootstrap
from skinvault.config import load_settings
from skinvault.services import admin, capture, notice_sweep
from skinvault.services.care import start_care

RUNS = 30
OPERATOR = Actor.system("bench")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(folder: Path, **mail: object) -> list[float]:
    vault = bootstrap(load_settings(data_dir=folder, **mail), create=True)
    worker = notice_sweep.NotificationWorker(vault, seconds=0.05)
    try:
        made = admin.create_user(
            vault,
            role=Role.PATIENT,
            email="p@example.org",
            password="a long passphrase",  # noqa: S106 (a throwaway bench vault)
            actor=OPERATOR,
            name="P",
        )
        doc = admin.create_user(
            vault,
            role=Role.CLINICIAN,
            email="c@example.org",
            password="a long passphrase",  # noqa: S106 (a throwaway bench vault)
            actor=OPERATOR,
            name="C",
        )
        assert made.patient_id
        start_care(vault, patient_id=made.patient_id, member_id=doc.user_id, actor=OPERATOR)
        clinician = Actor(doc.user_id, Role.CLINICIAN, "C")
        worker.start()
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            capture.ask_for_photo(vault, actor=clinician, patient_id=made.patient_id, site="back")
            times.append(time.perf_counter() - started)
        return times
    finally:
        worker.stop(timeout=10)
        vault.close()


def _arguments(doc: str) -> bool:
    """``--help`` prints this and exits; ``--quick`` (a few seconds, for CI) is returned."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the script")
    return bool(parser.parse_args().quick)


def main() -> None:
    global RUNS  # noqa: PLW0603 - a script: --quick shrinks its one knob
    quick = _arguments(__doc__ or "")
    RUNS = 2 if quick else RUNS
    mail = {
        "mail_from": "portal@clinic.example",
        "smtp_host": "127.0.0.1",
        "smtp_timeout_seconds": 0.5 if quick else 5.0,
    }
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        rows.append(("no e-mail", measure(base / "a")))
        rows.append(("relay refuses", measure(base / "b", smtp_port=_free_port(), **mail)))
        port = hung.getsockname()[1]
        rows.append(("relay hangs (5 s)", measure(base / "c", smtp_port=port, **mail)))
    hung.close()
    print(f"capture.ask_for_photo on SQLite, {RUNS} calls each")
    print(f"{'case':<20} {'median ms':>10} {'slowest ms':>11}")
    for name, times in rows:
        print(f"{name:<20} {statistics.median(times) * 1000:>10.1f} {max(times) * 1000:>11.1f}")


if __name__ == "__main__":
    main()
