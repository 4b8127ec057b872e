"""XDS error codes and the error value that validators and transactions pass around.

Errors are values (docs/architecture.md): validators return lists of `XdsError`; a transaction turns them
into a RegistryResponse. Only protocol breakage becomes a SOAP fault (see `soap/faults.py`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from dmp_xds.xds.vocabulary import SEVERITY_ERROR, SEVERITY_WARNING


class ErrorCode(enum.StrEnum):
    """The `errorCode` values of ITI TF-3 Table 4.2.4.1-2 and ebRS 3.0."""

    REGISTRY_METADATA_ERROR = "XDSRegistryMetadataError"
    REPOSITORY_METADATA_ERROR = "XDSRepositoryMetadataError"
    MISSING_DOCUMENT = "XDSMissingDocument"
    MISSING_DOCUMENT_METADATA = "XDSMissingDocumentMetadata"
    PATIENT_ID_DOES_NOT_MATCH = "XDSPatientIdDoesNotMatch"
    UNKNOWN_PATIENT_ID = "XDSUnknownPatientId"
    DUPLICATE_UNIQUE_ID_IN_REGISTRY = "XDSDuplicateUniqueIdInRegistry"
    DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRegistryDuplicateUniqueIdInMessage"
    NON_IDENTICAL_HASH = "XDSNonIdenticalHash"
    NON_IDENTICAL_SIZE = "XDSNonIdenticalSize"
    REGISTRY_ERROR = "XDSRegistryError"
    REPOSITORY_ERROR = "XDSRepositoryError"
    REGISTRY_BUSY = "XDSRegistryBusy"
    REGISTRY_OUT_OF_RESOURCES = "XDSRegistryOutOfResources"
    REGISTRY_NOT_AVAILABLE = "XDSRegistryNotAvailable"
    STORED_QUERY_PARAM_NUMBER = "XDSStoredQueryParamNumber"
    STORED_QUERY_MISSING_PARAM = "XDSStoredQueryMissingParam"
    UNKNOWN_STORED_QUERY = "XDSUnknownStoredQuery"
    TOO_MANY_RESULTS = "XDSTooManyResults"
    RESULT_NOT_SINGLE_PATIENT = "XDSResultNotSinglePatient"
    DOCUMENT_UNIQUE_ID_ERROR = "XDSDocumentUniqueIdError"
    UNKNOWN_REPOSITORY_ID = "XDSUnknownRepositoryId"
    UNKNOWN_COMMUNITY = "XDSUnknownCommunity"
    MISSING_HOME_COMMUNITY_ID = "XDSMissingHomeCommunityId"
    METADATA_UPDATE_ERROR = "XDSMetadataUpdateError"
    METADATA_VERSION_ERROR = "XDSMetadataVersionError"
    METADATA_UPDATE_OPERATION_ERROR = "XDSMetadataUpdateOperationError"
    PATIENT_ID_RECONCILIATION_ERROR = "XDSPatientIDReconciliationError"
    UNRESOLVED_REFERENCE = "UnresolvedReferenceException"
    REFERENCES_EXIST = "ReferencesExistException"
    OBJECT_NOT_FOUND = "ObjectNotFoundException"
    # ITI-62: the deletion would leave a SubmissionSet with no member, or a member of none.
    UNREFERENCED_OBJECT = "XDSUnreferencedObjectException"


class Severity(enum.StrEnum):
    ERROR = SEVERITY_ERROR
    WARNING = SEVERITY_WARNING


@dataclass(frozen=True, slots=True)
class XdsError:
    """One `rs:RegistryError`: what went wrong (`context`), where (`location`), and its code."""

    code: ErrorCode
    context: str
    location: str = ""
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def error(code: ErrorCode, context: str, location: str = "") -> XdsError:
    return XdsError(code, context, location, Severity.ERROR)


def warning(code: ErrorCode, context: str, location: str = "") -> XdsError:
    return XdsError(code, context, location, Severity.WARNING)


class XdsFailure(Exception):
    """Raised inside a transaction to abort it with these errors (the store rolls back)."""

    def __init__(self, errors: list[XdsError]) -> None:
        super().__init__("; ".join(f"{e.code.value}: {e.context}" for e in errors))
        self.errors = errors
