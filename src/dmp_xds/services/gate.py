"""The security gate of every request: client certificate, then VIHF, then a Principal; then
what the DMP policy lets that principal do with the record and the documents.

`authenticate(...)` runs per request and raises AuthenticationError, with the WS-Security fault
code and a reason the caller can act on, when anything is wrong. Refusals are traced. The gate's
services are built once at start-up (transport/security.py; None when DMP_XDS_AUTH=none).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace

from cryptography import x509
from lxml import etree

from dmp_xds.dmp import rights_matrix as rm
from dmp_xds.dmp.ins import canonical_patient_id
from dmp_xds.dmp.policy import (
    Action,
    Decision,
    DocumentFacts,
    RecordState,
    document_action,
    document_readable,
    document_visible,
    matrix_profile,
)
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import Holder, TrustStore
from dmp_xds.security.errors import (
    FAILED_AUTHENTICATION,
    FAILED_CHECK,
    INVALID_SECURITY_TOKEN,
    TOKEN_UNAVAILABLE,
    AuthenticationError,
)
from dmp_xds.security.vihf import Principal, VihfVerifier, staff_structure
from dmp_xds.security.web_principal import patient_principal
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
    documents those `visibility` allows. Without authentication there is none: all is visible."""

    patient_id: str
    # May the caller see this document, and why (policy.document_visible)?
    visibility: Callable[[DocumentEntry], Decision]
    # May the caller change this (visible) document so (ITI-57, ITI-62)? policy.document_action.
    decide: Callable[[DocumentEntry, Action], Decision]
    # May the caller read the document itself (ITI-43)? policy.document_readable.
    readability: Callable[[DocumentEntry], Decision]
    # May the caller ask this query: metadata (LeafClass, False) or references (ObjectRef, True)?
    query: Callable[[bool], Decision]

    def visible(self, entry: DocumentEntry) -> bool:
        return self.visibility(entry).allowed

    def shows(self, patient_id: str | None, latest: DocumentEntry | None) -> bool:
        """Whether the caller sees a version (of `patient_id`) of the document whose latest
        version is `latest`. Every version is judged by the latest, the document's current
        confidentiality and authors: masking the document hides its older versions too, on
        every path, and unmasking shows them again. No latest (the document was deleted
        meanwhile): hidden."""
        return (
            latest is not None
            and patient_id == self.patient_id
            and latest.patient_id == self.patient_id
            and self.visible(latest)
        )


def _refuse(
    security: SecurityServices,
    reason: str,
    code: str,
    connection: Holder | None = None,
    patient: str = "",
    structure: str = "",
) -> AuthenticationError:
    """A denied `authenticate` row and the error. The row's actor is who connected (a card's
    holder, or an establishment); it is about the VIHF's patient and names the structure that
    vouched, once the VIHF's signature verified (before that, nothing it says is known to be true)."""
    actor = (connection.national_id or connection.structure_id) if connection is not None else ""
    security.audit.append(
        AuditEvent(
            t.AUTHENTICATE,
            t.DENIED,
            canonical_patient_id(patient)[0],  # on the history of the INS, as the request's rows
            actor_id=actor,
            actor_name=connection.display_name if connection is not None else "",
            structure_id=structure,
            detail=reason,
        )
    )
    return AuthenticationError(code, reason)


def connection_holder(security: SecurityServices, chain: list[x509.Certificate] | None) -> Holder:
    """Who the TLS client certificate names, once the chain is trusted (anchors, dates, key
    usage, CRL): a card's holder or an establishment. Both the SOAP gate and the web's sign-ins
    start here; a refusal is traced and raised."""
    if chain is None:
        raise _refuse(
            security,
            "no client certificate: connect with TLS and a health professional's card or an establishment certificate",
            TOKEN_UNAVAILABLE,
        )
    check = security.trust.check(chain)
    if check.holder is None:
        raise _refuse(security, f"client certificate refused: {check.reason}", FAILED_AUTHENTICATION)
    return check.holder


