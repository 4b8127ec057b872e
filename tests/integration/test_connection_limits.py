"""What a client can hold before its request is read, over HTTP and over TLS without a client
certificate (a real server with small limits): a head over the limit gets 431 without the
server keeping it, a head that is not complete in time gets 408, an idle connection and a TLS
handshake that never comes are closed, and one address cannot open more connections than
allowed. After each, a normal request works."""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest
import requests

from dmp_xds.security.pki import create_test_pki
from secure_server import start_secure_server, stop_secure_server
from xds_server import start_server, stop_server

MAX_HEAD_BYTES = 16 * 1024
HEAD_TIMEOUT_SECONDS = 1.5
IDLE_TIMEOUT_SECONDS = 3.0
MAX_CONNECTIONS = 5
LIMITS = {
    "DMP_XDS_MAX_HEAD_BYTES": str(MAX_HEAD_BYTES),
    "DMP_XDS_HEAD_TIMEOUT_SECONDS": str(HEAD_TIMEOUT_SECONDS),
    "DMP_XDS_IDLE_TIMEOUT_SECONDS": str(IDLE_TIMEOUT_SECONDS),
    "DMP_XDS_MAX_CONNECTIONS_PER_CLIENT": str(MAX_CONNECTIONS),
}
# How long past a timeout the server may take to close, and the bound of every wait here.
MARGIN_SECONDS = 2.0
WAIT_SECONDS = 15.0
HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@dataclass
class Endpoint:
    base_url: str
    port: int
    pid: int
    tls: ssl.SSLContext | None  # a client context without a certificate, or None for HTTP
    verify: str | bool

    def connect(self, handshake: bool = True) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=WAIT_SECONDS)
        if self.tls is not None and handshake:
            return self.tls.wrap_socket(sock, server_hostname="localhost")
        return sock

    def healthy(self) -> bool:
        return requests.get(self.base_url + "/health", timeout=10, verify=self.verify).status_code == 200

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)


@pytest.fixture(scope="module", params=["http", "tls"])
def endpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    if request.param == "http":
        server = start_server(tmp_path_factory.mktemp("limits-http"), "", {"DMP_XDS_PROFILE": "ihe", **LIMITS})
        yield Endpoint(server.base_url, int(server.base_url.rsplit(":", 1)[1]), server.process.pid, None, True)
        stop_server(server)
        return
    pki = create_test_pki(tmp_path_factory.mktemp("limits-pki"))
    secure = start_secure_server(tmp_path_factory.mktemp("limits-tls"), pki, tls=True, extra=LIMITS)
    context = ssl.create_default_context(cafile=str(pki.anchors))
    context.check_hostname = False
    yield Endpoint(secure.url, int(secure.url.rsplit(":", 1)[1]), secure.process.pid, context, str(pki.anchors))
    stop_secure_server(secure)


def _until_closed(sock: socket.socket, seconds: float = WAIT_SECONDS) -> tuple[bytes, float | None]:
    """What the server sends until it closes, and after how many seconds (None: still open)."""
    started = time.monotonic()
    received = b""
    sock.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ssl.SSLWantReadError):
            continue
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return received, time.monotonic() - started
        if not chunk:
            return received, time.monotonic() - started
        received += chunk
    return received, None


