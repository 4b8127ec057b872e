"""The DMP's interface with security on: TD0.2 latency and TD2.1 signed submissions per second.

For each backend (SQLite, PostgreSQL) the script starts a real server (a separate process on
127.0.0.1) as `make serve` runs it: CI-SIS profile, HTTPS with client certificates of the test
PKI, a VIHF in every request (a fresh one each time: the replay check refuses a second use), the
ANS value sets, CDA schema and schematrons (`--no-schematrons` turns the schematrons off, as
DMP_XDS_SCHEMATRONS= does). Then, CLIENTS connections in parallel, each a keep-alive TLS
connection opened before the clock starts:
- TD0.2: the existence test of a DMP (HL7 V3 PRPA_IN201307UV02, reason TEST_EXST) at
  /si-dmp-server/v2/services/patients, by a doctor's card: p50/p95/p99 latency and requests/s;
- TD2.1: ITI-41 at /si-dmp-server/v2/services/repository as the DMP's example sends it (SOAP 1.1,
  MTOM), one ANS example CDA (ANEST-CR-ANEST, 444 kB) with a fresh id per submission, the
  submission set signed (XAdES) by the author's card and the signature verified by the server:
  submissions/s and p50/p99.
Every request (its VIHF, its signature) is built before the clock starts: signing is the
client's cost. The server's CPU per request is read from /proc around each timed loop.

Usage: python benchmarks/dmpi.py [--requests N] [--submissions M] [--rounds R] [--backends sqlite,postgresql]
                                 [--workers 2] [--no-schematrons | --side-by-side] [--pg-test-settings]
                                 [--ans KIT] [--profile DIR]
--side-by-side runs TD2.1 alone on two servers started together, with and without the
schematrons, their rounds alternating: the schematron layer's share, measured in the same minutes.
Every loop is bounded by its count; the server only listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import ssl
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src"), str(ROOT / "benchmarks")]

from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: E402
from iti41_iti43 import KeepAliveClient, percentile, run_in_threads, tree_cpu_seconds  # noqa: E402
from lxml import etree  # noqa: E402

import hl7v3_messages as msg  # noqa: E402
import secure_server  # noqa: E402
import soap_messages as soap  # noqa: E402
from dmp_xds.dmp.hl7v3 import vocabulary as hv  # noqa: E402
from dmp_xds.dmp.submission_signature import add_submission_signature  # noqa: E402
from dmp_xds.security.cps import load_pem_certificates  # noqa: E402
from dmp_xds.security.pki import GeneratedPki, create_test_pki, signed_vihf  # noqa: E402
from dmp_xds.security.vihf import security_header  # noqa: E402
from dmp_xds.tools.client.metadata import build_submission_from_cda  # noqa: E402
from dmp_xds.xds import vocabulary as v  # noqa: E402
from dmp_xds.xds.ebrim.encode import encode_submit_objects_request  # noqa: E402
from pgserver import PostgresServer  # noqa: E402
from secure_server import AUDIENCE, SecureServer, start_secure_server, stop_secure_server  # noqa: E402
from xds_server import database_url_for  # noqa: E402

ANS = ROOT / ".." / "shared" / "ans-testcontenucda"
CDA = ANS / "ExemplesCDA" / "ANEST-CR-ANEST_2022.01.xml"
PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO"  # the INS of that CDA
INS = PATIENT.split("^", 1)[0]
AUTHOR = "ans-author"  # its author, a card of the test PKI
DOCTOR = "doctor"  # the card that runs the existence test
DMPI = "/si-dmp-server/v2/services/"
LOCAL_PATIENT_ID = "0456789999^^^&1.2.250.1.999.1.1.7898.2&ISO^PI"
CLIENTS = 4
ROUNDS = 3
WARMUP_TD02 = 100
WARMUP_TD21 = 8  # the first CDA of a volet compiles it in each server process
TD02_TARGET_P99_MS = 10.0
TD21_TARGET_PER_S = 50.0
# The CDA's own id and setId: each submission gets fresh ones (a uniqueId is registered once).
CDA_ID = re.compile(rb'(<id root=")1\.2\.250\.1\.213\.1\.1\.1\.40\.2022\.1\.1("/>)')
CDA_SET_ID = re.compile(rb'(<setId root=")1\.2\.250\.1\.213\.1\.1\.1\.40\.2022\.1("/>)')


class TlsKeepAliveClient(KeepAliveClient):
    """KeepAliveClient over TLS with a client certificate: the handshake is made here, before
    any request is timed, as a DMP-compatible software keeps its connection open."""

    def __init__(self, host: str, port: int, path: str, context: ssl.SSLContext) -> None:
        super().__init__(host, port, path)
        self.sock = context.wrap_socket(self.sock, server_hostname=host)


def tls_context(pki: GeneratedPki, card: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(pki.anchors))
    identity = pki.identity(card)
    context.load_cert_chain(identity.certificate, identity.key)
    return context


@dataclass
class Loop:
    """One timed loop: its wall time, each request's latency, the server's CPU seconds."""

    seconds: float
    latencies: list[float]
    server_cpu: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


def run_loop(
    server: SecureServer,
    path: str,
    card: str,
    bodies: list[tuple[bytes, str]],
    check: Callable[[int, bytes], None],
    clients: int = CLIENTS,
) -> Loop:
    """Send every body once over `clients` TLS keep-alive connections opened beforehand."""
    context = tls_context(server.pki, card)
    port = int(server.url.rsplit(":", 1)[1])
    connections = [TlsKeepAliveClient("127.0.0.1", port, path, context) for _ in range(clients)]
    slices = [(connections[i], bodies[i::clients]) for i in range(clients)]
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(mine: tuple[TlsKeepAliveClient, list[tuple[bytes, str]]]) -> None:
        conn, own = mine
        try:
            for body, content_type in own:
                start = time.perf_counter()
                status, data = conn.post(body, content_type)
                elapsed = time.perf_counter() - start
                check(status, data)
                with lock:
                    latencies.append(elapsed)
        except BaseException as exc:  # surfaced after join
            errors.append(exc)

    before = tree_cpu_seconds(server.process.pid)
    seconds = run_in_threads(client, slices)
    cpu = tree_cpu_seconds(server.process.pid) - before
    for conn in connections:
        conn.close()
    if errors:
        raise errors[0]
    return Loop(seconds, latencies, cpu)


# TD0.2 -------------------------------------------------------------------------------------------


def td02_body(pki: GeneratedPki) -> bytes:
    """An existence test as the DMP's example sends it: WS-Addressing with an empty To and
    un-prefixed mustUnderstand, a fresh VIHF of the doctor about the patient (^NH form)."""
    envelope = etree.fromstring(
        f"""<soap:Envelope xmlns:soap="{v.NS_SOAP12}"><soap:Header>
        <To xmlns="{v.NS_WSA}"/>
        <MessageID xmlns="{v.NS_WSA}">urn:uuid:{uuid.uuid4()}</MessageID>
        <ReplyTo xmlns="{v.NS_WSA}" mustUnderstand="true"><Address>{v.NS_WSA}/anonymous</Address></ReplyTo>
        <Action xmlns="{v.NS_WSA}" mustUnderstand="true">{hv.ACTION_GET_DEMOGRAPHICS}</Action>
        </soap:Header><soap:Body/></soap:Envelope>""".encode()
    )
    envelope[0].append(security_header(signed_vihf(pki, DOCTOR, PATIENT + "^NH", audience=AUDIENCE)))
    envelope[1].append(msg.element(msg.get_demographics(INS, hv.TEST_EXST)))
    return etree.tostring(envelope)


def expect_existing_record(status: int, body: bytes) -> None:
    """An AA acknowledgement whose query response code says the DMP exists."""
    if status != 200 or b'typeCode="AA"' not in body or b'queryResponseCode code="OK"' not in body:
        raise RuntimeError(f"TD0.2 failed ({status}): {body[:600]!r}")


def td02_requests(pki: GeneratedPki, count: int) -> list[tuple[bytes, str]]:
    return [(td02_body(pki), "application/soap+xml; charset=UTF-8") for _ in range(count)]


# TD2.1 -------------------------------------------------------------------------------------------


@dataclass
class Signer:
    key: object
    chain: list[object]


def card_signer(pki: GeneratedPki, card: str) -> Signer:
    identity = pki.identity(card)
    return Signer(
        load_pem_private_key(Path(identity.key).read_bytes(), None),
        load_pem_certificates(Path(identity.certificate).read_bytes()),
    )


def fresh_cda(template: bytes, index: int) -> bytes:
    """The CDA with its own id and setId: a new document each time."""
    stamp = f".{os.getpid()}.{int(time.time() * 1000)}.{index}".encode()
    cda, found = CDA_ID.subn(lambda m: m.group(1) + b"1.2.250.1.999.42.1" + stamp + m.group(2), template, count=1)
    cda, found_set = CDA_SET_ID.subn(lambda m: m.group(1) + b"1.2.250.1.999.42.2" + stamp + m.group(2), cda, count=1)
    if not (found and found_set):
        raise RuntimeError(f"{CDA.name}: its id or setId is not where expected")
    return cda


def soap11_envelope(payload: etree._Element, pki: GeneratedPki) -> bytes:
    """SOAP 1.1 with WS-Addressing as the DMP's TD2.1 example has it, the author's fresh VIHF."""
    env = etree.Element(f"{{{v.NS_SOAP11}}}Envelope", nsmap={"soap": v.NS_SOAP11})
    header = etree.SubElement(env, f"{{{v.NS_SOAP11}}}Header")
    etree.SubElement(header, f"{{{v.NS_WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    etree.SubElement(header, f"{{{v.NS_WSA}}}To")
    reply_to = etree.SubElement(header, f"{{{v.NS_WSA}}}ReplyTo", mustUnderstand="true")
    etree.SubElement(reply_to, f"{{{v.NS_WSA}}}Address").text = "http://www.w3.org/2005/08/addressing/anonymous"
    etree.SubElement(header, f"{{{v.NS_WSA}}}Action", mustUnderstand="true").text = v.ACTION_ITI41
    header.append(security_header(signed_vihf(pki, AUTHOR, PATIENT, audience=AUDIENCE)))
    etree.SubElement(env, f"{{{v.NS_SOAP11}}}Body").append(payload)
    return etree.tostring(env, encoding="UTF-8", xml_declaration=True)


def td21_request(pki: GeneratedPki, signer: Signer, cda: bytes) -> tuple[bytes, str]:
    """A signed TD2.1 of `cda`: metadata from its header, the XAdES signature of the submission
    set by the author's card, the CDA and the signature as MTOM parts."""
    submission = build_submission_from_cda(cda)
    entry = submission.documents[0]
    entry.hash = entry.size = None  # the DMP's clients send neither
    entry.source_patient_id = LOCAL_PATIENT_ID
    request = etree.Element(v.TAG_PNR_REQUEST, nsmap={"xdsb": v.NS_XDSB})
    request.append(encode_submit_objects_request(submission))
    add_submission_signature(request, {entry.entry_uuid: cda}, signer.key, signer.chain)  # type: ignore[arg-type]
    documents = list(request.iterfind(v.TAG_DOCUMENT))  # the signature, inline: it becomes a part
    for document in documents:
        request.remove(document)
    parts: dict[str, bytes] = {}
    for document_id, data in [(entry.entry_uuid, cda)] + [(d.get("id"), base64.b64decode(d.text)) for d in documents]:
        cid = f"part{len(parts) + 1}.{uuid.uuid4().hex}.xml"
        element = etree.SubElement(request, v.TAG_DOCUMENT, id=document_id)
        etree.SubElement(element, f"{{{v.NS_XOP}}}Include", href=f"cid:{cid}")
        parts[cid] = data
    return soap.dmp_mtom_body(soap11_envelope(request, pki), parts)


