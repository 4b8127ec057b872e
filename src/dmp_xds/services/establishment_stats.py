"""The establishment dashboard's use cases: a structure's figures for a month, over twelve
months, the refusals of a day, and every table as the page, the CSV export and `dmp-xds stats`
show it (one function per table, shared by all three).

Who may look at which structure is decided by the caller (the dashboard's sign-in, the
operator's command line): these functions answer for the structure they are given.

CSV: UTF-8 with a byte order mark and ';' between fields, what a French spreadsheet opens as is:
Excel in a French locale takes ',' for the decimal separator and splits on ';', and reads a file
without a BOM in the ANSI code page (accents garbled); LibreOffice detects both.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from dmp_xds.storage.stats import (
    Activity,
    Refusal,
    active_structures,
    activities,
    activity,
    keep_month,
    kept_months,
    refusals,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

MONTHS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
SERIES_MONTHS = 12
# A month is over, its figures fixed, this long after its end (a request's trace row is stamped
# when written, a little after the request began).
CLOSED_AFTER = dt.timedelta(minutes=10)
CSV_DELIMITER = ";"
CSV_BOM = "\ufeff"
# A document published, then deleted from the registry (ITI-62): its codes are gone with it.
UNKNOWN_CODE = "inconnu (document supprimé depuis)"
_MONTH = re.compile(r"(\d{4})-(\d{2})")


class StatsInputError(ValueError):
    """A month or a day that is not one (the message, in French, says what is expected)."""


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """A month written YYYY-MM."""
        found = _MONTH.fullmatch(text.strip())
        if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:
            raise StatsInputError(f"mois invalide : {text!r} (attendu AAAA-MM, par exemple 2026-12)")
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def of(cls, day: dt.date) -> Month:
        return cls(day.year, day.month)

    @property
    def start(self) -> dt.datetime:
        return dt.datetime(self.year, self.month, 1, tzinfo=dt.UTC)

    @property
    def end(self) -> dt.datetime:
        return self.shifted(1).start

    def shifted(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        """French, as a page and a chart name it: « décembre 2026 »."""
        return f"{MONTHS_FR[self.month - 1]} {self.year}"


def months_up_to(last: Month, count: int = SERIES_MONTHS) -> tuple[Month, ...]:
    """`count` months ending with `last`, oldest first."""
    return tuple(last.shifted(offset) for offset in range(1 - count, 1))


def parse_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise StatsInputError(f"jour invalide : {text!r} (attendu AAAA-MM-JJ, par exemple 2026-12-06)") from None


@dataclass(frozen=True)
class MonthFigures:
    structure_id: str
    month: Month
    activity: Activity


@dataclass(frozen=True)
class MonthlySeries:
    structure_id: str
    months: tuple[MonthFigures, ...]  # oldest first


@dataclass(frozen=True)
class DayRefusals:
    structure_id: str
    day: dt.date
    refusals: tuple[Refusal, ...]


Cell = str | int


@dataclass(frozen=True)
class Table:
    """A table as the page, the CSV and the command line show it."""

    name: str  # the CSV file's name, without extension
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


# --- the use cases --------------------------------------------------------------------------


class ClosedMonths:
    """The figures of months over (`month_figures`): the trace only gets rows stamped with the
    time they are written, so a past month's rows no longer change. Computed once, then kept in
    the database (storage.stats.keep_month: every worker, every restart) and in this process's
    memory (bounded: the least recently used go first)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.kept: dict[tuple[Engine, str, Month], MonthFigures] = {}
        self.hits = self.misses = 0

    def __call__(self, engine: Engine, structure_id: str, month: Month, now: dt.datetime) -> MonthFigures:
        found = self.lookup(engine, structure_id, [month]).get(month)
        if found is None:
            self.misses += 1
            found = MonthFigures(structure_id, month, activity(engine, structure_id, month.start, month.end))
            self.put(engine, found, now)
        return found

    def lookup(self, engine: Engine, structure_id: str, months: list[Month]) -> dict[Month, MonthFigures]:
        """The kept figures of these months: from memory, then the others in one query."""
        found: dict[Month, MonthFigures] = {}
        for month in months:
            kept = self.kept.pop((engine, structure_id, month), None)
            if kept is not None:
                self.kept[(engine, structure_id, month)] = kept  # the most recently used, last
                found[month] = kept
        missing = {m.key: m for m in months if m not in found}
        for key, stored in kept_months(engine, structure_id, list(missing)).items():
            figures = MonthFigures(structure_id, missing[key], stored)
            self._remember(engine, figures)
            found[missing[key]] = figures
        self.hits += len(found)
        return found

    def put(self, engine: Engine, figures: MonthFigures, now: dt.datetime) -> None:
        self._remember(engine, figures)
        keep_month(engine, figures.structure_id, figures.month.key, figures.activity, now)

    def _remember(self, engine: Engine, figures: MonthFigures) -> None:
        self.kept[(engine, figures.structure_id, figures.month)] = figures
        while len(self.kept) > self.size:
            del self.kept[next(iter(self.kept))]

    def cache_info(self) -> CacheInfo:
        return CacheInfo(self.hits, self.misses, self.size, len(self.kept))

    def cache_clear(self) -> None:
        """Forget what this process holds (the database keeps its months: a restart's state)."""
        self.kept.clear()
        self.hits = self.misses = 0


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    maxsize: int
    currsize: int


