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


def test_replay_row_commit_leaves_connections_durable(db_url: str) -> None:
    """The replay row's commit skips the disk wait on its own transaction only: the pooled
    connection every later write takes (the trace row, a submission) commits durably again."""
    engine, other_engine = create_engine_for(db_url), create_engine_for(db_url)
    metadata.create_all(engine)
    if engine.dialect.name == "postgresql":  # the tests' server runs without durable commits
        with engine.begin() as connection:
            connection.exec_driver_sql(f'ALTER DATABASE "{engine.url.database}" SET synchronous_commit TO on')
        engine.dispose()  # new sessions take it
    cache, other_worker = DatabaseReplayCache(engine), DatabaseReplayCache(other_engine)
    assert cache.first_use("_a", expires=1000.0, now=100.0)
    assert not other_worker.first_use("_a", expires=1000.0, now=101.0)  # committed: seen at once
    assert not cache.first_use("_a", expires=1000.0, now=102.0)  # refused, then restored too
    assert engine.pool.checkedin() == 1  # the replay check's connection, taken again below
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2  # FULL
        else:
            assert connection.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
    other_engine.dispose()
    engine.dispose()
