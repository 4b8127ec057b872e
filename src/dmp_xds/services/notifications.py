"""Telling the patient of emergency accesses to their record.

Besides the flag in the access history, every successful emergency access (bris de glace) or
access by the emergency regulation centre (centre 15) leaves a notification the patient reads
(DMP administration `GetNotifications`, `dmp-xds dmp notifications`) and acknowledges. When an
SMTP relay is configured (`DMP_XDS_NOTIFY_SMTP`) and the patient gave an address, the same text
goes out by e-mail from one background thread with a bounded queue, so that a slow relay never
slows the request; the row records when it went out, or why it did not.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import urlsplit

from sqlalchemy import Engine, insert, select, update

from dmp_xds.transport.background import BackgroundQueue
from dmp_xds.storage.trail import AuditEntry
from dmp_xds.storage.tables import DmpNotificationRow, DmpRecordRow
from dmp_xds.security import vocabulary as sv

log = logging.getLogger(__name__)

KIND_EMERGENCY = "emergency-access"
KIND_REGULATION = "regulation-access"
KINDS = {sv.ACCESS_EMERGENCY: KIND_EMERGENCY, sv.ACCESS_REGULATION: KIND_REGULATION}
SMTP_TIMEOUT_SECONDS = 10.0
QUEUE_SIZE = 1000
_notification = DmpNotificationRow.__table__
_record = DmpRecordRow.__table__


@dataclass(frozen=True)
class Notification:
    id: int
    patient_id: str
    created_at: dt.datetime
    kind: str
    audit_seq: int
    actor_id: str
    actor_name: str
    structure_id: str
    reason: str
    message: str
    read_at: dt.datetime | None
    emailed_at: dt.datetime | None
    email_error: str | None


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite gives back naive datetimes: they were stored in UTC.
    return value.replace(tzinfo=dt.timezone.utc) if value is not None and value.tzinfo is None else value


def message_text(entry: AuditEntry) -> str:
    """What the patient reads (in French, the DMP's language)."""
    event = entry.event
    who = event.actor_name or event.actor_id
    structure = f" (structure {event.structure_id})" if event.structure_id else ""
    how = ("en mode bris de glace" if event.access_mode == sv.ACCESS_EMERGENCY
           else "par le centre de régulation médicale (centre 15)")
    documents = f" ; documents : {', '.join(event.documents)}" if event.documents else ""
    reason = f" Motif déclaré : {event.access_reason}." if event.access_reason else ""
    return (f"Le {entry.recorded_at[:10]} à {entry.recorded_at[11:16]} UTC, {who}{structure} a accédé à votre "
            f"DMP {how} (action : {event.action}{documents}).{reason} Vous pouvez consulter l'historique des accès "
            "et signaler un accès que vous contestez.")


class SmtpSender:
    """Sends one e-mail through the relay at `url`: `smtp://host:port` (plain, as to a local
    relay), `smtp+starttls://host:port`, or `smtps://host:port` (TLS from the start)."""

    def __init__(self, url: str, sender: str, ca_file: str = "") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtp+starttls", "smtps") or not parts.hostname or not parts.port:
            raise ValueError(f"notification relay {url!r}: expected smtp://host:port, smtp+starttls://host:port "
                             "or smtps://host:port")
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


class Notifier:
    """Records the notifications of emergency accesses; e-mails them when it can."""

    def __init__(self, engine: Engine, smtp: SmtpSender | None = None) -> None:
        self.engine = engine
        self.smtp = smtp
        self._mailer = None if smtp is None else BackgroundQueue("dmp-notify-smtp", self._email, QUEUE_SIZE)

    def notify(self, entry: AuditEntry, now: dt.datetime | None = None) -> Notification | None:
        """The notification of an emergency access's trace row (None for any other row)."""
        event = entry.event
        kind = KINDS.get(event.access_mode)
        if kind is None or not event.patient_id:
            return None
        now = now or dt.datetime.now(dt.timezone.utc)
        text = message_text(entry)
        with self.engine.begin() as connection:
            email = connection.execute(select(_record.c.notification_email)
                                       .where(_record.c.patient_id == event.patient_id)).scalar()
            new_id = connection.execute(insert(_notification).values(
                patient_id=event.patient_id, created_at=now, kind=kind, audit_seq=entry.seq,
                actor_id=event.actor_id, actor_name=event.actor_name, structure_id=event.structure_id,
                reason=event.access_reason, message=text[:1000])).inserted_primary_key[0]  # type: ignore[index]
        if email and self._mailer is not None and not self._mailer.offer((new_id, email, text)):
            self._record_email(new_id, None, "not sent: the e-mail queue is full")
        return self.get(event.patient_id, new_id)

    def get(self, patient_id: str, notification_id: int) -> Notification | None:
        found = self._select(patient_id, 1, False, notification_id)
        return found[0] if found else None

    def list(self, patient_id: str, limit: int = 200, unread_only: bool = False) -> list[Notification]:
        """The patient's notifications, newest first."""
        return self._select(patient_id, limit, unread_only)

    def _select(self, patient_id: str, limit: int, unread_only: bool, notification_id: int | None = None
                ) -> list[Notification]:
        statement = select(_notification).where(_notification.c.patient_id == patient_id)
        if unread_only:
            statement = statement.where(_notification.c.read_at.is_(None))
        if notification_id is not None:
            statement = statement.where(_notification.c.id == notification_id)
        with self.engine.connect() as connection:
            rows = connection.execute(statement.order_by(_notification.c.id.desc()).limit(limit)).all()
        return [Notification(r.id, r.patient_id, _aware(r.created_at), r.kind, r.audit_seq,  # type: ignore[arg-type]
                             r.actor_id, r.actor_name, r.structure_id, r.reason, r.message, _aware(r.read_at),
                             _aware(r.emailed_at), r.email_error) for r in rows]

    def acknowledge(self, patient_id: str, ids: Sequence[int], now: dt.datetime | None = None) -> int:
        """Mark these notifications of the patient read; how many were unread."""
        with self.engine.begin() as connection:
            return connection.execute(update(_notification).where(
                (_notification.c.patient_id == patient_id) & _notification.c.id.in_(list(ids))
                & _notification.c.read_at.is_(None)).values(read_at=now or dt.datetime.now(dt.timezone.utc))).rowcount

    def close(self, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
        if self._mailer is not None:
            self._mailer.close(timeout)

    def _email(self, item: tuple[int, str, str]) -> None:
        assert self.smtp is not None  # the mailer exists only with a relay
        notification_id, to, text = item
        try:
            self.smtp.send(to, "Accès d'urgence à votre DMP", text)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("notification %s not e-mailed: %s", notification_id, exc)
            self._record_email(notification_id, None, f"not sent: {exc}")
            return
        self._record_email(notification_id, dt.datetime.now(dt.timezone.utc), None)

    def _record_email(self, notification_id: int, sent_at: dt.datetime | None, problem: str | None) -> None:
        try:
            with self.engine.begin() as connection:
                connection.execute(update(_notification).where(_notification.c.id == notification_id)
                                   .values(emailed_at=sent_at, email_error=problem[:1000] if problem else None))
        except Exception:  # the mail thread must live on; the notification itself is stored
            log.exception("cannot record the e-mail outcome of notification %s", notification_id)
