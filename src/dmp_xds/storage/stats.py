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

import bisect
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    distinct,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.exc import IntegrityError

from dmp_xds.storage import distribution
from dmp_xds.storage import trail as t
from dmp_xds.storage.audit_checkpoints import utc_stamp
from dmp_xds.storage.lifecycle import STATUS_CHANGED
from dmp_xds.storage.tables import (
    AssociationRow,
    AuditEntryRow,
    DmpRecordRow,
    DocumentEntryRow,
    LifecycleEventRow,
    StatsClosedMonthRow,
    utc_aware,
)
from dmp_xds.xds import vocabulary as v

_entry = AuditEntryRow.__table__
_document = DocumentEntryRow.__table__
_association = AssociationRow.__table__
_event = LifecycleEventRow.__table__
_record = DmpRecordRow.__table__
_closed = StatsClosedMonthRow.__table__

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
    return activities(engine, structure_id, [(start, end)])[0]


Period = tuple[dt.datetime, dt.datetime]


def _period_of(stamp: str, bounds: Sequence[tuple[str, str]]) -> int | None:
    """The index of the period (sorted, disjoint) whose [low, high) holds the trace stamp."""
    index = bisect.bisect_right([low for low, _ in bounds], stamp) - 1
    return index if index >= 0 and stamp < bounds[index][1] else None


def _document_elements(dialect: str) -> Any:
    """The uniqueIds of a trace row's `documents` (a JSON array) as a table joined to the row:
    the database unnests them, so the rows of a year's publications stay in it."""
    if dialect == "postgresql":
        return func.json_array_elements_text(_entry.c.documents).table_valued("value").alias("document")
    return func.json_each(_entry.c.documents).table_valued("value").alias("document")


def _signature(entry: Any) -> ColumnElement[bool]:
    """The submission set's signature (TD2.1) is registered as a document but is none. Never
    NULL (a code left empty is no signature's): NOT of it keeps the other documents."""

    def code(column: str) -> Any:
        return func.coalesce(entry.c[column], "")

    return or_(
        *(and_(code("format_code") == c, code("format_code_scheme") == scheme) for c, scheme in SIGNATURES),
        and_(code("class_code") == v.SIGNATURE_CLASS_CODE[0], code("class_code_scheme") == v.SIGNATURE_CLASS_CODE[1]),
    )


SIGNATURES = sorted(v.SIGNATURE_FORMAT_CODES)


