"""Every ebRIM / XDS.b identifier the product uses: one place per fact.

Checked against ITI TF-3 §4.2 and ../shared/reference/xds-b.md.
"""

from __future__ import annotations

from typing import Final

# --- XML namespaces -------------------------------------------------------------------------
NS_SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
NS_SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
NS_WSA: Final = "http://www.w3.org/2005/08/addressing"
NS_XOP: Final = "http://www.w3.org/2004/08/xop/include"
NS_XDSB: Final = "urn:ihe:iti:xds-b:2007"
NS_RIM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
NS_RS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
NS_LCM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
NS_QUERY: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
NS_RIM21: Final = "urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1"
NS_RS21: Final = "urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1"
NS_WSSE: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
)

NSMAP: Final = {
    "rim": NS_RIM,
    "rs": NS_RS,
    "lcm": NS_LCM,
    "query": NS_QUERY,
    "xdsb": NS_XDSB,
}

# --- ebRIM / ebRS / LCM element names (qualified, as lxml spells them) ------------------------
_R: Final = "{" + NS_RIM + "}"
TAG_REGISTRY_OBJECT_LIST: Final = _R + "RegistryObjectList"
TAG_EXTRINSIC_OBJECT: Final = _R + "ExtrinsicObject"
TAG_REGISTRY_PACKAGE: Final = _R + "RegistryPackage"
TAG_ASSOCIATION: Final = _R + "Association"
TAG_OBJECT_REF: Final = _R + "ObjectRef"
TAG_CLASSIFICATION: Final = _R + "Classification"
TAG_EXTERNAL_IDENTIFIER: Final = _R + "ExternalIdentifier"
TAG_SLOT: Final = _R + "Slot"
TAG_VALUE_LIST: Final = _R + "ValueList"
TAG_VALUE: Final = _R + "Value"
TAG_NAME: Final = _R + "Name"
TAG_DESCRIPTION: Final = _R + "Description"
TAG_LOCALIZED_STRING: Final = _R + "LocalizedString"
TAG_VERSION_INFO: Final = _R + "VersionInfo"
TAG_SUBMIT_OBJECTS_REQUEST: Final = "{" + NS_LCM + "}SubmitObjectsRequest"
TAG_REGISTRY_RESPONSE: Final = "{" + NS_RS + "}RegistryResponse"
TAG_REGISTRY_ERROR_LIST: Final = "{" + NS_RS + "}RegistryErrorList"
TAG_REGISTRY_ERROR: Final = "{" + NS_RS + "}RegistryError"
ATTR_XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"

# --- Object types ---------------------------------------------------------------------------
DOCUMENT_ENTRY_STABLE: Final = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
DOCUMENT_ENTRY_ON_DEMAND: Final = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
DOCUMENT_ENTRY_TYPES: Final = frozenset({DOCUMENT_ENTRY_STABLE, DOCUMENT_ENTRY_ON_DEMAND})
OBJECT_TYPE_REGISTRY_PACKAGE: Final = (
    "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"
)
OBJECT_TYPE_CLASSIFICATION: Final = (
    "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
)
OBJECT_TYPE_EXTERNAL_IDENTIFIER: Final = (
    "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier"
)
OBJECT_TYPE_ASSOCIATION: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association"

# Classification nodes that mark a RegistryPackage as SubmissionSet or Folder.
SUBMISSION_SET_NODE: Final = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
FOLDER_NODE: Final = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"

# Classification nodes that flag an object as submitted with limited metadata (ITI TF-3
# §4.2.3.2.13, §4.2.3.3.6, §4.2.3.4.5); XDS.b sources do not send them, XDR/XDM ones may.
DE_LIMITED_METADATA_NODE: Final = "urn:uuid:ab9b591b-83ab-4d03-8f5d-f93b1fb92e85"
SS_LIMITED_METADATA_NODE: Final = "urn:uuid:5003a9db-8d8d-49e6-bf0c-990e34ac7707"
FOLDER_LIMITED_METADATA_NODE: Final = "urn:uuid:2c144a76-29a9-4b7c-af54-b25409fe7d03"

# --- Classification schemes (coded attributes and authors) ----------------------------------
DE_AUTHOR: Final = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_CLASS_CODE: Final = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_CONFIDENTIALITY_CODE: Final = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_EVENT_CODE: Final = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
DE_FORMAT_CODE: Final = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_HEALTHCARE_FACILITY_TYPE_CODE: Final = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE_SETTING_CODE: Final = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_TYPE_CODE: Final = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
SS_AUTHOR: Final = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE_CODE: Final = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
FOLDER_CODE_LIST: Final = "urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5"

# --- External identifier schemes ------------------------------------------------------------
DE_PATIENT_ID: Final = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID: Final = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SS_PATIENT_ID: Final = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_SOURCE_ID: Final = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_UNIQUE_ID: Final = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
FOLDER_PATIENT_ID: Final = "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a"
FOLDER_UNIQUE_ID: Final = "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a"

