"""The DMP administration endpoint (`/dmp/admin`): the SOAP binding of the record's operations.

Each operation reads its request (dmp_messages.py, checked against DMP_Administration.xsd),
runs the service operation (services/dmp_admin.py: policy, record service, one trace row) and
writes the typed response; a refusal becomes a SOAP fault with the DMP's subcode. Unlike the
XDS endpoints, the dispatcher does not apply a record-level gate first: each operation has its
own policy action, and CreateDmp is about a record that does not exist yet.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree
from spyne import AnyXml, MethodContext, ServiceBase, rpc

from dmp_xds.dmp import vocabulary as dv
from dmp_xds.services import dmp_admin as admin
from dmp_xds.services.context import Services, TransactionRequest, TransactionResult
from dmp_xds.services.dmp_admin import AdminCall, AdminRefusal, RecordView
from dmp_xds.storage import trail as t
from dmp_xds.transport.soap import dmp_messages as m
from dmp_xds.transport.soap.call import run_call
from dmp_xds.transport.soap.faults import SoapFault, sender

DMP_ADMIN_ENDPOINT = "dmp-admin"
# WS-Addressing action -> method of DmpAdminService (the dispatcher's table, soap/service.py).
DMP_ADMIN_ACTIONS: dict[str, str] = {dv.action(operation): operation for operation in dv.OPERATIONS}
# Refusals that are about who asks, not about the message: HTTP 403, as the gate's.
_FORBIDDEN = (dv.FAULT_ACCESS_DENIED, dv.FAULT_AUTHENTICATION_REQUIRED)

Operation = Callable[[AdminCall, etree._Element], etree._Element]


def admin_fault(refusal: AdminRefusal) -> SoapFault:
    return sender(refusal.reason, refusal.subcode, http_status=403 if refusal.subcode in _FORBIDDEN else 400)


def perform(
    services: Services, request: TransactionRequest, operation: Operation, trace_action: str
) -> TransactionResult:
    """Authenticated principal -> operation -> one trace row -> response or fault."""

    def work(call: AdminCall) -> etree._Element:
        try:
            return operation(call, request.payload)
        except m.MessageError as exc:
            raise admin.invalid(str(exc)) from None

    try:
        return TransactionResult(admin.perform(services, request.principal, trace_action, work))
    except AdminRefusal as refusal:
        raise admin_fault(refusal) from None


def _run(ctx: MethodContext, operation: Operation, trace_action: str, payload: etree._Element) -> etree._Element:
    return run_call(
        ctx,
        lambda call: perform(call.services, TransactionRequest(payload, {}, call.principal), operation, trace_action),
    )


# --- each operation: request -> service -> response -----------------------------------------


def _record_response(call: AdminCall, operation: str, view: RecordView) -> etree._Element:
    return m.dmp_response(operation, view.record, view.authorizations, call.now, for_patient=view.for_patient)


def create_dmp(call: AdminCall, payload: etree._Element) -> etree._Element:
    view = admin.create_dmp(call, m.parse_create(payload, call.now, call.require_ins))
    return _record_response(call, dv.CREATE_DMP, view)


def update_dmp(call: AdminCall, payload: etree._Element) -> etree._Element:
    return _record_response(call, dv.UPDATE_DMP, admin.update_dmp(call, m.parse_update(payload, call.require_ins)))


def close_dmp(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_status_change(payload, dv.CLOSE_DMP, call.require_ins)
    return _record_response(call, dv.CLOSE_DMP, admin.close_dmp(call, request))


def reopen_dmp(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_status_change(payload, dv.REOPEN_DMP, call.require_ins)
    return _record_response(call, dv.REOPEN_DMP, admin.reopen_dmp(call, request))


def destroy_dmp(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_destroy(payload, call.require_ins)
    return m.destroy_response(request.patient_id, admin.destroy_dmp(call, request))


def grant_authorization(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_grant(payload, dv.GRANT_AUTHORIZATION, call.require_ins)
    return m.authorization_response(dv.GRANT_AUTHORIZATION, admin.grant_authorization(call, request), call.now)


def renew_authorization(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_grant(payload, dv.RENEW_AUTHORIZATION, call.require_ins)
    return m.authorization_response(dv.RENEW_AUTHORIZATION, admin.renew_authorization(call, request), call.now)


def revoke_authorization(call: AdminCall, payload: etree._Element) -> etree._Element:
    return m.revoke_response(admin.revoke_authorization(call, m.parse_revoke(payload, call.require_ins)))


def get_dmp_status(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_patient(payload, dv.GET_DMP_STATUS, call.require_ins)
    return _record_response(call, dv.GET_DMP_STATUS, admin.get_dmp_status(call, request))


def get_access_history(call: AdminCall, payload: etree._Element) -> etree._Element:
    return m.history_response(admin.get_access_history(call, m.parse_history(payload, call.require_ins)))


def get_notifications(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_notifications(payload, call.require_ins)
    return m.notifications_response(admin.get_notifications(call, request))


def acknowledge_notifications(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_acknowledge(payload, call.require_ins)
    return m.acknowledge_response(admin.acknowledge_notifications(call, request))


def declare_representative(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_representative(payload, dv.DECLARE_REPRESENTATIVE, call.require_ins)
    declared, added = admin.declare_representative(call, request)
    return m.declare_representative_response(declared, not added)


def remove_representative(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_representative(payload, dv.REMOVE_REPRESENTATIVE, call.require_ins)
    return m.remove_representative_response(admin.remove_representative(call, request))


def list_representatives(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_patient(payload, dv.LIST_REPRESENTATIVES, call.require_ins)
    return m.representatives_response(admin.list_representatives(call, request))


def block_professional(call: AdminCall, payload: etree._Element) -> etree._Element:
    revoked, new = admin.block_professional(call, m.parse_block(payload, dv.BLOCK_PROFESSIONAL, call.require_ins))
    return m.block_response(revoked, not new)


def unblock_professional(call: AdminCall, payload: etree._Element) -> etree._Element:
    request = m.parse_block(payload, dv.UNBLOCK_PROFESSIONAL, call.require_ins)
    return m.unblock_response(admin.unblock_professional(call, request))


class DmpAdminService(ServiceBase):
    """DMP administration: one method per operation (the method name is the operation name)."""

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def CreateDmp(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, create_dmp, t.DMP_CREATE, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def UpdateDmp(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, update_dmp, t.DMP_UPDATE, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def CloseDmp(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, close_dmp, t.DMP_CLOSE, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def ReopenDmp(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, reopen_dmp, t.DMP_REOPEN, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def DestroyDmp(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, destroy_dmp, t.DMP_DESTROY, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def GrantAuthorization(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, grant_authorization, t.AUTHORIZATION_GRANT, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def RenewAuthorization(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, renew_authorization, t.AUTHORIZATION_RENEW, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def RevokeAuthorization(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, revoke_authorization, t.AUTHORIZATION_REVOKE, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def GetDmpStatus(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, get_dmp_status, t.DMP_READ, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def GetAccessHistory(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, get_access_history, t.HISTORY_READ, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def GetNotifications(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, get_notifications, t.NOTIFICATIONS_READ, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def AcknowledgeNotifications(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, acknowledge_notifications, t.NOTIFICATIONS_ACKNOWLEDGE, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def DeclareLegalRepresentative(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, declare_representative, t.REPRESENTATIVE_ADD, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def RemoveLegalRepresentative(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, remove_representative, t.REPRESENTATIVE_REMOVE, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def ListLegalRepresentatives(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, list_representatives, t.REPRESENTATIVES_READ, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def BlockProfessional(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, block_professional, t.AUTHORIZATION_BLOCK, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def UnblockProfessional(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, unblock_professional, t.AUTHORIZATION_UNBLOCK, request)
