"""The spyne application: one service per XDS actor, one method per transaction.

Our transport layer (serve.py) has already parsed the envelope with the hardened parser, decoded
MTOM and read the WS-Addressing headers. Spyne then dispatches by WS-Addressing Action (ITI-42
and ITI-57 share a body element, so the body cannot decide), runs the service method with its
event hooks, and hands back the response payload, which we wrap in a SOAP 1.2 envelope with the
response Action and RelatesTo.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from lxml import etree
from spyne import AnyXml, Application, MethodContext, ServiceBase, rpc
from spyne.model.fault import Fault
from spyne.protocol.soap import Soap12
from spyne.server import ServerBase

from dmp_xds.security.errors import AuthenticationError
from dmp_xds.services import iti18, iti41, iti42, iti43, iti57, iti62
from dmp_xds.services.context import Services, TransactionRequest, TransactionResult
from dmp_xds.services.gate import authenticate
from dmp_xds.services.pipeline import admit
from dmp_xds.storage import trail as t
from dmp_xds.transport.soap.call import CallContext, run_call
from dmp_xds.transport.soap.cxf import SERVICES as CXF_SERVICES
from dmp_xds.transport.soap.cxf import endpoint_actions, endpoint_roots
from dmp_xds.transport.soap.envelope import SoapRequest
from dmp_xds.transport.soap.faults import WSA_ACTION_NOT_SUPPORTED, SoapFault, as_fault, receiver, refusal, sender
from dmp_xds.transport.soap.patients import (
    GDP_ACTIONS,
    GDP_ENDPOINT,
    GDP_ROOTS,
    PDQ_ACTIONS,
    PDQ_ENDPOINT,
    PDQ_ROOTS,
    GdpService,
    PdqService,
)
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.xop import Attachment

log = logging.getLogger(__name__)

TNS = v.NS_XDSB
Transaction = Callable[[Services, TransactionRequest], TransactionResult]


def _run(ctx: MethodContext, transaction: Transaction, payload: etree._Element) -> etree._Element:
    return run_call(
        ctx,
        lambda call: transaction(
            call.services, TransactionRequest(payload, call.attachments, call.principal, call.access)
        ),
    )


class RepositoryService(ServiceBase):
    """Document Repository actor: ITI-41 and ITI-43."""

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def ProvideAndRegisterDocumentSet_b(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, iti41.provide_and_register, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def RetrieveDocumentSet(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, iti43.retrieve_document_set, request)


class RegistryService(ServiceBase):
    """Document Registry actor: ITI-42, ITI-18, ITI-57 and ITI-62."""

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def RegisterDocumentSet_b(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, iti42.register_document_set, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def RegistryStoredQuery(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, iti18.stored_query, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def UpdateDocumentSet(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, iti57.update_document_set, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def DeleteDocumentSet(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, iti62.delete_document_set, request)


# Which method of which endpoint answers which WS-Addressing action.
ENDPOINT_ACTIONS: dict[str, dict[str, str]] = {
    "repository": {
        v.ACTION_ITI41: "ProvideAndRegisterDocumentSet_b",
        v.ACTION_ITI43: "RetrieveDocumentSet",
    },
    "registry": {
        v.ACTION_ITI42: "RegisterDocumentSet_b",
        v.ACTION_ITI18: "RegistryStoredQuery",
        v.ACTION_ITI57: "UpdateDocumentSet",
        v.ACTION_ITI62: "DeleteDocumentSet",
    },
    GDP_ENDPOINT: GDP_ACTIONS,
    PDQ_ENDPOINT: PDQ_ACTIONS,
    **{endpoint: endpoint_actions(endpoint) for endpoint in CXF_SERVICES},
}


class XdsSoap12(Soap12):
    """Spyne's SOAP 1.2 protocol, fed with an envelope that our transport parsed and checked."""

    def create_in_document(self, ctx: MethodContext, charset: str | None = None) -> None:
        ctx.in_document = ctx.udc.request.envelope

    def decompose_incoming_envelope(self, ctx: MethodContext, message: object = None) -> None:
        call: CallContext = ctx.udc
        ctx.in_body_doc = call.request.payload
        ctx.in_header_doc = None
        ctx.method_request_string = f"{{{TNS}}}{call.extra['method']}"

    def deserialize(self, ctx: MethodContext, message: object) -> None:
        self.event_manager.fire_event("before_deserialize", ctx)
        ctx.in_object = ctx.in_body_doc  # bare body style: spyne wraps it in a list itself
        self.event_manager.fire_event("after_deserialize", ctx)


