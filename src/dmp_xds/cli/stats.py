"""`dmp-xds stats`: an establishment's dashboard figures on the command line, the same tables as
its web page and its CSV exports (services/establishment_stats.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import click

from dmp_xds.cli.common import open_engine
from dmp_xds.services import establishment_stats as es


def _month(text: str | None, default: es.Month) -> es.Month:
    try:
        return es.Month.parse(text) if text else default
    except es.StatsInputError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("stats")
@click.option("--structure", "structure_id", required=True, help="The structure's national id (as in the VIHF).")
@click.option("--month", help="The month, YYYY-MM (default: this month, UTC).")
@click.option("--year-to", help="Also the twelve months ending with this one, YYYY-MM.")
@click.option("--refusals-on", help="Also the refused submissions of this day, YYYY-MM-DD.")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.pass_context
def stats(
    ctx: click.Context,
    structure_id: str,
    month: str | None,
    year_to: str | None,
    refusals_on: str | None,
    output: str,
) -> None:
    """A structure's DMP activity: creations, publications, refusals, consultations."""
    figures_month = _month(month, es.Month.of(dt.datetime.now(dt.UTC).date()))
    last = _month(year_to, figures_month) if year_to else None
    try:
        day = es.parse_day(refusals_on) if refusals_on else None
    except es.StatsInputError as exc:
        raise click.BadParameter(str(exc)) from exc
    engine = open_engine(ctx)
    try:
        figures = es.month_figures(engine, structure_id, figures_month)
        tables = list(es.month_tables(figures))
        series = es.monthly_series(engine, structure_id, last) if last is not None else None
        if series is not None:
            tables.append(es.series_table(series))
        refused = es.day_refusals(engine, structure_id, day) if day is not None else None
        if refused is not None:
            tables.append(es.refusals_table(refused))
    finally:
        engine.dispose()
    if output == "json":
        data = {table.name: [dict(zip(table.headers, row, strict=True)) for row in table.rows] for table in tables}
        data["figures"] = [dataclasses.asdict(figures.activity)]
        click.echo(
            json.dumps({"structure": structure_id, "month": figures_month.key, **data}, ensure_ascii=False, indent=2)
        )
    elif output == "csv":
        # One CSV after the other, each with its title line; the web page exports them one by one.
        for table in tables:
            click.echo(f"# {table.title}")
            click.echo(es.to_csv(table).removeprefix(es.CSV_BOM), nl=False)
            click.echo()
    else:
        _print_tables(tables)


@click.command("stats-keep")
@click.option("--months", default=es.SERIES_MONTHS, show_default=True, help="How many past months to keep.")
@click.pass_context
def stats_keep(ctx: click.Context, months: int) -> None:
    """Compute and keep every active structure's past months (run it nightly, e.g. from cron):
    no dashboard's first page then reads them from the access trace."""
    engine = open_engine(ctx)
    try:
        done = es.keep_past_months(engine, months)
    finally:
        engine.dispose()
    computed = sum(count for _, count in done)
    click.echo(f"{len(done)} structure(s), {computed} month(s) computed and kept")


# The twelve-month table's headers, short enough for a terminal 80 columns wide.
SHORT_HEADERS = {
    "DMP créés": "DMP",
    "Consentements recueillis": "Consent.",
    "Documents publiés": "Publiés",
    "Documents remplacés": "Rempl.",
    "Documents archivés": "Archiv.",
    "Documents supprimés": "Suppr.",
    "Patients alimentés": "Patients",
    "Envois refusés": "Refus",
    "Recherches": "Rech.",
    "Consultations de documents": "Consult.",
}


def _print_tables(tables: list[es.Table]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for table in tables:
        shown = Table(title=table.title, title_justify="left")
        for index, header in enumerate(table.headers):
            numeric = bool(table.rows) and all(isinstance(row[index], int) for row in table.rows)
            label = SHORT_HEADERS.get(header, header) if len(table.headers) > 4 else header
            shown.add_column(label, justify="right" if numeric else "left", overflow="fold", no_wrap=index == 0)
        for row in table.rows:
            shown.add_row(*(str(cell) for cell in row))
        if not table.rows:
            shown.add_row(*("—" for _ in table.headers))
        console.print(shown)
