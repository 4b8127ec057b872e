"""What a transaction is given and what it gives back, independent of SOAP and HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree

from dmp_xds.config import Settings
from dmp_xds.repository.blobstore import FilesystemBlobStore, TempBlob
from dmp_xds.validation.validators import Validators

if TYPE_CHECKING:
    from dmp_xds.registry.store import RegistryStore


@dataclass(frozen=True, slots=True)
class Attachment:
    """A binary part received with the request (MTOM), already in a temporary file."""

    content_id: str
    content_type: str
    blob: TempBlob


@dataclass(frozen=True, slots=True)
class DocumentPart:
    """A document to send with the response, streamed from its file."""

    content_id: str
    content_type: str
    path: Path


@dataclass
class Services:
    """The long-lived parts a transaction works with."""

    settings: Settings
    registry: "RegistryStore"
    blobs: FilesystemBlobStore
    validators: Validators = field(default_factory=Validators)  # built once at start-up


@dataclass
class TransactionRequest:
    payload: etree._Element
    attachments: Mapping[str, Attachment] = field(default_factory=dict)
    principal: object | None = None  # filled by the security layer (issue 7)


@dataclass
class TransactionResult:
    payload: etree._Element
    documents: list[DocumentPart] = field(default_factory=list)
