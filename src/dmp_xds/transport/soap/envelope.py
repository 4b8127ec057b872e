"""SOAP 1.2 envelopes and WS-Addressing headers, as pure functions on lxml trees.

A SOAP 1.1 request is read too when the caller allows it (the CI-SIS profile: the DMP's own TD2.1
submission is a SOAP 1.1 envelope); responses and faults are always SOAP 1.2, as the DMP answers."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from dmp_xds.transport.soap.faults import (
    MUST_UNDERSTAND,
    VERSION_MISMATCH,
    WSA_INVALID_ADDRESSING_HEADER,
    WSA_MESSAGE_ADDRESSING_HEADER_REQUIRED,
    SoapFault,
    sender,
)
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.vocabulary import NS_SOAP11, NS_SOAP12, NS_WSA, NS_WSSE

ENVELOPE = f"{{{NS_SOAP12}}}Envelope"
HEADER = f"{{{NS_SOAP12}}}Header"
BODY = f"{{{NS_SOAP12}}}Body"
MUST_UNDERSTAND_ATTR = f"{{{NS_SOAP12}}}mustUnderstand"
SOAP11_ENVELOPE = f"{{{NS_SOAP11}}}Envelope"

# Header blocks this server processes, and so may be marked mustUnderstand.
UNDERSTOOD_HEADERS = frozenset(
    f"{{{NS_WSA}}}{name}" for name in ("Action", "MessageID", "To", "ReplyTo", "From", "FaultTo", "RelatesTo")
) | {f"{{{NS_WSSE}}}Security"}


@dataclass(frozen=True, slots=True)
class SoapRequest:
    envelope: etree._Element
    payload: etree._Element  # the single child of soap:Body
    action: str
    message_id: str | None
    to: str | None
    security: etree._Element | None  # wsse:Security, for the security layer


def _text(header: etree._Element | None, tag: str) -> str | None:
    if header is None:
        return None
    found = header.find(tag)
    if found is None:
        return None
    return (found.text or "").strip()


def action_of(hint: str) -> str:
    """The WS-Addressing action a Content-Type `action` parameter or a SOAPAction header names:
    an action itself, or one of the XDS.b WSDL operation names."""
    hint = hint.strip().strip('"').strip()
    return v.WSDL_OPERATION_ACTIONS.get(hint, hint)


def _action_without_addressing(payload: etree._Element, hint: str, roots: Mapping[str, str]) -> str:
    """The action of a request that has no wsa:Action: what its transport named, else the one
    transaction its body's root is the request of (`roots`: the endpoint's own, then XDS.b's); a
    SoapFault when neither says."""
    if hint:
        return action_of(hint)
    action = roots.get(payload.tag) or v.ROOT_ACTIONS.get(payload.tag)
    if action:
        return action
    candidates = v.AMBIGUOUS_ROOTS.get(payload.tag)
    if candidates:
        raise sender(
            f"the request names no action (no wsa:Action, no Content-Type action, no SOAPAction) and its body "
            f"{payload.tag} is the request of several transactions ({', '.join(candidates)}): name the action",
            WSA_MESSAGE_ADDRESSING_HEADER_REQUIRED,
        )
    raise sender(
        f"the request names no action (no wsa:Action, no Content-Type action, no SOAPAction) and its body "
        f"{payload.tag} is the request of no transaction this server knows",
        WSA_MESSAGE_ADDRESSING_HEADER_REQUIRED,
    )


def read_request(
    envelope: etree._Element,
    accept_soap11: bool = False,
    without_addressing: bool = False,
    action_hint: str = "",
    roots: Mapping[str, str] | None = None,
) -> SoapRequest:
    """Check a request envelope and read its addressing headers; raise SoapFault if unusable.

    `accept_soap11`: read a SOAP 1.1 envelope the same way (its own Header, Body and
    mustUnderstand); otherwise it is a VersionMismatch, as XDS.b requires SOAP 1.2.
    `without_addressing`: a request without wsa:Action is dispatched on `action_hint` (its
    Content-Type `action` or SOAPAction), else on its body's root (`roots`: request element ->
    action, the endpoint's own) — the DMP's kit sends no WS-Addressing; otherwise it is refused,
    as XDS.b requires WS-Addressing."""
    if envelope.tag == SOAP11_ENVELOPE and not accept_soap11:
        raise SoapFault(
            VERSION_MISMATCH,
            f"SOAP 1.1 envelopes are not accepted: XDS.b requires SOAP 1.2 (namespace {NS_SOAP12})",
        )
    if envelope.tag not in (ENVELOPE, SOAP11_ENVELOPE):
        raise SoapFault(VERSION_MISMATCH, f"the document element is {envelope.tag}, not a SOAP 1.2 Envelope")
    soap = NS_SOAP11 if envelope.tag == SOAP11_ENVELOPE else NS_SOAP12
    must_understand = f"{{{soap}}}mustUnderstand"
    header = envelope.find(f"{{{soap}}}Header")
    body = envelope.find(f"{{{soap}}}Body")
    if body is None:
        raise sender("the SOAP envelope has no Body")
    payload = [child for child in body if isinstance(child.tag, str)]
    if len(payload) != 1:
        raise sender(f"the SOAP Body must hold exactly one element, it holds {len(payload)}")
    if header is not None:
        for block in header:
            if not isinstance(block.tag, str):
                continue
            # Only the envelope's own attribute counts: an un-prefixed mustUnderstand (as the
            # DMP's examples put on WS-Addressing headers) is not a SOAP attribute at all.
            flag = block.get(must_understand, "false").strip()
            if flag in ("1", "true") and block.tag not in UNDERSTOOD_HEADERS:
                raise SoapFault(MUST_UNDERSTAND, f"header block {block.tag} is not understood")
    action = _text(header, f"{{{NS_WSA}}}Action")
    if not action and without_addressing:
        action = _action_without_addressing(payload[0], action_hint, roots or {})
    if not action:
        raise sender(
            "the WS-Addressing Action header is missing (XDS.b requires WS-Addressing 1.0)",
            WSA_MESSAGE_ADDRESSING_HEADER_REQUIRED,
        )
    message_id = _text(header, f"{{{NS_WSA}}}MessageID")
    if message_id is not None and not message_id:
        raise sender("the WS-Addressing MessageID header is empty", WSA_INVALID_ADDRESSING_HEADER)
    security = header.find(f"{{{NS_WSSE}}}Security") if header is not None else None
    return SoapRequest(envelope, payload[0], action, message_id, _text(header, f"{{{NS_WSA}}}To"), security)


def response_envelope(payload: etree._Element, action: str, relates_to: str | None) -> etree._Element:
    """The response envelope: WS-Addressing Action, a fresh MessageID, RelatesTo the request."""
    envelope = etree.Element(ENVELOPE, nsmap={"soapenv": NS_SOAP12, "wsa": NS_WSA})
    header = etree.SubElement(envelope, HEADER)
    action_el = etree.SubElement(header, f"{{{NS_WSA}}}Action")
    action_el.set(MUST_UNDERSTAND_ATTR, "true")
    action_el.text = action
    etree.SubElement(header, f"{{{NS_WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    if relates_to:
        etree.SubElement(header, f"{{{NS_WSA}}}RelatesTo").text = relates_to
    body = etree.SubElement(envelope, BODY)
    body.append(payload)
    return envelope
