"""ebRIM 3.0 codec: the only code that knows ebRIM element names (docs/architecture.md).

`decode` turns ebRIM into the model, `encode` the model into ebRIM; every identifier they use is
in xds/vocabulary.py. The codec's names are re-exported lazily (PEP 562), so that importing one
module of the codec (mapping) does not load the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EbrimDecodeError": "decode",
    "decode_registry_object_list": "decode",
    "decode_submit_objects_request": "decode",
    "encode_association": "encode",
    "encode_document_entry": "encode",
    "encode_folder": "encode",
    "encode_object_ref": "encode",
    "encode_registry_error_list": "encode",
    "encode_registry_object_list": "encode",
    "encode_registry_response": "encode",
    "encode_submission_set": "encode",
    "encode_submit_objects_request": "encode",
    "node_classification": "encode",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dmp_xds.xds.ebrim' has no attribute {name!r}")
    return getattr(importlib.import_module(f"dmp_xds.xds.ebrim.{module}"), name)
