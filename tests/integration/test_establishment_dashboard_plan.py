"""The dashboard's reading of the trace goes through its index, not a scan of the whole trace
(the registry's other statements start from indexed uniqueIds and entryUUIDs)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select, text

from dmp_xds.storage import trail as t
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.stats import structure_requests
from dmp_xds.storage.tables import AuditEntryRow, metadata


def test_a_structures_month_is_read_through_the_index(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'plan.db'}")
    try:
        metadata.create_all(engine)
        entry = AuditEntryRow.__table__
        start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
        statement = select(entry.c.documents).where(
            structure_requests("1990000017", (t.SUBMIT, t.DELETE), start, start + dt.timedelta(days=31))
        )
        compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
        with engine.connect() as connection:
            plan = " ".join(str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    finally:
        engine.dispose()
    assert "ix_audit_entry_structure_id_action_recorded_at" in plan, plan
    assert "SCAN" not in plan.replace("SEARCH", ""), plan
