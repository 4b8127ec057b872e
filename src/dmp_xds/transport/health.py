"""The load balancer's view of a server process: is it alive, is it ready to serve.

`GET /health` (liveness) answers as soon as the event loop does: no database, no disk. `GET
/health/ready` (readiness) answers 200 only when the database answers a trivial query and the
document store accepts a write, each within `READY_TIMEOUT_SECONDS`, else 503 naming the part
that failed. Both take HEAD as well, need no authentication (a load balancer has no card: over
TLS the client certificate is optional at the handshake, and these paths never look at it), hold
no patient data and are not traced. The checks run on a thread of their own, never the
request pool's, and one at a time: a load balancer polling a stuck database does not pile up
threads, it shares the check under way.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from sqlalchemy import Engine, text

from dmp_xds import __version__

log = logging.getLogger(__name__)

LIVE_PATH = "/health"
READY_PATH = "/health/ready"
PATHS = (LIVE_PATH, READY_PATH)
READY_TIMEOUT_SECONDS = 2.0
OK = "ok"


class CheckedStore(Protocol):
    """A document store the readiness check can probe: `check` raises (OSError or the store's
    own error) when documents cannot be stored now, and returns quickly otherwise."""

    def check(self) -> None: ...


def body(status: str, checks: dict[str, str] | None = None) -> bytes:
    out: dict[str, object] = {"status": status, "version": __version__}
    if checks is not None:
        out["checks"] = checks
    return json.dumps(out).encode()


class Readiness:
    """The readiness checks of one process: the database and the document store."""

    def __init__(self, engine: Engine, blobs: CheckedStore, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        self.engine = engine
        self.blobs = blobs
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health")
        self._running: asyncio.Future[dict[str, str]] | None = None

    async def check(self) -> tuple[int, bytes]:
        """(HTTP status, JSON body) of the readiness check."""
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().run_in_executor(self._executor, self._checks)
        try:
            async with asyncio.timeout(self.timeout):
                checks = await asyncio.shield(self._running)
        except TimeoutError:
            late = f"not finished within {self.timeout:g} s"
            checks = {"database": late, "documents": late}
        ready = all(outcome == OK for outcome in checks.values())
        return (200, body("ready", checks)) if ready else (503, body("unavailable", checks))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _checks(self) -> dict[str, str]:
        # The reasons stay generic (the load balancer's page is public); the log has the cause.
        checks = {"database": OK, "documents": OK}
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1")).scalar()
        except Exception as exc:
            log.warning("readiness: the database does not answer: %s", exc)
            checks["database"] = "unavailable"
        try:
            self.blobs.check()
        except Exception as exc:
            log.warning("readiness: the document store cannot be written: %s", exc)
            checks["documents"] = "unavailable"
        return checks
