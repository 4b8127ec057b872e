"""The security gate of every request: client certificate, then VIHF, then a Principal; then
what the DMP policy lets that principal do with the record and the documents.

`authenticate(...)` runs per request and raises AuthenticationError, with the WS-Security fault
code and a reason the caller can act on, when anything is wrong. Refusals are traced. The gate's
services are built once at start-up (transport/security.py; None when DMP_XDS_AUTH=none).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from lxml import etree

from dmp_xds.dmp.policy import (
    Action,
    Decision,
    DocumentFacts,
    RecordState,
    document_action,
    document_visible,
)
from dmp_xds.security.cps import TrustStore
from dmp_xds.security.errors import (
    FAILED_AUTHENTICATION,
    FAILED_CHECK,
    INVALID_SECURITY_TOKEN,
    TOKEN_UNAVAILABLE,
    AuthenticationError,
)
from dmp_xds.security.vihf import Principal, VihfVerifier
from dmp_xds.services.notifications import Notifier
from dmp_xds.storage import trail as t
from dmp_xds.storage.records import DmpStore
from dmp_xds.storage.trail import AuditEvent, AuditTrail
from dmp_xds.xds.model import DocumentEntry


@dataclass
class SecurityServices:
    trust: TrustStore
    vihf: VihfVerifier
    records: DmpStore
    audit: AuditTrail
    notifier: Notifier
    client_cert_header: str = ""
    trusted_proxies: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DocumentAccess:
    """What an authenticated caller may see: one patient's record (the VIHF's), and of its
    documents those `visible` accepts. Without authentication there is none: all is visible."""

    patient_id: str
    visible: Callable[[DocumentEntry], bool]
    # May the caller change this (visible) document so (ITI-57, ITI-62)? policy.document_action.
    decide: Callable[[DocumentEntry, Action], Decision]


def _refuse(security: SecurityServices, reason: str, code: str, actor: str = "",
            patient: str = "") -> AuthenticationError:
    security.audit.append(AuditEvent(t.AUTHENTICATE, t.DENIED, patient, actor_id=actor, detail=reason))
    return AuthenticationError(code, reason)


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
        code = TOKEN_UNAVAILABLE if header is None else INVALID_SECURITY_TOKEN
        raise _refuse(security, f"VIHF refused: {result.reason}", code, check.holder.national_id)
    principal = result.principal
    if check.holder.kind == "professional" and principal.user_id != check.holder.national_id:
        raise _refuse(security, f"the VIHF names {principal.user_id} but the connection is made with the card of "
                                f"{check.holder.national_id}", FAILED_CHECK, check.holder.national_id,
                      principal.patient_id)
    return principal


def record_state(security: SecurityServices, principal: Principal) -> RecordState | None:
    """The DMP record of the VIHF's patient, as the policy reads it (None: no DMP): read once per
    request, for the record-level decision and the document-level view alike."""
    found = security.records.get(principal.patient_id)
    return found.state if found else None


def document_facts(entry: DocumentEntry) -> DocumentFacts:
    return DocumentFacts.of(entry.unique_id or "", [(c.scheme, c.code) for c in entry.confidentiality_codes],
                            [a.person or "" for a in entry.authors])


def document_access(principal: Principal, record: RecordState | None, now: dt.datetime) -> DocumentAccess:
    """The document-level view of an allowed caller: the VIHF's patient only, and of that record
    the documents `document_visible` lets this principal see (masked, invisible to the patient),
    and the changes `document_action` lets them make (ITI-57, ITI-62)."""

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
