"""HistoriqueAcces/INS: the access history from the trace."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dmp_xds.dmp.policy import (
    Action,
    is_attending,
)
from dmp_xds.security.vihf import Principal
from dmp_xds.services.context import Services
from dmp_xds.services.gate import trace_access
from dmp_xds.services.professional_site.common import (
    HISTORY_YEAR_CAP,
    AccessLine,
    PatientData,
    access_line,
    enter,
    now_or,
    open_page,
    patient_data,
    state_of,
    visible_history,
)
from dmp_xds.storage import trail as t

HISTORY_MINIMUM = 100  # "one year, or the last 100 if activity is low"
YEAR = dt.timedelta(days=365)


@dataclass(frozen=True)
class AccessHistory:
    patient: PatientData
    everyone: bool  # the attending doctor sees every trace; another professional their own
    last_year: bool  # one year of traces, or (False) the last 100 when the year has fewer
    entries: tuple[AccessLine, ...]


def access_history(services: Services, principal: Principal, ins: str, now: dt.datetime | None = None) -> AccessHistory:
    """HistoriqueAcces/INS: the record's trace as the caller may see it, for one year, or the
    last 100 rows when the year has fewer (traced as history.read)."""
    security, principal, record = open_page(services, principal, ins)
    now = now_or(now)
    state = state_of(record)
    decision = enter(security, principal, state, Action.READ_STATUS, t.HISTORY_READ, now)
    assert record is not None and state is not None
    year = visible_history(security, principal, state, now, HISTORY_YEAR_CAP, since=now - YEAR)
    last_year = len(year) >= HISTORY_MINIMUM
    entries = year if last_year else visible_history(security, principal, state, now, HISTORY_MINIMUM)
    everyone = is_attending(principal, state, now)
    trace_access(
        security,
        principal,
        t.HISTORY_READ,
        t.SUCCESS,
        detail=f"{decision.reason}; {len(entries)} trace row(s), {'every actor' if everyone else 'own only'}",
    )
    return AccessHistory(patient_data(record), everyone, last_year, tuple(map(access_line, entries)))
