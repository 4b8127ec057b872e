"""GestionDMPPatient/INS: the record's authorizations (TD1.6), the attending doctor's block,
closing (TD1.4) and reactivating (TD1.2) the DMP."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dmp_xds.dmp import cxf_messages as m
from dmp_xds.dmp import cxf_vocabulary as cv
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.dmp.policy import (
    CLOSED,
    is_attending,
    list_authorizations,
    may_block,
)
from dmp_xds.security.vihf import Principal
from dmp_xds.services import gdp
from dmp_xds.services.context import Services
from dmp_xds.services.gate import trace_access
from dmp_xds.services.habilitations import authorization_entries
from dmp_xds.services.professional_site.common import (
    PatientData,
    now_or,
    open_page,
    patient_data,
    refusal_status,
    refuse,
    state_of,
)
from dmp_xds.storage import trail as t


@dataclass(frozen=True)
class RecordManagement:
    patient: PatientData
    authorizations: tuple[m.AuthorizationEntry, ...]  # TD1.6, ACTIVE and INTERDITE
    attending: bool
    may_block: bool
    may_close: bool


def record_management(
    services: Services, principal: Principal, ins: str, now: dt.datetime | None = None
) -> RecordManagement:
    """GestionDMPPatient/INS: who may and who may not access the record (TD1.6, decided and
    traced as listAuthorizationByPatient), and what the caller may do about it."""
    security, principal, record = open_page(services, principal, ins)
    now = now_or(now)
    state = state_of(record)
    decision = list_authorizations(principal, state, now)
    if not decision.allowed:
        raise refuse(security, principal, t.AUTHORIZATIONS_READ, refusal_status(state), decision.reason)
    assert record is not None and state is not None
    entries = authorization_entries(state.authorizations, cv.MODE_ALL, now)
    trace_access(
        security,
        principal,
        t.AUTHORIZATIONS_READ,
        t.SUCCESS,
        detail=f"{decision.reason}; {len(entries)} professional(s) listed",
    )
    attending = is_attending(principal, state, now)
    return RecordManagement(
        patient_data(record),
        tuple(entries),
        attending,
        attending and may_block(principal, state, "-", now).allowed,
        gdp.decide(principal, state.patient_id, state, hv.FERM, now).allowed,
    )


def block_professional(
    services: Services, principal: Principal, ins: str, grantee: str, now: dt.datetime | None = None
) -> None:
    """The attending doctor blocks a professional (INTERDITE): their grants go, none can be made."""
    security, principal, record = open_page(services, principal, ins)
    now = now_or(now)
    state = state_of(record)
    decision = may_block(principal, state, grantee.strip(), now)
    if not decision.allowed:
        raise refuse(security, principal, t.AUTHORIZATION_BLOCK, refusal_status(state), decision.reason)
    revoked, new = security.records.block(principal.patient_id, grantee.strip(), principal.user_id)
    trace_access(
        security,
        principal,
        t.AUTHORIZATION_BLOCK,
        t.SUCCESS,
        detail=f"{decision.reason}; {grantee.strip()} blocked"
        + (f", {revoked} authorization(s) revoked" if revoked else "")
        + ("" if new else " (already blocked)"),
    )


def close_record(
    services: Services, principal: Principal, ins: str, reason: str, now: dt.datetime | None = None
) -> None:
    """Close the DMP (TD1.4, decided and traced as GDP's FERM)."""
    security, principal, record = open_page(services, principal, ins)
    now = now_or(now)
    state = state_of(record)
    if state is None:
        raise refuse(security, principal, t.DMP_CLOSE, 404, f"patient {principal.patient_id} has no DMP")
    if state.status == CLOSED:
        raise refuse(security, principal, t.DMP_CLOSE, 409, f"the DMP of {principal.patient_id} is already closed")
    decision = gdp.decide(principal, principal.patient_id, state, hv.FERM, now)
    if not decision.allowed:
        raise refuse(security, principal, t.DMP_CLOSE, 403, f"access refused: {decision.reason}")
    security.records.close(principal.patient_id, reason or hv.CLOSURE_PATIENT_REQUEST)
    trace_access(security, principal, t.DMP_CLOSE, t.SUCCESS, detail=f"{decision.reason}; closed: {reason}")


def reactivate_record(
    services: Services, principal: Principal, ins: str, patient_consents: bool, now: dt.datetime | None = None
) -> None:
    """Reactivate a closed DMP with the patient's consent (TD1.2, decided and traced as REAC)."""
    security, principal, record = open_page(services, principal, ins)
    now = now_or(now)
    state = state_of(record)
    if state is None:
        raise refuse(security, principal, t.DMP_REOPEN, 404, f"patient {principal.patient_id} has no DMP")
    if state.status != CLOSED:
        raise refuse(security, principal, t.DMP_REOPEN, 409, f"the DMP of {principal.patient_id} is already active")
    if not patient_consents:
        raise refuse(security, principal, t.DMP_REOPEN, 400, "a DMP is reactivated with the patient's consent")
    decision = gdp.decide(principal, principal.patient_id, state, hv.REAC, now)
    if not decision.allowed:
        raise refuse(security, principal, t.DMP_REOPEN, 403, f"access refused: {decision.reason}")
    security.records.reopen(principal.patient_id)
    trace_access(
        security,
        principal,
        t.DMP_REOPEN,
        t.SUCCESS,
        detail=f"{decision.reason}; reactivated with the patient's consent",
    )
