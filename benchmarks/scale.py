"""The registry at scale: ITI-41 submissions/s and ITI-18 FindDocuments p50/p99 on one PostgreSQL
and on a 3-node Citus cluster (coordinator + 2 workers), registries of 1 M and 10 M DocumentEntries;
and the rows and bytes each DocumentEntry and each submission costs, per table and per node — the
measured input of the capacity model in docs/scaling.md.

For each backend the script keeps its database servers in `--data-dir` (PostgreSQL: one node;
Citus: three, started as tests/citusserver.py starts them, with the tests' settings: fsync off,
so read figures are unaffected and fill times flattered), and one database per size, filled once
by `dmp-xds bench-load`'s generator (10 documents per patient, batches of 1000 patients) after
`dmp-xds db upgrade` (which distributes the schema when the database is Citus). Kept databases
are used again on the next run. Then, for each database:
- ITI-18: a real server (a separate process on 127.0.0.1, `--workers` processes) and 4 keep-alive
  HTTP clients send FindDocuments for random loaded patients (status Approved, one classCode);
- ITI-41: the same server and clients, MTOM Provide and Register of one 20 kB CDA per submission,
  each for a random loaded patient (the submissions stay in the kept database);
- the size of every table (rows, bytes with indexes and TOAST; on Citus per node from
  citus_shards), before and after the ITI-41 run: the difference is what a submission adds.

Usage: python benchmarks/scale.py [--entries 1000000,10000000] [--backends postgresql,citus]
                                  [--data-dir /var/tmp/dmp-xds-bench-scale] [--queries 2000]
                                  [--submissions 400] [--workers 2]
                                  [--citus-fill copy|bench-load|grow] [--fill-only]
Every loop is bounded by its count; servers listen on 127.0.0.1 only and are stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src"), str(ROOT / "benchmarks")]

import psycopg  # noqa: E402
from iti18 import find_documents_slots  # noqa: E402
from iti18 import measure as measure_queries  # noqa: E402
from iti41_iti43 import CLIENTS, expect_success, percentile, run_clients, synthetic_cda  # noqa: E402
from psycopg import sql  # noqa: E402
from sqlalchemy import text  # noqa: E402

import soap_messages as soap  # noqa: E402
from citusserver import CITUS_SETTINGS  # noqa: E402
from dmp_xds.storage.database import create_engine_for  # noqa: E402
from dmp_xds.storage.store import RegistryStore  # noqa: E402
from dmp_xds.tools.bench_load import CodePools, load, patient_id  # noqa: E402
from dmp_xds.xds import vocabulary as v  # noqa: E402
from factories import make_document_entry, make_submission, make_submission_set  # noqa: E402
from pgserver import SUPERUSER, SYSTEM_USER, PostgresServer, find_bindir, free_port  # noqa: E402
from xds_server import start_server, stop_server  # noqa: E402

DOCUMENTS_PER_PATIENT = 10
BATCH_PATIENTS = 1000
VALUE_SETS = ROOT / ".." / "shared" / "ans-testcontenucda" / "jeuxDeValeurs"
DEFAULT_DATA_DIR = Path("/var/tmp/dmp-xds-bench-scale")
FILL_FORMAT = 1  # bump when what a filling writes changes: kept databases of another format are refilled
GROW_STAGE = 1_000_000  # DocumentEntries generated at a time when a kept database is grown
STAGE_DATABASE = "scale_stage"
SUBMITTING_PATIENTS = 500  # ITI-41 submissions go to this many random loaded patients
QUERIED_PATIENTS = 5000


# --- kept servers ---------------------------------------------------------------------------


class KeptNode(PostgresServer):
    """A test PostgreSQL server whose cluster lives in a directory of ours and starts again on the
    same port (Citus' metadata names its nodes by host and port)."""

    @classmethod
    def start_at(cls, base_dir: Path, port: int, settings: dict[str, str]) -> KeptNode:
        run_as = SYSTEM_USER if os.geteuid() == 0 else None
        base_dir.mkdir(parents=True, exist_ok=True)
        if run_as:
            shutil.chown(base_dir, run_as, run_as)
        node = cls(find_bindir(), base_dir, port, run_as, False, dict(settings))
        if not (node.data_dir / "PG_VERSION").exists():
            node._initdb()
        node._write_settings()
        if not node._start_once():
            raise RuntimeError(node._failure(f"did not start on its kept port {port}"))
        node._wait_until_ready()
        return node

    def _write_settings(self) -> None:
        """Ours, over what the server itself keeps there: `CREATE EXTENSION citus` turns SSL on
        with ALTER SYSTEM (a certificate of its own), and the coordinator then requires it of
        the workers (citus.node_conninfo): a restart must not turn it off."""
        auto = self.data_dir / "postgresql.auto.conf"
        earlier = auto.read_text().splitlines(keepends=True) if auto.exists() else []
        super()._write_settings()
        ours = auto.read_text().splitlines(keepends=True)
        keys = {line.split("=", 1)[0].strip() for line in ours}
        kept = [
            line
            for line in earlier
            if "=" in line and not line.startswith("#") and line.split("=", 1)[0].strip() not in keys
        ]
        if (
            "ssl" not in keys | {line.split("=", 1)[0].strip() for line in kept}
            and (self.data_dir / "server.crt").exists()
        ):
            kept.append("ssl = on\n")  # a cluster kept by an earlier version of this script
        auto.write_text("".join(kept + ours))

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        # A clean shutdown (a checkpoint): the next run starts from it.
        self._run(["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop"], check=False)

    def connect(self, database: str) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database, autocommit=True)

    def has_database(self, name: str) -> bool:
        with self.admin_connection() as connection:
            return connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


