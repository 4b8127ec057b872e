"""ITI-41 submissions per second and ITI-43 MB/s, on SQLite and PostgreSQL, next to a floor.

For each backend the script starts a real server (a separate process on 127.0.0.1) and drives it
with 4 concurrent clients over HTTP keep-alive connections:
- ITI-41: MTOM Provide and Register of one 20 kB CDA document per submission;
- ITI-43: retrieval of 4 MB documents.
The floor is measured in the same run, on the same machine and database: the least work any
conforming server must do for that ITI-41 message — parse it with lxml, SHA-1 the document,
write and fsync it, one INSERT and a commit — done by 4 threads in this process.

Usage: python benchmarks/iti41_iti43.py [--submissions N] [--backends sqlite,postgresql]
Every loop is bounded by its count; the server only listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]

from lxml import etree  # noqa: E402
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert  # noqa: E402

import soap_messages as soap  # noqa: E402
from factories import PATIENT_ID, make_submission  # noqa: E402
from pgserver import PostgresServer  # noqa: E402

CLIENTS = 4
ROUNDS = 5  # --rounds
CDA_SIZE = 20 * 1024
RETRIEVE_SIZE = 4 * 1024 * 1024


def synthetic_cda(index: int) -> bytes:
    """A 20 kB CDA R2 document (header and padded narrative body)."""
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3">'
        f'<id root="1.2.250.1.999.9" extension="{index}"/><code code="11488-4" codeSystem="2.16.840.1.113883.6.1"/>'
        "<title>Compte rendu de consultation</title><component><nonXMLBody><text>"
    ).encode()
    tail = b"</text></nonXMLBody></component></ClinicalDocument>\n"
    filler = (b"Examen clinique sans particularite. " * 1000)[: CDA_SIZE - len(head) - len(tail)]
    return head + filler + tail


def build_iti41_requests(count: int) -> list[tuple[soap.HttpRequest, bytes, str]]:
    out = []
    for index in range(count):
        submission = make_submission(1)
        de = submission.documents[0]
        de.hash = de.size = de.repository_unique_id = None
        de.mime_type = "text/xml"
        document = synthetic_cda(index)
        out.append((soap.provide_and_register(submission, {de.entry_uuid: document}), document, de.unique_id))
    return out


class KeepAliveClient:
    """A minimal HTTP/1.1 keep-alive client on a raw socket.

    The load generator shares the 2 cores with the server and the database: http.client cost
    about 0.4 ms of CPU per request here, a tenth of a submission's total; this one sends
    bytes built once and reads the answer by its Content-Length, so that the figures measure
    the server rather than its client (as a separate load machine would).
    """

    def __init__(self, host: str, port: int, path: str, timeout: float = 120) -> None:
        self.host, self.path = host, path
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()

    def post(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        self.sock.sendall(head + body)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._receive()
        header_block = bytes(self.buffer[:end]).decode("latin-1")
        del self.buffer[: end + 4]
        status = int(header_block.split(" ", 2)[1])
        length = next(
            (
                int(line.split(":", 1)[1])
                for line in header_block.split("\r\n")[1:]
                if line.lower().startswith("content-length:")
            ),
            None,
        )
        if length is None:
            raise RuntimeError(f"the server answered without a Content-Length: {header_block!r}")
        # The body straight into a buffer of its size (ITI-43 answers are megabytes).
        body = bytearray(length)
        view = memoryview(body)
        filled = min(length, len(self.buffer))
        view[:filled] = self.buffer[:filled]
        del self.buffer[:filled]
        while filled < length:
            received = self.sock.recv_into(view[filled:])
            if not received:
                raise RuntimeError("the server closed the connection")
            filled += received
        return status, bytes(body)

    def _receive(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def run_clients(
    url: str, bodies: list[tuple[bytes, str]], check: Callable[[int, bytes], None]
) -> tuple[float, list[float], int]:
    """Send every body once, CLIENTS connections in parallel; return (seconds, latencies, bytes received)."""
    parsed = urlparse(url)
    latencies: list[float] = []
    received = [0]
    lock = threading.Lock()
    errors: list[BaseException] = []
    slices = [bodies[i::CLIENTS] for i in range(CLIENTS)]

    def client(mine: list[tuple[bytes, str]]) -> None:
        conn = KeepAliveClient(parsed.hostname or "127.0.0.1", parsed.port or 80, parsed.path)
        try:
            for body, content_type in mine:
                start = time.perf_counter()
                status, data = conn.post(body, content_type)
                elapsed = time.perf_counter() - start
                check(status, data)
                with lock:
                    latencies.append(elapsed)
                    received[0] += len(data)
        except BaseException as exc:  # surfaced after join
            errors.append(exc)
        finally:
            conn.close()

    elapsed = run_in_threads(client, slices)
    if errors:
        raise errors[0]
    return elapsed, latencies, received[0]


def run_in_threads(work: Callable[[Any], None], slices: list[Any]) -> float:
    """Run `work` on each slice in its own thread; the wall time they took together."""
    threads = [threading.Thread(target=work, args=(s,)) for s in slices]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return time.perf_counter() - start


def expect_success(status: int, body: bytes) -> None:
    if status != 200 or b"ResponseStatusType:Success" not in body:
        raise RuntimeError(f"request failed ({status}): {body[:400]!r}")


def floor_rate(database_url: str, requests_: list[tuple[soap.HttpRequest, bytes, str]], work_dir: Path) -> float:
    """The least work per ITI-41 message, 4 threads: parse, SHA-1, write+fsync, INSERT+commit."""
    engine = create_engine(database_url, pool_size=CLIENTS)
    if engine.dialect.name == "sqlite":
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # same durability settings as the product's store
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    metadata = MetaData()
    table = Table(
        f"floor_{uuid.uuid4().hex[:8]}",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("unique_id", String(128)),
        Column("hash", String(40)),
        Column("size", Integer),
    )
    metadata.create_all(engine)
    # The root part (the envelope) and the document, as the server would have them after MIME.
    items = []
    for request, document, unique_id in requests_:
        envelope = request.body.split(b"\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0]
        items.append((envelope, document, unique_id))
    slices = [items[i::CLIENTS] for i in range(CLIENTS)]

    def worker(mine: list[tuple[bytes, bytes, str]]) -> None:
        with engine.connect() as conn:
            for envelope, document, unique_id in mine:
                etree.fromstring(envelope)
                digest = hashlib.sha1(document).hexdigest()
                path = work_dir / f"{uuid.uuid4().hex}.bin"
                with open(path, "wb") as handle:
                    handle.write(document)
                    handle.flush()
                    os.fsync(handle.fileno())
                conn.execute(insert(table).values(unique_id=unique_id, hash=digest, size=len(document)))
                conn.commit()

    elapsed = run_in_threads(worker, slices)
    metadata.drop_all(engine)
    engine.dispose()
    return len(items) / elapsed


def tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of a process and its descendants, from /proc (Linux)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid, seconds in times.items():
        ancestor = pid
        for _ in range(16):  # bounded walk up the tree
            if ancestor == root_pid:
                total += seconds
                break
            ancestor = parents.get(ancestor, 0)
            if ancestor <= 1:
                break
    return total


def cpu_now(server_pid: int, postgres: PostgresServer | None) -> dict[str, float]:
    """CPU seconds so far of the server, the database server and this client process."""
    usage = os.times()
    return {
        "server": tree_cpu_seconds(server_pid),
        "database": tree_cpu_seconds(postgres.postmaster_pid()) if postgres is not None else 0.0,
        "client": usage.user + usage.system,
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_backend(backend: str, submissions: int, postgres: PostgresServer | None, workers: int) -> dict[str, float]:
    from xds_server import database_url_for, start_server, stop_server

    work = Path(tempfile.mkdtemp(prefix=f"bench-{backend}-"))
    database_url = database_url_for(backend, postgres)
    (work / "server").mkdir()
    server = start_server(work / "server", database_url, {"DMP_XDS_PROFILE": "ihe", "DMP_XDS_WORKERS": str(workers)})
    try:
        server.add_patient(PATIENT_ID)
        warmup = build_iti41_requests(20)
        run_clients(server.repository_url, [(r.body, r.content_type) for r, _, _ in warmup], expect_success)
        # Server and floor are measured in turn, ROUNDS times, and the medians compared: on a
        # shared 2-core machine one run of either can be off by 15 %.
        floor_db = database_url or f"sqlite:///{work / 'floor.db'}"
        floor_dir = work / "floor-files"
        floor_dir.mkdir()
        rates: list[float] = []
        floors: list[float] = []
        latencies: list[float] = []
        cpu = {"server": 0.0, "database": 0.0, "client": 0.0}
        for _ in range(ROUNDS):
            requests_ = build_iti41_requests(submissions)
            before = cpu_now(server.process.pid, postgres if backend == "postgresql" else None)
            seconds, round_latencies, _ = run_clients(
                server.repository_url, [(r.body, r.content_type) for r, _, _ in requests_], expect_success
            )
            after = cpu_now(server.process.pid, postgres if backend == "postgresql" else None)
            for key in cpu:
                cpu[key] += after[key] - before[key]
            rates.append(submissions / seconds)
            latencies += round_latencies
            floors.append(floor_rate(floor_db, build_iti41_requests(submissions), floor_dir))
        iti41_rate = statistics.median(rates)
        floor = statistics.median(floors)

        big = []
        for _ in range(CLIENTS):
            submission = make_submission(1)
            de = submission.documents[0]
            de.hash = de.size = de.repository_unique_id = None
            big.append(
                (soap.provide_and_register(submission, {de.entry_uuid: os.urandom(RETRIEVE_SIZE)}), de.unique_id)
            )
        run_clients(server.repository_url, [(r.body, r.content_type) for r, _ in big], expect_success)
        retrievals = [soap.retrieve([(server.repository_unique_id, uid)]) for _, uid in big] * 10
        seconds43, _, received = run_clients(
            server.repository_url, [(r.body, r.content_type) for r in retrievals], expect_success
        )
        iti43_mb_s = received / seconds43 / 2**20
    finally:
        stop_server(server)
    return {
        "iti41_per_s": iti41_rate,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "floor_per_s": floor,
        "iti43_mb_s": iti43_mb_s,
        **{f"cpu_{key}_ms": 1000 * seconds_ / (ROUNDS * submissions) for key, seconds_ in cpu.items()},
    }


def main() -> None:
    global ROUNDS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help="server rounds, each beside a floor round; the medians are compared"
    )
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2, one per core)")
    parser.add_argument(
        "--pg-test-settings",
        action="store_true",
        help="run PostgreSQL as the test suite does (fsync and synchronous_commit off) "
        "instead of with production durability",
    )
    args = parser.parse_args()
    ROUNDS = max(1, args.rounds)
    backends = args.backends.split(",")
    results: dict[str, dict[str, float]] = {}
    postgres = None
    try:
        if "postgresql" in backends:
            postgres = PostgresServer.start(durable=not args.pg_test_settings)
        for backend in backends:
            results[backend] = bench_backend(backend, args.submissions, postgres, args.workers)
    finally:
        if postgres is not None:
            postgres.stop()
    print(
        f"\nITI-41 ({args.submissions} submissions of one {CDA_SIZE // 1024} kB CDA, {CLIENTS} clients, "
        f"median of {ROUNDS} rounds, each next to a floor round) "
        f"and ITI-43 ({RETRIEVE_SIZE // 2**20} MB documents, {CLIENTS} clients), {os.cpu_count()} cores, "
        f"{args.workers} server process(es); PostgreSQL "
        f"{'with the test suite settings (fsync off)' if args.pg_test_settings else 'durable (fsync on)'}; "
        f"SQLite synchronous=FULL"
    )
    print(f"{'backend':<12}{'ITI-41/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'floor/s':>10}{'% floor':>9}{'ITI-43 MB/s':>13}")
    for backend, r in results.items():
        print(
            f"{backend:<12}{r['iti41_per_s']:>10.1f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
            f"{r['floor_per_s']:>10.1f}{100 * r['iti41_per_s'] / r['floor_per_s']:>8.1f}%{r['iti43_mb_s']:>13.1f}"
        )
    print("\nCPU per ITI-41 submission (ms; all processes share the same cores):")
    print(f"{'backend':<12}{'server':>9}{'database':>10}{'client':>9}")
    for backend, r in results.items():
        print(f"{backend:<12}{r['cpu_server_ms']:>9.2f}{r['cpu_database_ms']:>10.2f}{r['cpu_client_ms']:>9.2f}")


if __name__ == "__main__":
    main()
