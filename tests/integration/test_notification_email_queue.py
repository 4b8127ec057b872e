"""The patient's notification e-mails are a queue in the database that any server process
drains: two senders (two engines, as two processes have) racing over the same rows claim each
e-mail once and the relay receives each once; a relay that refuses is tried a bounded number of
times, then the e-mail is given up with the reason; nothing is queued without an address. On
SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest
from sqlalchemy import Engine, select

from dmp_xds.dmp.model import Consent
from dmp_xds.storage.database import create_engine_for, upgrade
from dmp_xds.storage.notifications import NotificationStore
from dmp_xds.storage.records import DmpStore
from dmp_xds.storage.tables import DmpNotificationRow
from dmp_xds.transport.smtp import MailOutbox, SmtpSender
from smtp_relay import SmtpRelay
from xds_server import free_port

PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
WITHOUT_ADDRESS = "2910599123456^^^&1.2.250.1.213.1.4.10&ISO"
EMAIL = "patient@example.org"
LEASE = dt.timedelta(seconds=120)
NEVER = 3600.0  # the outboxes' own thread never polls during a test: the test drives them

_notification = DmpNotificationRow.__table__


@pytest.fixture
def engines(db_url: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one migrated database, with a record that has an address and one without."""
    upgrade(db_url)
    first, second = create_engine_for(db_url), create_engine_for(db_url)
    records = DmpStore(first)
    for patient in (PATIENT, WITHOUT_ADDRESS):
        records.create(patient, Consent("accueil", dt.datetime.now(dt.UTC)))
    records.update_consent(PATIENT, notification_email=EMAIL)
    yield first, second
    first.dispose()
    second.dispose()


def notify(store: NotificationStore, count: int, patient: str = PATIENT, email_wanted: bool = True) -> list[int]:
    now = dt.datetime.now(dt.UTC)
    return [
        store.add(patient, now, "emergency-access", n, "899700001", "DR X", "S1", "coma", f"accès {n}", email_wanted)[0]
        for n in range(count)
    ]


def row(engine: Engine, notification_id: int) -> tuple[dt.datetime | None, int, str | None, dt.datetime | None]:
    """(emailed_at, email_attempts, email_error, email_due_at) of a notification."""
    with engine.connect() as connection:
        found = connection.execute(
            select(
                _notification.c.emailed_at,
                _notification.c.email_attempts,
                _notification.c.email_error,
                _notification.c.email_due_at,
            ).where(_notification.c.id == notification_id)
        ).one()
    return found.emailed_at, found.email_attempts, found.email_error, found.email_due_at


def test_racing_senders_claim_each_owed_email_once(engines: tuple[Engine, Engine]) -> None:
    stores = [NotificationStore(engine) for engine in engines]
    owed = set(notify(stores[0], 12))
    now = dt.datetime.now(dt.UTC)
    claims: list[int] = []
    lock = threading.Lock()

    def sender(store: NotificationStore) -> None:
        for notification_id, patient_id in store.due_emails(now, 50):
            claimed = store.claim_email(notification_id, patient_id, now, LEASE)
            if claimed is not None:
                with lock:
                    claims.append(claimed.notification_id)

    threads = [threading.Thread(target=sender, args=(stores[n % 2],)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(claims) == sorted(owed)  # every one, none twice
    assert stores[1].due_emails(now, 50) == []
    # A claim lasts its lease: a sender that died lets another take the e-mail afterwards.
    later = now + LEASE + dt.timedelta(seconds=1)
    assert {n for n, _ in stores[1].due_emails(later, 50)} == owed
    again = stores[1].claim_email(min(owed), PATIENT, later, LEASE)
    assert again is not None and again.attempt == 2 and again.to == EMAIL


def test_two_outboxes_send_each_email_once(engines: tuple[Engine, Engine], relay: SmtpRelay) -> None:
    smtp = SmtpSender(f"smtp://127.0.0.1:{relay.port}", "dmp@test.example")
    outboxes = [MailOutbox(smtp, NotificationStore(engine), poll_seconds=NEVER) for engine in engines]
    try:
        before = len(relay.messages)
        owed = notify(outboxes[0].store, 6)
        threads = [threading.Thread(target=outbox.send_due) for outbox in outboxes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        texts = [message_from_bytes(m, policy=policy.default).get_content().strip() for m in relay.messages[before:]]
        assert sorted(texts) == [f"accès {n}" for n in range(6)]  # each once
        for notification_id in owed:
            emailed_at, attempts, problem, due = row(engines[1], notification_id)
            assert emailed_at is not None and attempts == 1 and problem is None and due is None
    finally:
        for outbox in outboxes:
            outbox.close()


def test_a_refusing_relay_is_tried_a_bounded_number_of_times(engines: tuple[Engine, Engine]) -> None:
    nobody = SmtpSender(f"smtp://127.0.0.1:{free_port()}", "dmp@test.example")  # nothing listens there
    outbox = MailOutbox(nobody, NotificationStore(engines[0]), poll_seconds=NEVER, retry_seconds=(0.0, 0.0))
    try:
        (owed,) = notify(outbox.store, 1)
        claimed = [outbox.send_due() for _ in range(6)]  # bounded: more looks than attempts
        assert claimed == [1, 1, 1, 0, 0, 0]
        emailed_at, attempts, problem, due = row(engines[0], owed)
        assert emailed_at is None and due is None and attempts == 3
        assert problem is not None and problem.startswith("not sent after 3 attempts:"), problem
    finally:
        outbox.close()


def test_nothing_is_queued_without_an_address_or_a_relay(engines: tuple[Engine, Engine]) -> None:
    store = NotificationStore(engines[0])
    notify(store, 1, WITHOUT_ADDRESS)
    notify(store, 1, PATIENT, email_wanted=False)
    assert store.due_emails(dt.datetime.now(dt.UTC) + LEASE, 50) == []
