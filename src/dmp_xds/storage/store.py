"""The registry's reads and its atomic write of a submission.

`RegistryStore` is synchronous and thread-safe: it holds only the engine and statements
compiled once, and every method takes its own pooled connection. A submission is written in one
transaction whatever its size: one executemany INSERT per table, or on PostgreSQL a single
statement (storage/inserts.py), so that a new submission costs two round trips there, one to
read what the registry rules need and one to write.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Engine,
    String,
    Table,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from dmp_xds.storage import distribution, lifecycle
from dmp_xds.storage.inserts import PerTableInsert, PostgresSubmissionInsert, insert_statement
from dmp_xds.storage.serialize import document_entry_from_dict, sortable_dtm, to_dict
from dmp_xds.storage.tables import (
    AssociationRow,
    DocumentEntryAuthorRow,
    DocumentEntryCodeRow,
    DocumentEntryReferenceIdRow,
    DocumentEntryRow,
    FolderCodeRow,
    FolderRow,
    PatientRow,
    RegistryEntryUuidRow,
    RegistryUniqueIdRow,
    RepositoryDocumentRow,
    SubmissionSetAuthorRow,
    SubmissionSetRow,
    metadata,
)
from dmp_xds.xds.errors import ErrorCode, XdsFailure, error
from dmp_xds.xds.model import (
    KIND_ASSOCIATION,
    KIND_DOCUMENT_ENTRY,
    KIND_FOLDER,
    KIND_SUBMISSION_SET,
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    StoredDocument,
    Submission,
    SubmissionSet,
)
from dmp_xds.xds.registry.delete_rules import DeletePlan, DeleteSnapshot, Link
from dmp_xds.xds.registry.rules import ObjectInfo, RegistrySnapshot
from dmp_xds.xds.registry.update_rules import UpdatePlan, UpdateSnapshot

Row = dict[str, Any]

# Bound parameters per IN list: far below SQLite's limit (32766) and PostgreSQL's (65535).
IN_CHUNK = 500
# What store_submission records when its caller names no transaction (Change is frozen: one shared value).
_ITI42_CHANGE = lifecycle.Change("ITI-42")

CODE_KIND_CONFIDENTIALITY = "confidentiality"
CODE_KIND_EVENT = "event"

_patient = PatientRow.__table__
_document_entry = DocumentEntryRow.__table__
_document_entry_code = DocumentEntryCodeRow.__table__
_document_entry_author = DocumentEntryAuthorRow.__table__
_document_entry_reference_id = DocumentEntryReferenceIdRow.__table__
_submission_set = SubmissionSetRow.__table__
_submission_set_author = SubmissionSetAuthorRow.__table__
_folder = FolderRow.__table__
_folder_code = FolderCodeRow.__table__
_association = AssociationRow.__table__
_repository_document = RepositoryDocumentRow.__table__
_registry_unique_id = RegistryUniqueIdRow.__table__
_registry_entry_uuid = RegistryEntryUuidRow.__table__


# Statements built once: building SQLAlchemy constructs per call costs more than running them.
# IN lists are expanding bound parameters, so one compiled form serves every list length.
_IDS: BindParameter[str] = bindparam("ids", expanding=True)
_REPOSITORY_DOCUMENTS_IN = select(
    _repository_document.c.unique_id,
    _repository_document.c.path,
    _repository_document.c.size,
    _repository_document.c.hash,
    _repository_document.c.mime_type,
).where(_repository_document.c.unique_id.in_(_IDS))


def _latest_versions_query(key: str) -> Any:
    """(the asked entry's `key` column, then entryUUID and data of the latest version of its
    document): the highest version of its logical id, found through the (logical_id, version)
    index. The highest, not the `is_latest` row: when ITI-62 deleted the latest version, the
    highest one left is the document's current state."""
    asked, latest = _document_entry.alias("asked"), _document_entry.alias("latest")
    # Versions of one document are one patient's: joined on the patient id too, which Citus
    # pushes down to each shard.
    newest = (
        select(func.max(_document_entry.c.version))
        .where(_document_entry.c.patient_id == asked.c.patient_id, _document_entry.c.logical_id == asked.c.logical_id)
        .scalar_subquery()
    )
    return (
        select(asked.c[key], latest.c.entry_uuid, latest.c.data)
        .join_from(
            asked,
            latest,
            and_(latest.c.patient_id == asked.c.patient_id, latest.c.logical_id == asked.c.logical_id),
        )
        .where(asked.c[key].in_(_IDS), latest.c.version == newest)
    )


_LATEST_VERSIONS_BY_ENTRY_UUID = _latest_versions_query("entry_uuid")
_LATEST_VERSIONS_BY_UNIQUE_ID = _latest_versions_query("unique_id")


# The registry rules' reads: one text whatever the number of ids, so that the database keeps it
# parsed, with no limit on the number of ids. A list of ids is an array on PostgreSQL
# (`= ANY(...)`) and a JSON array on SQLite (`IN (SELECT value FROM json_each(...))`); both use
# the column's index.
def _in_id_list(column: Any, name: str, dialect: str) -> Any:
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(String)))
    return column.in_(select(func.json_each(bindparam(name, type_=String)).table_valued("value").c.value))


