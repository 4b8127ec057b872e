"""The professional's dashboard (TD0.4, TableauDeBord) finds the records that let the caller in by
the grantee, and the dates it lists from one index of the trace, not by scanning every grant or
every trace row of every patient (migration 0014)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from dmp_xds.storage import trail as t
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.records import DmpStore
from dmp_xds.storage.tables import metadata
from dmp_xds.storage.trail import AuditTrail

PATIENTS = [f"{n:013d}^^^&1.2.250.1.213.1.4.8&ISO" for n in range(3)]


def plans(engine: Engine, table: str, call: Callable[[], object]) -> list[str]:
    """SQLite's plan of each SELECT on `table` that `call` runs."""
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and f"FROM {table}" in statement:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    with engine.connect() as connection:
        return [
            " ".join(str(row[-1]) for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
            for statement, parameters in captured
        ]


def test_the_dashboard_reads_its_dates_and_grants_through_indexes(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'plan.db'}")
    try:
        metadata.create_all(engine)
        trail = AuditTrail(engine)
        dates = plans(engine, "audit_entry", lambda: trail.last_accesses("810001234567", PATIENTS, t.DOCUMENT_READS))
        changes = plans(engine, "audit_entry", lambda: trail.last_accesses(None, PATIENTS, t.DOCUMENT_CHANGES))
        grants = plans(engine, "dmp_authorization", lambda: DmpStore(engine).authorized_on("810001234567", "1990"))
    finally:
        engine.dispose()
    for plan in dates + changes:
        assert "COVERING INDEX ix_audit_entry_patient_id_action_actor_id_outcome_recorded_at" in plan, plan
    assert grants, "authorized_on read no grant"
    for plan in grants:
        assert "ix_dmp_authorization_grantee_kind" in plan and "SCAN dmp_authorization" not in plan, plan
