"""E-mail to the patient: the SMTP relay (`DMP_XDS_NOTIFY_SMTP`), and the outbox that sends the
notifications from one background thread with a bounded queue, so that a slow relay never slows
the request that produced them; each notification's row records when it went out, or why not.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import urlsplit

from dmp_xds.storage.notifications import NotificationStore
from dmp_xds.transport.background import BackgroundQueue

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 10.0
QUEUE_SIZE = 1000
SUBJECT = "Accès d'urgence à votre DMP"


class SmtpSender:
    """Sends one e-mail through the relay at `url`: `smtp://host:port` (plain, as to a local
    relay), `smtp+starttls://host:port`, or `smtps://host:port` (TLS from the start)."""

    def __init__(self, url: str, sender: str, ca_file: str = "") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtp+starttls", "smtps") or not parts.hostname or not parts.port:
            raise ValueError(
                f"notification relay {url!r}: expected smtp://host:port, smtp+starttls://host:port or smtps://host:port"
            )
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.sender = sender
        self.context = ssl.create_default_context(cafile=ca_file or None)

    def send(self, to: str, subject: str, text: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(text)
        if self.scheme == "smtps":
            with smtplib.SMTP_SSL(self.host, self.port, timeout=SMTP_TIMEOUT_SECONDS, context=self.context) as smtp:
                smtp.send_message(message)
            return
        with smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            if self.scheme == "smtp+starttls":
                smtp.starttls(context=self.context)
            smtp.send_message(message)


class MailOutbox:
    """Sends notifications through `smtp`, one at a time, in the background."""

    def __init__(self, smtp: SmtpSender, store: NotificationStore, size: int = QUEUE_SIZE) -> None:
        self.smtp = smtp
        self.store = store
        self._queue = BackgroundQueue("dmp-notify-smtp", self._email, size)

    def offer(self, notification_id: int, to: str, text: str) -> bool:
        """Queue one e-mail; False when the queue is full (nothing was queued)."""
        return self._queue.offer((notification_id, to, text))

    def close(self, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
        self._queue.close(timeout)

    def _email(self, item: tuple[int, str, str]) -> None:
        notification_id, to, text = item
        try:
            self.smtp.send(to, SUBJECT, text)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("notification %s not e-mailed: %s", notification_id, exc)
            self._record(notification_id, None, f"not sent: {exc}")
            return
        self._record(notification_id, dt.datetime.now(dt.UTC), None)

    def _record(self, notification_id: int, sent_at: dt.datetime | None, problem: str | None) -> None:
        try:
            self.store.record_email(notification_id, sent_at, problem)
        except Exception:  # the mail thread must live on; the notification itself is stored
            log.exception("cannot record the e-mail outcome of notification %s", notification_id)