_PATIENT = "patient"


def _patients_and_unique_ids_query(dialect: str) -> Any:
    """Patients and uniqueIds of one submission in one round trip: (kind, value, holder), the
    uniqueIds as the database guards them (registry_unique_id)."""
    return union_all(
        select(
            literal(_PATIENT, String).label("kind"),
            _patient.c.patient_id.label("value"),
            cast(null(), String).label("holder"),
        ).where(_in_id_list(_patient.c.patient_id, "patients", dialect)),
        select(_registry_unique_id.c.kind, _registry_unique_id.c.unique_id, _registry_unique_id.c.holder).where(
            _in_id_list(_registry_unique_id.c.unique_id, "unique_ids", dialect)
        ),
    )


def _objects_query(dialect: str) -> Any:
    """Registered objects among some ids: (entryUUID, kind, patient id, status)."""
    return union_all(
        *[
            select(
                table.c.entry_uuid, literal(kind, String).label("kind"), patient.label("patient_id"), table.c.status
            ).where(_in_id_list(table.c.entry_uuid, "ids", dialect))
            for table, kind, patient in (
                (_document_entry, KIND_DOCUMENT_ENTRY, _document_entry.c.patient_id),
                (_submission_set, KIND_SUBMISSION_SET, _submission_set.c.patient_id),
                (_folder, KIND_FOLDER, _folder.c.patient_id),
                (_association, KIND_ASSOCIATION, cast(null(), String)),
            )
        ]
    )


@dataclass(frozen=True)
class DriverQuery:
    """A SELECT compiled once for a dialect, run on the driver's cursor (no per-call
    SQLAlchemy machinery: the registry rules read on every submission). Its parameters are
    lists of ids (see _in_id_list)."""

    sql: str
    constants: dict[str, Any]  # the literals SQLAlchemy made bound parameters
    order: tuple[str, ...] | None  # parameter names in order, for a positional driver
    postgres: bool

    @classmethod
    def compile(cls, query: Any, engine: Engine, lists: Sequence[str]) -> DriverQuery:
        compiled = query.compile(dialect=engine.dialect)
        given = {name: None for name in lists}
        constants = {k: v_ for k, v_ in compiled.construct_params(given).items() if k not in given}
        order = tuple(compiled.positiontup or ()) if compiled.positional else None
        return cls(compiled.string, constants, order, engine.dialect.name == "postgresql")

    def rows(self, cursor: Any, **lists: list[str]) -> list[tuple[Any, ...]]:
        values = {**self.constants, **{k: v_ if self.postgres else json.dumps(v_) for k, v_ in lists.items()}}
        params: Any = tuple(values[name] for name in self.order) if self.order is not None else values
        if self.postgres:
            # Never prepared: a generic plan made while the tables were small scans them whole
            # until the next ANALYZE; planned with its values, each lookup uses its index.
            cursor.execute(self.sql, params, prepare=False)
        else:
            cursor.execute(self.sql, params)
        return cursor.fetchall()


def _registered(rows: Iterable[tuple[str, str, str | None]]) -> tuple[set[str], dict[str, str | None]]:
    """Known patients and registered uniqueIds from (kind, value, holder) rows."""
    known: set[str] = set()
    registered: dict[str, str | None] = {}
    for kind, value, holder in rows:
        if kind == _PATIENT:
            known.add(value)
        else:
            registered[value] = holder if kind == KIND_DOCUMENT_ENTRY else None
    return known, registered


class RegistryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect
        self._postgres = dialect.name == "postgresql"
        # On Citus a submission's rows go to the patient's shard and its claims to theirs, one
        # INSERT per table in one distributed transaction (two-phase commit across workers);
        # the one-statement form (data-modifying CTEs) is for a single PostgreSQL.
        self.citus = self._postgres and distribution.engine_is_citus(engine)
        self._one_statement = self._postgres and not self.citus
        self._submission_insert: PerTableInsert | PostgresSubmissionInsert = (
            PostgresSubmissionInsert(SUBMISSION_TABLES, dialect)
            if self._one_statement
            else PerTableInsert(SUBMISSION_TABLES, dialect)
        )
        self._bulk_insert = PerTableInsert(metadata.sorted_tables, dialect)
        self._snapshot_query = DriverQuery.compile(
            _patients_and_unique_ids_query(dialect.name), engine, ["patients", "unique_ids"]
        )
        self._objects_query = DriverQuery.compile(_objects_query(dialect.name), engine, ["ids"])

    @contextlib.contextmanager
    def _autocommit_cursor(self) -> Iterator[Any]:
        """A driver cursor outside any transaction: a read, or one statement that is atomic by
        itself, costs no BEGIN and no COMMIT (PostgreSQL pays per round trip, on the same cores
        as the server). SQLite's driver begins a transaction only before a write: a plain
        connection is enough for its reads."""
        connect = self.engine.connect()
        with connect.execution_options(isolation_level="AUTOCOMMIT") if self._postgres else connect as connection:
            cursor = _driver_cursor(connection)
            try:
                yield cursor
            finally:
                cursor.close()

    # --- patients ------------------------------------------------------------------------

    def add_patient(self, patient_id: str) -> bool:
        """Register a patient; False if it was already known (safe under concurrent feeds)."""
        # preserve_rowcount: SQLAlchemy keeps an INSERT's rowcount only when asked to.
        statement = _insert_or_ignore(self.engine, _patient).execution_options(preserve_rowcount=True)
        with self.engine.begin() as connection:
            result = connection.execute(statement, {"patient_id": patient_id, "created_at": _now()})
            return result.rowcount == 1

    def patient_exists(self, patient_id: str) -> bool:
        return patient_id in self.known_patients([patient_id])

    def known_patients(self, patient_ids: Iterable[str]) -> set[str]:
        return set(self.snapshot(patient_ids, (), ()).known_patients)

    # --- what the registry already holds (for the registry rules) ------------------------

    def existing_unique_ids(self, unique_ids: Iterable[str]) -> dict[str, str | None]:
        """Registered uniqueIds: a DocumentEntry's maps to its hash, a SubmissionSet's or a
        Folder's to None (reusing it is an error whatever the hash)."""
        return self.snapshot((), unique_ids, ()).unique_ids

    def existing_objects(self, uuids: Iterable[str]) -> dict[str, ObjectInfo]:
        """Registered objects among `uuids`: id -> (kind, patient id, status), in one query."""
        return self.snapshot((), (), uuids).objects

    def snapshot(
        self, patient_ids: Iterable[str], unique_ids: Iterable[str], object_ids: Iterable[str]
    ) -> RegistrySnapshot:
        """What the registry rules need to know of one submission, read on one connection."""
        patients = _distinct(patient_ids)
        unique_id_list = _distinct(unique_ids)
        known: set[str] = set()
        registered: dict[str, str | None] = {}
        with self._autocommit_cursor() as cursor, self._driver_errors("SELECT (registry snapshot)"):
            if patients or unique_id_list:
                known, registered = _registered(
                    self._snapshot_query.rows(cursor, patients=patients, unique_ids=unique_id_list)
                )
            objects = self._objects(cursor, object_ids)
        return RegistrySnapshot(frozenset(known), registered, objects)

    def _objects(self, cursor: Any, ids: Iterable[str]) -> dict[str, ObjectInfo]:
        wanted = _distinct(ids)
        return (
            {row[0]: (row[1], row[2], row[3]) for row in self._objects_query.rows(cursor, ids=wanted)} if wanted else {}
        )

    @contextlib.contextmanager
    def _driver_errors(self, statement: str) -> Iterator[None]:
        """Raise what Connection.execute would for an error of the driver's cursor
        (OperationalError: the registry is busy...)."""
        dbapi = self.engine.dialect.loaded_dbapi
        try:
            yield
        except dbapi.Error as exc:
            raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc

    # --- DocumentEntries -----------------------------------------------------------------

    def get_document_entries(self, uuids: Iterable[str]) -> list[DocumentEntry]:
        """The registered DocumentEntries with these entryUUIDs, in the order asked."""
        wanted = list(dict.fromkeys(uuids))
        by_uuid: dict[str, DocumentEntry] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(wanted):
                query = select(_document_entry.c.entry_uuid, _document_entry.c.status, _document_entry.c.data).where(
                    _document_entry.c.entry_uuid.in_(chunk)
                )
                for entry_uuid, status, data in connection.execute(query):
                    by_uuid[entry_uuid] = _with_status(document_entry_from_dict(data), status)
        return [by_uuid[u] for u in wanted if u in by_uuid]

    def get_document_entries_by_unique_id(self, unique_ids: Iterable[str]) -> list[DocumentEntry]:
        """Every registered DocumentEntry with one of these uniqueIds (all versions), in the
        order asked, then by logical id and version."""
        wanted = list(dict.fromkeys(unique_ids))
        found: list[tuple[str, str, int, DocumentEntry]] = []
        with self.engine.connect() as connection:
            for chunk in _chunks(wanted):
                query = select(
                    _document_entry.c.unique_id,
                    _document_entry.c.logical_id,
                    _document_entry.c.version,
                    _document_entry.c.status,
                    _document_entry.c.data,
                ).where(_document_entry.c.unique_id.in_(chunk))
                for unique_id, logical_id, version, status, data in connection.execute(query):
                    found.append((unique_id, logical_id, version, _with_status(document_entry_from_dict(data), status)))
        position = {unique_id: index for index, unique_id in enumerate(wanted)}
        found.sort(key=lambda item: (position[item[0]], item[1], item[2]))
        return [entry for *_, entry in found]

    def latest_versions(self, entry_uuids: Iterable[str]) -> dict[str, DocumentEntry]:
        """For each registered DocumentEntry among `entry_uuids` (any version), the latest
        version of its document (same logical id): what the access policy judges every version
        by. One statement per IN_CHUNK ids."""
        found: dict[str, DocumentEntry] = {}
        chunks = list(_chunks(entry_uuids))
        if not chunks:
            return found
        with self.engine.connect() as connection:
            for chunk in chunks:
                for entry_uuid, _, data in connection.execute(_LATEST_VERSIONS_BY_ENTRY_UUID, {"ids": chunk}):
                    found[entry_uuid] = document_entry_from_dict(data)
        return found

    def latest_versions_by_unique_id(self, unique_ids: Iterable[str]) -> dict[str, list[DocumentEntry]]:
        """For each registered uniqueId among `unique_ids`, the latest version of every document
        registered with it: one, unless the same document was registered again (same hash)."""
        found: dict[str, dict[str, DocumentEntry]] = {}
        chunks = list(_chunks(unique_ids))
        if not chunks:
            return {}
        with self.engine.connect() as connection:
            for chunk in chunks:
                for unique_id, latest_uuid, data in connection.execute(_LATEST_VERSIONS_BY_UNIQUE_ID, {"ids": chunk}):
                    documents = found.setdefault(unique_id, {})
                    if latest_uuid not in documents:  # one row per version of the document asked
                        documents[latest_uuid] = document_entry_from_dict(data)
        return {unique_id: list(documents.values()) for unique_id, documents in found.items()}

    # --- repository ----------------------------------------------------------------------

    def get_repository_documents(self, unique_ids: Iterable[str]) -> dict[str, StoredDocument]:
        found: dict[str, StoredDocument] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(unique_ids):
                for unique_id, path, size, hash_, mime_type in connection.execute(
                    _REPOSITORY_DOCUMENTS_IN, {"ids": chunk}
                ):
                    found[unique_id] = StoredDocument(unique_id, path, size, hash_, mime_type)
        return found

    # --- the atomic write ----------------------------------------------------------------

    def store_submission(
        self,
        submission: Submission,
        repository_documents: Sequence[StoredDocument] = (),
        *,
        on_before_commit: Callable[[], None] | None = None,
        change: lifecycle.Change = _ITI42_CHANGE,
    ) -> None:
        """Insert every object of `submission`, and the repository's rows, in one transaction.

        Ids must already be `urn:uuid:` and the registry's own values (status, version...) set.
        What the submission changes in stored metadata (replaced documents deprecated, folders
        joined and touched) happens in the same transaction, recorded as `change`.
        `on_before_commit` runs inside the transaction, last: the repository publishes its files
        there. If it raises, nothing is stored and its exception propagates.
        """
        now = _now()
        rows = _submission_rows(submission, repository_documents, now)
        dbapi = self.engine.dialect.loaded_dbapi
        replacing = lifecycle.replacements(submission)
        members = lifecycle.stored_folder_members(submission)
        if self._one_statement and on_before_commit is None and not replacing and not members:
            # New objects only: one statement, atomic by itself, in one round trip.
            with self._autocommit_cursor() as cursor:
                self._submission_insert.run(cursor, rows, dbapi)
            return
        with self.engine.begin() as connection:
            cursor = _driver_cursor(connection)
            try:
                self._submission_insert.run(cursor, rows, dbapi)
            finally:
                cursor.close()
            _apply_to_stored_metadata(connection, submission, replacing, members, change, now)
            if on_before_commit is not None:
                on_before_commit()

    # --- ITI-57 --------------------------------------------------------------------------

    def update_snapshot(
        self, logical_ids: Sequence[str], ends: Sequence[str], patients: Sequence[str]
    ) -> UpdateSnapshot:
        with self.engine.connect() as connection:
            return lifecycle.read_update_snapshot(connection, logical_ids, ends, patients)

    def store_update(self, submission: Submission, plan: UpdatePlan, change: lifecycle.Change) -> None:
        """An ITI-57 update in one transaction: the message's rows (SubmissionSet, new versions,
        associations), then what it changes in stored metadata (update_rules.UpdatePlan)."""
        now = _now()
        with self.engine.begin() as connection:
            for table, rows in _submission_rows(submission, (), now, new_versions=True):
                if rows:
                    connection.execute(insert_statement(table, self.engine.dialect), rows)
            events = lifecycle.apply_update(connection, submission, plan, now)
            ss_uuid = submission.submission_set.entry_uuid if submission.submission_set is not None else None
            lifecycle.record(connection, change, ss_uuid, events, now)

    # --- ITI-62 --------------------------------------------------------------------------

    def delete_snapshot(self, uuids: Sequence[str]) -> DeleteSnapshot:
        """What `delete_rules.plan_delete` needs about these ids, read on one connection: their
        kinds, every association naming one of them or an end of a requested association (to
        see what a deletion leaves behind), and the kinds of those associations' ends."""
        with (
            self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection,
            self._driver_errors("SELECT (objects to delete)"),
        ):
            cursor = _driver_cursor(connection)
            kinds = {uuid: info[0] for uuid, info in self._objects(cursor, uuids).items()}
            requested_links = _links(connection, [u for u, k in kinds.items() if k == KIND_ASSOCIATION], by_id=True)
            around = set(kinds) | {end for link in requested_links.values() for end in (link.source, link.target)}
            links = {**_links(connection, sorted(around), by_id=False), **requested_links}
            ends = {end for link in links.values() for end in (link.source, link.target)} - set(kinds)
            kinds.update({uuid: info[0] for uuid, info in self._objects(cursor, ends).items()})
        return DeleteSnapshot(kinds, links)

    def delete_objects(self, plan: DeletePlan, change: lifecycle.Change) -> list[str]:
        """Delete the planned objects in one transaction, with one `lifecycle_event` per object,
        and the repository's rows of the documents no DocumentEntry refers to any more (every
        version of a document shares its uniqueId, so a document goes with its last entry).

        Returns the paths of those documents' files, for the caller to remove once this has
        committed. The statements check what the plan was made from: an object deleted
        concurrently, or an association registered concurrently that names a deleted object,
        fails the whole deletion (XdsFailure).
        """
        now = _now()
        with self.engine.begin() as connection:
            events = _deleted_events(connection, plan)
            patient_of = {e.object_uuid: e.patient_id or "" for e in events}
            for kind, ids in plan.objects:
                table = _TABLE_OF_KIND[kind]
                deleted = 0
                by_patient: dict[str, list[str]] = {}
                for uuid in ids:
                    by_patient.setdefault(patient_of.get(uuid, ""), []).append(uuid)
                for patient, patient_ids in by_patient.items():
                    for chunk in _chunks(patient_ids):
                        deleted += connection.execute(
                            delete(table)
                            .where(table.c.patient_id == patient, table.c.entry_uuid.in_(chunk))
                            .execution_options(preserve_rowcount=True)
                        ).rowcount
                for chunk in _chunks(ids):
                    connection.execute(delete(_registry_entry_uuid).where(_registry_entry_uuid.c.entry_uuid.in_(chunk)))
                if deleted != len(set(ids)):
                    raise XdsFailure(
                        [
                            error(
                                ErrorCode.UNRESOLVED_REFERENCE,
                                f"a {kind} to delete was deleted concurrently; nothing was deleted",
                            )
                        ]
                    )
            dangling = _links(connection, plan.ids, by_id=False)
            if dangling:
                link = next(iter(dangling.values()))
                raise XdsFailure(
                    [
                        error(
                            ErrorCode.REFERENCES_EXIST,
                            f"association {link.entry_uuid} naming a deleted object was registered "
                            "concurrently; nothing was deleted",
                            link.entry_uuid,
                        )
                    ]
                )
            released = {
                kind: release_unique_ids(
                    connection, kind, [e.detail["uniqueId"] for e in events if e.object_kind == kind]
                )
                for kind in KINDS_WITH_UNIQUE_IDS
            }
            gone = released[KIND_DOCUMENT_ENTRY]
            paths: list[str] = []
            for chunk in _chunks(gone):
                paths += connection.scalars(
                    select(_repository_document.c.path).where(_repository_document.c.unique_id.in_(chunk))
                ).all()
                connection.execute(delete(_repository_document).where(_repository_document.c.unique_id.in_(chunk)))
            for event in events:
                if event.object_kind == KIND_DOCUMENT_ENTRY:
                    event.detail["lastEntryOfItsDocument"] = event.detail["uniqueId"] in gone
            lifecycle.record(connection, change, None, events, now)
        return paths

    # --- bulk loading (bench-load) -------------------------------------------------------

    def bulk_store(self, submissions: Sequence[Submission], patient_ids: Sequence[str] = ()) -> int:
        """Insert many ready submissions (and patients) in one transaction, one executemany per
        table: for filling a registry with generated data, not for client submissions (no
        checks, no replacement handling: statuses are stored as given). Returns the rows written."""
        now = _now()
        merged: dict[str, tuple[Table, list[Row]]] = {}
        patient_rows = [{"patient_id": p, "created_at": now} for p in dict.fromkeys(patient_ids)]
        merged[_patient.name] = (_patient, patient_rows)
        for submission in submissions:
            for table, rows in _submission_rows(submission, (), now):
                merged.setdefault(table.name, (table, []))[1].extend(rows)
        dbapi = self.engine.dialect.loaded_dbapi
        ordered = [merged.get(t.name, (t, [])) for t in metadata.sorted_tables]  # parents before children
        with self.engine.begin() as connection:
            cursor = _driver_cursor(connection)
            try:
                self._bulk_insert.run(cursor, ordered, dbapi)
            finally:
                cursor.close()
        return sum(len(rows) for _, rows in ordered)

    # --- diagnostics ---------------------------------------------------------------------

    def count_rows(self) -> dict[str, int]:
        """Rows in every table, in one query (tests use it to prove a rejection stored nothing)."""
        tables = metadata.sorted_tables
        query = select(*[select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables])
        with self.engine.connect() as connection:
            counts = connection.execute(query).one()
        return {t.name: int(count) for t, count in zip(tables, counts, strict=True)}


