"""An establishment's activity over a period: the figures of its dashboard, read from the access
trace and the registry (SQLAlchemy Core, the same statements on SQLite and PostgreSQL).

A row belongs to a structure in one way only: the structure that acted, as the trace row names
it (`audit_entry.structure_id`: the structure of the VIHF, for a card or an establishment's
certificate alike). Submissions, refusals, archiving, deletions and consultations are the
structure's requests; a DMP created is the structure's when its TD1.1 request was.

Every statement starts from the index on (structure_id, action, recorded_at) (migration 0011),
then follows the documents those rows name through the registry's uniqueId and entryUUID
indexes: the cost grows with the structure's activity in the period, not with the registry.
Periods are half-open [start, end) in UTC, the trace's clock.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Row, func, select

from dmp_xds.storage import trail as t
from dmp_xds.storage.audit_checkpoints import utc_stamp
from dmp_xds.storage.lifecycle import STATUS_CHANGED
from dmp_xds.storage.tables import (
    AssociationRow,
    AuditEntryRow,
    DmpRecordRow,
    DocumentEntryRow,
    LifecycleEventRow,
    utc_aware,
)
from dmp_xds.xds import vocabulary as v

_entry = AuditEntryRow.__table__
_document = DocumentEntryRow.__table__
_association = AssociationRow.__table__
_event = LifecycleEventRow.__table__
_record = DmpRecordRow.__table__

CHUNK = 500
# The code a submission refused by the access policy is counted under: the WS-Security fault
# code its sender received (security/errors.FAILED_CHECK); the rule is the policy's reason.
POLICY_REFUSAL = "FailedCheck"
SUBMISSIONS = (t.SUBMIT,)
REFUSED = (t.FAILURE, t.DENIED)


@dataclass(frozen=True)
class CodeCount:
    code: str
    scheme: str
    count: int


@dataclass(frozen=True)
class Refusal:
    """A submission of the structure refused: who sent it, when, for which patient, the documents
    it carried, the error codes and the rules' text."""

    recorded_at: str
    actor_id: str
    actor_name: str
    patient_id: str
    documents: tuple[str, ...]
    codes: tuple[str, ...]
    rules: str


@dataclass(frozen=True)
class Activity:
    """A structure's figures over one period."""

    dmps_created: int
    consents_collected: int
    documents_published: int
    documents_replaced: int
    documents_archived: int
    documents_deleted: int
    patients_fed: int
    submissions_refused: int
    searches: int
    retrievals: int
    by_type: tuple[CodeCount, ...]
    by_class: tuple[CodeCount, ...]
    refusals_by_code: tuple[tuple[str, int], ...]


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


def _stamps(start: dt.datetime, end: dt.datetime) -> tuple[str, str]:
    return utc_stamp(start), utc_stamp(end)


def structure_requests(
    structure_id: str, actions: Iterable[str], start: dt.datetime, end: dt.datetime
) -> ColumnElement[bool]:
    """The trace rows of the structure's requests of these kinds in [start, end): the index
    (structure_id, action, recorded_at) answers it."""
    low, high = _stamps(start, end)
    return (
        (_entry.c.structure_id == structure_id)
        & _entry.c.action.in_(list(actions))
        & (_entry.c.recorded_at >= low)
        & (_entry.c.recorded_at < high)
    )


def _is_signature(row: Row[Any]) -> bool:
    """The submission set's signature (TD2.1) is registered as a document but is none."""
    format_code = (getattr(row, "format_code", None), getattr(row, "format_code_scheme", None))
    class_code = (getattr(row, "class_code", None), getattr(row, "class_code_scheme", None))
    return format_code in v.SIGNATURE_FORMAT_CODES or class_code == v.SIGNATURE_CLASS_CODE


def refusals(engine: Engine, structure_id: str, start: dt.datetime, end: dt.datetime) -> list[Refusal]:
    """The structure's refused submissions (ITI-41/42) in [start, end), oldest first."""
    statement = (
        select(
            _entry.c.recorded_at,
            _entry.c.actor_id,
            _entry.c.actor_name,
            _entry.c.patient_id,
            _entry.c.documents,
            _entry.c.outcome,
            _entry.c.detail,
        )
        .where(structure_requests(structure_id, SUBMISSIONS, start, end), _entry.c.outcome.in_(REFUSED))
        .order_by(_entry.c.recorded_at, _entry.c.seq)
    )
    found: list[Refusal] = []
    with engine.connect() as connection:
        for row in connection.execute(statement):
            codes, rules = t.refusal_of(row.detail)
            if not codes:
                codes = (POLICY_REFUSAL,) if row.outcome == t.DENIED else ("",)
            found.append(
                Refusal(
                    row.recorded_at,
                    row.actor_id,
                    row.actor_name,
                    row.patient_id,
                    tuple(row.documents or ()),
                    codes,
                    rules,
                )
            )
    return found