@dataclass
class Backend:
    """The kept servers of one backend: one node, or a Citus coordinator and its workers."""

    name: str
    home: Path
    roles: list[str]
    nodes: list[KeptNode]

    @classmethod
    def start(cls, name: str, data_dir: Path) -> Backend:
        home = data_dir / name
        home.mkdir(parents=True, exist_ok=True)
        ports_file = home / "ports.json"
        roles = ["coordinator", "worker1", "worker2"] if name == "citus" else ["postgresql"]
        ports = json.loads(ports_file.read_text()) if ports_file.exists() else {r: free_port() for r in roles}
        ports_file.write_text(json.dumps(ports))
        settings = CITUS_SETTINGS if name == "citus" else {}
        nodes: list[KeptNode] = []
        try:
            for role in roles:
                nodes.append(KeptNode.start_at(home / role, int(ports[role]), settings))
        except BaseException:
            for node in nodes:
                node.stop()
            raise
        return cls(name, home, roles, nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    @property
    def coordinator(self) -> KeptNode:
        return self.nodes[0]

    def url(self, database: str) -> str:
        return self.coordinator.url_for(database)

    def create_database(self, name: str) -> None:
        """The database on every node; on Citus the extension in each and the workers registered."""
        for node in self.nodes:
            with node.admin_connection() as connection:
                connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if self.name != "citus":
            return
        for node in self.nodes:
            with node.connect(name) as connection:
                connection.execute("CREATE EXTENSION citus")
        with self.coordinator.connect(name) as connection:
            connection.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (self.coordinator.port,))
            for worker in self.nodes[1:]:
                connection.execute("SELECT citus_add_node('127.0.0.1', %s)", (worker.port,))


# --- filling --------------------------------------------------------------------------------


def db_upgrade(url: str) -> None:
    """`dmp-xds db upgrade`, as an operator runs it (it distributes the schema on Citus)."""
    env = {**os.environ, "DMP_XDS_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "dmp_xds.cli", "db", "upgrade"], env=env, check=True, capture_output=True, timeout=600
    )


