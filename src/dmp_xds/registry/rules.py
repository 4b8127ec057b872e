"""XDS rules that depend on what the registry already holds (ITI TF-2b §3.42.4.1.3).

Run after `validation.xds.validate_submission` and after symbolic ids were replaced.
"""

from __future__ import annotations

from typing import Protocol

from dmp_xds.errors import ErrorCode, XdsError, error
from dmp_xds.model import Submission


class RegistryView(Protocol):
    def known_patients(self, patient_ids: list[str]) -> set[str]: ...
    def existing_unique_ids(self, unique_ids: list[str]) -> dict[str, str | None]: ...
    def existing_objects(self, uuids: list[str]) -> dict[str, tuple[str, str | None, str | None]]: ...


def check_against_registry(submission: Submission, registry: RegistryView) -> list[XdsError]:
    errors: list[XdsError] = []
    errors += _check_patients(submission, registry)
    errors += _check_unique_ids(submission, registry)
    errors += _check_references(submission, registry)
    return errors


def _check_patients(submission: Submission, registry: RegistryView) -> list[XdsError]:
    ss = submission.submission_set
    patients = {p for p in [ss.patient_id if ss else None, *(d.patient_id for d in submission.documents),
                            *(f.patient_id for f in submission.folders)] if p}
    known = registry.known_patients(sorted(patients))
    return [
        error(ErrorCode.UNKNOWN_PATIENT_ID, f"patient {p} is not known to the registry (no DMP for this patient)", p)
        for p in sorted(patients - known)
    ]


def _check_unique_ids(submission: Submission, registry: RegistryView) -> list[XdsError]:
    """A DocumentEntry may reuse a registered uniqueId only for the very same document (same hash)."""
    candidates = [d.unique_id for d in submission.documents if d.unique_id]
    candidates += [f.unique_id for f in submission.folders if f.unique_id]
    if submission.submission_set is not None and submission.submission_set.unique_id:
        candidates.append(submission.submission_set.unique_id)
    existing = registry.existing_unique_ids(candidates)
    errors: list[XdsError] = []
    for de in submission.documents:
        if de.unique_id in existing:
            registered_hash = existing[de.unique_id]
            if registered_hash is None or de.hash is None or registered_hash.lower() != de.hash.lower():
                errors.append(error(
                    ErrorCode.NON_IDENTICAL_HASH if registered_hash else ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY,
                    f"DocumentEntry {de.entry_uuid}: uniqueId {de.unique_id} is already registered"
                    + (" for a document with another hash" if registered_hash else " for another object"),
                    de.unique_id,
                ))
    others = [(f"Folder {f.entry_uuid}", f.unique_id) for f in submission.folders]
    if submission.submission_set is not None:
        others.append((f"SubmissionSet {submission.submission_set.entry_uuid}", submission.submission_set.unique_id))
    for label, unique_id in others:
        if unique_id in existing:
            errors.append(error(ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY,
                                f"{label}: uniqueId {unique_id} is already registered", unique_id))
    return errors


def _check_references(submission: Submission, registry: RegistryView) -> list[XdsError]:
    in_message = set(submission.all_ids())
    already = [obj_id for obj_id in in_message if obj_id.startswith("urn:uuid:")]
    referenced = {ref for a in submission.associations for ref in (a.source, a.target) if ref}
    outside = sorted(referenced - in_message)
    found = registry.existing_objects(outside + already)
    errors: list[XdsError] = []
    for obj_id in already:
        if obj_id in found:
            errors.append(error(ErrorCode.REGISTRY_METADATA_ERROR,
                                f"id {obj_id} is already used by a registered object", obj_id))
    ss = submission.submission_set
    patient = ss.patient_id if ss else None
    for assoc in submission.associations:
        for ref in (assoc.source, assoc.target):
            if not ref or ref in in_message:
                continue
            if ref not in found:
                errors.append(error(ErrorCode.UNRESOLVED_REFERENCE,
                                    f"Association {assoc.entry_uuid} refers to {ref}, which is neither in the "
                                    "message nor in the registry", assoc.entry_uuid))
                continue
            kind, ref_patient, _status = found[ref]
            if patient and ref_patient and ref_patient != patient:
                errors.append(error(ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
                                    f"Association {assoc.entry_uuid}: {kind} {ref} belongs to patient {ref_patient}, "
                                    f"the submission to {patient}", assoc.entry_uuid))
    return errors
