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
NS_HL7: Final = "urn:hl7-org:v3"  # HL7 v3: CDA documents, VIHF attribute values
NS_WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"

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
TAG_REMOVE_OBJECTS_REQUEST: Final = "{" + NS_LCM + "}RemoveObjectsRequest"
TAG_OBJECT_REF_LIST: Final = _R + "ObjectRefList"
# ebRS 3.0 RemoveObjectsRequest@deletionScope: its default, the only one ITI-62 allows.
DELETION_SCOPE_DELETE_ALL: Final = "urn:oasis:names:tc:ebxml-regrep:DeletionScopeType:DeleteAll"
# XDS.b message elements (ITI-41, ITI-43) and the XOP reference to a MIME part.
TAG_PNR_REQUEST: Final = "{" + NS_XDSB + "}ProvideAndRegisterDocumentSetRequest"
TAG_DOCUMENT: Final = "{" + NS_XDSB + "}Document"
TAG_RETRIEVE_REQUEST: Final = "{" + NS_XDSB + "}RetrieveDocumentSetRequest"
TAG_RETRIEVE_RESPONSE: Final = "{" + NS_XDSB + "}RetrieveDocumentSetResponse"
TAG_DOCUMENT_REQUEST: Final = "{" + NS_XDSB + "}DocumentRequest"
TAG_DOCUMENT_RESPONSE: Final = "{" + NS_XDSB + "}DocumentResponse"
TAG_DOCUMENT_UNIQUE_ID: Final = "{" + NS_XDSB + "}DocumentUniqueId"
TAG_XOP_INCLUDE: Final = "{" + NS_XOP + "}Include"

# --- Object types ---------------------------------------------------------------------------
DOCUMENT_ENTRY_STABLE: Final = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
DOCUMENT_ENTRY_ON_DEMAND: Final = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
DOCUMENT_ENTRY_TYPES: Final = frozenset({DOCUMENT_ENTRY_STABLE, DOCUMENT_ENTRY_ON_DEMAND})
OBJECT_TYPE_REGISTRY_PACKAGE: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"
OBJECT_TYPE_CLASSIFICATION: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
OBJECT_TYPE_EXTERNAL_IDENTIFIER: Final = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier"
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
# Association documentation (ITI TF-3 §4.2.2.2.7): why a relationship was made, on RPLC,
# APND, XFRM, XFRM_RPLC and signs associations only (NIST 12370).
ASSOCIATION_DOCUMENTATION: Final = "urn:uuid:abd807a3-4432-4053-87b4-fd82c643d1f3"

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
# The DMP's archived status (CI-SIS TRE_R270 AvailabilityStatus, "version archivée et à jour";
# set and unset by ITI-57 UpdateAvailabilityStatus): kept, and left out of default searches.
STATUS_ARCHIVED: Final = "urn:asip:ci-sis:2010:StatusType:Archived"
# The DMP's logical deletion (TD3.3c: Approved or Archived -> Deleted by ITI-57): the entry is
# kept, left out of searches unless asked for by status, and final (no status leaves it).
STATUS_DELETED: Final = "urn:asip:ci-sis:2010:StatusType:Deleted"
# The availability statuses ITI-57 may move a DocumentEntry, Folder or Association between.
UPDATABLE_STATUSES: Final = frozenset({STATUS_APPROVED, STATUS_DEPRECATED, STATUS_ARCHIVED, STATUS_DELETED})

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
# The SubmissionSet's link to an association it adds to stored objects, as the trial-
# implementation Metadata Update supplement spelled it (NIST 20001, 21004); the final text
# uses HasMember, which is what the registry stores.
SUBMIT_ASSOCIATION: Final = "urn:ihe:iti:2010:AssociationType:SubmitAssociation"
# Relationships whose source replaces the target: the target becomes Deprecated and the new
# document joins the target's folders (ITI TF-3 §4.2.2.2.3, §4.2.2.2.5).
REPLACING_RELATIONSHIPS: Final = frozenset({RPLC, XFRM_RPLC})

