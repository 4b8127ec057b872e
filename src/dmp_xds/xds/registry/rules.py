"""XDS rules that depend on what the registry already holds (ITI TF-2b §3.42.4.1.3).

Pure functions over a `RegistrySnapshot`, read once per submission on one connection. Run after
`validation.xds.validate_submission` and after symbolic ids were replaced.

An entryUUID chosen by the source that is already registered is not looked up beforehand: the
primary key refuses it at insert time, and `diagnose_conflict` then says precisely what clashed.
That keeps the common path to two small reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.errors import ErrorCode, XdsError, error
from dmp_xds.xds.model import KIND_ASSOCIATION, KIND_DOCUMENT_ENTRY, KIND_FOLDER, Association, Submission

ObjectInfo = tuple[str, str | None, str | None]  # (kind, patient id, status)


@dataclass(frozen=True)
class RegistrySnapshot:
    """What the registry held, for one submission's checks (read by storage.store.RegistryStore)."""

    known_patients: frozenset[str]
    unique_ids: dict[str, str | None]  # registered uniqueId -> DocumentEntry hash, lower case (None: SS/Folder)
    objects: dict[str, ObjectInfo]  # registered objects among those asked for


@dataclass(frozen=True)
class SnapshotRequest:
    """What to read from the registry for one submission."""

    patient_ids: list[str]
    unique_ids: list[str]
    referenced_ids: list[str]  # ids that associations name outside the message


def snapshot_request(submission: Submission) -> SnapshotRequest:
    ss = submission.submission_set
    patients = [
        p
        for p in [
            ss.patient_id if ss else None,
            *(d.patient_id for d in submission.documents),
            *(f.patient_id for f in submission.folders),
        ]
        if p
    ]
    unique_ids = [d.unique_id for d in submission.documents if d.unique_id]
    unique_ids += [f.unique_id for f in submission.folders if f.unique_id]
    if ss is not None and ss.unique_id:
        unique_ids.append(ss.unique_id)
    in_message = set(submission.all_ids())
    outside = {ref for a in submission.associations for ref in (a.source, a.target) if ref and ref not in in_message}
    return SnapshotRequest(sorted(set(patients)), unique_ids, sorted(outside))


def check_against_registry(submission: Submission, snapshot: RegistrySnapshot) -> list[XdsError]:
    return (
        _check_patients(submission, snapshot)
        + _check_unique_ids(submission, snapshot)
        + _check_references(submission, snapshot)
    )


def _check_patients(submission: Submission, snapshot: RegistrySnapshot) -> list[XdsError]:
    return [
        error(ErrorCode.UNKNOWN_PATIENT_ID, f"patient {p} is not known to the registry (no DMP for this patient)", p)
        for p in snapshot_request(submission).patient_ids
        if p not in snapshot.known_patients
    ]


def _check_unique_ids(submission: Submission, snapshot: RegistrySnapshot) -> list[XdsError]:
    """A DocumentEntry may reuse a registered uniqueId only for the very same document (same
    hash, NIST test 12004); a SubmissionSet or Folder uniqueId never."""
    existing = snapshot.unique_ids
    errors: list[XdsError] = []
    for de in submission.documents:
        if de.unique_id not in existing:
            continue
        registered_hash = existing[de.unique_id]
        if registered_hash is None:
            errors.append(
                error(
                    ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY,
                    f"DocumentEntry {de.entry_uuid}: uniqueId {de.unique_id} is already registered for another object",
                    de.unique_id,
                )
            )
        elif de.hash is None or registered_hash.lower() != de.hash.lower():
            errors.append(
                error(
                    ErrorCode.NON_IDENTICAL_HASH,
                    f"DocumentEntry {de.entry_uuid}: uniqueId {de.unique_id} is already registered "
                    "for a document with another hash",
                    de.unique_id,
                )
            )
    others = [(f"Folder {f.entry_uuid}", f.unique_id) for f in submission.folders]
    if submission.submission_set is not None:
        others.append((f"SubmissionSet {submission.submission_set.entry_uuid}", submission.submission_set.unique_id))
    for label, unique_id in others:
        if unique_id in existing:
            errors.append(
                error(
                    ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY,
                    f"{label}: uniqueId {unique_id} is already registered",
                    unique_id,
                )
            )
    return errors


