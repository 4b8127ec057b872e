"""Request bodies for the Registry / Repository transactions and what their responses say.

Pure functions: the engine decides what to send, these build the XML and read the verdict
material (status, errors, retrieved documents) out of an answer.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

from lxml import etree

from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.xml import UnsafeXmlError, parse_bytes
from dmp_xds.xds.xop import Attachment, xop_include

NS_HL7 = "urn:hl7-org:v3"

# Transaction element of a plan → (WS-Addressing action, endpoint role, response root element).
TRANSACTIONS: dict[str, tuple[str, str, str]] = {
    "ProvideAndRegisterTransaction": (v.ACTION_ITI41, "repository", "RegistryResponse"),
    "RegisterTransaction": (v.ACTION_ITI42, "registry", "RegistryResponse"),
    "StoredQueryTransaction": (v.ACTION_ITI18, "registry", "AdhocQueryResponse"),
    "RetrieveTransaction": (v.ACTION_ITI43, "repository", "RetrieveDocumentSetResponse"),
    "MuTransaction": (v.ACTION_ITI57, "registry", "RegistryResponse"),
    "RemoveMetadataTransaction": (v.ACTION_ITI62, "registry", "RegistryResponse"),
}
SUBMISSIONS = frozenset({"ProvideAndRegisterTransaction", "RegisterTransaction", "MuTransaction"})


def local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


@dataclass(frozen=True)
class DocumentPart:
    object_id: str  # the DocumentEntry id the document belongs to (symbolic until UUIDs are assigned)
    data: bytes


def with_cda_id(cda: bytes, unique_id: str) -> bytes:
    """The CDA document with its ClinicalDocument/id set to `unique_id` (`root` or `root^extension`,
    as an XDS uniqueId writes it), so that a plan publishes an ANS example under a fresh id
    and the CI-SIS rule "the metadata uniqueId is the CDA's id" still holds."""
    try:
        root = parse_bytes(cda)
    except UnsafeXmlError as exc:
        raise ValueError(f"the document is not XML, so not a CDA whose id could be set: {exc}") from exc
    identifier = root.find(f"{{{NS_HL7}}}id")
    if local(root) != "ClinicalDocument" or identifier is None:
        raise ValueError("the document is not a CDA with a ClinicalDocument/id")
    oid, _, extension = unique_id.partition("^")
    identifier.attrib.clear()
    identifier.set("root", oid)
    if extension:
        identifier.set("extension", extension)
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def submit_objects_request(metadata: etree._Element) -> etree._Element:
    """The lcm:SubmitObjectsRequest inside a metadata file (which may be a whole PnR request)."""
    if local(metadata) == "SubmitObjectsRequest":
        return metadata
    found = [el for el in metadata.iter(tag=etree.Element) if local(el) == "SubmitObjectsRequest"]
    if not found:
        raise ValueError(f"metadata root <{local(metadata)}> holds no SubmitObjectsRequest")
    return found[0]


def document_elements(parts: list[DocumentPart]) -> list[etree._Element]:
    """One xdsb:Document per part, with its id (rewritten later if UUIDs get assigned)."""
    return [etree.Element(v.TAG_DOCUMENT, id=part.object_id) for part in parts]


def provide_and_register(
    request: etree._Element, documents: list[etree._Element], parts: list[DocumentPart], mime_types: dict[str, str]
) -> tuple[etree._Element, list[Attachment[bytes]]]:
    """An ITI-41 body (documents as xop:Include) and its MTOM attachments."""
    body = etree.Element(v.TAG_PNR_REQUEST, nsmap={"xdsb": v.NS_XDSB})
    body.append(request)
    attachments: list[Attachment[bytes]] = []
    for element, part in zip(documents, parts, strict=True):
        content_id = f"doc{len(attachments) + 1}.{uuid.uuid4().hex}@dmp-xds"
        xop_include(element, content_id)
        body.append(element)
        mime = mime_types.get(element.get("id", ""), "application/octet-stream")
        attachments.append(Attachment(content_id, mime, part.data))
    return body, attachments


def mime_types_by_id(request: etree._Element) -> dict[str, str]:
    return {
        eo.get("id", ""): eo.get("mimeType", "application/octet-stream")
        for eo in request.iter(tag=etree.Element)
        if local(eo) == "ExtrinsicObject"
    }


@dataclass(frozen=True)
class RegistryError:
    code: str
    context: str
    severity: str

    def __str__(self) -> str:
        severity = self.severity.rsplit(":", 1)[-1]
        text = f"{self.code}: {self.context}" if self.context else self.code
        return text + (" (warning)" if severity == "Warning" else "")


def response_status(body: etree._Element) -> str:
    """'Success' | 'Failure' | 'PartialSuccess' | the raw value, read from the body or its RegistryResponse."""
    status = body.get("status")
    if status is None:
        nested = [el for el in body.iter(tag=etree.Element) if local(el) == "RegistryResponse"]
        status = nested[0].get("status") if nested else None
    if status is None:
        return "(no status)"
    return status.rsplit(":", 1)[-1]


def registry_errors(body: etree._Element) -> list[RegistryError]:
    return [
        RegistryError(
            el.get("errorCode", ""), (el.get("codeContext") or (el.text or "")).strip(), el.get("severity", "")
        )
        for el in body.iter(tag=etree.Element)
        if local(el) == "RegistryError"
    ]


@dataclass(frozen=True)
class RetrievedDocument:
    repository_unique_id: str
    document_unique_id: str
    mime_type: str
    data: bytes | None
    problem: str = ""


def _text(fields: dict[str, etree._Element], name: str) -> str:
    return (fields[name].text or "").strip() if name in fields else ""


def retrieved_documents(body: etree._Element, attachments: dict[str, Attachment[bytes]]) -> list[RetrievedDocument]:
    found: list[RetrievedDocument] = []
    for response in body.iter(tag=etree.Element):
        if local(response) != "DocumentResponse":
            continue
        fields = {local(child): child for child in response}
        data: bytes | None = None
        problem = ""
        document = fields.get("Document")
        if document is None:
            problem = "DocumentResponse without a Document element"
        else:
            includes = [el for el in document if local(el) == "Include"]
            if includes:
                cid = includes[0].get("href", "").removeprefix("cid:")
                part = attachments.get(cid) or attachments.get(unquote(cid))
                if part is None:
                    problem = f"xop:Include points to part <{cid}> which is not in the response"
                else:
                    data = part.blob
            else:
                try:
                    data = base64.b64decode((document.text or "").strip(), validate=False)
                except ValueError as exc:
                    problem = f"inline Document is not base64: {exc}"
        found.append(
            RetrievedDocument(
                _text(fields, "RepositoryUniqueId"),
                _text(fields, "DocumentUniqueId"),
                _text(fields, "mimeType"),
                data,
                problem,
            )
        )
    return found


def sha1_hex(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()
