"""The registry on a real 3-node Citus cluster: the schema distributed by `db upgrade`, queries
routed to one shard, and the guarantees of a submission across shards and workers."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from psycopg import sql
from sqlalchemy import Engine, event, insert, text
from sqlalchemy.exc import DBAPIError, IntegrityError

import soap_messages as soap
from citusserver import CitusCluster
from dmp_xds.dmp.model import Consent
from dmp_xds.storage import distribution
from dmp_xds.storage.database import DatabaseNotAtHead, create_engine_for, ensure_at_head, upgrade
from dmp_xds.storage.patient_accounts import Channel, LoginTaken, PatientAccountStore
from dmp_xds.storage.queries import QUERY_BY_NAME, QueryRows, StoredQuery, build_plan, parse_stored_query, run_plan
from dmp_xds.storage.records import DmpStore
from dmp_xds.storage.store import RegistryStore, _submission_rows
from dmp_xds.storage.tables import metadata
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.errors import ErrorCode
from dmp_xds.xds.model import Submission
from factories import PATIENT_ID, make_document_entry, make_submission, registered
from xds_server import start_server, stop_server, stored_state

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
        for table in distribution.TRACE_TABLES:
            # Distributed once the trace is chained per patient (its keys hold the patient id).
            per_patient = "patient_id" in metadata.tables[table].primary_key.columns
            assert placed.get(table) == (("h", "patient_id") if per_patient else None), table
        for table in distribution.REFERENCE_TABLES:
            if table in metadata.tables:  # audit_legacy_head comes with the per-patient trace
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
            parameters = {
                k: json.dumps(val) if isinstance(val, dict | list) else val for k, val in compiled.params.items()
            }
            assert _task_count(connection, str(compiled), parameters) == 1, table.name
            checked += 1
    assert checked >= 8


# --- across shards and workers -------------------------------------------------------------


def patients_on_each_worker(cluster: CitusCluster, database: str) -> list[str]:
    """One patient id per worker: the shard of each is on that worker."""
    found: dict[int, str] = {}
    for n in range(1000):
        patient = f"{2000000000000 + n}^^^&1.2.250.1.213.1.4.8&ISO"
        found.setdefault(cluster.worker_of_shard(database, "patient", patient), patient)
        if len(found) == len(cluster.workers):
            return [found[i] for i in range(len(cluster.workers))]
    raise AssertionError("no patient found for every worker")


def durable_commits(cluster: CitusCluster, database: str) -> None:
    """Commits on disk before they return, on every node, for this database: the test cluster
    runs with synchronous_commit off, whose last commits a crashed worker would lose. (Citus
    passes the setting on to the workers.)"""
    with cluster.connect(cluster.coordinator, database) as connection:
        connection.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = on").format(sql.Identifier(database)))
    for worker in cluster.workers:
        with cluster.connect(worker, database) as connection:
            row = connection.execute("SHOW synchronous_commit").fetchone()
            assert row == ("on",), row


def prepared_transactions(cluster: CitusCluster, database: str) -> int:
    """Two-phase commits left prepared on any node (a half-done distributed transaction)."""
    total = 0
    for node in cluster.nodes:
        with cluster.connect(node, database) as connection:
            row = connection.execute("SELECT count(*) FROM pg_prepared_xacts").fetchone()
            total += int(row[0]) if row else 0
    return total


def at_once(calls: list[Callable[[], None]]) -> list[BaseException | None]:
    """Run each call in a thread of its own (they meet at a barrier of their own); what each
    raised, or None."""
    outcomes: list[BaseException | None] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            calls[index]()
        except BaseException as exc:  # the outcome is what the test checks
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_one_unique_id_submitted_at_once_for_two_patients_on_two_workers_has_one_owner(
    citus_cluster: CitusCluster, citus_db: tuple[str, str], store: RegistryStore
) -> None:
    patients = patients_on_each_worker(citus_cluster, citus_db[0])
    for patient in patients:
        store.add_patient(patient)
    unique_id = make_document_entry().unique_id
    submissions = []
    for index, patient in enumerate(patients):
        submission = for_patient(patient, make_submission(1))
        submission.documents[0].unique_id = unique_id
        submission.documents[0].hash = str(index + 1) * 40  # two different documents
        submissions.append(submission)
    barrier = threading.Barrier(len(submissions))

    def submit(submission: Submission) -> None:
        barrier.wait()
        store.store_submission(submission)

    outcomes = at_once([functools.partial(submit, s) for s in submissions])
    assert sum(outcome is None for outcome in outcomes) == 1, outcomes
    assert all(isinstance(o, IntegrityError) for o in outcomes if o is not None), outcomes
    winner = next(s for s, o in zip(submissions, outcomes, strict=True) if o is None)
    assert [e.patient_id for e in store.get_document_entries_by_unique_id([unique_id])] == [
        winner.documents[0].patient_id
    ]
    loser = next(s for s, o in zip(submissions, outcomes, strict=True) if o is not None)
    assert store.existing_objects(loser.all_ids()) == {}
    assert prepared_transactions(citus_cluster, citus_db[0]) == 0


def test_an_entry_uuid_of_another_patient_on_another_worker_stores_nothing(
    citus_cluster: CitusCluster, citus_db: tuple[str, str], store: RegistryStore
) -> None:
    """entryUUIDs are unique across patients (registry_entry_uuid), whatever the shards: the
    claim of the reused id is on one worker, the second patient's rows on the other."""
    patients = patients_on_each_worker(citus_cluster, citus_db[0])
    for patient in patients:
        store.add_patient(patient)
    first = for_patient(patients[0], make_submission(1))
    store.store_submission(first)
    reused = first.documents[0].entry_uuid
    claim_worker = citus_cluster.worker_of_shard(citus_db[0], "registry_entry_uuid", reused)
    other = next(p for p in patients if citus_cluster.worker_of_shard(citus_db[0], "patient", p) != claim_worker)
    before = store.count_rows()
    second = for_patient(other, make_submission(2))
    second.documents[1].entry_uuid = reused
    with pytest.raises(IntegrityError):
        store.store_submission(second)
    assert store.count_rows() == before
    assert prepared_transactions(citus_cluster, citus_db[0]) == 0


