"""The Citus cluster behind a distributed registry database: what it is made of, and the
operations that grow or shrink it (add a worker, rebalance shards, drain a worker).

Everything here goes through the coordinator, with Citus' own catalog views and functions
(`pg_dist_node`, `citus_shards`, `citus_tables`, `citus_add_node`, `citus_rebalance_start`,
`citus_drain_node`...): the statements are pure builders, the few functions that run them are
thin. The one exception is the check of a node before it is added, which connects to the node
itself with the coordinator URL's credentials and database: Citus needs the extension created
in that database on the node, and says so less clearly than we can.

A database that is not Citus (SQLite, plain PostgreSQL) raises `NotDistributed`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, TextClause, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

NODE_CONNECT_TIMEOUT_SECONDS = 5
# Shard transfer modes of Citus' rebalancer: 'auto' replicates logically (writes go on during the
# move) and needs a primary key or replica identity on every table; 'block_writes' copies with
# the shard's writes blocked, and works on any table.
TRANSFER_MODES = ("auto", "force_logical", "block_writes")
REBALANCE_DONE_STATES = ("finished", "failed", "cancelled")


class NotDistributed(Exception):
    """The database is not a Citus coordinator: there is no cluster to look at or change."""


class ClusterError(Exception):
    """A cluster operation cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Node:
    host: str
    port: int
    role: str  # "coordinator" or "worker"
    active: bool
    should_have_shards: bool
    shards: int = 0  # shard placements on the node, reference tables' included
    bytes: int = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class CitusTable:
    name: str
    kind: str  # "distributed", "reference" or "local" (citus_tables.citus_table_type)
    distribution_column: str  # "<none>" for a reference table
    colocation_id: int
    shard_count: int
    bytes: int


@dataclass(frozen=True)
class RebalanceMove:
    table: str
    shard_id: int
    bytes: int
    source: str
    target: str


@dataclass
class ClusterStatus:
    citus_version: str
    coordinator: Node | None
    workers: list[Node]
    tables: list[CitusTable]
    planned_moves: list[RebalanceMove]
    coordinator_tables: list[tuple[str, int]] = field(default_factory=list)  # plain tables: (name, bytes)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RebalanceProgress:
    job_id: int
    state: str  # scheduled, running, finished, failed, cancelled...
    tasks: dict[str, int]  # task state -> count
    message: str  # the error of a failed task, if any

    @property
    def done(self) -> bool:
        return self.state in REBALANCE_DONE_STATES


# --- statements ----------------------------------------------------------------------------


def citus_version_query() -> TextClause:
    return text("SELECT extversion FROM pg_extension WHERE extname = 'citus'")


def nodes_query() -> TextClause:
    return text(
        "SELECT nodename, nodeport, groupid, isactive, shouldhaveshards FROM pg_dist_node "
        "WHERE noderole = 'primary' ORDER BY groupid, nodename, nodeport"
    )


def placements_per_node_query() -> TextClause:
    return text(
        "SELECT nodename, nodeport, count(*), coalesce(sum(shard_size), 0) FROM citus_shards GROUP BY nodename, nodeport"
    )


def tables_query() -> TextClause:
    return text(
        "SELECT t.table_name::text, t.citus_table_type, t.distribution_column, t.colocation_id, t.shard_count, "
        "coalesce((SELECT sum(s.shard_size) FROM citus_shards s WHERE s.table_name = t.table_name), 0) "
        "FROM citus_tables t ORDER BY t.colocation_id, t.table_name::text"
    )


def coordinator_tables_query() -> TextClause:
    """The schema's plain tables, outside Citus' metadata: they live on the coordinator alone."""
    return text(
        "SELECT c.relname::text, pg_total_relation_size(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "AND c.oid NOT IN (SELECT logicalrelid FROM pg_dist_partition) ORDER BY 1"
    )


def rebalance_plan_query() -> TextClause:
    return text(
        "SELECT table_name::text, shardid, shard_size, sourcename, sourceport, targetname, targetport "
        "FROM get_rebalance_table_shards_plan()"
    )


