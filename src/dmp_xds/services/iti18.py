"""ITI-18 Registry Stored Query (Document Registry).

read the AdhocQueryRequest → parse its parameters (storage/queries.py, pure) → build the
selects → run them on one connection (the store) → check the result (single patient) → the
caller's view (policy) → render.
Every problem is an `rs:RegistryError` in a Failure response; nothing here raises for a client
mistake.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from lxml import etree
from sqlalchemy.exc import OperationalError

from dmp_xds.services.context import Services, TransactionRequest, TransactionResult
from dmp_xds.services.gate import DocumentAccess
from dmp_xds.services.register import database_failure
from dmp_xds.services.rights import hidden_versions
from dmp_xds.storage import render
from dmp_xds.storage.queries import (
    QueryRows,
    ReturnType,
    StoredQuery,
    build_plan,
    parse_stored_query,
    run_plan,
)
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.encode import encode_adhoc_query_response
from dmp_xds.xds.errors import ErrorCode, XdsError, error
from dmp_xds.xds.model import KIND_DOCUMENT_ENTRY, DocumentEntry


def read_request(payload: etree._Element) -> StoredQuery | list[XdsError]:
    """The stored query of a `query:AdhocQueryRequest`, or what is wrong with it."""
    if payload.tag != v.TAG_ADHOC_QUERY_REQUEST:
        return [error(ErrorCode.REGISTRY_ERROR, f"ITI-18 expects query:AdhocQueryRequest, not {payload.tag}")]
    option = payload.find(v.TAG_RESPONSE_OPTION)
    query = payload.find(v.TAG_ADHOC_QUERY)
    if query is None or not query.get("id"):
        return [error(ErrorCode.REGISTRY_ERROR, "query:AdhocQueryRequest without rim:AdhocQuery id")]
    return_type = option.get("returnType", v.RETURN_TYPE_LEAF_CLASS) if option is not None else v.RETURN_TYPE_LEAF_CLASS
    slots = [
        (slot.get("name", ""), [value.text or "" for value in slot.iterfind(f"{v.TAG_VALUE_LIST}/{v.TAG_VALUE}")])
        for slot in query.iterfind(v.TAG_SLOT)
    ]
    return parse_stored_query(query.get("id", ""), slots, return_type, query.get("home"))


def check_single_patient(rows: QueryRows) -> list[XdsError]:
    patients = sorted({row[1] for row in rows.entries()})
    if len(patients) > 1:
        return [
            error(
                ErrorCode.RESULT_NOT_SINGLE_PATIENT,
                f"the objects found belong to {len(patients)} patients: {', '.join(patients)}",
            )
        ]
    return []


def render_objects(query: StoredQuery, rows: QueryRows) -> list[render.RegistryObject]:
    """Objects in response order: SubmissionSets, Folders, DocumentEntries, Associations."""
    if not query.leaf_class:
        ids = [row[0] for row in rows.entries()] + [row[0] for row in rows.associations]
        return list(render.object_refs(ids))
    return [
        *render.submission_sets(rows.submission_sets),
        *render.folders(rows.folders),
        *render.document_entries(rows.documents),
        *render.associations(rows.associations),
    ]


def query_response(objects: Sequence[render.RegistryObject], errors: Sequence[XdsError]) -> etree._Element:
    status = v.RESPONSE_FAILURE if any(e.is_error for e in errors) else v.RESPONSE_SUCCESS
    return encode_adhoc_query_response(status, [] if status == v.RESPONSE_FAILURE else objects, errors)


def check_community(query: StoredQuery, own_community: str) -> list[XdsError]:
    """`$homeCommunityId` (or AdhocQuery@home) must name this registry's community when one is
    configured (ITI TF-2a §3.18.4.1.2.3.8); without one configured, this registry answers for
    whatever it holds."""
    asked = query.home_community_id
    if asked and own_community and asked != own_community:
        return [
            error(
                ErrorCode.UNKNOWN_COMMUNITY,
                f"homeCommunityId {asked} is not this registry's community ({own_community})",
                asked,
            )
        ]
    return []


def with_home(objects: list[render.RegistryObject], own_community: str) -> list[render.RegistryObject]:
    """Every returned object carries the community it comes from, when one is configured."""
    if own_community:
        for obj in objects:
            obj.home_community_id = own_community
    return objects


@dataclass(frozen=True)
class Outside:
    """What access control needs to know beyond the rows: the association ends not among them
    (id -> (kind, patient), None for an id not registered), and the latest version of the
    document of every DocumentEntry among rows and ends (entryUUID -> that version)."""

    ends: Mapping[str, tuple[str, str | None] | None]
    latest: Mapping[str, DocumentEntry]


def restrict(rows: QueryRows, access: DocumentAccess, outside: Outside, anchored: bool = False) -> QueryRows:
    """What the caller may see of a result: objects of the VIHF's patient only, and of its
    DocumentEntries those the policy shows (MASQUE_PS, INVISIBLE_PATIENT), every version judged
    by its document's latest; an association goes when either end is hidden, so that neither
    counts nor associations reveal a hidden document. In an `anchored` answer (QueryPlan), an
    entry no remaining association (or link) reaches goes too."""
    hidden = {row[0] for row in rows.entries() if row[1] != access.patient_id}
    documents = {row[0]: row[1] for row in rows.documents}
    for obj_id, found in outside.ends.items():
        if found is None or found[1] != access.patient_id:
            hidden.add(obj_id)
        elif found[0] == KIND_DOCUMENT_ENTRY:
            documents[obj_id] = found[1]
    hidden |= hidden_versions(access, documents, outside.latest)
    associations = [r for r in rows.associations if r[1] not in hidden and r[2] not in hidden]
    if anchored:
        links = [r for r in rows.links if r[1] not in hidden and r[2] not in hidden]
        reached = {end for r in [*associations, *links] for end in (r[1], r[2])}
        hidden |= {row[0] for row in rows.entries() if row[0] not in reached}
    return QueryRows(
        submission_sets=[r for r in rows.submission_sets if r[0] not in hidden],
        folders=[r for r in rows.folders if r[0] not in hidden],
        documents=[r for r in rows.documents if r[0] not in hidden],
        associations=associations,
    )


def outside_of(services: Services, rows: QueryRows) -> Outside:
    """`Outside` for these rows, in two lookups at most, whatever their number: the ends'
    kinds and patients, and the latest versions of all the documents involved."""
    known = {row[0] for row in rows.entries()}
    ends = {end for row in [*rows.associations, *rows.links] for end in (row[1], row[2]) if end not in known}
    objects = services.registry.existing_objects(ends) if ends else {}
    documents = [row[0] for row in rows.documents]
    documents += [obj_id for obj_id, (kind, _, _) in objects.items() if kind == KIND_DOCUMENT_ENTRY]
    return Outside(
        {end: (objects[end][0], objects[end][1]) if end in objects else None for end in ends},
        services.registry.latest_versions(documents),
    )


# The parameter naming the patient, in the stored queries that have one.
PATIENT_PARAMETERS = (v.P_DE_PATIENT_ID, v.P_SS_PATIENT_ID, v.P_FOLDER_PATIENT_ID, v.P_PATIENT_ID)


def vihf_patient_errors(query: StoredQuery, patient_of_caller: str) -> list[XdsError]:
    """An authenticated caller asks about the patient their VIHF names, and no other (as for
    submissions: XDSPatientIdDoesNotMatch). Queries by id name no patient: their answer is
    restricted to the VIHF's patient instead."""
    return [
        error(
            ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
            f"the query is about patient {patient}, but the VIHF of this request is about {patient_of_caller}",
            patient,
        )
        for name in PATIENT_PARAMETERS
        if (patient := query.text(name)) is not None and patient != patient_of_caller
    ]


