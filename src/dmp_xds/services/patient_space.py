"""The patient's web space as use cases: their documents, who accessed the record, who may
access it, the record itself. Free of HTTP and HTML: each function takes the `Services`, the
signed-in `Principal` (security/web_principal.patient_principal: the patient, or a minor's legal
representative) and the INS the page is about, and returns frozen dataclasses a template renders.

Everything goes through what SOAP uses: the record is read by the gate (`record_state`), the
policy decides (dmp/policy.py: `record_access`, `document_visible`, `document_action`...), the
documents are found by the stored queries of ITI-18 and restricted as ITI-18 restricts them,
masking and deletion are ITI-57 updates judged document by document (services/rights.py), and
every call leaves one trace row (`gate.trace_access`), a refusal included. A refusal raises
`Refused` after its row is written: the web turns it into a page with its HTTP status.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace

from dmp_xds.dmp import cxf_vocabulary as cv
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.dmp.model import Demographics, DmpError, DmpRecord
from dmp_xds.dmp.policy import (
    CLOSED,
    KIND_ATTENDING,
    KIND_BLOCKED,
    KIND_PROFESSIONAL,
    Action,
    Decision,
    RecordState,
    administration_access,
    list_authorizations,
    speaks_for_patient,
)
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.vihf import Principal, same_patient
from dmp_xds.services import iti57
from dmp_xds.services.context import Services
from dmp_xds.services.gate import DocumentAccess, SecurityServices, document_access, trace_access
from dmp_xds.services.habilitations import authorization_entries
from dmp_xds.services.iti18 import outside_of, restrict
from dmp_xds.storage import trail as t
from dmp_xds.storage.blobstore import BlobStore
from dmp_xds.storage.notifications import Notification
from dmp_xds.storage.queries import build_plan, parse_stored_query, run_plan
from dmp_xds.storage.trail import AuditEntry
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Association, Code, DocumentEntry, Submission, SubmissionSet
from dmp_xds.xds.model.ids import new_uuid

# The statuses the patient's list shows: the DMP's archived documents too (the patient sees
# every document of theirs); deleted ones are gone.
LISTED_STATUSES = (v.STATUS_APPROVED, v.STATUS_ARCHIVED)
MASKED = Code(sv.MASKED_FROM_PROFESSIONALS[1], sv.MASKED_FROM_PROFESSIONALS[0], "Masqué aux professionnels de santé")
HISTORY_PAGE = 50
# What the patient submits is their "personal expression" (JDV_J01, J02, J03, J04): the
# contentTypeCode of their submission sets, the specialty and setting of their documents.
EXP_PATIENT = Code("EXP_PATIENT", "1.2.250.1.213.1.1.4.6", "Expression personnelle du patient")
# A downloaded document's file name extension, by media type.
EXTENSIONS = {
    "application/pdf": ".pdf",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "text/plain": ".txt",
    "text/xml": ".xml",
}


class Refused(Exception):
    """What the patient asked is refused (and traced): `status` is the HTTP status a page
    answers with (403 refused, 404 not found, 409 not in this state, 400 bad input)."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


# --- the gate of every use case -------------------------------------------------------------


@dataclass(frozen=True)
class PatientCall:
    """One allowed call: the gate's services, the caller, the record, the time, why allowed."""

    security: SecurityServices
    principal: Principal
    record: DmpRecord
    now: dt.datetime
    reason: str

    @property
    def state(self) -> RecordState:
        return self.record.state

    @property
    def patient_id(self) -> str:
        return self.record.patient_id

    def trace(self, action: str, outcome: str = t.SUCCESS, documents: tuple[str, ...] = (), detail: str = "") -> None:
        trace_access(
            self.security, self.principal, action, outcome, documents, "; ".join(filter(None, (self.reason, detail)))
        )

    def refuse(self, action: str, reason: str, status: int = 403, documents: tuple[str, ...] = ()) -> Refused:
        self.trace(action, t.DENIED, documents, reason)
        return Refused(reason, status)

    def access(self) -> DocumentAccess:
        return document_access(self.principal, self.state, self.now)


def _security(services: Services) -> SecurityServices:
    if services.security is None:
        # Without authentication there is no patient to speak of: nothing is shown.
        raise Refused("the server runs without authentication (DMP_XDS_AUTH=none): no patient space", 403)
    return services.security


