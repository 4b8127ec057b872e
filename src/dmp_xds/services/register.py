"""The registration steps shared by ITI-42 and ITI-41: check, then store atomically.

ITI-42 runs both (`register_submission`). ITI-41 runs them in a straight line with its own step
between them: once `check_submission` passed, it makes its documents durable (no database lock
is held while the disk works), then `store_submission` writes the registry metadata and the
repository's rows in one database transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from lxml import etree
from sqlalchemy.exc import IntegrityError, OperationalError

from dmp_xds.services.context import Services
from dmp_xds.storage.lifecycle import Change
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.encode import encode_registry_response
from dmp_xds.xds.errors import ErrorCode, XdsError, XdsFailure, error
from dmp_xds.xds.model import StoredDocument, Submission
from dmp_xds.xds.model.ids import assign_entry_uuids
from dmp_xds.xds.registry.rules import (
    RegistrySnapshot,
    check_against_registry,
    diagnose_conflict,
    snapshot_request,
    unexplained_conflict,
)
from dmp_xds.xds.validation.xds import Transaction

log = logging.getLogger(__name__)

# A store refused by a constraint that what is registered then does not explain (the same
# document registered concurrently) is tried again, once.
STORE_ATTEMPTS = 2


class StoreRaced(Exception):
    """The database refused a store, and what it holds afterwards (`snapshot`) explains nothing:
    the same document was registered concurrently."""

    def __init__(self, snapshot: RegistrySnapshot) -> None:
        super().__init__("the same submission was registered concurrently")
        self.snapshot = snapshot


def now_dtm() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


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
        folder.logical_id = (
            folder.logical_id if folder.logical_id and folder.logical_id.startswith("urn:uuid:") else folder.entry_uuid
        )
        folder.version = "1"
    for assoc in submission.associations:
        assoc.status = v.STATUS_APPROVED


def caller_patient_errors(patient_ids: Sequence[str], patient_of_caller: str | None) -> list[XdsError]:
    """An authenticated caller submits to the record their VIHF names, and to no other."""
    if patient_of_caller is None:
        return []
    return [
        error(
            ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
            f"the submission is for patient {p}, but the VIHF of this request is about {patient_of_caller}",
            p,
        )
        for p in patient_ids
        if p != patient_of_caller
    ]


def check_submission(
    services: Services, submission: Submission, transaction: Transaction, patient_of_caller: str | None = None
) -> tuple[list[XdsError], RegistrySnapshot | None]:
    """Every check of a submission, in order: its errors (warnings too), and what the registry
    holds for it when it passed them all (None otherwise). A submission that passes gets the
    values the registry sets itself (entryUUIDs, status, versions), ready to be stored."""
    # The IHE rules, and the CI-SIS profile when the deployment has it on.
    errors = services.validators.metadata_errors(submission, transaction)
    if any(e.is_error for e in errors):
        return errors, None
    assign_entry_uuids(submission)
    wanted = snapshot_request(submission)
    errors += caller_patient_errors(wanted.patient_ids, patient_of_caller)
    if any(e.is_error for e in errors):
        return errors, None
    try:
        snapshot = services.registry.snapshot(wanted.patient_ids, wanted.unique_ids, wanted.referenced_ids)
    except OperationalError as exc:
        return errors + [database_failure(exc)], None
    errors += check_against_registry(submission, snapshot)
    if any(e.is_error for e in errors):
        return errors, None
    apply_registry_values(submission, now_dtm())
    return errors, snapshot


def store_submission(
    services: Services,
    submission: Submission,
    transaction: Transaction,
    repository_documents: Sequence[StoredDocument] = (),
    actor: str | None = None,
) -> list[XdsError]:
    """Store a checked submission, with the repository's rows of its documents (ITI-41), in one
    database transaction; the errors if that fails (then nothing is stored). StoreRaced when
    the database refused it and nothing it holds explains why: the same document was registered
    concurrently, and the submission is to be stored again as if it had come second.

    `actor` names the caller in the history of what the submission changes in stored metadata
    (replacements, folders).
    """
    try:
        services.registry.store_submission(
            submission, list(repository_documents), change=Change(transaction.value, actor)
        )
    except XdsFailure as failure:
        return failure.errors
    except IntegrityError as exc:
        # An id the source chose is already registered, or two submissions raced for the same
        # uniqueId: read the message's own ids again to say which.
        log.info("submission refused by a database constraint: %s", exc.orig)
        fresh = services.registry.snapshot([], snapshot_request(submission).unique_ids, submission.all_ids())
        conflicts = diagnose_conflict(submission, fresh)
        if conflicts:
            return conflicts
        raise StoreRaced(fresh) from exc
    except OperationalError as exc:
        return [database_failure(exc)]
    return []


def database_failure(exc: OperationalError) -> XdsError:
    """What to answer when the database could not do its part: XDSRegistryNotAvailable when it
    (or, on Citus, one of its nodes) cannot be reached, XDSRegistryBusy otherwise (locked,
    deadlock, timeout). Either way the transaction was rolled back: nothing is stored."""
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    if exc.connection_invalidated or sqlstate.startswith("08"):  # SQLSTATE class 08: connection exception
        log.warning("registry database unreachable: %s", exc.orig)
        return error(ErrorCode.REGISTRY_NOT_AVAILABLE, "the registry database is unreachable; retry later")
    log.warning("registry busy: %s", exc.orig)
    return error(ErrorCode.REGISTRY_BUSY, "the registry database is busy; retry later")


def register_submission(
    services: Services,
    submission: Submission,
    transaction: Transaction,
    actor: str | None = None,
    patient_of_caller: str | None = None,
) -> list[XdsError]:
    """Check and store a submission of metadata alone (ITI-42); its errors (nothing is stored
    if there are any)."""
    errors, snapshot = check_submission(services, submission, transaction, patient_of_caller)
    if snapshot is None:
        return errors
    for _attempt in range(STORE_ATTEMPTS):
        try:
            return errors + store_submission(services, submission, transaction, actor=actor)
        except StoreRaced:
            continue
    return errors + [unexplained_conflict()]


def registry_response(errors: Sequence[XdsError]) -> etree._Element:
    status = v.RESPONSE_FAILURE if any(e.is_error for e in errors) else v.RESPONSE_SUCCESS
    return encode_registry_response(status, list(errors))
