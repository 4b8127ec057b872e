"""The reference XDS.b client: zeep, driven by this project's own WSDLs.

zeep builds every message from the WSDL (SOAP 1.2 envelope, `Content-Type` with the SOAP 1.2
action, WS-Addressing `Action`/`MessageID`/`To`), and its transport posts it. One thing zeep
cannot do is model ebRIM content: `rim:RegistryObjectList` is a list of the substitution group
`rim:Identifiable` (ExtrinsicObject, RegistryPackage, Classification...), which zeep does not
support. So the caller's lxml payload (`lcm:SubmitObjectsRequest`, `query:AdhocQueryRequest`...)
is put in place of the minimal one zeep rendered, in `XdsTransport.post_xml`, the hook zeep
documents for customising serialization. The same hook sends ITI-41 documents as MTOM/XOP parts.

Responses are read here rather than by zeep's deserializer, because callers want the ebRIM
elements themselves: MTOM is read with the server's own codec (transport/soap/mtom.py), the root
part parsed with the project's secure parser, and `xop:Include` references are resolved to the
exact bytes of their parts.
"""

from __future__ import annotations

import base64
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import requests
import zeep
from lxml import etree
from zeep.exceptions import Fault, TransportError
from zeep.utils import get_media_type

from dmp_xds.config import resource_dir
from dmp_xds.tools.client.lps import Caller
from dmp_xds.transport.soap.mtom import MtomError, decode_mtom
from dmp_xds.transport.soap.mtom import encode_mtom as encode_mtom_parts
from dmp_xds.xds.vocabulary import (
    NS_SOAP12,
    NS_XDSB,
    TAG_ADHOC_QUERY_REQUEST,
    TAG_ADHOC_QUERY_RESPONSE,
    TAG_DOCUMENT,
    TAG_DOCUMENT_RESPONSE,
    TAG_DOCUMENT_UNIQUE_ID,
    TAG_REGISTRY_RESPONSE,
    TAG_REMOVE_OBJECTS_REQUEST,
    TAG_RETRIEVE_RESPONSE,
    TAG_SUBMIT_OBJECTS_REQUEST,
    TAG_XOP_INCLUDE,
)
from dmp_xds.xds.xml import UnsafeXmlError, parse_bytes
from dmp_xds.xds.xop import Attachment, normalize_content_id, xop_include

REPOSITORY_WSDL_FILE = "XDS.b_DocumentRepository.wsdl"  # in the wsdl/ folder
REGISTRY_WSDL_FILE = "XDS.b_DocumentRegistry.wsdl"

REPOSITORY_BINDING = f"{{{NS_XDSB}}}DocumentRepository_Binding_Soap12"
REGISTRY_BINDING = f"{{{NS_XDSB}}}DocumentRegistry_Binding_Soap12"

OP_ITI41 = "DocumentRepository_ProvideAndRegisterDocumentSet-b"
OP_ITI43 = "DocumentRepository_RetrieveDocumentSet"
OP_ITI42 = "DocumentRegistry_RegisterDocumentSet-b"
OP_ITI18 = "DocumentRegistry_RegistryStoredQuery"
OP_ITI57 = "DocumentRegistry_UpdateDocumentSet"
OP_ITI62 = "DocumentRegistry_DeleteDocumentSet"

_SOAP_BODY = f"{{{NS_SOAP12}}}Body"
_SOAP_HEADER = f"{{{NS_SOAP12}}}Header"
_SOAP_FAULT = f"{{{NS_SOAP12}}}Fault"


class XdsClientError(Exception):
    """The server answered something that is not the response the transaction defines."""


# --- outgoing messages ----------------------------------------------------------------------


@dataclass(slots=True)
class _Outgoing:
    """What the current call adds to the envelope zeep built."""

    payload: etree._Element | None = None  # replaces the body element with the same tag
    documents: dict[str, bytes] = field(default_factory=dict)  # xdsb:Document@id -> bytes (MTOM)
    security: etree._Element | None = None  # a wsse:Security header (the VIHF), for a secured server


# A context variable rather than transport state, so that one client may serve several threads.
_OUTGOING: ContextVar[_Outgoing | None] = ContextVar("dmp_xds_client_outgoing", default=None)


