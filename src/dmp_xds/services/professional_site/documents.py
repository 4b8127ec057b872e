"""Documents/INS: the documents with filters (TD3.1, as ITI-18 runs it) and one document (TD3.2,
as ITI-43 decides it)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dmp_xds.dmp.model import DmpRecord
from dmp_xds.dmp.policy import (
    Action,
    Decision,
)
from dmp_xds.dmp.validation.valuesets import ValueSet, load_class_and_content_type_tables
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.vihf import Principal
from dmp_xds.services.context import Services
from dmp_xds.services.gate import SecurityServices, document_access, trace_access
from dmp_xds.services.iti18 import canonical_patients, visible_rows
from dmp_xds.services.iti43 import retrievable
from dmp_xds.services.professional_site.common import (
    PatientData,
    Refused,
    enter,
    now_or,
    open_page,
    patient_data,
    refuse,
    state_of,
)
from dmp_xds.storage import trail as t
from dmp_xds.storage.blobstore import BlobStore
from dmp_xds.storage.queries import StoredQuery, parse_stored_query
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import DocumentEntry


@dataclass(frozen=True)
class DocumentLine:
    unique_id: str
    entry_uuid: str
    title: str
    class_code: str
    class_display: str
    type_code: str
    type_display: str
    creation_time: str  # DTM
    care_date: dt.date | None  # the service's start, else the document's creation
    authors: tuple[str, ...]  # "Given FAMILY"
    author_ids: tuple[str, ...]
    author_specialties: tuple[str, ...]
    institutions: tuple[str, ...]
    archived: bool
    masked: bool  # masked from professionals (shown to its author and the attending doctor)
    mime_type: str


@functools.cache
def _class_codes() -> ValueSet:
    return load_class_and_content_type_tables()[1]


def class_display(code: str, scheme: str, fallback: str = "") -> str:
    """The classCode's display name from the CI-SIS value set (JDV_J06), else the metadata's."""
    return _class_codes().display(code, scheme) or fallback or code


def _dtm_date(value: str | None) -> dt.date | None:
    if not value or len(value) < 8 or not value[:8].isdigit():
        return None
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


def _person_name(xcn: str) -> str:
    parts = xcn.split("^")
    name = " ".join(p for p in (parts[2] if len(parts) > 2 else "", parts[1] if len(parts) > 1 else "") if p)
    return name or parts[0]


def document_line(entry: DocumentEntry) -> DocumentLine:
    persons = [a.person for a in entry.authors if a.person]
    klass, kind = entry.class_code, entry.type_code
    return DocumentLine(
        entry.unique_id or "",
        entry.entry_uuid,
        entry.title[0].value if entry.title else "",
        klass.code if klass else "",
        class_display(klass.code, klass.scheme, klass.display) if klass else "",
        kind.code if kind else "",
        (kind.display or kind.code) if kind else "",
        entry.creation_time or "",
        _dtm_date(entry.service_start_time) or _dtm_date(entry.creation_time),
        tuple(_person_name(p) for p in persons),
        tuple(p.split("^", 1)[0] for p in persons),
        tuple(s.split("^", 1)[0] for a in entry.authors for s in a.specialties),
        tuple(i.split("^", 1)[0] for a in entry.authors for i in a.institutions),
        entry.status == v.STATUS_ARCHIVED,
        any((c.scheme, c.code) == sv.MASKED_FROM_PROFESSIONALS for c in entry.confidentiality_codes),
        entry.mime_type or "",
    )


@dataclass(frozen=True)
class DocumentFilters:
    """The Documents page's filters (all optional)."""

    date_from: dt.date | None = None  # creation time, inclusive
    date_to: dt.date | None = None  # inclusive
    author: str = ""  # a name or national id, matched within the author (XCN)
    author_specialty: str = ""  # a specialty code (G15_10/SM26)
    type_codes: tuple[tuple[str, str], ...] = ()  # (code, scheme)
    class_codes: tuple[tuple[str, str], ...] = ()
    include_archived: bool = False
    include_masked: bool = True  # masked documents the caller may see (author, attending doctor)


def _quoted(values: Iterable[str]) -> str:
    return "(" + ",".join("'" + value.replace("'", "''") + "'" for value in values) + ")"


def find_documents_query(patient_id: str, filters: DocumentFilters) -> StoredQuery:
    """The FindDocuments stored query (TD3.1) of the page's filters."""
    statuses = [v.STATUS_APPROVED, *([v.STATUS_ARCHIVED] if filters.include_archived else [])]
    slots: list[tuple[str, list[str]]] = [
        (v.P_DE_PATIENT_ID, [f"'{patient_id}'"]),
        (v.P_DE_STATUS, [_quoted(statuses)]),
    ]
    if filters.date_from:
        slots.append((v.P_DE_CREATION_TIME_FROM, [filters.date_from.strftime("%Y%m%d")]))
    if filters.date_to:
        slots.append((v.P_DE_CREATION_TIME_TO, [(filters.date_to + dt.timedelta(days=1)).strftime("%Y%m%d")]))
    if filters.author.strip():
        slots.append((v.P_DE_AUTHOR_PERSON, [_quoted([f"%{filters.author.strip()}%"])]))
    if filters.type_codes:
        slots.append((v.P_DE_TYPE_CODE, [_quoted(f"{c}^^{s}" for c, s in filters.type_codes)]))
    if filters.class_codes:
        slots.append((v.P_DE_CLASS_CODE, [_quoted(f"{c}^^{s}" for c, s in filters.class_codes)]))
    query = parse_stored_query(v.SQ_FIND_DOCUMENTS, slots, v.RETURN_TYPE_LEAF_CLASS, None)
    if isinstance(query, list):
        raise Refused(400, "; ".join(e.context for e in query))
    return query


