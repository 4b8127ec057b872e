"""Writing a submission's rows: one INSERT per table on any database, or, on PostgreSQL, one
statement for the whole submission.

A submission writes a few rows into about ten tables. Through SQLAlchemy's `Connection.execute`
each statement costs more in per-call machinery than in the database, and on PostgreSQL every
statement is also a message to parse, bind and execute on the server. So the SQL and the type
conversions stay SQLAlchemy's (compiled once per dialect), and the statements run on the
driver's own cursor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from dmp_xds.storage.tables import INSERT_IGNORING_CONFLICTS_ON

Row = dict[str, Any]
TableRows = Sequence[tuple[Table, list[Row]]]
BindProcessor = Callable[[Any], Any] | None


def _insert_columns(table: Table) -> tuple[str, ...]:
    """The columns a submission gives values for: all but a database-generated key."""
    return tuple(c.key for c in table.columns if not (c.primary_key and c.autoincrement is True))


def insert_statement(table: Table, dialect: Dialect) -> Insert:
    """The table's INSERT, ignoring a conflict on the unique index its `info` names, if any
    (tables.INSERT_IGNORING_CONFLICTS_ON); any other constraint still refuses the row."""
    conflict = table.info.get(INSERT_IGNORING_CONFLICTS_ON)
    if conflict is None:
        return table.insert()
    if dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    if dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    raise NotImplementedError(f"database {dialect.name!r} is not supported (SQLite and PostgreSQL are)")


def _processors(table: Table, columns: Sequence[str], dialect: Dialect) -> tuple[BindProcessor, ...]:
    return tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns)


def _converted(rows: list[Row], columns: Sequence[str], processors: Sequence[BindProcessor]) -> list[tuple[Any, ...]]:
    return [tuple(p(row.get(c)) if p else row.get(c) for c, p in zip(columns, processors, strict=True)) for row in rows]


def _raise_as_sqlalchemy(statement: str, exc: Exception, dbapi: Any) -> None:
    # Raise what Connection.execute would (IntegrityError for a constraint...): callers tell a
    # uniqueId registered concurrently from a bug by the SQLAlchemy exception class.
    raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc


@dataclass(frozen=True)
class TableInsert:
    """An INSERT into one table compiled once for a dialect, run with the driver's executemany."""

    sql: str
    columns: tuple[str, ...]
    processors: tuple[BindProcessor, ...]
    positional: bool

    @classmethod
    def compile(cls, table: Table, dialect: Dialect) -> TableInsert:
        columns = _insert_columns(table)
        compiled = insert_statement(table, dialect).compile(dialect=dialect, column_keys=list(columns))
        positional = bool(compiled.positional)
        if positional and list(compiled.positiontup or []) != list(columns):
            raise RuntimeError(f"unexpected parameter order for {table.name}: {compiled.positiontup}")
        return cls(compiled.string, columns, _processors(table, columns, dialect), positional)

    def run(self, cursor: Any, rows: list[Row], dbapi: Any) -> None:
        converted = _converted(rows, self.columns, self.processors)
        params: list[Any] = (
            converted if self.positional else [dict(zip(self.columns, v, strict=True)) for v in converted]
        )
        try:
            cursor.executemany(self.sql, params)
        except dbapi.Error as exc:
            _raise_as_sqlalchemy(self.sql, exc, dbapi)


class PerTableInsert:
    """Rows written table by table (parents first), inside the caller's transaction."""

    def __init__(self, tables: Sequence[Table], dialect: Dialect) -> None:
        self.inserts = {t.name: TableInsert.compile(t, dialect) for t in tables}

    def run(self, cursor: Any, rows: TableRows, dbapi: Any) -> None:
        for table, table_rows in rows:
            if table_rows:
                self.inserts[table.name].run(cursor, table_rows, dbapi)


class PostgresSubmissionInsert:
    """Every row of a submission in one PostgreSQL statement.

    Each table's rows travel as one JSON array, turned back into rows of that table by
    `json_populate_recordset` (the server's C JSON parser: far less work for both sides than
    one bound parameter, or one array, per column); the INSERTs are data-modifying CTEs of a
    single statement. Its text is the same for every submission whatever its number of rows,
    so the server prepares it once per connection. A single statement is atomic by itself:
    run in autocommit it needs no BEGIN and no COMMIT, so a submission costs one round trip.
    Foreign keys are checked at the end of the statement, when parents and children are in;
    a table's INSERT ignores conflicts as `insert_statement` does (the uniqueId claims).
    """

    def __init__(self, tables: Sequence[Table], dialect: Dialect) -> None:
        if dialect.name != "postgresql":
            raise ValueError("PostgresSubmissionInsert is for PostgreSQL only")
        self.tables = tuple(t.name for t in tables)
        self.columns = {t.name: _insert_columns(t) for t in tables}
        inserts = []
        for table in tables:
            columns = ", ".join(self.columns[table.name])
            conflict = table.info.get(INSERT_IGNORING_CONFLICTS_ON)
            on_conflict = f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING" if conflict else ""
            inserts.append(
                f"INSERT INTO {table.name} ({columns}) SELECT {columns} "
                f"FROM json_populate_recordset(NULL::{table.name}, %s::json){on_conflict}"
            )
        *first, last = inserts
        self.sql = (
            ("WITH " + ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(first)) + " ") if first else ""
        ) + last

    def params(self, rows: TableRows) -> list[str]:
        """One JSON array of rows per table, in the statement's order (one document for all
        would be parsed again by the server for each table)."""
        given = {table.name: table_rows for table, table_rows in rows}
        unknown = set(given) - set(self.tables)
        if unknown:
            raise ValueError(f"no INSERT for tables {sorted(unknown)}")
        return [
            json.dumps(
                [{c: row.get(c) for c in self.columns[name]} for row in given.get(name, [])],
                default=_json_value,
                separators=(",", ":"),
            )
            for name in self.tables
        ]

    def run(self, cursor: Any, rows: TableRows, dbapi: Any) -> None:
        try:
            cursor.execute(self.sql, self.params(rows), prepare=True)
        except dbapi.Error as exc:
            _raise_as_sqlalchemy("INSERT (submission)", exc, dbapi)


def _json_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()  # with its offset: read back as the same timestamptz
    raise TypeError(f"a {type(value).__name__} cannot be stored in a submission row")