def substitute_payload(envelope: etree._Element, payload: etree._Element) -> None:
    """Put `payload` in place of the element of the same name that zeep rendered in the Body."""
    body = envelope.find(_SOAP_BODY)
    if body is None:
        raise ValueError("the envelope has no SOAP 1.2 Body")
    if body.tag == payload.tag:  # pragma: no cover - a Body is never a payload
        raise ValueError("cannot substitute the Body itself")
    placeholder = next(body.iter(payload.tag), None)
    if placeholder is None:
        raise ValueError(f"no {payload.tag} in the message zeep built")
    placeholder.getparent().replace(placeholder, _copy(payload))


def add_security_header(envelope: etree._Element, security: etree._Element) -> None:
    """Put the wsse:Security header (holding the VIHF) in the envelope's SOAP 1.2 Header."""
    header = envelope.find(_SOAP_HEADER)
    if header is None:
        header = etree.Element(_SOAP_HEADER)
        envelope.insert(0, header)
    header.append(_copy(security))


def _copy(element: etree._Element) -> etree._Element:
    # A deep copy keeps the caller's tree untouched (and detached from whatever parent it has).
    return etree.fromstring(etree.tostring(element))


@dataclass(frozen=True, slots=True)
class MtomMessage:
    content_type: str
    body: bytes


def encode_mtom(envelope: etree._Element, documents: dict[str, bytes], action: str | None) -> MtomMessage:
    """Replace the content of each `xdsb:Document` named in `documents` by an `xop:Include` and
    lay the message out as `multipart/related` (MTOM), one binary part per document."""
    parts: list[Attachment[bytes]] = []
    for element in envelope.iter(TAG_DOCUMENT):
        document_id = element.get("id")
        if document_id is None or document_id not in documents:
            continue
        cid = f"{len(parts) + 1}.{uuid.uuid4().hex}@dmp-xds-client"
        element.text = None
        for child in list(element):
            element.remove(child)
        xop_include(element, cid)
        parts.append(Attachment(cid, "application/octet-stream", documents[document_id]))
    missing = set(documents) - {e.get("id") for e in envelope.iter(TAG_DOCUMENT)}
    if missing:
        raise ValueError(f"no xdsb:Document element for {sorted(missing)}")
    message = encode_mtom_parts(etree.tostring(envelope, encoding="UTF-8", xml_declaration=True), parts, action)
    body = message.in_memory()
    assert body is not None  # every part is in memory
    return MtomMessage(message.content_type, body)


def _media_type_param(content_type: str, name: str) -> str | None:
    message = Message()
    message["content-type"] = content_type
    value = message.get_param(name)
    return value if isinstance(value, str) else None


class XdsTransport(zeep.Transport):
    """zeep's transport, plus the payload substitution and MTOM encoding of `_Outgoing`.

    `verify`, when set, is the CA bundle the server's certificate must chain to; it is given with
    each request because a session's `verify` loses to `REQUESTS_CA_BUNDLE` in requests."""

    verify: str | None = None

    def post(self, address: str, message: bytes | str, headers: dict[str, str]) -> requests.Response:
        if self.verify is None:
            return super().post(address, message, headers)
        return self.session.post(
            address, data=message, headers=headers, timeout=self.operation_timeout, verify=self.verify
        )

    def post_xml(self, address: str, envelope: etree._Element, headers: dict[str, str]) -> requests.Response:
        outgoing = _OUTGOING.get()
        if outgoing is None:
            return super().post_xml(address, envelope, headers)
        if outgoing.payload is not None:
            substitute_payload(envelope, outgoing.payload)
        if outgoing.security is not None:
            add_security_header(envelope, outgoing.security)
        if not outgoing.documents:
            return super().post_xml(address, envelope, headers)
        action = _media_type_param(headers.get("Content-Type", ""), "action")
        message = encode_mtom(envelope, outgoing.documents, action)
        return self.post(address, message.body, {**headers, "Content-Type": message.content_type})


# --- incoming messages ----------------------------------------------------------------------


@dataclass(slots=True)
class Reply:
    envelope: etree._Element
    payload: etree._Element  # the first element of the Body
    attachments: dict[str, bytes]  # Content-ID (without <>) -> bytes