# Display names of the external identifiers (rim:Name of each ExternalIdentifier).
EXTERNAL_IDENTIFIER_NAMES: Final = {
    DE_PATIENT_ID: "XDSDocumentEntry.patientId",
    DE_UNIQUE_ID: "XDSDocumentEntry.uniqueId",
    SS_PATIENT_ID: "XDSSubmissionSet.patientId",
    SS_SOURCE_ID: "XDSSubmissionSet.sourceId",
    SS_UNIQUE_ID: "XDSSubmissionSet.uniqueId",
    FOLDER_PATIENT_ID: "XDSFolder.patientId",
    FOLDER_UNIQUE_ID: "XDSFolder.uniqueId",
}

# --- Status values --------------------------------------------------------------------------
STATUS_APPROVED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
STATUS_DEPRECATED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
STATUS_SUBMITTED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Submitted"

RESPONSE_SUCCESS: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
RESPONSE_FAILURE: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
RESPONSE_PARTIAL_SUCCESS: Final = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"

SEVERITY_ERROR: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
SEVERITY_WARNING: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"

# --- Association types ----------------------------------------------------------------------
HAS_MEMBER: Final = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC: Final = "urn:ihe:iti:2007:AssociationType:RPLC"
XFRM: Final = "urn:ihe:iti:2007:AssociationType:XFRM"
APND: Final = "urn:ihe:iti:2007:AssociationType:APND"
XFRM_RPLC: Final = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
SIGNS: Final = "urn:ihe:iti:2007:AssociationType:signs"
IS_SNAPSHOT_OF: Final = "urn:ihe:iti:2010:AssociationType:IsSnapshotOf"
UPDATE_AVAILABILITY_STATUS: Final = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
DOCUMENT_RELATIONSHIPS: Final = frozenset({RPLC, XFRM, APND, XFRM_RPLC, SIGNS, IS_SNAPSHOT_OF})
ASSOCIATION_TYPES: Final = DOCUMENT_RELATIONSHIPS | {HAS_MEMBER, UPDATE_AVAILABILITY_STATUS}

# --- Slot names -----------------------------------------------------------------------------
SLOT_CREATION_TIME: Final = "creationTime"
SLOT_SERVICE_START_TIME: Final = "serviceStartTime"
SLOT_SERVICE_STOP_TIME: Final = "serviceStopTime"
SLOT_HASH: Final = "hash"
SLOT_SIZE: Final = "size"
SLOT_LANGUAGE_CODE: Final = "languageCode"
SLOT_LEGAL_AUTHENTICATOR: Final = "legalAuthenticator"
SLOT_REPOSITORY_UNIQUE_ID: Final = "repositoryUniqueId"
SLOT_SOURCE_PATIENT_ID: Final = "sourcePatientId"
SLOT_SOURCE_PATIENT_INFO: Final = "sourcePatientInfo"
SLOT_REFERENCE_ID_LIST: Final = "urn:ihe:iti:xds:2013:referenceIdList"
SLOT_URI: Final = "URI"
SLOT_DOCUMENT_AVAILABILITY: Final = "documentAvailability"
SLOT_SUBMISSION_TIME: Final = "submissionTime"
SLOT_INTENDED_RECIPIENT: Final = "intendedRecipient"
SLOT_LAST_UPDATE_TIME: Final = "lastUpdateTime"
SLOT_CODING_SCHEME: Final = "codingScheme"
SLOT_AUTHOR_PERSON: Final = "authorPerson"
SLOT_AUTHOR_INSTITUTION: Final = "authorInstitution"
SLOT_AUTHOR_ROLE: Final = "authorRole"
SLOT_AUTHOR_SPECIALTY: Final = "authorSpecialty"
SLOT_AUTHOR_TELECOMMUNICATION: Final = "authorTelecommunication"
SLOT_SUBMISSION_SET_STATUS: Final = "SubmissionSetStatus"
SLOT_PREVIOUS_VERSION: Final = "PreviousVersion"
SLOT_ORIGINAL_STATUS: Final = "OriginalStatus"
SLOT_NEW_STATUS: Final = "NewStatus"
SLOT_ASSOCIATION_PROPAGATION: Final = "AssociationPropagation"

DOCUMENT_AVAILABILITY_ONLINE: Final = "urn:ihe:iti:2010:DocumentAvailability:Online"
DOCUMENT_AVAILABILITY_OFFLINE: Final = "urn:ihe:iti:2010:DocumentAvailability:Offline"

# --- Transactions: WS-Addressing actions ----------------------------------------------------
ACTION_ITI41: Final = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ACTION_ITI42: Final = "urn:ihe:iti:2007:RegisterDocumentSet-b"
ACTION_ITI18: Final = "urn:ihe:iti:2007:RegistryStoredQuery"
ACTION_ITI43: Final = "urn:ihe:iti:2007:RetrieveDocumentSet"
ACTION_ITI57: Final = "urn:ihe:iti:2010:UpdateDocumentSet"
ACTION_ITI62: Final = "urn:ihe:iti:2010:DeleteDocumentSet"


def response_action(request_action: str) -> str:
    """The WS-Addressing action of the response to a request action (IHE appends 'Response')."""
    return request_action + "Response"
