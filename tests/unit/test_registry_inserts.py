"""The statements that write a submission's rows (registry/inserts.py), without a database:
the PostgreSQL statement's text and parameters. Writing and reading back on real SQLite and
PostgreSQL is tested in tests/integration/test_registry_store.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from dmp_xds.storage.inserts import PerTableInsert, PostgresSubmissionInsert
from dmp_xds.storage.store import SUBMISSION_TABLES
from dmp_xds.storage.tables import metadata

PG = postgresql.psycopg.dialect()
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _table(name: str):
    return metadata.tables[name]


def test_one_statement_for_every_table_of_a_submission() -> None:
    insert = PostgresSubmissionInsert(SUBMISSION_TABLES, PG)
    assert insert.sql.count("INSERT INTO ") == len(SUBMISSION_TABLES)
    assert insert.sql.count("%s") == len(SUBMISSION_TABLES)
    # Parents before children: the CTEs keep the order given.
    positions = [insert.sql.index(f"INSERT INTO {t.name} (") for t in SUBMISSION_TABLES]
    assert positions == sorted(positions)
    # A database-generated key is never given a value.
    assert "INSERT INTO document_entry_code (id," not in insert.sql


def test_params_are_one_json_array_per_table_in_statement_order() -> None:
    insert = PostgresSubmissionInsert(SUBMISSION_TABLES, PG)
    code_row = {
        "patient_id": "P",
        "entry_uuid": "urn:uuid:1",
        "kind": "event",
        "code": "C",
        "scheme": "S",
        "ignored": "x",
    }
    params = insert.params([(_table("document_entry_code"), [code_row])])
    assert len(params) == len(SUBMISSION_TABLES)
    by_table = dict(zip(insert.tables, (json.loads(p) for p in params), strict=True))
    assert by_table["document_entry_code"] == [
        {"patient_id": "P", "entry_uuid": "urn:uuid:1", "kind": "event", "code": "C", "scheme": "S"}
    ]
    assert all(rows == [] for name, rows in by_table.items() if name != "document_entry_code")


def test_the_statement_text_does_not_depend_on_the_rows() -> None:
    # Same text for every submission: the server prepares it once per connection.
    first = PostgresSubmissionInsert(SUBMISSION_TABLES, PG)
    second = PostgresSubmissionInsert(SUBMISSION_TABLES, PG)
    assert first.sql == second.sql


def test_values_keep_their_types_in_json() -> None:
    insert = PostgresSubmissionInsert(SUBMISSION_TABLES, PG)
    row = {
        "unique_id": "1.2.3",
        "repository_unique_id": None,
        "path": "/x",
        "size": 2**40,
        "hash": "ab",
        "mime_type": "text/xml",
        "created_at": NOW,
    }
    params = insert.params([(_table("repository_document"), [row])])
    stored = json.loads(params[insert.tables.index("repository_document")])[0]
    assert stored["size"] == 2**40
    assert stored["repository_unique_id"] is None
    assert datetime.fromisoformat(stored["created_at"]) == NOW  # the offset is kept


def test_a_value_json_cannot_carry_is_refused() -> None:
    insert = PostgresSubmissionInsert(SUBMISSION_TABLES, PG)
    with pytest.raises(TypeError, match="bytes"):
        insert.params([(_table("repository_document"), [{"unique_id": b"raw"}])])


def test_rows_of_a_table_it_does_not_write_are_refused() -> None:
    insert = PostgresSubmissionInsert(SUBMISSION_TABLES, PG)
    with pytest.raises(ValueError, match="patient"):
        insert.params([(_table("patient"), [{"patient_id": "x"}])])


def test_the_postgresql_statement_is_for_postgresql_only() -> None:
    with pytest.raises(ValueError):
        PostgresSubmissionInsert(SUBMISSION_TABLES, sqlite.dialect())


def test_per_table_inserts_skip_empty_tables_and_keep_order() -> None:
    class Cursor:
        def __init__(self) -> None:
            self.calls: list[tuple[str, list]] = []

        def executemany(self, sql: str, params: list) -> None:
            self.calls.append((sql, params))

    class Dbapi:
        Error = RuntimeError

    insert = PerTableInsert(SUBMISSION_TABLES, sqlite.dialect())
    cursor = Cursor()
    insert.run(
        cursor,
        [
            (_table("submission_set_author"), [{"patient_id": "P", "entry_uuid": "urn:uuid:1", "author_person": "A"}]),
            (_table("document_entry_code"), []),
            (_table("association"), []),
        ],
        Dbapi,
    )
    assert [sql.split(" (")[0] for sql, _ in cursor.calls] == ["INSERT INTO submission_set_author"]
    assert cursor.calls[0][1] == [("P", "urn:uuid:1", "A")]