def admit(
    services: Services,
    principal: Principal,
    patient_id: str,
    action: Action,
    trace_action: str,
    now: dt.datetime | None,
) -> PatientCall:
    """The patient's side of the gate: a patient or a legal representative, about the INS of
    the page (another patient's INS is refused and traced on that patient's history), then the
    record-level policy for `action`. Raises Refused (traced)."""
    security = _security(services)
    now = now or dt.datetime.now(dt.UTC)
    if principal.is_professional:
        decision = Decision(False, "the patient's space is for the patient and their legal representatives")
        found = None
    else:
        found = security.records.get(principal.patient_id) if same_patient(principal.patient_id, patient_id) else None
        decision = administration_access(principal, patient_id, found.state if found else None, action, now)
        if decision.allowed and found is not None and not speaks_for_patient(principal, found.state):
            decision = Decision(False, "not a declared legal representative of this patient")
    if not decision.allowed or found is None:
        reason = decision.reason if not decision.allowed else "this patient has no DMP"
        trace_access(security, principal, trace_action, t.DENIED, detail=reason, patient_id=patient_id)
        raise Refused(reason, 404 if reason == "this patient has no DMP" else 403)
    return PatientCall(security, principal, found, now, decision.reason)


# --- 1. documents ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentFilter:
    """The list's filters (all optional): a typeCode (code^^scheme or the code alone), creation
    dates (YYYYMMDD, inclusive), a part of the author's name."""

    type_code: str = ""
    created_from: str = ""
    created_to: str = ""
    author: str = ""


@dataclass(frozen=True)
class AuthorView:
    national_id: str
    name: str
    structure: str  # the institution's name
    structure_id: str


@dataclass(frozen=True)
class DocumentSummary:
    unique_id: str
    entry_uuid: str
    title: str
    type_code: str
    type_label: str
    class_label: str
    created: str  # DTM as registered (YYYYMMDD[HHMMSS])
    authors: tuple[AuthorView, ...]
    mime_type: str
    size: int | None
    status: str  # approved | archived
    masked: bool  # hidden from professionals (MASQUE_PS)
    patient_authored: bool  # the patient published it (their space's "what I add myself")
    version: str


@dataclass(frozen=True)
class DocumentList:
    patient_id: str
    documents: tuple[DocumentSummary, ...]
    filters: DocumentFilter


@dataclass(frozen=True)
class DocumentContent:
    """A document to show or download: its metadata, media type and place in the document store
    (streamed by the web; both reads raise BlobStoreError when the store cannot give it)."""

    document: DocumentSummary
    mime_type: str
    location: str
    size: int
    filename: str
    store: BlobStore

    def read_bytes(self) -> bytes:
        return self.store.read_bytes(self.location)

    def chunks(self) -> Iterator[bytes]:
        return self.store.read_chunks(self.location)


def _author_view(person: str, institutions: list[str]) -> AuthorView:
    parts = person.split("^")
    name = " ".join(
        p
        for p in (
            parts[5] if len(parts) > 5 else "",
            parts[2] if len(parts) > 2 else "",
            parts[1] if len(parts) > 1 else "",
        )
        if p
    )
    institution = institutions[0] if institutions else ""
    xon = institution.split("^")
    structure_id = xon[9] if len(xon) > 9 else (xon[2] if len(xon) > 2 else "")
    return AuthorView(parts[0], name, xon[0] if xon else "", structure_id)


def summary(entry: DocumentEntry, patient_id: str) -> DocumentSummary:
    """What the list and the page say of one DocumentEntry (pure)."""
    ins = patient_id.split("^", 1)[0]
    authors = tuple(_author_view(a.person or "", a.institutions) for a in entry.authors)
    codes = {(c.scheme, c.code) for c in entry.confidentiality_codes}
    return DocumentSummary(
        unique_id=entry.unique_id or "",
        entry_uuid=entry.entry_uuid,
        title=entry.title[0].value if entry.title else "",
        type_code=entry.type_code.code if entry.type_code else "",
        type_label=entry.type_code.display if entry.type_code else "",
        class_label=entry.class_code.display if entry.class_code else "",
        created=entry.creation_time or "",
        authors=authors,
        mime_type=entry.mime_type or "application/octet-stream",
        size=entry.size,
        status="archived" if entry.status == v.STATUS_ARCHIVED else "approved",
        masked=sv.MASKED_FROM_PROFESSIONALS in codes,
        patient_authored=any(a.national_id == ins for a in authors),
        version=entry.version or "1",
    )


