"""The VIHF replay cache of the server: the assertion ids already used, in the database.

A VIHF is good for one request (security/vihf.py checks it with a `ReplayStore`); with several
worker processes only the database can tell all of them which ids were seen.
"""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from dmp_xds.storage.tables import VihfReplayRow

_replay = VihfReplayRow.__table__

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
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(_replay).values(
                        assertion_id=assertion_id, expires_at=dt.datetime.fromtimestamp(expires, dt.UTC)
                    )
                )
        except IntegrityError:
            return False
        return True

    def _purge_if_due(self, now: float) -> None:
        with self._lock:
            if now - self._last_purge < self.purge_seconds:
                return
            self._last_purge = now
        with self.engine.begin() as connection:
            connection.execute(delete(_replay).where(_replay.c.expires_at < dt.datetime.fromtimestamp(now, dt.UTC)))