def activities(engine: Engine, structure_id: str, periods: Sequence[Period]) -> list[Activity]:
    """The structure's figures over each of `periods` (sorted, disjoint: twelve months, say), in
    one pass: each statement covers them all and the database counts per period (a CASE on the
    trace's stamp), so twelve months cost about one month's reading, and the publications are
    counted by the database, not carried to Python one by one."""
    if not periods:
        return []
    bounds = [_stamps(start, end) for start, end in periods]
    if any(bounds[i][1] > bounds[i + 1][0] for i in range(len(bounds) - 1)):
        raise ValueError("periods must be sorted and disjoint")
    count = len(periods)
    first, last = periods[0][0], periods[-1][1]
    # Which period a trace row belongs to (count: none, between two periods).
    period = case(
        *(
            (and_(_entry.c.recorded_at >= low, _entry.c.recorded_at < high), index)
            for index, (low, high) in enumerate(bounds)
        ),
        else_=count,
    ).label("period")  # grouped by its name: PostgreSQL takes two renderings of it as two expressions
    # Publications: each uniqueId of the successful submissions, its first registration (its
    # codes), the signature left out; one not in the registry any more (ITI-62) counts, codes
    # unknown. Grouped by period and codes; a uniqueId is one group of its period.
    document = _document_elements(engine.dialect.name)
    unique_id = document.c.value
    entry = _document.alias("entry")
    later = _document.alias("later")
    # Every join names the patient too (a trace row's documents are its patient's): on Citus the
    # trace, the entries and the associations of a patient are on one shard, and so is the join.
    first_version = (
        select(func.min(later.c.version))
        .where(later.c.patient_id == _entry.c.patient_id, later.c.unique_id == unique_id)
        .scalar_subquery()
    )
    # A scalar subquery rather than EXISTS: PostgreSQL may run an EXISTS of the select list as one
    # hashed scan of every replacement in the registry (a million rows of `association` at 1 M
    # documents: 230 ms), where one index probe per document published is what it takes. Citus
    # cannot send a subquery of the select list to the shards: there, an outer join on the
    # patient and the entry finds the replacements (a document replaced twice is still counted
    # once: every count is of distinct uniqueIds).
    replacement = _association.alias("replacement")
    citus = distribution.engine_is_citus(engine)
    replacing = (
        replacement.c.entry_uuid.is_not(None)
        if citus
        else (
            select(literal(1))
            .where(
                _association.c.patient_id == entry.c.patient_id,
                _association.c.source == entry.c.entry_uuid,
                _association.c.association_type.in_(sorted(v.REPLACING_RELATIONSHIPS)),
            )
            .limit(1)
            .scalar_subquery()
            .is_not(None)
        )
    )
    documents = _entry.join(document, true()).outerjoin(
        entry,
        and_(
            entry.c.patient_id == _entry.c.patient_id,
            entry.c.unique_id == unique_id,
            entry.c.version == first_version,
        ),
    )
    if citus:
        documents = documents.outerjoin(
            replacement,
            and_(
                replacement.c.patient_id == entry.c.patient_id,
                replacement.c.source == entry.c.entry_uuid,
                replacement.c.association_type.in_(sorted(v.REPLACING_RELATIONSHIPS)),
            ),
        )
    publications = (
        select(
            period,
            entry.c.type_code,
            entry.c.type_code_scheme,
            entry.c.class_code,
            entry.c.class_code_scheme,
            func.count(distinct(unique_id)),
            func.count(distinct(case((replacing, unique_id)))),
        )
        .select_from(documents)
        .where(
            structure_requests(structure_id, SUBMISSIONS, first, last),
            _entry.c.outcome == t.SUCCESS,
            or_(entry.c.entry_uuid.is_(None), not_(_signature(entry))),
        )
        .group_by(period, entry.c.type_code, entry.c.type_code_scheme, entry.c.class_code, entry.c.class_code_scheme)
    )
    submissions = (
        select(period, _entry.c.outcome, func.count(), func.count(distinct(_entry.c.patient_id)))
        .where(structure_requests(structure_id, SUBMISSIONS, first, last))
        .group_by(period, _entry.c.outcome)
    )
    others = select(
        _entry.c.recorded_at,
        _entry.c.action,
        _entry.c.outcome,
        _entry.c.actor_id,
        _entry.c.patient_id,
        _entry.c.documents,
    ).where(
        structure_requests(structure_id, (t.UPDATE, t.DELETE, t.DMP_CREATE), first, last),
        _entry.c.outcome == t.SUCCESS,
    )
    reads = (
        select(_entry.c.action, period, func.count())
        .where(structure_requests(structure_id, t.DOCUMENT_READS, first, last), _entry.c.outcome == t.SUCCESS)
        .group_by(_entry.c.action, period)
    )
    published = [0] * count
    replaced = [0] * count
    by_type: list[Counter[tuple[str, str]]] = [Counter() for _ in periods]
    by_class: list[Counter[tuple[str, str]]] = [Counter() for _ in periods]
    fed = [0] * count
    refused = [0] * count
    changed: list[dict[str, None]] = [{} for _ in periods]
    changers: list[set[str]] = [set() for _ in periods]
    removed: list[dict[str, None]] = [{} for _ in periods]
    created: list[list[str]] = [[] for _ in periods]
    reads_of: list[dict[str, int]] = [{} for _ in periods]
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # PostgreSQL takes each trace row's documents (json_array_elements) for 100 rows, so
            # a year of them for a million, and compiles the statement first (JIT): 2.3 s of
            # compiling for 0.3 s of reading, with 1 M documents. For this transaction only.
            connection.exec_driver_sql("SET LOCAL jit = off")
        for index, type_code, type_scheme, class_code, class_scheme, number, replacers in connection.execute(
            publications
        ):
            if index >= count:
                continue
            published[index] += number
            replaced[index] += replacers
            by_type[index][(type_code or "", type_scheme or "")] += number
            by_class[index][(class_code or "", class_scheme or "")] += number
        for index, outcome, number, patients in connection.execute(submissions):
            if index >= count:
                continue
            if outcome == t.SUCCESS:
                fed[index] = patients
            elif outcome in REFUSED:
                refused[index] += number
        for row in connection.execute(others):
            found = _period_of(row.recorded_at, bounds)
            if found is None:
                continue
            if row.action == t.UPDATE:
                changed[found].update(dict.fromkeys(row.documents or ()))
                changers[found].add(row.actor_id)
            elif row.action == t.DELETE:
                removed[found].update(dict.fromkeys(row.documents or ()))
            else:
                created[found].append(row.patient_id)
        for action, index, number in connection.execute(reads):
            if index < count:
                reads_of[index][action] = number
        status = _status_events(connection, list(dict.fromkeys(uid for found in changed for uid in found)))
        consent_dates = _consent_dates(connection, [p for found in created for p in found])

    by_code: list[Counter[str]] = [Counter() for _ in periods]
    if any(refused):
        for refusal in refusals(engine, structure_id, first, last):
            found = _period_of(refusal.recorded_at, bounds)
            if found is not None:
                by_code[found].update(refusal.codes)

    result: list[Activity] = []
    for index, (start, end) in enumerate(periods):
        archived, deleted = _status_changes(status, list(changed[index]), changers[index], start, end)
        result.append(
            Activity(
                dmps_created=len(created[index]),
                consents_collected=sum(
                    1
                    for p in dict.fromkeys(created[index])
                    for when in consent_dates.get(p, ())
                    if start <= utc_aware(when) < end
                ),
                documents_published=published[index],
                documents_replaced=replaced[index],
                documents_archived=len(archived),
                documents_deleted=len(deleted | set(removed[index])),
                patients_fed=fed[index],
                submissions_refused=refused[index],
                searches=reads_of[index].get(t.SEARCH, 0),
                retrievals=reads_of[index].get(t.RETRIEVE, 0),
                by_type=_code_counts(by_type[index]),
                by_class=_code_counts(by_class[index]),
                refusals_by_code=tuple(sorted(by_code[index].items(), key=lambda item: (-item[1], item[0]))),
            )
        )
    return result


