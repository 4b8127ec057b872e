"""The registry on a real 3-node Citus cluster: the schema distributed by `db upgrade`, queries
routed to one shard, and the guarantees of a submission across shards and workers."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from citusserver import CitusCluster
from dmp_xds.storage import distribution
from dmp_xds.storage.database import DatabaseNotAtHead, create_engine_for, ensure_at_head, upgrade
from dmp_xds.storage.queries import QUERY_BY_NAME, QueryRows, StoredQuery, build_plan, parse_stored_query, run_plan
from dmp_xds.storage.store import RegistryStore, _submission_rows
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Submission
from factories import PATIENT_ID, make_document_entry, make_submission, new_uuid

pytestmark = pytest.mark.citus


@pytest.fixture
def citus_db(citus_cluster: CitusCluster) -> Iterator[tuple[str, str]]:
    """(database name, URL) of a fresh distributed database, migrated and distributed."""
    name = citus_cluster.create_database("registry")
    url = citus_cluster.url_for(name)
    upgrade(url)
    yield name, url
    citus_cluster.drop_database(name)


@pytest.fixture
def engine(citus_db: tuple[str, str]) -> Iterator[Engine]:
    engine = create_engine_for(citus_db[1])
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> RegistryStore:
    return RegistryStore(engine)


def _placements(engine: Engine) -> dict[str, tuple[str, str | None]]:
    """table -> (partition method: h hash, n reference; distribution column)."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("""
                SELECT logicalrelid::regclass::text, partmethod,
                       CASE WHEN partmethod = 'h' THEN column_to_column_name(logicalrelid, partkey) END
                FROM pg_dist_partition
            """)
        ).all()
    return {table: (method, column) for table, method, column in rows}


def test_upgrade_distributes_every_table_and_twice_is_a_no_op(citus_cluster: CitusCluster) -> None:
    name = citus_cluster.create_database("upgrade")
    url = citus_cluster.url_for(name)
    engine = create_engine_for(url)
    try:
        first = upgrade(url)
        assert "document_entry" in first and "registry_entry_uuid" in first
        assert upgrade(url) == []
        ensure_at_head(engine)
        placed = _placements(engine)
        for table in distribution.PATIENT_TABLES:
            assert placed[table] == ("h", "patient_id"), table
        for table, column in distribution.BY_ID_TABLES:
            assert placed[table] == ("h", column), table
        for table in distribution.REFERENCE_TABLES:
            assert placed[table][0] == "n", table
        with engine.connect() as connection:
            groups = set(
                connection.execute(
                    text("SELECT colocationid FROM pg_dist_partition WHERE logicalrelid::regclass::text = ANY(:t)"),
                    {"t": list(distribution.PATIENT_TABLES)},
                ).scalars()
            )
        assert len(groups) == 1  # co-located: a patient's rows of every table on one shard group
    finally:
        engine.dispose()
        citus_cluster.drop_database(name)


def test_a_coordinator_not_yet_distributed_is_refused_with_the_fix(citus_cluster: CitusCluster) -> None:
    from alembic import command

    from dmp_xds.storage.database import alembic_config

    name = citus_cluster.create_database("half")
    url = citus_cluster.url_for(name)
    engine = create_engine_for(url)
    try:
        config = alembic_config(url)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")  # the schema, not distributed
        with pytest.raises(DatabaseNotAtHead, match="not all distributed.*dmp-xds db upgrade"):
            ensure_at_head(engine)
    finally:
        engine.dispose()
        citus_cluster.drop_database(name)


# --- routing -------------------------------------------------------------------------------


def registered(submission: Submission) -> Submission:
    """The values the registry sets itself before storing (as test_registry_store does)."""
    if submission.submission_set is not None:
        submission.submission_set.status = v.STATUS_APPROVED
    for obj in [*submission.documents, *submission.folders]:
        obj.status = v.STATUS_APPROVED
        obj.logical_id = obj.logical_id or obj.entry_uuid
        obj.version = obj.version or "1"
    for assoc in submission.associations:
        assoc.status = v.STATUS_APPROVED
    return submission


def for_patient(patient: str, submission: Submission) -> Submission:
    if submission.submission_set is not None:
        submission.submission_set.patient_id = patient
    for obj in [*submission.documents, *submission.folders]:
        obj.patient_id = patient
    return registered(submission)


def _task_count(connection: Any, statement: str, parameters: Any) -> int:
    plan = "\n".join(row[0] for row in connection.exec_driver_sql("EXPLAIN " + statement, parameters))
    match = re.search(r"Task Count: (\d+)", plan)
    assert match is not None, plan
    return int(match.group(1))


@contextlib.contextmanager
def statements_run(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SELECTs run through `engine` meanwhile, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _query(name: str, **slots: str) -> StoredQuery:
    spec = QUERY_BY_NAME[name]
    parsed = parse_stored_query(spec.query_id, [(k, [val]) for k, val in slots.items()], v.RETURN_TYPE_LEAF_CLASS)
    assert not isinstance(parsed, list), parsed
    return parsed


def test_stored_queries_are_routed_to_one_shard(store: RegistryStore, engine: Engine) -> None:
    """Every statement of FindDocuments, GetAll, GetDocuments (by entryUUID, by uniqueId) and
    GetSubmissionSetAndContents runs on one shard (EXPLAIN: Task Count 1): the claim lookup, then
    the patient's selects, sub-selects included."""
    submission = registered(make_submission(2, with_folder=True))
    store.add_patient(PATIENT_ID)
    store.store_submission(submission)
    entry = submission.documents[0]
    assert submission.submission_set is not None and entry.unique_id is not None
    approved = f"('{v.STATUS_APPROVED}')"
    queries = {
        "FindDocuments": _query(
            "FindDocuments",
            **{v.P_DE_PATIENT_ID: f"'{PATIENT_ID}'", v.P_DE_STATUS: approved, v.P_DE_EVENT_CODE_LIST: "('e^^s')"},
        ),
        "GetAll": _query(
            "GetAll",
            **{
                v.P_PATIENT_ID: f"'{PATIENT_ID}'",
                v.P_DE_STATUS: approved,
                v.P_SS_STATUS: approved,
                v.P_FOLDER_STATUS: approved,
            },
        ),
        "GetDocuments by entryUUID": _query("GetDocuments", **{v.P_DE_ENTRY_UUID: f"('{entry.entry_uuid}')"}),
        "GetDocuments by uniqueId": _query("GetDocuments", **{v.P_DE_UNIQUE_ID: f"('{entry.unique_id}')"}),
        "GetSubmissionSetAndContents": _query(
            "GetSubmissionSetAndContents", **{v.P_SS_ENTRY_UUID: f"'{submission.submission_set.entry_uuid}'"}
        ),
    }
    for name, query in queries.items():
        with statements_run(engine) as seen:
            rows = run_plan(engine, build_plan(query), 100)
        assert isinstance(rows, QueryRows), name
        if name != "FindDocuments":
            assert rows.documents, name
        assert seen, name
        with engine.connect() as connection:
            tasks = {statement: _task_count(connection, statement, parameters) for statement, parameters in seen}
        assert set(tasks.values()) == {1}, (name, tasks)


def test_a_submission_writes_its_patient_rows_on_one_shard(store: RegistryStore, engine: Engine) -> None:
    """Each table of the patient gets the submission's rows in one routed INSERT; only the claim
    tables (by uniqueId, by entryUUID) spread over the shards of their ids."""
    submission = registered(make_submission(3, with_folder=True))
    rows = _submission_rows(submission, (), datetime.now(UTC))
    claims = {"registry_unique_id", "registry_entry_uuid", "repository_document"}
    with engine.connect() as connection:
        checked = 0
        for table, table_rows in rows:
            if not table_rows or table.name in claims:
                continue
            compiled = insert(table).values(table_rows).compile(dialect=engine.dialect)
            parameters = {k: json.dumps(val) if isinstance(val, dict | list) else val for k, val in compiled.params.items()}
            assert _task_count(connection, str(compiled), parameters) == 1, table.name
            checked += 1
    assert checked >= 8
