"""Model objects <-> JSON-able dicts, for the `data` column of the registry tables.

The registry keeps each object's whole model as JSON so that queries give back exactly what
was submitted. The conversion is generic over dataclass fields (driven by their type hints), so
a field added to the model is stored without touching this module; a field missing from an
older row takes its default when read back.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from dmp_xds.xds.model import Association, DocumentEntry, Folder, SubmissionSet

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")

DTM_LENGTH = 14  # YYYYMMDDhhmmss: the full precision XDS allows


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass instance as a dict of JSON values (nested dataclasses become dicts)."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"expected a dataclass instance, got {type(obj).__name__}")
    return _dataclass_to_json(obj)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """The inverse of `to_dict`. Unknown keys are ignored; missing ones take the field default."""
    hints = _type_hints(cls)
    kwargs = {
        f.name: _from_json(hints[f.name], data[f.name]) for f in dataclasses.fields(cls) if f.name in data and f.init
    }
    return cls(**kwargs)


def document_entry_to_dict(entry: DocumentEntry) -> dict[str, Any]:
    return to_dict(entry)


def document_entry_from_dict(data: dict[str, Any]) -> DocumentEntry:
    return from_dict(DocumentEntry, data)


def submission_set_to_dict(submission_set: SubmissionSet) -> dict[str, Any]:
    return to_dict(submission_set)


def submission_set_from_dict(data: dict[str, Any]) -> SubmissionSet:
    return from_dict(SubmissionSet, data)


def folder_to_dict(folder: Folder) -> dict[str, Any]:
    return to_dict(folder)


def folder_from_dict(data: dict[str, Any]) -> Folder:
    return from_dict(Folder, data)


def association_to_dict(association: Association) -> dict[str, Any]:
    return to_dict(association)


def association_from_dict(data: dict[str, Any]) -> Association:
    return from_dict(Association, data)


def sortable_dtm(value: str | None) -> str | None:
    """A DTM padded with zeros to full precision, so that string order is time order.

    `2024` becomes `20240000000000`: the coarser value sorts before every finer one it
    contains, which is what the stored queries' `From` (>=) and `To` (<) bounds need.
    Anything after the digits (fractions, an offset a source should not send) is dropped.
    """
    if value is None:
        return None
    digits = ""
    for char in value.strip():
        if not char.isdigit():
            break
        digits += char
    if not digits:
        return None
    return digits[:DTM_LENGTH].ljust(DTM_LENGTH, "0")


# --- generic conversion ---------------------------------------------------------------------


# Every submission serializes each of its objects on the write path: the common cases are
# tested first and each class's field names are computed once.
_SCALARS = (str, int, float, bool, type(None))


def _dataclass_to_json(obj: DataclassInstance) -> dict[str, Any]:
    return {name: _to_json(getattr(obj, name)) for name in _field_names(type(obj))}


def _to_json(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _to_json(item) for key, item in value.items()}
    if hasattr(type(value), "__dataclass_fields__"):
        return _dataclass_to_json(value)
    return value


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _from_json(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        # `X | None`: the non-None member says how to read the value.
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _from_json(members[0], value) if len(members) == 1 else value
    if origin is list:
        (item_hint,) = typing.get_args(hint) or (Any,)
        return [_from_json(item_hint, item) for item in value]
    if origin is dict:
        args = typing.get_args(hint)
        item_hint = args[1] if len(args) == 2 else Any
        return {key: _from_json(item_hint, item) for key, item in value.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_dict(hint, value)
    return value


@cache
def _type_hints(cls: type) -> dict[str, Any]:
    # The model uses `from __future__ import annotations`: resolve the strings once per class.
    return typing.get_type_hints(cls)