def _application(name: str, services: list[type[ServiceBase]]) -> Application:
    return Application(services, tns=TNS, name=name, in_protocol=XdsSoap12(validator=None), out_protocol=Soap12())


class SoapDispatcher(ServerBase):
    """Runs a checked SOAP request through the spyne application of one endpoint."""

    transport = "http://www.w3.org/2003/05/soap/bindings/HTTP/"

    def __init__(
        self,
        endpoint: str,
        services_classes: list[type[ServiceBase]],
        record_gate: bool = True,
        roots: dict[str, str] | None = None,
    ) -> None:
        super().__init__(_application(endpoint, services_classes))
        self.endpoint = endpoint
        self.actions = ENDPOINT_ACTIONS[endpoint]
        # Request element -> action, for a request that names no action at all (the transport
        # lets that through only where the DMP's clients do it: envelope.read_request).
        self.roots = roots or {}
        # False: the caller is authenticated here, but each operation applies its own policy
        # and traces itself (the DMP's services: a creation is about a record not there yet).
        self.record_gate = record_gate

    def dispatch(
        self,
        services: Services,
        request: SoapRequest,
        attachments: Mapping[str, Attachment],
        client_chain: list[Any] | None = None,
    ) -> TransactionResult:
        method = self.actions.get(request.action)
        if method is None:
            raise sender(
                f"action {request.action!r} is not supported by the {self.endpoint} endpoint "
                f"(supported: {', '.join(sorted(self.actions))})",
                WSA_ACTION_NOT_SUPPORTED,
            )
        ctx = MethodContext(self, MethodContext.SERVER)
        ctx.udc = CallContext(services, request, attachments, extra={"method": method})
        admission = None
        try:
            if self.record_gate:
                admission = admit(services.security, request.action, request.security, client_chain)
                if admission is not None:
                    ctx.udc.principal = admission.principal
                    ctx.udc.access = admission.access
            elif services.security is not None:
                ctx.udc.principal = authenticate(services.security, request.security, client_chain)
        except AuthenticationError as refused:
            raise refusal(refused) from None
        try:
            result = self._dispatch(ctx)
        except SoapFault:
            if admission is not None:
                admission.trace(t.FAILURE)
            raise
        if admission is not None:
            admission.finish(result)
        return result

    def _dispatch(self, ctx: MethodContext) -> TransactionResult:
        contexts = self.generate_contexts(ctx)
        primary = contexts[0]
        self._raise_if_failed(primary.in_error)
        self.get_in_object(primary)
        self._raise_if_failed(primary.in_error)
        call: CallContext = primary.udc
        try:
            self.get_out_object(primary)
        except Fault as fault:
            self._raise_if_failed(call.error or fault)
        self._raise_if_failed(call.error or primary.out_error)
        if call.result is None:
            raise receiver("the service produced no response")
        return call.result

    @staticmethod
    def _raise_if_failed(problem: BaseException | None) -> None:
        if problem is None:
            return
        fault = as_fault(problem)
        if fault is not None:
            raise fault from None
        # Never show a stack trace to the client: log it with a reference the operator can find.
        reference = uuid.uuid4().hex[:12]
        log.error("internal error %s while processing a request", reference, exc_info=problem)
        raise receiver(f"internal server error (reference {reference})")


def build_dispatchers() -> dict[str, SoapDispatcher]:
    return {
        "repository": SoapDispatcher("repository", [RepositoryService]),
        "registry": SoapDispatcher("registry", [RegistryService]),
        GDP_ENDPOINT: SoapDispatcher(GDP_ENDPOINT, [GdpService], record_gate=False, roots=GDP_ROOTS),
        PDQ_ENDPOINT: SoapDispatcher(PDQ_ENDPOINT, [PdqService], record_gate=False, roots=PDQ_ROOTS),
        **{
            endpoint: SoapDispatcher(endpoint, [service], record_gate=False, roots=endpoint_roots(endpoint))
            for endpoint, service in CXF_SERVICES.items()
        },
    }
