"""ITI-57 Update Document Set (Document Registry, Metadata Update option).

One message may hold several operations (ITI TF-2b §3.57.4.1.3.3): new versions of
DocumentEntries and Folders (masking and unmasking a DMP document is a new version with another
confidentialityCode), availability status changes (Approved, Deprecated and the DMP's Archived),
and new associations between registered objects. All of them are stored, or none.

decode → message rules (validation.xds.validate_update) → ids → registry snapshot → pure rules
(xds/registry/update_rules.py) → one store transaction (storage/store.py store_update), which
records every change with the caller in the lifecycle history. An authenticated caller changes only
their VIHF's record, and of it only what the DMP policy lets them change, document by
document (services/rights.py): masking, unmasking, other new versions, status (archiving).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy.exc import IntegrityError, OperationalError

from dmp_xds.dmp.policy import Action
from dmp_xds.services.context import Services, TransactionRequest, TransactionResult
from dmp_xds.services.gate import DocumentAccess
from dmp_xds.services.register import actor_of, caller_patient_errors, database_failure, now_dtm, registry_response
from dmp_xds.services.rights import Outcome, hidden_objects, judge, masking_action, status_action
from dmp_xds.storage.lifecycle import Change
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.decode import EbrimDecodeError, decode_submit_objects_request
from dmp_xds.xds.errors import ErrorCode, XdsFailure, error
from dmp_xds.xds.model import KIND_DOCUMENT_ENTRY, DocumentEntry, Folder, Submission
from dmp_xds.xds.model.ids import assign_entry_uuids
from dmp_xds.xds.registry.update_rules import UpdatePlan, UpdateSnapshot, plan_update, snapshot_ids
from dmp_xds.xds.validation.xds import validate_update

log = logging.getLogger(__name__)

TRANSACTION = "ITI-57"


def update_document_set(services: Services, request: TransactionRequest) -> TransactionResult:
    if request.payload.tag != v.TAG_SUBMIT_OBJECTS_REQUEST:
        return TransactionResult(
            registry_response(
                [
                    error(
                        ErrorCode.REGISTRY_METADATA_ERROR,
                        f"ITI-57 expects lcm:SubmitObjectsRequest, not {request.payload.tag}",
                    )
                ]
            )
        )
    try:
        submission = decode_submit_objects_request(request.payload)
    except EbrimDecodeError as exc:
        return TransactionResult(registry_response([error(ErrorCode.REGISTRY_METADATA_ERROR, str(exc))]))
    return update(services, submission, actor_of(request.principal), request.access).result()


def update(
    services: Services, submission: Submission, actor: str | None = None, access: DocumentAccess | None = None
) -> Outcome:
    """Check and store one update (nothing is stored if there are any errors)."""
    normalize(submission)
    errors = services.validators.read_patient_ids(submission, ErrorCode.REGISTRY_METADATA_ERROR)
    errors = errors or validate_update(submission)
    if errors:
        return Outcome(errors)
    assign_entry_uuids(submission)
    logical_ids, ends, patients = snapshot_ids(submission)
    if access is not None:
        errors = caller_patient_errors(patients, access.patient_id)
        if errors:
            return Outcome(errors)
    snapshot = services.registry.update_snapshot(logical_ids, ends, patients)
    entries: dict[str, DocumentEntry] = {}
    if access is not None:
        snapshot, entries = _as_seen_by(services, access, snapshot)
    plan, errors = plan_update(submission, snapshot)
    if errors:
        return Outcome(errors)
    outcome = Outcome()
    if access is not None:
        outcome = judge(access, _document_changes(plan, entries))
        if outcome.denied:
            return outcome
    apply_registry_values(submission, plan)
    try:
        services.registry.store_update(submission, plan, Change(TRANSACTION, actor))
    except XdsFailure as failure:
        return replace(outcome, errors=failure.errors)
    except IntegrityError as exc:
        # The unique (logical_id, version) index: a concurrent update made the same version.
        log.info("update refused by a database constraint: %s", exc.orig)
        return replace(
            outcome,
            errors=[
                error(
                    ErrorCode.METADATA_VERSION_ERROR,
                    "another update of the same object was registered concurrently, or an id is reused",
                )
            ],
        )
    except OperationalError as exc:
        return replace(outcome, errors=[database_failure(exc)])
    return outcome


def _as_seen_by(
    services: Services, access: DocumentAccess, snapshot: UpdateSnapshot
) -> tuple[UpdateSnapshot, dict[str, DocumentEntry]]:
    """The snapshot without what the caller may not see (answered as unknown by the rules), and
    the stored DocumentEntries it holds."""
    stored = {**{o.entry_uuid: o for o in snapshot.latest.values()}, **snapshot.objects}
    hidden, entries = hidden_objects(services, access, {u: (o.kind, o.patient_id) for u, o in stored.items()})
    if not hidden:
        return snapshot, entries
    return replace(
        snapshot,
        latest={k: o for k, o in snapshot.latest.items() if o.entry_uuid not in hidden},
        objects={k: o for k, o in snapshot.objects.items() if k not in hidden},
    ), entries


def _document_changes(plan: UpdatePlan, entries: dict[str, DocumentEntry]) -> list[tuple[DocumentEntry, Action]]:
    """Each stored DocumentEntry the plan changes, and how (the policy's action)."""
    changes: list[tuple[DocumentEntry, Action]] = []
    for version in plan.versions:
        if isinstance(version.obj, DocumentEntry):
            before = entries[version.previous.entry_uuid]
            changes.append((before, masking_action(before, version.obj)))
    for change in plan.status_changes:
        if change.target.kind == KIND_DOCUMENT_ENTRY:
            changes.append((entries[change.target.entry_uuid], status_action(change.new)))
    return changes


def normalize(submission: Submission) -> None:
    """The trial-implementation spelling of the SubmissionSet's link to a submitted
    association becomes the HasMember of the final text."""
    ss = submission.submission_set
    for assoc in submission.associations:
        if assoc.association_type == v.SUBMIT_ASSOCIATION and ss is not None and assoc.source == ss.entry_uuid:
            assoc.association_type = v.HAS_MEMBER


def apply_registry_values(submission: Submission, plan: UpdatePlan) -> None:
    """A new version is numbered after the latest and takes its availability status (which
    the previous version gives up for Deprecated); the registry's objects are Approved."""
    if submission.submission_set is not None:
        submission.submission_set.status = v.STATUS_APPROVED
    for version in plan.versions:
        version.obj.version = str((version.previous.version or 0) + 1)
        version.obj.status = version.previous.status
        if isinstance(version.obj, Folder):
            version.obj.last_update_time = now_dtm()
    for assoc in submission.associations:
        assoc.status = v.STATUS_APPROVED
