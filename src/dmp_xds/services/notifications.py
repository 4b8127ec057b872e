"""Telling the patient of emergency accesses to their record.

Besides the flag in the access history, every successful emergency access (bris de glace) or
access by the emergency regulation centre (centre 15) leaves a notification the patient reads
(DMP administration `GetNotifications`, `dmp-xds dmp notifications`) and acknowledges. When an
SMTP relay is configured (`DMP_XDS_NOTIFY_SMTP`) and the patient gave an address, the same text
goes out by e-mail: the row is queued in the database (storage/notifications.py) and any server
process's outbox (transport/smtp.py) sends it, never slowing the request; the row records when
it went out, or why it did not.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import Engine

from dmp_xds.security import vocabulary as sv
from dmp_xds.storage.notifications import Notification, NotificationStore
from dmp_xds.storage.trail import AuditEntry

log = logging.getLogger(__name__)

KIND_EMERGENCY = "emergency-access"
KIND_REGULATION = "regulation-access"
KINDS = {sv.ACCESS_EMERGENCY: KIND_EMERGENCY, sv.ACCESS_REGULATION: KIND_REGULATION}


class Outbox(Protocol):
    """What sends the e-mails the database owes (transport/smtp.py MailOutbox)."""

    def wake(self) -> None:
        """An e-mail was just queued: look now rather than at the next poll."""

    def close(self, timeout: float) -> None: ...


def message_text(entry: AuditEntry) -> str:
    """What the patient reads (in French, the DMP's language)."""
    event = entry.event
    who = event.actor_name or event.actor_id
    structure = f" (structure {event.structure_id})" if event.structure_id else ""
    how = (
        "en mode bris de glace"
        if event.access_mode == sv.ACCESS_EMERGENCY
        else "par le centre de régulation médicale (centre 15)"
    )
    documents = f" ; documents : {', '.join(event.documents)}" if event.documents else ""
    reason = f" Motif déclaré : {event.access_reason}." if event.access_reason else ""
    return (
        f"Le {entry.recorded_at[:10]} à {entry.recorded_at[11:16]} UTC, {who}{structure} a accédé à votre "
        f"DMP {how} (action : {event.action}{documents}).{reason} Vous pouvez consulter l'historique des accès "
        "et signaler un accès que vous contestez."
    )


class Notifier:
    """Records the notifications of emergency accesses; e-mails them when it can."""

    def __init__(self, engine: Engine, outbox: Outbox | None = None) -> None:
        self.store = NotificationStore(engine)
        self.outbox = outbox

    def notify(self, entry: AuditEntry, now: dt.datetime | None = None) -> Notification | None:
        """The notification of an emergency access's trace row (None for any other row)."""
        event = entry.event
        kind = KINDS.get(event.access_mode)
        if kind is None or not event.patient_id:
            return None
        now = now or dt.datetime.now(dt.UTC)
        text = message_text(entry)
        new_id, email = self.store.add(
            event.patient_id,
            now,
            kind,
            entry.seq,
            event.actor_id,
            event.actor_name,
            event.structure_id,
            event.access_reason,
            text,
            email_wanted=self.outbox is not None,
        )
        if email and self.outbox is not None:
            self.outbox.wake()
        return self.store.get(event.patient_id, new_id)

    def get(self, patient_id: str, notification_id: int) -> Notification | None:
        return self.store.get(patient_id, notification_id)

    def list(self, patient_id: str, limit: int = 200, unread_only: bool = False) -> list[Notification]:
        """The patient's notifications, newest first."""
        return self.store.list(patient_id, limit, unread_only)

    def acknowledge(self, patient_id: str, ids: Sequence[int], now: dt.datetime | None = None) -> int:
        """Mark these notifications of the patient read; how many were unread."""
        return self.store.acknowledge(patient_id, ids, now or dt.datetime.now(dt.UTC))

    def close(self, timeout: float = 10.0) -> None:
        if self.outbox is not None:
            self.outbox.close(timeout)