# --- IHE Document Digital Signature (DSG): the signature DocumentEntry of a submission set ----
# (ITI TF-3 §5.5; the DMP's TD2.1 example writes the format as the XML-DSig namespace).
SIGNATURE_CLASS_CODE: Final = ("urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1", "URN")  # "Digital Signature"
SIGNATURE_TYPE_CODE: Final = ("E1762", "ASTM")  # "Full Document"
SIGNATURE_FORMAT_CODE: Final = ("http://www.w3.org/2000/09/xmldsig#", "URN")  # "Default Signature Style"
SIGNATURE_FORMAT_CODES: Final = frozenset({SIGNATURE_FORMAT_CODE, SIGNATURE_CLASS_CODE})  # DMP, IHE DSG
SIGNATURE_EVENT_CODE: Final = ("1.2.840.10065.1.12.1.14", "1.2.840.10065.1.12")  # "Source" (purpose)
SIGNATURE_LANGUAGE: Final = "art"  # ISO 639-2 "artificial language"
SUBMISSION_SET_STATUS_ORIGINAL: Final = "Original"

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


# A request without WS-Addressing (the DMP's official kit sends none) is dispatched on the action
# its Content-Type or SOAPAction header names: a WS-Addressing action, or a WSDL operation name
# (the DMP's XDS.b WSDLs, whose TD2.1 example sends action="DocumentRepository_ProvideAndRegisterDocumentSet-b").
WSDL_OPERATION_ACTIONS: Final = {
    "DocumentRepository_ProvideAndRegisterDocumentSet-b": ACTION_ITI41,
    "DocumentRepository_RetrieveDocumentSet": ACTION_ITI43,
    "DocumentRegistry_RegisterDocumentSet-b": ACTION_ITI42,
    "DocumentRegistry_RegistryStoredQuery": ACTION_ITI18,
    "DocumentRegistry_UpdateDocumentSet": ACTION_ITI57,
    "DocumentRegistry_DeleteDocumentSet": ACTION_ITI62,
}
# ITI-57's reply action in the DMP's registry WSDL and TD3.3 examples (IHE: ...UpdateDocumentSetResponse).
ACTION_ITI57_DMP_RESPONSE: Final = "urn:ihe:iti:2010:UpdateDocumentSet-Response"

# --- ITI-18 Registry Stored Query ----------------------------------------------------------
_Q: Final = "{" + NS_QUERY + "}"
TAG_ADHOC_QUERY_REQUEST: Final = _Q + "AdhocQueryRequest"
TAG_ADHOC_QUERY_RESPONSE: Final = _Q + "AdhocQueryResponse"
TAG_RESPONSE_OPTION: Final = _Q + "ResponseOption"
TAG_ADHOC_QUERY: Final = _R + "AdhocQuery"

RETURN_TYPE_LEAF_CLASS: Final = "LeafClass"
RETURN_TYPE_OBJECT_REF: Final = "ObjectRef"

# Stored query ids (ITI TF-2a §3.18.4.1.2.3.7).
SQ_FIND_DOCUMENTS: Final = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
SQ_FIND_SUBMISSION_SETS: Final = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
SQ_FIND_FOLDERS: Final = "urn:uuid:958f3006-baad-4929-a4de-ff1114824431"
SQ_GET_ALL: Final = "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3"
SQ_GET_DOCUMENTS: Final = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
SQ_GET_FOLDERS: Final = "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4"
SQ_GET_ASSOCIATIONS: Final = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
SQ_GET_DOCUMENTS_AND_ASSOCIATIONS: Final = "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a"
SQ_GET_SUBMISSION_SETS: Final = "urn:uuid:51224314-5390-4169-9b91-b1980040715a"
SQ_GET_SUBMISSION_SET_AND_CONTENTS: Final = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
SQ_GET_FOLDER_AND_CONTENTS: Final = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7"
SQ_GET_FOLDERS_FOR_DOCUMENT: Final = "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578"
SQ_GET_RELATED_DOCUMENTS: Final = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"
SQ_FIND_DOCUMENTS_BY_REFERENCE_ID: Final = "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"

