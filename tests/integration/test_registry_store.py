"""The registry store on a real database, SQLite and PostgreSQL: migrations, the atomic write
of a submission, reads back, patients."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, Table, func, inspect, select
from sqlalchemy.exc import IntegrityError

from dmp_xds.dmp.model import Consent
from dmp_xds.storage.database import (
    DatabaseNotAtHead,
    alembic_config,
    create_engine_for,
    current_revision,
    ensure_at_head,
    head_revision,
    normalize_url,
    upgrade,
)
from dmp_xds.storage.distribution import CITUS_UNIQUE_PER_PATIENT, is_citus
from dmp_xds.storage.records import DmpStore
from dmp_xds.storage.store import RegistryStore, _submission_rows
from dmp_xds.storage.tables import DocumentEntryRow, RegistryUniqueIdRow, metadata
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import LocalizedString, StoredDocument, Submission
from factories import PATIENT_ID, make_code, make_document_entry, make_submission, new_uuid, registered


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to head."""
    upgrade(db_url)
    engine = create_engine_for(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> RegistryStore:
    return RegistryStore(engine)


def stored_documents(submission: Submission) -> list[StoredDocument]:
    return [
        StoredDocument(de.unique_id or "", f"ab/{de.unique_id}", de.size or 0, de.hash or "", de.mime_type or "")
        for de in submission.documents
    ]


def total_rows(store: RegistryStore) -> int:
    return sum(store.count_rows().values())


# --- schema ----------------------------------------------------------------------------------


def test_upgrade_brings_an_empty_database_to_head(db_url: str) -> None:
    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        assert current_revision(engine) == head_revision()
        ensure_at_head(engine)
    finally:
        engine.dispose()


def test_upgrade_twice_is_harmless(engine: Engine, db_url: str) -> None:
    upgrade(db_url)
    ensure_at_head(engine)


def test_migration_matches_the_table_definitions(engine: Engine) -> None:
    """The hand-written migration and tables.py describe the same schema."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
        if is_citus(connection):
            # The one documented reshape of Citus (storage/distribution.py): a unique constraint
            # without the distribution column becomes unique per patient.
            reshaped = set(CITUS_UNIQUE_PER_PATIENT)
            differences = [d for d in differences if d[1].table.name not in reshaped]
        assert differences == []


def test_migration_0006_gives_each_registered_unique_id_its_first_owner(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The claims are made from what 0005 holds, including what a race could leave there: the
    first registration keeps the uniqueId, nothing is removed, the others are named."""
    config = alembic_config(db_url)
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0005")
        first = registered(make_submission(1, with_folder=True))
        entry, folder = first.documents[0], first.folders[0]
        assert entry.hash is not None and first.submission_set is not None
        updated = make_document_entry(hash="3" * 40)
        later = registered(
            make_submission(
                documents=[
                    make_document_entry(unique_id=entry.unique_id, hash=entry.hash.upper()),  # the same document again
                    make_document_entry(unique_id=entry.unique_id, hash="2" * 40),  # a race won by `first`
                    updated,
                    make_document_entry(
                        unique_id=updated.unique_id, logical_id=updated.entry_uuid, version="2", hash="4" * 40
                    ),  # ITI-57 may change the hash
                ]
            )
        )
        raced_folder = registered(make_submission(1, with_folder=True))
        raced_folder.folders[0].unique_id = folder.unique_id
        start = datetime(2026, 1, 1, tzinfo=UTC)
        # The tables and columns of revision 0005 (later migrations add others, absent here).
        existing = set(inspect(engine).get_table_names())
        columns = {t: {c["name"] for c in inspect(engine).get_columns(t)} for t in existing}
        with engine.begin() as connection:
            for offset, submission in enumerate([first, later, raced_folder]):
                for table, rows in _submission_rows(submission, (), start + timedelta(seconds=offset)):
                    if rows and table.name != "registry_unique_id" and table.name in existing:
                        then = [{k: v for k, v in row.items() if k in columns[table.name]} for row in rows]
                        connection.execute(Table(table.name, MetaData(), autoload_with=connection).insert(), then)
        registered_tables = [t for t in metadata.sorted_tables if t.name != "registry_unique_id" and t.name in existing]

        def rows_now() -> dict[str, int]:
            with engine.connect() as connection:
                return {
                    t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in registered_tables
                }

        rows_before = rows_now()

        with caplog.at_level(logging.WARNING):
            upgrade(db_url)

        assert rows_now() == rows_before
        with engine.connect() as connection:
            claims = {
                row.unique_id: (row.kind, row.holder)
                for row in connection.execute(select(RegistryUniqueIdRow.__table__))
            }
        assert claims == {
            entry.unique_id: ("DocumentEntry", entry.hash.lower()),
            folder.unique_id: ("Folder", folder.logical_id),
            updated.unique_id: ("DocumentEntry", "3" * 40),
            raced_folder.documents[0].unique_id: ("DocumentEntry", (raced_folder.documents[0].hash or "").lower()),
            **{
                s.submission_set.unique_id: ("SubmissionSet", s.submission_set.entry_uuid)
                for s in (first, later, raced_folder)
                if s.submission_set is not None
            },
        }
        warning = next(r.getMessage() for r in caplog.records if "uniqueIds were registered" in r.getMessage())
        assert (
            warning.startswith("2 uniqueIds") and f"{entry.unique_id}" in warning and f"{folder.unique_id}" in warning
        )
        assert f"{updated.unique_id}" not in warning
    finally:
        engine.dispose()


def test_migration_0015_keys_every_row_by_its_patient_and_keeps_them_all(db_url: str) -> None:
    """A registry at 0014 with objects in it: 0015 keeps every row (SQLite rebuilds the parent
    tables, which must not cascade to their children), gives the children, the associations and
    the uniqueId claims their patient, and claims every entryUUID."""
    config = alembic_config(db_url)
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0014")
        submission = registered(make_submission(2, with_folder=True))
        existing = set(inspect(engine).get_table_names())
        columns = {t: {c["name"] for c in inspect(engine).get_columns(t)} for t in existing}
        with engine.begin() as connection:
            for table, rows in _submission_rows(submission, (), datetime(2026, 1, 1, tzinfo=UTC)):
                if rows and table.name in existing:
                    then = [{k: v for k, v in row.items() if k in columns[table.name]} for row in rows]
                    connection.execute(Table(table.name, MetaData(), autoload_with=connection).insert(), then)
        with engine.connect() as connection:
            before = {
                t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
                for t in metadata.sorted_tables
                if t.name in existing
            }
        assert before["document_entry_code"] == 4 and before["association"] == len(submission.associations)

        upgrade(db_url)

        store = RegistryStore(engine)
        counts = store.count_rows()
        assert {t: counts[t] for t in before} == before
        assert counts["registry_entry_uuid"] == len(submission.all_ids())
        with engine.connect() as connection:
            for table in ("document_entry_code", "document_entry_author", "association", "registry_unique_id"):
                patients = set(connection.scalars(select(metadata.tables[table].c.patient_id)))
                assert patients == {PATIENT_ID}, table
        assert {e.entry_uuid for e in store.get_document_entries(submission.all_ids())} == {
            d.entry_uuid for d in submission.documents
        }
    finally:
        engine.dispose()


def test_ensure_at_head_refuses_an_empty_database_and_says_how_to_fix_it(db_url: str) -> None:
    engine = create_engine_for(db_url)
    try:
        assert current_revision(engine) is None
        with pytest.raises(DatabaseNotAtHead, match="dmp-xds db upgrade"):
            ensure_at_head(engine)
    finally:
        engine.dispose()


def test_engine_settings(engine: Engine) -> None:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: durable acks
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        else:
            assert engine.dialect.driver == "psycopg"


def test_postgresql_urls_use_psycopg_3() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


# --- patients --------------------------------------------------------------------------------


def test_add_patient_once(store: RegistryStore) -> None:
    assert not store.patient_exists(PATIENT_ID)
    assert store.add_patient(PATIENT_ID) is True
    assert store.add_patient(PATIENT_ID) is False
    assert store.patient_exists(PATIENT_ID)
    assert store.known_patients([PATIENT_ID, "other^^^&1.2.3&ISO"]) == {PATIENT_ID}
    assert store.count_rows()["patient"] == 1


# --- the atomic write and reads back ---------------------------------------------------------


def test_store_and_read_back(store: RegistryStore) -> None:
    submission = registered(make_submission(2, with_folder=True))
    documents = stored_documents(submission)
    store.store_submission(submission, documents)

    ss = submission.submission_set
    assert ss is not None
    first, second = submission.documents
    assert store.get_document_entries([second.entry_uuid, first.entry_uuid, new_uuid()]) == [second, first]
    assert store.get_document_entries_by_unique_id([first.unique_id or ""]) == [first]
    assert store.get_repository_documents([d.unique_id for d in documents]) == {d.unique_id: d for d in documents}

    folder = submission.folders[0]
    assert store.existing_unique_ids([first.unique_id or "", ss.unique_id or "", folder.unique_id or "", "1.2.9"]) == {
        first.unique_id: first.hash,
        ss.unique_id: None,
        folder.unique_id: None,
    }
    found = store.existing_objects(
        [first.entry_uuid, ss.entry_uuid, folder.entry_uuid, submission.associations[0].entry_uuid, new_uuid()]
    )
    assert found == {
        first.entry_uuid: ("DocumentEntry", PATIENT_ID, v.STATUS_APPROVED),
        ss.entry_uuid: ("SubmissionSet", PATIENT_ID, v.STATUS_APPROVED),
        folder.entry_uuid: ("Folder", PATIENT_ID, v.STATUS_APPROVED),
        submission.associations[0].entry_uuid: ("Association", None, v.STATUS_APPROVED),
    }
    counts = store.count_rows()
    assert counts["document_entry"] == 2
    assert counts["document_entry_code"] == 4  # one confidentiality and one event code each
    assert counts["document_entry_author"] == 2
    assert counts["document_entry_reference_id"] == 2
    assert counts["submission_set"] == 1
    assert counts["submission_set_author"] == 1
    assert counts["folder"] == 1
    assert counts["folder_code"] == 1
    assert counts["association"] == len(submission.associations)
    assert counts["repository_document"] == 2
    assert counts["patient"] == 0


def test_searchable_columns(store: RegistryStore) -> None:
    entry = make_document_entry(creation_time="2024031209", service_start_time="2024")
    submission = registered(make_submission(documents=[entry]))
    store.store_submission(submission)
    with store.engine.connect() as connection:
        row = connection.execute(select(DocumentEntryRow).where(DocumentEntryRow.entry_uuid == entry.entry_uuid)).one()
    assert row.creation_time == "20240312090000"
    assert row.service_start_time == "20240000000000"
    assert (row.class_code, row.class_code_scheme) == (entry.class_code.code, entry.class_code.scheme)
    assert row.submission_set_uuid == submission.submission_set.entry_uuid
    assert row.version == 1 and row.logical_id == entry.entry_uuid


def test_any_text_and_large_sizes_round_trip(store: RegistryStore) -> None:
    # PostgreSQL receives a submission's rows as JSON: quotes, backslashes, accents, characters
    # outside the BMP and JSON's own syntax must come back as they were sent.
    tricky = "Compte rendu « urgences » \\ \"guillemets\" {'json': [1]} \u00e9\u00e8 \U0001f489 \t fin"
    entry = make_document_entry(size=2**40)
    entry.title = [LocalizedString(tricky, "fr-FR", "UTF-8")]
    entry.extra_slots["urn:dmp-xds:test"] = [tricky, "\u2028"]
    submission = registered(make_submission(documents=[entry]))
    store.store_submission(submission, stored_documents(submission))
    [back] = store.get_document_entries([entry.entry_uuid])
    assert back == entry
    assert back.title[0].value == tricky and back.size == 2**40
    with store.engine.connect() as connection:
        assert (
            connection.execute(
                select(DocumentEntryRow.size).where(DocumentEntryRow.entry_uuid == entry.entry_uuid)
            ).scalar_one()
            == 2**40
        )


def test_on_before_commit_runs_inside_the_transaction(store: RegistryStore) -> None:
    seen_from_outside: list[int] = []

    def publish() -> None:
        # Another connection must not see the submission yet: the files are published first.
        seen_from_outside.append(store.count_rows()["document_entry"])

    submission = registered(make_submission(1))
    store.store_submission(submission, stored_documents(submission), on_before_commit=publish)
    assert seen_from_outside == [0]
    assert store.count_rows()["document_entry"] == 1


def test_failure_in_on_before_commit_stores_nothing(store: RegistryStore) -> None:
    class PublicationFailed(Exception):
        pass

    def publish() -> None:
        raise PublicationFailed("disk full")

    submission = registered(make_submission(3, with_folder=True))
    with pytest.raises(PublicationFailed):
        store.store_submission(submission, stored_documents(submission), on_before_commit=publish)
    assert total_rows(store) == 0


def test_a_constraint_violation_stores_nothing_of_the_submission(store: RegistryStore) -> None:
    first = registered(make_submission(1))
    store.store_submission(first)
    before = store.count_rows()
    # Same SubmissionSet uniqueId: the SubmissionSet row is refused, and with it everything.
    second = registered(make_submission(2))
    assert second.submission_set is not None and first.submission_set is not None
    second.submission_set.unique_id = first.submission_set.unique_id
    with pytest.raises(IntegrityError):
        store.store_submission(second, stored_documents(second))
    assert store.count_rows() == before


def test_versions_share_a_unique_id_but_not_a_version_number(store: RegistryStore) -> None:
    """ITI-57: a new version keeps uniqueId and logicalId; (logicalId, version) is unique."""
    original = make_document_entry()
    store.store_submission(registered(make_submission(documents=[original])))
    update = make_document_entry(unique_id=original.unique_id, logical_id=original.entry_uuid, version="2")
    store.store_submission(registered(make_submission(documents=[update])))
    versions = store.get_document_entries_by_unique_id([original.unique_id or ""])
    assert [(e.entry_uuid, e.version) for e in versions] == [(original.entry_uuid, "1"), (update.entry_uuid, "2")]

    clash = make_document_entry(unique_id=original.unique_id, logical_id=original.entry_uuid, version="2")
    with pytest.raises(IntegrityError):
        store.store_submission(registered(make_submission(documents=[clash])))


def test_the_same_document_may_be_registered_again(store: RegistryStore) -> None:
    """Same uniqueId and hash in a new submission is accepted by the rules: no unique index."""
    entry = make_document_entry()
    store.store_submission(registered(make_submission(documents=[entry])))
    again = make_document_entry(unique_id=entry.unique_id, hash=entry.hash)
    store.store_submission(registered(make_submission(documents=[again])))
    assert len(store.get_document_entries_by_unique_id([entry.unique_id or ""])) == 2


def test_any_version_leads_to_the_latest_version_of_its_document(store: RegistryStore) -> None:
    """What the access policy judges every version by: the highest version of its logical id,
    from the entryUUID of any version, or from a uniqueId (one per document registered with it)."""
    original = make_document_entry()
    store.store_submission(registered(make_submission(documents=[original])))
    masked = make_code("MASQUE_PS", "1.2.250.1.213.1.1.4.13", "Masqué aux professionnels de santé")
    second = make_document_entry(
        unique_id=original.unique_id,
        logical_id=original.entry_uuid,
        version="2",
        confidentiality_codes=[*original.confidentiality_codes, masked],
    )
    again = make_document_entry(unique_id=original.unique_id, hash=original.hash)  # the same document, again
    other = make_document_entry()
    for entry in (second, again, other):
        store.store_submission(registered(make_submission(documents=[entry])))

    latest = store.latest_versions([original.entry_uuid, second.entry_uuid, other.entry_uuid, new_uuid()])
    assert latest == {original.entry_uuid: second, second.entry_uuid: second, other.entry_uuid: other}
    by_unique_id = store.latest_versions_by_unique_id([original.unique_id or "", "1.2.250.1.999.404"])
    assert list(by_unique_id) == [original.unique_id]
    assert sorted(e.entry_uuid for e in by_unique_id[original.unique_id or ""]) == sorted(
        [second.entry_uuid, again.entry_uuid]
    )
    assert store.latest_versions([]) == {} and store.latest_versions_by_unique_id([]) == {}


def test_a_unique_id_has_one_owner_whatever_the_rules_read(store: RegistryStore) -> None:
    """The database itself refuses a second DocumentEntry hash, a second Folder, or another kind
    of object for a registered uniqueId; the same document again (any case of its hash) and a
    new version are the same claim."""
    submission = registered(make_submission(1, with_folder=True))
    store.store_submission(submission)
    entry, folder, ss = submission.documents[0], submission.folders[0], submission.submission_set
    assert ss is not None and entry.hash is not None
    before = store.count_rows()
    clashes = [
        make_submission(documents=[make_document_entry(unique_id=entry.unique_id, hash="0" * 40)]),
        make_submission(documents=[make_document_entry(unique_id=folder.unique_id)]),
        make_submission(documents=[make_document_entry(unique_id=ss.unique_id)]),
        make_submission(1, with_folder=True),
        make_submission(1, with_folder=True),
    ]
    clashes[3].folders[0].unique_id = folder.unique_id
    clashes[4].folders[0].unique_id = entry.unique_id
    for clash in clashes:
        with pytest.raises(IntegrityError):
            store.store_submission(registered(clash))
        assert store.count_rows() == before
    store.store_submission(
        registered(make_submission(documents=[make_document_entry(unique_id=entry.unique_id, hash=entry.hash.upper())]))
    )
    assert len(store.get_document_entries_by_unique_id([entry.unique_id or ""])) == 2
    assert store.existing_unique_ids([entry.unique_id or "", folder.unique_id or "", ss.unique_id or ""]) == {
        entry.unique_id: entry.hash.lower(),
        folder.unique_id: None,
        ss.unique_id: None,
    }


def test_missing_required_value_is_a_programming_error(store: RegistryStore) -> None:
    submission = registered(make_submission(1))
    submission.documents[0].status = None
    with pytest.raises(ValueError, match="status"):
        store.store_submission(submission)
    assert total_rows(store) == 0


def test_concurrent_submissions(store: RegistryStore) -> None:
    """Four threads share one store, as the server's worker threads do."""
    errors: list[BaseException] = []

    def submit(count: int) -> None:
        try:
            for _ in range(count):
                submission = registered(make_submission(2))
                store.store_submission(submission, stored_documents(submission))
        except BaseException as exc:  # reported below, with the test's own assertion
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(10,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    counts = store.count_rows()
    assert counts["submission_set"] == 40
    assert counts["document_entry"] == 80
    assert counts["repository_document"] == 80


def test_migration_0018_claims_the_logins_of_the_accounts_there_are(db_url: str) -> None:
    """Accounts made before `web_login`: each login is claimed by its account; a login a patient
    and a representative shared (a race the old read-then-insert allowed) stays the patient's."""
    config = alembic_config(db_url)
    engine = create_engine_for(db_url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    account = {
        "password_hash": "scrypt$x",
        "password_temporary": True,
        "channels": [],
        "created_by": "810001234565",
        "created_at": now,
        "updated_at": now,
        "locked": False,
        "failed_logins": 0,
    }
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0017")
        DmpStore(engine).create(PATIENT_ID, Consent("accueil", now))
        with engine.begin() as connection:
            connection.execute(
                metadata.tables["dmp_patient_account"].insert(),
                [{"patient_id": PATIENT_ID, "login": "shared", **account}],
            )
            connection.execute(
                metadata.tables["web_representative_account"].insert(),
                [
                    {"representative_id": "rep-1", "login": "shared", **account},
                    {"representative_id": "rep-2", "login": "own", **account},
                ],
            )
        upgrade(db_url)
        with engine.connect() as connection:
            claims = {tuple(row) for row in connection.execute(select(metadata.tables["web_login"]))}
        assert claims == {("shared", "patient", PATIENT_ID), ("own", "representative", "rep-2")}
    finally:
        engine.dispose()
