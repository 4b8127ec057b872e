"""The patient's notifications in the database (`dmp_notification`): written when an emergency
access is traced, read and acknowledged by the patient, and marked once e-mailed (or why not).

The table is also the queue of the e-mails owed (`email_due_at`: when the next attempt may be
made; NULL once sent, given up, or when none is owed), so that any server process can send
them and none is lost with the process that wrote the notification. A process claims one
e-mail by moving its due time past a lease in one conditional UPDATE: of two processes claiming
the same row, the second finds it no longer due and leaves it. A process that dies between
sending and recording leaves the claim to expire, and the e-mail is sent again after the lease:
the only way one is sent twice. Attempts are counted and bounded (`claim_email`'s caller decides
when to give up).
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update

from dmp_xds.storage.tables import DmpNotificationRow, DmpRecordRow, utc_aware

_notification = DmpNotificationRow.__table__
_record = DmpRecordRow.__table__


@dataclass(frozen=True)
class OwedEmail:
    """An e-mail this process has claimed: to send now, then `email_sent` or `email_failed`."""

    notification_id: int
    patient_id: str
    to: str  # the patient's address now ("" if they removed it meanwhile)
    text: str
    attempt: int  # 1 for the first


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


class NotificationStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self,
        patient_id: str,
        created_at: dt.datetime,
        kind: str,
        audit_seq: int,
        actor_id: str,
        actor_name: str,
        structure_id: str,
        reason: str,
        message: str,
        email_wanted: bool = False,
    ) -> tuple[int, str]:
        """Store a notification, queued for e-mail if `email_wanted` and the patient gave an
        address; its id, and that address ("" = none)."""
        with self.engine.begin() as connection:
            email = connection.execute(
                select(_record.c.notification_email).where(_record.c.patient_id == patient_id)
            ).scalar()
            new_id = connection.execute(
                insert(_notification).values(
                    patient_id=patient_id,
                    created_at=created_at,
                    kind=kind,
                    audit_seq=audit_seq,
                    actor_id=actor_id,
                    actor_name=actor_name,
                    structure_id=structure_id,
                    reason=reason,
                    message=message[:1000],
                    email_due_at=created_at if email_wanted and email else None,
                )
            ).inserted_primary_key[0]  # type: ignore[index]  # None only after an executemany
        return new_id, email or ""

    def get(self, patient_id: str, notification_id: int) -> Notification | None:
        found = self._select(patient_id, 1, False, notification_id)
        return found[0] if found else None

    def list(self, patient_id: str, limit: int = 200, unread_only: bool = False) -> list[Notification]:
        """The patient's notifications, newest first."""
        return self._select(patient_id, limit, unread_only)

    def _select(
        self, patient_id: str, limit: int, unread_only: bool, notification_id: int | None = None
    ) -> builtins.list[Notification]:
        statement = select(_notification).where(_notification.c.patient_id == patient_id)
        if unread_only:
            statement = statement.where(_notification.c.read_at.is_(None))
        if notification_id is not None:
            statement = statement.where(_notification.c.id == notification_id)
        with self.engine.connect() as connection:
            rows = connection.execute(statement.order_by(_notification.c.id.desc()).limit(limit)).all()
        return [
            Notification(
                r.id,
                r.patient_id,
                utc_aware(r.created_at),
                r.kind,
                r.audit_seq,
                r.actor_id,
                r.actor_name,
                r.structure_id,
                r.reason,
                r.message,
                utc_aware(r.read_at),
                utc_aware(r.emailed_at),
                r.email_error,
            )
            for r in rows
        ]

    def acknowledge(self, patient_id: str, ids: Sequence[int], now: dt.datetime) -> int:
        """Mark these notifications of the patient read; how many were unread."""
        with self.engine.begin() as connection:
            return connection.execute(
                update(_notification)
                .where(
                    (_notification.c.patient_id == patient_id)
                    & _notification.c.id.in_(list(ids))
                    & _notification.c.read_at.is_(None)
                )
                .values(read_at=now)
            ).rowcount

    def due_emails(self, now: dt.datetime, limit: int) -> builtins.list[tuple[int, str]]:
        """The notifications whose e-mail is due, the longest waiting first: (id, patient id),
        the patient naming the row wherever the table is distributed by patient."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_notification.c.id, _notification.c.patient_id)
                .where(_notification.c.email_due_at <= now)
                .order_by(_notification.c.email_due_at)
                .limit(limit)
            ).all()
        return [(r.id, r.patient_id) for r in rows]

    def claim_email(
        self, notification_id: int, patient_id: str, now: dt.datetime, lease: dt.timedelta
    ) -> OwedEmail | None:
        """Claim the notification's e-mail for `lease` (None: not due, another process has it)."""
        with self.engine.begin() as connection:
            claimed = connection.execute(
                update(_notification)
                .where(
                    (_notification.c.patient_id == patient_id)
                    & (_notification.c.id == notification_id)
                    & (_notification.c.email_due_at <= now)
                )
                .values(email_due_at=now + lease, email_attempts=_notification.c.email_attempts + 1)
                .returning(_notification.c.message, _notification.c.email_attempts)
            ).first()
            if claimed is None:
                return None
            email = connection.execute(
                select(_record.c.notification_email).where(_record.c.patient_id == patient_id)
            ).scalar()
        return OwedEmail(notification_id, patient_id, email or "", claimed.message, claimed.email_attempts)

    def email_sent(self, owed: OwedEmail, sent_at: dt.datetime) -> None:
        self._email_outcome(owed, emailed_at=sent_at, email_error=None, email_due_at=None)

    def email_failed(self, owed: OwedEmail, problem: str, retry_at: dt.datetime | None) -> None:
        """Why the e-mail did not go out; tried again from `retry_at` (None: given up)."""
        self._email_outcome(owed, email_error=problem[:1000], email_due_at=retry_at)

    def _email_outcome(self, owed: OwedEmail, **values: object) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(_notification)
                .where((_notification.c.patient_id == owed.patient_id) & (_notification.c.id == owed.notification_id))
                .values(**values)
            )