def tables_without_replica_identity_query() -> TextClause:
    """Distributed tables whose shards cannot be moved by logical replication: no primary key
    and no replica identity index (REPLICA IDENTITY DEFAULT with no key, or NOTHING)."""
    return text(
        "SELECT t.table_name::text FROM citus_tables t JOIN pg_class c ON c.oid = t.table_name "
        "WHERE t.citus_table_type <> 'local' AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS "
        "(SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))) ORDER BY 1"
    )


def wal_levels_query() -> TextClause:
    return text("SELECT nodename, nodeport, success, result FROM run_command_on_workers('SHOW wal_level')")


def add_node_statements() -> tuple[TextClause, TextClause]:
    """Add a worker, then make sure it is active (adding a node that is already there but was
    disabled by a drain returns its id without activating it)."""
    return (
        text("SELECT citus_add_node(:host, :port)"),
        text("SELECT citus_activate_node(:host, :port)"),
    )


def rebalance_start_statement() -> TextClause:
    return text("SELECT citus_rebalance_start(shard_transfer_mode => CAST(:mode AS citus.shard_transfer_mode))")


def rebalance_status_query() -> TextClause:
    return text("SELECT job_id, state, details FROM citus_rebalance_status()")


def drain_statements() -> tuple[TextClause, TextClause]:
    """Move every shard off the node (Citus marks it to have none first), then disable it: it
    takes no new shards nor queries, and `citus_remove_node` can take it out."""
    return (
        text("SELECT citus_drain_node(:host, :port, shard_transfer_mode => CAST(:mode AS citus.shard_transfer_mode))"),
        text("SELECT citus_disable_node(:host, :port, synchronous => true)"),
    )


# --- pure interpretation -------------------------------------------------------------------


def balance_warnings(
    workers: Sequence[Node], tables: Sequence[CitusTable], moves: Sequence[RebalanceMove]
) -> list[str]:
    """What an operator should act on: inactive workers, shards left on nodes that should have
    none, and the moves Citus' rebalancer would make."""
    warnings = [f"worker {w.address} is inactive" for w in workers if not w.active]
    warnings += [
        f"worker {w.address} holds {w.shards} shard placement(s) but takes no new shards (drained?)"
        for w in workers
        if w.active and not w.should_have_shards and w.shards > _reference_placements(tables)
    ]
    if moves:
        targets = sorted({m.target for m in moves})
        warnings.append(
            f"shards are unbalanced: the rebalancer would move {len(moves)} shard(s) "
            f"({sum(m.bytes for m in moves)} bytes) to {', '.join(targets)}; run `dmp-xds cluster rebalance`"
        )
    if not any(w.active and w.should_have_shards for w in workers):
        warnings.append("no active worker takes shards")
    return warnings


def _reference_placements(tables: Sequence[CitusTable]) -> int:
    return sum(1 for t in tables if t.kind == "reference")


def rebalance_progress(job_id: int, state: str, details: dict[str, Any] | None) -> RebalanceProgress:
    details = details or {}
    counts = {str(k): int(v) for k, v in (details.get("task_state_counts") or {}).items()}
    errors = [
        str(task.get("message") or "")
        for task in details.get("tasks") or []
        if task.get("state") in ("error", "cancelled") and task.get("message")
    ]
    return RebalanceProgress(job_id, state, counts, "; ".join(errors))


def transfer_mode_for(requested: str, without_identity: Sequence[str], not_logical: Sequence[str] = ()) -> str:
    """'auto' becomes 'block_writes' when logical replication cannot move the shards: a table
    without a replica identity, or a node whose wal_level is not 'logical' (Citus would retry
    the move forever). An explicit 'force_logical' then is refused before anything starts."""
    if requested not in TRANSFER_MODES:
        raise ClusterError(f"unknown shard transfer mode {requested!r} (one of {', '.join(TRANSFER_MODES)})")
    if requested == "block_writes" or not (without_identity or not_logical):
        return requested
    if requested == "force_logical":
        reasons = []
        if without_identity:
            reasons.append(f"these tables have no primary key nor replica identity: {', '.join(without_identity)}")
        if not_logical:
            reasons.append(f"wal_level is not 'logical' on {', '.join(not_logical)}")
        raise ClusterError(
            f"shards cannot be moved by logical replication: {'; '.join(reasons)}; use --transfer-mode block_writes"
        )
    return "block_writes"