def read_reply(status_code: int, content_type: str, content: bytes) -> Reply:
    """Parse a SOAP 1.2 response, plain or MTOM; raise zeep's Fault / TransportError."""
    attachments: dict[str, bytes] = {}
    root = content
    if get_media_type(content_type) == "multipart/related":
        try:
            message = decode_mtom(content, content_type)
        except MtomError as exc:
            raise TransportError(f"unreadable MTOM response: {exc}", status_code, content) from exc
        root = message.root
        attachments = {cid: part.blob for cid, part in message.attachments.items()}
    try:
        envelope = parse_bytes(root)
    except UnsafeXmlError as exc:
        raise TransportError(f"HTTP {status_code}: not a SOAP message ({exc})", status_code, content) from exc
    body = envelope.find(_SOAP_BODY)
    if body is None or len(body) == 0:
        raise TransportError(f"HTTP {status_code}: SOAP message without a Body", status_code, content)
    payload = body[0]
    if payload.tag == _SOAP_FAULT:
        raise _fault(payload)
    if status_code != 200:
        raise TransportError(f"HTTP {status_code}", status_code, content)
    return Reply(envelope, payload, attachments)


def _fault(element: etree._Element) -> Fault:
    ns = {"env": NS_SOAP12}
    reason = element.findtext("env:Reason/env:Text", default="", namespaces=ns)
    code = element.findtext("env:Code/env:Value", default=None, namespaces=ns)
    subcodes = [s.strip() for s in element.xpath(".//env:Subcode/env:Value/text()", namespaces=ns)]
    return Fault(reason, code=code, detail=element.find("env:Detail", ns), subcodes=subcodes or None)


def _expect(reply: Reply, tag: str) -> etree._Element:
    if reply.payload.tag != tag:
        raise XdsClientError(f"expected {tag} in the response, got {reply.payload.tag}")
    return reply.payload


def document_bytes(response: etree._Element, attachments: dict[str, bytes]) -> dict[str, bytes]:
    """Bytes of each `xdsb:DocumentResponse` of an ITI-43 response, by document uniqueId."""
    documents: dict[str, bytes] = {}
    for document_response in response.iter(TAG_DOCUMENT_RESPONSE):
        unique_id = (document_response.findtext(TAG_DOCUMENT_UNIQUE_ID) or "").strip()
        document = document_response.find(TAG_DOCUMENT)
        if document is None:
            raise XdsClientError(f"DocumentResponse {unique_id!r} without a Document")
        include = document.find(TAG_XOP_INCLUDE)
        if include is not None:
            cid = normalize_content_id(include.get("href", ""))
            if cid not in attachments:
                raise XdsClientError(f"Document {unique_id!r} refers to a missing MTOM part {cid!r}")
            documents[unique_id] = attachments[cid]
        else:  # inline base64, which a non-MTOM repository may send
            documents[unique_id] = base64.b64decode("".join((document.text or "").split()))
    return documents


# --- the client -----------------------------------------------------------------------------


