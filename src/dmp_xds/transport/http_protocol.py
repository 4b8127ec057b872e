"""uvicorn's httptools protocol with bounds on what a client holds before its request is read.

With httptools uvicorn bounds neither the size of a request head nor the time it takes to
arrive (`h11_max_incomplete_event_size` is h11's), and its keep-alive timer runs only between
requests: 128 MB of header lines stayed in memory, and a header line every 2 s held a connection
for good. Here, for each connection:

- the head (request line and header fields) may not exceed `max_head_bytes`: 431, then close;
- it must be complete within `head_timeout_seconds` of its first byte: 408, then close;
- a connection with no request under way is closed after `idle_timeout_seconds` (uvicorn's
  keep-alive timer, `timeout_keep_alive`), from the moment it opens as after each response;
  bytes that start no request (empty lines) do not reset it;

and, in each worker process, at most `max_connections_per_client` connections are open from
one address (a trusted reverse proxy's excepted: it speaks for many clients); the others get
503 and are closed at once. Over TLS the handshake, which comes before the protocol sees the
connection, gets `head_timeout_seconds` too (HandshakeBoundLoop; uvicorn leaves uvloop's
60 s). The body has its own bounds in serve.py (size; 408 when it is not received
within `request_timeout_seconds`).

Bytes are counted as they arrive, not only when httptools hands over a header line (it joins
a line's pieces until the line ends): a connection holds at most the limit and two reads of the
socket.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
import uvloop
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from dmp_xds.config import Settings

# What a header field costs besides its name and value: ": " and CRLF.
_FIELD_OVERHEAD = 4


@dataclass(frozen=True)
class ConnectionLimits:
    max_head_bytes: int = 64 * 1024
    head_timeout_seconds: float = 10.0
    max_connections_per_client: int = 64  # 0: no limit
    unlimited_clients: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            settings.max_head_bytes,
            settings.head_timeout_seconds,
            settings.max_connections_per_client,
            settings.trusted_proxy_addresses,
        )


class _HeadTooLarge(Exception):
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    # Set by `configure` in each server process (the CLI's, or each worker's) before it serves.
    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    # Open connections per peer address in this process (one event loop: no lock needed).
    _open: ClassVar[Counter[str]] = Counter()

    @staticmethod
    def configure(settings: Settings) -> None:
        GuardedHttpToolsProtocol.limits = ConnectionLimits.from_settings(settings)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counted_peer: str | None = None
        self._in_head = False
        self._head_began_here = False
        self._head_bytes = 0
        self._head_too_large = False
        self._head_timer: asyncio.TimerHandle | None = None

    # -- connection --------------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        peer = self.client[0] if self.client else None
        limit = self.limits.max_connections_per_client
        if peer is not None and limit and peer not in self.limits.unlimited_clients:
            if self._open[peer] >= limit:
                self._refuse(503, f"more than {limit} connections from {peer}")
                return
            self._open[peer] += 1
            self._counted_peer = peer
        # uvicorn arms its keep-alive timer after a response only: a connection that never
        # sends a request would stay open.
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._counted_peer is not None:
            self._open[self._counted_peer] -= 1
            if self._open[self._counted_peer] <= 0:
                del self._open[self._counted_peer]
            self._counted_peer = None
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's, but the idle timer is stopped by the start of a request (on_message_begin),
        # not by any byte, and the head is measured.
        if self.parser is None or self.transport.is_closing():
            return
        self._head_began_here = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._head_too_large:
                self._refuse(431, f"the request head is over the limit of {self.limits.max_head_bytes} bytes")
                return
            message = "Invalid HTTP request received."
            self.logger.warning(message)
            self.send_400_response(message)
            return
        # Counted: the reads that neither began nor ended the head, all of whose bytes are head
        # (one that began it may hold the end of the previous request); on_headers_complete
        # measures the whole head when it ends.
        if self._in_head and not self._head_began_here:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse(431, f"the request head is over the limit of {self.limits.max_head_bytes} bytes")

    # -- parser callbacks ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._unset_keepalive_if_required()
        self._in_head = True
        self._head_began_here = True
        self._head_bytes = 0
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.head_timeout_seconds, self._head_timed_out)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        size = len(self.url) + sum(len(name) + len(value) + _FIELD_OVERHEAD for name, value in self.headers)
        if size > self.limits.max_head_bytes:
            # Raised through httptools, which stops parsing: data_received answers 431.
            self._head_too_large = True
            raise _HeadTooLarge()
        super().on_headers_complete()

    # -- refusals ------------------------------------------------------------------------------
    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head:
            self._refuse(408, f"the request head was not received within {self.limits.head_timeout_seconds:g} s")

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, status: int, reason: str) -> None:
        """Answer `status` (unless a response is under way on this connection) and close."""
        self._in_head = False
        self._cancel_head_timer()
        if self.transport.is_closing():
            return
        prefix = f"{self.client[0]}:{self.client[1]} - " if self.client else ""
        self.logger.warning("%s%d: %s; connection closed", prefix, status, reason)
        if self.cycle is None or self.cycle.response_complete:
            body = (reason + "\n").encode("ascii", "replace")
            self.transport.write(
                b"".join(
                    [
                        STATUS_LINE[status],
                        b"content-type: text/plain; charset=utf-8\r\n",
                        b"content-length: ",
                        str(len(body)).encode("ascii"),
                        b"\r\n",
                        b"connection: close\r\n\r\n",
                        body,
                    ]
                )
            )
        self.transport.close()


class HandshakeBoundLoop(uvloop.Loop):
    """uvloop whose TLS servers give a client `head_timeout_seconds` to finish the handshake,
    and as long to answer the close_notify of a connection the server closes (uvloop's
    defaults: 60 and 30 s). uvicorn's `loop=` setting: "dmp_xds.transport.http_protocol:HandshakeBoundLoop"."""

    async def create_server(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("ssl") is not None:
            seconds = GuardedHttpToolsProtocol.limits.head_timeout_seconds
            kwargs.setdefault("ssl_handshake_timeout", seconds)
            kwargs.setdefault("ssl_shutdown_timeout", seconds)
        return await super().create_server(*args, **kwargs)