def keep(line: DocumentLine, filters: DocumentFilters) -> bool:
    """The filters the stored query has no parameter for: the author's specialty, masked ones."""
    if filters.author_specialty and filters.author_specialty not in line.author_specialties:
        return False
    return filters.include_masked or not line.masked


def search(
    services: Services,
    security: SecurityServices,
    principal: Principal,
    record: DmpRecord | None,
    filters: DocumentFilters,
    now: dt.datetime,
    trace: bool = True,
) -> tuple[list[DocumentLine], Decision]:
    """TD3.1 as ITI-18 runs it: the record's decision, the matrix's search row, the stored query
    restricted to what the caller may see; one search row in the trace with what it returned."""
    state = state_of(record)
    decision = enter(security, principal, state, Action.SEARCH, t.SEARCH, now)
    access = document_access(principal, state, now)
    allowed = access.query(False)
    if not allowed.allowed:
        raise refuse(security, principal, t.SEARCH, 403, allowed.reason)
    query = canonical_patients(services, find_documents_query(principal.patient_id, filters))
    rows = visible_rows(services, query, access)
    if isinstance(rows, list):
        reason = "; ".join(e.context for e in rows)
        trace_access(security, principal, t.SEARCH, t.FAILURE, detail=reason, emergency=decision.emergency)
        raise Refused(400, reason)
    entries = services.registry.get_document_entries([row[0] for row in rows.documents])
    lines = [line for line in map(document_line, entries) if keep(line, filters)]
    lines.sort(key=lambda line: line.creation_time, reverse=True)
    if trace:
        trace_access(
            security,
            principal,
            t.SEARCH,
            t.SUCCESS,
            tuple(line.unique_id for line in lines),
            decision.reason,
            emergency=decision.emergency,
        )
    return lines, decision


@dataclass(frozen=True)
class DocumentList:
    patient: PatientData
    filters: DocumentFilters
    documents: tuple[DocumentLine, ...]
    emergency: bool


def documents(
    services: Services, principal: Principal, ins: str, filters: DocumentFilters, now: dt.datetime | None = None
) -> DocumentList:
    """Documents/INS: the documents the caller may see, filtered (TD3.1, traced as a search)."""
    security, principal, record = open_page(services, principal, ins)
    lines, decision = search(services, security, principal, record, filters, now_or(now))
    assert record is not None
    return DocumentList(patient_data(record), filters, tuple(lines), decision.emergency)


@dataclass(frozen=True)
class DocumentContent:
    """A document the caller may read: its metadata, its MIME type and its place in the document
    store, which the web streams (`chunks`: a 50 MB document is not held in memory) or reads
    whole (`content`) to render it; both raise BlobStoreError when the store cannot give it."""

    document: DocumentLine
    mime_type: str
    location: str
    size: int
    store: BlobStore

    def content(self) -> bytes:
        return self.store.read_bytes(self.location)

    def chunks(self) -> Iterator[bytes]:
        return self.store.read_chunks(self.location)


def document(
    services: Services, principal: Principal, ins: str, unique_id: str, now: dt.datetime | None = None
) -> DocumentContent:
    """Documents/INS, one document: its metadata and bytes (TD3.2 as ITI-43 decides and traces
    it; a document the caller may not read is answered as unknown, and the refusal traced)."""
    security, principal, record = open_page(services, principal, ins)
    now = now_or(now)
    state = state_of(record)
    decision = enter(security, principal, state, Action.RETRIEVE, t.RETRIEVE, now)
    access = document_access(principal, state, now)
    allowed, refusals, reads = retrievable(services, access, [unique_id])
    stored = services.registry.get_repository_documents([unique_id]) if unique_id in allowed else {}
    if unique_id not in stored:
        detail = "; ".join((decision.reason, *refusals)) if refusals else f"document {unique_id} not found"
        outcome = t.DENIED if refusals else t.FAILURE
        trace_access(security, principal, t.RETRIEVE, outcome, detail=detail, emergency=decision.emergency)
        raise Refused(404, f"document {unique_id} is not in this DMP")
    found = stored[unique_id]
    # Its metadata as it stands now: the latest version (ITI-57 versions share the uniqueId).
    latest = services.registry.latest_versions_by_unique_id([unique_id])[unique_id]
    trace_access(
        security,
        principal,
        t.RETRIEVE,
        t.SUCCESS,
        (unique_id,),
        "; ".join((decision.reason, *reads)),
        emergency=decision.emergency,
    )
    return DocumentContent(document_line(latest[0]), found.mime_type, found.path, found.size, services.blobs)
