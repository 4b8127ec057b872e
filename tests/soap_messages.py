"""Builders of raw XDS.b SOAP requests (plain and MTOM), for tests that bypass the client."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass

from lxml import etree

from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.encode import encode_submit_objects_request
from dmp_xds.xds.model import Submission

SOAP12 = "application/soap+xml"


@dataclass
class HttpRequest:
    body: bytes
    content_type: str
    message_id: str


def envelope(action: str, payload: etree._Element, message_id: str | None = None, to: str = "") -> tuple[bytes, str]:
    message_id = message_id or f"urn:uuid:{uuid.uuid4()}"
    env = etree.Element(f"{{{v.NS_SOAP12}}}Envelope", nsmap={"soapenv": v.NS_SOAP12, "wsa": v.NS_WSA})
    header = etree.SubElement(env, f"{{{v.NS_SOAP12}}}Header")
    action_el = etree.SubElement(header, f"{{{v.NS_WSA}}}Action")
    action_el.set(f"{{{v.NS_SOAP12}}}mustUnderstand", "1")
    action_el.text = action
    etree.SubElement(header, f"{{{v.NS_WSA}}}MessageID").text = message_id
    if to:
        etree.SubElement(header, f"{{{v.NS_WSA}}}To").text = to
    etree.SubElement(env, f"{{{v.NS_SOAP12}}}Body").append(payload)
    return etree.tostring(env, encoding="UTF-8", xml_declaration=True), message_id


def pnr_payload(
    submission: Submission, documents: dict[str, bytes], mtom: bool
) -> tuple[etree._Element, dict[str, bytes]]:
    """ProvideAndRegisterDocumentSetRequest; with MTOM, documents become xop:Include parts."""
    request = etree.Element(f"{{{v.NS_XDSB}}}ProvideAndRegisterDocumentSetRequest", nsmap={"xdsb": v.NS_XDSB})
    request.append(encode_submit_objects_request(submission))
    parts: dict[str, bytes] = {}
    for document_id, data in documents.items():
        doc = etree.SubElement(request, f"{{{v.NS_XDSB}}}Document", id=document_id)
        if mtom:
            cid = f"{uuid.uuid4().hex}@example.org"
            etree.SubElement(doc, f"{{{v.NS_XOP}}}Include", href=f"cid:{cid}")
            parts[cid] = data
        else:
            doc.text = base64.b64encode(data).decode("ascii")
    return request, parts


def dmp_soap11_envelope(action: str, payload: etree._Element) -> tuple[bytes, str]:
    """A SOAP 1.1 request shaped like the DMP's TD2.1 example: soap11:mustUnderstand="1" on the
    Action, an empty To and a ReplyTo with un-prefixed mustUnderstand."""
    message_id = f"urn:uuid:{uuid.uuid4()}"
    env = etree.Element(f"{{{v.NS_SOAP11}}}Envelope", nsmap={"soap": v.NS_SOAP11, "wsa": v.NS_WSA})
    header = etree.SubElement(env, f"{{{v.NS_SOAP11}}}Header")
    action_el = etree.SubElement(header, f"{{{v.NS_WSA}}}Action")
    action_el.set(f"{{{v.NS_SOAP11}}}mustUnderstand", "1")
    action_el.text = action
    etree.SubElement(header, f"{{{v.NS_WSA}}}MessageID").text = message_id
    etree.SubElement(header, f"{{{v.NS_WSA}}}To", mustUnderstand="true")
    reply_to = etree.SubElement(header, f"{{{v.NS_WSA}}}ReplyTo", mustUnderstand="true")
    etree.SubElement(reply_to, f"{{{v.NS_WSA}}}Address").text = "http://www.w3.org/2005/08/addressing/anonymous"
    etree.SubElement(env, f"{{{v.NS_SOAP11}}}Body").append(payload)
    return etree.tostring(env, encoding="UTF-8", xml_declaration=True), message_id


def dmp_mtom_body(envelope_bytes: bytes, parts: dict[str, bytes], action: str = "") -> tuple[bytes, str]:
    """MTOM as the DMP's TD2.1 example packs it: the root part may name an `action` (the WSDL
    operation), the documents are `text/xml; charset=Cp1252` parts."""
    boundary = f"----=_Part_{uuid.uuid4().hex}"
    named = f'; action="{action}"' if action else ""
    chunks = [
        f'--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"{named}\r\n'
        f"Content-Transfer-Encoding: 8bit\r\nContent-ID: <rootpart@example.org>\r\n\r\n".encode(),
        envelope_bytes,
    ]
    for cid, data in parts.items():
        chunks.append(
            f"\r\n--{boundary}\r\nContent-Type: text/xml; charset=Cp1252; name={cid}\r\n"
            f"Content-Transfer-Encoding: binary\r\nContent-ID: <{cid}>\r\n\r\n".encode()
        )
        chunks.append(data)
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    content_type = (
        f'multipart/related; type="application/xop+xml"; start="<rootpart@example.org>"; '
        f'start-info="application/soap+xml"; boundary="{boundary}"'
    )
    return b"".join(chunks), content_type


def mtom_body(
    envelope_bytes: bytes, parts: dict[str, bytes], boundary: str | None = None, root_type: str = SOAP12
) -> tuple[bytes, str]:
    boundary = boundary or f"uuid:{uuid.uuid4()}"
    root_cid = f"root.{uuid.uuid4().hex}@example.org"
    chunks = [
        f'--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type="{root_type}"\r\n'
        f"Content-Transfer-Encoding: binary\r\nContent-ID: <{root_cid}>\r\n\r\n".encode(),
        envelope_bytes,
    ]
    for cid, data in parts.items():
        chunks.append(
            f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Transfer-Encoding: binary\r\nContent-ID: <{cid}>\r\n\r\n".encode()
        )
        chunks.append(data)
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
        f'start="<{root_cid}>"; start-info="{root_type}"'
    )
    return b"".join(chunks), content_type


def provide_and_register(submission: Submission, documents: dict[str, bytes], mtom: bool = True) -> HttpRequest:
    payload, parts = pnr_payload(submission, documents, mtom)
    env, message_id = envelope(v.ACTION_ITI41, payload)
    if not mtom:
        return HttpRequest(env, SOAP12, message_id)
    body, content_type = mtom_body(env, parts)
    return HttpRequest(body, content_type, message_id)


def register(submission: Submission) -> HttpRequest:
    env, message_id = envelope(v.ACTION_ITI42, encode_submit_objects_request(submission))
    return HttpRequest(env, SOAP12, message_id)


def retrieve(requests: list[tuple[str, str]]) -> HttpRequest:
    payload = etree.Element(f"{{{v.NS_XDSB}}}RetrieveDocumentSetRequest", nsmap={"xdsb": v.NS_XDSB})
    for repository_id, unique_id in requests:
        doc = etree.SubElement(payload, f"{{{v.NS_XDSB}}}DocumentRequest")
        etree.SubElement(doc, f"{{{v.NS_XDSB}}}RepositoryUniqueId").text = repository_id
        etree.SubElement(doc, f"{{{v.NS_XDSB}}}DocumentUniqueId").text = unique_id
    env, message_id = envelope(v.ACTION_ITI43, payload)
    return HttpRequest(env, SOAP12, message_id)


@dataclass
class SoapResponse:
    status_code: int
    envelope: etree._Element
    parts: dict[str, bytes]
    mtom: bool

    @property
    def payload(self) -> etree._Element:
        return self.envelope.find(f"{{{v.NS_SOAP12}}}Body")[0]

    def header(self, local: str) -> str | None:
        found = self.envelope.find(f"{{{v.NS_SOAP12}}}Header/{{{v.NS_WSA}}}{local}")
        return None if found is None else found.text

    @property
    def registry_response(self) -> etree._Element:
        payload = self.payload
        # An AdhocQueryResponse is a RegistryResponse itself (status, RegistryErrorList).
        if payload.tag in (f"{{{v.NS_RS}}}RegistryResponse", v.TAG_ADHOC_QUERY_RESPONSE):
            return payload
        return payload.find(f"{{{v.NS_RS}}}RegistryResponse")

    @property
    def status(self) -> str:
        return self.registry_response.get("status", "").rsplit(":", 1)[-1]

    @property
    def error_codes(self) -> list[str]:
        return [e.get("errorCode", "") for e in self.registry_response.iter(f"{{{v.NS_RS}}}RegistryError")]

    @property
    def fault_reason(self) -> str | None:
        fault = self.payload if self.payload.tag == f"{{{v.NS_SOAP12}}}Fault" else None
        if fault is None:
            return None
        return fault.findtext(f"{{{v.NS_SOAP12}}}Reason/{{{v.NS_SOAP12}}}Text")

    @property
    def fault_code(self) -> str | None:
        if self.payload.tag != f"{{{v.NS_SOAP12}}}Fault":
            return None
        return self.payload.findtext(f"{{{v.NS_SOAP12}}}Code/{{{v.NS_SOAP12}}}Value")


def parse_response(status_code: int, content_type: str, body: bytes) -> SoapResponse:
    """Split an MTOM response with the standard library's MIME parser (test side only)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    if not content_type.startswith("multipart/related"):
        return SoapResponse(status_code, etree.fromstring(body), {}, mtom=False)
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    parts = list(message.iter_parts())
    root = etree.fromstring(parts[0].get_payload(decode=True))
    attachments = {p["Content-ID"].strip("<>"): p.get_payload(decode=True) for p in parts[1:]}
    return SoapResponse(status_code, root, attachments, mtom=True)