class XdsClient:
    """Document Source / Consumer side of XDS.b, for one registry and one repository.

    With a `caller` (a secured server, the DMP), every call goes over TLS with the caller's
    certificate and carries its VIHF about the call's `patient_id`. `verify`: the CA bundle the
    server's certificate must chain to (default: requests' own)."""

    def __init__(
        self,
        registry_url: str,
        repository_url: str,
        timeout: float = 30,
        caller: Caller | None = None,
        verify: str | None = None,
    ) -> None:
        self.caller = caller
        self.transport = XdsTransport(timeout=timeout, operation_timeout=timeout)
        self.transport.verify = verify
        # raw_response: zeep posts and hands back the HTTP response; `read_reply` parses it.
        # zeep adds the WS-Addressing headers itself for operations with a wsaw:Action, so no
        # WsAddressingPlugin is configured (it would add them twice).
        settings = zeep.Settings(raw_response=True, strict=True)
        wsdl = resource_dir("wsdl")
        self.registry = zeep.Client(str(wsdl / REGISTRY_WSDL_FILE), transport=self.transport, settings=settings)
        self.repository = zeep.Client(str(wsdl / REPOSITORY_WSDL_FILE), transport=self.transport, settings=settings)
        self._registry_service = self.registry.create_service(REGISTRY_BINDING, registry_url)
        self._repository_service = self.repository.create_service(REPOSITORY_BINDING, repository_url)

    def _call(
        self, service: Any, operation: str, outgoing: _Outgoing | None, patient_id: str = "", **arguments: Any
    ) -> Reply:
        if self.caller is not None:
            credentials = self.caller.credentials(patient_id)
            outgoing = outgoing or _Outgoing()
            outgoing.security = credentials.security
            # One certificate per client: a CLI call acts as one identity from start to end.
            self.transport.session.cert = credentials.certificate
        token = _OUTGOING.set(outgoing)
        try:
            response: requests.Response = service[operation](**arguments)
        finally:
            _OUTGOING.reset(token)
        return read_reply(response.status_code, response.headers.get("Content-Type", ""), response.content)

    # ITI-41
    def provide_and_register(
        self, submission_xml: etree._Element, documents: dict[str, bytes], patient_id: str = ""
    ) -> etree._Element:
        """Send an `lcm:SubmitObjectsRequest` and the documents (by DocumentEntry id) as MTOM;
        return the `rs:RegistryResponse`."""
        _require(submission_xml, TAG_SUBMIT_OBJECTS_REQUEST)
        # zeep renders each Document with its id; the bytes travel as MTOM parts, not base64.
        placeholders = [{"id": document_id, "_value_1": b""} for document_id in documents]
        reply = self._call(
            self._repository_service,
            OP_ITI41,
            _Outgoing(submission_xml, dict(documents)),
            patient_id,
            SubmitObjectsRequest={"RegistryObjectList": {}},
            Document=placeholders,
        )
        return _expect(reply, TAG_REGISTRY_RESPONSE)

    # ITI-42
    def register(self, submission_xml: etree._Element, patient_id: str = "") -> etree._Element:
        _require(submission_xml, TAG_SUBMIT_OBJECTS_REQUEST)
        reply = self._call(
            self._registry_service, OP_ITI42, _Outgoing(submission_xml), patient_id, RegistryObjectList={}
        )
        return _expect(reply, TAG_REGISTRY_RESPONSE)

    # ITI-57
    def update(self, submission_xml: etree._Element, patient_id: str = "") -> etree._Element:
        _require(submission_xml, TAG_SUBMIT_OBJECTS_REQUEST)
        reply = self._call(
            self._registry_service, OP_ITI57, _Outgoing(submission_xml), patient_id, RegistryObjectList={}
        )
        return _expect(reply, TAG_REGISTRY_RESPONSE)

    # ITI-62
    def delete(self, remove_objects_request: etree._Element, patient_id: str = "") -> etree._Element:
        _require(remove_objects_request, TAG_REMOVE_OBJECTS_REQUEST)
        reply = self._call(self._registry_service, OP_ITI62, _Outgoing(remove_objects_request), patient_id)
        return _expect(reply, TAG_REGISTRY_RESPONSE)

    # ITI-18
    def stored_query(self, adhoc_query_request_xml: etree._Element, patient_id: str = "") -> etree._Element:
        """Send a `query:AdhocQueryRequest`; return the `query:AdhocQueryResponse`."""
        _require(adhoc_query_request_xml, TAG_ADHOC_QUERY_REQUEST)
        reply = self._call(
            self._registry_service,
            OP_ITI18,
            _Outgoing(adhoc_query_request_xml),
            patient_id,
            ResponseOption={"returnType": "ObjectRef"},
            AdhocQuery={"id": "urn:uuid:placeholder"},
        )
        return _expect(reply, TAG_ADHOC_QUERY_RESPONSE)

    # ITI-43
    def retrieve(
        self, requests_: list[tuple[str, str]], patient_id: str = ""
    ) -> tuple[etree._Element, dict[str, bytes]]:
        """Retrieve documents by (repositoryUniqueId, documentUniqueId); return the
        `xdsb:RetrieveDocumentSetResponse` (its `xop:Include`s left in place) and the bytes of
        each returned document by uniqueId."""
        if not requests_:
            raise ValueError("nothing to retrieve")
        reply = self._call(
            self._repository_service,
            OP_ITI43,
            None,
            patient_id,
            DocumentRequest=[
                {"RepositoryUniqueId": repository_id, "DocumentUniqueId": document_id}
                for repository_id, document_id in requests_
            ],
        )
        response = _expect(reply, TAG_RETRIEVE_RESPONSE)
        return response, document_bytes(response, reply.attachments)


def _require(element: etree._Element, tag: str) -> None:
    if not isinstance(element, etree._Element) or element.tag != tag:
        found = getattr(element, "tag", type(element).__name__)
        raise ValueError(f"expected a {tag} element, got {found}")
