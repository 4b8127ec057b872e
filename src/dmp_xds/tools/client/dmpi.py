"""The LPS's calls to the DMP's services that are not XDS: the patient services (HL7 V3: TD0.2,
TD1.1-1.4, TD0.5) and the CXF-style ones (habilitations: TD0.3, TD1.6; patientsSpecific: TD0.4,
TD1.5x), each a SOAP 1.2 request with WS-Addressing and the caller's VIHF, over TLS with the
caller's certificate, to a sub-path of the DMP's base URL (`…/si-dmp-server/v2/services/`).

The messages come from dmp/hl7v3/request.py and dmp/cxf_messages.py; this module only carries
them, and says in one line why a call got no answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from dmp_xds.dmp import cxf_messages as cm
from dmp_xds.dmp import cxf_vocabulary as cv
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.dmp.hl7v3.request import Answer, read_answer
from dmp_xds.tools.client.lps import DMPI_SERVICES_PATH, Caller
from dmp_xds.tools.conformance.transport import SoapClient, TransportError

PATIENTS = "patients"  # GDP: TD0.2, TD1.1-1.4
PATIENTS_PDQ = "patientsPDQ"  # TD0.5


class DmpiCallError(Exception):
    """No answer to read: the server unreachable, TLS refused, a SOAP Fault, an answer of
    another kind. The message is the one line the user sees."""


def services_base(url: str) -> str:
    """The DMP's base URL from `--url`: a DMP base as is, a server (`https://host:port`) + the
    DMP's path."""
    base = url.rstrip("/")
    return base if base.endswith(DMPI_SERVICES_PATH) else base + DMPI_SERVICES_PATH


def cxf_service(operation: str) -> str:
    return next(endpoint for endpoint, operations in cv.ENDPOINT_OPERATIONS.items() if operation in operations)


@dataclass
class DmpiClient:
    base: str  # the DMP's base URL
    caller: Caller
    timeout: float = 30.0

    def __post_init__(self) -> None:
        self.base = services_base(self.base)
        self.soap = SoapClient(self.timeout, verify=self.caller.verify)

    def call(self, service: str, action: str, body: etree._Element, patient: str) -> etree._Element:
        """The answer's body element; DmpiCallError when there is none."""
        credentials = self.caller.credentials(patient)
        url = f"{self.base}/{service}"
        try:
            exchange = self.soap.call(
                url, action, body, security=credentials.security, certificate=credentials.certificate
            )
        except TransportError as exc:
            raise DmpiCallError(exc.reason) from exc
        if exchange.fault is not None:
            raise DmpiCallError(f"the DMP refused the request (SOAP Fault): {exchange.fault}")
        if exchange.body is None:
            raise DmpiCallError(f"{url} answered no SOAP body (HTTP {exchange.http_status})")
        return exchange.body

    def hl7(self, service: str, action: str, message: etree._Element, patient: str) -> Answer:
        body = self.call(service, action, message, patient)
        try:
            return read_answer(body)
        except ValueError as exc:
            raise DmpiCallError(str(exc)) from exc

    def patients(self, message: etree._Element, patient: str) -> Answer:
        """A GDP request (PRPA_IN201307, 201311 or 201314UV02) under its action."""
        return self.hl7(PATIENTS, hv.action(etree.QName(message).localname), message, patient)

    def find_candidates(self, message: etree._Element, patient: str) -> Answer:
        return self.hl7(PATIENTS_PDQ, hv.ACTION_FIND_CANDIDATES, message, patient)

    def cxf(self, operation: str, values: list[tuple[str, str]], patient: str) -> cm.Output:
        body = self.call(cxf_service(operation), cv.action(operation), cm.request(operation, values), patient)
        try:
            return cm.read_output(body)
        except ValueError as exc:
            raise DmpiCallError(str(exc)) from exc
