"""Database engines and schema migrations (Alembic, configured in code: no alembic.ini).

SQLite is the embedded default (WAL, so readers never wait for the writer); PostgreSQL, through
psycopg 3, is for production, and Citus (a PostgreSQL with the citus extension) for a registry
larger than one machine: the same migrations, then its tables distributed (storage/distribution.py).
The server refuses a database that is not at the head revision, or not yet distributed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool

from dmp_xds.config import resource_dir
from dmp_xds.storage import distribution
from dmp_xds.storage.sqlite_writers import QueuedWritersConnection, WriteLock

SQLITE_BUSY_TIMEOUT_MS = 30_000
# uvicorn runs synchronous handlers on a thread pool (40 threads by default): enough
# connections that threads rarely queue for one, without exhausting PostgreSQL's 100 default.
POOL_SIZE = 20
POOL_MAX_OVERFLOW = 20
POOL_TIMEOUT_SECONDS = 30
POOL_RECYCLE_SECONDS = 1800
# libpq waits for ever for a server that does not answer the connection: a request (or the
# readiness check, transport/health.py) would hang with it. A URL's own connect_timeout wins.
CONNECT_TIMEOUT_SECONDS = 10


class DatabaseNotAtHead(Exception):
    """The database schema is not the one this code expects; the message says how to fix it."""


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever the URL says (`postgresql://`, `postgres://`)."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_engine_for(url: str) -> Engine:
    url = normalize_url(url)
    if not url:
        raise ValueError("no database URL given")
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    return create_engine(
        url,
        connect_args=connect_args,
        pool_size=POOL_SIZE,
        max_overflow=POOL_MAX_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_recycle=POOL_RECYCLE_SECONDS,
    )


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if not database or database == ":memory:":
        # One in-memory database exists per connection: share a single one (tests only).
        engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={
            "check_same_thread": False,
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            "factory": QueuedWritersConnection,
        },
        pool_size=POOL_SIZE,
        max_overflow=POOL_MAX_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_SECONDS,
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    # Writers queue on a lock of their own rather than SQLite's sleeping busy handler (see
    # storage/sqlite_writers.py): every engine of this file, in every process, shares it.
    write_lock = WriteLock(sqlite_write_lock_path(database), SQLITE_BUSY_TIMEOUT_MS / 1000)

    @event.listens_for(engine, "connect")
    def _queue_writers(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, QueuedWritersConnection):
            dbapi_connection.write_lock = write_lock

    return engine


def sqlite_write_lock_path(database: str) -> str:
    """The advisory lock file of a SQLite database's writers, next to its -wal and -shm files."""
    return str(Path(database).resolve()) + "-writers.lock"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers do not block the writer nor the writer them. FULL: a commit is on disk
        # before it returns, so an acknowledged submission survives a power loss too (NORMAL
        # would keep only the application-crash half of that promise).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resource_dir("migrations")))
    # Config values go through configparser interpolation: a '%' in a password must be doubled.
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def upgrade(url: str) -> list[str]:
    """Migrate the database at `url` to the head revision (creating it if it is empty); on
    Citus, then distribute the tables not yet distributed. Returns those tables' names (none
    the second time)."""
    config = alembic_config(url)
    engine = create_engine_for(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        # Apart from the migration's transaction: Citus moves a table's rows to the shards
        # when it distributes it, which must follow the DDL that made it.
        return distribution.distribute(engine) if distribution.engine_is_citus(engine) else []
    finally:
        engine.dispose()


def open_database(url: str, migrate: bool = False) -> Engine:
    """The engine of the registry database at `url`, migrated to the head revision first when
    `migrate`; a database at another revision is refused (DatabaseNotAtHead)."""
    if migrate:
        upgrade(url)
    engine = create_engine_for(url)
    try:
        ensure_at_head(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    config = alembic_config("")
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration found in {config.get_main_option('script_location')}")
    return head


def ensure_at_head(engine: Engine) -> None:
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        where = engine.url.render_as_string(hide_password=True)
        state = f"at revision {current}" if current else "empty (no schema)"
        raise DatabaseNotAtHead(
            f"the registry database {where} is {state}; this version of dmp-xds needs revision "
            f"{head}. Run `dmp-xds db upgrade` to migrate it."
        )
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            pending = distribution.undistributed(connection) if distribution.is_citus(connection) else []
        if pending:
            where = engine.url.render_as_string(hide_password=True)
            raise DatabaseNotAtHead(
                f"the registry database {where} is a Citus coordinator whose tables are not all distributed "
                f"({', '.join(pending)}). Run `dmp-xds db upgrade` to distribute them."
            )
