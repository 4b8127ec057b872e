"""The DMP administration operations on the patient's record, free of any transport.

Each operation: the principal the gate proved (client certificate + VIHF), the policy's decision
for that operation on the request's patient (dmp/policy.py), the record service call
(storage/records.py), exactly one access-trace row whatever happens, and a result, or an
AdminRefusal saying why. Unlike the XDS transactions, no record-level gate runs first: each
operation has its own policy action, and CreateDmp is about a record that does not exist yet.
The SOAP binding (transport/soap/dmp_admin.py) reads the requests and writes the responses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from dmp_xds.dmp import vocabulary as dv
from dmp_xds.dmp.model import Consent, Destruction, DmpError, DmpRecord, Representative, renewable_grant
from dmp_xds.dmp.policy import (
    Action,
    Authorization,
    administration_access,
    authorizations_shown,
    block_access,
    speaks_for_patient,
)
from dmp_xds.security.vihf import Principal, same_patient
from dmp_xds.services.context import Services
from dmp_xds.services.gate import SecurityServices, trace_access
from dmp_xds.storage import trail as t
from dmp_xds.storage.notifications import Notification
from dmp_xds.storage.records import DmpStore
from dmp_xds.storage.trail import AuditEntry

R = TypeVar("R")


class AdminRefusal(Exception):
    """The operation stops here: `subcode` (dmp/vocabulary.py FAULT_*) and `reason` go back to the
    client, `outcome` into the trace (None: nobody to trace, the caller is not authenticated)."""

    def __init__(self, subcode: tuple[str, str], reason: str, outcome: str | None = t.FAILURE) -> None:
        super().__init__(reason)
        self.subcode = subcode
        self.reason = reason
        self.outcome = outcome


def invalid(reason: str) -> AdminRefusal:
    """The request breaks the schema or a rule of its message."""
    return AdminRefusal(dv.FAULT_INVALID_REQUEST, reason)


# --- the requests, as the binding reads them ------------------------------------------------


@dataclass(frozen=True)
class CreateDmp:
    patient_id: str
    consent: Consent


@dataclass(frozen=True)
class UpdateDmp:
    patient_id: str
    emergency_access_allowed: bool | None
    regulation_access_allowed: bool | None
    notification_email: str | None = None  # "" removes it


@dataclass(frozen=True)
class StatusChange:
    """CloseDmp, ReopenDmp."""

    patient_id: str
    reason: str


@dataclass(frozen=True)
class DestroyDmp:
    patient_id: str
    patient_request: str


@dataclass(frozen=True)
class GrantRequest:
    """GrantAuthorization, RenewAuthorization."""

    patient_id: str
    kind: str
    grantee: str
    reference: str


@dataclass(frozen=True)
class RevokeRequest:
    patient_id: str
    grantee: str
    kinds: tuple[str, ...]  # a professional loses their personal and attending-doctor grants


@dataclass(frozen=True)
class PatientRequest:
    """GetDmpStatus."""

    patient_id: str


@dataclass(frozen=True)
class HistoryRequest:
    patient_id: str
    limit: int


@dataclass(frozen=True)
class NotificationsRequest:
    patient_id: str
    limit: int
    unread_only: bool


@dataclass(frozen=True)
class AcknowledgeRequest:
    patient_id: str
    ids: tuple[int, ...]


@dataclass(frozen=True)
class RepresentativeRequest:
    """DeclareLegalRepresentative (`note`: the evidence), RemoveLegalRepresentative (the reason)."""

    patient_id: str
    representative_id: str
    note: str


@dataclass(frozen=True)
class BlockRequest:
    """BlockProfessional, UnblockProfessional."""

    patient_id: str
    national_id: str


@dataclass(frozen=True)
class RecordView:
    """A record as this caller is shown it: the authorizations they may see, and whether the
    response speaks to the patient (or their representative)."""

    record: DmpRecord
    authorizations: tuple[Authorization, ...]
    for_patient: bool


@dataclass
class AdminCall:
    """One authenticated administration request, and what its trace row will say."""

    security: SecurityServices
    services: Services
    principal: Principal
    now: dt.datetime
    trace_action: str
    patient_id: str = ""  # the request's patient, once read; until then the VIHF's
    detail: str = ""
    documents: tuple[str, ...] = ()

    @property
    def records(self) -> DmpStore:
        return self.security.records

    @property
    def require_ins(self) -> bool:
        # The DMP is keyed on the INS; a plain IHE deployment takes any CX patient id.
        return self.services.settings.profile == "cisis"

    def trace(self, outcome: str) -> None:
        trace_access(
            self.security,
            self.principal,
            self.trace_action,
            outcome,
            self.documents,
            self.detail,
            patient_id=self.patient_id,
        )


def perform(services: Services, principal: object | None, trace_action: str, work: Callable[[AdminCall], R]) -> R:
    """Authenticated principal -> operation (`work`) -> one trace row -> its result or a refusal."""
    security = services.security
    if security is None or not isinstance(principal, Principal):
        # Without authentication nobody can be told apart: no patient, no consent, no policy.
        raise AdminRefusal(
            dv.FAULT_AUTHENTICATION_REQUIRED,
            "the DMP administration endpoint needs authentication (DMP_XDS_AUTH=vihf, client "
            "certificate and VIHF); without it use `dmp-xds dmp ...` on the server",
            outcome=None,
        )
    call = AdminCall(security, services, principal, dt.datetime.now(dt.UTC), trace_action)
    try:
        result = work(call)
    except AdminRefusal as refused:
        call.detail = refused.reason
        call.trace(refused.outcome or t.FAILURE)
        raise
    except DmpError as exc:  # the record changed between the decision and the change
        call.detail = str(exc)
        call.trace(t.FAILURE)
        raise AdminRefusal(dv.FAULT_INVALID_STATE, str(exc)) from None
    except BaseException:
        call.detail = "internal error"
        call.trace(t.FAILURE)
        raise  # the transport logs it and answers with a reference, never a stack trace
    call.trace(t.SUCCESS)
    return result


def _admit(call: AdminCall, patient_id: str, action: Action) -> DmpRecord | None:
    """The policy's decision on the request's patient; the record (None only for a creation)."""
    call.patient_id = patient_id
    record = call.records.get(patient_id)
    # Whether the DMP exists is said only to a VIHF about its patient (the policy's first check).
    if same_patient(call.principal.patient_id, patient_id):
        if record is None and action is not Action.CREATE:
            raise AdminRefusal(dv.FAULT_UNKNOWN_DMP, f"patient {patient_id} has no DMP")
        if record is not None and action is Action.CREATE:
            raise AdminRefusal(
                dv.FAULT_INVALID_STATE, f"patient {patient_id} already has a DMP ({record.state.status})"
            )
    decision = administration_access(call.principal, patient_id, record.state if record else None, action, call.now)
    call.detail = decision.reason
    if not decision.allowed:
        raise AdminRefusal(dv.FAULT_ACCESS_DENIED, f"access refused: {decision.reason}", t.DENIED)
    return record


def _view(call: AdminCall, record: DmpRecord) -> RecordView:
    return RecordView(
        record,
        tuple(authorizations_shown(call.principal, record.state)),
        speaks_for_patient(call.principal, record.state),
    )


# --- the operations -------------------------------------------------------------------------


def create_dmp(call: AdminCall, request: CreateDmp) -> RecordView:
    _admit(call, request.patient_id, Action.CREATE)
    consent = request.consent
    record = call.records.create(request.patient_id, consent)
    call.detail = (
        f"consent collected by {consent.collected_by} at {dv.stamp(consent.collected_at)}; emergency "
        f"access {_allowed(consent.emergency_access_allowed)}; centre 15 "
        f"{_allowed(consent.regulation_access_allowed)}"
    )
    return _view(call, record)


def update_dmp(call: AdminCall, request: UpdateDmp) -> RecordView:
    # The notification address is the patient's own contact: theirs alone to give.
    _admit(
        call,
        request.patient_id,
        Action.UPDATE_CONSENT if request.notification_email is None else Action.MANAGE_NOTIFICATIONS,
    )
    record = call.records.update_consent(
        request.patient_id,
        request.emergency_access_allowed,
        request.regulation_access_allowed,
        request.notification_email,
    )
    call.detail = (
        f"emergency access {_allowed(record.state.emergency_access_allowed)}; centre 15 "
        f"{_allowed(record.state.regulation_access_allowed)}"
        + (
            ""
            if request.notification_email is None
            else f"; notification e-mail {'set' if request.notification_email else 'removed'}"
        )
    )
    return _view(call, record)


def close_dmp(call: AdminCall, request: StatusChange) -> RecordView:
    _admit(call, request.patient_id, Action.CLOSE)
    record = call.records.close(request.patient_id, request.reason)
    call.detail = request.reason
    return _view(call, record)


def reopen_dmp(call: AdminCall, request: StatusChange) -> RecordView:
    _admit(call, request.patient_id, Action.REOPEN)
    record = call.records.reopen(request.patient_id, request.reason)
    call.detail = request.reason
    return _view(call, record)


def destroy_dmp(call: AdminCall, request: DestroyDmp) -> Destruction:
    _admit(call, request.patient_id, Action.DESTROY)
    destruction = call.records.destroy(request.patient_id, call.services.blobs)
    # The erased documents stay named in the trace: the request is what destruction keeps.
    call.documents = tuple(destruction.documents)
    call.detail = (
        f"destroyed on request: {request.patient_request}; {len(destruction.documents)} documents, "
        f"{destruction.objects} registry objects erased"
    )
    return destruction


def grant_authorization(call: AdminCall, request: GrantRequest) -> Authorization:
    _admit(call, request.patient_id, Action.MANAGE_AUTHORIZATIONS)
    grant = call.records.grant(
        request.patient_id, request.kind, request.grantee, call.principal.user_id, request.reference
    )
    call.detail = f"{grant.kind} {grant.grantee} until {grant.expires_at:%Y-%m-%d}"
    return grant


def renew_authorization(call: AdminCall, request: GrantRequest) -> Authorization:
    record = _admit(call, request.patient_id, Action.MANAGE_AUTHORIZATIONS)
    assert record is not None  # only a creation is admitted without a record
    if renewable_grant(record.state, request.kind, request.grantee) is None:
        raise invalid(
            f"there is no {request.kind} authorization of {request.grantee} to renew "
            f"(revoked, or never granted): use {dv.GRANT_AUTHORIZATION}"
        )
    grant = call.records.grant(
        request.patient_id, request.kind, request.grantee, call.principal.user_id, request.reference
    )
    call.detail = f"{grant.kind} {grant.grantee} renewed until {grant.expires_at:%Y-%m-%d}"
    return grant


def revoke_authorization(call: AdminCall, request: RevokeRequest) -> int:
    _admit(call, request.patient_id, Action.MANAGE_AUTHORIZATIONS)
    revoked = sum(call.records.revoke(request.patient_id, request.grantee, kind) for kind in request.kinds)
    call.detail = f"{request.grantee}: {revoked} authorization(s) revoked"
    return revoked


def get_dmp_status(call: AdminCall, request: PatientRequest) -> RecordView:
    record = _admit(call, request.patient_id, Action.READ_STATUS)
    assert record is not None
    return _view(call, record)


def get_access_history(call: AdminCall, request: HistoryRequest) -> list[AuditEntry]:
    _admit(call, request.patient_id, Action.READ_HISTORY)
    entries = call.security.audit.history(request.patient_id, request.limit)
    call.detail = f"{len(entries)} entries read"
    return entries


def get_notifications(call: AdminCall, request: NotificationsRequest) -> list[Notification]:
    _admit(call, request.patient_id, Action.MANAGE_NOTIFICATIONS)
    notifications = call.security.notifier.list(request.patient_id, request.limit, request.unread_only)
    call.detail = f"{len(notifications)} notifications read"
    return notifications


def acknowledge_notifications(call: AdminCall, request: AcknowledgeRequest) -> int:
    _admit(call, request.patient_id, Action.MANAGE_NOTIFICATIONS)
    count = call.security.notifier.acknowledge(request.patient_id, request.ids, call.now)
    call.detail = f"{count} notifications acknowledged"
    return count


def declare_representative(call: AdminCall, request: RepresentativeRequest) -> tuple[Representative, bool]:
    """The declaration, and whether it is new (False: someone had declared them already)."""
    _admit(call, request.patient_id, Action.DECLARE_REPRESENTATIVE)
    declared, added = call.records.add_representative(
        request.patient_id, request.representative_id, call.principal.user_id
    )
    # The evidence the professional checked stays in the trace: it is what makes the declaration.
    call.detail = f"legal representative {request.representative_id}, evidence: {request.note}" + (
        "" if added else f" (already declared by {declared.declared_by})"
    )
    return declared, added


def remove_representative(call: AdminCall, request: RepresentativeRequest) -> int:
    _admit(call, request.patient_id, Action.REMOVE_REPRESENTATIVE)
    removed = call.records.remove_representative(request.patient_id, request.representative_id)
    call.detail = f"legal representative {request.representative_id}: {removed} removed" + (
        f"; reason: {request.note}" if request.note else ""
    )
    return removed


def list_representatives(call: AdminCall, request: PatientRequest) -> list[Representative]:
    _admit(call, request.patient_id, Action.READ_REPRESENTATIVES)
    representatives = call.records.representatives(request.patient_id)
    call.detail = f"{len(representatives)} legal representative(s) read"
    return representatives


def _admit_block(call: AdminCall, request: BlockRequest) -> None:
    """Who may block or unblock (policy.block_access): the patient, or the attending doctor."""
    call.patient_id = request.patient_id
    record = call.records.get(request.patient_id)
    if record is None and same_patient(call.principal.patient_id, request.patient_id):
        raise AdminRefusal(dv.FAULT_UNKNOWN_DMP, f"patient {request.patient_id} has no DMP")
    decision = block_access(call.principal, record.state if record else None, request.national_id, call.now)
    call.detail = decision.reason
    if not decision.allowed:
        raise AdminRefusal(dv.FAULT_ACCESS_DENIED, f"access refused: {decision.reason}", t.DENIED)


def block_professional(call: AdminCall, request: BlockRequest) -> tuple[int, bool]:
    """(authorizations revoked, whether the block is new)."""
    _admit_block(call, request)
    revoked, new = call.records.block(request.patient_id, request.national_id, call.principal.user_id)
    call.detail = f"{request.national_id} " + (
        f"blocked ({revoked} authorization(s) revoked)" if new else "already blocked: nothing done"
    )
    return revoked, new


def unblock_professional(call: AdminCall, request: BlockRequest) -> int:
    _admit_block(call, request)
    lifted = call.records.unblock(request.patient_id, request.national_id)
    call.detail = f"{request.national_id} " + ("unblocked" if lifted else "was not blocked: nothing done")
    return lifted


def _allowed(value: bool) -> str:
    return "allowed" if value else "refused"