def _code_counts(counter: Counter[tuple[str, str]]) -> tuple[CodeCount, ...]:
    return tuple(
        CodeCount(code, scheme, count)
        for (code, scheme), count in sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    )


StatusEvent = tuple[str, Any, str, Any]  # uniqueId, detail, actor, recorded_at


def _status_events(connection: Connection, unique_ids: Sequence[str]) -> list[StatusEvent]:
    """The registry's status changes of these documents (any version), with who and when."""
    uuids: dict[str, str] = {}
    for chunk in _chunks(unique_ids):
        statement = select(_document.c.entry_uuid, _document.c.unique_id).where(_document.c.unique_id.in_(chunk))
        uuids.update(dict(connection.execute(statement).all()))
    events: list[StatusEvent] = []
    for chunk in _chunks(list(uuids)):
        statement = select(_event.c.object_uuid, _event.c.detail, _event.c.actor, _event.c.recorded_at).where(
            _event.c.object_uuid.in_(chunk), _event.c.action == STATUS_CHANGED
        )
        for row in connection.execute(statement):
            events.append((uuids[row.object_uuid], row.detail, row.actor, row.recorded_at))
    return events


def _status_changes(
    events: Sequence[StatusEvent], unique_ids: Sequence[str], actors: set[str], start: dt.datetime, end: dt.datetime
) -> tuple[set[str], set[str]]:
    """Of the documents the structure's ITI-57 requests changed, those its staff archived and
    those they deleted (the DMP's logical deletion, TD3.3c) in [start, end): the registry's
    history of status changes, by the same actors."""
    archived: set[str] = set()
    deleted: set[str] = set()
    wanted = set(unique_ids)
    for unique_id, detail, actor, recorded_at in events:
        if unique_id not in wanted or actor not in actors or not start <= utc_aware(recorded_at) < end:
            continue
        target = (detail or {}).get("to")
        if target == v.STATUS_ARCHIVED:
            archived.add(unique_id)
        elif target == v.STATUS_DELETED:
            deleted.add(unique_id)
    return archived, deleted


