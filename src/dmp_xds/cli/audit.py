"""`dmp-xds audit verify | history`: the access trace from the command line."""

from __future__ import annotations

import json

import click

from dmp_xds.cli.common import open_reading_trail

MAX_PROBLEMS_SHOWN = 100


@click.group()
def audit() -> None:
    """The access trace (append-only, chained by HMAC, checkpointed off the machine)."""


@audit.command("verify")
@click.option(
    "--checkpoints",
    "checkpoint_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A file holding exported checkpoints (the syslog collector's log, a copy of the checkpoint "
    "file); repeatable. DMP_XDS_AUDIT_CHECKPOINT_FILE is always read.",
)
@click.pass_context
def audit_verify(ctx: click.Context, checkpoint_files: tuple[str, ...]) -> None:
    """Check the whole trace with its key: a changed, deleted, re-hashed or cut-off row is named,
    and a trace that no longer reaches an exported checkpoint; exit code 1 then."""
    from pathlib import Path

    from dmp_xds.storage.audit_checkpoints import read_checkpoints
    from dmp_xds.transport.audit import local_checkpoints

    settings, trail = open_reading_trail(ctx)
    checkpoints = local_checkpoints(settings)
    for name in checkpoint_files:
        checkpoints += read_checkpoints(Path(name))
    report = trail.verify(checkpoints)
    key = f"key id {trail.key.id} ({trail.key.source})" if trail.key else f"no key at {settings.audit_key_path}"
    summary = (
        f"{report.checked} entries checked, in {report.chains} chain(s) per patient, with {key} "
        f"against {len(checkpoints)} checkpoint(s)"
    )
    if report.ok:
        click.echo(f"audit trace intact: {summary}")
        for note in report.notes:
            click.echo(f"  {note}")
        return
    for _, problem in report.problems[:MAX_PROBLEMS_SHOWN]:
        click.echo(problem, err=True)  # each names its chain and row
    if len(report.problems) > MAX_PROBLEMS_SHOWN:
        click.echo(f"... and {len(report.problems) - MAX_PROBLEMS_SHOWN} more problem(s)", err=True)
    click.echo(f"audit trace NOT intact: {summary}", err=True)
    for note in report.notes:
        click.echo(f"  {note}", err=True)
    raise SystemExit(1)


@audit.command("history")
@click.argument("patient_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=int, default=1000, show_default=True)
@click.pass_context
def audit_history(ctx: click.Context, patient_id: str, as_json: bool, limit: int) -> None:
    """Every access to PATIENT_ID's record, newest first (emergency accesses flagged)."""
    for entry in open_reading_trail(ctx)[1].history(patient_id, limit):
        event = entry.event
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "seq": entry.seq,
                        "at": entry.recorded_at,
                        **event.__dict__,
                        "documents": list(event.documents),
                        "emergency": entry.emergency,
                    },
                    ensure_ascii=False,
                )
            )
            continue
        flag = " [ACCES D'URGENCE]" if entry.emergency else ""
        who = f"{event.actor_name or event.actor_id} ({event.actor_id}, structure {event.structure_id or '-'})"
        docs = f" documents {', '.join(event.documents)}" if event.documents else ""
        click.echo(
            f"{entry.recorded_at}  {event.action:<20} {event.outcome:<8} {who}{docs}{flag}"
            + (f" reason: {event.access_reason}" if event.access_reason else "")
        )
