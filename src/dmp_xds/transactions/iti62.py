"""ITI-62 Delete Document Set (Document Registry, Metadata Update / Remove Metadata).

The request is an `lcm:RemoveObjectsRequest` whose `rim:ObjectRefList` names the
DocumentEntries, SubmissionSets, Folders and Associations to delete (ITI TF-2b §3.62.4.1.2:
no AdhocQuery, the default deletion scope). Every object named is deleted, or none.

decode → registry snapshot → pure rules (registry.delete_rules) → one store transaction
(registry.store.delete_objects, with one lifecycle event per deleted object and the caller) →
the repository's files of the documents no entry refers to any more, removed after the commit.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lxml import etree
from sqlalchemy.exc import OperationalError

from dmp_xds.ebrim import vocabulary as v
from dmp_xds.errors import ErrorCode, XdsError, XdsFailure, error
from dmp_xds.registry.delete_rules import plan_delete
from dmp_xds.registry.lifecycle import Change
from dmp_xds.transactions.context import Services, TransactionRequest, TransactionResult
from dmp_xds.transactions.register import actor_of, registry_response

log = logging.getLogger(__name__)

TRANSACTION = "ITI-62"


def delete_document_set(services: Services, request: TransactionRequest) -> TransactionResult:
    ids, errors = decode_remove_objects_request(request.payload)
    if not errors:
        errors = delete(services, ids, actor_of(request.principal))
    return TransactionResult(registry_response(errors))


def decode_remove_objects_request(payload: etree._Element) -> tuple[list[str], list[XdsError]]:
    """The ids of the ObjectRefList, in order; or why the request is not a deletion we make."""
    if payload.tag != v.TAG_REMOVE_OBJECTS_REQUEST:
        return [], [error(ErrorCode.REGISTRY_METADATA_ERROR,
                          f"ITI-62 expects lcm:RemoveObjectsRequest, not {payload.tag}")]
    if payload.find(v.TAG_ADHOC_QUERY) is not None:
        return [], [error(ErrorCode.REGISTRY_METADATA_ERROR,
                          "ITI-62 names the objects to delete in an ObjectRefList, never by an AdhocQuery")]
    scope = payload.get("deletionScope", v.DELETION_SCOPE_DELETE_ALL)
    if scope != v.DELETION_SCOPE_DELETE_ALL:
        return [], [error(ErrorCode.REGISTRY_METADATA_ERROR,
                          f"deletionScope {scope} is not supported: ITI-62 deletes the objects themselves")]
    refs = payload.find(v.TAG_OBJECT_REF_LIST)
    if refs is None:
        return [], [error(ErrorCode.REGISTRY_METADATA_ERROR, "RemoveObjectsRequest without an ObjectRefList")]
    ids = [ref.get("id", "").strip() for ref in refs.iter(v.TAG_OBJECT_REF)]
    if not all(ids):
        return [], [error(ErrorCode.REGISTRY_METADATA_ERROR, "an ObjectRef without an id")]
    return ids, []


def delete(services: Services, ids: list[str], actor: str | None = None) -> list[XdsError]:
    """Check and carry out one deletion; its errors (nothing is deleted if there are any)."""
    plan, errors = plan_delete(ids, services.registry.delete_snapshot(ids))
    if plan is None:
        return errors
    try:
        paths = services.registry.delete_objects(plan, Change(TRANSACTION, actor))
    except XdsFailure as failure:
        return failure.errors
    except OperationalError as exc:
        log.warning("registry busy: %s", exc.orig)
        return [error(ErrorCode.REGISTRY_BUSY, "the registry database is busy; retry later")]
    # After the commit, never before: a crash between the two leaves a file nothing refers to
    # (wasted space), never a registry row naming a file that is gone.
    for path in paths:
        try:
            services.blobs.remove(Path(path))
        except OSError as exc:
            log.error("document file %s not removed after its deletion: %s", path, exc)
    return []