def _server_spoke(sock: socket.socket) -> bool:
    """The server sent something (an answer, the end of the connection) that is not read yet.
    Over TLS the client may go on writing after the server's close_notify: watch for it."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    return bool(select.select([sock], [], [], 0)[0])


def _trickle(sock: socket.socket, line: bytes, every: float) -> None:
    """Send `line` every `every` seconds until the server speaks, for WAIT_SECONDS at most."""
    for i in range(int(WAIT_SECONDS / every)):
        time.sleep(every)
        if _server_spoke(sock) or not _send_head(sock, line.replace(b"%d", b"%d" % i), iter(())):
            return


def _response(sock: socket.socket) -> bytes:
    """One whole response with a content-length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(
        next(line.split(b":")[1] for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:"))
    )
    while len(body) < length:
        body += sock.recv(65536)
    return data


def _send_head(sock: socket.socket, first: bytes, lines: Iterator[bytes]) -> bool:
    """Send a head until the server stops taking it; True if all of it went."""
    try:
        sock.sendall(first)
        for line in lines:
            sock.sendall(line)
    except (TimeoutError, ConnectionResetError, BrokenPipeError, ssl.SSLError):
        return False
    return True


HEAD_BYTES = 16 * 1024 * 1024
HEAD_SHAPES = {
    # many header lines, then a valid request end: the server used to answer 200
    "lines": lambda: (b"X-Padding-%d: %s\r\n" % (i, b"a" * 1000) for i in range(HEAD_BYTES // 1000)),
    # one header line that never ends (httptools joins its pieces until it does)
    "one-line": lambda: (b"X-Padding: " if i == 0 else b"a" * 65536 for i in range(HEAD_BYTES // 65536)),
}


@pytest.mark.parametrize("shape", sorted(HEAD_SHAPES))
def test_a_head_over_the_limit_gets_431_and_is_not_kept(endpoint: Endpoint, shape: str) -> None:
    before = endpoint.rss()
    started = time.monotonic()
    with endpoint.connect() as sock:
        sent_all = _send_head(sock, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n", HEAD_SHAPES[shape]())
        if sent_all:
            try:
                sock.sendall(b"\r\n")
            except OSError:
                pass
        received, closed_after = _until_closed(sock)
    elapsed = time.monotonic() - started
    grown = endpoint.rss() - before
    assert closed_after is not None, received[:200]
    # The server may close before the client reads its answer: 431, or nothing, never a 200.
    assert received == b"" or received.startswith(b"HTTP/1.1 431 "), received[:200]
    assert elapsed < WAIT_SECONDS
    assert grown < 8 * 1024 * 1024, f"the server grew by {grown / 2**20:.1f} MB"
    assert endpoint.healthy()


def test_a_long_request_line_gets_431(endpoint: Endpoint) -> None:
    with endpoint.connect() as sock:
        _send_head(sock, b"GET /health?" + b"a" * (4 * MAX_HEAD_BYTES), iter([b" HTTP/1.1\r\n\r\n"]))
        received, closed_after = _until_closed(sock)
    assert closed_after is not None and (received == b"" or received.startswith(b"HTTP/1.1 431 ")), received[:200]
    assert endpoint.healthy()


def test_a_head_within_the_limit_is_served(endpoint: Endpoint) -> None:
    with endpoint.connect() as sock:
        sock.sendall(
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: "
            + b"a" * (MAX_HEAD_BYTES // 2)
            + b"\r\nConnection: close\r\n\r\n"
        )
        received, closed_after = _until_closed(sock)
    assert received.startswith(b"HTTP/1.1 200 "), received[:200]


@pytest.mark.parametrize("start", [b"GET /health HTTP/1.1\r\n", b"GET /heal"], ids=["header-trickle", "request-line"])
def test_a_head_not_complete_in_time_gets_408(endpoint: Endpoint, start: bytes) -> None:
    """A header line every 0.3 s (or nothing after half a request line) used to hold the
    connection for good; now the head has HEAD_TIMEOUT_SECONDS from its first byte."""
    with endpoint.connect() as sock:
        started = time.monotonic()
        sock.sendall(start)
        if start.endswith(b"\r\n"):
            _trickle(sock, b"X-Slow-%d: a\r\n", 0.3)
        received, closed_after = _until_closed(sock, WAIT_SECONDS - (time.monotonic() - started))
        elapsed = time.monotonic() - started
    assert closed_after is not None, "the connection is still open"
    assert elapsed < HEAD_TIMEOUT_SECONDS + MARGIN_SECONDS
    assert received == b"" or received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert endpoint.healthy()


@pytest.mark.parametrize("how", ["new", "after-a-response", "empty-lines"])
def test_an_idle_connection_is_closed(endpoint: Endpoint, how: str) -> None:
    """A connection with no request under way: just opened, kept alive after a response, or fed
    empty lines (which start no request) every 0.5 s."""
    with endpoint.connect() as sock:
        started = time.monotonic()
        if how == "after-a-response":
            sock.sendall(HEALTH)
            assert _response(sock).startswith(b"HTTP/1.1 200 ")
            started = time.monotonic()
        if how == "empty-lines":
            _trickle(sock, b"\r\n", 0.5)
        received, closed_after = _until_closed(sock, WAIT_SECONDS - (time.monotonic() - started))
        elapsed = time.monotonic() - started
    assert closed_after is not None and received == b"", received[:200]
    assert IDLE_TIMEOUT_SECONDS - 0.5 < elapsed < IDLE_TIMEOUT_SECONDS + MARGIN_SECONDS


def test_a_tls_handshake_that_never_comes_is_cut(endpoint: Endpoint) -> None:
    """Over TLS the handshake comes first: a client that never starts it is cut after the head
    timeout (uvloop's default was 60 s). Over HTTP this is an idle connection."""
    with endpoint.connect(handshake=False) as sock:
        started = time.monotonic()
        received, closed_after = _until_closed(sock)
        elapsed = time.monotonic() - started
    assert closed_after is not None and received == b""
    assert elapsed < (HEAD_TIMEOUT_SECONDS if endpoint.tls else IDLE_TIMEOUT_SECONDS) + MARGIN_SECONDS


def test_one_client_cannot_open_more_than_the_limit(endpoint: Endpoint) -> None:
    time.sleep(0.3)  # the server sees the other tests' connections closed
    held = [endpoint.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)  # each is counted when the server accepts it (after the TLS handshake)
        with endpoint.connect() as extra:
            received, closed_after = _until_closed(extra, MARGIN_SECONDS)
        assert closed_after is not None and received.startswith(b"HTTP/1.1 503 "), received[:200]
        for sock in held:  # the others still work
            sock.sendall(HEALTH)
            assert _response(sock).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert endpoint.healthy()