def _driver_cursor(connection: Connection) -> Any:
    """A cursor of the driver's own connection under `connection`, for executemany and
    prepared statements without SQLAlchemy's per-statement work."""
    driver = connection.connection.driver_connection
    if driver is None:  # only once the connection has been invalidated
        raise RuntimeError("the database connection is closed")
    return driver.cursor()


def _apply_to_stored_metadata(
    connection: Connection,
    submission: Submission,
    replacing: list[Association],
    members: dict[str, list[str]],
    change: lifecycle.Change,
    now: datetime,
) -> None:
    """Replacements deprecate their originals and join their folders; stored folders that gain
    members are touched. Nothing to do (no statement) for a submission of new objects only."""
    if not replacing and not members:
        return
    ss_uuid = submission.submission_set.entry_uuid if submission.submission_set is not None else None
    patient = lifecycle.submission_patient(submission)
    events: list[lifecycle.Event] = []
    if replacing:
        originals = [a.target for a in replacing]
        events += lifecycle.deprecate_originals(connection, patient, originals)
        joined = lifecycle.replacement_folder_associations(
            submission, lifecycle.folder_memberships(connection, patient, originals)
        )
        lifecycle.insert_associations(connection, patient, joined, ss_uuid, now)
        for assoc in joined:
            members.setdefault(assoc.source, []).append(assoc.target)
    events += lifecycle.touch_folders(connection, patient, members, now, members)
    lifecycle.record(connection, change, ss_uuid, events, now)


