"""The VIHF replay cache in the database: every worker process of a server sees the assertion ids
the others have seen (a VIHF is good for one request), and expired ids are purged."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.replay import DatabaseReplayCache
from dmp_xds.storage.tables import VihfReplayRow, metadata


def test_database_replay_cache_is_shared_and_purged(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'replay.db'}")
    metadata.create_all(engine)
    worker1, worker2 = DatabaseReplayCache(engine), DatabaseReplayCache(engine)  # two processes' caches
    assert worker1.first_use("_a", expires=1000.0, now=100.0)
    assert not worker2.first_use("_a", expires=1000.0, now=101.0)  # replayed to the other worker
    assert not worker1.first_use("_a", expires=1000.0, now=102.0)
    assert worker2.first_use("_b", expires=500.0, now=103.0)

    def rows() -> int:
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(VihfReplayRow.__table__)).scalar_one()

    assert rows() == 2
    assert worker1.first_use("_c", expires=2000.0, now=700.0)  # purge due: "_b" has expired
    assert rows() == 2
    engine.dispose()
