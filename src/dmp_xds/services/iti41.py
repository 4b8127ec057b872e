"""ITI-41 Provide and Register Document Set-b (Document Repository).

The repository writes each document (hash and size computed while writing), checks what the
source said of them, fills hash, size and repositoryUniqueId, and registers the metadata in the
same database transaction as its own rows. Once every check has passed, the files are made
durable under their final names, then the transaction runs; if it does not commit, the files
are removed: a rejected submission leaves no file and no row, and a document is retrievable
only through its committed row.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass

from lxml import etree

from dmp_xds.dmp.submission_signature import is_signature_entry, signature_errors
from dmp_xds.dmp.validation.cda import CDA_MIME_TYPE
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.vihf import Principal
from dmp_xds.services.context import Services, TransactionRequest, TransactionResult
from dmp_xds.services.register import (
    STORE_ATTEMPTS,
    StoreRaced,
    actor_of,
    check_submission,
    store_submission,
    unexplained_conflict,
)
from dmp_xds.services.rights import submission_result
from dmp_xds.storage.blobstore import BlobStoreError, TempBlob
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.decode import EbrimDecodeError, decode_submit_objects_request
from dmp_xds.xds.errors import ErrorCode, XdsError, error
from dmp_xds.xds.model import DocumentEntry, StoredDocument, Submission
from dmp_xds.xds.registry.rules import RegistrySnapshot
from dmp_xds.xds.validation.xds import Transaction
from dmp_xds.xds.xop import xop_reference

log = logging.getLogger(__name__)


@dataclass
class _ReceivedDocument:
    document_id: str
    blob: TempBlob
    owned: bool  # written here from inline base64 (so removed here), not an MTOM attachment


def _repo_error(context: str, location: str = "") -> XdsError:
    return error(ErrorCode.REPOSITORY_METADATA_ERROR, context, location)


def _read_documents(
    services: Services, request: TransactionRequest
) -> tuple[list[_ReceivedDocument], set[str], list[XdsError]]:
    """The documents of the message, the ids of those already reported unusable, and the errors."""
    received: list[_ReceivedDocument] = []
    unusable: set[str] = set()
    errors: list[XdsError] = []
    part_users: dict[str, str] = {}  # MIME part Content-ID -> the Document that refers to it
    for element in request.payload.iterchildren(v.TAG_DOCUMENT):
        document_id = element.get("id")
        if not document_id:
            errors.append(_repo_error("an xdsb:Document has no id attribute"))
            continue
        unusable.add(document_id)  # until its content is read
        content_id = xop_reference(element)
        if content_id is not None:
            attachment = request.attachments.get(content_id)
            if attachment is None:
                errors.append(
                    error(
                        ErrorCode.MISSING_DOCUMENT,
                        f"Document {document_id} refers to MIME part cid:{content_id}, which is not in the message",
                        document_id,
                    )
                )
                continue
            # One part is one file: two documents cannot both take it as theirs.
            other = part_users.setdefault(content_id, document_id)
            if other != document_id:
                errors.append(
                    _repo_error(
                        f"Document {document_id} refers to MIME part cid:{content_id}, which "
                        f"Document {other} refers to already; each document needs a part of "
                        "its own",
                        document_id,
                    )
                )
                continue
            received.append(_ReceivedDocument(document_id, attachment.blob, owned=False))
            unusable.discard(document_id)
            continue
        try:
            data = base64.b64decode((element.text or "").encode("ascii"), validate=False)
        except (binascii.Error, UnicodeEncodeError):
            errors.append(
                _repo_error(f"Document {document_id}: content is neither xop:Include nor base64", document_id)
            )
            continue
        received.append(_ReceivedDocument(document_id, services.blobs.write_bytes(data), owned=True))
        unusable.discard(document_id)
    return received, unusable, errors


def _tolerate_id_case(entries: list[DocumentEntry], received: list[_ReceivedDocument], unusable: set[str]) -> None:
    """The DMP's TD2.1 example names its document `Document id="documentME2"` for the
    `ExtrinsicObject id="DocumentME2"` and is answered Success: under the CI-SIS profile a
    Document id that names no entry is that of the one entry it equals but for case."""
    entry_ids = {de.entry_uuid for de in entries}
    taken = {doc.document_id for doc in received} | unusable
    by_folded: dict[str, list[str]] = {}
    for entry_id in entry_ids - taken:
        by_folded.setdefault(entry_id.casefold(), []).append(entry_id)
    for doc in received:
        if doc.document_id not in entry_ids:
            matches = by_folded.get(doc.document_id.casefold(), [])
            if len(matches) == 1:
                doc.document_id = matches[0]
                by_folded.pop(doc.document_id.casefold())


def _match_documents(
    entries: list[DocumentEntry], received: list[_ReceivedDocument], unusable: set[str], repository_unique_id: str
) -> list[XdsError]:
    """Pair metadata and documents, check what the source declared, fill what the repository knows."""
    errors: list[XdsError] = []
    by_id = {doc.document_id: doc for doc in received}
    entry_ids = {de.entry_uuid for de in entries}
    for document in received:
        if document.document_id not in entry_ids:
            errors.append(
                error(
                    ErrorCode.MISSING_DOCUMENT_METADATA,
                    f"Document {document.document_id} has no DocumentEntry in the metadata",
                    document.document_id,
                )
            )
    for de in entries:
        doc = by_id.get(de.entry_uuid)
        if doc is None and de.entry_uuid in unusable:
            continue  # its Document element is there, and its problem already reported
        if doc is None:
            errors.append(
                error(
                    ErrorCode.MISSING_DOCUMENT,
                    f"DocumentEntry {de.entry_uuid} (uniqueId {de.unique_id}) has no document in the message",
                    de.entry_uuid,
                )
            )
            continue
        if de.hash is not None and de.hash.lower() != doc.blob.sha1:
            errors.append(
                _repo_error(
                    f"DocumentEntry {de.entry_uuid}: hash {de.hash} given by the source differs "
                    f"from the document's SHA-1 {doc.blob.sha1}",
                    de.entry_uuid,
                )
            )
        if de.size is not None and de.size != doc.blob.size:
            errors.append(
                _repo_error(
                    f"DocumentEntry {de.entry_uuid}: size {de.size} given by the source differs "
                    f"from the document's size {doc.blob.size}",
                    de.entry_uuid,
                )
            )
        if de.repository_unique_id and de.repository_unique_id != repository_unique_id:
            errors.append(
                _repo_error(
                    f"DocumentEntry {de.entry_uuid}: repositoryUniqueId {de.repository_unique_id} "
                    f"is not this repository's ({repository_unique_id})",
                    de.entry_uuid,
                )
            )
        de.hash = doc.blob.sha1
        de.size = doc.blob.size
        de.repository_unique_id = repository_unique_id
    return errors


def _check_documents(
    services: Services, entries: list[DocumentEntry], received: list[_ReceivedDocument], contents: dict[str, bytes]
) -> tuple[list[XdsError], dict[str, etree._Element]]:
    """The CDA layer on each text/xml document, against its DocumentEntry (read from its temporary
    file, which the schematrons' parser reads too: the bytes are parsed once by each parser, here),
    and the trees it parsed, by document id, which the signature check canonicalizes rather than
    parsing the documents again. `contents` keeps the bytes read, by document id."""
    by_id = {de.entry_uuid: de for de in entries}
    findings: list[XdsError] = []
    trees: dict[str, etree._Element] = {}
    for doc in received:
        de = by_id.get(doc.document_id)
        # The submission set's signature is text/xml but no CDA: it is checked as a signature.
        if de is not None and de.mime_type == CDA_MIME_TYPE and not is_signature_entry(de):
            data = contents[doc.document_id] = doc.blob.path.read_bytes()
            found, tree = services.validators.document_check(de, data, doc.blob.path)
            findings += found
            if tree is not None:
                trees[doc.document_id] = tree
    return findings, trees


def _check_signature(
    services: Services,
    request: TransactionRequest,
    submission: Submission,
    received: list[_ReceivedDocument],
    trees: dict[str, etree._Element],
    read: dict[str, bytes],
) -> list[XdsError]:
    """Under the CI-SIS profile, the XAdES signature of the submission set (dmp/submission_signature.py):
    required when the server authenticates its callers, unless configured optional. `read`: the
    documents' bytes already read, by document id."""
    settings = services.settings
    if settings.profile != "cisis":
        return []
    security = services.security
    principal = request.principal if isinstance(request.principal, Principal) else None
    # TD2.1's signature is the DMP-compatible software's: a patient publishing from this
    # server's own web space (authenticated by it, no VIHF, no LPS) has none to give.
    from_web = principal is not None and principal.authentication_mode == sv.AUTHENTICATION_WEB
    required = security is not None and settings.submission_signature == "required" and not from_web
    if not required and not any(is_signature_entry(de) for de in submission.documents):
        return []
    contents = {
        d.document_id: read[d.document_id] if d.document_id in read else d.blob.path.read_bytes() for d in received
    }
    trust = security.trust if security is not None else None
    return signature_errors(submission, contents, trust, principal, required, parsed=trees)


def provide_and_register(services: Services, request: TransactionRequest) -> TransactionResult:
    payload = request.payload
    if payload.tag != v.TAG_PNR_REQUEST:
        return submission_result(
            None, [_repo_error(f"ITI-41 expects xdsb:ProvideAndRegisterDocumentSetRequest, not {payload.tag}")]
        )
    received: list[_ReceivedDocument] = []
    published: dict[str, str] = {}  # document id -> its location in the store
    try:
        sor = payload.find(v.TAG_SUBMIT_OBJECTS_REQUEST)
        if sor is None:
            return submission_result(None, [_repo_error("the request has no lcm:SubmitObjectsRequest")])
        try:
            submission = decode_submit_objects_request(sor)
        except EbrimDecodeError as exc:
            return submission_result(None, [_repo_error(str(exc))])
        received, unusable, errors = _read_documents(services, request)
        if services.settings.profile == "cisis":
            _tolerate_id_case(submission.documents, received, unusable)
        errors += _match_documents(submission.documents, received, unusable, services.settings.repository_unique_id)
        read: dict[str, bytes] = {}
        findings, trees = _check_documents(services, submission.documents, received, read)
        errors += findings
        if any(e.is_error for e in errors):
            return submission_result(submission, errors)
        refused = _check_signature(services, request, submission, received, trees, read)
        if refused:
            return submission_result(submission, refused)

        # By the message's ids: the checks below give symbolic ids their entryUUIDs.
        entries = {de.entry_uuid: de for de in submission.documents}
        patient_of_caller = request.access.patient_id if request.access else None
        checked, snapshot = check_submission(services, submission, Transaction.ITI41, patient_of_caller)
        # Warnings of the CDA layer (policy "warn") are given back with the registry's answer.
        errors = errors + checked
        if snapshot is not None:
            errors += _publish_and_store(
                services, submission, entries, received, snapshot, published, actor_of(request.principal)
            )
        if any(e.is_error for e in errors):
            _unpublish(services, published)
        return submission_result(submission, errors)
    except BaseException:
        _unpublish(services, published)
        raise
    finally:
        for doc in received:
            if doc.owned:
                services.blobs.discard(doc.blob)


def _publish_and_store(
    services: Services,
    submission: Submission,
    entries: dict[str, DocumentEntry],
    received: list[_ReceivedDocument],
    snapshot: RegistrySnapshot,
    published: dict[str, str],
    actor: str | None,
) -> list[XdsError]:
    """The documents published, then the submission stored; once more when the same document was
    registered concurrently, so that the outcome is the one of two submissions one after the other.
    A document store that fails is an XDSRepositoryError: nothing is registered."""
    for _attempt in range(STORE_ATTEMPTS):
        try:
            rows = _publish(services, submission, entries, received, snapshot, published)
        except BlobStoreError as exc:
            log.error("ITI-41: %s", exc)
            return [error(ErrorCode.REPOSITORY_ERROR, "the document store failed; nothing was registered, retry later")]
        try:
            return store_submission(services, submission, Transaction.ITI41, rows, actor)
        except StoreRaced as raced:
            snapshot = raced.snapshot
    return [unexplained_conflict()]


def _publish(
    services: Services,
    submission: Submission,
    entries: dict[str, DocumentEntry],
    received: list[_ReceivedDocument],
    snapshot: RegistrySnapshot,
    published: dict[str, str],
) -> list[StoredDocument]:
    """Make the new documents durable under their final names (each added to `published`, by the
    id the message gave it, as soon as it is there); their repository rows. `entries`: the
    DocumentEntries by the ids the message gave them, which its Document elements use.

    A document the registry already knows (same uniqueId, same hash: NIST 12004) is looked up
    in the repository's own table, and not stored twice. A file without its row is invisible
    (retrieval goes through the row), and removed by the caller if the registry transaction fails.
    Called again after a concurrent submission registered the same document first: the file
    published for it here is then removed, the others kept.
    """
    blobs = {doc.document_id: doc.blob for doc in received}
    known = [uid for de in submission.documents if (uid := de.unique_id) in snapshot.unique_ids]
    already = services.registry.get_repository_documents(known) if known else {}
    rows: list[StoredDocument] = []
    for document_id, blob in blobs.items():
        de = entries[document_id]
        assert de.unique_id is not None  # validated before any row is written
        if de.unique_id in already:
            if (location := published.pop(document_id, None)) is not None:
                _remove(services, location)
            continue
        target = published.get(document_id)
        if target is None:
            target = services.blobs.publish(blob, services.blobs.allocate(de.unique_id))
            published[document_id] = target
        rows.append(
            StoredDocument(de.unique_id, target, blob.size, blob.sha1, de.mime_type or "application/octet-stream")
        )
    return rows


def _unpublish(services: Services, published: dict[str, str]) -> None:
    for location in published.values():
        _remove(services, location)
    published.clear()


def _remove(services: Services, location: str) -> None:
    """A published document nothing will refer to, removed; when the store fails, it is left
    (unreferenced, so invisible) and logged for the operator, and the answer is unchanged."""
    try:
        services.blobs.unpublish(location)
    except BlobStoreError as exc:
        log.warning("unreferenced document left in the store: %s", exc)
