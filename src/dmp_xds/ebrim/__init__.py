"""ebRIM 3.0 codec: the only code that knows ebRIM element names (DESIGN.md)."""

from dmp_xds.ebrim.decode import (
    EbrimDecodeError,
    decode_registry_object_list,
    decode_submit_objects_request,
)
from dmp_xds.ebrim.encode import (
    encode_association,
    encode_document_entry,
    encode_folder,
    encode_object_ref,
    encode_registry_error_list,
    encode_registry_object_list,
    encode_registry_response,
    encode_submission_set,
    encode_submit_objects_request,
    node_classification,
)

__all__ = [
    "EbrimDecodeError",
    "decode_registry_object_list",
    "decode_submit_objects_request",
    "encode_association",
    "encode_document_entry",
    "encode_folder",
    "encode_object_ref",
    "encode_registry_error_list",
    "encode_registry_object_list",
    "encode_registry_response",
    "encode_submission_set",
    "encode_submit_objects_request",
    "node_classification",
]