# --- deletions (ITI-62) ---------------------------------------------------------------------

_TABLE_OF_KIND: dict[str, Table] = {
    KIND_DOCUMENT_ENTRY: _document_entry,
    KIND_SUBMISSION_SET: _submission_set,
    KIND_FOLDER: _folder,
    KIND_ASSOCIATION: _association,
}
_LINK_COLUMNS = (
    _association.c.entry_uuid,
    _association.c.association_type,
    _association.c.source,
    _association.c.target,
)


KINDS_WITH_UNIQUE_IDS = (KIND_DOCUMENT_ENTRY, KIND_FOLDER, KIND_SUBMISSION_SET)


def release_unique_ids(connection: Connection, kind: str, unique_ids: Iterable[str]) -> list[str]:
    """Of the uniqueIds of objects of `kind` just deleted, those no such object holds any more
    (in the deleting transaction): their claims go too, so that they may be registered again,
    as they could before the objects were."""
    table = _TABLE_OF_KIND[kind]
    deleted = set(unique_ids)
    still_used: set[str] = set()
    for chunk in _chunks(deleted):
        still_used.update(connection.scalars(select(table.c.unique_id).where(table.c.unique_id.in_(chunk))))
    gone = sorted(deleted - still_used)
    for chunk in _chunks(gone):
        connection.execute(
            delete(_registry_unique_id).where(
                _registry_unique_id.c.unique_id.in_(chunk), _registry_unique_id.c.kind == kind
            )
        )
    return gone


