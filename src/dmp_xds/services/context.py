"""What a transaction is given and what it gives back, independent of SOAP and HTTP."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from lxml import etree

from dmp_xds.config import Settings
from dmp_xds.dmp.validation.validators import Validators
from dmp_xds.services.gate import DocumentAccess, SecurityServices
from dmp_xds.storage.blobstore import BlobStore, TempBlob
from dmp_xds.storage.store import RegistryStore
from dmp_xds.xds.xop import Attachment


@dataclass(frozen=True, slots=True)
class DocumentPart:
    """A document to send with the response, already opened in the store and streamed from it."""

    content_id: str
    content_type: str
    size: int
    chunks: Iterator[bytes]


@dataclass
class Services:
    """The long-lived parts a transaction works with."""

    settings: Settings
    registry: RegistryStore
    blobs: BlobStore
    validators: Validators = field(default_factory=Validators)  # built once at start-up
    # The security gate (services/gate.py, built by transport/security.py: trust store, VIHF
    # verifier, DMP records, trace); None when the deployment runs without authentication
    # (DMP_XDS_AUTH=none).
    security: SecurityServices | None = None


@dataclass
class TransactionRequest:
    payload: etree._Element
    # The binary parts received with the request (MTOM), each already in a temporary file.
    attachments: Mapping[str, Attachment[TempBlob]] = field(default_factory=dict)
    principal: object | None = None  # security.vihf.Principal, set by the security gate; None without auth
    access: DocumentAccess | None = None  # set with the principal; None without auth


@dataclass
class TransactionResult:
    payload: etree._Element
    documents: list[DocumentPart] = field(default_factory=list)
    # For the access trace: the documents (uniqueIds) the request added (ITI-41/42), returned
    # (ITI-18), retrieved (ITI-43) or changed (ITI-57/62); the document-level decisions taken
    # inside the transaction ("mask 1.2.3: allowed, ..."); and whether one of them refused it.
    touched: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()
    denied: bool = False
    # The response's WS-Addressing action when it is not the request's plus "Response" (IHE's
    # rule): the DMP's HL7 V3 and CXF services name their replies otherwise.
    response_action: str = ""
