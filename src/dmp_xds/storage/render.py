"""Query result rows -> model objects, ready for the ebRIM encoder.

Each row carries the object's model as submitted (`data`, JSON); the status column overrides
the one in `data`, because the registry changes an object's status (a replaced document is
Deprecated) without rewriting what was submitted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dmp_xds.storage.serialize import (
    association_from_dict,
    document_entry_from_dict,
    folder_from_dict,
    submission_set_from_dict,
)
from dmp_xds.xds.model import Association, DocumentEntry, Folder, ObjectRef, SubmissionSet

RegistryObject = DocumentEntry | SubmissionSet | Folder | Association | ObjectRef


def _with_status(obj: Any, status: str | None) -> Any:
    if status is not None:
        obj.status = status
    return obj


def document_entries(rows: Iterable[Sequence[Any]]) -> list[DocumentEntry]:
    """Rows (entry_uuid, patient_id, status, data)."""
    return [_with_status(document_entry_from_dict(row[3]), row[2]) for row in rows]


def submission_sets(rows: Iterable[Sequence[Any]]) -> list[SubmissionSet]:
    return [_with_status(submission_set_from_dict(row[3]), row[2]) for row in rows]


def folders(rows: Iterable[Sequence[Any]]) -> list[Folder]:
    return [_with_status(folder_from_dict(row[3]), row[2]) for row in rows]


def associations(rows: Iterable[Sequence[Any]]) -> list[Association]:
    """Rows (entry_uuid, source, target, status, data)."""
    return [_with_status(association_from_dict(row[4]), row[3]) for row in rows]


def object_refs(ids: Iterable[str], home_community_id: str | None = None) -> list[ObjectRef]:
    return [ObjectRef(entry_uuid, home_community_id) for entry_uuid in ids]
