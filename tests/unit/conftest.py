"""tests/unit holds pure tests only: no server, no database, no network.

An autouse guard keeps it so. While a unit test runs, opening a network socket (IPv4 or IPv6:
a server, a client, a UDP collector) or any SQLite database (a file or `:memory:`) raises, and
the test fails even if the code under test swallowed the error. Such a test belongs in
tests/integration/, which `make test` runs and `make unit` does not. Local sockets (AF_UNIX,
as an asyncio event loop makes for itself) and files in `tmp_path` stay allowed. PostgreSQL is
reached through libpq, below Python's sockets: here its fixtures (`db_url`, `postgres_server`)
fail instead.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

NETWORK_FAMILIES = (socket.AF_INET, socket.AF_INET6)
MOVE_IT = "a unit test may not {what}: tests/unit is pure, move the test to tests/integration/"

# What the unit test running now tried and was refused; None outside a unit test.
_refused: list[str] | None = None


class NotAUnitTest(AssertionError):
    """Not an OSError, so that code handling network or database errors does not take it for one."""


def _refuse(what: str) -> NotAUnitTest:
    if _refused is not None:
        _refused.append(what)
    return NotAUnitTest(MOVE_IT.format(what=what))


class GuardedSocket(socket.socket):
    """socket.socket, refusing the network families while a unit test runs."""

    def __init__(self, family: Any = -1, type: Any = -1, proto: int = -1, fileno: int | None = None) -> None:
        super().__init__(family, type, proto, fileno)
        if _refused is not None and self.family in NETWORK_FAMILIES:
            self.close()
            raise _refuse("open a network socket")


def _no_sqlite(*args: object, **kwargs: object) -> sqlite3.Connection:
    raise _refuse("open a SQLite database")


@pytest.fixture(autouse=True)
def pure_unit_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What the test tried and was refused (a test of the guard itself clears it)."""
    global _refused
    refused: list[str] = []
    _refused = refused
    monkeypatch.setattr(socket, "socket", GuardedSocket)
    # SQLAlchemy's SQLite dialect connects through sqlite3.dbapi2, the module sqlite3 re-exports.
    monkeypatch.setattr(sqlite3, "connect", _no_sqlite)
    monkeypatch.setattr(sqlite3.dbapi2, "connect", _no_sqlite)
    try:
        yield refused
    finally:
        _refused = None
    if refused:
        pytest.fail(MOVE_IT.format(what=" and ".join(sorted(set(refused)))), pytrace=False)


@pytest.fixture
def db_url() -> NoReturn:
    raise NotAUnitTest(MOVE_IT.format(what="use a database (db_url)"))


@pytest.fixture
def postgres_server() -> NoReturn:
    raise NotAUnitTest(MOVE_IT.format(what="start PostgreSQL (postgres_server)"))
