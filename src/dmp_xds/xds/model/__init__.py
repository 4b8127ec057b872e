"""The XDS metadata model: plain dataclasses, no XML, no SQL.

Field names follow ITI TF-3 §4.2.3 (DocumentEntry, SubmissionSet, Folder, Association).
HL7 v2 data types (CX, XCN, XON, DTM) are kept as their string form: the model carries what the
source sent, validation checks the form, queries compare the value.

`extra_slots` keeps the slots that XDS does not name (extension slots, CI-SIS slots), in order,
so that what was submitted is given back unchanged by queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from dmp_xds.xds.vocabulary import DOCUMENT_ENTRY_STABLE

Slots: TypeAlias = dict[str, list[str]]

# The kinds of registry object, as the registry rules, the store's reads and the lifecycle rows
# name them.
KIND_DOCUMENT_ENTRY = "DocumentEntry"
KIND_SUBMISSION_SET = "SubmissionSet"
KIND_FOLDER = "Folder"
KIND_ASSOCIATION = "Association"


@dataclass(frozen=True, slots=True)
class LocalizedString:
    value: str
    lang: str | None = None
    charset: str | None = None


@dataclass(slots=True)
class Code:
    """A coded attribute: `nodeRepresentation`, slot `codingScheme`, `rim:Name` display name."""

    code: str
    scheme: str
    display: str = ""
    classification_id: str | None = None  # the rim:Classification id, kept for round trips

    def key(self) -> tuple[str, str]:
        return (self.code, self.scheme)


@dataclass(slots=True)
class Author:
    person: str | None = None  # XCN
    institutions: list[str] = field(default_factory=list)  # XON
    roles: list[str] = field(default_factory=list)
    specialties: list[str] = field(default_factory=list)
    telecommunications: list[str] = field(default_factory=list)  # XTN
    classification_id: str | None = None


@dataclass(slots=True)
class DocumentEntry:
    entry_uuid: str  # rim:ExtrinsicObject@id; symbolic until stored
    unique_id: str | None = None
    patient_id: str | None = None  # CX
    mime_type: str | None = None
    object_type: str = DOCUMENT_ENTRY_STABLE
    status: str | None = None
    logical_id: str | None = None  # @lid
    version: str | None = None  # rim:VersionInfo@versionName
    home_community_id: str | None = None
    title: list[LocalizedString] = field(default_factory=list)
    comments: list[LocalizedString] = field(default_factory=list)
    class_code: Code | None = None
    type_code: Code | None = None
    format_code: Code | None = None
    healthcare_facility_type_code: Code | None = None
    practice_setting_code: Code | None = None
    confidentiality_codes: list[Code] = field(default_factory=list)
    event_codes: list[Code] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)
    creation_time: str | None = None  # DTM
    service_start_time: str | None = None
    service_stop_time: str | None = None
    hash: str | None = None  # SHA-1, lowercase hex
    size: int | None = None
    language_code: str | None = None
    legal_authenticator: str | None = None  # XCN
    repository_unique_id: str | None = None
    source_patient_id: str | None = None  # CX
    source_patient_info: list[str] = field(default_factory=list)  # "PID-3|..."
    reference_ids: list[str] = field(default_factory=list)  # CXi
    uri: str | None = None
    document_availability: str | None = None
    limited_metadata: bool = False  # classified with DE_LIMITED_METADATA_NODE (ITI TF-3 §4.2.3.2.13)
    patient_id_identifier_id: str | None = None  # ids of the ExternalIdentifiers, kept
    unique_id_identifier_id: str | None = None
    extra_slots: Slots = field(default_factory=dict)
    # Slots present but with several values where one is allowed are kept here so that the
    # validator can report them (the decoder never silently drops a value).
    multi_valued_slots: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class SubmissionSet:
    entry_uuid: str
    unique_id: str | None = None
    source_id: str | None = None
    patient_id: str | None = None
    submission_time: str | None = None
    status: str | None = None
    home_community_id: str | None = None
    title: list[LocalizedString] = field(default_factory=list)
    comments: list[LocalizedString] = field(default_factory=list)
    content_type_code: Code | None = None
    authors: list[Author] = field(default_factory=list)
    intended_recipients: list[str] = field(default_factory=list)
    limited_metadata: bool = False  # classified with SS_LIMITED_METADATA_NODE
    patient_id_identifier_id: str | None = None
    unique_id_identifier_id: str | None = None
    source_id_identifier_id: str | None = None
    classification_id: str | None = None  # the SubmissionSet node classification
    extra_slots: Slots = field(default_factory=dict)
    multi_valued_slots: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Folder:
    entry_uuid: str
    unique_id: str | None = None
    patient_id: str | None = None
    status: str | None = None
    logical_id: str | None = None
    version: str | None = None
    home_community_id: str | None = None
    last_update_time: str | None = None
    title: list[LocalizedString] = field(default_factory=list)
    comments: list[LocalizedString] = field(default_factory=list)
    codes: list[Code] = field(default_factory=list)
    limited_metadata: bool = False  # classified with FOLDER_LIMITED_METADATA_NODE
    patient_id_identifier_id: str | None = None
    unique_id_identifier_id: str | None = None
    classification_id: str | None = None  # the Folder node classification
    extra_slots: Slots = field(default_factory=dict)
    multi_valued_slots: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Association:
    entry_uuid: str
    association_type: str
    source: str
    target: str
    status: str | None = None
    home_community_id: str | None = None
    slots: Slots = field(default_factory=dict)  # SubmissionSetStatus, PreviousVersion, ...
    # Association documentation classifications (why a relationship was made; ITI TF-3
    # §4.2.2.2.7): `code` is the nodeRepresentation, kept to be given back by queries.
    documentation: list[Code] = field(default_factory=list)


@dataclass(slots=True)
class ObjectRef:
    id: str
    home_community_id: str | None = None


@dataclass(slots=True)
class Submission:
    """The metadata of one ITI-41/42 (or ITI-57) message, in document order."""

    submission_set: SubmissionSet | None = None
    documents: list[DocumentEntry] = field(default_factory=list)
    folders: list[Folder] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)
    object_refs: list[ObjectRef] = field(default_factory=list)
    # Decoding problems that are not fatal to decoding (unknown object types, classifications
    # pointing nowhere...). The validator turns them into XdsErrors.
    problems: list[str] = field(default_factory=list)
    submission_set_count: int = 0  # how many RegistryPackages were marked SubmissionSet

    def all_ids(self) -> list[str]:
        ids: list[str] = []
        if self.submission_set is not None:
            ids.append(self.submission_set.entry_uuid)
        ids += [d.entry_uuid for d in self.documents]
        ids += [f.entry_uuid for f in self.folders]
        ids += [a.entry_uuid for a in self.associations]
        return ids


@dataclass(slots=True)
class StoredDocument:
    """Where the repository keeps a document's bytes and what it learnt while writing them."""

    unique_id: str
    path: str  # its location in the document store: a file path, or s3://bucket/key
    size: int
    hash: str
    mime_type: str


JSONValue: TypeAlias = Any
