"""The SOAP binding of the DMP's CXF-style services: `habilitations`, `patientsSpecific`,
`patientCertif` (names: dmp/cxf_vocabulary.py; operations: services/habilitations.py,
services/patients_specific.py).

As for the HL7 V3 `patients` service, no record-level gate runs first: the caller is
authenticated by the dispatcher, then each operation applies its own policy decision (TD0.3 is
asked by a professional the record does not let in yet; TD0.4 names no patient) and traces
itself. The reply's action is `<operation action>Response`, as Apache CXF names it.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree
from spyne import AnyXml, MethodContext, ServiceBase, rpc

from dmp_xds.dmp import cxf_vocabulary as cv
from dmp_xds.services import habilitations, patients_specific
from dmp_xds.services.context import TransactionResult
from dmp_xds.services.cxf_call import CxfCall, perform
from dmp_xds.storage import trail as t
from dmp_xds.transport.soap.call import run_call

Operation = Callable[[CxfCall, etree._Element], etree._Element]


def endpoint_actions(endpoint: str) -> dict[str, str]:
    """WS-Addressing action -> operation (the method of the endpoint's service). The WSDL's
    `soapAction` (`urn:hl7-org:v3:<operation>`) is taken too: a client built from the
    Habilitations WSDL alone sends it as its action."""
    operations = cv.ENDPOINT_OPERATIONS[endpoint]
    actions = {cv.action(op): op for op in operations}
    actions.update({cv.WSDL_SOAP_ACTION_PREFIX + op: op for op in operations})
    return actions


def endpoint_roots(endpoint: str) -> dict[str, str]:
    """Request element -> action: how a request without any action (the DMP's own kit sends
    no WS-Addressing) is dispatched."""
    return {cv.tag(op, op): cv.action(op) for op in cv.ENDPOINT_OPERATIONS[endpoint]}


def _run(
    ctx: MethodContext, operation: str, work: Operation, trace_action: str, payload: etree._Element
) -> etree._Element:
    return run_call(
        ctx,
        lambda call: TransactionResult(
            perform(call.services, call.principal, operation, trace_action, lambda c: work(c, payload)),
            response_action=cv.response_action(operation),
        ),
    )


class HabilitationsService(ServiceBase):
    """TD0.3 and TD1.6 (the method name is the operation name)."""

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def setAuthorization(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, cv.SET_AUTHORIZATION, habilitations.set_authorization, t.AUTHORIZATION_SELF, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def listAuthorizationByPatient(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(
            ctx,
            cv.LIST_AUTHORIZATION_BY_PATIENT,
            habilitations.list_authorization_by_patient,
            t.AUTHORIZATIONS_READ,
            request,
        )


class PatientsSpecificService(ServiceBase):
    """TD0.4, TD1.5a, TD1.5b, TD1.5d."""

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def patientList(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, cv.PATIENT_LIST, patients_specific.patient_list, t.DMP_LIST, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def createPatientAccess(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(
            ctx,
            cv.CREATE_PATIENT_ACCESS,
            patients_specific.create_patient_access,
            t.PATIENT_ACCESS_CREATE,
            request,
        )

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def patientOTPUpdate(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, cv.PATIENT_OTP_UPDATE, patients_specific.patient_otp_update, t.PATIENT_ACCESS_OTP, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def updatePatientAccess(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(
            ctx,
            cv.UPDATE_PATIENT_ACCESS,
            patients_specific.update_patient_access,
            t.PATIENT_ACCESS_UPDATE,
            request,
        )


class PatientCertifService(ServiceBase):
    """TD0.0, closed: answered with DMPServiceClosed."""

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def identityCertification(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(
            ctx,
            cv.IDENTITY_CERTIFICATION,
            patients_specific.identity_certification,
            t.IDENTITY_CERTIFICATION,
            request,
        )


SERVICES: dict[str, type[ServiceBase]] = {
    cv.HABILITATIONS_ENDPOINT: HabilitationsService,
    cv.PATIENTS_SPECIFIC_ENDPOINT: PatientsSpecificService,
    cv.PATIENT_CERTIF_ENDPOINT: PatientCertifService,
}
