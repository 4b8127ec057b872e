"""ITI-18 latency and throughput at 100k and 1M DocumentEntries, SQLite and PostgreSQL.

For each backend and registry size the script fills a registry with `dmp-xds bench-load`'s
generator (10 documents per patient: 100,000 patients for 1M documents), starts a real server
(a separate process on 127.0.0.1) and drives it with 4 concurrent keep-alive HTTP clients:
- FindDocuments: a random loaded patient, status Approved, one classCode (LeafClass);
- GetDocuments: one random registered uniqueId (LeafClass).
It prints p50/p99 latency and queries/s per query, and the database's plan for both queries
(EXPLAIN), which must be index lookups for the time not to grow with the registry.

The PostgreSQL server is the tests' throwaway one (tests/pgserver.py), which runs with
fsync=off: figures for reads are unaffected, load times are flattered.

Usage: python benchmarks/iti18.py [--sizes 100000,1000000] [--backends sqlite,postgresql]
                                  [--queries 4000] [--workers 1]
Every loop is bounded by its count; the server only listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src"), str(ROOT / "benchmarks")]

from iti41_iti43 import percentile, run_clients  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

import soap_messages as soap  # noqa: E402
from dmp_xds.storage.database import create_engine_for, upgrade  # noqa: E402
from dmp_xds.storage.queries import build_plan, parse_stored_query  # noqa: E402
from dmp_xds.storage.store import RegistryStore  # noqa: E402
from dmp_xds.tools.bench_load import CodePools, load, patient_id  # noqa: E402
from dmp_xds.xds import vocabulary as v  # noqa: E402
from pgserver import PostgresServer  # noqa: E402

DOCUMENTS_PER_PATIENT = 10
VALUE_SETS = ROOT / ".." / "shared" / "ans-testcontenucda" / "jeuxDeValeurs"
WARMUP = 200


def expect_success(status: int, body: bytes) -> None:
    if status != 200 or b"ResponseStatusType:Success" not in body:
        raise RuntimeError(f"query failed ({status}): {body[:400]!r}")


def find_documents_slots(patient: str, class_code: str) -> list[tuple[str, list[str]]]:
    return [
        (v.P_DE_PATIENT_ID, [f"'{patient}'"]),
        (v.P_DE_STATUS, [f"('{v.STATUS_APPROVED}')"]),
        (v.P_DE_CLASS_CODE, [f"('{class_code}')"]),
    ]


def fill(url: str, documents: int, pools: CodePools) -> float:
    upgrade(url)
    engine = create_engine_for(url)
    patients = documents // DOCUMENTS_PER_PATIENT
    start = time.perf_counter()
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if done[0] % max(1, patients // 10) < n:
            print(f"    {done[0]:>7} / {patients} patients, {time.perf_counter() - start:.0f} s", flush=True)

    try:
        load(RegistryStore(engine), pools, patients, DOCUMENTS_PER_PATIENT, seed=7, batch_size=1000, progress=progress)
        if engine.dialect.name == "postgresql":
            with engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        else:
            with engine.begin() as connection:
                connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return time.perf_counter() - start


def explain(engine: Engine, slots: list[tuple[str, list[str]]], query_id: str) -> str:
    query = parse_stored_query(query_id, slots)
    assert not isinstance(query, list), query
    plan = build_plan(query)
    assert plan.documents is not None
    select = plan.documents.params(patient=plan.route.patient)  # FindDocuments: the patient it names
    compiled = select.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        rows = connection.execute(text(prefix + str(compiled))).all()
    return "\n".join(
        "      " + " ".join(str(c) for c in (row[-1:] if engine.dialect.name == "sqlite" else row)) for row in rows
    )


def sample(engine: Engine, count: int, patients: int) -> tuple[list[str], list[str]]:
    rng = random.Random(11)
    with engine.connect() as connection:
        total = connection.execute(text("SELECT count(*) FROM document_entry")).scalar_one()
        offsets = sorted(rng.randrange(total) for _ in range(min(count, 500)))
        unique_ids = [
            connection.execute(
                text("SELECT unique_id FROM document_entry ORDER BY entry_uuid LIMIT 1 OFFSET :o"), {"o": o}
            ).scalar_one()
            for o in offsets[:50]
        ]
        class_codes = [
            f"{code}^^{scheme}"
            for code, scheme in connection.execute(
                text("SELECT DISTINCT class_code, class_code_scheme FROM document_entry WHERE patient_id = :p"),
                {"p": patient_id(0)},
            )
        ]
    del patients
    return unique_ids, class_codes


def measure(url: str, bodies: list[tuple[bytes, str]]) -> dict[str, float]:
    run_clients(url, bodies[:WARMUP], expect_success)
    seconds, latencies, _ = run_clients(url, bodies, expect_success)
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "per_s": len(bodies) / seconds,
    }


def bench(
    backend: str, documents: int, postgres: PostgresServer | None, queries: int, workers: int, pools: CodePools
) -> dict[str, Any]:
    from xds_server import start_server, stop_server

    work = Path(tempfile.mkdtemp(prefix=f"bench18-{backend}-"))
    (work / "server").mkdir()
    if backend == "sqlite":
        server_url, load_url = "", f"sqlite:///{work / 'server' / 'registry.db'}"
    else:
        assert postgres is not None
        server_url = load_url = postgres.url_for(postgres.create_database("iti18"))
    print(f"  loading {documents} DocumentEntries into {backend}...", flush=True)
    load_seconds = fill(load_url, documents, pools)
    patients = documents // DOCUMENTS_PER_PATIENT
    engine = create_engine_for(load_url)
    rng = random.Random(5)
    try:
        unique_ids, class_codes = sample(engine, 50, patients)
        plans = {
            "FindDocuments": explain(engine, find_documents_slots(patient_id(0), class_codes[0]), v.SQ_FIND_DOCUMENTS),
            "GetDocuments": explain(engine, [(v.P_DE_UNIQUE_ID, [f"('{unique_ids[0]}')"])], v.SQ_GET_DOCUMENTS),
        }
        with engine.connect() as connection:
            pool_classes = [
                f"{c}^^{s}"
                for c, s in connection.execute(
                    text(
                        "SELECT DISTINCT class_code, class_code_scheme FROM document_entry WHERE patient_id IN "
                        "(:a, :b, :c)"
                    ),
                    {"a": patient_id(1), "b": patient_id(2), "c": patient_id(3)},
                )
            ]
            all_unique_ids = [
                u
                for (u,) in connection.execute(
                    text(
                        "SELECT unique_id FROM document_entry WHERE patient_id IN (SELECT patient_id FROM patient "
                        "ORDER BY patient_id LIMIT 2000)"
                    )
                )
            ]
    finally:
        engine.dispose()
    classes = sorted(set(pool_classes + class_codes))
    finds = [
        soap.adhoc_query(
            v.SQ_FIND_DOCUMENTS,
            dict(
                (name, values)
                for name, values in find_documents_slots(patient_id(rng.randrange(patients)), rng.choice(classes))
            ),
        )
        for _ in range(queries)
    ]
    gets = [
        soap.adhoc_query(v.SQ_GET_DOCUMENTS, {v.P_DE_UNIQUE_ID: [f"('{rng.choice(all_unique_ids)}')"]})
        for _ in range(queries)
    ]
    server = start_server(work / "server", server_url, {"DMP_XDS_PROFILE": "ihe", "DMP_XDS_WORKERS": str(workers)})
    try:
        results = {
            "FindDocuments": measure(server.registry_url, [(r.body, r.content_type) for r in finds]),
            "GetDocuments": measure(server.registry_url, [(r.body, r.content_type) for r in gets]),
        }
    finally:
        stop_server(server)
    return {"load_s": load_seconds, "plans": plans, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="DocumentEntries, comma-separated")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--queries", type=int, default=4000, help="per query kind and measurement")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = args.backends.split(",")
    pools = CodePools.load(VALUE_SETS)
    postgres = PostgresServer.start() if "postgresql" in backends else None
    table: list[tuple[str, int, str, dict[str, float], float]] = []
    try:
        for backend in backends:
            for documents in sizes:
                outcome = bench(backend, documents, postgres, args.queries, args.workers, pools)
                print(f"  {backend} {documents}: loaded in {outcome['load_s']:.0f} s")
                for name, plan in outcome["plans"].items():
                    print(f"    plan of {name}:\n{plan}")
                for name, figures in outcome["results"].items():
                    table.append((backend, documents, name, figures, outcome["load_s"]))
                    print(
                        f"    {name}: p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
                        f"{figures['per_s']:.0f} queries/s",
                        flush=True,
                    )
    finally:
        if postgres is not None:
            postgres.stop()
    print(
        f"\nITI-18 over HTTP, {4} concurrent clients, {args.workers} server worker(s); "
        "PostgreSQL runs with fsync=off (tests/pgserver.py)"
    )
    print(f"{'backend':<11}{'documents':>10}  {'query':<14}{'p50 ms':>8}{'p99 ms':>8}{'queries/s':>11}{'load s':>8}")
    for backend, documents, name, figures, load_s in table:
        print(
            f"{backend:<11}{documents:>10}  {name:<14}{figures['p50_ms']:>8.1f}{figures['p99_ms']:>8.1f}"
            f"{figures['per_s']:>11.0f}{load_s:>8.0f}"
        )


if __name__ == "__main__":
    main()
