"""The ATNA export over syslog TLS (RFC 5425): a secured server sends each trace entry to a TLS
syslog collector of the test on 127.0.0.1, with the generated PKI on both sides (the collector's
server certificate checked against the configured CA, the server's client certificate checked by
the collector), octet-counting framing; the audit message names every document the request
touched (one ParticipantObjectIdentification each). The trace's checkpoints go the same way, and a
trace cut short afterwards, its head moved back, is caught by `dmp-xds audit verify` against the
checkpoints the collector received."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import delete, update

import soap_messages as soap
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.storage.audit_checkpoints import parse_checkpoints
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.tables import AuditEntryRow, AuditHeadRow
from dmp_xds.storage.trail import AuditEntry, AuditEvent
from dmp_xds.transport.atna import CHECKPOINT_MSG_ID, MSG_ID, SyslogExporter, tls_context
from dmp_xds.xds import vocabulary as v
from factories import make_document_entry, make_submission, make_submission_set
from loopback_server import serving
from secure_server import PATIENT, SecureServer, start_secure_server, stop_secure_server, vihf

WAIT_SECONDS = 15.0


@dataclass
class TlsCollector:
    """An RFC 5425 receiver: TLS with a required client certificate, octet-counted frames."""

    context: ssl.SSLContext
    port: int = 0
    frames: list[bytes] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)  # the client certificates' subjects
    errors: list[str] = field(default_factory=list)

    def handle(self, raw: socket.socket) -> None:
        try:
            with self.context.wrap_socket(raw, server_side=True) as connection:
                subject = dict(x[0] for x in connection.getpeercert()["subject"])  # type: ignore[index]
                self.peers.append(subject.get("organizationName", ""))
                self._read(connection)
        except OSError as exc:  # ssl.SSLError included: a refused handshake is what some tests want
            self.errors.append(str(exc))

    def _read(self, connection: ssl.SSLSocket) -> None:
        buffer = b""
        for _ in range(10_000):  # bounded; each round reads what the server sent
            while b" " not in buffer:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            length, rest = buffer.split(b" ", 1)
            while len(rest) < int(length):
                chunk = connection.recv(65536)
                if not chunk:
                    return
                rest += chunk
            self.frames.append(rest[: int(length)])
            buffer = rest[int(length) :]

    def _of(self, msg_id: str) -> list[bytes]:
        """The messages' texts (after the BOM) of this MSGID (the header's sixth field)."""
        return [
            frame.split(b"\xef\xbb\xbf", 1)[1]
            for frame in list(self.frames)
            if frame.split(b" ", 6)[5] == msg_id.encode()
        ]

    def messages(self) -> list[etree._Element]:
        return [etree.fromstring(text) for text in self._of(MSG_ID)]

    def checkpoint_lines(self) -> list[str]:
        return [text.decode("ascii") for text in self._of(CHECKPOINT_MSG_ID)]


@contextmanager
def tls_collector(pki: GeneratedPki) -> Iterator[TlsCollector]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.anchors))
    context.load_verify_locations(str(pki.intermediates))
    context.load_cert_chain(str(pki.server_certificate), str(pki.server_key))
    context.verify_mode = ssl.CERT_REQUIRED
    running = TlsCollector(context)
    with serving(running.handle) as port:
        running.port = port
        yield running


def atna_settings(pki: GeneratedPki, collector: TlsCollector) -> dict[str, str]:
    hospital = pki.identity("hospital")
    return {
        "DMP_XDS_AUDIT_SYSLOG": f"tls://localhost:{collector.port}",
        "DMP_XDS_AUDIT_SYSLOG_CA": str(pki.anchors),
        "DMP_XDS_AUDIT_SYSLOG_CERTIFICATE": hospital.certificate,
        "DMP_XDS_AUDIT_SYSLOG_KEY": hospital.key,
    }


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def collector(pki: GeneratedPki) -> Iterator[TlsCollector]:
    with tls_collector(pki) as running:
        yield running


@pytest.fixture(scope="module")
def server(
    pki: GeneratedPki, collector: TlsCollector, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureServer]:
    running = start_secure_server(
        tmp_path_factory.mktemp("secure-atna"), pki, tls=True, extra=atna_settings(pki, collector)
    )
    running.cli("dmp", "create", PATIENT, "--collected-by", "accueil")
    running.cli("dmp", "grant", PATIENT, pki.identity("doctor").national_id)
    yield running
    stop_secure_server(running)


def wait_for(collector: TlsCollector, predicate: Callable[[etree._Element], bool]) -> list[etree._Element]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        messages = collector.messages()
        if any(predicate(m) for m in messages):
            return messages
        time.sleep(0.05)
    raise AssertionError(f"no such audit message; collector errors: {collector.errors}")


def document_ids(message: etree._Element) -> list[str]:
    return [
        o.get("ParticipantObjectID", "")
        for o in message.iterfind("ParticipantObjectIdentification")
        if o.get("ParticipantObjectTypeCode") == "2"
    ]


def test_submission_is_exported_over_tls_with_its_documents(
    server: SecureServer, pki: GeneratedPki, collector: TlsCollector
) -> None:
    submission = make_submission(
        2,
        submission_set=make_submission_set(patient_id=PATIENT),
        documents=[make_document_entry(patient_id=PATIENT) for _ in range(2)],
    )
    for entry in submission.documents:
        entry.hash = entry.size = entry.repository_unique_id = None
    request = soap.provide_and_register(
        submission, {de.entry_uuid: b"compte rendu " + de.unique_id.encode() for de in submission.documents}, mtom=False
    )
    response = server.call("repository", request, vihf(pki, "doctor"))
    assert response.status == "Success", response.error_codes
    unique_ids = sorted(de.unique_id or "" for de in submission.documents)
    # The trace row names them...
    trace = server.last_trace()
    assert (trace.event.action, sorted(trace.event.documents)) == ("submit", unique_ids)
    assert "intact" in server.cli("audit", "verify")
    # ...and so does its audit message, received over TLS from the server's client certificate.
    messages = wait_for(collector, lambda m: sorted(document_ids(m)) == unique_ids)
    submitted = next(m for m in messages if sorted(document_ids(m)) == unique_ids)
    assert submitted.find("EventIdentification/EventID").get("code") == "110107"
    assert submitted.find("ActiveParticipant").get("UserID") == pki.identity("doctor").national_id
    assert collector.peers and set(collector.peers) == {pki.identity("hospital").organization}


def test_a_collector_with_an_untrusted_certificate_gets_nothing(
    pki: GeneratedPki, collector: TlsCollector, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = create_test_pki(tmp_path_factory.mktemp("other-pki"))
    exporter = SyslogExporter(f"tls://localhost:{collector.port}", context=tls_context(str(other.anchors)))
    before = len(collector.frames)
    entry = AuditEntry(1, "2026-01-02T03:04:05.000000Z", AuditEvent("search", "success", PATIENT), "0" * 64, "1" * 64)
    exporter(entry)
    exporter.close()
    assert len(collector.frames) == before  # the handshake failed on our side: nothing was sent
    with pytest.raises(ValueError, match="tls://host:port"):
        SyslogExporter("tcps://localhost:6514")


def test_a_cut_trace_is_caught_against_the_checkpoints_the_collector_received(
    pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Only the collector keeps checkpoints here (no checkpoint file): the operator's commands and
    the server each checkpoint the first row they write and, when they stop, their last one."""
    with tls_collector(pki) as own_collector:
        data_dir = tmp_path_factory.mktemp("secure-atna-cut")
        server = start_secure_server(
            data_dir, pki, tls=True, extra={**atna_settings(pki, own_collector), "DMP_XDS_AUDIT_CHECKPOINT_FILE": "off"}
        )
        try:
            server.cli("dmp", "create", PATIENT, "--collected-by", "accueil")
            server.cli("dmp", "grant", PATIENT, pki.identity("doctor").national_id)
            query = soap.adhoc_query(
                v.SQ_FIND_DOCUMENTS,
                {
                    "$XDSDocumentEntryPatientId": [f"'{PATIENT}'"],
                    "$XDSDocumentEntryStatus": [f"('{v.STATUS_APPROVED}')"],
                },
            )
            for _ in range(3):
                assert server.call("registry", query, vihf(pki, "doctor")).status_code == 200
        finally:
            stop_secure_server(server)  # its last row checkpointed on the way out
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and len(own_collector.checkpoint_lines()) < 4:
            time.sleep(0.05)
        lines = own_collector.checkpoint_lines()
    assert sorted(c.seq for c in parse_checkpoints(lines, "collector")) == [1, 2, 3, 5], lines
    exported = data_dir / "collector.log"
    exported.write_text("".join(line + "\n" for line in lines))
    assert "intact" in run_verify(server, exported).stdout

    engine = create_engine_for(server.engine_url())
    try:
        with engine.begin() as connection:  # the attacker: the last two rows gone, the head moved back
            entries, head = AuditEntryRow.__table__, AuditHeadRow.__table__
            connection.execute(delete(entries).where(entries.c.seq > 3))
            connection.execute(update(head).where(head.c.patient_id == PATIENT).values(chain_seq=3))
    finally:
        engine.dispose()
    result = run_verify(server, exported)
    assert result.returncode == 1
    assert "links 4..5 missing since checkpoint" in result.stderr and f"({exported}:4)" in result.stderr
    assert "head moved back" in result.stderr


def run_verify(server: SecureServer, checkpoints: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dmp_xds.cli", "audit", "verify", "--checkpoints", str(checkpoints)],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