def td21_requests(
    pki: GeneratedPki, signer: Signer, template: bytes, count: int, first: int
) -> list[tuple[bytes, str]]:
    return [td21_request(pki, signer, fresh_cda(template, first + i)) for i in range(count)]


def expect_success(status: int, body: bytes) -> None:
    if status != 200 or b"ResponseStatusType:Success" not in body:
        raise RuntimeError(f"TD2.1 failed ({status}): {body[:800]!r}")


# Profiling (--profile) ---------------------------------------------------------------------------

# Imported by every Python process of the server when --profile is given: each call of the
# request's work (parse, dispatch, encode: what runs in the server's thread pool) under its own
# cProfile.Profile counting the thread's CPU time, merged into one pstats file per process every PROFILE_EVERY calls.
PROFILE_HOOK = """
import cProfile, os, pstats, threading, time
import dmp_xds.transport.serve as _serve

_lock = threading.Lock()
_merged = [None, 0]
_original = _serve.XdsApplication._process

def _profiled(self, *args, **kwargs):
    profile = cProfile.Profile(time.thread_time)  # CPU of this thread: waits on locks and I/O left out
    profile.enable()
    try:
        return _original(self, *args, **kwargs)
    finally:
        profile.disable()
        with _lock:
            if _merged[0] is None:
                _merged[0] = pstats.Stats(profile)
            else:
                _merged[0].add(profile)
            _merged[1] += 1
            if _merged[1] % 20 == 0:
                _merged[0].dump_stats(os.path.join(os.environ["DMPI_BENCH_PROFILE"], f"server-{os.getpid()}.pstats"))

_serve.XdsApplication._process = _profiled
"""