# Stored query parameters (the rim:Slot names of a rim:AdhocQuery).
P_DE_PATIENT_ID: Final = "$XDSDocumentEntryPatientId"
P_DE_STATUS: Final = "$XDSDocumentEntryStatus"
P_DE_CLASS_CODE: Final = "$XDSDocumentEntryClassCode"
P_DE_TYPE_CODE: Final = "$XDSDocumentEntryTypeCode"
P_DE_PRACTICE_SETTING_CODE: Final = "$XDSDocumentEntryPracticeSettingCode"
P_DE_CREATION_TIME_FROM: Final = "$XDSDocumentEntryCreationTimeFrom"
P_DE_CREATION_TIME_TO: Final = "$XDSDocumentEntryCreationTimeTo"
P_DE_SERVICE_START_TIME_FROM: Final = "$XDSDocumentEntryServiceStartTimeFrom"
P_DE_SERVICE_START_TIME_TO: Final = "$XDSDocumentEntryServiceStartTimeTo"
P_DE_SERVICE_STOP_TIME_FROM: Final = "$XDSDocumentEntryServiceStopTimeFrom"
P_DE_SERVICE_STOP_TIME_TO: Final = "$XDSDocumentEntryServiceStopTimeTo"
P_DE_HEALTHCARE_FACILITY_TYPE_CODE: Final = "$XDSDocumentEntryHealthcareFacilityTypeCode"
P_DE_EVENT_CODE_LIST: Final = "$XDSDocumentEntryEventCodeList"
P_DE_CONFIDENTIALITY_CODE: Final = "$XDSDocumentEntryConfidentialityCode"
P_DE_AUTHOR_PERSON: Final = "$XDSDocumentEntryAuthorPerson"
P_DE_FORMAT_CODE: Final = "$XDSDocumentEntryFormatCode"
P_DE_TYPE: Final = "$XDSDocumentEntryType"
P_DE_ENTRY_UUID: Final = "$XDSDocumentEntryEntryUUID"
P_DE_UNIQUE_ID: Final = "$XDSDocumentEntryUniqueId"
P_DE_REFERENCE_ID_LIST: Final = "$XDSDocumentEntryReferenceIdList"
P_DE_LOGICAL_ID: Final = "$XDSDocumentEntryLogicalID"
P_METADATA_LEVEL: Final = "$MetadataLevel"
P_SS_PATIENT_ID: Final = "$XDSSubmissionSetPatientId"
P_SS_STATUS: Final = "$XDSSubmissionSetStatus"
P_SS_SOURCE_ID: Final = "$XDSSubmissionSetSourceId"
P_SS_SUBMISSION_TIME_FROM: Final = "$XDSSubmissionSetSubmissionTimeFrom"
P_SS_SUBMISSION_TIME_TO: Final = "$XDSSubmissionSetSubmissionTimeTo"
P_SS_AUTHOR_PERSON: Final = "$XDSSubmissionSetAuthorPerson"
P_SS_CONTENT_TYPE: Final = "$XDSSubmissionSetContentType"
P_SS_ENTRY_UUID: Final = "$XDSSubmissionSetEntryUUID"
P_SS_UNIQUE_ID: Final = "$XDSSubmissionSetUniqueId"
P_FOLDER_PATIENT_ID: Final = "$XDSFolderPatientId"
P_FOLDER_STATUS: Final = "$XDSFolderStatus"
P_FOLDER_LAST_UPDATE_TIME_FROM: Final = "$XDSFolderLastUpdateTimeFrom"
P_FOLDER_LAST_UPDATE_TIME_TO: Final = "$XDSFolderLastUpdateTimeTo"
P_FOLDER_CODE_LIST: Final = "$XDSFolderCodeList"
P_FOLDER_ENTRY_UUID: Final = "$XDSFolderEntryUUID"
P_FOLDER_UNIQUE_ID: Final = "$XDSFolderUniqueId"
P_FOLDER_LOGICAL_ID: Final = "$XDSFolderLogicalID"
P_PATIENT_ID: Final = "$patientId"
P_UUID: Final = "$uuid"
P_ASSOCIATION_TYPES: Final = "$AssociationTypes"
P_HOME_COMMUNITY_ID: Final = "$homeCommunityId"


# When a request names no action at all: the transaction its body's root element is the request
# of, for the roots only one transaction has (ITI-42 and ITI-57 both send lcm:SubmitObjectsRequest).
ROOT_ACTIONS: Final = {
    TAG_PNR_REQUEST: ACTION_ITI41,
    TAG_RETRIEVE_REQUEST: ACTION_ITI43,
    TAG_ADHOC_QUERY_REQUEST: ACTION_ITI18,
    TAG_REMOVE_OBJECTS_REQUEST: ACTION_ITI62,
}
AMBIGUOUS_ROOTS: Final = {TAG_SUBMIT_OBJECTS_REQUEST: (ACTION_ITI42, ACTION_ITI57)}
