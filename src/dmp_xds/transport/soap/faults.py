"""SOAP 1.2 faults: protocol-level breakage only (not SOAP, not XML, wrong action...).

XDS rule violations are never faults: they are RegistryResponse errors (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from dmp_xds.security.errors import AuthenticationError
from dmp_xds.xds.vocabulary import NS_SOAP12, NS_WSA, NS_WSSE
from dmp_xds.xds.xop import XopError

SENDER = "Sender"
RECEIVER = "Receiver"
VERSION_MISMATCH = "VersionMismatch"
MUST_UNDERSTAND = "MustUnderstand"
DATA_ENCODING_UNKNOWN = "DataEncodingUnknown"

# WS-Addressing fault subcodes (WS-Addressing 1.0 SOAP binding, §6).
WSA_ACTION_NOT_SUPPORTED = (NS_WSA, "ActionNotSupported")
WSA_MESSAGE_ADDRESSING_HEADER_REQUIRED = (NS_WSA, "MessageAddressingHeaderRequired")
WSA_INVALID_ADDRESSING_HEADER = (NS_WSA, "InvalidAddressingHeader")
WSA_FAULT_ACTION = "http://www.w3.org/2005/08/addressing/soap/fault"

# The prefix a subcode QName is written with, by namespace (the reader resolves it either way;
# the conventional prefix makes the fault readable: wsse:FailedAuthentication, not x:...).
SUBCODE_PREFIXES = {NS_WSA: "wsa", NS_WSSE: "wsse"}


@dataclass
class SoapFault(Exception):
    """A fault to send back; `http_status` follows the SOAP 1.2 HTTP binding."""

    code: str
    reason: str
    subcode: tuple[str, str] | None = None
    http_status: int = 0

    def __post_init__(self) -> None:
        super().__init__(self.reason)
        if not self.http_status:
            self.http_status = 400 if self.code in (SENDER, VERSION_MISMATCH, MUST_UNDERSTAND) else 500


def sender(reason: str, subcode: tuple[str, str] | None = None, http_status: int = 400) -> SoapFault:
    return SoapFault(SENDER, reason, subcode, http_status)


def receiver(reason: str) -> SoapFault:
    return SoapFault(RECEIVER, reason, None, 500)


def as_fault(problem: BaseException) -> SoapFault | None:
    """The fault that a refusal raised below the transport stands for (those layers know no
    SOAP), or None when `problem` is no refusal of the request but a failure of the server."""
    if isinstance(problem, SoapFault):
        return problem
    if isinstance(problem, XopError):
        return sender(str(problem))
    if isinstance(problem, AuthenticationError):
        return refusal(problem)
    return None


def refusal(error: AuthenticationError) -> SoapFault:
    """An authentication or record-level refusal: its WS-Security fault code, HTTP 403."""
    return sender(f"access refused: {error.reason}", (NS_WSSE, error.code), http_status=403)


def render_fault(fault: SoapFault, relates_to: str | None = None) -> bytes:
    """The SOAP 1.2 envelope of a fault, with WS-Addressing headers when we know the request id."""
    nsmap = {"soapenv": NS_SOAP12, "wsa": NS_WSA}
    envelope = etree.Element(f"{{{NS_SOAP12}}}Envelope", nsmap=nsmap)
    header = etree.SubElement(envelope, f"{{{NS_SOAP12}}}Header")
    etree.SubElement(header, f"{{{NS_WSA}}}Action").text = WSA_FAULT_ACTION
    if relates_to:
        etree.SubElement(header, f"{{{NS_WSA}}}RelatesTo").text = relates_to
    body = etree.SubElement(envelope, f"{{{NS_SOAP12}}}Body")
    fault_el = etree.SubElement(body, f"{{{NS_SOAP12}}}Fault")
    code = etree.SubElement(fault_el, f"{{{NS_SOAP12}}}Code")
    etree.SubElement(code, f"{{{NS_SOAP12}}}Value").text = f"soapenv:{fault.code}"
    if fault.subcode is not None:
        namespace, local = fault.subcode
        prefix = SUBCODE_PREFIXES.get(namespace, "sub")
        sub = etree.SubElement(code, f"{{{NS_SOAP12}}}Subcode")
        value = etree.SubElement(sub, f"{{{NS_SOAP12}}}Value", nsmap={prefix: namespace})
        value.text = f"{prefix}:{local}"
    reason = etree.SubElement(fault_el, f"{{{NS_SOAP12}}}Reason")
    text = etree.SubElement(reason, f"{{{NS_SOAP12}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text.text = fault.reason
    return etree.tostring(envelope, encoding="UTF-8", xml_declaration=True)