def _query_slots(patient_id: str, filters: DocumentFilter) -> list[tuple[str, list[str]]]:
    """The FindDocuments parameters of the list, as an ITI-18 request would give them (pure)."""
    slots = [
        (v.P_DE_PATIENT_ID, [f"'{patient_id}'"]),
        (v.P_DE_STATUS, ["(" + ",".join(f"'{s}'" for s in LISTED_STATUSES) + ")"]),
    ]
    if filters.type_code:
        code = (
            filters.type_code
            if "^^" in filters.type_code
            else f"{filters.type_code}^^{_type_scheme(filters.type_code)}"
        )
        slots.append((v.P_DE_TYPE_CODE, [f"('{_quote(code)}')"]))
    if filters.created_from:
        slots.append((v.P_DE_CREATION_TIME_FROM, [_digits(filters.created_from)]))
    if filters.created_to:
        # Inclusive of the whole last day: creation times are compared as DTM prefixes.
        slots.append((v.P_DE_CREATION_TIME_TO, [_digits(filters.created_to) + "235959"]))
    if filters.author:
        slots.append((v.P_DE_AUTHOR_PERSON, [f"('%{_quote(filters.author.replace('%', ''))}%')"]))
    return slots


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _digits(text: str) -> str:
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) != 8:
        raise Refused(f"date {text!r}: expected a day, YYYY-MM-DD", 400)
    return digits


def _type_scheme(code: str) -> str:
    """LOINC for numeric codes (12345-6), the ANS typeCode system for the DMP's own."""
    return "2.16.840.1.113883.6.1" if code[:1].isdigit() else "1.2.250.1.213.1.1.4.12"


def _visible_entries(
    services: Services, call: PatientCall, slots: list[tuple[str, list[str]]], query_id: str
) -> list[DocumentEntry]:
    """The DocumentEntries a stored query finds, as ITI-18 lets this caller see them."""
    query = parse_stored_query(query_id, slots, v.RETURN_TYPE_LEAF_CLASS)
    if isinstance(query, list):
        raise Refused("; ".join(e.context for e in query), 400)
    plan = build_plan(query)
    rows = run_plan(services.registry.engine, plan, services.settings.max_query_results, links=True)
    if isinstance(rows, list):
        raise Refused("; ".join(e.context for e in rows), 413)
    rows = restrict(rows, call.access(), outside_of(services, rows), plan.anchored)
    return services.registry.get_document_entries([row[0] for row in rows.documents])


def list_documents(
    services: Services,
    principal: Principal,
    patient_id: str,
    filters: DocumentFilter = DocumentFilter(),
    now: dt.datetime | None = None,
) -> DocumentList:
    """The documents the patient may see, newest first: ITI-18's FindDocuments (approved and
    archived) through the same policy; invisible-to-the-patient ones stay out. Traced `search`."""
    call = admit(services, principal, patient_id, Action.SEARCH, t.SEARCH, now)
    entries = _visible_entries(services, call, _query_slots(call.patient_id, filters), v.SQ_FIND_DOCUMENTS)
    documents = sorted((summary(e, call.patient_id) for e in entries), key=lambda d: d.created, reverse=True)
    call.trace(t.SEARCH, documents=tuple(d.unique_id for d in documents))
    return DocumentList(call.patient_id, tuple(documents), filters)


def find_document(services: Services, call: PatientCall, unique_id: str, action: str) -> DocumentEntry:
    """The latest version of the document `unique_id` the caller sees, or Refused (404, traced:
    a hidden document is answered as an unknown one)."""
    found = [
        e for e in services.registry.get_document_entries_by_unique_id([unique_id]) if e.status != v.STATUS_DELETED
    ]
    latest = services.registry.latest_versions([e.entry_uuid for e in found])
    access = call.access()
    for entry in found:
        current = latest.get(entry.entry_uuid)
        if current is not None and current.entry_uuid == entry.entry_uuid and access.shows(entry.patient_id, current):
            return entry
    raise call.refuse(action, f"no document {unique_id} in this record", 404)


