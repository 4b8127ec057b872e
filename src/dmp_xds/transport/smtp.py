"""E-mail to the patient: the SMTP relay (`DMP_XDS_NOTIFY_SMTP`), and the outbox that sends the
notifications the database owes from one background thread, so that a slow relay never slows
the request that produced them; each notification's row records when it went out, or why not.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
import threading
from email.message import EmailMessage
from urllib.parse import urlsplit

from dmp_xds.storage.notifications import NotificationStore, OwedEmail

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 10.0  # how soon an e-mail queued by another process, or a retry, goes out
LEASE_SECONDS = 120.0  # a claim's life: well past one SMTP exchange (SMTP_TIMEOUT_SECONDS per step)
RETRY_SECONDS = (60.0, 300.0, 1800.0, 7200.0)  # then given up: five attempts in about three hours
BATCH = 20  # e-mails claimed per look at the queue
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
    """Sends the notification e-mails the database owes, from one background thread of this
    process; every server process runs one, and the claims (storage/notifications.py) keep any
    two from sending the same e-mail. It looks when woken (a notification this process just
    queued) and every `poll_seconds` (those of the other processes, and the retries)."""

    def __init__(
        self,
        smtp: SmtpSender,
        store: NotificationStore,
        poll_seconds: float = POLL_SECONDS,
        retry_seconds: tuple[float, ...] = RETRY_SECONDS,
    ) -> None:
        self.smtp = smtp
        self.store = store
        self.poll_seconds = poll_seconds
        # The wait before each retry: one more attempt than waits, then it is given up.
        self.retry_seconds = retry_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dmp-notify-smtp", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
        """Stop after the e-mail under way (the others stay owed, for any process to send)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def send_due(self) -> int:
        """Send the e-mails due now, at most BATCH of them; how many were claimed."""
        claimed = 0
        for notification_id, patient_id in self.store.due_emails(dt.datetime.now(dt.UTC), BATCH):
            if self._stop.is_set():
                break
            lease = dt.timedelta(seconds=LEASE_SECONDS)
            owed = self.store.claim_email(notification_id, patient_id, dt.datetime.now(dt.UTC), lease)
            if owed is not None:
                claimed += 1
                self._email(owed)
        return claimed

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                # A full batch: more may be due at once.
                while self.send_due() == BATCH and not self._stop.is_set():
                    pass
            except Exception:  # the database away: the e-mails stay owed, tried at the next poll
                log.exception("notification e-mails: the queue could not be read")

    def _email(self, owed: OwedEmail) -> None:
        now = dt.datetime.now(dt.UTC)
        if not owed.to:
            self._outcome(owed, "not sent: the patient has no address for notifications any more", None)
            return
        try:
            self.smtp.send(owed.to, SUBJECT, owed.text)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("notification %s not e-mailed (attempt %d): %s", owed.notification_id, owed.attempt, exc)
            if owed.attempt > len(self.retry_seconds):
                self._outcome(owed, f"not sent after {owed.attempt} attempts: {exc}", None)
            else:
                retry = now + dt.timedelta(seconds=self.retry_seconds[owed.attempt - 1])
                self._outcome(owed, f"not sent yet (attempt {owed.attempt}): {exc}", retry)
            return
        try:
            self.store.email_sent(owed, now)
        except Exception:  # sent: the claim expires and it may go out once more, nothing worse
            log.exception("cannot record that notification %s was e-mailed", owed.notification_id)

    def _outcome(self, owed: OwedEmail, problem: str, retry_at: dt.datetime | None) -> None:
        try:
            self.store.email_failed(owed, problem, retry_at)
        except Exception:  # the claim expires: tried again then
            log.exception("cannot record the e-mail outcome of notification %s", owed.notification_id)
