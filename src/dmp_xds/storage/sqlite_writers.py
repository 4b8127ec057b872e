"""SQLite writers of one database file, queued instead of left to SQLite's busy handler.

SQLite lets one transaction write at a time. A writer that finds the lock taken is put to sleep
by SQLite's busy handler for 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, then 100 ms between tries,
however soon the lock is released: with the server's threads and processes each committing a
VIHF replay row and a trace row per request (a few milliseconds each, an fsync), a request
behind two or three others slept tens to hundreds of milliseconds. Here a writer waits for the
others of its process on a thread lock (woken as soon as it is released) and for those of the
other processes on an advisory file lock next to the database, tried every half millisecond.
Nothing about what is written or when it is durable changes: SQLite still takes its own lock;
a writer that cannot get these within SQLite's busy timeout goes on and lets SQLite decide.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import threading
import time
from typing import Any

# The statements that make SQLite take its write lock (the module opens the transaction itself
# before them); anything else runs as before.
_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
POLL_SECONDS = 0.0005

_guard = threading.Lock()
_thread_locks: dict[str, threading.Lock] = {}
_files: dict[tuple[str, int], int] = {}  # (lock file, pid) -> descriptor: one per process


class WriteLock:
    """The writers' queue of one database file: `lock_path` is its advisory lock file."""

    def __init__(self, lock_path: str, timeout: float) -> None:
        self.lock_path = lock_path
        self.timeout = timeout
        with _guard:
            self._threads = _thread_locks.setdefault(lock_path, threading.Lock())

    def _descriptor(self) -> int:
        # Per process: a descriptor inherited through fork shares its lock with the parent.
        key = (self.lock_path, os.getpid())
        with _guard:
            if key not in _files:
                _files[key] = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            return _files[key]

    def acquire(self) -> bool:
        """Wait for the other writers (at most `timeout`); False: not acquired."""
        deadline = time.monotonic() + self.timeout
        if not self._threads.acquire(timeout=self.timeout):
            return False
        try:
            descriptor = self._descriptor()
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(POLL_SECONDS)
        except OSError:
            pass  # no lock file (read-only folder...): SQLite's own locking still holds
        self._threads.release()
        return False

    def release(self) -> None:
        try:
            fcntl.flock(self._descriptor(), fcntl.LOCK_UN)
        finally:
            self._threads.release()


class QueuedWritersConnection(sqlite3.Connection):
    """A sqlite3 connection whose write transactions hold `write_lock` from their first write
    statement until they end (commit, rollback, close, or the statement itself in autocommit)."""

    write_lock: WriteLock | None = None
    _holding = False

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or QueuedWritersCursor)

    def before_statement(self, sql: str) -> None:
        if self.write_lock is not None and not self._holding and _WRITE.match(sql):
            self._holding = self.write_lock.acquire()

    def after_statement(self) -> None:
        if self._holding and not self.in_transaction:
            self.release_writers()

    def release_writers(self) -> None:
        if self._holding and self.write_lock is not None:
            self._holding = False
            self.write_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.release_writers()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_writers()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_writers()


class QueuedWritersCursor(sqlite3.Cursor):
    connection: QueuedWritersConnection

    def execute(self, sql: str, parameters: Any = (), /) -> QueuedWritersCursor:
        self.connection.before_statement(sql)
        try:
            super().execute(sql, parameters)
        finally:
            self.connection.after_statement()
        return self

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> QueuedWritersCursor:
        self.connection.before_statement(sql)
        try:
            super().executemany(sql, seq_of_parameters)
        finally:
            self.connection.after_statement()
        return self