def get_document(
    services: Services, principal: Principal, patient_id: str, unique_id: str, now: dt.datetime | None = None
) -> DocumentContent:
    """One document's metadata and content, for display or download (ITI-43's rule:
    `document_readable`). Traced `retrieve`."""
    call = admit(services, principal, patient_id, Action.RETRIEVE, t.RETRIEVE, now)
    entry = find_document(services, call, unique_id, t.RETRIEVE)
    readable = call.access().readability(entry)
    if not readable.allowed:
        raise call.refuse(t.RETRIEVE, readable.reason, 403, (unique_id,))
    stored = services.registry.get_repository_documents([unique_id]).get(unique_id)
    if stored is None:
        raise call.refuse(t.RETRIEVE, f"the document {unique_id} is not in this repository", 404, (unique_id,))
    call.trace(t.RETRIEVE, documents=(unique_id,), detail=readable.reason)
    view = summary(entry, call.patient_id)
    return DocumentContent(view, stored.mime_type, stored.path, stored.size, _filename(view), services.blobs)


def _filename(document: DocumentSummary) -> str:
    extension = EXTENSIONS.get(document.mime_type, ".bin")
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in (document.title or "document"))[:60]
    return f"{document.created[:8] or 'document'}-{stem}{extension}"


@dataclass(frozen=True)
class ChangeResult:
    unique_id: str
    action: str  # mask | unmask | delete | replace
    detail: str


def _update(services: Services, call: PatientCall, submission: Submission, unique_id: str, what: str) -> ChangeResult:
    """One ITI-57 update on behalf of the patient, traced as the SOAP ITI-57 is (`update`, the
    document-level decisions): all or nothing."""
    outcome = iti57.update(services, submission, call.principal.user_id, call.access())
    detail = "; ".join(outcome.decisions)
    errors = [e for e in outcome.errors if e.is_error]
    if outcome.denied or errors:
        reason = "; ".join(e.context for e in errors) or detail
        call.trace(t.UPDATE, t.DENIED if outcome.denied else t.FAILURE, (unique_id,), detail or reason)
        raise Refused(reason, 403 if outcome.denied else 409)
    call.trace(t.UPDATE, documents=(unique_id,), detail=detail)
    return ChangeResult(unique_id, what, detail)


def _update_set(entry: DocumentEntry) -> SubmissionSet:
    """The submission set of an ITI-57 update of `entry` by the patient's space (pure)."""
    return SubmissionSet(
        entry_uuid=_uuid(),
        unique_id=new_unique_id(),
        source_id=_source_id(),
        patient_id=entry.patient_id,
        submission_time=dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S"),
        content_type_code=Code(EXP_PATIENT.code, EXP_PATIENT.scheme, EXP_PATIENT.display),
        authors=list(entry.authors),
    )


def new_version(entry: DocumentEntry, codes: list[Code]) -> Submission:
    """ITI-57: a new version of `entry` with these confidentiality codes (pure)."""
    ss = _update_set(entry)
    version = replace(
        entry,
        entry_uuid=_uuid(),
        logical_id=entry.logical_id or entry.entry_uuid,
        status=None,
        version=None,
        confidentiality_codes=codes,
    )
    link = Association(
        _uuid(),
        v.HAS_MEMBER,
        ss.entry_uuid,
        version.entry_uuid,
        slots={v.SLOT_SUBMISSION_SET_STATUS: ["Original"], v.SLOT_PREVIOUS_VERSION: [entry.version or "1"]},
    )
    return Submission(ss, [version], [], [link], submission_set_count=1)


def status_change(entry: DocumentEntry, new_status: str) -> Submission:
    """ITI-57: the document's availability status changed (the DMP's deletion: Deleted) (pure)."""
    ss = _update_set(entry)
    change = Association(
        _uuid(),
        v.UPDATE_AVAILABILITY_STATUS,
        ss.entry_uuid,
        entry.entry_uuid,
        slots={v.SLOT_ORIGINAL_STATUS: [entry.status or v.STATUS_APPROVED], v.SLOT_NEW_STATUS: [new_status]},
    )
    return Submission(ss, [], [], [change], submission_set_count=1)


