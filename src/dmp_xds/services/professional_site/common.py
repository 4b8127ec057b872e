"""What every page of the professionals' site does first: the card holder's principal about the
INS of the URL, the record, the record-level decision (a refusal traced, then raised as `Refused`),
and the views several pages share."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from dmp_xds.dmp.ins import INS_NIA, INS_NIR, INS_TEST_NIA, INS_TEST_NIR, canonical_patient_id
from dmp_xds.dmp.model import DmpRecord
from dmp_xds.dmp.policy import (
    CLOSED,
    Action,
    Decision,
    RecordState,
    is_attending,
    record_access,
)
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.vihf import Principal
from dmp_xds.services.context import Services
from dmp_xds.services.gate import SecurityServices, trace_access
from dmp_xds.services.patients_specific import ListedIdentity, listed_identity
from dmp_xds.storage import trail as t
from dmp_xds.storage.trail import AuditEntry

INS_ROOTS = (INS_NIR, INS_NIA, INS_TEST_NIR, INS_TEST_NIA)
_BARE_INS = re.compile(r"^[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{6}(?:[0-9]{2})?$")
HISTORY_YEAR_CAP = 5000  # a year of a busy record's trace is read this far, newest first
# What the patient page's "last visit" and recent accesses count: reads and changes of documents.
DOCUMENT_ACCESSES = (t.SEARCH, t.RETRIEVE, t.SUBMIT, t.UPDATE, t.DELETE)


class Refused(Exception):
    """The page is refused: `status` is the HTTP status the web answers with (400, 401, 403, 404,
    409), `reason` the policy's words (a matrix refusal names its cell). A refusal about a
    patient's record has been traced before it is raised."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class NeedsAuthorization(Refused):
    """An unauthorized professional opened the patient's pages: they may first declare the
    patient's consent (TD0.3), or use break-glass when the patient does not oppose it."""

    def __init__(self, reason: str, may_authorize: bool, may_break_glass: bool) -> None:
        super().__init__(403, reason)
        self.may_authorize = may_authorize
        self.may_break_glass = may_break_glass