def _links(connection: Connection, uuids: Sequence[str], *, by_id: bool) -> dict[str, Link]:
    """Associations with these entryUUIDs (`by_id`), or naming one of them at either end."""
    found: dict[str, Link] = {}
    for chunk in _chunks(uuids):
        where = (
            _association.c.entry_uuid.in_(chunk)
            if by_id
            else or_(_association.c.source.in_(chunk), _association.c.target.in_(chunk))
        )
        for entry_uuid, association_type, source, target in connection.execute(select(*_LINK_COLUMNS).where(where)):
            found[entry_uuid] = Link(entry_uuid, association_type, source, target)
    return found


def _deleted_events(connection: Connection, plan: DeletePlan) -> list[lifecycle.Event]:
    """One history event per object to delete, saying what it was (read in the deleting
    transaction, before the rows go)."""
    events: list[lifecycle.Event] = []
    for chunk in _chunks(plan.of_kind(KIND_ASSOCIATION)):
        for row in connection.execute(
            select(*_LINK_COLUMNS, _association.c.status, _association.c.patient_id).where(
                _association.c.entry_uuid.in_(chunk)
            )
        ):
            events.append(
                lifecycle.Event(
                    lifecycle.DELETED,
                    KIND_ASSOCIATION,
                    row.entry_uuid,
                    patient_id=row.patient_id,
                    detail={
                        "associationType": row.association_type,
                        "source": row.source,
                        "target": row.target,
                        "status": row.status,
                    },
                )
            )
    for kind, table in ((KIND_DOCUMENT_ENTRY, _document_entry), (KIND_FOLDER, _folder)):
        for chunk in _chunks(plan.of_kind(kind)):
            for stored in connection.execute(
                select(
                    table.c.entry_uuid,
                    table.c.logical_id,
                    table.c.version,
                    table.c.patient_id,
                    table.c.unique_id,
                    table.c.status,
                ).where(table.c.entry_uuid.in_(chunk))
            ):
                events.append(
                    lifecycle.Event(
                        lifecycle.DELETED,
                        kind,
                        stored.entry_uuid,
                        stored.logical_id,
                        stored.patient_id,
                        {"uniqueId": stored.unique_id, "version": stored.version, "status": stored.status},
                    )
                )
    for chunk in _chunks(plan.of_kind(KIND_SUBMISSION_SET)):
        for submission_set in connection.execute(
            select(
                _submission_set.c.entry_uuid,
                _submission_set.c.patient_id,
                _submission_set.c.unique_id,
                _submission_set.c.status,
            ).where(_submission_set.c.entry_uuid.in_(chunk))
        ):
            events.append(
                lifecycle.Event(
                    lifecycle.DELETED,
                    KIND_SUBMISSION_SET,
                    submission_set.entry_uuid,
                    None,
                    submission_set.patient_id,
                    {"uniqueId": submission_set.unique_id, "status": submission_set.status},
                )
            )
    return events