def activity(engine: Engine, structure_id: str, start: dt.datetime, end: dt.datetime) -> Activity:
    """The structure's figures over [start, end) (see docs/establishment-dashboard.md)."""
    actions = (t.SUBMIT, t.UPDATE, t.DELETE, t.DMP_CREATE)
    rows = select(_entry.c.action, _entry.c.outcome, _entry.c.actor_id, _entry.c.patient_id, _entry.c.documents).where(
        structure_requests(structure_id, actions, start, end)
    )
    reads = (
        select(_entry.c.action, func.count())
        .where(structure_requests(structure_id, t.DOCUMENT_READS, start, end), _entry.c.outcome == t.SUCCESS)
        .group_by(_entry.c.action)
    )
    published: dict[str, None] = {}
    fed: set[str] = set()
    changed: dict[str, None] = {}
    changers: set[str] = set()
    removed: dict[str, None] = {}
    created: list[str] = []
    refused = 0
    with engine.connect() as connection:
        for row in connection.execute(rows):
            documents = row.documents or ()
            if row.action == t.SUBMIT and row.outcome == t.SUCCESS:
                published.update(dict.fromkeys(documents))
                fed.add(row.patient_id)
            elif row.action == t.SUBMIT and row.outcome in REFUSED:
                refused += 1
            elif row.action == t.UPDATE and row.outcome == t.SUCCESS:
                changed.update(dict.fromkeys(documents))
                changers.add(row.actor_id)
            elif row.action == t.DELETE and row.outcome == t.SUCCESS:
                removed.update(dict.fromkeys(documents))
            elif row.action == t.DMP_CREATE and row.outcome == t.SUCCESS:
                created.append(row.patient_id)
        counts: dict[str, int] = {action: count for action, count in connection.execute(reads)}

        entries = _entries(connection, list(published))
        documents = {e.unique_id: e for e in entries if not _is_signature(e)}
        # Published, then deleted from the registry (ITI-62): counted, its codes no longer known.
        gone = len(set(published) - {e.unique_id for e in entries})
        replaced = _replacing(connection, [e.entry_uuid for e in documents.values()])
        archived, deleted = _status_changes(connection, list(changed), changers, start, end)
        consents = _consents(connection, created, start, end)

    by_type = Counter((e.type_code or "", e.type_code_scheme or "") for e in documents.values())
    by_class = Counter((e.class_code or "", e.class_code_scheme or "") for e in documents.values())
    if gone:
        by_type[("", "")] += gone
        by_class[("", "")] += gone
    by_code: Counter[str] = Counter()
    for refusal in refusals(engine, structure_id, start, end) if refused else ():
        by_code.update(refusal.codes)
    return Activity(
        dmps_created=len(created),
        consents_collected=consents,
        documents_published=len(documents) + gone,
        documents_replaced=replaced,
        documents_archived=len(archived),
        documents_deleted=len(deleted | set(removed)),
        patients_fed=len(fed),
        submissions_refused=refused,
        searches=counts.get(t.SEARCH, 0),
        retrievals=counts.get(t.RETRIEVE, 0),
        by_type=_code_counts(by_type),
        by_class=_code_counts(by_class),
        refusals_by_code=tuple(sorted(by_code.items(), key=lambda item: (-item[1], item[0]))),
    )


def _code_counts(counter: Counter[tuple[str, str]]) -> tuple[CodeCount, ...]:
    return tuple(
        CodeCount(code, scheme, count)
        for (code, scheme), count in sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    )


def _entries(connection: Connection, unique_ids: Sequence[str]) -> list[Row[Any]]:
    """The first registration of each uniqueId (its codes, its entryUUID)."""
    found: dict[str, Row[Any]] = {}  # the first version of each
    for chunk in _chunks(unique_ids):
        statement = (
            select(
                _document.c.entry_uuid,
                _document.c.unique_id,
                _document.c.type_code,
                _document.c.type_code_scheme,
                _document.c.class_code,
                _document.c.class_code_scheme,
                _document.c.format_code,
                _document.c.format_code_scheme,
            )
            .where(_document.c.unique_id.in_(chunk))
            .order_by(_document.c.unique_id, _document.c.version)
        )
        for row in connection.execute(statement):
            found.setdefault(row.unique_id, row)  # type: ignore[arg-type]
    return list(found.values())


def _replacing(connection: Connection, entry_uuids: Sequence[str]) -> int:
    """How many of these DocumentEntries replace another (RPLC, XFRM_RPLC)."""
    replacing: set[str] = set()
    for chunk in _chunks(entry_uuids):
        statement = select(_association.c.source).where(
            _association.c.source.in_(chunk),
            _association.c.association_type.in_(sorted(v.REPLACING_RELATIONSHIPS)),
        )
        replacing.update(connection.execute(statement).scalars())
    return len(replacing)


def _status_changes(
    connection: Connection, unique_ids: Sequence[str], actors: set[str], start: dt.datetime, end: dt.datetime
) -> tuple[set[str], set[str]]:
    """Of the documents the structure's ITI-57 requests changed, those its staff archived and
    those they deleted (the DMP's logical deletion, TD3.3c) in [start, end): the registry's
    history of status changes, by the same actors."""
    archived: set[str] = set()
    deleted: set[str] = set()
    uuids: dict[str, str] = {}
    for chunk in _chunks(unique_ids):
        statement = select(_document.c.entry_uuid, _document.c.unique_id).where(_document.c.unique_id.in_(chunk))
        uuids.update(dict(connection.execute(statement).all()))
    for chunk in _chunks(list(uuids)):
        statement = select(_event.c.object_uuid, _event.c.detail, _event.c.actor, _event.c.recorded_at).where(
            _event.c.object_uuid.in_(chunk), _event.c.action == STATUS_CHANGED
        )
        for row in connection.execute(statement):
            when = utc_aware(row.recorded_at)
            if row.actor not in actors or not start <= when < end:
                continue
            target = (row.detail or {}).get("to")
            if target == v.STATUS_ARCHIVED:
                archived.add(uuids[row.object_uuid])
            elif target == v.STATUS_DELETED:
                deleted.add(uuids[row.object_uuid])
    return archived, deleted


def _consents(connection: Connection, patients: Sequence[str], start: dt.datetime, end: dt.datetime) -> int:
    """Of the DMPs the structure created, those whose consent is dated in [start, end)."""
    count = 0
    for chunk in _chunks(list(dict.fromkeys(patients))):
        statement = select(_record.c.consent_collected_at).where(_record.c.patient_id.in_(chunk))
        for (collected_at,) in connection.execute(statement):
            if start <= utc_aware(collected_at) < end:
                count += 1
    return count