# --- I/O -----------------------------------------------------------------------------------


def logical_replication_blockers(connection: Connection) -> tuple[list[str], list[str]]:
    """The tables without a replica identity, and the nodes (coordinator included) whose
    wal_level is not 'logical'."""
    tables = [str(name) for (name,) in connection.execute(tables_without_replica_identity_query())]
    nodes = [] if connection.execute(text("SHOW wal_level")).scalar() == "logical" else ["the coordinator"]
    nodes += [
        f"{host}:{port}"
        for host, port, ok, level in connection.execute(wal_levels_query())
        if not ok or level != "logical"
    ]
    return tables, nodes


def citus_version(engine: Engine) -> str:
    """The Citus extension's version in this database; `NotDistributed` when it is not Citus."""
    if engine.dialect.name != "postgresql":
        raise NotDistributed(f"the registry database is {engine.dialect.name}, not Citus: it is not distributed")
    with engine.connect() as connection:
        version = connection.execute(citus_version_query()).scalar()
    if version is None:
        raise NotDistributed("the registry database is plain PostgreSQL (no citus extension): it is not distributed")
    return str(version)


def cluster_status(engine: Engine) -> ClusterStatus:
    version = citus_version(engine)
    with engine.connect() as connection:
        placements = {
            (str(host), int(port)): (int(count), int(size))
            for host, port, count, size in connection.execute(placements_per_node_query())
        }
        nodes = [
            Node(
                str(host),
                int(port),
                "coordinator" if int(group) == 0 else "worker",
                bool(active),
                bool(has_shards),
                *placements.get((str(host), int(port)), (0, 0)),
            )
            for host, port, group, active, has_shards in connection.execute(nodes_query())
        ]
        tables = [
            CitusTable(str(name), str(kind), str(column), int(colocation), int(shards), int(size))
            for name, kind, column, colocation, shards, size in connection.execute(tables_query())
        ]
        plain = [(str(name), int(size)) for name, size in connection.execute(coordinator_tables_query())]
        try:
            moves = [
                RebalanceMove(str(table), int(shard), int(size), f"{sh}:{sp}", f"{th}:{tp}")
                for table, shard, size, sh, sp, th, tp in connection.execute(rebalance_plan_query())
            ]
        except DBAPIError:
            moves = []  # no worker to plan for (a coordinator alone): nothing to move
    coordinator = next((n for n in nodes if n.role == "coordinator"), None)
    workers = [n for n in nodes if n.role == "worker"]
    return ClusterStatus(version, coordinator, workers, tables, moves, plain, balance_warnings(workers, tables, moves))


def node_url(coordinator_url: str, host: str, port: int) -> str:
    """The coordinator's URL (user, password, database) pointed at another node."""
    return make_url(coordinator_url).set(host=host, port=port).render_as_string(hide_password=False)


def check_new_node(coordinator_url: str, coordinator_version: str, host: str, port: int) -> None:
    """The node answers, and has the citus extension, of the coordinator's version, in the
    registry's database: what `citus_add_node` needs."""
    url = make_url(coordinator_url)
    engine = create_engine(
        node_url(coordinator_url, host, port),
        poolclass=NullPool,
        connect_args={"connect_timeout": NODE_CONNECT_TIMEOUT_SECONDS},
    )
    try:
        with engine.connect() as connection:
            version = connection.execute(citus_version_query()).scalar()
    except OperationalError as exc:
        raise ClusterError(
            f"cannot connect to {host}:{port} (database {url.database!r}, user {url.username!r}): "
            f"{_first_line(exc)}; the node must run PostgreSQL with the citus library preloaded and "
            "accept the coordinator's connections"
        ) from exc
    finally:
        engine.dispose()
    if version is None:
        raise ClusterError(
            f"the citus extension is not created in database {url.database!r} on {host}:{port}: "
            "run `CREATE EXTENSION citus` there (as a superuser), then add the worker again"
        )
    if str(version) != coordinator_version:
        raise ClusterError(
            f"{host}:{port} has citus {version}, the coordinator {coordinator_version}: install the same version"
        )


