"""The DMP's HL7 V3 patient endpoints, at the DMP's own paths: GDP (`patients`: TD0.2, TD1.1-1.4)
and PDQ V3 (`patientsPDQ`: TD0.5), the SOAP binding of services/gdp.py.

Each method hands the HL7 message to its service operation (authentication is the dispatcher's,
no record-level gate first: each operation applies its own policy) and
answers under the WSDL's reply action: refusals are HL7 AE acknowledgements, not SOAP faults.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree
from spyne import AnyXml, MethodContext, ServiceBase, rpc

from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.services import gdp
from dmp_xds.services.context import Services, TransactionResult
from dmp_xds.transport.soap.call import run_call

GDP_ENDPOINT = "patients"
PDQ_ENDPOINT = "patientsPDQ"
# WS-Addressing action -> method (the dispatcher's tables, soap/service.py).
GDP_ACTIONS: dict[str, str] = {
    hv.ACTION_GET_DEMOGRAPHICS: hv.OPERATION_GET_DEMOGRAPHICS,
    hv.ACTION_GET_DEMOGRAPHICS_KIT: hv.OPERATION_GET_DEMOGRAPHICS,
    hv.ACTION_PATIENT_REVISE: hv.OPERATION_PATIENT_REVISE,
    hv.ACTION_PATIENT_ADD: hv.OPERATION_PATIENT_ADD,
}
PDQ_ACTIONS: dict[str, str] = {hv.ACTION_FIND_CANDIDATES: hv.OPERATION_FIND_CANDIDATES}
# Request element -> action, for the DMP's kit, which sends no WS-Addressing.
GDP_ROOTS: dict[str, str] = {
    f"{{{hv.NS_HL7}}}{interaction}": hv.action(interaction)
    for interaction in (hv.GET_DEMOGRAPHICS, hv.PATIENT_REVISE, hv.PATIENT_ADD)
}
PDQ_ROOTS: dict[str, str] = {f"{{{hv.NS_HL7}}}{hv.FIND_CANDIDATES}": hv.ACTION_FIND_CANDIDATES}

Operation = Callable[[Services, object | None, etree._Element], etree._Element]


def _run(ctx: MethodContext, operation: Operation, response_action: str, payload: etree._Element) -> etree._Element:
    return run_call(
        ctx,
        lambda call: TransactionResult(
            operation(call.services, call.principal, payload), response_action=response_action
        ),
    )


class GdpService(ServiceBase):
    """Gestion du dossier patient partagé (GestionDossierPatientPartage.wsdl): one method per operation."""

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def PatientGetDemographics_PRPA_IN201307UV02(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, gdp.get_demographics, hv.ACTION_DEMOGRAPHICS, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def PatientRevise_PRPA_IN201314UV02(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, gdp.revise, hv.ACTION_PATIENT_REVISE_RESPONSE, request)

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def PatientAdd_PRPA_IN201311UV02(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, gdp.patient_add, hv.ACTION_PATIENT_ADD_RESPONSE, request)


class PdqService(ServiceBase):
    """PDQ V3 supplier (PDQSupplier.wsdl): the search of a patient without INS."""

    @rpc(AnyXml, _returns=AnyXml, _body_style="bare")
    def findCandidatesQuery(ctx: MethodContext, request: etree._Element) -> etree._Element:
        return _run(ctx, gdp.find_candidates, hv.ACTION_CANDIDATES, request)