def document_bytes(response: SoapResponse) -> dict[str, bytes]:
    """ITI-43: document uniqueId → bytes, following each xop:Include to its part."""
    out: dict[str, bytes] = {}
    for doc in response.payload.iter(f"{{{v.NS_XDSB}}}DocumentResponse"):
        unique_id = doc.findtext(f"{{{v.NS_XDSB}}}DocumentUniqueId")
        include = doc.find(f"{{{v.NS_XDSB}}}Document/{{{v.NS_XOP}}}Include")
        out[unique_id] = response.parts[include.get("href")[4:]]
    return out


def adhoc_query_payload(
    query_id: str,
    params: dict[str, list[str] | list[list[str]]] | list[tuple[str, list[str]]],
    return_type: str = "LeafClass",
    home: str | None = None,
) -> etree._Element:
    """query:AdhocQueryRequest. `params` maps a slot name to its rim:Values (a list of lists
    gives several slots of that name); values are written as given (quote them yourself)."""
    request = etree.Element(f"{{{v.NS_QUERY}}}AdhocQueryRequest", nsmap={"query": v.NS_QUERY, "rim": v.NS_RIM})
    etree.SubElement(request, f"{{{v.NS_QUERY}}}ResponseOption", returnComposedObjects="true", returnType=return_type)
    query = etree.SubElement(request, f"{{{v.NS_RIM}}}AdhocQuery", id=query_id)
    if home is not None:
        query.set("home", home)
    items = params.items() if isinstance(params, dict) else params
    for name, values in items:
        slots = values if values and isinstance(values[0], list) else [values]
        for slot_values in slots:
            value_list = etree.SubElement(
                etree.SubElement(query, f"{{{v.NS_RIM}}}Slot", name=name), f"{{{v.NS_RIM}}}ValueList"
            )
            for value in slot_values:
                etree.SubElement(value_list, f"{{{v.NS_RIM}}}Value").text = value
    return request