def prepared(
    backend: Backend, entries: int, pools: CodePools, source: Backend | None = None, grow: Backend | None = None
) -> tuple[str, dict[str, Any]]:
    """The kept database of `entries` DocumentEntries (filled now if there is none): by
    bench-load's generator, or with `source` (the PostgreSQL backend) copied from its database of
    the same size, filled first if need be, or `grown` from a smaller one through `grow`."""
    name = f"scale_{entries}"
    filled = kept_fills(backend)
    kept = filled.get(name)
    if kept is not None and kept.get("format") == FILL_FORMAT:
        database = kept.get("database", name)
        if backend.coordinator.has_database(database):
            return backend.url(database), kept
    if grow is not None:
        return grown(backend, entries, pools, grow)
    source_url = prepared(source, entries, pools)[0] if source is not None else ""
    how = f"a copy of {source.name}'s" if source is not None else "bench-load's"
    print(f"  filling {backend.name} with {how} {entries} DocumentEntries...", flush=True)
    backend.create_database(name)
    url = backend.url(name)
    start = time.perf_counter()
    db_upgrade(url)
    if source is not None:
        db_upgrade(source_url)  # both at the code's head: the same tables and columns
        copy_rows(source_url, url)
    else:
        fill_with_bench_load(url, entries, pools, start)
    fill_seconds = time.perf_counter() - start
    vacuum_analyze(url)
    kept = {
        "format": FILL_FORMAT,
        "entries": entries,
        "fill": "copy" if source is not None else "bench-load",
        "fill_seconds": fill_seconds,
        "load": os.getloadavg()[0],
    }
    filled[name] = kept
    save_fills(backend, filled)
    return url, kept


def grown(backend: Backend, entries: int, pools: CodePools, stage: Backend) -> tuple[str, dict[str, Any]]:
    """The kept Citus database of `entries` DocumentEntries made from the largest smaller one,
    for a disk that cannot hold both sizes (nor a PostgreSQL copy of the larger): the patients
    added are those `fill_with_bench_load` would give, generated `GROW_STAGE` entries at a time
    into a scratch database of `stage` (the PostgreSQL backend), copied in (COPY), then dropped.
    The smaller size is gone afterwards (its database is the larger's now)."""
    filled = kept_fills(backend)
    smaller = max(
        (
            kept["entries"]
            for kept in filled.values()
            if kept.get("format") == FILL_FORMAT and kept["entries"] < entries
        ),
        default=None,
    )
    if smaller is None:
        raise SystemExit(f"{backend.name}: no kept database smaller than {entries} entries to grow")
    kept = filled.pop(f"scale_{smaller}")
    # Forgotten before it changes: a run stopped halfway leaves no size that its database no
    # longer has (the next run fills that size again).
    save_fills(backend, filled)
    database = kept.get("database", f"scale_{smaller}")
    url = backend.url(database)
    start = time.perf_counter()
    db_upgrade(url)
    for first in range(smaller, entries, GROW_STAGE):
        count = min(GROW_STAGE, entries - first)
        print(f"  growing {backend.name} from {first} to {first + count} DocumentEntries...", flush=True)
        stage.create_database(STAGE_DATABASE)
        stage_url = stage.url(STAGE_DATABASE)
        db_upgrade(stage_url)
        with psycopg.connect(psycopg_url(url)) as target, psycopg.connect(psycopg_url(stage_url)) as scratch:
            # Row ids follow the target's: the copied rows keep them.
            for sequence, table_name, column in owned_sequences(scratch):
                highest = target.execute(
                    sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), sql.Identifier(table_name))
                ).fetchone()
                if highest is not None and highest[0] is not None:
                    scratch.execute("SELECT setval(%s, %s)", (sequence, highest[0]))
            scratch.commit()
        fill_with_bench_load(
            stage_url, count, pools, start, first_patient=first // DOCUMENTS_PER_PATIENT, seed=7 + first
        )
        copy_rows(stage_url, url)
        with stage.coordinator.admin_connection() as connection:
            connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(STAGE_DATABASE)))
    vacuum_analyze(url)
    kept = {
        "format": FILL_FORMAT,
        "entries": entries,
        "database": database,
        "fill": f"grown from {smaller}",
        "fill_seconds": kept["fill_seconds"] + time.perf_counter() - start,
        "load": os.getloadavg()[0],
    }
    filled[f"scale_{entries}"] = kept
    save_fills(backend, filled)
    return url, kept


