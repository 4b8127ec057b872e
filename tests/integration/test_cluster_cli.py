"""`dmp-xds cluster` on the tests' real Citus cluster: status, adding a third worker started here,
rebalancing shards onto it with Citus' rebalancer, draining it again; and the refusals (a
database that is not distributed, a node that does not answer or lacks the extension)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from citusserver import CITUS_SETTINGS, CitusCluster
from pgserver import PostgresServer, free_port

pytestmark = pytest.mark.citus

# Two co-located tables distributed by patient (one without a primary key: its shards cannot
# move by logical replication), and a reference table.
SCHEMA = (
    "CREATE TABLE entry (patient_id text NOT NULL, id int NOT NULL, title text, PRIMARY KEY (patient_id, id))",
    "SELECT create_distributed_table('entry', 'patient_id')",
    "CREATE TABLE event (patient_id text NOT NULL, at int NOT NULL)",
    "SELECT create_distributed_table('event', 'patient_id', colocate_with => 'entry')",
    "CREATE TABLE code (code text PRIMARY KEY, label text)",
    "SELECT create_reference_table('code')",
    "CREATE TABLE setting (name text PRIMARY KEY, value text)",
    "INSERT INTO entry SELECT 'patient-' || (i % 200), i, repeat('x', 200) FROM generate_series(1, 4000) AS i",
    "INSERT INTO event SELECT 'patient-' || (i % 200), i FROM generate_series(1, 2000) AS i",
    "INSERT INTO code VALUES ('11488-4', 'Compte rendu'), ('34133-9', 'Synthese')",
)


def run(url: str, tmp_path: Path, *args: str) -> Result:
    from dmp_xds.cli.main import main

    env = {"DMP_XDS_DATABASE_URL": url, "DMP_XDS_DATA_DIR": str(tmp_path)}
    return CliRunner().invoke(main, ["cluster", *args], env=env)


def database_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


@pytest.fixture
def filled(citus_cluster: CitusCluster, citus_url: str) -> str:
    with citus_cluster.connect(citus_cluster.coordinator, database_of(citus_url)) as connection:
        for statement in SCHEMA:
            connection.execute(statement)
    return citus_url


@pytest.fixture(scope="module")
def spare_node() -> Iterator[PostgresServer]:
    """A third node, started as the cluster's are (Citus preloaded), registered with no database."""
    node = PostgresServer.start(extra_settings=CITUS_SETTINGS)
    yield node
    node.stop()


def shards_per_port(cluster: CitusCluster, database: str) -> dict[int, int]:
    """Placements of the distributed tables' shards, per node port (citus_shards)."""
    with cluster.connect(cluster.coordinator, database) as connection:
        rows = connection.execute(
            "SELECT nodeport, count(*) FROM citus_shards WHERE citus_table_type = 'distributed' GROUP BY nodeport"
        ).fetchall()
    return {int(port): int(count) for port, count in rows}


def test_status_shows_workers_tables_and_colocation(citus_cluster: CitusCluster, filled: str, tmp_path: Path) -> None:
    result = run(filled, tmp_path, "status")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Citus 13.")
    assert f"coordinator  127.0.0.1:{citus_cluster.coordinator.port}" in result.output
    for worker in citus_cluster.workers:
        assert f"127.0.0.1:{worker.port}" in result.output
    assert "distributed by patient_id" in result.output and "reference" in result.output
    assert "on the coordinator only  1\n  setting " in result.output
    assert "warning" not in result.output  # two workers, balanced by create_distributed_table

    state = json.loads(run(filled, tmp_path, "status", "--json").output)
    tables = {t["name"]: t for t in state["tables"]}
    assert tables["entry"]["colocation_id"] == tables["event"]["colocation_id"]
    assert tables["code"]["kind"] == "reference" and tables["entry"]["shard_count"] == 8
    assert tables["entry"]["bytes"] > 0
    assert [name for name, _ in state["coordinator_tables"]] == ["setting"]
    workers = {w["port"]: w for w in state["workers"]}
    assert set(workers) == {w.port for w in citus_cluster.workers}
    # 8 shards of each of the two co-located tables on each worker's half, plus the reference table
    assert sorted(w["shards"] for w in workers.values()) == [9, 9]
    assert all(w["active"] for w in workers.values())


