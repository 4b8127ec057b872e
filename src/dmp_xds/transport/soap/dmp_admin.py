"""The DMP administration endpoint (`/dmp/admin`): the patient's record over SOAP.

Each operation: the principal the dispatcher proved (client certificate + VIHF), the policy's
decision for that operation on the request's patient (security/policy.py), the record service
call (dmp/records.py), exactly one access-trace row whatever happens, and a typed response
(dmp/messages.py) or a SOAP fault saying why. Unlike the XDS endpoints, the dispatcher does not
apply a record-level gate first: each operation has its own policy action, and CreateDmp is
about a record that does not exist yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree
from spyne import AnyXml, MethodContext, ServiceBase, rpc

from dmp_xds.storage import trail as t
from dmp_xds.transport.soap import dmp_messages as m
from dmp_xds.dmp import vocabulary as dv
from dmp_xds.storage.records import DmpError, DmpRecord, DmpStore, renewable_grant
from dmp_xds.services.gate import SecurityServices, trace_access
from dmp_xds.dmp.policy import Action, administration_access, authorizations_shown, speaks_for_patient
from dmp_xds.security.vihf import Principal, same_patient
from dmp_xds.transport.soap.faults import SoapFault, sender
from dmp_xds.services.context import Services, TransactionRequest, TransactionResult

if TYPE_CHECKING:
    from dmp_xds.transport.soap.service import CallContext

DMP_ADMIN_ENDPOINT = "dmp-admin"
# WS-Addressing action -> method of DmpAdminService (the dispatcher's table, soap/service.py).
DMP_ADMIN_ACTIONS: dict[str, str] = {dv.action(operation): operation for operation in dv.OPERATIONS}


class Refused(Exception):
    """The operation stops here: `fault` goes back to the client, `outcome` into the trace."""

    def __init__(self, fault: SoapFault, outcome: str) -> None:
        super().__init__(fault.reason)
        self.fault = fault
        self.outcome = outcome


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
        trace_access(self.security, self.principal, self.trace_action, outcome, self.documents, self.detail,
                     patient_id=self.patient_id)


Operation = Callable[[AdminCall, etree._Element], etree._Element]


def _invalid(reason: str) -> Refused:
    return Refused(sender(reason, dv.FAULT_INVALID_REQUEST), t.FAILURE)


def _admit(call: AdminCall, patient_id: str, action: Action) -> DmpRecord | None:
    """The policy's decision on the request's patient; the record (None only for a creation)."""
    call.patient_id = patient_id
    record = call.records.get(patient_id)
    # Whether the DMP exists is said only to a VIHF about its patient (the policy's first check).
    if same_patient(call.principal.patient_id, patient_id):
        if record is None and action is not Action.CREATE:
            raise Refused(sender(f"patient {patient_id} has no DMP", dv.FAULT_UNKNOWN_DMP), t.FAILURE)
        if record is not None and action is Action.CREATE:
            raise Refused(sender(f"patient {patient_id} already has a DMP ({record.state.status})",
                                 dv.FAULT_INVALID_STATE), t.FAILURE)
    decision = administration_access(call.principal, patient_id, record.state if record else None, action, call.now)
    call.detail = decision.reason
    if not decision.allowed:
        raise Refused(sender(f"access refused: {decision.reason}", dv.FAULT_ACCESS_DENIED, http_status=403), t.DENIED)
    return record


def _run(ctx: MethodContext, operation: Operation, trace_action: str, payload: etree._Element) -> etree._Element:
    """Run one operation for spyne and keep what the dispatcher needs (see soap/service.py `_run`,
    which this mirrors: spyne would turn our faults into anonymous errors)."""
    call_context: CallContext = ctx.udc
    try:
        result = perform(call_context.services, TransactionRequest(payload, {}, call_context.principal),
                         operation, trace_action)
    except BaseException as exc:
        call_context.error = exc
        raise
    call_context.result = result
    return result.payload


def perform(services: Services, request: TransactionRequest, operation: Operation,
            trace_action: str) -> TransactionResult:
    """Authenticated principal -> operation -> one trace row -> response or fault."""
    security, principal = services.security, request.principal
    if security is None or not isinstance(principal, Principal):
        # Without authentication nobody can be told apart: no patient, no consent, no policy.
        raise sender("the DMP administration endpoint needs authentication (DMP_XDS_AUTH=vihf, client "
                     "certificate and VIHF); without it use `dmp-xds dmp ...` on the server",
                     dv.FAULT_AUTHENTICATION_REQUIRED, http_status=403)
    call = AdminCall(security, services, principal, dt.datetime.now(dt.timezone.utc), trace_action)
    try:
        payload = operation(call, request.payload)
    except Refused as refused:
        call.detail = refused.fault.reason
        call.trace(refused.outcome)
        raise refused.fault from None
    except m.MessageError as exc:
        call.detail = str(exc)
        call.trace(t.FAILURE)
        raise sender(str(exc), dv.FAULT_INVALID_REQUEST) from None
    except DmpError as exc:  # the record changed between the decision and the change
        call.detail = str(exc)
        call.trace(t.FAILURE)
        raise sender(str(exc), dv.FAULT_INVALID_STATE) from None
    except BaseException:
        call.detail = "internal error"
        call.trace(t.FAILURE)
        raise  # the dispatcher logs it and answers with a reference, never a stack trace
    call.trace(t.SUCCESS)
    return TransactionResult(payload)


# --- the operations -------------------------------------------------------------------------

def _record_response(call: AdminCall, operation: str, record: DmpRecord) -> etree._Element:
    return m.dmp_response(operation, record, authorizations_shown(call.principal, record.state), call.now,
                          for_patient=speaks_for_patient(call.principal, record.state))


def create_dmp(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_create(payload, call.now, call.require_ins)
    _admit(call, request.patient_id, Action.CREATE)
    consent = request.consent
    record = call.records.create(request.patient_id, consent)
    call.detail = (f"consent collected by {consent.collected_by} at {m.stamp(consent.collected_at)}; emergency "
                   f"access {_allowed(consent.emergency_access_allowed)}; centre 15 "
                   f"{_allowed(consent.regulation_access_allowed)}")
    return _record_response(call, dv.CREATE_DMP, record)


def update_dmp(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_update(payload, call.require_ins)
    # The notification address is the patient's own contact: theirs alone to give.
    _admit(call, request.patient_id, Action.UPDATE_CONSENT if request.notification_email is None
           else Action.MANAGE_NOTIFICATIONS)
    record = call.records.update_consent(request.patient_id, request.emergency_access_allowed,
                                         request.regulation_access_allowed, request.notification_email)
    call.detail = (f"emergency access {_allowed(record.state.emergency_access_allowed)}; centre 15 "
                   f"{_allowed(record.state.regulation_access_allowed)}"
                   + ("" if request.notification_email is None else
                      f"; notification e-mail {'set' if request.notification_email else 'removed'}"))
    return _record_response(call, dv.UPDATE_DMP, record)


def close_dmp(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_status_change(payload, dv.CLOSE_DMP, call.require_ins)
    _admit(call, request.patient_id, Action.CLOSE)
    record = call.records.close(request.patient_id, request.reason)
    call.detail = request.reason
    return _record_response(call, dv.CLOSE_DMP, record)


def reopen_dmp(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_status_change(payload, dv.REOPEN_DMP, call.require_ins)
    _admit(call, request.patient_id, Action.REOPEN)
    record = call.records.reopen(request.patient_id, request.reason)
    call.detail = request.reason
    return _record_response(call, dv.REOPEN_DMP, record)


def destroy_dmp(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_destroy(payload, call.require_ins)
    _admit(call, request.patient_id, Action.DESTROY)
    destruction = call.records.destroy(request.patient_id, call.services.blobs)
    # The erased documents stay named in the trace: the request is what destruction keeps.
    call.documents = tuple(destruction.documents)
    call.detail = (f"destroyed on request: {request.patient_request}; {len(destruction.documents)} documents, "
                   f"{destruction.objects} registry objects erased")
    return m.destroy_response(request.patient_id, destruction)


def grant_authorization(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_grant(payload, dv.GRANT_AUTHORIZATION, call.require_ins)
    _admit(call, request.patient_id, Action.MANAGE_AUTHORIZATIONS)
    grant = call.records.grant(request.patient_id, request.kind, request.grantee, call.principal.user_id,
                               request.reference)
    call.detail = f"{grant.kind} {grant.grantee} until {grant.expires_at:%Y-%m-%d}"
    return m.authorization_response(dv.GRANT_AUTHORIZATION, grant, call.now)


def renew_authorization(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_grant(payload, dv.RENEW_AUTHORIZATION, call.require_ins)
    record = _admit(call, request.patient_id, Action.MANAGE_AUTHORIZATIONS)
    assert record is not None  # only a creation is admitted without a record
    if renewable_grant(record.state, request.kind, request.grantee) is None:
        raise _invalid(f"there is no {request.kind} authorization of {request.grantee} to renew "
                       f"(revoked, or never granted): use {dv.GRANT_AUTHORIZATION}")
    grant = call.records.grant(request.patient_id, request.kind, request.grantee, call.principal.user_id,
                               request.reference)
    call.detail = f"{grant.kind} {grant.grantee} renewed until {grant.expires_at:%Y-%m-%d}"
    return m.authorization_response(dv.RENEW_AUTHORIZATION, grant, call.now)


def revoke_authorization(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_revoke(payload, call.require_ins)
    _admit(call, request.patient_id, Action.MANAGE_AUTHORIZATIONS)
    revoked = sum(call.records.revoke(request.patient_id, request.grantee, kind) for kind in request.kinds)
    call.detail = f"{request.grantee}: {revoked} authorization(s) revoked"
    return m.revoke_response(revoked)


def get_dmp_status(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_patient(payload, dv.GET_DMP_STATUS, call.require_ins)
    record = _admit(call, request.patient_id, Action.READ_STATUS)
    assert record is not None
    return _record_response(call, dv.GET_DMP_STATUS, record)


def get_access_history(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_history(payload, call.require_ins)
    _admit(call, request.patient_id, Action.READ_HISTORY)
    entries = call.security.audit.history(request.patient_id, request.limit)
    call.detail = f"{len(entries)} entries read"
    return m.history_response(entries)


def get_notifications(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_notifications(payload, call.require_ins)
    _admit(call, request.patient_id, Action.MANAGE_NOTIFICATIONS)
    notifications = call.security.notifier.list(request.patient_id, request.limit, request.unread_only)
    call.detail = f"{len(notifications)} notifications read"
    return m.notifications_response(notifications)


def acknowledge_notifications(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_acknowledge(payload, call.require_ins)
    _admit(call, request.patient_id, Action.MANAGE_NOTIFICATIONS)
    count = call.security.notifier.acknowledge(request.patient_id, request.ids, call.now)
    call.detail = f"{count} notifications acknowledged"
    return m.acknowledge_response(count)


def declare_representative(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_representative(payload, dv.DECLARE_REPRESENTATIVE, call.require_ins)
    _admit(call, request.patient_id, Action.DECLARE_REPRESENTATIVE)
    declared, added = call.records.add_representative(request.patient_id, request.representative_id,
                                                      call.principal.user_id)
    # The evidence the professional checked stays in the trace: it is what makes the declaration.
    call.detail = (f"legal representative {request.representative_id}, evidence: {request.note}"
                   + ("" if added else f" (already declared by {declared.declared_by})"))
    return m.declare_representative_response(declared, not added)


def remove_representative(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_representative(payload, dv.REMOVE_REPRESENTATIVE, call.require_ins)
    _admit(call, request.patient_id, Action.REMOVE_REPRESENTATIVE)
    removed = call.records.remove_representative(request.patient_id, request.representative_id)
    call.detail = (f"legal representative {request.representative_id}: {removed} removed"
                   + (f"; reason: {request.note}" if request.note else ""))
    return m.remove_representative_response(removed)


def list_representatives(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_patient(payload, dv.LIST_REPRESENTATIVES, call.require_ins)
    _admit(call, request.patient_id, Action.READ_REPRESENTATIVES)
    representatives = call.records.representatives(request.patient_id)
    call.detail = f"{len(representatives)} legal representative(s) read"
    return m.representatives_response(representatives)


def _allowed(value: bool) -> str:
    return "allowed" if value else "refused"


class DmpAdminService(ServiceBase):
    """DMP administration: one method per operation (the method name is the operation name)."""

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def CreateDmp(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, create_dmp, t.DMP_CREATE, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def UpdateDmp(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, update_dmp, t.DMP_UPDATE, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def CloseDmp(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, close_dmp, t.DMP_CLOSE, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def ReopenDmp(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, reopen_dmp, t.DMP_REOPEN, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def DestroyDmp(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, destroy_dmp, t.DMP_DESTROY, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def GrantAuthorization(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, grant_authorization, t.AUTHORIZATION_GRANT, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def RenewAuthorization(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, renew_authorization, t.AUTHORIZATION_RENEW, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def RevokeAuthorization(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, revoke_authorization, t.AUTHORIZATION_REVOKE, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def GetDmpStatus(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, get_dmp_status, t.DMP_READ, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def GetAccessHistory(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, get_access_history, t.HISTORY_READ, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def GetNotifications(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, get_notifications, t.NOTIFICATIONS_READ, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def AcknowledgeNotifications(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, acknowledge_notifications, t.NOTIFICATIONS_ACKNOWLEDGE, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def DeclareLegalRepresentative(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, declare_representative, t.REPRESENTATIVE_ADD, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def RemoveLegalRepresentative(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, remove_representative, t.REPRESENTATIVE_REMOVE, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def ListLegalRepresentatives(ctx: MethodContext, request: etree._Element) -> etree._Element:  # noqa: N802
        return _run(ctx, list_representatives, t.REPRESENTATIVES_READ, request)