def test_one_login_asked_at_once_for_two_patients_on_two_workers_has_one_owner(
    citus_cluster: CitusCluster, citus_db: tuple[str, str], engine: Engine
) -> None:
    """The patients' accounts are spread by patient, where a unique login index holds per
    patient only: the login's claim (`web_login`, by login) decides, whatever the workers, even
    when both creations read the login free before either writes it."""
    patients = patients_on_each_worker(citus_cluster, citus_db[0])
    records = DmpStore(engine)
    for patient in patients:
        records.create(patient, Consent("accueil", datetime.now(UTC)))
    accounts = PatientAccountStore(engine)
    barrier = threading.Barrier(len(patients))
    taken = PatientAccountStore._login_taken

    def read_then_wait(connection: Any, login: str) -> bool:
        free = taken(connection, login)
        barrier.wait(timeout=30)  # both have read the login free
        return free

    def create(patient: str) -> None:
        accounts.create(patient, "same1234", "scrypt$h", Channel("SMS", "0606060606"), "810001234565")

    with mock.patch.object(PatientAccountStore, "_login_taken", staticmethod(read_then_wait)):
        outcomes = at_once([functools.partial(create, p) for p in patients])
    assert sum(outcome is None for outcome in outcomes) == 1, outcomes
    assert all(isinstance(o, LoginTaken) for o in outcomes if o is not None), outcomes
    winner = patients[outcomes.index(None)]
    owner = accounts.by_login("same1234")
    assert owner is not None and owner.patient_id == winner
    loser = next(p for p in patients if p != winner)
    assert accounts.get(loser) is None
    assert prepared_transactions(citus_cluster, citus_db[0]) == 0
    # Destroying the winner's record frees the login for the other patient.
    records.destroy(winner, None)
    accounts.create(loser, "same1234", "scrypt$h", Channel("SMS", "0606060606"), "810001234565")
    found = accounts.by_login("same1234")
    assert found is not None and found.patient_id == loser


