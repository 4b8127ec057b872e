"""ITI-62 Delete Document Set (Document Registry, Metadata Update / Remove Metadata).

The request is an `lcm:RemoveObjectsRequest` whose `rim:ObjectRefList` names the
DocumentEntries, SubmissionSets, Folders and Associations to delete (ITI TF-2b §3.62.4.1.2:
no AdhocQuery, the default deletion scope). Every object named is deleted, or none.

decode → registry snapshot → pure rules (registry.delete_rules) → one store transaction
(storage/store.py delete_objects, with one lifecycle event per deleted object and the caller) →
the repository's files of the documents no entry refers to any more, removed after the commit.
An authenticated caller deletes only from their VIHF's record, and a document only when the DMP
policy lets them (services/rights.py: the patient, or the document's author).
"""

from __future__ import annotations

import logging

from lxml import etree
from sqlalchemy.exc import OperationalError

from dmp_xds.dmp.policy import Action
from dmp_xds.services.context import Services, TransactionRequest, TransactionResult
from dmp_xds.services.gate import DocumentAccess
from dmp_xds.services.register import actor_of, database_failure
from dmp_xds.services.rights import Outcome, hidden_objects, judge
from dmp_xds.storage.blobstore import BlobStoreError
from dmp_xds.storage.lifecycle import Change
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.errors import ErrorCode, XdsError, XdsFailure, error
from dmp_xds.xds.model import KIND_ASSOCIATION, KIND_DOCUMENT_ENTRY, DocumentEntry
from dmp_xds.xds.registry.delete_rules import DeleteSnapshot, plan_delete

log = logging.getLogger(__name__)

TRANSACTION = "ITI-62"


def delete_document_set(services: Services, request: TransactionRequest) -> TransactionResult:
    ids, errors = decode_remove_objects_request(request.payload)
    if errors:
        return Outcome(errors).result()
    return delete(services, ids, actor_of(request.principal), request.access).result()


def decode_remove_objects_request(payload: etree._Element) -> tuple[list[str], list[XdsError]]:
    """The ids of the ObjectRefList, in order; or why the request is not a deletion we make."""
    if payload.tag != v.TAG_REMOVE_OBJECTS_REQUEST:
        return [], [
            error(ErrorCode.REGISTRY_METADATA_ERROR, f"ITI-62 expects lcm:RemoveObjectsRequest, not {payload.tag}")
        ]
    if payload.find(v.TAG_ADHOC_QUERY) is not None:
        return [], [
            error(
                ErrorCode.REGISTRY_METADATA_ERROR,
                "ITI-62 names the objects to delete in an ObjectRefList, never by an AdhocQuery",
            )
        ]
    scope = payload.get("deletionScope", v.DELETION_SCOPE_DELETE_ALL)
    if scope != v.DELETION_SCOPE_DELETE_ALL:
        return [], [
            error(
                ErrorCode.REGISTRY_METADATA_ERROR,
                f"deletionScope {scope} is not supported: ITI-62 deletes the objects themselves",
            )
        ]
    refs = payload.find(v.TAG_OBJECT_REF_LIST)
    if refs is None:
        return [], [error(ErrorCode.REGISTRY_METADATA_ERROR, "RemoveObjectsRequest without an ObjectRefList")]
    ids = [ref.get("id", "").strip() for ref in refs.iter(v.TAG_OBJECT_REF)]
    if not all(ids):
        return [], [error(ErrorCode.REGISTRY_METADATA_ERROR, "an ObjectRef without an id")]
    return ids, []


def delete(
    services: Services, ids: list[str], actor: str | None = None, access: DocumentAccess | None = None
) -> Outcome:
    """Check and carry out one deletion (nothing is deleted if there are any errors)."""
    snapshot = services.registry.delete_snapshot(ids)
    outcome = Outcome()
    if access is not None:
        snapshot, entries = _as_seen_by(services, access, snapshot, ids)
        outcome = judge(
            access,
            [
                (entries[uuid], Action.DELETE)
                for uuid in dict.fromkeys(ids)
                if snapshot.kinds.get(uuid) == KIND_DOCUMENT_ENTRY
            ],
        )
    plan, errors = plan_delete(ids, snapshot)
    if plan is None:
        return Outcome(errors)
    if outcome.denied:
        return outcome
    try:
        paths = services.registry.delete_objects(plan, Change(TRANSACTION, actor))
    except XdsFailure as failure:
        return Outcome(failure.errors, decisions=outcome.decisions)
    except OperationalError as exc:
        return Outcome([database_failure(exc)], decisions=outcome.decisions)
    # After the commit, never before: a crash between the two leaves a file nothing refers to
    # (wasted space), never a registry row naming a file that is gone.
    for path in paths:
        try:
            services.blobs.remove(path)
        except BlobStoreError as exc:
            log.error("document file %s not removed after its deletion: %s", path, exc)
    return outcome


def _as_seen_by(
    services: Services, access: DocumentAccess, snapshot: DeleteSnapshot, ids: list[str]
) -> tuple[DeleteSnapshot, dict[str, DocumentEntry]]:
    """The snapshot without the requested objects the caller may not see (the rules then answer
    them as unregistered), and the requested DocumentEntries. An association is hidden when one
    of its ends is."""
    requested = [uuid for uuid in dict.fromkeys(ids) if uuid in snapshot.kinds]
    info = services.registry.existing_objects(
        requested
        + [
            end
            for uuid in requested
            if uuid in snapshot.links
            for end in (snapshot.links[uuid].source, snapshot.links[uuid].target)
        ]
    )
    hidden, entries = hidden_objects(
        services, access, {uuid: (kind, patient) for uuid, (kind, patient, _) in info.items()}
    )
    hidden |= {
        uuid
        for uuid in requested
        if snapshot.kinds[uuid] == KIND_ASSOCIATION
        and uuid in snapshot.links
        and {snapshot.links[uuid].source, snapshot.links[uuid].target} & hidden
    }
    gone = hidden & set(requested)
    if not gone:
        return snapshot, entries
    return DeleteSnapshot(
        {uuid: kind for uuid, kind in snapshot.kinds.items() if uuid not in gone}, snapshot.links
    ), entries