def _check_references(submission: Submission, snapshot: RegistrySnapshot) -> list[XdsError]:
    in_message = set(submission.all_ids())
    ss = submission.submission_set
    patient = ss.patient_id if ss else None
    errors: list[XdsError] = []
    for assoc in submission.associations:
        for ref in (assoc.source, assoc.target):
            if not ref or ref in in_message:
                continue
            if ref not in snapshot.objects:
                errors.append(
                    error(
                        ErrorCode.UNRESOLVED_REFERENCE,
                        f"Association {assoc.entry_uuid} refers to {ref}, which is neither in the "
                        "message nor in the registry",
                        assoc.entry_uuid,
                    )
                )
                continue
            kind, ref_patient, status = snapshot.objects[ref]
            if patient and ref_patient and ref_patient != patient:
                errors.append(
                    error(
                        ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
                        f"Association {assoc.entry_uuid}: {kind} {ref} belongs to patient {ref_patient}, "
                        f"the submission to {patient}",
                        assoc.entry_uuid,
                    )
                )
            errors += _check_stored_end(assoc, ref, kind, status)
    return errors


# What a new association may point to in the registry, by type and end.
_RELATIONSHIP_TARGET_KINDS = frozenset({KIND_DOCUMENT_ENTRY})
_HAS_MEMBER_SOURCE_KINDS = frozenset({KIND_FOLDER})
_HAS_MEMBER_TARGET_KINDS = frozenset({KIND_DOCUMENT_ENTRY, KIND_FOLDER, KIND_ASSOCIATION})


def _check_stored_end(assoc: Association, ref: str, kind: str, status: str | None) -> list[XdsError]:
    """A new association to a stored object: the object is of a kind the association type
    allows and is Approved — a deprecated (replaced) or archived document can be neither
    replaced, appended, transformed nor signed again, nor put in a folder (NIST 11993, 11994)."""
    label = f"Association {assoc.entry_uuid}"
    is_source = ref == assoc.source
    if assoc.association_type in v.DOCUMENT_RELATIONSHIPS:
        allowed = _RELATIONSHIP_TARGET_KINDS if not is_source else frozenset()
    elif assoc.association_type == v.HAS_MEMBER:
        allowed = _HAS_MEMBER_SOURCE_KINDS if is_source else _HAS_MEMBER_TARGET_KINDS
    else:
        allowed = frozenset()
    if kind not in allowed:
        end = "source" if is_source else "target"
        return [
            error(
                ErrorCode.REGISTRY_METADATA_ERROR,
                f"{label}: a {_short(assoc.association_type)} association cannot have the stored {kind} {ref} as {end}",
                assoc.entry_uuid,
            )
        ]
    if kind != KIND_ASSOCIATION and status != v.STATUS_APPROVED:
        return [
            error(
                ErrorCode.REGISTRY_METADATA_ERROR,
                f"{label}: {kind} {ref} is {_short(status or 'without status')}; only an Approved object "
                f"can be the {'source' if is_source else 'target'} of a new {_short(assoc.association_type)} "
                "association",
                assoc.entry_uuid,
            )
        ]
    return []


def _short(urn: str) -> str:
    return urn.rsplit(":", 1)[-1]


def diagnose_conflict(submission: Submission, snapshot: RegistrySnapshot) -> list[XdsError]:
    """Why the database refused the submission's rows, given a fresh snapshot of the message's
    own ids and uniqueIds (a concurrent submission won the race, or an id was reused): the
    errors the submission would have had one after the other; none when what is registered now
    explains nothing, as when the same document (same uniqueId and hash) was registered
    concurrently: storing again is what would have happened one after the other."""
    errors = [
        error(ErrorCode.REGISTRY_METADATA_ERROR, f"id {obj_id} is already used by a registered {kind}", obj_id)
        for obj_id, (kind, _patient, _status) in snapshot.objects.items()
    ]
    return errors + _check_unique_ids(submission, snapshot)


def unexplained_conflict() -> XdsError:
    """A conflict that storing again did not get past."""
    return error(
        ErrorCode.DUPLICATE_UNIQUE_ID_IN_REGISTRY, "an id or uniqueId of this submission was registered concurrently"
    )