def _consent_dates(connection: Connection, patients: Sequence[str]) -> dict[str, list[Any]]:
    """When each of these patients' DMP consent was collected."""
    dates: dict[str, list[Any]] = {}
    for chunk in _chunks(list(dict.fromkeys(patients))):
        statement = select(_record.c.patient_id, _record.c.consent_collected_at).where(_record.c.patient_id.in_(chunk))
        for patient_id, collected_at in connection.execute(statement):
            dates.setdefault(patient_id, []).append(collected_at)
    return dates


# --- the figures of months that are over, kept ---------------------------------------------------


def _activity_json(found: Activity) -> dict[str, Any]:
    return {
        **{name: getattr(found, name) for name in _COUNTS},
        "by_type": [[c.code, c.scheme, c.count] for c in found.by_type],
        "by_class": [[c.code, c.scheme, c.count] for c in found.by_class],
        "refusals_by_code": [[code, count] for code, count in found.refusals_by_code],
    }


def _activity_of(value: dict[str, Any]) -> Activity:
    counts: dict[str, Any] = {name: int(value[name]) for name in _COUNTS}
    return Activity(
        **counts,
        by_type=tuple(CodeCount(str(c), str(s), int(n)) for c, s, n in value["by_type"]),
        by_class=tuple(CodeCount(str(c), str(s), int(n)) for c, s, n in value["by_class"]),
        refusals_by_code=tuple((str(code), int(n)) for code, n in value["refusals_by_code"]),
    )


_COUNTS = (
    "dmps_created",
    "consents_collected",
    "documents_published",
    "documents_replaced",
    "documents_archived",
    "documents_deleted",
    "patients_fed",
    "submissions_refused",
    "searches",
    "retrievals",
)


def kept_months(engine: Engine, structure_id: str, months: Sequence[str]) -> dict[str, Activity]:
    """The figures kept for these past months (YYYY-MM) of the structure, by month."""
    if not months:
        return {}
    statement = select(_closed.c.month, _closed.c.figures).where(
        _closed.c.structure_id == structure_id, _closed.c.month.in_(list(months))
    )
    with engine.connect() as connection:
        return {row.month: _activity_of(row.figures) for row in connection.execute(statement)}


def keep_month(engine: Engine, structure_id: str, month: str, found: Activity, now: dt.datetime) -> None:
    """Keep a past month's figures. Two workers may compute the same month at once: the first
    row stays (both computed the same figures)."""
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(_closed).values(
                    structure_id=structure_id, month=month, figures=_activity_json(found), computed_at=now
                )
            )
    except IntegrityError:
        pass


def active_structures(engine: Engine, since: dt.datetime) -> list[str]:
    """The structures that acted since `since`, by the trace (the rows that name one)."""
    statement = (
        select(_entry.c.structure_id)
        .distinct()
        .where(_entry.c.recorded_at >= utc_stamp(since), _entry.c.structure_id != "")
        .order_by(_entry.c.structure_id)
    )
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(statement)]