def profile_env(directory: Path) -> dict[str, str]:
    """The server's environment additions that load PROFILE_HOOK into its processes."""
    hook = directory / "hook"
    hook.mkdir(parents=True, exist_ok=True)
    (hook / "sitecustomize.py").write_text(PROFILE_HOOK)
    return {
        "DMPI_BENCH_PROFILE": str(directory),
        "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
    }


def print_profile(directory: Path, top: int = 40) -> None:
    import pstats

    files = sorted(directory.glob("server-*.pstats"))
    if not files:
        print(f"no profile written in {directory}")
        return
    stats = pstats.Stats(*[str(f) for f in files])
    print(f"\nServer profile ({len(files)} process(es), {directory}): by cumulative time")
    stats.sort_stats("cumulative").print_stats(top)
    print("by own time")
    stats.sort_stats("tottime").print_stats(top)


# The run -----------------------------------------------------------------------------------------


@dataclass
class Results:
    td02_one: list[Loop]  # one client: the latency one LPS sees
    td02: list[Loop]  # CLIENTS clients: the throughput
    td21: list[Loop]


def start(
    backend: str,
    pki: GeneratedPki,
    postgres: PostgresServer | None,
    workers: int,
    schematrons: bool,
    profile: Path | None = None,
) -> SecureServer:
    work = Path(tempfile.mkdtemp(prefix=f"bench-dmpi-{backend}-"))
    extra = {
        "DMP_XDS_PROFILE": "cisis",
        "DMP_XDS_VALUE_SETS": str(ANS / "jeuxDeValeurs"),
        "DMP_XDS_CDA_SCHEMA": str(ANS / "infrastructure" / "cda" / "CDA_extended.xsd"),
        "DMP_XDS_SCHEMATRONS": str(ANS / "schematrons") if schematrons else "",
        "DMP_XDS_WORKERS": str(workers),
        **(profile_env(profile / backend) if profile else {}),
    }
    # Compiling the schematrons takes about 8 s per server process at start-up.
    secure_server.STARTUP_SECONDS = 180.0
    server = start_secure_server(work, pki, tls=True, extra=extra, database_url=database_url_for(backend, postgres))
    server.cli("dmp", "create", PATIENT, "--collected-by", "the DMPi benchmark")
    for name in (AUTHOR, DOCTOR):
        server.cli("dmp", "grant", PATIENT, pki.identity(name).national_id)
    return server