def kept_fills(backend: Backend) -> dict[str, Any]:
    """The backend's kept databases, by size name, as `save_fills` wrote them."""
    marker_file = backend.home / "filled.json"
    fills: dict[str, Any] = json.loads(marker_file.read_text()) if marker_file.exists() else {}
    return fills


def save_fills(backend: Backend, fills: dict[str, Any]) -> None:
    (backend.home / "filled.json").write_text(json.dumps(fills, indent=1))


def vacuum_analyze(url: str) -> None:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()


def fill_with_bench_load(
    url: str, entries: int, pools: CodePools, start: float, *, first_patient: int = 0, seed: int = 7
) -> None:
    patients = entries // DOCUMENTS_PER_PATIENT
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if done[0] % max(1, patients // 20) < n:
            print(f"    {done[0]:>8} / {patients} patients, {time.perf_counter() - start:.0f} s", flush=True)

    engine = create_engine_for(url)
    try:
        load(RegistryStore(engine), pools, patients, DOCUMENTS_PER_PATIENT, seed=seed, first_patient=first_patient,
             batch_size=BATCH_PATIENTS, progress=progress)  # fmt: skip
    finally:
        engine.dispose()


def psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def copy_rows(source_url: str, target_url: str) -> None:
    """Every table's rows from one database to another with COPY (on Citus, the coordinator's
    distributed COPY streams each row to its shard), parents first; then each sequence past
    the ids copied. bench-load's executemany goes row by row through a Citus coordinator
    (about 100 DocumentEntries/s here), COPY at disk speed: the same rows, in a fraction of
    the time."""
    from dmp_xds.storage.tables import metadata

    with psycopg.connect(psycopg_url(source_url)) as source, psycopg.connect(psycopg_url(target_url)) as target:
        for table in metadata.sorted_tables:
            columns = sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)
            started = time.perf_counter()
            copied = 0
            with (
                source.cursor().copy(
                    sql.SQL("COPY {} ({}) TO STDOUT (FORMAT BINARY)").format(sql.Identifier(table.name), columns)
                ) as out,
                target.cursor().copy(
                    sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(sql.Identifier(table.name), columns)
                ) as into,
            ):
                for block in out:
                    into.write(block)
                    copied += len(block)
            target.commit()
            if copied > 1 << 20:
                print(f"    {table.name}: {copied / 2**20:.0f} MB in {time.perf_counter() - started:.0f} s", flush=True)
        for sequence, table_name, column in owned_sequences(target):
            target.execute(
                sql.SQL("SELECT setval({}, coalesce((SELECT max({}) FROM {}), 0) + 1, false)").format(
                    sql.Literal(sequence), sql.Identifier(column), sql.Identifier(table_name)
                )
            )
        target.commit()


