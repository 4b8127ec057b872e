"""Symbolic ids (`Document01`) become `urn:uuid:` ids when a submission is stored."""

from __future__ import annotations

import uuid

from dmp_xds.xds.model import DocumentEntry, Folder, Submission


def new_uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def assign_entry_uuids(submission: Submission) -> dict[str, str]:
    """Replace every symbolic id of the message, and every reference to it; return the mapping."""
    mapping: dict[str, str] = {}
    for obj_id in submission.all_ids():
        if not obj_id.startswith("urn:uuid:") and obj_id not in mapping:
            mapping[obj_id] = new_uuid()
    objects = [submission.submission_set, *submission.documents, *submission.folders]
    for obj in objects:
        if obj is None:
            continue
        obj.entry_uuid = mapping.get(obj.entry_uuid, obj.entry_uuid)
        if isinstance(obj, DocumentEntry | Folder) and obj.logical_id is not None and obj.logical_id in mapping:
            obj.logical_id = mapping[obj.logical_id]
        _assign_inner_ids(obj)
    for assoc in submission.associations:
        assoc.entry_uuid = mapping.get(assoc.entry_uuid, assoc.entry_uuid)
        assoc.source = mapping.get(assoc.source, assoc.source)
        assoc.target = mapping.get(assoc.target, assoc.target)
        _assign_inner_ids(assoc)
    return mapping


def _assign_inner_ids(obj: object) -> None:
    """Classifications and ExternalIdentifiers are registry objects too: give them UUIDs."""
    for name in ("patient_id_identifier_id", "unique_id_identifier_id", "source_id_identifier_id", "classification_id"):
        value = getattr(obj, name, None)
        if value is not None and not value.startswith("urn:uuid:"):
            setattr(obj, name, new_uuid())
    for name in (
        "class_code",
        "type_code",
        "format_code",
        "healthcare_facility_type_code",
        "practice_setting_code",
        "content_type_code",
    ):
        code = getattr(obj, name, None)
        if code is not None and code.classification_id and not code.classification_id.startswith("urn:uuid:"):
            code.classification_id = new_uuid()
    for name in ("confidentiality_codes", "event_codes", "codes", "authors", "documentation"):
        for item in getattr(obj, name, []):
            if item.classification_id and not item.classification_id.startswith("urn:uuid:"):
                item.classification_id = new_uuid()
