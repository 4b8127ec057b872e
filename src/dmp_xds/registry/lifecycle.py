"""What a submission changes in metadata already stored, inside the submission's transaction.

ITI-41/42: a replacement (RPLC, XFRM_RPLC) deprecates its original and joins the original's
folders; a folder that gains a member gets a new lastUpdateTime. ITI-57 and ITI-62 reuse the
same helpers. Every change is written to `lifecycle_event` in the same transaction, so that the
history says what changed, when, by which transaction and submission set, and who asked (the
`actor`, given by the transaction once the security gate has authenticated the caller).

The checks that make these changes legal are in registry/rules.py; the statements here still
guard their preconditions (`WHERE status = Approved`), so that two concurrent submissions
cannot both replace the same document: the second one fails and stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from dmp_xds.ebrim import vocabulary as v
from dmp_xds.errors import ErrorCode, XdsFailure, error
from dmp_xds.model import Association, Submission
from dmp_xds.model.ids import new_uuid
from dmp_xds.registry.serialize import to_dict
from dmp_xds.registry.tables import AssociationRow, DocumentEntryRow, FolderRow, LifecycleEventRow

_document_entry = DocumentEntryRow.__table__
_folder = FolderRow.__table__
_association = AssociationRow.__table__
_event = LifecycleEventRow.__table__

# Actions recorded in lifecycle_event.action.
DEPRECATED_BY_REPLACEMENT = "deprecated-by-replacement"
FOLDER_MEMBER_ADDED = "folder-member-added"
NEW_VERSION = "new-version"
STATUS_CHANGED = "status-changed"
DELETED = "deleted"


@dataclass(frozen=True)
class Change:
    """Who changes the registry and through which transaction (for the history)."""

    transaction: str  # ITI-41 | ITI-42 | ITI-57 | ITI-62
    actor: str | None = None  # the authenticated caller, when the deployment has authentication


@dataclass
class Event:
    action: str
    object_kind: str
    object_uuid: str
    logical_id: str | None = None
    patient_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def record(connection: Connection, change: Change, submission_set_uuid: str | None,
           events: Sequence[Event], now: datetime) -> None:
    if not events:
        return
    connection.execute(insert(_event), [
        {
            "recorded_at": now,
            "transaction": change.transaction,
            "action": e.action,
            "object_kind": e.object_kind,
            "object_uuid": e.object_uuid,
            "logical_id": e.logical_id,
            "patient_id": e.patient_id,
            "submission_set_uuid": submission_set_uuid,
            "actor": change.actor,
            "detail": e.detail,
        }
        for e in events
    ])


def dtm(now: datetime) -> str:
    return now.strftime("%Y%m%d%H%M%S")


# --- replacements ----------------------------------------------------------------------------

_IDS = bindparam("ids", expanding=True)
_DEPRECATE_APPROVED = (
    update(_document_entry)
    .where(_document_entry.c.entry_uuid.in_(_IDS), _document_entry.c.status == v.STATUS_APPROVED)
    .values(status=v.STATUS_DEPRECATED)
    .execution_options(preserve_rowcount=True)
)
_FOLDERS_OF = (
    select(_association.c.source, _association.c.target)
    .select_from(_association.join(_folder, _folder.c.entry_uuid == _association.c.source))
    .where(_association.c.association_type == v.HAS_MEMBER, _association.c.target.in_(_IDS),
           _association.c.status == v.STATUS_APPROVED, _folder.c.is_latest)
)


def replacements(submission: Submission) -> list[Association]:
    return [a for a in submission.associations if a.association_type in v.REPLACING_RELATIONSHIPS]


def deprecate_originals(connection: Connection, originals: Sequence[str]) -> list[Event]:
    """Deprecate the replaced documents; fail if one of them is no longer Approved (a
    concurrent replacement or status change won the race)."""
    wanted = sorted(set(originals))
    result = connection.execute(_DEPRECATE_APPROVED, {"ids": wanted})
    if result.rowcount != len(wanted):
        raise XdsFailure([error(ErrorCode.REGISTRY_METADATA_ERROR,
                                "a document to replace was replaced or changed concurrently; "
                                f"none of {', '.join(wanted)} was modified")])
    return [Event(DEPRECATED_BY_REPLACEMENT, "DocumentEntry", uuid,
                  detail={"from": v.STATUS_APPROVED, "to": v.STATUS_DEPRECATED}) for uuid in wanted]


def folder_memberships(connection: Connection, documents: Iterable[str]) -> list[tuple[str, str]]:
    """(folder, document) for the latest-version folders these documents are members of."""
    ids = sorted(set(documents))
    if not ids:
        return []
    return [(source, target) for source, target in connection.execute(_FOLDERS_OF, {"ids": ids})]


def replacement_folder_associations(submission: Submission,
                                    memberships: Sequence[tuple[str, str]]) -> list[Association]:
    """A replacement joins every folder of its original (ITI TF-3 §4.2.2.2.3), unless the
    submission already puts it there."""
    already = {(a.source, a.target) for a in submission.associations if a.association_type == v.HAS_MEMBER}
    folders_of: dict[str, list[str]] = {}
    for folder, document in memberships:
        folders_of.setdefault(document, []).append(folder)
    added: list[Association] = []
    for relation in replacements(submission):
        for folder in folders_of.get(relation.target, []):
            if (folder, relation.source) not in already:
                already.add((folder, relation.source))
                added.append(Association(new_uuid(), v.HAS_MEMBER, folder, relation.source, v.STATUS_APPROVED))
    return added


# --- folders ---------------------------------------------------------------------------------

_FOLDER_DATA = select(_folder.c.entry_uuid, _folder.c.patient_id, _folder.c.logical_id,
                      _folder.c.data).where(_folder.c.entry_uuid.in_(_IDS))
_TOUCH_FOLDER = (update(_folder).where(_folder.c.entry_uuid == bindparam("uuid"))
                 .values(last_update_time=bindparam("time"), data=bindparam("data")))


def touch_folders(connection: Connection, folders: Iterable[str], now: datetime,
                  members: dict[str, list[str]]) -> list[Event]:
    """Set lastUpdateTime of stored folders that gained members (ITI TF-3 §4.2.3.4.7); the
    model in `data` changes with the column, since queries give back `data`."""
    ids = sorted(set(folders))
    if not ids:
        return []
    time = dtm(now)
    events: list[Event] = []
    rows = connection.execute(_FOLDER_DATA, {"ids": ids}).all()
    for entry_uuid, patient_id, logical_id, data in rows:
        data = dict(data)
        data["last_update_time"] = time
        connection.execute(_TOUCH_FOLDER, {"uuid": entry_uuid, "time": time, "data": data})
        events.append(Event(FOLDER_MEMBER_ADDED, "Folder", entry_uuid, logical_id, patient_id,
                            {"members": sorted(members.get(entry_uuid, [])), "lastUpdateTime": time}))
    return events


def stored_folder_members(submission: Submission) -> dict[str, list[str]]:
    """Stored folders (not in the message) that this submission's HasMember associations add
    documents to: folder -> new members."""
    ss = submission.submission_set
    own = {f.entry_uuid for f in submission.folders}
    skip = own | ({ss.entry_uuid} if ss is not None else set())
    members: dict[str, list[str]] = {}
    for a in submission.associations:
        if a.association_type == v.HAS_MEMBER and a.source not in skip:
            members.setdefault(a.source, []).append(a.target)
    return members


def association_row(assoc: Association, ss_uuid: str | None, now: datetime) -> dict[str, Any]:
    return {
        "entry_uuid": assoc.entry_uuid,
        "association_type": assoc.association_type,
        "source": assoc.source,
        "target": assoc.target,
        "status": assoc.status or v.STATUS_APPROVED,
        "submission_set_uuid": ss_uuid,
        "created_at": now,
        "data": to_dict(assoc),
    }


def insert_associations(connection: Connection, associations: Sequence[Association],
                        ss_uuid: str | None, now: datetime) -> None:
    if associations:
        connection.execute(insert(_association), [association_row(a, ss_uuid, now) for a in associations])