def owned_sequences(connection: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(sequence, table, column) of every sequence a column owns."""
    return connection.execute(
        "SELECT s.oid::regclass::text, t.relname, a.attname FROM pg_class s "
        "JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
        "JOIN pg_class t ON t.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
        "WHERE s.relkind = 'S'"
    ).fetchall()


# --- sizes ----------------------------------------------------------------------------------


def table_sizes(backend: Backend, url: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(table, node) -> (rows, bytes with indexes and TOAST). A distributed or reference table's
    shards are counted on the node that holds them (citus_shards), any other table on the
    coordinator (or the one PostgreSQL)."""
    database = url.rsplit("/", 1)[1]
    coordinator = "coordinator" if backend.name == "citus" else "postgresql"
    port_roles = {node.port: role for node, role in zip(backend.nodes, backend.roles, strict=True)}
    out: dict[tuple[str, str], tuple[int, int]] = {}
    with backend.coordinator.connect(database) as connection:
        tables = [t for (t,) in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        citus: dict[str, str] = {}
        if backend.name == "citus":
            citus = {
                str(t): str(k)
                for t, k in connection.execute("SELECT table_name::text, citus_table_type FROM citus_tables")
            }
        for table in sorted(tables):
            rows = int(
                connection.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
            )  # type: ignore[index]
            if table in citus:  # distributed, reference, or a Citus local table (its shard holds the rows)
                placed = [
                    (port_roles.get(int(port), f"node {port}"), int(size))
                    for port, size in connection.execute(
                        "SELECT nodeport, sum(shard_size) FROM citus_shards WHERE table_name = %s::regclass "
                        "GROUP BY nodeport",
                        (table,),
                    )
                ]
                total = sum(size for _, size in placed) or 1
                for role, size in placed:
                    # A reference table is whole on every node; a distributed table's rows are
                    # given to each node in proportion to its bytes (no scan of every shard).
                    node_rows = rows if citus[table] == "reference" else round(rows * size / total)
                    out[(table, role)] = (node_rows, size)
            else:
                size = connection.execute("SELECT pg_total_relation_size(%s::regclass)", (table,)).fetchone()
                out[(table, coordinator)] = (rows, int(size[0]) if size else 0)
    return out


def per_table(sizes: dict[tuple[str, str], tuple[int, int]], reference_tables: set[str]) -> dict[str, tuple[int, int]]:
    """Rows and bytes per table, all nodes together (a reference table's rows once)."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (table, _), (rows, size) in sizes.items():
        totals[table][1] += size
        if table in reference_tables:
            totals[table][0] = rows
        else:
            totals[table][0] += rows
    return {t: (r, b) for t, (r, b) in totals.items()}


def reference_tables_of(backend: Backend, url: str) -> set[str]:
    if backend.name != "citus":
        return set()
    with backend.coordinator.connect(url.rsplit("/", 1)[1]) as connection:
        return {
            str(t)
            for (t,) in connection.execute(
                "SELECT table_name::text FROM citus_tables WHERE citus_table_type = 'reference'"
            )
        }


# --- measuring ------------------------------------------------------------------------------


def class_codes(url: str) -> list[str]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            return sorted(
                f"{code}^^{scheme}"
                for code, scheme in connection.execute(
                    text(
                        "SELECT DISTINCT class_code, class_code_scheme FROM document_entry "
                        "WHERE patient_id IN (:a, :b, :c)"
                    ),
                    {"a": patient_id(1), "b": patient_id(2), "c": patient_id(3)},
                )
            )
    finally:
        engine.dispose()


def iti41_bodies(count: int, patients: list[str], rng: random.Random) -> list[tuple[bytes, str]]:
    """Provide and Register of one 20 kB CDA each, for random loaded patients, uniqueIds new on
    every run (the kept registry already has those of earlier runs)."""
    out = []
    for index in range(count):
        patient = rng.choice(patients)
        ss = make_submission_set(patient_id=patient, unique_id=f"2.25.{uuid.uuid4().int}")
        de = make_document_entry(
            patient_id=patient,
            unique_id=f"2.25.{uuid.uuid4().int}",
            hash=None,
            size=None,
            repository_unique_id=None,
            mime_type="text/xml",
        )
        request = soap.provide_and_register(
            make_submission(submission_set=ss, documents=[de]), {de.entry_uuid: synthetic_cda(index)}
        )
        out.append((request.body, request.content_type))
    return out


def bench(
    backend: Backend,
    entries: int,
    args: argparse.Namespace,
    pools: CodePools,
    source: Backend | None,
    grow: Backend | None = None,
) -> dict[str, Any]:
    url, kept = prepared(backend, entries, pools, source, grow)
    patients = entries // DOCUMENTS_PER_PATIENT
    rng = random.Random(5)
    classes = class_codes(url)
    finds = [
        soap.adhoc_query(
            v.SQ_FIND_DOCUMENTS,
            dict(find_documents_slots(patient_id(rng.randrange(patients)), rng.choice(classes))),
        )
        for _ in range(args.queries)
    ]
    submitting = [patient_id(rng.randrange(patients)) for _ in range(SUBMITTING_PATIENTS)]
    submissions = iti41_bodies(args.submissions, submitting, rng)
    warmup = iti41_bodies(20, submitting, rng)
    references = reference_tables_of(backend, url)
    work = Path(tempfile.mkdtemp(prefix="server-", dir=backend.home))
    server = start_server(work, url, {"DMP_XDS_PROFILE": "ihe", "DMP_XDS_WORKERS": str(args.workers)})
    try:
        load_before = os.getloadavg()[0]
        iti18 = measure_queries(server.registry_url, [(r.body, r.content_type) for r in finds])
        run_clients(server.repository_url, warmup, expect_success)
        before = table_sizes(backend, url)
        seconds, latencies, _ = run_clients(server.repository_url, submissions, expect_success)
        after = table_sizes(backend, url)
        load_after = os.getloadavg()[0]
    finally:
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "entries": entries,
        "fill_seconds": kept["fill_seconds"],
        "iti18": iti18,
        "iti41": {
            "per_s": len(submissions) / seconds,
            "p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
        },
        "before": before,
        "after": after,
        "references": references,
        "submissions": len(submissions),
        "load": (load_before, load_after),
    }


# --- report ---------------------------------------------------------------------------------


def print_sizes(backend: str, result: dict[str, Any]) -> None:
    before: dict[tuple[str, str], tuple[int, int]] = result["before"]
    after: dict[tuple[str, str], tuple[int, int]] = result["after"]
    references: set[str] = result["references"]
    tables = per_table(before, references)
    grown = per_table(after, references)
    entries = tables.get("document_entry", (1, 0))[0] or 1
    count = result["submissions"]
    print(f"\n{backend}, {entries} DocumentEntries: rows and bytes per table (indexes and TOAST included)")
    print(f"{'table':<34}{'rows':>12}{'rows/DE':>9}{'MB':>10}{'B/DE':>8}{'rows/sub':>10}{'B/sub':>9}")
    for table, (rows, size) in sorted(tables.items(), key=lambda item: -item[1][1]):
        new_rows, new_size = grown.get(table, (rows, size))
        print(
            f"{table:<34}{rows:>12}{rows / entries:>9.2f}{size / 2**20:>10.1f}{size / entries:>8.0f}"
            f"{(new_rows - rows) / count:>10.2f}{(new_size - size) / count:>9.0f}"
        )
    total = sum(size for _, size in tables.values())
    total_after = sum(size for _, size in grown.values())
    print(
        f"{'all tables':<34}{'':>12}{'':>9}{total / 2**20:>10.1f}{total / entries:>8.0f}{'':>10}{(total_after - total) / count:>9.0f}"
    )
    nodes: dict[str, int] = defaultdict(int)
    for (_, node), (_, size) in before.items():
        nodes[node] += size
    if len(nodes) > 1:
        names = sorted(nodes)
        print(f"\nper node: rows and bytes per DocumentEntry ({', '.join(names)})")
        for table, _ in sorted(tables.items(), key=lambda item: -item[1][1]):
            cells = [before.get((table, node), (0, 0)) for node in names]
            if any(size for _, size in cells):
                print(
                    f"{table:<34}" + "".join(f"{rows / entries:>9.3f}{size / entries:>8.0f} B" for rows, size in cells)
                )
    print(
        "per node: "
        + ", ".join(f"{node} {size / 2**20:.1f} MB ({size / entries:.0f} B/DE)" for node, size in sorted(nodes.items()))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", default="1000000,10000000", help="DocumentEntries, comma-separated sizes")
    parser.add_argument("--backends", default="postgresql,citus")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="where filled clusters are kept")
    parser.add_argument("--queries", type=int, default=2000, help="FindDocuments per measurement")
    parser.add_argument("--submissions", type=int, default=400, help="ITI-41 submissions per measurement")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument(
        "--citus-fill",
        choices=("copy", "bench-load", "grow"),
        default="copy",
        help="fill Citus with a COPY of the PostgreSQL database of the same size (filled first if need be), "
        "with bench-load through the coordinator (row by row: slow), or by growing its largest smaller kept "
        "database a million entries at a time (staged in PostgreSQL, then copied: for a disk that cannot "
        "hold PostgreSQL and Citus at the larger size; the smaller one is consumed)",
    )
    parser.add_argument("--fill-only", action="store_true", help="fill (or check) the kept databases, measure nothing")
    parser.add_argument("--value-sets", type=Path, default=VALUE_SETS, help="the ANS value sets (jeuxDeValeurs)")
    args = parser.parse_args()
    # The servers and `db upgrade` (subprocesses) run this checkout's code, whatever the
    # virtualenv has installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT / "src"), os.environ.get("PYTHONPATH", ""))))
    sizes = [int(s) for s in args.entries.split(",")]
    args.data_dir.mkdir(parents=True, exist_ok=True)
    pools = CodePools.load(args.value_sets)
    results: dict[str, list[dict[str, Any]]] = {}
    names = args.backends.split(",")
    for name in names:
        if name not in ("postgresql", "citus"):
            raise SystemExit(f"unknown backend {name!r} (postgresql, citus)")
    copying = "citus" in names and args.citus_fill in ("copy", "grow")
    running: dict[str, Backend] = {}
    try:
        # PostgreSQL first: Citus' databases are copies of its own.
        for name in ["postgresql", "citus"]:
            if name in names or (name == "postgresql" and copying):
                running[name] = Backend.start(name, args.data_dir)
        source = running.get("postgresql") if copying else None
        growing = args.citus_fill == "grow"
        for name in names:
            backend = running[name]
            for entries in sizes:
                origin = source if name == "citus" and not growing else None
                stage = source if name == "citus" and growing else None
                if args.fill_only:
                    _, kept = prepared(backend, entries, pools, origin, stage)
                    print(f"  {name} {entries}: filled in {kept['fill_seconds']:.0f} s", flush=True)
                    continue
                result = bench(backend, entries, args, pools, origin, stage)
                results.setdefault(name, []).append(result)
                print(
                    f"  {name} {entries}: FindDocuments p50 {result['iti18']['p50_ms']:.1f} ms p99 "
                    f"{result['iti18']['p99_ms']:.1f} ms; ITI-41 {result['iti41']['per_s']:.1f}/s "
                    f"(load {result['load'][0]:.1f}-{result['load'][1]:.1f})",
                    flush=True,
                )
                print_sizes(name, result)
    finally:
        for backend in running.values():
            backend.stop()
    print(
        f"\nITI-18 FindDocuments ({args.queries} queries) and ITI-41 ({args.submissions} submissions of a "
        f"{20} kB CDA) over HTTP, {CLIENTS} clients, {args.workers} server process(es), {os.cpu_count()} cores "
        "shared by the server, the database nodes and the clients; database nodes with fsync off"
    )
    print(
        f"{'backend':<11}{'entries':>10}{'find p50':>10}{'find p99':>10}{'find/s':>8}"
        f"{'ITI-41/s':>10}{'41 p50':>8}{'41 p99':>8}{'fill s':>8}{'load':>10}"
    )
    for name, rows in results.items():
        for r in rows:
            print(
                f"{name:<11}{r['entries']:>10}{r['iti18']['p50_ms']:>10.1f}{r['iti18']['p99_ms']:>10.1f}"
                f"{r['iti18']['per_s']:>8.0f}{r['iti41']['per_s']:>10.1f}{r['iti41']['p50_ms']:>8.1f}"
                f"{r['iti41']['p99_ms']:>8.1f}{r['fill_seconds']:>8.0f}{r['load'][0]:>5.1f}-{r['load'][1]:<4.1f}"
            )
    for name, rows in results.items():
        if len(rows) > 1:
            first, last = rows[0], rows[-1]
            print(
                f"{name}: FindDocuments p99 {first['iti18']['p99_ms']:.1f} ms at {first['entries']} -> "
                f"{last['iti18']['p99_ms']:.1f} ms at {last['entries']} (x{last['iti18']['p99_ms'] / first['iti18']['p99_ms']:.2f})"
            )


if __name__ == "__main__":
    main()
