"""TableauDeBord: the authorized patients (TD0.4), and TableauDeBord/INS: the existence test
(TD0.2) with the actions the record's state allows; confirming the patient's consent (TD0.3)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from dmp_xds.dmp import cxf_messages as m
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.dmp.hl7v3.build import attention
from dmp_xds.dmp.policy import (
    CLOSED,
    Action,
    RecordState,
    list_patients,
    record_access,
    self_authorization,
)
from dmp_xds.security.vihf import Principal
from dmp_xds.services import gdp
from dmp_xds.services.context import Services
from dmp_xds.services.gate import trace_access
from dmp_xds.services.habilitations import declare
from dmp_xds.services.patients_specific import authorized_patients
from dmp_xds.services.professional_site.common import (
    PatientData,
    break_glass_possible,
    now_or,
    open_page,
    patient_data,
    refusal_status,
    refuse,
    require_professional,
    security_of,
    state_of,
)
from dmp_xds.storage import trail as t


@dataclass(frozen=True)
class Dashboard:
    patients: tuple[m.PatientEntry, ...]


def dashboard(services: Services, principal: Principal, now: dt.datetime | None = None) -> Dashboard:
    """TableauDeBord: the DMPs this professional is authorized on (TD0.4's list, traced so)."""
    require_professional(principal)
    security, now = security_of(services), now_or(now)
    decision = list_patients(principal, now)
    if not decision.allowed:
        raise refuse(security, principal, t.DMP_LIST, 403, decision.reason)
    entries = authorized_patients(security, principal, now)
    trace_access(security, principal, t.DMP_LIST, t.SUCCESS, detail=f"{decision.reason}; {len(entries)} DMP(s) listed")
    return Dashboard(tuple(entries))


class PageAction(enum.StrEnum):
    CONSULT = "consult"  # DossierPatient
    AUTHORIZE = "authorize"  # TD0.3: declare the patient's consent first
    BREAK_GLASS = "break-glass"
    CLOSE = "close"  # TD1.4
    REACTIVATE = "reactivate"  # TD1.2


@dataclass(frozen=True)
class Existence:
    """TableauDeBord/INS: the existence test (TD0.2) and what the record's state allows."""

    patient_id: str
    exists: bool
    status: str  # open | closed | "" (no DMP)
    authorization: str  # VALIDE | EXPIREE | NON_EXISTANTE (TD0.2's AUTORISATION)
    attending: bool  # the caller is the attending doctor (STATUT_MT)
    patient: PatientData | None
    actions: tuple[PageAction, ...]


def existence_test(services: Services, principal: Principal, ins: str, now: dt.datetime | None = None) -> Existence:
    """The existence test, as GDP's TEST_EXST decides and traces it (dmp.read)."""
    security, principal, record = open_page(services, principal, ins)
    now = now_or(now)
    decision = gdp.decide(principal, principal.patient_id, state_of(record), hv.TEST_EXST, now)
    if not decision.allowed:
        raise refuse(security, principal, t.DMP_READ, 403, decision.reason)
    if record is None:
        trace_access(security, principal, t.DMP_READ, t.SUCCESS, detail="no DMP for this patient (NF)")
        return Existence(principal.patient_id, False, "", hv.AUTHORIZATION_NONE, False, None, ())
    said = attention(principal, record.state, now)
    trace_access(
        security, principal, t.DMP_READ, t.SUCCESS, detail=f"{decision.reason}; authorization {said.authorization}"
    )
    return Existence(
        principal.patient_id,
        True,
        record.state.status,
        said.authorization,
        said.attending,
        patient_data(record),
        allowed_actions(principal, record.state, now),
    )


def allowed_actions(principal: Principal, record: RecordState, now: dt.datetime) -> tuple[PageAction, ...]:
    """What the policy lets this professional do next on the record (pure: nothing traced)."""
    actions: list[PageAction] = []
    consult = Action.READ_STATUS if principal.is_cpe else Action.SEARCH
    if record_access(principal, record, consult, now).allowed:
        actions.append(PageAction.CONSULT)
    else:
        if self_authorization(principal, record, True, False, now).allowed:
            actions.append(PageAction.AUTHORIZE)
        if break_glass_possible(principal, record, now):
            actions.append(PageAction.BREAK_GLASS)
    if record.status != CLOSED and gdp.decide(principal, record.patient_id, record, hv.FERM, now).allowed:
        actions.append(PageAction.CLOSE)
    if record.status == CLOSED and gdp.decide(principal, record.patient_id, record, hv.REAC, now).allowed:
        actions.append(PageAction.REACTIVATE)
    return tuple(actions)


def authorize_self(services: Services, principal: Principal, ins: str, now: dt.datetime | None = None) -> None:
    """The unauthorized professional confirms the patient's consent (TD0.3 AJOUT, traced so)."""
    security, principal, record = open_page(services, principal, ins)
    now = now_or(now)
    state = state_of(record)
    decision = self_authorization(principal, state, True, False, now)
    if not decision.allowed:
        raise refuse(security, principal, t.AUTHORIZATION_SELF, refusal_status(state), decision.reason)
    assert state is not None
    grant = declare(security.records, principal, state, False, now)
    detail = f"{principal.user_id} declared authorized" if grant else "already authorized: nothing done"
    trace_access(security, principal, t.AUTHORIZATION_SELF, t.SUCCESS, detail=f"{decision.reason}; {detail}")
