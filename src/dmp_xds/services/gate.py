"""The security gate of every SOAP request: client certificate, then VIHF, then a Principal.

`build_security(settings, engine)` is called once at start-up (None when DMP_XDS_AUTH=none);
`authenticate(...)` runs per request and raises a SOAP fault, with the WS-Security fault code
and a reason the caller can act on, when anything is wrong. Refusals are traced.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509
from lxml import etree
from sqlalchemy import Engine

from dmp_xds.storage import trail as t
from dmp_xds.storage.trail import AuditEvent, AuditTrail
from dmp_xds.config import ConfigError, Settings
from dmp_xds.services.notifications import Notifier, SmtpSender
from dmp_xds.storage.records import DmpStore
from dmp_xds.xds.ebrim.vocabulary import NS_WSSE
from dmp_xds.security.cps import CertificateError, TrustStore, load_pem_certificates
from dmp_xds.xds.model import DocumentEntry
from dmp_xds.dmp.policy import (
    Action,
    Decision,
    DocumentFacts,
    document_action,
    document_visible,
    record_access,
)
from dmp_xds.storage.replay import DatabaseReplayCache
from dmp_xds.security.vihf import Principal, VihfVerifier
from dmp_xds.transport.soap.faults import SoapFault, sender
from dmp_xds.services.context import DocumentAccess

log = logging.getLogger(__name__)

FAILED_AUTHENTICATION = (NS_WSSE, "FailedAuthentication")
INVALID_SECURITY_TOKEN = (NS_WSSE, "InvalidSecurityToken")
FAILED_CHECK = (NS_WSSE, "FailedCheck")
TOKEN_UNAVAILABLE = (NS_WSSE, "SecurityTokenUnavailable")


@dataclass
class SecurityServices:
    trust: TrustStore
    vihf: VihfVerifier
    records: DmpStore
    audit: AuditTrail
    notifier: Notifier
    client_cert_header: str = ""
    trusted_proxies: frozenset[str] = frozenset()


def build_security(settings: Settings, engine: Engine) -> SecurityServices | None:
    if settings.auth == "none":
        return None
    if not settings.trust_anchors:
        raise ConfigError("DMP_XDS_AUTH=vihf (the default) needs DMP_XDS_TRUST_ANCHORS (the root CA certificates "
                          "of the health PKI) and DMP_XDS_CRL_FILES. `make run` sets up a demo PKI; "
                          "`dmp-xds pki init DIR` writes a test one; DMP_XDS_AUTH=none is for development only")
    if not settings.tls_certificate and not (settings.client_cert_header and settings.trusted_proxies):
        raise ConfigError("authentication needs the client's certificate: either TLS here "
                          "(DMP_XDS_TLS_CERTIFICATE, DMP_XDS_TLS_KEY) or a reverse proxy that passes it "
                          "(DMP_XDS_CLIENT_CERT_HEADER, DMP_XDS_TRUSTED_PROXIES)")
    try:
        trust = TrustStore.from_files(Settings.paths(settings.trust_anchors),
                                      Settings.paths(settings.trust_intermediates),
                                      Settings.paths(settings.crl_files),
                                      cache_seconds=settings.certificate_cache_seconds)
    except CertificateError as exc:
        raise ConfigError(f"trust configuration: {exc}") from exc
    exporters = []
    if settings.audit_syslog:
        from dmp_xds.transport.atna import SyslogExporter, tls_context

        try:
            context = (tls_context(settings.audit_syslog_ca, settings.audit_syslog_certificate,
                                   settings.audit_syslog_key) if settings.audit_syslog.startswith("tls:") else None)
            exporters.append(SyslogExporter(settings.audit_syslog, context=context))
        except (ValueError, OSError) as exc:  # ssl.SSLError is an OSError: a CA or key file that does not load
            raise ConfigError(f"DMP_XDS_AUDIT_SYSLOG: {exc}") from exc
    audit = AuditTrail(engine, exporters)
    audit.ensure_head()
    smtp = None
    if settings.notify_smtp:
        try:
            smtp = SmtpSender(settings.notify_smtp, settings.notify_from, settings.notify_smtp_ca)
        except (ValueError, OSError) as exc:
            raise ConfigError(f"DMP_XDS_NOTIFY_SMTP: {exc}") from exc
    proxies = frozenset(p.strip() for p in settings.trusted_proxies.split(",") if p.strip())
    # The replay cache lives in the database so that every worker process sees every VIHF used.
    verifier = VihfVerifier(trust, settings.vihf_audience, settings.vihf_clock_skew_seconds,
                            DatabaseReplayCache(engine))
    return SecurityServices(trust, verifier, DmpStore(engine), audit, Notifier(engine, smtp), settings.client_cert_header.lower(),
                            proxies)


def client_chain(security: SecurityServices, tls_chain_pem: list[str] | None, headers: dict[str, str],
                 peer: str | None) -> list[x509.Certificate] | None:
    """The client's certificate chain: from our TLS hook, or from a trusted reverse proxy's
    header (nginx `$ssl_client_escaped_cert`: URL-encoded PEM)."""
    if tls_chain_pem:
        return [c for pem in tls_chain_pem for c in load_pem_certificates(pem.encode("ascii"))]
    if security.client_cert_header and peer in security.trusted_proxies:
        value = headers.get(security.client_cert_header, "")
        if value:
            try:
                return load_pem_certificates(unquote(value).encode("ascii"))
            except (CertificateError, UnicodeEncodeError):
                return []
    return None


def _refuse(security: SecurityServices, reason: str, subcode: tuple[str, str], actor: str = "",
            patient: str = "") -> SoapFault:
    security.audit.append(AuditEvent(t.AUTHENTICATE, t.DENIED, patient, actor_id=actor, detail=reason))
    return sender(f"access refused: {reason}", subcode, http_status=403)


def authenticate(security: SecurityServices, header: etree._Element | None,
                 chain: list[x509.Certificate] | None) -> Principal:
    if chain is None:
        raise _refuse(security, "no client certificate: connect with TLS and a health professional's card "
                                "or an establishment certificate", TOKEN_UNAVAILABLE)
    check = security.trust.check(chain)
    if check.holder is None:
        raise _refuse(security, f"client certificate refused: {check.reason}", FAILED_AUTHENTICATION)
    result = security.vihf.verify(header)
    if result.principal is None:
        subcode = TOKEN_UNAVAILABLE if header is None else INVALID_SECURITY_TOKEN
        raise _refuse(security, f"VIHF refused: {result.reason}", subcode, check.holder.national_id)
    principal = result.principal
    if check.holder.kind == "professional" and principal.user_id != check.holder.national_id:
        raise _refuse(security, f"the VIHF names {principal.user_id} but the connection is made with the card of "
                                f"{check.holder.national_id}", FAILED_CHECK, check.holder.national_id,
                      principal.patient_id)
    return principal


# What each XDS transaction is, for the record-level policy and the trace.
def record_gate(security: SecurityServices, principal: Principal, action: Action, now: dt.datetime) -> Decision:
    """The record-level decision for the VIHF's patient (document-level filtering comes on top)."""
    found = security.records.get(principal.patient_id)
    return record_access(principal, found.state if found else None, action, now)