def _uuid() -> str:
    return new_uuid()


def new_unique_id() -> str:
    """A uniqueId of our own making: the OID of a random UUID (ITU-T X.667, arc 2.25)."""
    return f"2.25.{uuid.uuid4().int}"


def _source_id() -> str:
    return PATIENT_SPACE_SOURCE_ID


# The sourceId of what the patient's space submits: an OID of its own (arc 2.25, from a fixed
# UUID), since no LPS is the source of what the patient adds.
PATIENT_SPACE_SOURCE_ID = "2.25.253238453626389383962040133009734853467"


def _with_mask(entry: DocumentEntry, masked: bool) -> list[Code]:
    kept = [c for c in entry.confidentiality_codes if (c.scheme, c.code) != sv.MASKED_FROM_PROFESSIONALS]
    return [*kept, MASKED] if masked else kept


def hide_document(
    services: Services, principal: Principal, patient_id: str, unique_id: str, now: dt.datetime | None = None
) -> ChangeResult:
    """Mask the document from professionals (MASQUE_PS): still seen by its author, the attending
    doctor and the patient (policy.document_visible). An ITI-57 new version."""
    return _set_mask(services, principal, patient_id, unique_id, True, now)


def show_document(
    services: Services, principal: Principal, patient_id: str, unique_id: str, now: dt.datetime | None = None
) -> ChangeResult:
    """Unmask the document: professionals the record lets in see it again."""
    return _set_mask(services, principal, patient_id, unique_id, False, now)


def _set_mask(
    services: Services, principal: Principal, patient_id: str, unique_id: str, masked: bool, now: dt.datetime | None
) -> ChangeResult:
    call = admit(services, principal, patient_id, Action.MASK if masked else Action.UNMASK, t.UPDATE, now)
    entry = find_document(services, call, unique_id, t.UPDATE)
    if summary(entry, call.patient_id).masked == masked:
        raise call.refuse(
            t.UPDATE,
            f"the document {unique_id} is already {'hidden from' if masked else 'shown to'} professionals",
            409,
            (unique_id,),
        )
    return _update(
        services, call, new_version(entry, _with_mask(entry, masked)), unique_id, "mask" if masked else "unmask"
    )


def delete_document(
    services: Services, principal: Principal, patient_id: str, unique_id: str, now: dt.datetime | None = None
) -> ChangeResult:
    """The DMP's deletion (TD3.3c): the document's status becomes Deleted by ITI-57, judged by
    `document_action(DELETE)`: the patient deletes any document they see (dmp.md: "deletes
    documents"); professionals only as the rights matrix says."""
    call = admit(services, principal, patient_id, Action.DELETE, t.UPDATE, now)
    entry = find_document(services, call, unique_id, t.UPDATE)
    return _update(services, call, status_change(entry, v.STATUS_DELETED), unique_id, "delete")


# --- 2. who accessed my record --------------------------------------------------------------


@dataclass(frozen=True)
class AccessView:
    seq: int
    when: str  # ISO 8601, UTC
    who: str
    who_id: str
    role: str
    structure_id: str
    action: str
    outcome: str
    documents: tuple[str, ...]
    access_mode: str
    access_mode_label: str
    emergency: bool
    reason: str


@dataclass(frozen=True)
class AccessHistory:
    patient_id: str
    entries: tuple[AccessView, ...]
    next_before: int | None  # the `before` of the next (older) page; None on the last page


def access_view(entry: AuditEntry) -> AccessView:
    event = entry.event
    return AccessView(
        entry.seq,
        entry.recorded_at,
        event.actor_name or event.actor_id,
        event.actor_id,
        event.actor_role,
        event.structure_id,
        event.action,
        event.outcome,
        event.documents,
        event.access_mode,
        sv.ACCESS_MODES.get(event.access_mode, event.access_mode),
        entry.emergency,
        event.access_reason,
    )


