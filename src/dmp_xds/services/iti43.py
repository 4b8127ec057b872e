"""ITI-43 Retrieve Document Set (Document Repository).

Each found document is answered by an xdsb:DocumentResponse whose Document is an xop:Include;
the bytes are streamed from the document store by the transport (opened here: a store that
cannot give a document makes it an XDSRepositoryError). Unknown documents or repositories give
errors, and the status says whether all, some or none were found.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from lxml import etree

from dmp_xds.services.context import DocumentPart, Services, TransactionRequest, TransactionResult
from dmp_xds.services.gate import DocumentAccess
from dmp_xds.storage.blobstore import BlobStoreError
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.encode import encode_registry_response
from dmp_xds.xds.errors import ErrorCode, XdsError, error
from dmp_xds.xds.model import StoredDocument
from dmp_xds.xds.xop import new_content_id

log = logging.getLogger(__name__)


def _child_text(element: etree._Element, local: str) -> str:
    child = element.find(f"{{{v.NS_XDSB}}}{local}")
    return (child.text or "").strip() if child is not None else ""


def _sub(parent: etree._Element, local: str, text: str) -> None:
    etree.SubElement(parent, f"{{{v.NS_XDSB}}}{local}").text = text


def retrievable(
    services: Services, access: DocumentAccess, unique_ids: list[str]
) -> tuple[set[str], list[str], list[str]]:
    """The documents the caller may fetch, and the decisions to trace: refusals, and the rights
    matrix's cell of each document read. A document goes out when every document registered
    with its uniqueId is of the VIHF's patient and readable by the policy as its latest version
    stands: an older version does not outlive a masking. Any other is answered as unknown, so a
    guessed uniqueId reveals nothing; those of the VIHF's patient that the policy keeps closed
    are traced as refused, with its reason."""
    allowed: set[str] = set()
    refusals: list[str] = []
    reads: list[str] = []
    for unique_id, documents in services.registry.latest_versions_by_unique_id(unique_ids).items():
        if any(latest.patient_id != access.patient_id for latest in documents):
            continue  # registered for another patient: unknown, and nothing to tell this one about
        decisions = [access.readability(document) for document in documents]
        refused = next((d for d in decisions if not d.allowed), None)
        if refused is None:
            allowed.add(unique_id)
            reads.extend(f"retrieve {unique_id}: allowed, {d.reason}" for d in decisions[:1])
        else:
            refusals.append(f"retrieve {unique_id}: refused, {refused.reason}")
    return allowed, refusals, reads


def retrieve_document_set(services: Services, request: TransactionRequest) -> TransactionResult:
    payload = request.payload
    errors: list[XdsError] = []
    found: list[tuple[str, str, str, StoredDocument]] = []  # home, repository id, unique id, stored document
    requests = list(payload.iterchildren(v.TAG_DOCUMENT_REQUEST)) if payload.tag == v.TAG_RETRIEVE_REQUEST else []
    if payload.tag != v.TAG_RETRIEVE_REQUEST:
        errors.append(
            error(ErrorCode.REPOSITORY_ERROR, f"ITI-43 expects xdsb:RetrieveDocumentSetRequest, not {payload.tag}")
        )
    elif not requests:
        errors.append(error(ErrorCode.REPOSITORY_ERROR, "the request holds no DocumentRequest"))
    own_id = services.settings.repository_unique_id
    wanted: list[tuple[str, str, str]] = []
    for document_request in requests:
        home = _child_text(document_request, "HomeCommunityId")
        repository_id = _child_text(document_request, "RepositoryUniqueId")
        unique_id = _child_text(document_request, "DocumentUniqueId")
        if not unique_id:
            errors.append(error(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, "a DocumentRequest has no DocumentUniqueId"))
        elif repository_id != own_id:
            errors.append(
                error(
                    ErrorCode.UNKNOWN_REPOSITORY_ID,
                    f"repositoryUniqueId {repository_id or '(empty)'} is not this repository ({own_id})",
                    repository_id,
                )
            )
        else:
            wanted.append((home, repository_id, unique_id))
    stored = services.registry.get_repository_documents([u for _, _, u in wanted])
    refusals: list[str] = []
    reads: list[str] = []
    if request.access is not None:
        allowed, refusals, reads = retrievable(services, request.access, list(stored))
        stored = {u: d for u, d in stored.items() if u in allowed}
    opened: dict[str, Iterator[bytes]] = {}
    for home, repository_id, unique_id in wanted:
        if unique_id in stored:
            # Opened now, so that a store that cannot give it is an error here, not a cut answer.
            try:
                opened[unique_id] = services.blobs.read_chunks(stored[unique_id].path)
            except BlobStoreError as exc:
                log.error("ITI-43: %s", exc)
                errors.append(
                    error(
                        ErrorCode.REPOSITORY_ERROR,
                        f"document {unique_id} cannot be read from the document store now; retry later",
                        unique_id,
                    )
                )
                continue
            found.append((home, repository_id, unique_id, stored[unique_id]))
        else:
            errors.append(
                error(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, f"document {unique_id} is not in this repository", unique_id)
            )

    if not errors:
        status = v.RESPONSE_SUCCESS
    elif found:
        status = v.RESPONSE_PARTIAL_SUCCESS
    else:
        status = v.RESPONSE_FAILURE
    response = etree.Element(v.TAG_RETRIEVE_RESPONSE, nsmap={"xdsb": v.NS_XDSB, "rs": v.NS_RS, "xop": v.NS_XOP})
    encode_registry_response(status, errors, parent=response)
    parts: list[DocumentPart] = []
    for home, repository_id, unique_id, document in found:
        element = etree.SubElement(response, v.TAG_DOCUMENT_RESPONSE)
        if home:
            _sub(element, "HomeCommunityId", home)
        _sub(element, "RepositoryUniqueId", repository_id)
        _sub(element, "DocumentUniqueId", unique_id)
        _sub(element, "mimeType", document.mime_type)
        content_id = new_content_id()
        etree.SubElement(etree.SubElement(element, v.TAG_DOCUMENT), v.TAG_XOP_INCLUDE, href=f"cid:{content_id}")
        parts.append(DocumentPart(content_id, document.mime_type, document.size, opened[unique_id]))
    # The answer is the same as for unknown documents; the trace tells the refusal (denied when
    # nothing went out), and lists only the documents sent.
    return TransactionResult(
        response,
        parts,
        touched=tuple(unique_id for _, _, unique_id, _ in found),
        decisions=(*refusals, *reads),
        denied=bool(refusals) and not found,
    )
