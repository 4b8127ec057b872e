"""Model <-> JSON for the registry's `data` column: exact round trips, generic over fields."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from dmp_xds.storage.serialize import (
    association_from_dict,
    association_to_dict,
    document_entry_from_dict,
    document_entry_to_dict,
    folder_from_dict,
    folder_to_dict,
    from_dict,
    sortable_dtm,
    submission_set_from_dict,
    submission_set_to_dict,
    to_dict,
)
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Association, Author, Code, DocumentEntry, Folder, LocalizedString, SubmissionSet
from factories import make_association, make_document_entry, make_folder, make_submission_set


def through_json(data: dict) -> dict:
    """What the database gives back: the dict after a JSON text round trip."""
    return json.loads(json.dumps(data))


def test_document_entry_round_trip_is_exact() -> None:
    entry = make_document_entry(
        status=v.STATUS_APPROVED,
        logical_id="urn:uuid:5f2e9a0c-1111-4222-8333-944455556666",
        version="2",
        limited_metadata=True,
        extra_slots={"urn:ans:extension": ["a", "b"], "empty": []},
        multi_valued_slots={"creationTime": 2},
    )
    entry.confidentiality_codes.append(Code("R", "2.16.840.1.113883.5.25", "Restreint", "urn:uuid:c1"))
    entry.authors.append(Author(institutions=["Clinique^^^^^&1.2.3&ISO^IDNST^^^1"]))
    assert document_entry_from_dict(through_json(document_entry_to_dict(entry))) == entry


def test_nested_values_keep_their_types() -> None:
    entry = document_entry_from_dict(through_json(document_entry_to_dict(make_document_entry())))
    assert isinstance(entry.class_code, Code)
    assert all(isinstance(c, Code) for c in entry.event_codes)
    assert all(isinstance(a, Author) for a in entry.authors)
    assert all(isinstance(t, LocalizedString) for t in entry.title)
    assert isinstance(entry.size, int)


def test_absent_codes_and_empty_lists_round_trip() -> None:
    entry = DocumentEntry(entry_uuid="urn:uuid:00000000-0000-4000-8000-000000000001")
    assert document_entry_from_dict(through_json(document_entry_to_dict(entry))) == entry


@pytest.mark.parametrize(
    "obj, dump, load",
    [
        (
            make_submission_set(status=v.STATUS_APPROVED, limited_metadata=True),
            submission_set_to_dict,
            submission_set_from_dict,
        ),
        (
            make_folder(status=v.STATUS_APPROVED, last_update_time="20240312094500", version="1"),
            folder_to_dict,
            folder_from_dict,
        ),
        (
            make_association("urn:uuid:a", "urn:uuid:b", status=v.STATUS_APPROVED, home_community_id="urn:oid:1.2.3"),
            association_to_dict,
            association_from_dict,
        ),
    ],
    ids=["submission_set", "folder", "association"],
)
def test_other_objects_round_trip(obj: object, dump, load) -> None:
    assert load(through_json(dump(obj))) == obj


def test_every_field_is_serialized() -> None:
    """Generic over the dataclass: a field added to the model is stored without code changes."""
    for obj in (make_document_entry(), make_submission_set(), make_folder(), make_association("a", "b")):
        assert set(to_dict(obj)) == {f.name for f in fields(obj)}


def test_unknown_keys_are_ignored_and_missing_ones_defaulted() -> None:
    """Rows written by another version of the model still load."""
    data = {"entry_uuid": "urn:uuid:x", "unique_id": "1.2.3", "field_of_the_future": 42}
    entry = from_dict(DocumentEntry, data)
    assert entry == DocumentEntry(entry_uuid="urn:uuid:x", unique_id="1.2.3")


def test_folder_and_submission_set_types() -> None:
    assert isinstance(folder_from_dict(folder_to_dict(make_folder())), Folder)
    assert isinstance(submission_set_from_dict(submission_set_to_dict(make_submission_set())), SubmissionSet)
    assert isinstance(association_from_dict(association_to_dict(make_association("a", "b"))), Association)


def test_to_dict_refuses_what_is_not_a_dataclass_instance() -> None:
    with pytest.raises(TypeError):
        to_dict({"entry_uuid": "x"})
    with pytest.raises(TypeError):
        to_dict(DocumentEntry)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2024", "20240000000000"),
        ("202403", "20240300000000"),
        ("20240312093000", "20240312093000"),
        ("20240312093000.123", "20240312093000"),
        ("20240312093000+0100", "20240312093000"),
        ("", None),
        ("abc", None),
        (None, None),
    ],
)
def test_sortable_dtm(value: str | None, expected: str | None) -> None:
    assert sortable_dtm(value) == expected


def test_sortable_dtm_orders_like_time() -> None:
    values = ["20240312", "2024", "20240312093000", "2023123123", "202403"]
    assert sorted(values, key=sortable_dtm) == ["2023123123", "2024", "202403", "20240312", "20240312093000"]
