"""ParcoursDeSoins/INS: the documents on a timeline by class, with year, month and day zoom."""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from dmp_xds.security.vihf import Principal
from dmp_xds.services.context import Services
from dmp_xds.services.professional_site.common import (
    Refused,
    now_or,
    open_page,
)
from dmp_xds.services.professional_site.documents import (
    DocumentFilters,
    DocumentLine,
    search,
)


class Zoom(enum.StrEnum):
    ALL = "all"  # the whole period, by year
    YEAR = "year"  # one year ("2024"), by month
    MONTH = "month"  # one month ("2024-03"), by day
    DAY = "day"  # one day ("2024-03-05"): its documents


@dataclass(frozen=True)
class Bucket:
    key: str  # "2024", "2024-03", "2024-03-05"
    count: int
    documents: tuple[DocumentLine, ...]


@dataclass(frozen=True)
class TimelineRow:
    class_code: str
    class_display: str
    buckets: tuple[Bucket, ...]  # one per column, in order


@dataclass(frozen=True)
class Timeline:
    zoom: Zoom
    period: str
    columns: tuple[str, ...]
    rows: tuple[TimelineRow, ...]
    undated: tuple[DocumentLine, ...]  # documents with neither service nor creation date


def _period_bounds(zoom: Zoom, period: str) -> tuple[dt.date, dt.date] | None:
    """The first and last day of the selected period (None for the whole period)."""
    try:
        if zoom is Zoom.ALL:
            return None
        if zoom is Zoom.YEAR:
            year = int(period)
            return dt.date(year, 1, 1), dt.date(year, 12, 31)
        if zoom is Zoom.MONTH:
            year, month = (int(p) for p in period.split("-"))
            return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])
        day = dt.date.fromisoformat(period)
        return day, day
    except ValueError:
        raise Refused(400, f"{period!r} is not a {zoom.value} (YYYY, YYYY-MM or YYYY-MM-DD)") from None


def _key(day: dt.date, zoom: Zoom) -> str:
    if zoom is Zoom.ALL:
        return f"{day.year:04d}"
    if zoom is Zoom.YEAR:
        return f"{day.year:04d}-{day.month:02d}"
    return day.isoformat()


def _columns(zoom: Zoom, bounds: tuple[dt.date, dt.date] | None, days: Sequence[dt.date]) -> list[str]:
    if bounds is None:
        if not days:
            return []
        return [f"{year:04d}" for year in range(min(days).year, max(days).year + 1)]
    first, last = bounds
    if zoom is Zoom.YEAR:
        return [f"{first.year:04d}-{month:02d}" for month in range(1, 13)]
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def timeline_of(lines: Sequence[DocumentLine], zoom: Zoom, period: str = "") -> Timeline:
    """The care pathway (pure): documents by class (rows) and by year, month or day (columns) of
    the selected period; each cell counts and holds its documents, newest first."""
    bounds = _period_bounds(zoom, period)
    dated = [line for line in lines if line.care_date is not None]
    undated = tuple(line for line in lines if line.care_date is None) if bounds is None else ()
    if bounds is not None:
        dated = [line for line in dated if line.care_date and bounds[0] <= line.care_date <= bounds[1]]
    columns = _columns(zoom, bounds, [line.care_date for line in dated if line.care_date])
    classes: dict[tuple[str, str], dict[str, list[DocumentLine]]] = {}
    for line in sorted(dated, key=lambda line: (line.care_date, line.creation_time), reverse=True):
        assert line.care_date is not None
        cells = classes.setdefault((line.class_code, line.class_display), {})
        cells.setdefault(_key(line.care_date, zoom), []).append(line)
    rows = tuple(
        TimelineRow(code, display, tuple(Bucket(c, len(cells.get(c, [])), tuple(cells.get(c, []))) for c in columns))
        for (code, display), cells in sorted(classes.items(), key=lambda item: item[0][1])
    )
    return Timeline(zoom, period, tuple(columns), rows, undated)


def care_pathway(
    services: Services,
    principal: Principal,
    ins: str,
    zoom: Zoom = Zoom.ALL,
    period: str = "",
    filters: DocumentFilters | None = None,
    now: dt.datetime | None = None,
) -> Timeline:
    """ParcoursDeSoins/INS: the Documents page's documents on a timeline (traced as a search)."""
    _period_bounds(zoom, period)  # a bad period is refused before anything is read
    security, principal, record = open_page(services, principal, ins)
    lines, _ = search(services, security, principal, record, filters or DocumentFilters(), now_or(now))
    return timeline_of(lines, zoom, period)
