"""The patient's notifications in the database (`dmp_notification`): written when an emergency
access is traced, read and acknowledged by the patient, and marked once e-mailed (or why not).
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
    ) -> tuple[int, str]:
        """Store a notification; its id, and the address the patient gave for them ("" = none)."""
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

    def record_email(self, notification_id: int, sent_at: dt.datetime | None, problem: str | None) -> None:
        """When the notification went out by e-mail, or why it did not."""
        with self.engine.begin() as connection:
            connection.execute(
                update(_notification)
                .where(_notification.c.id == notification_id)
                .values(emailed_at=sent_at, email_error=problem[:1000] if problem else None)
            )
