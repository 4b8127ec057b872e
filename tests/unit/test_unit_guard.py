"""The guard of tests/unit (its conftest.py): a unit test cannot open a network socket or a
SQLite database, even when the code under test swallows the refusal, nor take a database
fixture; local sockets stay allowed."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text


def test_a_network_socket_is_refused(pure_unit_test: list[str]) -> None:
    with pytest.raises(AssertionError, match="move the test to tests/integration/") as refused:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    assert not isinstance(refused.value, OSError)  # no `except OSError` in the code under test takes it
    with pytest.raises(AssertionError, match="network socket"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    assert pure_unit_test == ["open a network socket"] * 2
    pure_unit_test.clear()  # refused as it must be: this test passes


def test_a_sqlite_database_is_refused(pure_unit_test: list[str]) -> None:
    with pytest.raises(AssertionError, match="SQLite database"):
        sqlite3.connect(":memory:")
    with pytest.raises(AssertionError, match="SQLite database"), create_engine("sqlite://").connect() as connection:
        connection.execute(text("select 1"))
    assert pure_unit_test == ["open a SQLite database"] * 2
    pure_unit_test.clear()


def test_a_swallowed_refusal_and_a_database_fixture_fail_the_test(tmp_path: Path) -> None:
    # A test session of its own, under this guard, with a test whose code swallows the refusal.
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_careless.py").write_text(
        "import socket\n\n\ndef test_careless():\n    try:\n        socket.socket()\n"
        "    except Exception:\n        pass\n\n\ndef test_database(db_url):\n    pass\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "a unit test may not open a network socket" in run.stdout
    assert "a unit test may not use a database (db_url)" in run.stdout
    assert "2 errors" in run.stdout  # each test fails (in its teardown, in its set-up)


def test_local_sockets_and_event_loops_are_allowed(pure_unit_test: list[str]) -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"
    asyncio.run(asyncio.sleep(0))
    assert pure_unit_test == []
