"""A throwaway Citus cluster for the tests: a coordinator and two workers on 127.0.0.1.

Each node is a `PostgresServer` (tests/pgserver.py) with the Citus library preloaded; the
extension is installed by `.ci/install-citus`, which `make test` runs. Citus keeps its metadata
per database, so `create_database` makes the database on every node, creates the extension in
each and registers the workers on the coordinator: the returned URL (the coordinator's) is a
fresh distributed database, ready for `dmp-xds db upgrade`.

`halt_worker` / `resume_worker` stop a worker as a crash would and start it again, for the fault
tests. Any failure raises `PostgresStartError` with the logs in its message.
"""

from __future__ import annotations

import atexit
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from pgserver import SUPERUSER, PostgresServer, PostgresStartError, find_bindir

WORKERS = 2
# Fewer shards than Citus' default (32): every test database distributes each table again, and
# a handful of shards per worker is enough to spread patients over both workers.
TEST_SHARD_COUNT = 8

CITUS_SETTINGS = {
    "shared_preload_libraries": "'citus'",
    # No usage reporting (the build has no libcurl anyway) and a bounded 2PC footprint.
    "citus.enable_statistics_collection": "off",
    "max_prepared_transactions": "100",
    "max_connections": "200",
}


def citus_installed() -> bool:
    """Whether the Citus library is in the PostgreSQL the tests start."""
    try:
        bindir = find_bindir()
    except PostgresStartError:
        return False
    return (bindir.parent / "lib" / "citus.so").exists()


@dataclass
class CitusCluster:
    coordinator: PostgresServer
    workers: list[PostgresServer]
    databases: list[str] = field(default_factory=list)
    _stopped: bool = field(default=False, repr=False)

    @classmethod
    def start(cls, workers: int = WORKERS) -> CitusCluster:
        if not citus_installed():
            raise PostgresStartError(
                f"the Citus extension is not installed in {find_bindir().parent}: run `bash .ci/install-citus`"
            )
        nodes: list[PostgresServer] = []
        try:
            for _ in range(workers + 1):
                nodes.append(PostgresServer.start(extra_settings=CITUS_SETTINGS))
        except BaseException:
            for node in nodes:
                node.stop()
            raise
        cluster = cls(nodes[0], nodes[1:])
        atexit.register(cluster.stop)
        return cluster

    @property
    def nodes(self) -> list[PostgresServer]:
        return [self.coordinator, *self.workers]

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for node in self.nodes:
            node.stop()

    # --- databases -----------------------------------------------------------------------

    def create_database(self, prefix: str = "test", shard_count: int = TEST_SHARD_COUNT) -> str:
        """A new distributed database on every node, its workers registered; returns its name."""
        name = self.coordinator.create_database(prefix)
        for worker in self.workers:
            with worker.admin_connection() as connection:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        for node in self.nodes:
            with self.connect(node, name) as connection:
                connection.execute("CREATE EXTENSION citus")
        with self.connect(self.coordinator, name) as connection:
            connection.execute(
                sql.SQL("ALTER DATABASE {} SET citus.shard_count = {}").format(
                    sql.Identifier(name), sql.Literal(shard_count)
                )
            )
            connection.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (self.coordinator.port,))
            for worker in self.workers:
                connection.execute("SELECT citus_add_node('127.0.0.1', %s)", (worker.port,))
        self.databases.append(name)
        return name

    def url_for(self, database: str) -> str:
        return self.coordinator.url_for(database)

    def drop_database(self, name: str) -> None:
        for node in self.nodes:
            try:
                node.drop_database(name)
            except psycopg.Error:
                pass  # a halted worker: its copy goes with the cluster
        if name in self.databases:
            self.databases.remove(name)

    @staticmethod
    def connect(node: PostgresServer, database: str) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=node.port, user=SUPERUSER, dbname=database, autocommit=True, connect_timeout=5
        )

    # --- faults --------------------------------------------------------------------------

    def halt_worker(self, index: int) -> None:
        self.workers[index].halt()

    def resume_worker(self, index: int) -> None:
        self.workers[index].resume()

    def worker_of_shard(self, database: str, table: str, value: str) -> int:
        """The index in `workers` of the node holding the shard of `table` for distribution
        value `value` (a fault test stops the worker that holds a given patient)."""
        with self.connect(self.coordinator, database) as connection:
            row = connection.execute(
                "SELECT nodeport FROM citus_shards WHERE shardid = get_shard_id_for_distribution_column(%s::regclass, %s::text)",
                (table, value),
            ).fetchone()
        if row is None:
            raise LookupError(f"{table} has no shard for {value!r}")
        return [worker.port for worker in self.workers].index(int(row[0]))

    def log_tails(self) -> str:
        return "\n".join(f"--- node {node.port} ---\n{node.log_tail()}" for node in self.nodes)