def test_a_submission_failing_after_writing_on_both_workers_leaves_nothing(
    citus_cluster: CitusCluster, citus_db: tuple[str, str], store: RegistryStore
) -> None:
    """The patient's rows on one worker, claims on both: a failure before the commit (here the
    repository's publication) rolls all of it back, on every node."""
    patients = patients_on_each_worker(citus_cluster, citus_db[0])
    store.add_patient(patients[0])
    submission = for_patient(patients[0], make_submission(4, with_folder=True))
    claim_workers = {
        citus_cluster.worker_of_shard(citus_db[0], "registry_entry_uuid", uuid) for uuid in submission.all_ids()
    }
    assert claim_workers == {0, 1}  # the claims spread over both workers
    before = store.count_rows()

    def fail() -> None:
        raise RuntimeError("publication failed")

    with pytest.raises(RuntimeError, match="publication failed"):
        store.store_submission(submission, on_before_commit=fail)
    assert store.count_rows() == before
    assert prepared_transactions(citus_cluster, citus_db[0]) == 0


def test_a_worker_stopped_during_a_submission_fails_it_whole_and_the_registry_comes_back(
    citus_cluster: CitusCluster, citus_db: tuple[str, str], store: RegistryStore
) -> None:
    """The worker of the patient's shard crashes after the rows are written, before the
    commit: the submission fails with a database error, and once the worker is back nothing of
    it is on any node and the registry takes submissions again."""
    durable_commits(citus_cluster, citus_db[0])
    store.engine.dispose()  # new sessions, with the setting
    patients = patients_on_each_worker(citus_cluster, citus_db[0])
    store.add_patient(patients[0])
    before = store.count_rows()
    submission = for_patient(patients[0], make_submission(3))
    worker = citus_cluster.worker_of_shard(citus_db[0], "patient", patients[0])
    try:
        with pytest.raises(DBAPIError):
            store.store_submission(submission, on_before_commit=lambda: citus_cluster.halt_worker(worker))
    finally:
        citus_cluster.resume_worker(worker)
    store.engine.dispose()  # connections of the failed transaction
    assert store.count_rows() == before
    deadline = time.monotonic() + 30
    while prepared_transactions(citus_cluster, citus_db[0]) and time.monotonic() < deadline:
        time.sleep(0.5)  # Citus' maintenance daemon finishes or rolls back what was prepared
    assert prepared_transactions(citus_cluster, citus_db[0]) == 0
    assert store.count_rows() == before
    again = for_patient(patients[0], make_submission(3))
    store.store_submission(again)
    assert len(store.get_document_entries(d.entry_uuid for d in again.documents)) == 3


def test_a_stopped_worker_is_xds_registry_not_available_and_the_server_comes_back(
    citus_cluster: CitusCluster, tmp_path: Path
) -> None:
    """Through the server: an ITI-42 submission while the worker of the patient's shard is
    down is refused with XDSRegistryNotAvailable and stores nothing; the same server takes it
    once the worker is back."""
    name = citus_cluster.create_database("xds")
    durable_commits(citus_cluster, name)
    server = start_server(tmp_path, citus_cluster.url_for(name), {"DMP_XDS_PROFILE": "ihe"})
    try:
        patient = patients_on_each_worker(citus_cluster, name)[0]
        server.add_patient(patient)
        before = stored_state(server)
        worker = citus_cluster.worker_of_shard(name, "patient", patient)
        citus_cluster.halt_worker(worker)
        try:
            refused = server.post("registry", soap.register(for_patient(patient, make_submission(2))))
        finally:
            citus_cluster.resume_worker(worker)
        assert refused.status == "Failure"
        codes = [e.get("errorCode") for e in refused.payload.iter(v.TAG_REGISTRY_ERROR)]
        assert codes == [ErrorCode.REGISTRY_NOT_AVAILABLE.value], server.log()[-2000:]
        assert stored_state(server) == before
        accepted = server.post("registry", soap.register(for_patient(patient, make_submission(2))))
        assert accepted.status == "Success", server.log()[-2000:]
    finally:
        stop_server(server)
        citus_cluster.drop_database(name)
