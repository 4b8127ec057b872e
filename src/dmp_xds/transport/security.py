"""The transport's side of the security gate: the gate's services, built once at start-up from
the settings (trust store, VIHF verifier with the replay cache every worker shares, the access
trace and its ATNA export, the notifications and their mail relay); and the client's
certificate chain of each request, from our TLS or from a trusted reverse proxy's header.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

from cryptography import x509
from sqlalchemy import Engine

from dmp_xds.config import ConfigError, Settings
from dmp_xds.security.cps import CertificateError, TrustStore, load_pem_certificates
from dmp_xds.security.vihf import VihfVerifier, VouchingRules
from dmp_xds.services.gate import SecurityServices
from dmp_xds.services.notifications import Notifier
from dmp_xds.storage.notifications import NotificationStore
from dmp_xds.storage.records import DmpStore
from dmp_xds.storage.replay import DatabaseReplayCache
from dmp_xds.transport.audit import open_trail
from dmp_xds.transport.smtp import MailOutbox, SmtpSender

log = logging.getLogger(__name__)


def build_security(settings: Settings, engine: Engine) -> SecurityServices | None:
    if settings.auth == "none":
        return None
    if not settings.trust_anchors:
        raise ConfigError(
            "DMP_XDS_AUTH=vihf (the default) needs DMP_XDS_TRUST_ANCHORS (the root CA certificates "
            "of the health PKI) and DMP_XDS_CRL_FILES. `make run` sets up a demo PKI; "
            "`dmp-xds pki init DIR` writes a test one; DMP_XDS_AUTH=none is for development only"
        )
    if not settings.tls_certificate and not (settings.client_cert_header and settings.trusted_proxies):
        raise ConfigError(
            "authentication needs the client's certificate: either TLS here "
            "(DMP_XDS_TLS_CERTIFICATE, DMP_XDS_TLS_KEY) or a reverse proxy that passes it "
            "(DMP_XDS_CLIENT_CERT_HEADER, DMP_XDS_TRUSTED_PROXIES)"
        )
    try:
        trust = TrustStore.from_files(
            Settings.paths(settings.trust_anchors),
            Settings.paths(settings.trust_intermediates),
            Settings.paths(settings.crl_files),
            cache_seconds=settings.certificate_cache_seconds,
        )
    except CertificateError as exc:
        raise ConfigError(f"trust configuration: {exc}") from exc
    audit = open_trail(settings, engine)
    outbox = None
    if settings.notify_smtp:
        try:
            smtp = SmtpSender(settings.notify_smtp, settings.notify_from, settings.notify_smtp_ca)
        except (ValueError, OSError) as exc:
            raise ConfigError(f"DMP_XDS_NOTIFY_SMTP: {exc}") from exc
        outbox = MailOutbox(smtp, NotificationStore(engine))
    try:
        vouching = VouchingRules.parse(settings.patient_portals, settings.establishment_vouching)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if not vouching.patient_portals:
        log.info("no patient portal configured (DMP_XDS_PATIENT_PORTALS): patients' VIHFs are refused")
    # The replay cache lives in the database so that every worker process sees every VIHF used.
    verifier = VihfVerifier(
        trust,
        settings.vihf_audience,
        settings.vihf_clock_skew_seconds,
        DatabaseReplayCache(engine),
        vouching,
        max_age_seconds=settings.vihf_max_age_seconds,
        allow_sha1=settings.vihf_sha1 == "accept",
    )
    return SecurityServices(
        trust,
        verifier,
        DmpStore(engine),
        audit,
        Notifier(engine, outbox),
        settings.client_cert_header.lower(),
        settings.trusted_proxy_addresses,
    )


def client_chain(
    security: SecurityServices, tls_chain_pem: list[str] | None, headers: dict[str, str], peer: str | None
) -> list[x509.Certificate] | None:
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
