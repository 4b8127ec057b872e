"""What a submission changes in metadata already stored, inside the submission's transaction.

ITI-41/42: a replacement (RPLC, XFRM_RPLC) deprecates its original and joins the original's
folders; a folder that gains a member gets a new lastUpdateTime. ITI-57 and ITI-62 reuse the
same helpers. Every change is written to `lifecycle_event` in the same transaction, so that the
history says what changed, when, by which transaction and submission set, and who asked (the
`actor`, given by the transaction once the security gate has authenticated the caller).

Every statement names the patient whose rows it reads or changes (a submission, an update or a
deletion is one patient's), so that on Citus it runs on that patient's shard.

The checks that make these changes legal are in xds/registry/; the statements here still
guard their preconditions (`WHERE status = Approved`), so that two concurrent submissions
cannot both replace the same document: the second one fails and stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Connection, and_, bindparam, insert, or_, select, update

from dmp_xds.storage.serialize import to_dict
from dmp_xds.storage.tables import (
    AssociationRow,
    DocumentEntryRow,
    FolderRow,
    LifecycleEventRow,
    PatientRow,
    RegistryEntryUuidRow,
    SubmissionSetRow,
)
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.errors import ErrorCode, XdsFailure, error
from dmp_xds.xds.model import (
    KIND_ASSOCIATION,
    KIND_DOCUMENT_ENTRY,
    KIND_FOLDER,
    KIND_SUBMISSION_SET,
    Association,
    Folder,
    Submission,
)
from dmp_xds.xds.model.ids import new_uuid
from dmp_xds.xds.registry.update_rules import StoredObject, UpdatePlan, UpdateSnapshot

_document_entry = DocumentEntryRow.__table__
_folder = FolderRow.__table__
_association = AssociationRow.__table__
_event = LifecycleEventRow.__table__
_entry_uuid_claim = RegistryEntryUuidRow.__table__

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


def record(
    connection: Connection, change: Change, submission_set_uuid: str | None, events: Sequence[Event], now: datetime
) -> None:
    if not events:
        return
    connection.execute(
        insert(_event),
        [
            {
                "recorded_at": now,
                "transaction": change.transaction,
                "action": e.action,
                "object_kind": e.object_kind,
                "object_uuid": e.object_uuid,
                "logical_id": e.logical_id,
                "patient_id": e.patient_id or "",
                "submission_set_uuid": submission_set_uuid,
                "actor": change.actor,
                "detail": e.detail,
            }
            for e in events
        ],
    )


def dtm(now: datetime) -> str:
    return now.strftime("%Y%m%d%H%M%S")


# --- replacements ----------------------------------------------------------------------------

_IDS: BindParameter[str] = bindparam("ids", expanding=True)
_PATIENT: BindParameter[str] = bindparam("patient")
_DEPRECATE_APPROVED = (
    update(_document_entry)
    .where(
        _document_entry.c.patient_id == _PATIENT,
        _document_entry.c.entry_uuid.in_(_IDS),
        _document_entry.c.status == v.STATUS_APPROVED,
    )
    .values(status=v.STATUS_DEPRECATED)
    .execution_options(preserve_rowcount=True)
)
_FOLDERS_OF = (
    select(_association.c.source, _association.c.target)
    .select_from(
        _association.join(
            _folder,
            and_(_folder.c.patient_id == _association.c.patient_id, _folder.c.entry_uuid == _association.c.source),
        )
    )
    .where(
        _association.c.patient_id == _PATIENT,
        _folder.c.patient_id == _PATIENT,
        _association.c.association_type == v.HAS_MEMBER,
        _association.c.target.in_(_IDS),
        _association.c.status == v.STATUS_APPROVED,
        _folder.c.is_latest,
    )
)


def replacements(submission: Submission) -> list[Association]:
    return [a for a in submission.associations if a.association_type in v.REPLACING_RELATIONSHIPS]


def deprecate_originals(connection: Connection, patient: str, originals: Sequence[str]) -> list[Event]:
    """Deprecate the replaced documents; fail if one of them is no longer Approved (a
    concurrent replacement or status change won the race)."""
    wanted = sorted(set(originals))
    result = connection.execute(_DEPRECATE_APPROVED, {"ids": wanted, "patient": patient})
    if result.rowcount != len(wanted):
        raise XdsFailure(
            [
                error(
                    ErrorCode.REGISTRY_METADATA_ERROR,
                    "a document to replace was replaced or changed concurrently; "
                    f"none of {', '.join(wanted)} was modified",
                )
            ]
        )
    return [
        Event(
            DEPRECATED_BY_REPLACEMENT,
            "DocumentEntry",
            uuid,
            patient_id=patient,
            detail={"from": v.STATUS_APPROVED, "to": v.STATUS_DEPRECATED},
        )
        for uuid in wanted
    ]


def folder_memberships(connection: Connection, patient: str, documents: Iterable[str]) -> list[tuple[str, str]]:
    """(folder, document) for the latest-version folders these documents are members of."""
    ids = sorted(set(documents))
    if not ids:
        return []
    return [(source, target) for source, target in connection.execute(_FOLDERS_OF, {"ids": ids, "patient": patient})]


def replacement_folder_associations(
    submission: Submission, memberships: Sequence[tuple[str, str]]
) -> list[Association]:
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

_FOLDER_DATA = select(_folder.c.entry_uuid, _folder.c.patient_id, _folder.c.logical_id, _folder.c.data).where(
    _folder.c.patient_id == _PATIENT, _folder.c.entry_uuid.in_(_IDS)
)
_TOUCH_FOLDER = (
    update(_folder)
    .where(_folder.c.patient_id == _PATIENT, _folder.c.entry_uuid == bindparam("uuid"))
    .values(last_update_time=bindparam("time"), data=bindparam("data"))
)


def touch_folders(
    connection: Connection, patient: str, folders: Iterable[str], now: datetime, members: dict[str, list[str]]
) -> list[Event]:
    """Set lastUpdateTime of stored folders that gained members (ITI TF-3 §4.2.3.4.7); the
    model in `data` changes with the column, since queries give back `data`."""
    ids = sorted(set(folders))
    if not ids:
        return []
    time = dtm(now)
    events: list[Event] = []
    rows = connection.execute(_FOLDER_DATA, {"ids": ids, "patient": patient}).all()
    for entry_uuid, patient_id, logical_id, data in rows:
        data = dict(data)
        data["last_update_time"] = time
        connection.execute(_TOUCH_FOLDER, {"uuid": entry_uuid, "time": time, "data": data, "patient": patient})
        events.append(
            Event(
                FOLDER_MEMBER_ADDED,
                "Folder",
                entry_uuid,
                logical_id,
                patient_id,
                {"members": sorted(members.get(entry_uuid, [])), "lastUpdateTime": time},
            )
        )
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


def association_row(assoc: Association, patient: str, ss_uuid: str | None, now: datetime) -> dict[str, Any]:
    return {
        "entry_uuid": assoc.entry_uuid,
        "patient_id": patient,
        "association_type": assoc.association_type,
        "source": assoc.source,
        "target": assoc.target,
        "status": assoc.status or v.STATUS_APPROVED,
        "submission_set_uuid": ss_uuid,
        "created_at": now,
        "data": to_dict(assoc),
    }


def insert_associations(
    connection: Connection, patient: str, associations: Sequence[Association], ss_uuid: str | None, now: datetime
) -> None:
    """Associations the registry makes itself, with their entryUUID claims."""
    if associations:
        connection.execute(
            insert(_entry_uuid_claim),
            [{"entry_uuid": a.entry_uuid, "kind": KIND_ASSOCIATION, "patient_id": patient} for a in associations],
        )
        connection.execute(insert(_association), [association_row(a, patient, ss_uuid, now) for a in associations])


# --- ITI-57 ------------------------------------------------------------------------------------

_submission_set = SubmissionSetRow.__table__
_patient = PatientRow.__table__


def read_update_snapshot(
    connection: Connection, logical_ids: Sequence[str], ends: Sequence[str], patients: Sequence[str]
) -> UpdateSnapshot:
    """What `update_rules.plan_update` needs, read on one connection."""
    known = frozenset(
        connection.scalars(select(_patient.c.patient_id).where(_patient.c.patient_id.in_(list(patients))))
    )
    latest: dict[str, StoredObject] = {}
    objects: dict[str, StoredObject] = {}
    for table, kind in ((_document_entry, KIND_DOCUMENT_ENTRY), (_folder, KIND_FOLDER)):
        columns = [
            table.c.entry_uuid,
            table.c.status,
            table.c.patient_id,
            table.c.logical_id,
            table.c.version,
            table.c.is_latest,
            table.c.unique_id,
            table.c.object_type if kind == KIND_DOCUMENT_ENTRY else table.c.unique_id.label("object_type"),
        ]
        for row in connection.execute(
            select(*columns).where(
                or_(
                    and_(table.c.logical_id.in_(list(logical_ids)), table.c.is_latest),
                    table.c.entry_uuid.in_(list(ends)),
                )
            )
        ):
            stored = StoredObject(
                kind,
                row.entry_uuid,
                row.status,
                row.patient_id,
                row.logical_id,
                row.version,
                bool(row.is_latest),
                row.unique_id,
                row.object_type if kind == KIND_DOCUMENT_ENTRY else None,
            )
            if row.entry_uuid in ends:
                objects[row.entry_uuid] = stored
            if row.is_latest and row.logical_id in logical_ids:
                latest[row.logical_id] = stored
    for entry_uuid, status, patient_id in connection.execute(
        select(_submission_set.c.entry_uuid, _submission_set.c.status, _submission_set.c.patient_id).where(
            _submission_set.c.entry_uuid.in_(list(ends))
        )
    ):
        objects[entry_uuid] = StoredObject(KIND_SUBMISSION_SET, entry_uuid, status, patient_id)
    for entry_uuid, status in connection.execute(
        select(_association.c.entry_uuid, _association.c.status).where(_association.c.entry_uuid.in_(list(ends)))
    ):
        objects[entry_uuid] = StoredObject(KIND_ASSOCIATION, entry_uuid, status)
    # Which latest versions are linked to other objects than their SubmissionSets (a patient
    # change would split them from their folder or related documents).
    latest_ids = [s.entry_uuid for s in latest.values()]
    touching = connection.execute(
        select(_association.c.source, _association.c.target).where(
            or_(_association.c.source.in_(latest_ids), _association.c.target.in_(latest_ids))
        )
    ).all()
    others = {t if s in latest_ids else s for s, t in touching}
    packages = set(
        connection.scalars(select(_submission_set.c.entry_uuid).where(_submission_set.c.entry_uuid.in_(sorted(others))))
    )
    linked = {(s if s in latest_ids else t) for s, t in touching if (t if s in latest_ids else s) not in packages}
    latest = {lid: replace(s, linked=s.entry_uuid in linked) for lid, s in latest.items()}
    links = frozenset(
        (row.association_type, row.source, row.target)
        for row in connection.execute(
            select(_association.c.association_type, _association.c.source, _association.c.target).where(
                _association.c.source.in_(list(ends)), _association.c.target.in_(list(ends))
            )
        )
    )
    return UpdateSnapshot(known, latest, objects, links)


def _table_of(kind: str) -> Any:
    return {KIND_DOCUMENT_ENTRY: _document_entry, KIND_FOLDER: _folder, KIND_ASSOCIATION: _association}[kind]


def apply_update(connection: Connection, submission: Submission, plan: UpdatePlan, now: datetime) -> list[Event]:
    """The stored side of an update, after the message's own rows are inserted: previous
    versions deprecated and no longer latest, folder memberships propagated, statuses changed.
    Each statement is guarded by what the plan was made from; a concurrent change fails it."""
    ss = submission.submission_set
    ss_uuid = ss.entry_uuid if ss is not None else None
    patient = submission_patient(submission)
    events: list[Event] = []
    propagated: list[Association] = []
    touched: dict[str, list[str]] = {}
    for version in plan.versions:
        previous = version.previous
        table = _table_of(previous.kind)
        # Deprecate the previous version; the new one's row was inserted first, so the unique
        # index on (logical_id, version) already refused a concurrent new version.
        result = connection.execute(
            update(table)
            .where(
                table.c.patient_id == (previous.patient_id or patient),
                table.c.entry_uuid == previous.entry_uuid,
                table.c.is_latest,
            )
            .values(is_latest=False, status=v.STATUS_DEPRECATED)
            .execution_options(preserve_rowcount=True)
        )
        if result.rowcount != 1:
            raise XdsFailure(
                [
                    error(
                        ErrorCode.METADATA_VERSION_ERROR,
                        f"{previous.kind} {previous.logical_id}: another version was registered concurrently",
                        previous.entry_uuid,
                    )
                ]
            )
        events.append(
            Event(
                NEW_VERSION,
                previous.kind,
                version.obj.entry_uuid,
                previous.logical_id,
                version.obj.patient_id,
                {
                    "previous": previous.entry_uuid,
                    "previousVersion": previous.version,
                    "version": version.obj.version,
                    "previousStatus": previous.status,
                    "patientId": version.obj.patient_id,
                },
            )
        )
        if not version.propagate:
            continue
        if previous.kind == KIND_DOCUMENT_ENTRY:
            for folder, _document in folder_memberships(connection, patient, [previous.entry_uuid]):
                propagated.append(
                    Association(new_uuid(), v.HAS_MEMBER, folder, version.obj.entry_uuid, v.STATUS_APPROVED)
                )
                touched.setdefault(folder, []).append(version.obj.entry_uuid)
        else:
            folder_members = connection.scalars(
                select(_association.c.target).where(
                    _association.c.patient_id == patient,
                    _association.c.source == previous.entry_uuid,
                    _association.c.association_type == v.HAS_MEMBER,
                    _association.c.status == v.STATUS_APPROVED,
                )
            )
            propagated += [
                Association(new_uuid(), v.HAS_MEMBER, version.obj.entry_uuid, member, v.STATUS_APPROVED)
                for member in folder_members
            ]
    insert_associations(connection, patient, propagated, ss_uuid, now)
    for change in plan.status_changes:
        table = _table_of(change.target.kind)
        result = connection.execute(
            update(table)
            .where(
                table.c.patient_id == (change.target.patient_id or patient),
                table.c.entry_uuid == change.target.entry_uuid,
                table.c.status == change.original,
            )
            .values(status=change.new)
            .execution_options(preserve_rowcount=True)
        )
        if result.rowcount != 1:
            raise XdsFailure(
                [
                    error(
                        ErrorCode.METADATA_UPDATE_ERROR,
                        f"{change.target.kind} {change.target.entry_uuid}: its status changed concurrently",
                        change.association.entry_uuid,
                    )
                ]
            )
        events.append(
            Event(
                STATUS_CHANGED,
                change.target.kind,
                change.target.entry_uuid,
                change.target.logical_id,
                change.target.patient_id or patient,
                {"from": change.original, "to": change.new},
            )
        )
    members = stored_folder_members(submission)
    for folder, added in touched.items():
        members.setdefault(folder, []).extend(added)
    new_folders = {v_.obj.entry_uuid for v_ in plan.versions if isinstance(v_.obj, Folder)}
    events += touch_folders(connection, patient, [f for f in members if f not in new_folders], now, members)
    return events


def submission_patient(submission: Submission) -> str:
    """The patient of a submission: every object of one submission is the same patient's
    (the registry rules refuse anything else), and so are the rows it writes."""
    ss = submission.submission_set
    candidates = [
        ss.patient_id if ss is not None else None,
        *(d.patient_id for d in submission.documents),
        *(f.patient_id for f in submission.folders),
    ]
    patient = next((p for p in candidates if p), None)
    if patient is None:
        raise ValueError("a submission names no patient")
    return patient