def access_history(
    services: Services,
    principal: Principal,
    patient_id: str,
    before: int | None = None,
    page_size: int = HISTORY_PAGE,
    now: dt.datetime | None = None,
) -> AccessHistory:
    """Every trace row about the record, newest first, `page_size` a page, older than the row
    `before` (emergency accesses flagged). Read before this read is traced, so that the page
    does not list itself."""
    call = admit(services, principal, patient_id, Action.READ_STATUS, t.HISTORY_READ, now)
    rows = call.security.audit.history(call.patient_id, limit=page_size + 1, before=before)
    shown = rows[:page_size]
    call.trace(t.HISTORY_READ, detail=f"{len(shown)} entries" + (f" before {before}" if before else ""))
    return AccessHistory(
        call.patient_id, tuple(access_view(e) for e in shown), shown[-1].seq if len(rows) > page_size else None
    )


@dataclass(frozen=True)
class NotificationView:
    id: int
    created_at: dt.datetime
    who: str
    structure_id: str
    reason: str
    message: str
    read: bool


def _notification_view(n: Notification) -> NotificationView:
    return NotificationView(
        n.id, n.created_at, n.actor_name or n.actor_id, n.structure_id, n.reason, n.message, n.read_at is not None
    )


def notifications(
    services: Services, principal: Principal, patient_id: str, unread_only: bool = True, now: dt.datetime | None = None
) -> tuple[NotificationView, ...]:
    """The emergency-access notifications (unacknowledged ones by default), newest first."""
    call = admit(services, principal, patient_id, Action.READ_STATUS, t.NOTIFICATIONS_READ, now)
    found = call.security.notifier.list(call.patient_id, unread_only=unread_only)
    call.trace(t.NOTIFICATIONS_READ, detail=f"{len(found)} notification(s)")
    return tuple(_notification_view(n) for n in found)


def acknowledge_notification(
    services: Services, principal: Principal, patient_id: str, notification_id: int, now: dt.datetime | None = None
) -> bool:
    """Mark one notification read; False if it was already (or is not the patient's: 404)."""
    call = admit(services, principal, patient_id, Action.READ_STATUS, t.NOTIFICATIONS_ACKNOWLEDGE, now)
    if call.security.notifier.get(call.patient_id, notification_id) is None:
        raise call.refuse(t.NOTIFICATIONS_ACKNOWLEDGE, f"no notification {notification_id} in this record", 404)
    changed = call.security.notifier.acknowledge(call.patient_id, [notification_id], call.now) > 0
    call.trace(
        t.NOTIFICATIONS_ACKNOWLEDGE, detail=f"notification {notification_id}" + ("" if changed else " (already read)")
    )
    return changed


# --- 3. who may access it -------------------------------------------------------------------


@dataclass(frozen=True)
class ProfessionalView:
    national_id: str
    first_name: str
    last_name: str
    specialties: tuple[str, ...]  # labels
    since: dt.datetime | None
    last_action: dt.datetime | None
    attending: bool
    blocked: bool


@dataclass(frozen=True)
class AccessRights:
    """Who may access the record, as TD1.6 says it, and the record's oppositions."""

    patient_id: str
    authorized: tuple[ProfessionalView, ...]
    blocked: tuple[ProfessionalView, ...]
    establishments: tuple[str, ...]  # structures the patient authorized (their ids)
    opposes_emergency_access: bool  # OPPOSITION_BRIS_DE_GLACE
    opposes_regulation_access: bool  # OPPOSITION_ACCES_URGENCE
    representatives: tuple[str, ...]  # legal representatives (read only)


def access_rights(
    services: Services, principal: Principal, patient_id: str, now: dt.datetime | None = None
) -> AccessRights:
    call = admit(services, principal, patient_id, Action.READ_STATUS, t.AUTHORIZATIONS_READ, now)
    decision = list_authorizations(principal, call.state, call.now)
    if not decision.allowed:
        raise call.refuse(t.AUTHORIZATIONS_READ, decision.reason)
    entries = authorization_entries(call.state.authorizations, cv.MODE_ALL, call.now)
    views = [
        ProfessionalView(
            e.national_id,
            e.first_name,
            e.last_name,
            e.labels,
            e.start,
            e.last_action,
            cv.ROLE_ATTENDING in e.specific_rights,
            e.mode == cv.MODE_BLOCKED,
        )
        for e in entries
    ]
    establishments = tuple(
        a.grantee for a in call.state.authorizations if a.kind == "establishment" and a.active(call.now)
    )
    call.trace(t.AUTHORIZATIONS_READ, detail=f"{len(views)} professional(s) listed")
    return AccessRights(
        call.patient_id,
        tuple(p for p in views if not p.blocked),
        tuple(p for p in views if p.blocked),
        establishments,
        call.record.opposes_emergency_access,
        call.record.opposes_regulation_access,
        call.state.representatives,
    )