def add_worker(engine: Engine, coordinator_url: str, host: str, port: int) -> bool:
    """Register a worker (checked first); False when it was already an active worker."""
    version = citus_version(engine)
    add, activate = add_node_statements()
    with engine.connect() as connection:
        known = connection.execute(
            text("SELECT isactive FROM pg_dist_node WHERE nodename = :host AND nodeport = :port"),
            {"host": host, "port": port},
        ).scalar()
    if known is True:
        return False
    check_new_node(coordinator_url, version, host, port)
    try:
        # Outside a transaction block: Citus syncs its metadata to the new node as it adds it.
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(add, {"host": host, "port": port})
            connection.execute(activate, {"host": host, "port": port})
    except DBAPIError as exc:
        raise ClusterError(f"Citus refused to add {host}:{port}: {_first_line(exc)}") from exc
    return True


def start_rebalance(engine: Engine, mode: str = "auto") -> tuple[int | None, str]:
    """Start Citus' background rebalancer; returns (job id, transfer mode used), job id None when
    the shards are already balanced."""
    citus_version(engine)
    with engine.connect() as connection:
        without_identity, not_logical = logical_replication_blockers(connection)
    used = transfer_mode_for(mode, without_identity, not_logical)
    try:
        with engine.begin() as connection:
            job = connection.execute(rebalance_start_statement(), {"mode": used}).scalar()
    except DBAPIError as exc:
        raise ClusterError(f"Citus refused to start rebalancing: {_first_line(exc)}") from exc
    return (int(job) if job is not None else None), used


def rebalance_status(engine: Engine) -> RebalanceProgress | None:
    """The latest rebalance job's progress, None if there never was one."""
    with engine.connect() as connection:
        rows = connection.execute(rebalance_status_query()).all()
    if not rows:
        return None
    job_id, state, details = max(rows, key=lambda row: int(row[0]))
    return rebalance_progress(int(job_id), str(state), details)


def wait_for_rebalance(
    engine: Engine,
    timeout_seconds: float,
    on_progress: Callable[[RebalanceProgress], None],
    poll_seconds: float = 1.0,
) -> RebalanceProgress | None:
    """Poll the job until it is done or `timeout_seconds` passed; the last progress seen."""
    deadline = time.monotonic() + timeout_seconds
    last: RebalanceProgress | None = None
    while True:
        progress = rebalance_status(engine)
        if progress is not None and progress != last:
            on_progress(progress)
        last = progress
        if progress is None or progress.done or time.monotonic() >= deadline:
            return last
        time.sleep(poll_seconds)


def drain_worker(engine: Engine, host: str, port: int, mode: str = "auto") -> str:
    """Move every shard off a worker and disable it; returns the transfer mode used."""
    citus_version(engine)
    with engine.connect() as connection:
        known = connection.execute(
            text("SELECT groupid FROM pg_dist_node WHERE nodename = :host AND nodeport = :port"),
            {"host": host, "port": port},
        ).scalar()
        without_identity, not_logical = logical_replication_blockers(connection)
    if known is None:
        raise ClusterError(f"{host}:{port} is not a node of this cluster (see `dmp-xds cluster status`)")
    if int(known) == 0:
        raise ClusterError(f"{host}:{port} is the coordinator: only a worker can be drained")
    used = transfer_mode_for(mode, without_identity, not_logical)
    drain, disable = drain_statements()
    params = {"host": host, "port": port, "mode": used}
    try:
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(drain, params)
            connection.execute(disable, params)
    except DBAPIError as exc:
        raise ClusterError(f"Citus could not drain {host}:{port}: {_first_line(exc)}") from exc
    return used


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0]