def card_principal(card: Holder, patient_id: str = "") -> Principal:
    """The Principal of a professional connected with their card and nothing else (the web's
    professional site): what an unsigned direct-mode VIHF over that card's connection would say,
    read from the card itself (GIP-CPS extensions: card type, profession, specialty), in normal
    access mode. `patient_id`: the record the page is about ("" for none yet)."""
    roles = tuple(c for c in (card.profession_code, *card.specialties[:1]) if c)
    return Principal(
        kind="professional",
        user_id=card.national_id,
        name=card.display_name,
        roles=roles,
        structure_id=staff_structure(card.national_id) or card.structure_id,
        sector="",
        access_mode=sv.ACCESS_NORMAL,
        access_reason="",
        patient_id=patient_id,
        software="dmp-xds web",
        authentication_mode=sv.AUTHENTICATION_DIRECT,
        assertion_id="",
        signer=card,
        profession=card.profession_code,
        specialty=card.specialties[0] if card.specialties else "",
        card_type=card.card_type,
        signed=False,
    )


def citizen_principal(kind: str, subject_id: str, patient_id: str, name: str, session_id: str = "") -> Principal:
    """The Principal of a patient (kind "patient") or a minor's legal representative
    ("representative", `subject_id` their own id) signed in on the web front, acting on the
    record of `patient_id` (security/web_principal.py: one definition for the web and the tests)."""
    representative = subject_id if kind == "representative" else ""
    return patient_principal(patient_id, name, representative_id=representative, session_id=session_id)


def authenticate(
    security: SecurityServices, header: etree._Element | None, chain: list[x509.Certificate] | None
) -> Principal:
    holder = connection_holder(security, chain)
    result = security.vihf.verify(header, connection=holder)
    if result.principal is None:
        code = TOKEN_UNAVAILABLE if header is None else INVALID_SECURITY_TOKEN
        claimed = f" (the VIHF names {result.user_id})" if result.user_id else ""
        raise _refuse(
            security,
            f"VIHF refused: {result.reason}{claimed}",
            code,
            holder,
            result.patient_id,
            result.vouched_by or holder.structure_id,
        )
    principal = result.principal
    # The VIHF's signer is the client of the TLS connection (dmpi: the card signs in direct mode,
    # the establishment's certificate in indirect mode): a card's connection does not carry an
    # organisation's VIHF, nor an organisation's connection a card's.
    if principal.signer.kind != holder.kind:
        signer = principal.signer.national_id or principal.signer.structure_id
        connected = holder.national_id or holder.structure_id
        raise _refuse(
            security,
            f"the VIHF is signed by {signer} but the connection is made with the certificate of {connected}: "
            "the VIHF's signer must be the TLS client",
            FAILED_CHECK,
            holder,
            principal.patient_id,
            principal.vouched_by or holder.structure_id,
        )
    if holder.kind == "professional" and principal.user_id != holder.national_id:
        raise _refuse(
            security,
            f"the VIHF names {principal.user_id} but the connection is made with the card of {holder.national_id}",
            FAILED_CHECK,
            holder,
            principal.patient_id,
            principal.vouched_by,
        )
    # A structure's word is good over its own connection only: another establishment (a hospital
    # holding a VIHF its patient portal signed) may not present it.
    if holder.kind == "establishment" and principal.vouched_by and principal.vouched_by != holder.structure_id:
        raise _refuse(
            security,
            f"the VIHF is vouched for by structure {principal.vouched_by} but the connection "
            f"is made with the certificate of structure {holder.structure_id}",
            FAILED_CHECK,
            holder,
            principal.patient_id,
            holder.structure_id,
        )
    return with_canonical_patient(principal)