_closed_month = ClosedMonths()


def _is_closed(month: Month, now: dt.datetime) -> bool:
    return month.end + CLOSED_AFTER <= now


def month_figures(engine: Engine, structure_id: str, month: Month, now: dt.datetime | None = None) -> MonthFigures:
    """The structure's figures for `month`. A month over (by more than CLOSED_AFTER) is read once
    per process and kept (ClosedMonths; `now`: the clock, for tests)."""
    now = now or dt.datetime.now(dt.UTC)
    if _is_closed(month, now):
        return _closed_month(engine, structure_id, month, now)
    return MonthFigures(structure_id, month, activity(engine, structure_id, month.start, month.end))


def monthly_series(
    engine: Engine, structure_id: str, last: Month, count: int = SERIES_MONTHS, now: dt.datetime | None = None
) -> MonthlySeries:
    """`count` months ending with `last`, oldest first: the months not kept yet are read in one
    pass (storage.stats.activities), those over kept for the next page."""
    now = now or dt.datetime.now(dt.UTC)
    months = months_up_to(last, count)
    figures = _closed_month.lookup(engine, structure_id, [m for m in months if _is_closed(m, now)])
    missing = [m for m in months if m not in figures]
    for month, found in zip(
        missing, activities(engine, structure_id, [(m.start, m.end) for m in missing]), strict=True
    ):
        figures[month] = MonthFigures(structure_id, month, found)
        if _is_closed(month, now):
            _closed_month.misses += 1
            _closed_month.put(engine, figures[month], now)
    return MonthlySeries(structure_id, tuple(figures[m] for m in months))


def keep_past_months(
    engine: Engine, count: int = SERIES_MONTHS, now: dt.datetime | None = None
) -> list[tuple[str, int]]:
    """Compute and keep the months over among the last `count` of every structure that acted in
    them, so that no dashboard's first page reads them from the trace (the operator runs it
    nightly: `dmp-xds stats-keep`). Each structure with how many months it computed (0: all
    were kept already)."""
    now = now or dt.datetime.now(dt.UTC)
    last = Month.of(now.date()).shifted(-1)
    done = []
    for structure_id in active_structures(engine, months_up_to(last, count)[0].start):
        before = _closed_month.misses
        monthly_series(engine, structure_id, last, count, now)
        done.append((structure_id, _closed_month.misses - before))
    return done


def day_refusals(engine: Engine, structure_id: str, day: dt.date) -> DayRefusals:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    found = refusals(engine, structure_id, start, start + dt.timedelta(days=1))
    return DayRefusals(structure_id, day, tuple(found))


# --- the tables -----------------------------------------------------------------------------

# Each figure of a month: its label on the page, in the CSV and on the command line.
FIGURES: tuple[tuple[str, str], ...] = (
    ("dmps_created", "DMP créés"),
    ("consents_collected", "Consentements recueillis"),
    ("documents_published", "Documents publiés"),
    ("documents_replaced", "Documents remplacés"),
    ("documents_archived", "Documents archivés"),
    ("documents_deleted", "Documents supprimés"),
    ("patients_fed", "Patients alimentés"),
    ("submissions_refused", "Envois refusés"),
    ("searches", "Recherches"),
    ("retrievals", "Consultations de documents"),
)


def figures_table(figures: MonthFigures) -> Table:
    return Table(
        f"activite-{figures.structure_id}-{figures.month.key}",
        f"Activité de la structure {figures.structure_id}, {figures.month.label}",
        ("Indicateur", "Valeur"),
        tuple((label, getattr(figures.activity, name)) for name, label in FIGURES),
    )


def by_type_table(figures: MonthFigures) -> Table:
    return Table(
        f"documents-par-type-{figures.structure_id}-{figures.month.key}",
        f"Documents publiés par type, {figures.month.label}",
        ("Type (typeCode)", "Système de codes", "Documents"),
        tuple((c.code or UNKNOWN_CODE, c.scheme, c.count) for c in figures.activity.by_type),
    )


def by_class_table(figures: MonthFigures) -> Table:
    return Table(
        f"documents-par-classe-{figures.structure_id}-{figures.month.key}",
        f"Documents publiés par classe, {figures.month.label}",
        ("Classe (classCode)", "Système de codes", "Documents"),
        tuple((c.code or UNKNOWN_CODE, c.scheme, c.count) for c in figures.activity.by_class),
    )


def refusals_by_code_table(figures: MonthFigures) -> Table:
    return Table(
        f"refus-par-code-{figures.structure_id}-{figures.month.key}",
        f"Envois refusés par code d'erreur, {figures.month.label}",
        ("Code d'erreur", "Envois refusés"),
        tuple(figures.activity.refusals_by_code),
    )