def _national_id(text: str) -> str:
    grantee = text.strip()
    if not grantee or not grantee.isalnum() or len(grantee) > 20:
        raise Refused(f"{text!r} is not a professional's national id", 400)
    return grantee


def revoke_authorization(
    services: Services, principal: Principal, patient_id: str, national_id: str, now: dt.datetime | None = None
) -> int:
    """Withdraw the professional's authorization (and attending-doctor role); how many grants."""
    call = admit(services, principal, patient_id, Action.UPDATE_CONSENT, t.AUTHORIZATION_REVOKE, now)
    grantee = _national_id(national_id)
    revoked = sum(
        call.security.records.revoke(call.patient_id, grantee, k) for k in (KIND_PROFESSIONAL, KIND_ATTENDING)
    )
    if not revoked:
        raise call.refuse(t.AUTHORIZATION_REVOKE, f"{grantee} is not authorized on this DMP", 404)
    call.trace(t.AUTHORIZATION_REVOKE, detail=f"{grantee}: {revoked} authorization(s) revoked by the patient")
    return revoked


def block_professional(
    services: Services, principal: Principal, patient_id: str, national_id: str, now: dt.datetime | None = None
) -> bool:
    """TD1.6 INTERDITE: every access of this professional refused, their grants revoked, until
    unblocked; False when they were blocked already."""
    call = admit(services, principal, patient_id, Action.UPDATE_CONSENT, t.AUTHORIZATION_BLOCK, now)
    grantee = _national_id(national_id)
    revoked, new = call.security.records.block(call.patient_id, grantee, call.principal.user_id)
    call.trace(
        t.AUTHORIZATION_BLOCK,
        detail=f"{grantee} blocked by the patient ({revoked} grant(s) revoked)"
        if new
        else f"{grantee} already blocked",
    )
    return new


def unblock_professional(
    services: Services, principal: Principal, patient_id: str, national_id: str, now: dt.datetime | None = None
) -> bool:
    call = admit(services, principal, patient_id, Action.UPDATE_CONSENT, t.AUTHORIZATION_UNBLOCK, now)
    grantee = _national_id(national_id)
    if not any(
        a.kind == KIND_BLOCKED and a.grantee == grantee and a.active(call.now) for a in call.state.authorizations
    ):
        raise call.refuse(t.AUTHORIZATION_UNBLOCK, f"{grantee} is not blocked on this DMP", 404)
    lifted = call.security.records.unblock(call.patient_id, grantee) > 0
    call.trace(t.AUTHORIZATION_UNBLOCK, detail=f"{grantee} unblocked by the patient")
    return lifted


def set_oppositions(
    services: Services,
    principal: Principal,
    patient_id: str,
    oppose_emergency: bool | None = None,
    oppose_regulation: bool | None = None,
    now: dt.datetime | None = None,
) -> AccessRights:
    """OPPOSITION_BRIS_DE_GLACE and OPPOSITION_ACCES_URGENCE (None: unchanged), as TD1.3b
    changes them: the record's consent choices, negated."""
    call = admit(services, principal, patient_id, Action.UPDATE_CONSENT, t.DMP_UPDATE, now)
    call.security.records.update_consent(
        call.patient_id,
        emergency_access_allowed=None if oppose_emergency is None else not oppose_emergency,
        regulation_access_allowed=None if oppose_regulation is None else not oppose_regulation,
    )
    said = [
        f"{name} {'set' if value else 'lifted'}"
        for name, value in ((hv.OPPOSES_BREAK_GLASS, oppose_emergency), (hv.OPPOSES_REGULATION, oppose_regulation))
        if value is not None
    ]
    call.trace(t.DMP_UPDATE, detail=", ".join(said) or "nothing changed")
    return access_rights(services, principal, patient_id, call.now)


# --- 5. my record ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordView:
    patient_id: str
    status: str  # open | closed
    created_at: dt.datetime
    closed_at: dt.datetime | None
    status_reason: str
    consent_collected_by: str
    consent_collected_at: dt.datetime
    notification_email: str
    demographics: Demographics
    destruction_requested: bool


