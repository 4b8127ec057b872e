"""The background queue behind the ATNA export and the notification e-mails: items handled in
order on one thread, a full queue refused without blocking, a failing item not stopping the
others, and close() finishing what is queued before `on_stop`."""

from __future__ import annotations

import threading

from dmp_xds.transport.background import BackgroundQueue

WAIT = 10.0


def test_items_in_order_then_on_stop() -> None:
    handled: list[str] = []
    stopped = threading.Event()
    worker = BackgroundQueue("test-order", handled.append, size=10, on_stop=stopped.set)
    for item in ("a", "b", "c"):
        assert worker.offer(item)
    worker.close(WAIT)
    assert handled == ["a", "b", "c"] and stopped.is_set()


def test_a_full_queue_refuses_without_blocking() -> None:
    started, release = threading.Event(), threading.Event()
    handled: list[int] = []

    def slow(item: int) -> None:
        started.set()
        assert release.wait(WAIT)
        handled.append(item)

    worker = BackgroundQueue("test-full", slow, size=1)
    assert worker.offer(1) and started.wait(WAIT)  # the thread holds 1, the queue is empty
    assert worker.offer(2)  # queued
    assert not worker.offer(3)  # full: refused at once
    release.set()
    worker.close(WAIT)
    assert handled == [1, 2]


def test_a_failing_item_does_not_stop_the_thread() -> None:
    handled: list[int] = []

    def fragile(item: int) -> None:
        if item == 2:
            raise ValueError("peer refused")
        handled.append(item)

    worker = BackgroundQueue("test-failure", fragile, size=10)
    for item in (1, 2, 3):
        worker.offer(item)
    worker.close(WAIT)
    assert handled == [1, 3]
