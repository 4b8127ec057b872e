"""The test Citus cluster itself: three nodes, a table distributed by patient id is routed to
one shard for one patient, and its shards are spread over both workers."""

from __future__ import annotations

import psycopg
import pytest

from citusserver import CitusCluster

pytestmark = pytest.mark.citus


def test_cluster_has_two_active_workers(citus_cluster: CitusCluster, citus_url: str) -> None:
    name = citus_url.rsplit("/", 1)[1]
    with citus_cluster.connect(citus_cluster.coordinator, name) as connection:
        ports = {row[1] for row in connection.execute("SELECT * FROM citus_get_active_worker_nodes()")}
    assert ports == {worker.port for worker in citus_cluster.workers}


def test_per_patient_query_is_routed_to_one_shard(citus_cluster: CitusCluster, citus_url: str) -> None:
    name = citus_url.rsplit("/", 1)[1]
    with citus_cluster.connect(citus_cluster.coordinator, name) as connection:
        connection.execute("CREATE TABLE entry (patient_id text NOT NULL, id int, PRIMARY KEY (patient_id, id))")
        connection.execute("SELECT create_distributed_table('entry', 'patient_id')")
        connection.execute("INSERT INTO entry SELECT 'patient-' || (i % 50), i FROM generate_series(1, 500) AS i")
        plan = "\n".join(
            row[0] for row in connection.execute("EXPLAIN SELECT * FROM entry WHERE patient_id = 'patient-7'")
        )
        nodes = connection.execute(
            "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'entry'::regclass"
        ).fetchone()
    assert "Task Count: 1" in plan
    assert nodes is not None and nodes[0] == 2


def test_halted_worker_fails_its_shards_then_comes_back(citus_cluster: CitusCluster, citus_url: str) -> None:
    name = citus_url.rsplit("/", 1)[1]
    with citus_cluster.connect(citus_cluster.coordinator, name) as connection:
        connection.execute("CREATE TABLE entry (patient_id text NOT NULL, id int, PRIMARY KEY (patient_id, id))")
        connection.execute("SELECT create_distributed_table('entry', 'patient_id')")
    index = citus_cluster.worker_of_shard(name, "entry", "patient-1")
    citus_cluster.halt_worker(index)
    try:
        with citus_cluster.connect(citus_cluster.coordinator, name) as connection:
            with pytest.raises(psycopg.OperationalError):
                connection.execute("INSERT INTO entry VALUES ('patient-1', 1)")
    finally:
        citus_cluster.resume_worker(index)
    with citus_cluster.connect(citus_cluster.coordinator, name) as connection:
        connection.execute("INSERT INTO entry VALUES ('patient-1', 1)")
        count = connection.execute("SELECT count(*) FROM entry WHERE patient_id = 'patient-1'").fetchone()
    assert count == (1,)