def document_facts(entry: DocumentEntry) -> DocumentFacts:
    return DocumentFacts.of(entry.unique_id or "", [(c.scheme, c.code) for c in entry.confidentiality_codes],
                            [a.person or "" for a in entry.authors])


def document_access(security: SecurityServices, principal: Principal, now: dt.datetime) -> DocumentAccess:
    """The document-level view of an allowed caller: the VIHF's patient only, and of that record
    the documents `document_visible` lets this principal see (masked, invisible to the patient),
    and the changes `document_action` lets them make (ITI-57, ITI-62)."""
    found = security.records.get(principal.patient_id)
    record = found.state if found else None

    def visible(entry: DocumentEntry) -> bool:
        return record is not None and document_visible(principal, record, document_facts(entry), now).allowed

    def decide(entry: DocumentEntry, action: Action) -> Decision:
        if record is None:
            return Decision(False, "this patient has no DMP")
        return document_action(principal, record, document_facts(entry), action, now)

    return DocumentAccess(principal.patient_id, visible, decide)


def trace_access(security: SecurityServices, principal: Principal, action: str, outcome: str,
                 documents: tuple[str, ...] = (), detail: str = "", emergency: bool = False,
                 patient_id: str = "") -> None:
    """One trace row for the principal's request, about `patient_id` (default: the VIHF's patient);
    a successful emergency access is also notified to the patient."""
    entry = security.audit.append(AuditEvent(
        action, outcome, patient_id or principal.patient_id, actor_id=principal.user_id, actor_name=principal.name,
        actor_role=",".join(principal.roles), structure_id=principal.structure_id, access_mode=principal.access_mode,
        access_reason=principal.access_reason, documents=documents,
        detail=("EMERGENCY ACCESS - " if emergency else "") + detail))
    if emergency and outcome == t.SUCCESS:
        security.notifier.notify(entry)
