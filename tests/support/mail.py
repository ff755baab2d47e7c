"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for tests to
read: the mail the app sends after a request commits, and the links in it."""

from __future__ import annotations

import email
import email.policy
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller


@dataclass
class Inbox:
    """What the server received, in order; `wait_for` blocks until a message arrives."""

    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
            self.lock.notify_all()
        return "250 OK"

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """The first `count` messages to `address`, once they arrived (else AssertionError)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                found = [m for m in self.messages if m["To"] == address]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{count} mail(s) to {address} expected, got "
                                         f"{len(found)}")
                self.lock.wait(left)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(port: int | None = None) -> tuple[Controller, Inbox]:
    """The server on loopback (a free port unless given); stop it with `.stop()`."""
    inbox = Inbox()
    # The server's own log (`mail.log`) echoes every line it receives, tokens included:
    # it stands for the mail provider, not the app, whose logs the tests read.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port())
    controller.start()
    return controller, inbox


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()  # type: ignore[no-any-return, attr-defined]


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return part.get_content()  # type: ignore[no-any-return, attr-defined]


def link_in(message: EmailMessage) -> str:
    match = re.search(r"https?://\S+", text_of(message))
    assert match, "no link in the mail"
    return match.group(0)


def query_of(link: str, name: str) -> str:
    return parse_qs(urlparse(link).query)[name][0]