def _record_view(record: DmpRecord, destruction_requested: bool) -> RecordView:
    return RecordView(
        record.patient_id,
        record.state.status,
        record.created_at,
        record.closed_at,
        record.status_reason,
        record.consent.collected_by,
        record.consent.collected_at,
        record.notification_email,
        record.demographics,
        destruction_requested,
    )


def _destruction_requested(call: PatientCall) -> bool:
    return any(
        e.event.action == t.DMP_DESTROY_REQUEST and e.event.outcome == t.SUCCESS
        for e in call.security.audit.history(call.patient_id, limit=5000)
    )


def my_record(services: Services, principal: Principal, patient_id: str, now: dt.datetime | None = None) -> RecordView:
    """The record's administrative data (TD1.3a's consultation)."""
    call = admit(services, principal, patient_id, Action.READ_STATUS, t.DMP_READ, now)
    call.trace(t.DMP_READ, detail="administrative data read by the patient")
    return _record_view(call.record, _destruction_requested(call))


def set_notification_email(
    services: Services, principal: Principal, patient_id: str, email: str, now: dt.datetime | None = None
) -> RecordView:
    """Where emergency accesses are e-mailed ("" stops the e-mails)."""
    call = admit(services, principal, patient_id, Action.UPDATE_CONSENT, t.DMP_UPDATE, now)
    address = email.strip()
    if address and (
        len(address) > 254
        or address.count("@") != 1
        or any(ch.isspace() for ch in address)
        or "." not in address.split("@")[1]
    ):
        raise call.refuse(t.DMP_UPDATE, f"{email!r} is not an e-mail address", 400)
    record = call.security.records.update_consent(call.patient_id, notification_email=address)
    call.trace(t.DMP_UPDATE, detail="notification e-mail " + ("changed" if address else "removed"))
    return _record_view(record, _destruction_requested(call))


def close_record(
    services: Services, principal: Principal, patient_id: str, now: dt.datetime | None = None
) -> RecordView:
    """TD1.4 FERM on the patient's request (FERMETURE_DEMANDE_PATIENT): the same decision
    (Action.CLOSE) and the same store call as services/gdp.py."""
    call = admit(services, principal, patient_id, Action.CLOSE, t.DMP_CLOSE, now)
    if call.state.status == CLOSED:
        raise call.refuse(t.DMP_CLOSE, "the DMP is already closed", 409)
    try:
        record = call.security.records.close(call.patient_id, hv.CLOSURE_PATIENT_REQUEST)
    except DmpError as exc:
        raise call.refuse(t.DMP_CLOSE, str(exc), 409) from None
    call.trace(t.DMP_CLOSE, detail=f"closed: {hv.CLOSURE_PATIENT_REQUEST}")
    return _record_view(record, _destruction_requested(call))


def request_destruction(
    services: Services, principal: Principal, patient_id: str, reason: str = "", now: dt.datetime | None = None
) -> RecordView:
    """The patient asks for the DMP's destruction: the request is a trace row the operator acts
    on (`dmp-xds dmp destroy`), which erases documents and metadata and keeps the trace. Asking
    twice changes nothing."""
    call = admit(services, principal, patient_id, Action.READ_STATUS, t.DMP_DESTROY_REQUEST, now)
    if _destruction_requested(call):
        raise call.refuse(t.DMP_DESTROY_REQUEST, "the destruction of this DMP is already requested", 409)
    call.trace(
        t.DMP_DESTROY_REQUEST, detail="destruction requested by the patient" + (f": {reason[:200]}" if reason else "")
    )
    return _record_view(call.record, True)


def documents_for_export(
    services: Services, call_principal: Principal, patient_id: str, now: dt.datetime | None = None
) -> tuple[PatientCall, list[DocumentEntry]]:
    """For the archive (services/record_export.py): the call admitted, and every document the
    patient sees (any status but deleted)."""
    call = admit(services, call_principal, patient_id, Action.RETRIEVE, t.RETRIEVE, now)
    return call, _visible_entries(services, call, _query_slots(call.patient_id, DocumentFilter()), v.SQ_FIND_DOCUMENTS)