# --- rows of a submission -------------------------------------------------------------------


# The tables a submission writes, parents before children (_submission_rows gives them in this
# order); the uniqueId claims first, so that a uniqueId taken meanwhile stops the rest early.
SUBMISSION_TABLES: tuple[Table, ...] = (
    _registry_unique_id,
    _registry_entry_uuid,
    _submission_set,
    _submission_set_author,
    _document_entry,
    _document_entry_code,
    _document_entry_author,
    _document_entry_reference_id,
    _folder,
    _folder_code,
    _association,
    _repository_document,
)


def _submission_rows(
    submission: Submission, repository_documents: Sequence[StoredDocument], now: datetime, *, new_versions: bool = False
) -> list[tuple[Table, list[Row]]]:
    """Every row to insert, table by table, parents before children (foreign keys).
    `new_versions`: the DocumentEntries and Folders are new versions of registered ones (ITI-57)."""
    ss = submission.submission_set
    ss_uuid = ss.entry_uuid if ss is not None else None
    patient = lifecycle.submission_patient(submission)
    documents = submission.documents
    repository_ids = {de.unique_id: de.repository_unique_id for de in documents}
    return [
        (_registry_unique_id, _unique_id_rows(submission, patient, new_versions)),
        (_registry_entry_uuid, _entry_uuid_rows(submission, patient)),
        (_submission_set, [_submission_set_row(ss, now)] if ss is not None else []),
        (_submission_set_author, _author_rows(patient, ss.entry_uuid, ss.authors) if ss is not None else []),
        (_document_entry, [_document_entry_row(de, ss_uuid, now) for de in documents]),
        (_document_entry_code, [row for de in documents for row in _document_code_rows(patient, de)]),
        (
            _document_entry_author,
            [row for de in documents for row in _author_rows(patient, de.entry_uuid, de.authors)],
        ),
        (
            _document_entry_reference_id,
            [
                {"patient_id": patient, "entry_uuid": de.entry_uuid, "reference_id": ref}
                for de in documents
                for ref in de.reference_ids
            ],
        ),
        (_folder, [_folder_row(folder, now) for folder in submission.folders]),
        (
            _folder_code,
            [
                {"patient_id": patient, "entry_uuid": folder.entry_uuid, "code": code.code, "scheme": code.scheme}
                for folder in submission.folders
                for code in folder.codes
            ],
        ),
        (_association, [_association_row(a, patient, ss_uuid, now) for a in submission.associations]),
        (
            _repository_document,
            [_repository_document_row(doc, repository_ids.get(doc.unique_id), now) for doc in repository_documents],
        ),
    ]


def _entry_uuid_rows(submission: Submission, patient: str) -> list[Row]:
    """The claim of each entryUUID of the submission (tables.RegistryEntryUuidRow)."""
    ss = submission.submission_set
    objects = [(KIND_SUBMISSION_SET, ss.entry_uuid)] if ss is not None else []
    objects += [(KIND_DOCUMENT_ENTRY, de.entry_uuid) for de in submission.documents]
    objects += [(KIND_FOLDER, f.entry_uuid) for f in submission.folders]
    objects += [(KIND_ASSOCIATION, a.entry_uuid) for a in submission.associations]
    # In id order, for the reason _unique_id_rows gives.
    return [
        {"entry_uuid": entry_uuid, "kind": kind, "patient_id": patient}
        for kind, entry_uuid in sorted(objects, key=lambda claim: claim[1])
    ]


def _unique_id_rows(submission: Submission, patient: str, new_versions: bool) -> list[Row]:
    """The claim of each uniqueId of the submission (tables.RegistryUniqueIdRow); the same
    document registered again makes the claim already there. A new version (ITI-57) keeps the
    uniqueId of its logical object (update_rules), whose claim stands: it is not made again, as
    a new version may change the hash (NIST 15801)."""
    ss = submission.submission_set
    claims = [(KIND_SUBMISSION_SET, ss.unique_id, ss.entry_uuid)] if ss is not None else []
    if not new_versions:
        claims += [
            (KIND_DOCUMENT_ENTRY, de.unique_id, _required(de.hash, "hash", de.entry_uuid).lower())
            for de in submission.documents
        ]
        claims += [(KIND_FOLDER, f.unique_id, f.logical_id or f.entry_uuid) for f in submission.folders]
    # In uniqueId order: two submissions waiting for each other's claims on PostgreSQL take
    # them in the same order, and one waits instead of both deadlocking.
    return [
        {"unique_id": unique_id, "kind": kind, "holder": holder, "patient_id": patient}
        for kind, unique_id, holder in sorted(dict.fromkeys(claims), key=lambda claim: claim[1] or "")
        if unique_id
    ]


