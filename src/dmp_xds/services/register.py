"""The registration pipeline shared by ITI-42 and ITI-41: validate, resolve, store atomically.

ITI-41 calls it in-process with the documents it has written: the registry metadata, the
repository's rows and the publication of the files happen in one database transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from lxml import etree
from sqlalchemy.exc import IntegrityError, OperationalError

from dmp_xds.xds.ebrim import vocabulary as v
from dmp_xds.xds.ebrim.encode import encode_registry_response
from dmp_xds.xds.errors import ErrorCode, XdsError, XdsFailure, error
from dmp_xds.xds.model import StoredDocument, Submission
from dmp_xds.xds.model.ids import assign_entry_uuids
from dmp_xds.storage.lifecycle import Change
from dmp_xds.xds.registry.rules import RegistrySnapshot
from dmp_xds.xds.registry.rules import check_against_registry, diagnose_conflict, snapshot_request
from dmp_xds.services.context import Services
from dmp_xds.xds.validation.xds import Transaction

log = logging.getLogger(__name__)


def now_dtm() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")


def actor_of(principal: object | None) -> str | None:
    """Who to name in the metadata history: the authenticated caller's national id (or INS),
    None when the deployment runs without authentication."""
    user_id = getattr(principal, "user_id", None)
    return user_id if isinstance(user_id, str) else None


def apply_registry_values(submission: Submission, now: str) -> None:
    """Attributes the registry sets itself, whatever the source sent (ITI TF-3 §4.2.3)."""
    if submission.submission_set is not None:
        submission.submission_set.status = v.STATUS_APPROVED
    for de in submission.documents:
        de.status = v.STATUS_APPROVED
        de.logical_id = de.logical_id if de.logical_id and de.logical_id.startswith("urn:uuid:") else de.entry_uuid
        de.version = "1"
    for folder in submission.folders:
        folder.status = v.STATUS_APPROVED
        folder.last_update_time = now
        folder.logical_id = folder.logical_id if folder.logical_id and folder.logical_id.startswith("urn:uuid:") else folder.entry_uuid
        folder.version = "1"
    for assoc in submission.associations:
        assoc.status = v.STATUS_APPROVED


def caller_patient_errors(patient_ids: Sequence[str], patient_of_caller: str | None) -> list[XdsError]:
    """An authenticated caller submits to the record their VIHF names, and to no other."""
    if patient_of_caller is None:
        return []
    return [error(ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
                  f"the submission is for patient {p}, but the VIHF of this request is about {patient_of_caller}", p)
            for p in patient_ids if p != patient_of_caller]


def register_submission(
    services: Services,
    submission: Submission,
    transaction: Transaction,
    before_store: Callable[[RegistrySnapshot], Sequence[StoredDocument]] | None = None,
    actor: str | None = None,
    patient_of_caller: str | None = None,
) -> list[XdsError]:
    """Validate and store a submission; return its errors (nothing is stored if there are any).

    `actor` names the caller in the history of what the submission changes in stored
    metadata (replacements, folders); `before_store` is the repository's part (ITI-41): it runs once every check has passed,
    just before the database transaction, with what the registry holds; it makes the documents
    durable (no database lock is held while the disk works) and returns the repository rows to
    insert with the metadata. If the store then fails, the caller removes what it did.
    """
    # The IHE rules, and the CI-SIS profile when the deployment has it on.
    errors = services.validators.metadata_errors(submission, transaction)
    if any(e.is_error for e in errors):
        return errors
    assign_entry_uuids(submission)
    wanted = snapshot_request(submission)
    errors += caller_patient_errors(wanted.patient_ids, patient_of_caller)
    if any(e.is_error for e in errors):
        return errors
    snapshot = services.registry.snapshot(wanted.patient_ids, wanted.unique_ids, wanted.referenced_ids)
    errors += check_against_registry(submission, snapshot)
    if any(e.is_error for e in errors):
        return errors
    apply_registry_values(submission, now_dtm())
    repository_documents = before_store(snapshot) if before_store is not None else ()
    try:
        services.registry.store_submission(submission, list(repository_documents),
                                           change=Change(transaction.value, actor))
    except XdsFailure as failure:
        return errors + failure.errors
    except IntegrityError as exc:
        # An id the source chose is already registered, or two submissions raced for the same
        # uniqueId: read the message's own ids again to say which.
        log.info("submission refused by a database constraint: %s", exc.orig)
        fresh = services.registry.snapshot([], wanted.unique_ids, submission.all_ids())
        return errors + diagnose_conflict(submission, fresh)
    except OperationalError as exc:
        log.warning("registry busy: %s", exc.orig)
        return errors + [error(ErrorCode.REGISTRY_BUSY, "the registry database is busy; retry later")]
    return errors


def registry_response(errors: Sequence[XdsError]) -> etree._Element:
    status = v.RESPONSE_FAILURE if any(e.is_error for e in errors) else v.RESPONSE_SUCCESS
    return encode_registry_response(status, list(errors))
