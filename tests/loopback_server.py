"""The small peers a test runs on 127.0.0.1 (an SMTP relay, a TLS syslog collector): one accept
loop on a thread, one connection at a time handed to the peer's `handle`, stopped by closing the
listener when the test is done."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

CONNECTION_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 1000  # a test makes a handful; the loop ends there at the latest
JOIN_SECONDS = 5.0


@contextmanager
def serving(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """Accept connections on a free port of 127.0.0.1 (yielded) until the block ends. A
    connection that breaks (reset, timeout) is dropped and the next one accepted."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def accept() -> None:
        for _ in range(MAX_CONNECTIONS):
            try:
                connection, _ = listener.accept()
            except OSError:
                return  # the listener was closed: the test is over
            with connection:
                connection.settimeout(CONNECTION_TIMEOUT_SECONDS)
                try:
                    handle(connection)
                except OSError:
                    continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(JOIN_SECONDS)
