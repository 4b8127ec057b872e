"""ITI-57 Update Document Set rules against what the registry holds (ITI TF-2b §3.57.4.1.3).

Pure: `plan_update` takes the message (validated by `validation.xds.validate_update`, ids
assigned) and an `UpdateSnapshot`, and returns the plan the store carries out in one
transaction, or the errors. The store guards the same preconditions in SQL (`WHERE is_latest`,
`WHERE status = original`), so a concurrent update cannot slip between the read and the write.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.errors import ErrorCode, XdsError, error
from dmp_xds.xds.model import (
    KIND_DOCUMENT_ENTRY,
    KIND_FOLDER,
    KIND_SUBMISSION_SET,
    Association,
    DocumentEntry,
    Folder,
    Submission,
)


@dataclass(frozen=True)
class StoredObject:
    kind: str
    entry_uuid: str
    status: str
    patient_id: str | None = None  # None for an Association
    logical_id: str | None = None
    version: int | None = None
    is_latest: bool = True
    unique_id: str | None = None
    object_type: str | None = None
    linked: bool = False  # in a folder, or related to another document (patient change check)


@dataclass(frozen=True)
class UpdateSnapshot:
    known_patients: frozenset[str]
    latest: dict[str, StoredObject]  # logical id -> latest version (DocumentEntry, Folder)
    objects: dict[str, StoredObject]  # entryUUID -> stored object, for association ends
    links: frozenset[tuple[str, str, str]]  # (type, source, target) of stored associations among them


@dataclass
class NewVersion:
    obj: DocumentEntry | Folder
    previous: StoredObject
    propagate: bool  # copy the previous version's folder memberships (AssociationPropagation)


@dataclass
class StatusChange:
    association: Association
    target: StoredObject
    original: str
    new: str


@dataclass
class UpdatePlan:
    versions: list[NewVersion] = field(default_factory=list)
    status_changes: list[StatusChange] = field(default_factory=list)


def _versioned(submission: Submission) -> list[DocumentEntry | Folder]:
    """The objects of a submission that have versions."""
    return [*submission.documents, *submission.folders]


def snapshot_ids(submission: Submission) -> tuple[list[str], list[str], list[str]]:
    """(logical ids, association ends outside the message, patients) to read for an update."""
    logical_ids = [o.logical_id for o in _versioned(submission) if o.logical_id]
    in_message = set(submission.all_ids())
    ends = sorted(
        {ref for a in submission.associations for ref in (a.source, a.target) if ref and ref not in in_message}
    )
    ss = submission.submission_set
    patients = [p for p in [ss.patient_id if ss else None, *(o.patient_id for o in _versioned(submission))] if p]
    return logical_ids, ends, sorted(set(patients))


def plan_update(submission: Submission, snapshot: UpdateSnapshot) -> tuple[UpdatePlan, list[XdsError]]:
    ss = submission.submission_set
    assert ss is not None  # validated
    plan = UpdatePlan()
    errors: list[XdsError] = []
    for patient in sorted({p for p in [ss.patient_id] if p} - snapshot.known_patients):
        errors.append(error(ErrorCode.UNKNOWN_PATIENT_ID, f"patient {patient} is not known to the registry", patient))
    links = {
        a.target: a for a in submission.associations if a.association_type == v.HAS_MEMBER and a.source == ss.entry_uuid
    }
    for obj in _versioned(submission):
        version, problems = _new_version(obj, links.get(obj.entry_uuid), snapshot)
        errors += problems
        if version is not None:
            plan.versions.append(version)
    new_ids = {o.entry_uuid for o in _versioned(submission)}
    for assoc in submission.associations:
        if assoc.association_type == v.UPDATE_AVAILABILITY_STATUS:
            change, problems = _status_change(assoc, ss.patient_id, snapshot)
            errors += problems
            if change is not None:
                plan.status_changes.append(change)
        elif assoc.source != ss.entry_uuid:
            errors += _new_association(assoc, ss.patient_id, new_ids, snapshot)
    return plan, errors


def _new_version(
    obj: DocumentEntry | Folder, link: Association | None, snapshot: UpdateSnapshot
) -> tuple[NewVersion | None, list[XdsError]]:
    kind = KIND_DOCUMENT_ENTRY if isinstance(obj, DocumentEntry) else KIND_FOLDER
    label = f"{kind} {obj.entry_uuid} (logical id {obj.logical_id})"
    previous = snapshot.latest.get(obj.logical_id or "")
    if previous is None or previous.kind != kind:
        # NIST 15800b: no registered object to make a new version of.
        return None, [
            error(
                ErrorCode.METADATA_VERSION_ERROR, f"{label}: no registered {kind} has this logical id", obj.entry_uuid
            )
        ]
    stated = link.slots.get(v.SLOT_PREVIOUS_VERSION, [""])[0] if link is not None else ""
    errors: list[XdsError] = []
    if stated != str(previous.version):
        # NIST 15800e, 20000c: the source did not update the latest version.
        errors.append(
            error(
                ErrorCode.METADATA_VERSION_ERROR,
                f"{label}: PreviousVersion {stated} is not the latest version ({previous.version})",
                obj.entry_uuid,
            )
        )
    if previous.status == v.STATUS_DELETED:
        errors.append(
            error(
                ErrorCode.METADATA_UPDATE_ERROR,
                f"{label}: the {kind} is deleted, and a deletion is final",
                obj.entry_uuid,
            )
        )
    if obj.unique_id != previous.unique_id:
        errors.append(
            error(
                ErrorCode.METADATA_UPDATE_ERROR,
                f"{label}: uniqueId {obj.unique_id} differs from the registered {previous.unique_id}; "
                "a new version keeps the uniqueId",
                obj.entry_uuid,
            )
        )
    if isinstance(obj, DocumentEntry) and obj.object_type != previous.object_type:
        errors.append(
            error(
                ErrorCode.METADATA_UPDATE_ERROR, f"{label}: objectType cannot change in a new version", obj.entry_uuid
            )
        )
    if obj.patient_id != previous.patient_id:
        if previous.linked:
            # A document in a folder or related to others cannot move alone to another patient.
            errors.append(
                error(
                    ErrorCode.PATIENT_ID_RECONCILIATION_ERROR,
                    f"{label}: patientId {obj.patient_id} differs from the registered "
                    f"{previous.patient_id}, and the object is associated with others",
                    obj.entry_uuid,
                )
            )
        elif obj.patient_id not in snapshot.known_patients:
            errors.append(
                error(
                    ErrorCode.UNKNOWN_PATIENT_ID,
                    f"{label}: patient {obj.patient_id} is not known to the registry",
                    obj.entry_uuid,
                )
            )
    propagate = link is None or link.slots.get(v.SLOT_ASSOCIATION_PROPAGATION) != ["no"]
    return (NewVersion(obj, previous, propagate) if not errors else None), errors


def _status_change(
    assoc: Association, patient: str | None, snapshot: UpdateSnapshot
) -> tuple[StatusChange | None, list[XdsError]]:
    label = f"Association {assoc.entry_uuid}"
    target = snapshot.objects.get(assoc.target)
    if target is None:
        return None, [
            error(
                ErrorCode.UNRESOLVED_REFERENCE,
                f"{label}: UpdateAvailabilityStatus of {assoc.target}, which is not registered",
                assoc.entry_uuid,
            )
        ]
    if target.kind == KIND_SUBMISSION_SET:
        # NIST 21001.
        return None, [
            error(
                ErrorCode.METADATA_UPDATE_ERROR,
                f"{label}: the availability status of a SubmissionSet cannot be updated",
                assoc.entry_uuid,
            )
        ]
    errors: list[XdsError] = []
    if not target.is_latest:
        # NIST 15802b.
        errors.append(
            error(
                ErrorCode.METADATA_VERSION_ERROR,
                f"{label}: {target.kind} {target.entry_uuid} is version {target.version}, not the latest",
                assoc.entry_uuid,
            )
        )
    original = assoc.slots[v.SLOT_ORIGINAL_STATUS][0]
    new = assoc.slots[v.SLOT_NEW_STATUS][0]
    if original != target.status:
        errors.append(
            error(
                ErrorCode.METADATA_UPDATE_ERROR,
                f"{label}: OriginalStatus {original} is not the status of {target.entry_uuid} ({target.status})",
                assoc.entry_uuid,
            )
        )
    elif target.status == v.STATUS_DELETED:
        errors.append(
            error(
                ErrorCode.METADATA_UPDATE_ERROR,
                f"{label}: {target.kind} {target.entry_uuid} is deleted, and a deletion is final",
                assoc.entry_uuid,
            )
        )
    if patient and target.patient_id and target.patient_id != patient:
        errors.append(
            error(
                ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
                f"{label}: {target.kind} {target.entry_uuid} belongs to patient {target.patient_id}, "
                f"the SubmissionSet to {patient}",
                assoc.entry_uuid,
            )
        )
    return (StatusChange(assoc, target, original, new) if not errors else None), errors


def _new_association(
    assoc: Association, patient: str | None, new_ids: set[str], snapshot: UpdateSnapshot
) -> list[XdsError]:
    """An association between registered objects (or a new version and a registered object):
    both ends the latest Approved versions of one patient, not a copy of an existing one."""
    label = f"Association {assoc.entry_uuid}"
    errors: list[XdsError] = []
    patients: set[str] = set()
    for ref in (assoc.source, assoc.target):
        if ref in new_ids:
            continue
        stored = snapshot.objects.get(ref)
        if stored is None:
            errors.append(
                error(
                    ErrorCode.UNRESOLVED_REFERENCE,
                    f"{label} refers to {ref}, which is not registered",
                    assoc.entry_uuid,
                )
            )
            continue
        if stored.kind in (KIND_DOCUMENT_ENTRY, KIND_FOLDER) and (
            stored.status != v.STATUS_APPROVED or not stored.is_latest
        ):
            # NIST 21004.
            errors.append(
                error(
                    ErrorCode.METADATA_UPDATE_ERROR,
                    f"{label}: {stored.kind} {ref} is not the latest Approved version",
                    assoc.entry_uuid,
                )
            )
        if stored.patient_id:
            patients.add(stored.patient_id)
    if patient:
        patients.add(patient)
    if len(patients) > 1:
        # NIST 20100a, 20100b.
        errors.append(
            error(
                ErrorCode.PATIENT_ID_RECONCILIATION_ERROR,
                f"{label} would link objects of patients {', '.join(sorted(patients))}",
                assoc.entry_uuid,
            )
        )
    if (assoc.association_type, assoc.source, assoc.target) in snapshot.links:
        # NIST 20008: the association exists already.
        errors.append(
            error(
                ErrorCode.METADATA_UPDATE_ERROR,
                f"{label}: an identical {assoc.association_type.rsplit(':', 1)[-1]} association "
                f"from {assoc.source} to {assoc.target} is registered",
                assoc.entry_uuid,
            )
        )
    return errors
