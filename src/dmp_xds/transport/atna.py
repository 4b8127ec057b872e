"""Trace entries as IHE ATNA audit messages (RFC 3881 schema), sent to a syslog collector.

Messages are framed as RFC 5424 syslog records, over UDP (RFC 5426), TCP with octet counting
(RFC 6587), or TLS with octet counting (RFC 5425, as the IHE ATNA profile asks: the collector's
certificate checked against the configured CA, this server's client certificate when the
collector wants one). Sending happens on one background thread with a bounded queue, so that a slow or
absent collector never slows a request; when the queue is full, messages are dropped and logged
(the trace in the database remains the record of reference).

The trace's checkpoints (checkpoints.py) go the same way, each a syslog message of its own
(MSGID `DMPXDS-CHECKPOINT`, the checkpoint line as its text), so that the collector keeps, off
this machine, what `dmp-xds audit verify --checkpoints` checks a cut-off trace against.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
from urllib.parse import urlsplit

from lxml import etree

from dmp_xds.storage import trail as t
from dmp_xds.storage.audit_checkpoints import Checkpoint
from dmp_xds.storage.trail import AuditEntry
from dmp_xds.transport.background import BackgroundQueue

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 2.0
QUEUE_SIZE = 10_000
SYSLOG_PRIORITY = 10 * 8 + 5  # facility authpriv (10), severity notice (5), as ATNA asks
APP_NAME = "dmp-xds"
MSG_ID = "IHE+RFC-3881"
CHECKPOINT_MSG_ID = "DMPXDS-CHECKPOINT"

# DICOM / IHE event ids and action codes (RFC 3881: C create, R read, U update, D delete, E execute).
_EVENTS: dict[str, tuple[str, str, str]] = {
    t.SEARCH: ("110112", "Query", "E"),
    t.RETRIEVE: ("110106", "Export", "R"),
    t.SUBMIT: ("110107", "Import", "C"),
    t.UPDATE: ("110110", "Patient Record", "U"),
    t.DELETE: ("110110", "Patient Record", "D"),
    t.AUTHENTICATE: ("110114", "User Authentication", "E"),
    t.DMP_CREATE: ("110110", "Patient Record", "C"),
    t.DMP_UPDATE: ("110110", "Patient Record", "U"),
    t.DMP_CLOSE: ("110110", "Patient Record", "U"),
    t.DMP_REOPEN: ("110110", "Patient Record", "U"),
    t.DMP_DESTROY: ("110110", "Patient Record", "D"),
    t.DMP_READ: ("110110", "Patient Record", "R"),
    t.AUTHORIZATION_GRANT: ("110136", "Security Roles Changed", "U"),
    t.AUTHORIZATION_RENEW: ("110136", "Security Roles Changed", "U"),
    t.AUTHORIZATION_REVOKE: ("110136", "Security Roles Changed", "U"),
    t.HISTORY_READ: ("110110", "Patient Record", "R"),
    t.NOTIFICATIONS_READ: ("110110", "Patient Record", "R"),
    t.NOTIFICATIONS_ACKNOWLEDGE: ("110110", "Patient Record", "U"),
    t.REPRESENTATIVE_ADD: ("110136", "Security Roles Changed", "U"),
    t.REPRESENTATIVE_REMOVE: ("110136", "Security Roles Changed", "U"),
    t.REPRESENTATIVES_READ: ("110110", "Patient Record", "R"),
}
_OUTCOMES = {t.SUCCESS: "0", t.DENIED: "4", t.FAILURE: "8"}


def audit_message(entry: AuditEntry, source_id: str) -> bytes:
    """The RFC 3881 AuditMessage of one trace entry."""
    event = entry.event
    code, name, action = _EVENTS.get(event.action, ("110100", "Application Activity", "E"))
    message = etree.Element("AuditMessage")
    identification = etree.SubElement(
        message,
        "EventIdentification",
        EventActionCode=action,
        EventDateTime=entry.recorded_at,
        EventOutcomeIndicator=_OUTCOMES.get(event.outcome, "8"),
    )
    etree.SubElement(identification, "EventID", code=code, codeSystemName="DCM", displayName=name)
    etree.SubElement(
        identification, "EventTypeCode", code=event.action, codeSystemName="dmp-xds", displayName=event.action
    )
    participant = etree.SubElement(
        message,
        "ActiveParticipant",
        UserID=event.actor_id or "anonymous",
        UserName=event.actor_name,
        UserIsRequestor="true",
    )
    if event.actor_role:
        etree.SubElement(participant, "RoleIDCode", code=event.actor_role, codeSystemName="1.2.250.1.71.1.2.7")
    etree.SubElement(message, "AuditSourceIdentification", AuditSourceID=source_id)
    if event.patient_id:
        patient = etree.SubElement(
            message,
            "ParticipantObjectIdentification",
            ParticipantObjectID=event.patient_id,
            ParticipantObjectTypeCode="1",
            ParticipantObjectTypeCodeRole="1",
        )
        etree.SubElement(
            patient, "ParticipantObjectIDTypeCode", code="2", codeSystemName="RFC-3881", displayName="Patient Number"
        )
    for document in event.documents:
        item = etree.SubElement(
            message,
            "ParticipantObjectIdentification",
            ParticipantObjectID=document,
            ParticipantObjectTypeCode="2",
            ParticipantObjectTypeCodeRole="3",
        )
        etree.SubElement(
            item, "ParticipantObjectIDTypeCode", code="9", codeSystemName="RFC-3881", displayName="Report Number"
        )
    if event.access_mode or event.structure_id or event.detail:
        details = etree.SubElement(
            message,
            "ParticipantObjectIdentification",
            ParticipantObjectID=str(entry.seq),
            ParticipantObjectTypeCode="4",
            ParticipantObjectTypeCodeRole="13",
        )
        etree.SubElement(
            details,
            "ParticipantObjectIDTypeCode",
            code="dmp-xds-trace",
            codeSystemName="dmp-xds",
            displayName="trace entry",
        )
        for key, value in (
            ("access_mode", event.access_mode),
            ("access_reason", event.access_reason),
            ("structure_id", event.structure_id),
            ("detail", event.detail),
        ):
            if value:
                etree.SubElement(details, "ParticipantObjectDetail", type=key, value=value)
    return etree.tostring(message, xml_declaration=True, encoding="UTF-8")


def syslog_record(payload: bytes, timestamp: str, hostname: str | None = None, msg_id: str = MSG_ID) -> bytes:
    """RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG (with a UTF-8 BOM)."""
    host = (hostname or socket.gethostname() or "-").split(".")[0]
    header = f"<{SYSLOG_PRIORITY}>1 {timestamp} {host} {APP_NAME} {os.getpid()} {msg_id} - "
    return header.encode("ascii", "replace") + b"\xef\xbb\xbf" + payload


def tls_context(ca_file: str, certificate: str = "", key: str = "") -> ssl.SSLContext:
    """The client side of RFC 5425: TLS 1.2 at least, the collector's certificate verified
    against `ca_file` (the system's CAs when empty) and its name against the URL's host."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if certificate:
        context.load_cert_chain(certificate, key or None)
    return context


class SyslogExporter:
    """Callable for AuditTrail: queues each entry's message for the collector at `url`
    (`udp://host:port`, `tcp://host:port` or `tls://host:port`)."""

    def __init__(self, url: str, source_id: str = APP_NAME, context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("udp", "tcp", "tls") or not parts.hostname or not parts.port:
            raise ValueError(
                f"audit syslog collector {url!r}: expected udp://host:port, tcp://host:port or tls://host:port"
            )
        self.scheme, self.address = parts.scheme, (parts.hostname, parts.port)
        self.context = context if context is not None or self.scheme != "tls" else tls_context("")
        self.source_id = source_id
        self._tcp: socket.socket | None = None  # the TCP or TLS connection, kept between messages
        self._sender = BackgroundQueue("atna-syslog", self._deliver, QUEUE_SIZE, on_stop=self._close_tcp)

    def __call__(self, entry: AuditEntry) -> None:
        record = syslog_record(audit_message(entry, self.source_id), entry.recorded_at)
        if not self._sender.offer(record):
            log.warning("ATNA queue full: audit message for trace entry %s not exported", entry.seq)

    def checkpoint(self, checkpoint: Checkpoint) -> None:
        """A checkpoint sink: the checkpoint's line as a syslog message of its own."""
        record = syslog_record(checkpoint.line().encode("ascii"), checkpoint.at, msg_id=CHECKPOINT_MSG_ID)
        if not self._sender.offer(record):
            log.warning("ATNA queue full: checkpoint of trace entry %s not exported", checkpoint.seq)

    def close(self, timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        self._sender.close(timeout)

    def _deliver(self, record: bytes) -> None:
        try:
            self._send(record)
        except OSError as exc:
            log.warning("ATNA export to %s://%s:%s failed: %s", self.scheme, *self.address, exc)
            self._close_tcp()  # the next message tries a new connection

    def _send(self, record: bytes) -> None:
        if self.scheme == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(SEND_TIMEOUT_SECONDS)
                sock.sendto(record, self.address)
            return
        if self._tcp is None:
            connection = socket.create_connection(self.address, timeout=SEND_TIMEOUT_SECONDS)
            if self.context is not None:
                try:
                    connection = self.context.wrap_socket(connection, server_hostname=self.address[0])
                except (OSError, ssl.SSLError):
                    connection.close()
                    raise
            self._tcp = connection
        self._tcp.sendall(f"{len(record)} ".encode() + record)  # octet counting (RFC 6587, RFC 5425)

    def _close_tcp(self) -> None:
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
