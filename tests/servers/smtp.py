"""A real SMTP server on loopback (aiosmtpd) that keeps what it accepts, or refuses on demand.

It can speak plain SMTP, offer STARTTLS, or wrap the whole connection in TLS (implicit TLS, as on
port 465), and it can require a login — the three ways a consultancy's relay is reached.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.servers.tls import self_signed_certificate


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Inbox:
    """What the server accepted; `reply` is what it answers to DATA ("250 OK" accepts)."""

    messages: list[tuple[tuple[str, ...], EmailMessage]] = field(default_factory=list)
    reply: str = "250 OK"
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.reply.startswith("250"):
            message = message_from_bytes(envelope.content, policy=policy.default)
            self.messages.append((tuple(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return self.reply


class SmtpServer:
    """Start and stop an aiosmtpd server on 127.0.0.1 and a free port.

    security: "none", "starttls" (offered and required before anything else) or "ssl" (implicit
    TLS); with `users`, a login (PLAIN or LOGIN, never before TLS) is required to send.
    """

    def __init__(
        self, security: str = "none", users: dict[str, str] | None = None, tls_dir: Path | None = None
    ) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.users = users or {}
        self.cafile: str | None = None
        options: dict[str, Any] = {}
        if security != "none":
            assert tls_dir is not None, "TLS needs a folder for the certificate"
            cert, key = tls_dir / "cert.pem", tls_dir / "key.pem"
            self_signed_certificate(cert, key)
            self.cafile = str(cert)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            if security == "starttls":
                options.update(tls_context=context, require_starttls=True)
            else:
                options.update(ssl_context=context)
        if self.users:
            # aiosmtpd only counts STARTTLS as TLS; under implicit TLS the whole connection is encrypted.
            options.update(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=security == "starttls"
            )
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            login, password = data.login.decode(), data.password.decode()
            if self.users.get(login) == password:
                self.inbox.logins.append(login)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