def _document_entry_row(de: DocumentEntry, ss_uuid: str | None, now: datetime) -> Row:
    return {
        "entry_uuid": de.entry_uuid,
        "logical_id": de.logical_id or de.entry_uuid,
        "version": _version_number(de.version),
        "unique_id": _required(de.unique_id, "uniqueId", de.entry_uuid),
        "patient_id": _required(de.patient_id, "patientId", de.entry_uuid),
        "status": _required(de.status, "status", de.entry_uuid),
        "object_type": de.object_type,
        "mime_type": de.mime_type,
        **_code_columns("class_code", de.class_code),
        **_code_columns("type_code", de.type_code),
        **_code_columns("format_code", de.format_code),
        **_code_columns("healthcare_facility_type_code", de.healthcare_facility_type_code),
        **_code_columns("practice_setting_code", de.practice_setting_code),
        "creation_time": sortable_dtm(de.creation_time),
        "service_start_time": sortable_dtm(de.service_start_time),
        "service_stop_time": sortable_dtm(de.service_stop_time),
        "hash": de.hash,
        "size": de.size,
        "repository_unique_id": de.repository_unique_id,
        "submission_set_uuid": ss_uuid,
        "created_at": now,
        "data": to_dict(de),
        "is_latest": True,
    }


def _document_code_rows(patient: str, de: DocumentEntry) -> list[Row]:
    kinds = [(CODE_KIND_CONFIDENTIALITY, de.confidentiality_codes), (CODE_KIND_EVENT, de.event_codes)]
    return [
        {"patient_id": patient, "entry_uuid": de.entry_uuid, "kind": kind, "code": code.code, "scheme": code.scheme}
        for kind, codes in kinds
        for code in codes
    ]


def _author_rows(patient: str, entry_uuid: str, authors: list[Author]) -> list[Row]:
    # Only authorPerson is searched (FindDocuments / FindSubmissionSets); an author known only
    # by institution has nothing to index.
    return [{"patient_id": patient, "entry_uuid": entry_uuid, "author_person": a.person} for a in authors if a.person]


def _submission_set_row(ss: SubmissionSet, now: datetime) -> Row:
    return {
        "entry_uuid": ss.entry_uuid,
        "unique_id": _required(ss.unique_id, "uniqueId", ss.entry_uuid),
        "source_id": ss.source_id,
        "patient_id": _required(ss.patient_id, "patientId", ss.entry_uuid),
        "submission_time": sortable_dtm(ss.submission_time),
        "status": _required(ss.status, "status", ss.entry_uuid),
        **_code_columns("content_type_code", ss.content_type_code),
        "created_at": now,
        "data": to_dict(ss),
    }


def _folder_row(folder: Folder, now: datetime) -> Row:
    return {
        "entry_uuid": folder.entry_uuid,
        "logical_id": folder.logical_id or folder.entry_uuid,
        "version": _version_number(folder.version),
        "unique_id": _required(folder.unique_id, "uniqueId", folder.entry_uuid),
        "patient_id": _required(folder.patient_id, "patientId", folder.entry_uuid),
        "status": _required(folder.status, "status", folder.entry_uuid),
        "last_update_time": sortable_dtm(folder.last_update_time),
        "created_at": now,
        "data": to_dict(folder),
        "is_latest": True,
    }


def _association_row(assoc: Association, patient: str, ss_uuid: str | None, now: datetime) -> Row:
    return {
        **lifecycle.association_row(assoc, patient, ss_uuid, now),
        "status": _required(assoc.status, "status", assoc.entry_uuid),
    }


def _repository_document_row(doc: StoredDocument, repository_unique_id: str | None, now: datetime) -> Row:
    return {
        "unique_id": doc.unique_id,
        "repository_unique_id": repository_unique_id,
        "path": doc.path,
        "size": doc.size,
        "hash": doc.hash,
        "mime_type": doc.mime_type,
        "created_at": now,
    }


def _code_columns(name: str, code: Code | None) -> Row:
    return {name: code.code if code else None, f"{name}_scheme": code.scheme if code else None}


def _version_number(version: str | None) -> int:
    # The registry numbers versions 1, 2, ... (ITI TF-3 §4.1.1); anything else is a first one.
    return int(version) if version and version.isdigit() else 1


def _required(value: str | None, attribute: str, entry_uuid: str) -> str:
    # Validation runs before the store: a missing value here is a bug, not a client error, and
    # must not pass for a constraint violation ("registered concurrently").
    if not value:
        raise ValueError(f"{entry_uuid}: {attribute} is required to store the object")
    return value


# --- helpers ---------------------------------------------------------------------------------


def _insert_or_ignore(engine: Engine, table: Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, which both supported databases spell the same way."""
    name = engine.dialect.name
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"database {name!r} is not supported (SQLite and PostgreSQL are)")


def _distinct(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v_ for v_ in values if v_))


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(v for v in values if v))
    for start in range(0, len(unique), IN_CHUNK):
        yield unique[start : start + IN_CHUNK]


def _now() -> datetime:
    return datetime.now(UTC)


def _with_status(entry: DocumentEntry, status: str) -> DocumentEntry:
    """The entry with the status of its row: an update (Deprecated, Deleted, Archived) changes
    the status column, not the stored metadata."""
    entry.status = status
    return entry
