"""Alembic environment for the dmp-xds registry database.

There is no alembic.ini: `dmp_xds.storage.database` builds the configuration in code and may
hand over an open connection (`config.attributes["connection"]`), so that the SQLite pragmas and
the PostgreSQL driver choice of `create_engine_for` apply to migrations too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.tables import metadata

config = context.config
target_metadata = metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later migrations rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    engine = create_engine_for(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