def with_canonical_patient(principal: Principal) -> Principal:
    """The DMP's VIHF names its patient `INS^^^&OID&ISO^NH`: the record, the registry and the
    trace know the INS alone, so the principal carries that from authentication on (a malformed
    id is left as it is, and matches no record)."""
    patient_id, problem = canonical_patient_id(principal.patient_id)
    return principal if problem else replace(principal, patient_id=patient_id)


def record_state(security: SecurityServices, principal: Principal) -> RecordState | None:
    """The DMP record of the VIHF's patient, as the policy reads it (None: no DMP): read once per
    request, for the record-level decision and the document-level view alike."""
    found = security.records.get(principal.patient_id)
    return found.state if found else None


def document_facts(entry: DocumentEntry) -> DocumentFacts:
    return DocumentFacts.of(
        entry.unique_id or "",
        [(c.scheme, c.code) for c in entry.confidentiality_codes],
        [a.person or "" for a in entry.authors],
        [i for a in entry.authors for i in a.institutions],
    )


def document_access(principal: Principal, record: RecordState | None, now: dt.datetime) -> DocumentAccess:
    """The document-level view of an allowed caller: the VIHF's patient only, and of that record
    the documents `document_visible` lets this principal see (masked, invisible to the patient),
    and the changes `document_action` lets them make (ITI-57, ITI-62). Pure: the record is read
    by the caller (`record_state`)."""

    def visibility(entry: DocumentEntry) -> Decision:
        if record is None:
            return Decision(False, "this patient has no DMP")
        return document_visible(principal, record, document_facts(entry), now)

    def decide(entry: DocumentEntry, action: Action) -> Decision:
        if record is None:
            return Decision(False, "this patient has no DMP")
        return document_action(principal, record, document_facts(entry), action, now)

    def readability(entry: DocumentEntry) -> Decision:
        if record is None:
            return Decision(False, "this patient has no DMP")
        return document_readable(principal, record, document_facts(entry), now)

    def query(references: bool) -> Decision:
        """TD3.1: the rights matrix's search row, or its find-a-reference row for ObjectRefs
        (patients and their representatives: the matrix is silent, they may)."""
        if not principal.is_professional:
            return Decision(True, "the patient's side searches their record")
        if record is None:
            return Decision(False, "this patient has no DMP")
        row = rm.Row.FIND_REFERENCE if references else rm.Row.SEARCH_METADATA
        verdict = rm.decide(matrix_profile(principal, record, now), rm.mode_of(principal), row)
        return Decision(verdict.allowed, verdict.reason)

    return DocumentAccess(principal.patient_id, visibility, decide, readability, query)


def vouching_note(principal: Principal) -> str:
    """How a trace row says that the server took a structure at its word (\"\" for a card)."""
    if not principal.vouched_by:
        return ""
    organization = principal.signer.organization
    return f"vouched for by structure {principal.vouched_by}" + (f" ({organization})" if organization else "")


def trace_access(
    security: SecurityServices,
    principal: Principal,
    action: str,
    outcome: str,
    documents: tuple[str, ...] = (),
    detail: str = "",
    emergency: bool = False,
    patient_id: str = "",
) -> None:
    """One trace row for the principal's request, about `patient_id` (default: the VIHF's patient);
    a successful emergency access is also notified to the patient. A row made on a structure's
    word says so and names it (its id is also the row's structure)."""
    vouched = vouching_note(principal)
    entry = security.audit.append(
        AuditEvent(
            action,
            outcome,
            patient_id or principal.patient_id,
            actor_id=principal.user_id,
            actor_name=principal.name,
            actor_role=",".join(principal.roles),
            structure_id=principal.structure_id,
            access_mode=principal.access_mode,
            access_reason=principal.access_reason,
            documents=documents,
            detail=("EMERGENCY ACCESS - " if emergency else "") + (f"{vouched}; " if vouched else "") + detail,
        )
    )
    if emergency and outcome == t.SUCCESS:
        security.notifier.notify(entry)
