"""The VIHF replay cache of the server: the assertion ids already used, in the database.

A VIHF is good for one request (security/vihf.py checks it with a `ReplayStore`); with several
worker processes only the database can tell all of them which ids were seen.

The row is committed before the request goes on (so every other worker sees it at once and a
replay is refused everywhere), but that commit does not wait for the disk: the request's trace
row, committed durably before the answer leaves, flushes the log up to and past it (SQLite's WAL
and PostgreSQL's WAL are written in order, and a durable commit syncs everything before it). A
request thus costs one wait for the disk, not two, and a traced request's VIHF is on disk as
surely as its trace row. What a power loss (not a crash of the server: the log is written) can
take is the id of a request not answered yet, or of one answered without a trace row in the
instant before it, whose VIHF could then be replayed within its few minutes of freshness.
"""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import Connection, Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from dmp_xds.storage.tables import VihfReplayRow

_replay = VihfReplayRow.__table__
_INSERT = insert(_replay)  # built once: a statement built with its values per request costs more CPU

REPLAY_PURGE_SECONDS = 60.0  # how often a worker deletes the expired ids of the shared replay cache


class DatabaseReplayCache:
    """Assertion ids already used, in the database every worker process shares (`vihf_replay`):
    inserting an id that is there fails on the primary key, so two workers racing with the same
    assertion cannot both accept it. Expired ids are purged by whichever worker finds the last
    purge older than `purge_seconds` (one indexed DELETE)."""

    def __init__(self, engine: Engine, purge_seconds: float = REPLAY_PURGE_SECONDS) -> None:
        self.engine = engine
        self.purge_seconds = purge_seconds
        self._last_purge = 0.0
        self._lock = threading.Lock()

    def first_use(self, assertion_id: str, expires: float, now: float) -> bool:
        self._purge_if_due(now)
        row = {"assertion_id": assertion_id, "expires_at": dt.datetime.fromtimestamp(expires, dt.UTC)}
        with self.engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            try:
                if sqlite:
                    # Per connection, outside the transaction: a WAL commit without its fsync.
                    connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
                elif connection.dialect.name == "postgresql":
                    connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")  # this transaction only
                connection.execute(_INSERT, row)
                connection.commit()
                return True
            except IntegrityError:
                connection.rollback()
                return False
            finally:
                if sqlite:
                    _restore_full_sync(connection)

    def _purge_if_due(self, now: float) -> None:
        with self._lock:
            if now - self._last_purge < self.purge_seconds:
                return
            self._last_purge = now
        with self.engine.begin() as connection:
            connection.execute(delete(_replay).where(_replay.c.expires_at < dt.datetime.fromtimestamp(now, dt.UTC)))


def _restore_full_sync(connection: Connection) -> None:
    """The pooled connection goes back to durable commits (database.py's FULL), or is dropped."""
    try:
        connection.rollback()
        connection.exec_driver_sql("PRAGMA synchronous=FULL")
        connection.commit()
    except BaseException:
        connection.invalidate()
        raise
