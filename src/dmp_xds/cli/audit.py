"""`dmp-xds audit verify | history`: the access trace from the command line."""

from __future__ import annotations

import json

import click


def _trail(ctx: click.Context):  # type: ignore[no-untyped-def]
    from dmp_xds.cli.common import open_engine
    from dmp_xds.storage.trail import AuditTrail

    return AuditTrail(open_engine(ctx))


@click.group()
def audit() -> None:
    """The access trace (append-only, hash-chained)."""


@audit.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Check the whole trace: an edited, deleted or cut-off row is named; exit code 1 then."""
    report = _trail(ctx).verify()
    if report.ok:
        click.echo(f"audit trace intact: {report.checked} entries checked")
        return
    for seq, problem in report.problems:
        click.echo(f"row {seq}: {problem}", err=True)
    raise SystemExit(1)


@audit.command("history")
@click.argument("patient_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=int, default=1000, show_default=True)
@click.pass_context
def audit_history(ctx: click.Context, patient_id: str, as_json: bool, limit: int) -> None:
    """Every access to PATIENT_ID's record, newest first (emergency accesses flagged)."""
    for entry in _trail(ctx).history(patient_id, limit):
        event = entry.event
        if as_json:
            click.echo(json.dumps({"seq": entry.seq, "at": entry.recorded_at, **event.__dict__,
                                   "documents": list(event.documents), "emergency": entry.emergency},
                                  ensure_ascii=False))
            continue
        flag = " [ACCES D'URGENCE]" if entry.emergency else ""
        who = f"{event.actor_name or event.actor_id} ({event.actor_id}, structure {event.structure_id or '-'})"
        docs = f" documents {', '.join(event.documents)}" if event.documents else ""
        click.echo(f"{entry.recorded_at}  {event.action:<20} {event.outcome:<8} {who}{docs}{flag}"
                   + (f" reason: {event.access_reason}" if event.access_reason else ""))