def series_table(series: MonthlySeries) -> Table:
    first, last = series.months[0].month, series.months[-1].month
    return Table(
        f"activite-mensuelle-{series.structure_id}-{first.key}-{last.key}",
        f"Activité mois par mois de la structure {series.structure_id}, de {first.label} à {last.label}",
        ("Mois", *(label for _, label in FIGURES)),
        tuple((m.month.key, *(getattr(m.activity, name) for name, _ in FIGURES)) for m in series.months),
    )


def refusals_table(day: DayRefusals) -> Table:
    return Table(
        f"refus-{day.structure_id}-{day.day.isoformat()}",
        f"Envois refusés le {day.day.strftime('%d/%m/%Y')}",
        ("Heure (UTC)", "Émetteur", "Nom", "Patient", "Documents", "Codes d'erreur", "Règle"),
        tuple(
            (
                r.recorded_at[11:19],
                r.actor_id,
                r.actor_name,
                r.patient_id,
                " ".join(r.documents),
                " ".join(r.codes),
                r.rules,
            )
            for r in day.refusals
        ),
    )


def publication_points(series: MonthlySeries) -> tuple[tuple[str, int], ...]:
    """(month's key, documents published), oldest first: the publications chart's bars."""
    return tuple((m.month.key, m.activity.documents_published) for m in series.months)


def month_tables(figures: MonthFigures) -> tuple[Table, ...]:
    return (figures_table(figures), by_type_table(figures), by_class_table(figures), refusals_by_code_table(figures))


# --- the dashboard page ---------------------------------------------------------------------

# The months and days a page or an export may ask for: the series of twelve months and the day
# after stay within what the calendar (and `datetime`) can name.
FIRST_YEAR = 1970
LAST_YEAR = 9998
# Each table of the dashboard by the name of its CSV export (/etablissement/export/NAME.csv).
MONTH_TABLES = {
    "activite": figures_table,
    "par-type": by_type_table,
    "par-classe": by_class_table,
    "refus-par-code": refusals_by_code_table,
}
SERIES_TABLE = "mensuel"
DAY_TABLE = "refus-du-jour"
TABLE_NAMES = (*MONTH_TABLES, SERIES_TABLE, DAY_TABLE)


def page_month(text: str, today: dt.date) -> Month:
    """The month a page asks for (YYYY-MM; empty: the current one)."""
    month = Month.parse(text) if text.strip() else Month.of(today)
    if not FIRST_YEAR <= month.year <= LAST_YEAR:
        raise StatsInputError(f"mois hors de la période couverte : {text!r} (de {FIRST_YEAR} à {LAST_YEAR})")
    return month


def page_day(text: str, today: dt.date) -> dt.date:
    """The day whose refusals a page lists (YYYY-MM-DD; empty: today)."""
    day = parse_day(text) if text.strip() else today
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise StatsInputError(f"jour hors de la période couverte : {text!r} (de {FIRST_YEAR} à {LAST_YEAR})")
    return day


@dataclass(frozen=True)
class Dashboard:
    """What the dashboard page shows: the month, the twelve months ending with it, a day's
    refusals; each table under its export's name."""

    figures: MonthFigures
    series: MonthlySeries
    day: DayRefusals

    @property
    def tables(self) -> dict[str, Table]:
        return {
            **{name: build(self.figures) for name, build in MONTH_TABLES.items()},
            SERIES_TABLE: series_table(self.series),
            DAY_TABLE: refusals_table(self.day),
        }


def dashboard(
    engine: Engine, structure_id: str, month: Month, day: dt.date, now: dt.datetime | None = None
) -> Dashboard:
    """The structure's dashboard: the month's figures are the series' last month (read once)."""
    series = monthly_series(engine, structure_id, month, now=now)
    return Dashboard(series.months[-1], series, day_refusals(engine, structure_id, day))


def export_table(
    engine: Engine, structure_id: str, name: str, month: Month, day: dt.date, now: dt.datetime | None = None
) -> Table:
    """One table of the dashboard, by its export's name (KeyError: no such table); only what it
    needs is read."""
    if name in MONTH_TABLES:
        return MONTH_TABLES[name](month_figures(engine, structure_id, month, now))
    if name == SERIES_TABLE:
        return series_table(monthly_series(engine, structure_id, month, now=now))
    if name == DAY_TABLE:
        return refusals_table(day_refusals(engine, structure_id, day))
    raise KeyError(name)


def to_csv(table: Table) -> str:
    """The table as CSV text for a French spreadsheet (module docstring): BOM, ';', CRLF."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=CSV_DELIMITER, lineterminator="\r\n")
    writer.writerow(table.headers)
    writer.writerows(table.rows)
    return CSV_BOM + out.getvalue()


def read_csv(text: str) -> list[list[str]]:
    """The rows of a CSV written by `to_csv` (headers first)."""
    return list(csv.reader(io.StringIO(text.removeprefix(CSV_BOM)), delimiter=CSV_DELIMITER))
