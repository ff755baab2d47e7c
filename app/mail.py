"""Mail: written to the outbox in the request's unit of work, sent by SMTP after it commits.

A request that rolls back sends nothing; a slow or failing mail server never delays an
answer. `enqueue` adds the message to the request's session; the pipeline's commit step
wakes the worker's sender thread (`after_commit`), and `flask mail drain` sends what is
due from a command line. A failed send is retried with a growing delay (`attempts`,
`next_attempt_at`, `last_error`), and given up after MAIL_MAX_ATTEMPTS.

Bodies may carry single-use tokens: once a message is sent or given up, its bodies are
blanked (NULL), so the table keeps who was mailed which subject and when, not the token.
Logs name the message's id and subject, never its body.
"""

from __future__ import annotations

import html
import logging
import smtplib
import threading
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import UnitOfWork, utcnow
from app.models import OutboxMessage

log = logging.getLogger("app.mail")
QUEUED = "outbox"  # Session.info flag: this session wrote mail
IDLE_POLL_SECONDS = 30.0  # the sender also wakes on its own to retry what is due

# Subject, plain text, HTML. `{link}` and the other values are filled in by `enqueue`
# (escaped for HTML).
TEMPLATES: dict[str, tuple[str, str, str]] = {
    "verify": (
        "Confirm your email address",
        "Confirm that this address is yours by opening this link:\n\n{link}\n\n"
        "It works once, until {expires}. If you did not create an account, ignore this mail.",
        "<p>Confirm that this address is yours:</p><p><a href=\"{link}\">{link}</a></p>"
        "<p>It works once, until {expires}. If you did not create an account, ignore this "
        "mail.</p>",
    ),
    "already_registered": (
        "Someone tried to register with your address",
        "Someone tried to create an account with this address, which already has one. "
        "If it was you, sign in, or reset your password:\n\n{link}\n\n"
        "If it was not you, you need do nothing: your account is unchanged.",
        "<p>Someone tried to create an account with this address, which already has one. "
        "If it was you, sign in, or <a href=\"{link}\">reset your password</a>.</p>"
        "<p>If it was not you, you need do nothing: your account is unchanged.</p>",
    ),
    "reset": (
        "Reset your password",
        "Set a new password by opening this link:\n\n{link}\n\n"
        "It works once, until {expires}, and signs you out everywhere. "
        "If you did not ask for it, ignore this mail.",
        "<p>Set a new password:</p><p><a href=\"{link}\">{link}</a></p>"
        "<p>It works once, until {expires}, and signs you out everywhere. If you did not "
        "ask for it, ignore this mail.</p>",
    ),
    "invitation": (
        "You are invited to {place}",
        "{inviter} invites you to {place} as {role}.\n\n"
        "Sign in with this address (verified) and accept the invitation:\n\n{link}\n\n"
        "It is open until {expires}.",
        "<p>{inviter} invites you to {place} as <b>{role}</b>.</p>"
        "<p>Sign in with this address (verified) and <a href=\"{link}\">accept the "
        "invitation</a>.</p><p>It is open until {expires}.</p>",
    ),
}


def enqueue(session: Session, recipient: str, template: str, **values: Any) -> OutboxMessage:
    """Write a message to the outbox in `session`'s transaction: sent once it commits."""
    subject, text, markup = TEMPLATES[template]
    escaped = {k: html.escape(str(v)) for k, v in values.items()}
    message = OutboxMessage(
        recipient=recipient, subject=subject.format(**values)[:200],
        body_text=text.format(**values), body_html=markup.format(**escaped),
        attempts=0, next_attempt_at=utcnow(),
    )
    session.add(message)
    session.info[QUEUED] = True
    return message


def after_commit(unit: UnitOfWork, mailer: Mailer | None) -> None:
    """The pipeline's commit step succeeded: wake the sender when the request wrote mail."""
    if unit.info.pop(QUEUED, False) and mailer is not None:
        mailer.wake()


class Mailer:
    """Sends the outbox by SMTP: `drain` once, or a daemon thread woken after commits."""

    def __init__(self, settings: Settings, maker: sessionmaker[Session]) -> None:
        self.settings = settings
        self.maker = maker
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def wake(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="mail", daemon=True)
                self._thread.start()
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(IDLE_POLL_SECONDS)
            self._wake.clear()
            try:
                self.drain()
            except Exception:  # the database is down: try again on the next wake
                log.exception("mail drain failed")

    def drain(self, limit: int = 100) -> int:
        """Send what is due, one message per transaction (other workers skip the rows
        this one holds). Returns how many were sent."""
        sent = 0
        for _ in range(limit):
            with self.maker() as session, session.begin():
                message = session.scalars(due().limit(1).with_for_update(skip_locked=True)).first()
                if message is None:
                    break
                sent += self._attempt(message)
        return sent

    def _attempt(self, message: OutboxMessage) -> int:
        now = utcnow()
        message.attempts += 1
        try:
            self.send(message)
        except (OSError, smtplib.SMTPException) as exc:
            message.last_error = f"{type(exc).__name__}: {exc}"[:500]
            if message.attempts >= self.settings.mail_max_attempts:
                message.given_up_at = now
                message.body_text = message.body_html = None
                log.error("mail given up", extra={"fields": {"id": str(message.id),
                                                             "subject": message.subject}})
            else:
                delay = self.settings.mail_retry_base_seconds * 2 ** (message.attempts - 1)
                message.next_attempt_at = now + timedelta(seconds=min(delay, 6 * 3600))
                log.warning("mail send failed; will retry", extra={"fields": {
                    "id": str(message.id), "attempts": message.attempts,
                    "error": type(exc).__name__}})
            return 0
        message.sent_at = now
        message.last_error = None
        message.body_text = message.body_html = None  # the token is spent or mailed: not kept
        log.info("mail sent", extra={"fields": {"id": str(message.id), "subject": message.subject}})
        return 1

    def send(self, message: OutboxMessage) -> None:
        s = self.settings
        mail = EmailMessage()
        mail["From"] = s.mail_from
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Message-ID"] = f"<{message.id}@tenant-api>"
        mail.set_content(message.body_text or "")
        mail.add_alternative(message.body_html or "", subtype="html")
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password)
            smtp.send_message(mail)


def due() -> Any:
    """Messages to try now: not sent, not given up, their next attempt is due."""
    return (
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.given_up_at.is_(None),
               OutboxMessage.next_attempt_at <= utcnow())
        .order_by(OutboxMessage.next_attempt_at)
    )