def adhoc_query(
    query_id: str,
    params: dict[str, list[str] | list[list[str]]] | list[tuple[str, list[str]]],
    return_type: str = "LeafClass",
    home: str | None = None,
) -> HttpRequest:
    env, message_id = envelope(v.ACTION_ITI18, adhoc_query_payload(query_id, params, return_type, home))
    return HttpRequest(env, SOAP12, message_id)


def update(submission: Submission) -> HttpRequest:
    """An ITI-57 Update Document Set request (SOAP 1.2, no MTOM)."""
    env, message_id = envelope(v.ACTION_ITI57, encode_submit_objects_request(submission))
    return HttpRequest(env, SOAP12, message_id)


def delete_document_set(ids: list[str]) -> HttpRequest:
    """An ITI-62 Delete Document Set request: RemoveObjectsRequest with an ObjectRefList."""
    payload = etree.Element(v.TAG_REMOVE_OBJECTS_REQUEST, nsmap={"lcm": v.NS_LCM, "rim": v.NS_RIM})
    refs = etree.SubElement(payload, v.TAG_OBJECT_REF_LIST)
    for entry_uuid in ids:
        etree.SubElement(refs, v.TAG_OBJECT_REF, id=entry_uuid)
    env, message_id = envelope(v.ACTION_ITI62, payload)
    return HttpRequest(env, SOAP12, message_id)
