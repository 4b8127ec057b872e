"""DossierPatient/INS: the patient's page."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dmp_xds.dmp.policy import (
    CLOSED,
    Action,
    is_attending,
    self_authorization,
)
from dmp_xds.security.vihf import Principal
from dmp_xds.services.context import Services
from dmp_xds.services.gate import trace_access
from dmp_xds.services.professional_site.common import (
    DOCUMENT_ACCESSES,
    HISTORY_YEAR_CAP,
    AccessLine,
    NeedsAuthorization,
    PatientData,
    Refused,
    access_line,
    break_glass_possible,
    enter,
    now_or,
    open_page,
    patient_data,
    state_of,
    visible_history,
)
from dmp_xds.services.professional_site.documents import (
    DocumentFilters,
    DocumentLine,
    search,
)
from dmp_xds.storage import trail as t

LATEST = 5  # "the last 5 documents added since the last visit" (dmpi section 7)
RECENT_ACCESSES = 10


@dataclass(frozen=True)
class PatientPage:
    """DossierPatient/INS. A CPE card sees the patient's data and emergency settings only
    (`documents_shown` False, the lists empty)."""

    patient: PatientData
    documents_shown: bool
    last_visit: dt.datetime | None
    new_since_last_visit: tuple[DocumentLine, ...]
    latest: tuple[DocumentLine, ...]
    recent_accesses: tuple[AccessLine, ...]
    attending: bool
    emergency: bool


def patient_page(services: Services, principal: Principal, ins: str, now: dt.datetime | None = None) -> PatientPage:
    """The patient's page. An unauthorized professional gets `NeedsAuthorization` (traced as a
    refused search): they confirm the patient's consent first (`authorize_self`), or use
    break-glass (`break_glass`) when the patient does not oppose it."""
    security, principal, record = open_page(services, principal, ins)
    now = now_or(now)
    state = state_of(record)
    if principal.is_cpe:
        decision = enter(security, principal, state, Action.READ_STATUS, t.DMP_READ, now)
        assert record is not None
        trace_access(security, principal, t.DMP_READ, t.SUCCESS, detail=f"{decision.reason}; patient data only")
        return PatientPage(patient_data(record), False, None, (), (), (), False, False)
    last_visits = security.audit.last_accesses(principal.user_id, [principal.patient_id], DOCUMENT_ACCESSES)
    try:
        lines, decision = search(services, security, principal, record, DocumentFilters(include_archived=False), now)
    except Refused as refused:
        if state is None or state.status == CLOSED or refused.status != 403:
            raise
        may_authorize = self_authorization(principal, state, True, False, now).allowed
        raise NeedsAuthorization(refused.reason, may_authorize, break_glass_possible(principal, state, now)) from None
    assert record is not None and state is not None
    last_visit = last_visits.get(principal.patient_id)
    new: list[DocumentLine] = []
    if last_visit is not None:
        added = {
            unique_id
            for entry in security.audit.history(
                principal.patient_id, HISTORY_YEAR_CAP, since=last_visit, actions=(t.SUBMIT,)
            )
            if entry.event.outcome == t.SUCCESS
            for unique_id in entry.event.documents
        }
        new = [line for line in lines if line.unique_id in added]
    accesses = visible_history(security, principal, state, now, RECENT_ACCESSES, actions=DOCUMENT_ACCESSES)
    return PatientPage(
        patient_data(record),
        True,
        last_visit,
        tuple(new[:LATEST]),
        tuple(lines[:LATEST]),
        tuple(map(access_line, accesses)),
        is_attending(principal, state, now),
        decision.emergency,
    )
