"""The establishment dashboard's figures over a large registry: a month, twelve months, a day's
refusals of one structure, p50/p95 over repeated readings.

The script fills a fresh SQLite database (migrated to the latest revision) with DOCUMENTS document
entries of many structures and their access trace: one trace row per submission of one document,
spread over twelve months; the measured structure (a big hospital) owns SHARE of them, one
submission in fifty refused, as many searches as submissions. The rows are written straight into
the tables (their MACs are not computed: nothing here verifies the chain). Then it times
`month_figures` (uncached, as for the current month), `monthly_series` (cold and warm) and
`day_refusals` (services/establishment_stats.py), and what the dashboard page reads
(`dashboard`: the twelve months and a day's refusals), cold and with the past months kept.

Usage: python benchmarks/establishment_stats.py [--documents 1000000] [--share 0.02] [--rounds 20]
                                               [--database FILE]
(--database: fill FILE once and keep it, to measure again without filling again.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import Engine, delete, insert  # noqa: E402

from dmp_xds.services import establishment_stats as es  # noqa: E402
from dmp_xds.storage import trail as t  # noqa: E402
from dmp_xds.storage.audit_checkpoints import utc_stamp  # noqa: E402
from dmp_xds.storage.database import open_database  # noqa: E402
from dmp_xds.storage.tables import AuditEntryRow, DocumentEntryRow, StatsClosedMonthRow  # noqa: E402

HOSPITAL = "1990000017"
LAST = es.Month(2026, 12)
BATCH = 20_000


def _stamp(index: int, count: int) -> dt.datetime:
    """Spread `count` events evenly over the twelve months ending with LAST."""
    start = LAST.shifted(-11).start
    return start + (LAST.end - start) * (index / count)


def fill(url: str, documents: int, share: float) -> None:
    engine = open_database(url, migrate=True)
    every = max(1, round(1 / share))
    entries, trace = [], []
    seq = 0
    with engine.begin() as connection:
        for index in range(documents):
            when = _stamp(index, documents)
            structure = HOSPITAL if index % every == 0 else f"19{index % 5000:08d}"
            patient = f"{index % 400_000:013d}^^^&1.2.250.1.213.1.4.10&ISO"
            unique_id = f"1.2.250.1.999.{index}"
            refused = structure == HOSPITAL and index % (every * 50) == 0
            entries.append(
                {
                    "entry_uuid": f"urn:uuid:{index:036d}",
                    "logical_id": f"urn:uuid:{index:036d}",
                    "version": 1,
                    "unique_id": unique_id,
                    "patient_id": patient,
                    "status": "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
                    "object_type": "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1",
                    "class_code": str(10 + index % 7),
                    "class_code_scheme": "1.2.250.1.213.1.1.4.1",
                    "type_code": f"{11488 + index % 40}-4",
                    "type_code_scheme": "2.16.840.1.113883.6.1",
                    "created_at": when,
                    "data": {},
                    "is_latest": True,
                }
            )
            for action, outcome, detail in (
                (
                    t.SUBMIT,
                    t.FAILURE if refused else t.SUCCESS,
                    "; ".join(t.refusal_notes([("XDSRegistryMetadataError", "rule")])) if refused else "",
                ),
                (t.SEARCH, t.SUCCESS, ""),
            ):
                seq += 1
                trace.append(
                    {
                        "seq": seq,
                        "recorded_at": utc_stamp(when),
                        "actor_id": "810001234565",
                        "actor_name": "Marie MARTIN",
                        "actor_role": "10",
                        "structure_id": structure,
                        "access_mode": "normal",
                        "access_reason": "",
                        "action": action,
                        "patient_id": patient,
                        "documents": [unique_id],
                        "outcome": outcome,
                        "detail": detail,
                        "prev_hash": "0" * 64,
                        "hash": "0" * 64,
                        "key_id": "",
                    }
                )
            if len(entries) >= BATCH:
                connection.execute(insert(DocumentEntryRow.__table__), entries)
                connection.execute(insert(AuditEntryRow.__table__), trace)
                entries, trace = [], []
        if entries:
            connection.execute(insert(DocumentEntryRow.__table__), entries)
            connection.execute(insert(AuditEntryRow.__table__), trace)
    engine.dispose()


def timed(label: str, rounds: int, call: object) -> None:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        call()  # type: ignore[operator]
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"{label:<34} p50 {statistics.median(times):8.1f} ms   p95 {p95:8.1f} ms")


def forget_kept_months(engine: Engine, structure_id: str) -> None:
    """As if the structure's months had never been read (the first page ever of its year)."""
    closed = StatsClosedMonthRow.__table__
    with engine.begin() as connection:
        connection.execute(delete(closed).where(closed.c.structure_id == structure_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--share", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database", type=Path, help="a SQLite file, filled if it does not exist, kept")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        path = args.database or Path(work) / "stats.db"
        url = f"sqlite:///{path}"
        if not path.exists():
            began = time.perf_counter()
            fill(url, args.documents, args.share)
            print(
                f"{args.documents} documents, {args.share:.0%} of them the hospital's: "
                f"filled in {time.perf_counter() - began:.0f} s"
            )
        engine = open_database(url, migrate=False)
        figures = es.month_figures(engine, HOSPITAL, LAST)
        print(
            f"the hospital's {LAST.key}: {figures.activity.documents_published} published, "
            f"{figures.activity.submissions_refused} refused, {figures.activity.searches} searches"
        )

        # LAST is over: every month of the series is kept once read, in the database and in the
        # process. Never read: each round reads them all from the trace (the first page ever of
        # a structure's year); after a restart: from the kept months; warm: as the next pages.
        def never_read() -> None:
            es._closed_month.cache_clear()
            forget_kept_months(engine, HOSPITAL)
            es.monthly_series(engine, HOSPITAL, LAST)

        def restarted() -> None:
            es._closed_month.cache_clear()
            es.monthly_series(engine, HOSPITAL, LAST)

        timed("monthly_series, never read (12 months)", max(1, args.rounds // 4), never_read)
        timed("monthly_series, after a restart", args.rounds, restarted)
        timed("monthly_series, warm", args.rounds, lambda: es.monthly_series(engine, HOSPITAL, LAST))
        timed(
            "month_figures, current month",
            args.rounds,
            lambda: es.month_figures(engine, HOSPITAL, LAST, now=LAST.start),
        )
        timed("day_refusals", args.rounds, lambda: es.day_refusals(engine, HOSPITAL, dt.date(2026, 12, 15)))

        # The dashboard page of a day of LAST: its eleven past months kept, the current one read.
        day, now = dt.date(2026, 12, 15), dt.datetime(2026, 12, 15, 12, tzinfo=dt.UTC)

        def page_cold() -> None:
            es._closed_month.cache_clear()
            es.dashboard(engine, HOSPITAL, LAST, day, now=now)

        timed("dashboard page's figures, after a restart", args.rounds, page_cold)
        timed("dashboard page's figures", args.rounds, lambda: es.dashboard(engine, HOSPITAL, LAST, day, now=now))
        engine.dispose()


if __name__ == "__main__":
    main()
