"""One background thread working through a bounded queue: how the trace's outputs reach a slow
peer (the ATNA syslog collector, the SMTP relay of the patient's notifications) without ever
slowing the request that produced them.

`offer` never blocks: when the queue is full it says so, and the caller decides what a lost item
means (a log line for an audit message, whose row stays in the database; a recorded failure for
an e-mail). `close` lets the thread finish what is queued, within a timeout.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class BackgroundQueue(Generic[T]):
    def __init__(
        self, name: str, handle: Callable[[T], None], size: int, on_stop: Callable[[], None] | None = None
    ) -> None:
        """Start the thread `name`, which calls `handle` on each item, then `on_stop` once closed."""
        self._handle = handle
        self._on_stop = on_stop
        # None is the stop mark; items are never None.
        self._queue: queue.Queue[T | None] = queue.Queue(maxsize=size)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def offer(self, item: T) -> bool:
        """Queue `item`; False when the queue is full (nothing was queued)."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def close(self, timeout: float) -> None:
        """Stop after what is already queued; wait at most about `timeout` seconds for it."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass  # the thread is stuck on a peer: it is a daemon, the process may end anyway
        self._thread.join(timeout)

    def _run(self) -> None:
        # Ends on the stop mark only: one item's failure must not stop the ones after it.
        while True:
            item = self._queue.get()
            if item is None:
                break
            try:
                self._handle(item)
            except Exception:
                log.exception("%s: an item could not be handled", self._thread.name)
        if self._on_stop is not None:
            self._on_stop()
