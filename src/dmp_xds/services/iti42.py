"""ITI-42 Register Document Set-b (Document Registry)."""

from __future__ import annotations

from dmp_xds.services.context import Services, TransactionRequest, TransactionResult
from dmp_xds.services.register import actor_of, register_submission
from dmp_xds.services.rights import submission_result
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.decode import EbrimDecodeError, decode_submit_objects_request
from dmp_xds.xds.errors import ErrorCode, error
from dmp_xds.xds.validation.xds import Transaction


def register_document_set(services: Services, request: TransactionRequest) -> TransactionResult:
    if request.payload.tag != v.TAG_SUBMIT_OBJECTS_REQUEST:
        return submission_result(
            None,
            [
                error(
                    ErrorCode.REGISTRY_METADATA_ERROR,
                    f"ITI-42 expects lcm:SubmitObjectsRequest, not {request.payload.tag}",
                )
            ],
        )
    try:
        submission = decode_submit_objects_request(request.payload)
    except EbrimDecodeError as exc:
        return submission_result(None, [error(ErrorCode.REGISTRY_METADATA_ERROR, str(exc))])
    errors = register_submission(
        services,
        submission,
        Transaction.ITI42,
        actor=actor_of(request.principal),
        patient_of_caller=request.access.patient_id if request.access else None,
    )
    return submission_result(submission, errors)
