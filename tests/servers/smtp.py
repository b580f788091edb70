"""A real SMTP server on loopback (aiosmtpd) that keeps what it accepts, or refuses on demand."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Inbox:
    """What the server accepted; `reply` is what it answers to DATA ("250 OK" accepts)."""

    messages: list[tuple[tuple[str, ...], EmailMessage]] = field(default_factory=list)
    reply: str = "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.reply.startswith("250"):
            message = message_from_bytes(envelope.content, policy=policy.default)
            self.messages.append((tuple(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return self.reply


class SmtpServer:
    """Start and stop an aiosmtpd server on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
