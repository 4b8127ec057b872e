"""Which ebRIM slot, classification or external identifier holds which model field.

Decoder and encoder both read these tables, so that a field is named in one place only.
`attribute` is the XDS attribute name (ITI TF-3 §4.2.3): it is the key used in
`multi_valued_slots` when a single-valued attribute was given several times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dmp_xds.xds import vocabulary as v


@dataclass(frozen=True, slots=True)
class SlotField:
    slot: str
    field: str
    multi: bool = False
    integer: bool = False


@dataclass(frozen=True, slots=True)
class CodeField:
    scheme: str
    attribute: str
    field: str
    multi: bool = False


@dataclass(frozen=True, slots=True)
class IdentifierField:
    scheme: str
    attribute: str
    field: str
    id_field: str  # where the ExternalIdentifier's own id is kept

    @property
    def display_name(self) -> str:
        return v.EXTERNAL_IDENTIFIER_NAMES[self.scheme]


@dataclass(frozen=True, slots=True)
class ObjectKind:
    """Everything the codec needs to know about one kind of XDS object."""

    label: str
    slots: tuple[SlotField, ...]
    codes: tuple[CodeField, ...]
    identifiers: tuple[IdentifierField, ...]
    author_scheme: str | None
    limited_metadata_node: str
    node: str | None = None  # the RegistryPackage marker node (SubmissionSet / Folder)
    has_version: bool = False
    slot_by_name: dict[str, SlotField] = field(default_factory=dict)
    code_by_scheme: dict[str, CodeField] = field(default_factory=dict)
    identifier_by_scheme: dict[str, IdentifierField] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Lookup tables built once at import; the dataclass is frozen so they cannot drift.
        self.slot_by_name.update({s.slot: s for s in self.slots})
        self.code_by_scheme.update({c.scheme: c for c in self.codes})
        self.identifier_by_scheme.update({i.scheme: i for i in self.identifiers})


DOCUMENT_ENTRY = ObjectKind(
    label="DocumentEntry",
    slots=(
        SlotField(v.SLOT_CREATION_TIME, "creation_time"),
        SlotField(v.SLOT_SERVICE_START_TIME, "service_start_time"),
        SlotField(v.SLOT_SERVICE_STOP_TIME, "service_stop_time"),
        SlotField(v.SLOT_HASH, "hash"),
        SlotField(v.SLOT_SIZE, "size", integer=True),
        SlotField(v.SLOT_LANGUAGE_CODE, "language_code"),
        SlotField(v.SLOT_LEGAL_AUTHENTICATOR, "legal_authenticator"),
        SlotField(v.SLOT_REPOSITORY_UNIQUE_ID, "repository_unique_id"),
        SlotField(v.SLOT_SOURCE_PATIENT_ID, "source_patient_id"),
        SlotField(v.SLOT_SOURCE_PATIENT_INFO, "source_patient_info", multi=True),
        SlotField(v.SLOT_REFERENCE_ID_LIST, "reference_ids", multi=True),
        SlotField(v.SLOT_URI, "uri"),
        SlotField(v.SLOT_DOCUMENT_AVAILABILITY, "document_availability"),
    ),
    codes=(
        CodeField(v.DE_CLASS_CODE, "classCode", "class_code"),
        CodeField(v.DE_CONFIDENTIALITY_CODE, "confidentialityCode", "confidentiality_codes", True),
        CodeField(v.DE_EVENT_CODE, "eventCodeList", "event_codes", True),
        CodeField(v.DE_FORMAT_CODE, "formatCode", "format_code"),
        CodeField(
            v.DE_HEALTHCARE_FACILITY_TYPE_CODE,
            "healthcareFacilityTypeCode",
            "healthcare_facility_type_code",
        ),
        CodeField(v.DE_PRACTICE_SETTING_CODE, "practiceSettingCode", "practice_setting_code"),
        CodeField(v.DE_TYPE_CODE, "typeCode", "type_code"),
    ),
    identifiers=(
        IdentifierField(v.DE_PATIENT_ID, "patientId", "patient_id", "patient_id_identifier_id"),
        IdentifierField(v.DE_UNIQUE_ID, "uniqueId", "unique_id", "unique_id_identifier_id"),
    ),
    author_scheme=v.DE_AUTHOR,
    limited_metadata_node=v.DE_LIMITED_METADATA_NODE,
    has_version=True,
)

SUBMISSION_SET = ObjectKind(
    label="SubmissionSet",
    slots=(
        SlotField(v.SLOT_SUBMISSION_TIME, "submission_time"),
        SlotField(v.SLOT_INTENDED_RECIPIENT, "intended_recipients", multi=True),
    ),
    codes=(CodeField(v.SS_CONTENT_TYPE_CODE, "contentTypeCode", "content_type_code"),),
    identifiers=(
        IdentifierField(v.SS_UNIQUE_ID, "uniqueId", "unique_id", "unique_id_identifier_id"),
        IdentifierField(v.SS_SOURCE_ID, "sourceId", "source_id", "source_id_identifier_id"),
        IdentifierField(v.SS_PATIENT_ID, "patientId", "patient_id", "patient_id_identifier_id"),
    ),
    author_scheme=v.SS_AUTHOR,
    limited_metadata_node=v.SS_LIMITED_METADATA_NODE,
    node=v.SUBMISSION_SET_NODE,
)

FOLDER = ObjectKind(
    label="Folder",
    slots=(SlotField(v.SLOT_LAST_UPDATE_TIME, "last_update_time"),),
    codes=(CodeField(v.FOLDER_CODE_LIST, "codeList", "codes", True),),
    identifiers=(
        IdentifierField(v.FOLDER_PATIENT_ID, "patientId", "patient_id", "patient_id_identifier_id"),
        IdentifierField(v.FOLDER_UNIQUE_ID, "uniqueId", "unique_id", "unique_id_identifier_id"),
    ),
    author_scheme=None,
    limited_metadata_node=v.FOLDER_LIMITED_METADATA_NODE,
    node=v.FOLDER_NODE,
    has_version=True,
)

PACKAGE_NODES: frozenset[str] = frozenset({v.SUBMISSION_SET_NODE, v.FOLDER_NODE})
