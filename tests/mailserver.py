"""A real SMTP server on loopback for the tests: aiosmtpd with STARTTLS (a self-signed
certificate made here), AUTH over TLS only, on a port the system picks (bind port 0).

    >>> with SmtpServer(tmp_path, user="relay", password="pw") as relay:   # doctest: +SKIP
    ...     ...  # settings: smtp_host=127.0.0.1, smtp_port=relay.port, smtp_ca_file=relay.ca
    ...     relay.messages                                                  # doctest: +SKIP

``stop()`` and ``start()`` again keep the port, so a test can take the relay down and
bring it back. :class:`SilentServer` accepts connections and never answers (a hung relay).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1 and localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "skinvault test relay")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "relay.pem", folder / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Collect:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        self.server.received.append((list(envelope.rcpt_tos), content, bool(session.authenticated)))
        return "250 OK"


class SmtpServer:
    """aiosmtpd in its own thread and event loop, requiring STARTTLS before anything."""

    def __init__(
        self,
        folder: Path,
        *,
        user: str = "relay",
        password: str = "relay-secret",  # noqa: S107 (a test relay's password)
    ) -> None:
        self.ca, key = self_signed(folder)
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(self.ca, key)
        self.user, self.password = user, password
        self.port = 0
        self.received: list[tuple[list[str], bytes, bool]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    def _auth(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            self.user.encode(),
            self.password.encode(),
        )
        return AuthResult(success=ok)

    def _factory(self) -> SMTP:
        return SMTP(
            _Collect(self),
            tls_context=self.tls,
            require_starttls=True,
            auth_require_tls=True,
            authenticator=self._auth,
            hostname="localhost",
        )

    def start(self) -> SmtpServer:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            self._server = loop.run_until_complete(
                loop.create_server(self._factory, "127.0.0.1", self.port, reuse_address=True)
            )
            self.port = int(self._server.sockets[0].getsockname()[1])
            ready.set()
            loop.run_forever()
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10), "the test SMTP server did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None

    @property
    def messages(self) -> list[Message]:
        return [message_from_bytes(raw) for _, raw, _ in self.received]

    def texts_for(self, address: str) -> list[str]:
        """Every message to ``address``, as its whole raw text (headers and body)."""
        return [raw.decode("utf-8", "replace") for to, raw, _ in self.received if address in to]

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SilentServer:
    """Accepts TCP connections and never says a word: a relay that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()
