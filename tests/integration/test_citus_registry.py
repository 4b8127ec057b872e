"""The registry on a real 3-node Citus cluster: the schema distributed by `db upgrade`, queries
routed to one shard, and the guarantees of a submission across shards and workers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from citusserver import CitusCluster
from dmp_xds.storage import distribution
from dmp_xds.storage.database import DatabaseNotAtHead, create_engine_for, ensure_at_head, upgrade

from dmp_xds.storage.store import RegistryStore
from dmp_xds.xds import vocabulary as v
from factories import make_document_entry, make_submission

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
