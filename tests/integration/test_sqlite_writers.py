"""SQLite writers queue on the database's advisory lock file (storage/sqlite_writers.py): a write
transaction holds it from its first write until it ends, whichever way it ends, reads never take
it, and writers of several engines and threads all get their rows in."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from dmp_xds.storage.database import create_engine_for, sqlite_write_lock_path


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    path = str(tmp_path / "writers.db")
    engine = create_engine_for(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine, sqlite_write_lock_path(path)
    engine.dispose()


def held_by_someone(lock_path: str) -> bool:
    """Whether a writer holds the lock (tried from a descriptor of our own)."""
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # closing releases what it got
    return False


def test_a_write_transaction_holds_the_writers_lock_until_it_ends(database: tuple[Engine, str]) -> None:
    engine, lock_path = database
    with engine.connect() as connection:
        connection.execute(text("SELECT count(*) FROM t")).scalar_one()
        assert not held_by_someone(lock_path)  # a read does not queue
        connection.execute(text("INSERT INTO t VALUES (1)"))
        assert held_by_someone(lock_path)
        connection.commit()
        assert not held_by_someone(lock_path)
        connection.execute(text("UPDATE t SET n = 2"))
        assert held_by_someone(lock_path)
        connection.rollback()
        assert not held_by_someone(lock_path)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("INSERT INTO t VALUES (3)"))
        assert not held_by_someone(lock_path)  # the statement was its own transaction
    with engine.connect() as connection:
        assert connection.execute(text("SELECT n FROM t ORDER BY n")).scalars().all() == [1, 3]


def test_writers_of_several_engines_and_threads_all_get_their_rows_in(
    database: tuple[Engine, str], tmp_path: Path
) -> None:
    engine, lock_path = database
    other = create_engine_for(f"sqlite:///{tmp_path / 'writers.db'}")
    errors: list[BaseException] = []

    def write(target: Engine, first: int) -> None:
        try:
            for n in range(first, first + 25):
                with target.begin() as connection:
                    connection.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(e, 100 * i)) for i, e in enumerate([engine, other] * 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    other.dispose()
    assert errors == []
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(DISTINCT n) FROM t")).scalar_one() == 150
    assert not held_by_someone(lock_path)