def test_add_worker_rebalance_then_drain(
    citus_cluster: CitusCluster, filled: str, spare_node: PostgresServer, tmp_path: Path
) -> None:
    name = database_of(filled)
    with spare_node.admin_connection() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    refused = run(filled, tmp_path, "add-worker", "127.0.0.1", str(spare_node.port))
    assert refused.exit_code == 1, refused.output
    assert f"citus extension is not created in database '{name}'" in refused.output
    assert "CREATE EXTENSION citus" in refused.output and "Traceback" not in refused.output
    assert spare_node.port not in shards_per_port(citus_cluster, name)

    with citus_cluster.connect(spare_node, name) as connection:
        connection.execute("CREATE EXTENSION citus")
    added = run(filled, tmp_path, "add-worker", "127.0.0.1", str(spare_node.port))
    assert added.exit_code == 0, added.output
    assert "already" in run(filled, tmp_path, "add-worker", "127.0.0.1", str(spare_node.port)).output
    status = run(filled, tmp_path, "status").output
    assert f"127.0.0.1:{spare_node.port}" in status and "shards are unbalanced" in status

    # The test nodes run wal_level 'replica' and `event` has no primary key: no logical replication.
    forced = run(filled, tmp_path, "rebalance", "--transfer-mode", "force_logical")
    assert forced.exit_code == 1, forced.output
    assert "no primary key nor replica identity: event" in forced.output
    assert "wal_level is not 'logical' on the coordinator, 127.0.0.1:" in forced.output
    assert all(f"127.0.0.1:{node.port}" in forced.output for node in [*citus_cluster.workers, spare_node])
    rebalanced = run(filled, tmp_path, "rebalance", "--wait-seconds", "180")
    assert rebalanced.exit_code == 0, rebalanced.output
    assert "block_writes" in rebalanced.output  # `event` has no primary key
    assert "rebalance finished" in rebalanced.output
    placed = shards_per_port(citus_cluster, name)
    assert placed.get(spare_node.port, 0) >= 4, placed  # at least 2 of the 8 co-located shard pairs
    assert sum(placed.values()) == 16
    with citus_cluster.connect(citus_cluster.coordinator, name) as connection:
        assert connection.execute("SELECT count(*) FROM entry").fetchone() == (4000,)
    assert "balanced: nothing to move" in run(filled, tmp_path, "rebalance").output

    drained = run(filled, tmp_path, "drain-worker", "127.0.0.1", str(spare_node.port))
    assert drained.exit_code == 0, drained.output
    placed = shards_per_port(citus_cluster, name)
    assert spare_node.port not in placed and sum(placed.values()) == 16, placed
    with citus_cluster.connect(citus_cluster.coordinator, name) as connection:
        active = connection.execute(
            "SELECT isactive FROM pg_dist_node WHERE nodeport = %s", (spare_node.port,)
        ).fetchone()
        assert connection.execute("SELECT count(*) FROM entry").fetchone() == (4000,)
        assert connection.execute("SELECT count(*) FROM event").fetchone() == (2000,)
    assert active == (False,)
    assert "INACTIVE" in run(filled, tmp_path, "status").output


def test_unreachable_worker_is_refused(citus_cluster: CitusCluster, filled: str, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    result = run(filled, tmp_path, "add-worker", "127.0.0.1", str(port))
    assert result.exit_code == 1
    assert f"cannot connect to 127.0.0.1:{port}" in result.output and "Traceback" not in result.output
    with citus_cluster.connect(citus_cluster.coordinator, database_of(filled)) as connection:
        assert connection.execute("SELECT count(*) FROM pg_dist_node WHERE nodeport = %s", (port,)).fetchone() == (0,)


def test_draining_an_unknown_node_or_the_coordinator_is_refused(
    citus_cluster: CitusCluster, filled: str, tmp_path: Path
) -> None:
    unknown = run(filled, tmp_path, "drain-worker", "127.0.0.1", str(free_port()))
    assert unknown.exit_code == 1 and "is not a node of this cluster" in unknown.output
    coordinator = run(filled, tmp_path, "drain-worker", "127.0.0.1", str(citus_cluster.coordinator.port))
    assert coordinator.exit_code == 1 and "is the coordinator" in coordinator.output


@pytest.mark.parametrize("command", [["status"], ["add-worker", "127.0.0.1", "5432"], ["rebalance"]])
def test_sqlite_is_not_distributed(command: list[str], tmp_path: Path) -> None:
    result = run(f"sqlite:///{tmp_path / 'registry.db'}", tmp_path, *command)
    assert result.exit_code == 2, result.output
    assert "is sqlite, not Citus: it is not distributed" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.postgres
def test_plain_postgresql_is_not_distributed(postgres_url: str, tmp_path: Path) -> None:
    for command in (["status"], ["drain-worker", "127.0.0.1", "5432"]):
        result = run(postgres_url, tmp_path, *command)
        assert result.exit_code == 2, result.output
        assert "plain PostgreSQL (no citus extension): it is not distributed" in result.output