def canonical_patients(services: Services, query: StoredQuery) -> StoredQuery:
    """The query with its patient parameters as the registry stores patient ids (under the
    CI-SIS profile, `INS^^^&OID&ISO^NH` is looked up as `INS^^^&OID&ISO`)."""
    values = dict(query.values)
    for name in PATIENT_PARAMETERS:
        if (patient := query.text(name)) is not None:
            values[name] = services.validators.patient_id(patient)
    return replace(query, values=values)


def stored_query(services: Services, request: TransactionRequest) -> TransactionResult:
    query = read_request(request.payload)
    if isinstance(query, list):
        return TransactionResult(query_response([], query))
    query = canonical_patients(services, query)
    own_community = services.settings.home_community_id
    unknown = check_community(query, own_community)
    if unknown:
        return TransactionResult(query_response([], unknown))
    access = request.access
    if access is not None:
        mismatch = vihf_patient_errors(query, access.patient_id)
        if mismatch:
            return TransactionResult(query_response([], mismatch))
        allowed = access.query(not query.leaf_class)
        if not allowed.allowed:
            refusal = error(ErrorCode.REGISTRY_ERROR, f"access refused: {allowed.reason}")
            return TransactionResult(query_response([], [refusal]), decisions=(allowed.reason,), denied=True)
    rows = visible_rows(services, query, access)
    if isinstance(rows, list):
        return TransactionResult(query_response([], rows))
    # ObjectRefs reveal no patient data: the single-patient rule is for LeafClass (NIST 12368).
    errors = check_single_patient(rows) if query.leaf_class else []
    if errors:
        return TransactionResult(query_response([], errors))
    return TransactionResult(
        query_response(with_home(render_objects(query, rows), own_community), []), touched=returned_documents(rows)
    )


def visible_rows(services: Services, query: StoredQuery, access: DocumentAccess | None) -> QueryRows | list[XdsError]:
    """The rows of a (checked) stored query that the caller may see, for ITI-18 and the
    professionals' web pages alike (`access` None: without authentication, all of them)."""
    # The trace names the documents returned by uniqueId, which an ObjectRef plan does not read.
    plan_query = replace(query, return_type=ReturnType.LEAF_CLASS) if access is not None else query
    plan = build_plan(plan_query)
    try:
        rows = run_plan(services.registry.engine, plan, services.settings.max_query_results, links=access is not None)
    except OperationalError as exc:
        return [database_failure(exc)]
    if isinstance(rows, list) or access is None:
        return rows
    return restrict(rows, access, outside_of(services, rows), plan.anchored)


def returned_documents(rows: QueryRows) -> tuple[str, ...]:
    """The documents an answer gives (for the access trace): uniqueIds from LeafClass rows,
    entryUUIDs from ObjectRef ones (which do not read the metadata)."""
    return tuple(dict.fromkeys(row[3].get("unique_id") or row[0] if len(row) > 3 else row[0] for row in rows.documents))