def bench_backend(
    backend: str,
    pki: GeneratedPki,
    postgres: PostgresServer | None,
    args: argparse.Namespace,
) -> Results:
    server = start(backend, pki, postgres, args.workers, not args.no_schematrons, args.profile)
    signer = card_signer(pki, AUTHOR)
    template = CDA.read_bytes()
    results = Results([], [], [])
    try:
        patients, repository = DMPI + "patients", DMPI + "repository"
        run_loop(server, patients, DOCTOR, td02_requests(pki, WARMUP_TD02), expect_existing_record)
        run_loop(server, repository, AUTHOR, td21_requests(pki, signer, template, WARMUP_TD21, 0), expect_success)
        for round_ in range(args.rounds):
            one = run_loop(
                server, patients, DOCTOR, td02_requests(pki, args.requests // 2), expect_existing_record, clients=1
            )
            td02 = run_loop(server, patients, DOCTOR, td02_requests(pki, args.requests), expect_existing_record)
            first = WARMUP_TD21 + round_ * args.submissions
            bodies = td21_requests(pki, signer, template, args.submissions, first)
            td21 = run_loop(server, repository, AUTHOR, bodies, expect_success)
            results.td02_one.append(one)
            results.td02.append(td02)
            results.td21.append(td21)
            print(
                f"  {backend} round {round_ + 1}: TD0.2 one client p50 {ms(one.latencies, 0.5):.1f} "
                f"p99 {ms(one.latencies, 0.99):.1f} ms; {CLIENTS} clients {td02.rate:.0f}/s p50 {ms(td02.latencies, 0.5):.1f} "
                f"p99 {ms(td02.latencies, 0.99):.1f} ms; TD2.1 {td21.rate:.1f}/s p50 {ms(td21.latencies, 0.5):.1f} "
                f"p99 {ms(td21.latencies, 0.99):.1f} ms",
                flush=True,
            )
    finally:
        stop_secure_server(server)
    return results


def bench_side_by_side(
    backend: str, pki: GeneratedPki, postgres: PostgresServer | None, args: argparse.Namespace
) -> dict[bool, list[Loop]]:
    """TD2.1 on two servers started together, one with the ANS schematrons and one without,
    their rounds one after the other (the order alternating): the share of the schematron
    layer measured in the same minutes, as this machine's speed drifts by a third from one
    quarter of an hour to the next. By schematrons on (True) and off, the loops."""
    servers = {on: start(backend, pki, postgres, args.workers, on) for on in (True, False)}
    signer = card_signer(pki, AUTHOR)
    template = CDA.read_bytes()
    repository = DMPI + "repository"
    loops: dict[bool, list[Loop]] = {True: [], False: []}
    try:
        for server in servers.values():
            run_loop(server, repository, AUTHOR, td21_requests(pki, signer, template, WARMUP_TD21, 0), expect_success)
        for round_ in range(args.rounds):
            bodies = {
                on: td21_requests(pki, signer, template, args.submissions, WARMUP_TD21 + round_ * args.submissions)
                for on in servers
            }
            for on in (True, False) if round_ % 2 == 0 else (False, True):
                loops[on].append(run_loop(servers[on], repository, AUTHOR, bodies[on], expect_success))
            with_, without = loops[True][-1], loops[False][-1]
            print(
                f"  {backend} round {round_ + 1}: TD2.1 with the schematrons {with_.rate:.1f}/s "
                f"({1000 * with_.server_cpu / len(with_.latencies):.1f} ms CPU), without {without.rate:.1f}/s "
                f"({1000 * without.server_cpu / len(without.latencies):.1f} ms CPU)",
                flush=True,
            )
    finally:
        for server in servers.values():
            stop_secure_server(server)
    return loops


def report_side_by_side(results: dict[str, dict[bool, list[Loop]]], args: argparse.Namespace) -> None:
    print(
        f"\nTD2.1 signed submission of {CDA.name} ({CDA.stat().st_size // 1024} kB, {args.submissions} per round), "
        f"with and without the ANS schematrons, side by side: security on, {CLIENTS} keep-alive TLS clients, "
        f"{args.workers} server process(es) each, {os.cpu_count()} cores; median of {args.rounds} rounds (range); "
        f"target >= {TD21_TARGET_PER_S:.0f}/s:"
    )
    print(
        f"{'backend':<12}{'schematrons':>14}{'submissions/s':>22}{'p50 ms':>22}{'p99 ms':>22}{'server CPU ms/sub':>22}"
    )
    for backend, loops in results.items():
        for on in (True, False):
            print(
                f"{backend:<12}{'on' if on else 'off':>14}{spread([x.rate for x in loops[on]]):>22}"
                f"{spread([ms(x.latencies, 0.5) for x in loops[on]]):>22}"
                f"{spread([ms(x.latencies, 0.99) for x in loops[on]]):>22}"
                f"{spread([1000 * x.server_cpu / len(x.latencies) for x in loops[on]]):>22}"
            )
        layer = [
            1000 * (a.server_cpu / len(a.latencies) - b.server_cpu / len(b.latencies))
            for a, b in zip(loops[True], loops[False], strict=True)
        ]
        ratio = [b.rate / a.rate for a, b in zip(loops[True], loops[False], strict=True)]
        print(
            f"{backend:<12}the schematron layer: {spread(layer)} ms of server CPU per submission; "
            f"without it {spread(ratio, '.2f')} times the submissions/s"
        )


def ms(latencies: list[float], q: float) -> float:
    return 1000 * (statistics.median(latencies) if q == 0.5 else percentile(latencies, q))


def spread(values: list[float], fmt: str = ".1f") -> str:
    """The median and, when there are several rounds, the range."""
    median = format(statistics.median(values), fmt)
    return median if len(values) == 1 else f"{median} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def report(results: dict[str, Results], args: argparse.Namespace) -> None:
    schematrons = "off (--no-schematrons)" if args.no_schematrons else "on (as make serve)"
    print(
        f"\nDMPi with security on (TLS client certificates, a fresh VIHF per request, CI-SIS profile, "
        f"schematrons {schematrons}); {CLIENTS} keep-alive TLS clients, {args.workers} server process(es), "
        f"{os.cpu_count()} cores; median of {args.rounds} rounds (range); PostgreSQL "
        f"{'with the test suite settings (fsync off)' if args.pg_test_settings else 'durable (fsync on)'}; "
        f"SQLite synchronous=FULL"
    )
    print(
        f"\nTD0.2 existence test (one client: {args.requests // 2} requests per round; {CLIENTS} clients: "
        f"{args.requests}), target p99 <= {TD02_TARGET_P99_MS:.0f} ms:"
    )
    print(f"{'backend':<22}{'req/s':>16}{'p50 ms':>22}{'p95 ms':>22}{'p99 ms':>22}{'server CPU ms/req':>22}")
    for backend, r in results.items():
        for label, loops in ((f"{backend}, 1 client", r.td02_one), (f"{backend}, {CLIENTS} clients", r.td02)):
            print(
                f"{label:<22}{spread([x.rate for x in loops], '.0f'):>16}"
                f"{spread([ms(x.latencies, 0.5) for x in loops]):>22}"
                f"{spread([ms(x.latencies, 0.95) for x in loops]):>22}"
                f"{spread([ms(x.latencies, 0.99) for x in loops]):>22}"
                f"{spread([1000 * x.server_cpu / len(x.latencies) for x in loops], '.2f'):>22}"
            )
    print(
        f"\nTD2.1 signed submission of {CDA.name} ({CDA.stat().st_size // 1024} kB, {args.submissions} per round), "
        f"target >= {TD21_TARGET_PER_S:.0f}/s:"
    )
    print(f"{'backend':<12}{'submissions/s':>22}{'p50 ms':>22}{'p99 ms':>22}{'server CPU ms/sub':>22}")
    for backend, r in results.items():
        loops = r.td21
        print(
            f"{backend:<12}{spread([x.rate for x in loops]):>22}"
            f"{spread([ms(x.latencies, 0.5) for x in loops]):>22}"
            f"{spread([ms(x.latencies, 0.99) for x in loops]):>22}"
            f"{spread([1000 * x.server_cpu / len(x.latencies) for x in loops]):>22}"
        )


def main() -> None:
    global ANS, CDA
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="TD0.2 requests per round")
    parser.add_argument("--submissions", type=int, default=300, help="TD2.1 submissions per round")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2, one per core)")
    parser.add_argument("--ans", type=Path, default=ANS, help="the ANS TestContenuCDA kit (default ../shared/...)")
    parser.add_argument("--no-schematrons", action="store_true", help="run the server without the ANS schematrons")
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="TD2.1 only, on two servers, with and without the ANS schematrons, their rounds alternating",
    )
    parser.add_argument(
        "--pg-test-settings",
        action="store_true",
        help="run PostgreSQL as the test suite does (fsync and synchronous_commit off)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="profile the server's request work (cProfile in each server process) into this folder, and print it",
    )
    args = parser.parse_args()
    args.rounds = max(1, args.rounds)
    if args.side_by_side and (args.no_schematrons or args.profile):
        parser.error("--side-by-side starts a server with the schematrons and one without, unprofiled")
    ANS, CDA = args.ans, args.ans / "ExemplesCDA" / CDA.name
    if not CDA.exists():
        sys.exit(f"{CDA} is missing: the ANS TestContenuCDA kit must be in ../shared")
    backends = args.backends.split(",")
    results: dict[str, Results] = {}
    side_by_side: dict[str, dict[bool, list[Loop]]] = {}
    postgres = None
    with tempfile.TemporaryDirectory(prefix="bench-dmpi-pki-") as tmp:
        pki = create_test_pki(Path(tmp))
        try:
            if "postgresql" in backends:
                postgres = PostgresServer.start(durable=not args.pg_test_settings)
            for backend in backends:
                if args.side_by_side:
                    side_by_side[backend] = bench_side_by_side(backend, pki, postgres, args)
                else:
                    results[backend] = bench_backend(backend, pki, postgres, args)
        finally:
            if postgres is not None:
                postgres.stop()
    if args.side_by_side:
        report_side_by_side(side_by_side, args)
        return
    report(results, args)
    if args.profile:
        for backend in backends:
            print_profile(args.profile / backend)


if __name__ == "__main__":
    main()