def now_or(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def security_of(services: Services) -> SecurityServices:
    if services.security is None:
        raise Refused(401, "the professionals' site needs authentication (DMP_XDS_AUTH=vihf and a card)")
    return services.security


def require_professional(principal: Principal) -> None:
    if not principal.is_professional:
        raise Refused(403, "the professionals' site is for health professionals signed in with their card")


def patient_id_of(services: Services, ins: str) -> str:
    """The record's patient id (`INS^^^&OID&ISO`) for the INS of a URL: a bare INS is looked up
    under each INS root; one that names no record is taken as a real NIR (whose DMP does not exist)."""
    ins = ins.strip()
    if "^" in ins:
        return canonical_patient_id(ins)[0]
    if not _BARE_INS.match(ins):
        raise Refused(400, f"{ins!r} is not an INS (13 or 15 characters)")
    security = security_of(services)
    for root in INS_ROOTS:
        candidate = f"{ins}^^^&{root}&ISO"
        if security.records.get(candidate) is not None:
            return candidate
    return f"{ins}^^^&{INS_NIR}&ISO"


def about(principal: Principal, patient_id: str) -> Principal:
    """The card holder's principal about this patient: as a VIHF names its patient, for the policy
    and the trace."""
    return replace(principal, patient_id=patient_id)


def refusal_status(record: RecordState | None) -> int:
    if record is None:
        return 404
    return 409 if record.status == CLOSED else 403


def refuse(security: SecurityServices, principal: Principal, action: str, status: int, reason: str) -> Refused:
    trace_access(security, principal, action, t.DENIED, detail=reason)
    return Refused(status, reason)


def enter(
    security: SecurityServices,
    principal: Principal,
    record: RecordState | None,
    action: Action,
    trace_action: str,
    now: dt.datetime,
) -> Decision:
    """The record-level decision of the page's transaction; a refusal is traced and raised."""
    decision = record_access(principal, record, action, now)
    if not decision.allowed:
        raise refuse(security, principal, trace_action, refusal_status(record), decision.reason)
    return decision


def open_page(
    services: Services, principal: Principal, ins: str
) -> tuple[SecurityServices, Principal, DmpRecord | None]:
    require_professional(principal)
    security = security_of(services)
    patient_id = patient_id_of(services, ins)
    return security, about(principal, patient_id), security.records.get(patient_id)


def state_of(record: DmpRecord | None) -> RecordState | None:
    return record.state if record is not None else None


def break_glass(principal: Principal, reason: str) -> Principal:
    """The card holder's principal in break-glass access, with the reason they give: the policy
    then lets them in when the patient does not oppose it, and the trace flags each access."""
    if not reason.strip():
        raise Refused(400, "break-glass access needs a reason (why the patient's DMP is needed now)")
    return replace(principal, access_mode=sv.ACCESS_EMERGENCY, access_reason=reason.strip())


# How many of the card's rows since the visit began are read to find its break-glass row.
GLASS_LOOKBACK = 200


def visit_glass_reason(services: Services, principal: Principal, ins: str, since: dt.datetime) -> str:
    """The reason of this visit's break-glass access to the patient, "" when there is none: the
    card's own successful emergency access to this record since the visit (the web session)
    began. The trace is the record of it: no second place keeps the mode."""
    security = services.security
    if security is None:
        return ""
    patient_id = patient_id_of(services, ins)
    for entry in security.audit.history(patient_id, GLASS_LOOKBACK, actor_id=principal.user_id, since=since):
        if entry.emergency and entry.event.outcome == t.SUCCESS and entry.event.access_reason:
            return entry.event.access_reason
    return ""


def break_glass_possible(principal: Principal, record: RecordState, now: dt.datetime) -> bool:
    """Whether break-glass would let this professional in: the policy's own answer for the same
    card in that mode (the patient's opposition, the matrix's column)."""
    return (
        principal.access_mode == sv.ACCESS_NORMAL
        and record_access(break_glass(principal, "-"), record, Action.SEARCH, now).allowed
    )


@dataclass(frozen=True)
class PatientData:
    """The patient's administrative data and emergency settings (what a CPE card sees too)."""

    patient_id: str
    ins: str
    identity: ListedIdentity
    gender: str
    status: str  # open | closed
    emergency_access_allowed: bool
    regulation_access_allowed: bool


def patient_data(record: DmpRecord) -> PatientData:
    return PatientData(
        record.patient_id,
        record.patient_id.split("^", 1)[0],
        listed_identity(record),
        record.demographics.gender,
        record.state.status,
        record.state.emergency_access_allowed,
        record.state.regulation_access_allowed,
    )


@dataclass(frozen=True)
class AccessLine:
    recorded_at: str
    actor_id: str
    actor_name: str
    structure_id: str
    action: str
    outcome: str
    access_mode: str
    emergency: bool
    documents: tuple[str, ...]
    detail: str


def access_line(entry: AuditEntry) -> AccessLine:
    event = entry.event
    return AccessLine(
        entry.recorded_at,
        event.actor_id,
        event.actor_name,
        event.structure_id,
        event.action,
        event.outcome,
        event.access_mode,
        entry.emergency,
        event.documents,
        event.detail,
    )


def visible_history(
    security: SecurityServices,
    principal: Principal,
    record: RecordState,
    now: dt.datetime,
    limit: int,
    since: dt.datetime | None = None,
    actions: Sequence[str] = (),
) -> list[AuditEntry]:
    """The trace rows of the record this professional may see: all of them for the attending
    doctor, their own for anyone else (dmpi section 7)."""
    actor = None if is_attending(principal, record, now) else principal.user_id
    return security.audit.history(record.patient_id, limit, actor_id=actor, since=since, actions=actions)
