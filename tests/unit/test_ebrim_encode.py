"""model -> ebRIM 3.0: round trips on the NIST testkit, schema order, responses."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim import (
    decode_registry_object_list,
    decode_submit_objects_request,
    encode_association,
    encode_document_entry,
    encode_folder,
    encode_object_ref,
    encode_registry_object_list,
    encode_registry_response,
    encode_submission_set,
    encode_submit_objects_request,
)
from dmp_xds.xds.errors import ErrorCode, error, warning
from dmp_xds.xds.model import ObjectRef, Submission
from dmp_xds.xds.xml import parse_bytes, to_bytes
from factories import (
    TESTKIT,
    ebrim30_testkit_files,
    make_association,
    make_document_entry,
    make_folder,
    make_submission,
    make_submission_set,
    submit_objects_requests_in,
)

TESTKIT_FILES = ebrim30_testkit_files()
_TESTKIT_IDS = [str(p.relative_to(TESTKIT)) for p in TESTKIT_FILES]

# ebRIM 3.0 RegistryObjectType content model, in order; each at most once but Slot,
# Classification and ExternalIdentifier.
_SCHEMA_ORDER = ["Slot", "Name", "Description", "VersionInfo", "Classification", "ExternalIdentifier"]
_REPEATABLE = {"Slot", "Classification", "ExternalIdentifier"}
_UUID = re.compile(r"^urn:uuid:[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$")
_REF = ObjectRef("urn:uuid:0e3f7a52-3c1b-4f6e-9d1a-8f2b7c4d5e60")
_LID = "urn:uuid:7d9f1c8e-0b0a-4c1e-9a57-0d8b5e3b9a11"


def _reparse(element: etree._Element) -> etree._Element:
    """Serialize and parse again, so that tests see what goes on the wire."""
    return parse_bytes(to_bytes(element))


def _round_trip(submission: Submission) -> Submission:
    return decode_submit_objects_request(_reparse(encode_submit_objects_request(submission)))


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _registry_objects(root: etree._Element) -> Iterator[etree._Element]:
    for tag in (v.TAG_EXTRINSIC_OBJECT, v.TAG_REGISTRY_PACKAGE, v.TAG_ASSOCIATION):
        yield from root.iter(tag)
    yield from root.iter(v.TAG_CLASSIFICATION)
    yield from root.iter(v.TAG_EXTERNAL_IDENTIFIER)


def _assert_schema_order(root: etree._Element) -> None:
    for element in _registry_objects(root):
        names = [_local(child) for child in element]
        positions = [_SCHEMA_ORDER.index(name) for name in names]
        assert positions == sorted(positions), f"{_local(element)} children out of order: {names}"
        for name in set(names) - _REPEATABLE:
            assert names.count(name) == 1, f"{_local(element)} has {name} {names.count(name)} times"


def _strip_generated_ids(submission: Submission) -> Submission:
    """The submission without the ids an encoder generates when the model has none."""
    stripped = copy.deepcopy(submission)
    for obj in [stripped.submission_set, *stripped.documents, *stripped.folders]:
        if obj is None:
            continue
        for name in (
            "classification_id",
            "patient_id_identifier_id",
            "unique_id_identifier_id",
            "source_id_identifier_id",
        ):
            if hasattr(obj, name):
                setattr(obj, name, None)
        for value in _field_values(obj):
            for item in value if isinstance(value, list) else [value]:
                if hasattr(item, "classification_id"):
                    item.classification_id = None
    return stripped


def _field_values(obj: object) -> list[object]:
    return [getattr(obj, name) for name in obj.__slots__]  # type: ignore[attr-defined]


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", TESTKIT_FILES, ids=_TESTKIT_IDS)
def test_testkit_submission_round_trips(path: Path) -> None:
    for request in submit_objects_requests_in(path):
        decoded = decode_submit_objects_request(request)
        assert _round_trip(decoded) == decoded


@pytest.mark.parametrize("path", TESTKIT_FILES, ids=_TESTKIT_IDS)
def test_testkit_objects_round_trip_as_registry_object_list(path: Path) -> None:
    for request in submit_objects_requests_in(path):
        decoded = decode_submit_objects_request(request)
        objects = [decoded.submission_set, *decoded.documents, *decoded.folders, *decoded.associations]
        element = _reparse(encode_registry_object_list(objects))
        assert decode_registry_object_list(element) == decoded


@pytest.mark.parametrize("path", TESTKIT_FILES, ids=_TESTKIT_IDS)
def test_testkit_encoding_follows_schema_order(path: Path) -> None:
    for request in submit_objects_requests_in(path):
        _assert_schema_order(encode_submit_objects_request(decode_submit_objects_request(request)))


def test_factory_submission_round_trips_every_field() -> None:
    submission = make_submission(2, with_folder=True, object_refs=[_REF])
    submission.documents[0].extra_slots = {"urn:asip:ci-sis:2010:extension": ["x", "y"]}
    submission.documents[0].limited_metadata = True
    submission.submission_set.limited_metadata = True
    submission.folders[0].limited_metadata = True
    submission.folders[0].last_update_time = "20240313101010"
    submission.submission_set.home_community_id = "urn:oid:1.2.250.1.999"
    decoded = _round_trip(submission)
    assert decoded.problems == []
    assert _strip_generated_ids(decoded) == submission
    assert _round_trip(decoded) == decoded


def test_empty_and_absent_values_round_trip() -> None:
    entry = make_document_entry(
        title=[],
        comments=[],
        authors=[],
        event_codes=[],
        class_code=None,
        size=None,
        source_patient_info=[],
        reference_ids=[],
        mime_type=None,
        unique_id=None,
    )
    (decoded,) = decode_registry_object_list(encode_registry_object_list([entry])).documents
    assert _strip_generated_ids(Submission(documents=[decoded])).documents[0] == entry


# --- element shapes ------------------------------------------------------------------------------


def test_factory_encoding_follows_schema_order() -> None:
    submission = make_submission(2, with_folder=True)
    submission.documents[0].version = "1"
    submission.folders[0].version = "1"
    _assert_schema_order(encode_submit_objects_request(submission))
    _assert_schema_order(
        encode_registry_object_list([submission.submission_set, *submission.documents, *submission.folders])
    )


def test_document_entry_element() -> None:
    entry = make_document_entry(version="1", logical_id=_LID)
    element = encode_document_entry(entry)
    assert element.tag == v.TAG_EXTRINSIC_OBJECT
    assert element.get("id") == entry.entry_uuid
    assert element.get("objectType") == v.DOCUMENT_ENTRY_STABLE
    assert element.get("mimeType") == "text/plain"
    assert element.get("lid") == entry.logical_id
    assert element.find(v.TAG_VERSION_INFO).get("versionName") == "1"
    slots = [s.get("name") for s in element.iterchildren(v.TAG_SLOT)]
    assert v.SLOT_REFERENCE_ID_LIST in slots and v.SLOT_SIZE in slots
    size = element.find(f"{v.TAG_SLOT}[@name='size']/{v.TAG_VALUE_LIST}/{v.TAG_VALUE}")
    assert size.text == str(entry.size)
    title = element.find(f"{v.TAG_NAME}/{v.TAG_LOCALIZED_STRING}")
    assert dict(title.attrib) == {
        "value": "Compte rendu de consultation",
        v.ATTR_XML_LANG: "fr-FR",
        "charset": "UTF-8",
    }


def test_every_classification_and_external_identifier_is_complete() -> None:
    root = encode_submit_objects_request(make_submission(2, with_folder=True))
    classifications = list(root.iter(v.TAG_CLASSIFICATION))
    assert classifications
    for c in classifications:
        assert c.get("objectType") == v.OBJECT_TYPE_CLASSIFICATION
        assert _UUID.match(c.get("id")), c.get("id")
        assert c.get("classifiedObject")
        if c.get("classificationNode") is None:
            assert c.get("classificationScheme") and c.get("nodeRepresentation") is not None
    identifiers = list(root.iter(v.TAG_EXTERNAL_IDENTIFIER))
    assert len(identifiers) == 3 + 2 * 2 + 2
    for e in identifiers:
        assert set(e.attrib) == {"id", "registryObject", "identificationScheme", "value", "objectType"}
        assert e.get("objectType") == v.OBJECT_TYPE_EXTERNAL_IDENTIFIER
        name = e.find(f"{v.TAG_NAME}/{v.TAG_LOCALIZED_STRING}").get("value")
        assert name == v.EXTERNAL_IDENTIFIER_NAMES[e.get("identificationScheme")]
    generated = [c.get("id") for c in classifications] + [e.get("id") for e in identifiers]
    assert len(set(generated)) == len(generated)


def test_code_classification_carries_scheme_and_display() -> None:
    entry = make_document_entry()
    element = encode_document_entry(entry)
    (class_code,) = [
        c for c in element.iterchildren(v.TAG_CLASSIFICATION) if c.get("classificationScheme") == v.DE_CLASS_CODE
    ]
    assert class_code.get("nodeRepresentation") == entry.class_code.code
    assert class_code.get("classifiedObject") == entry.entry_uuid
    assert [_local(c) for c in class_code] == ["Slot", "Name"]
    scheme = class_code.find(f"{v.TAG_SLOT}/{v.TAG_VALUE_LIST}/{v.TAG_VALUE}").text
    display = class_code.find(f"{v.TAG_NAME}/{v.TAG_LOCALIZED_STRING}").get("value")
    assert (scheme, display) == (entry.class_code.scheme, entry.class_code.display)


def test_submit_objects_request_order_and_top_level_markers() -> None:
    submission = make_submission(2, with_folder=True)
    root = encode_submit_objects_request(submission)
    assert root.tag == v.TAG_SUBMIT_OBJECTS_REQUEST
    (object_list,) = root
    kinds = [(_local(e), e.get("classificationNode")) for e in object_list]
    assert kinds[:2] == [("RegistryPackage", None), ("Classification", v.SUBMISSION_SET_NODE)]
    assert kinds[2:4] == [("ExtrinsicObject", None)] * 2
    assert kinds[4:6] == [("RegistryPackage", None), ("Classification", v.FOLDER_NODE)]
    assert {k for k, _ in kinds[6:]} == {"Association"}
    assert len(kinds[6:]) == len(submission.associations)
    assert object_list[1].get("classifiedObject") == submission.submission_set.entry_uuid


def test_standalone_package_nests_its_marker() -> None:
    ss = make_submission_set(classification_id="ss-node")
    element = encode_submission_set(ss)
    markers = [c for c in element.iterchildren(v.TAG_CLASSIFICATION) if c.get("classificationNode")]
    found = [(m.get("id"), m.get("classificationNode")) for m in markers]
    assert found == [("ss-node", v.SUBMISSION_SET_NODE)]
    folder = encode_folder(make_folder())
    folder_markers = [
        c.get("classificationNode") for c in folder.iterchildren(v.TAG_CLASSIFICATION) if c.get("classificationNode")
    ]
    assert folder_markers == [v.FOLDER_NODE]


def test_association_and_object_ref_elements() -> None:
    association = make_association(
        "urn:uuid:a", "urn:uuid:b", status=v.STATUS_APPROVED, slots={"SubmissionSetStatus": ["Original"], "other": []}
    )
    element = encode_association(association)
    assert element.attrib == {
        "id": association.entry_uuid,
        "associationType": v.HAS_MEMBER,
        "sourceObject": "urn:uuid:a",
        "targetObject": "urn:uuid:b",
        "objectType": v.OBJECT_TYPE_ASSOCIATION,
        "status": v.STATUS_APPROVED,
    }
    assert [s.get("name") for s in element] == ["SubmissionSetStatus", "other"]
    ref = encode_object_ref(ObjectRef("urn:uuid:c", "urn:oid:1.2.3"))
    assert ref.tag == v.TAG_OBJECT_REF
    assert dict(ref.attrib) == {"id": "urn:uuid:c", "home": "urn:oid:1.2.3"}


def test_prefixes_declared_once_on_the_root() -> None:
    text = to_bytes(encode_submit_objects_request(make_submission(3, with_folder=True))).decode()
    assert text.startswith("<lcm:SubmitObjectsRequest ")
    assert "<rim:ExtrinsicObject " in text and "<rim:RegistryPackage " in text
    assert text.count(f'xmlns:rim="{v.NS_RIM}"') == 1
    standalone = to_bytes(encode_document_entry(make_document_entry())).decode()
    assert standalone.startswith("<rim:ExtrinsicObject ")
    assert f'xmlns:rim="{v.NS_RIM}"' in standalone


def test_encoding_into_a_parent_appends() -> None:
    parent = etree.Element("{" + v.NS_QUERY + "}AdhocQueryResponse", nsmap=v.NSMAP)
    object_list = encode_registry_object_list([make_document_entry()], parent)
    assert object_list.getparent() is parent and len(object_list) == 1


def test_unknown_object_type_is_refused() -> None:
    with pytest.raises(TypeError):
        encode_registry_object_list(["not a registry object"])


def test_encoding_does_not_change_the_model() -> None:
    submission = make_submission(1, with_folder=True)
    before = copy.deepcopy(submission)
    encode_submit_objects_request(submission)
    encode_registry_object_list([submission.submission_set, *submission.folders])
    assert submission == before


def test_encoding_is_fast() -> None:
    # Hot path: a query returning hundreds of entries. A generous bound that only a
    # pathological implementation (string templates re-parsed, nsmap rebuilt per node) misses.
    entries = [make_document_entry() for _ in range(500)]
    start = time.perf_counter()
    to_bytes(encode_registry_object_list(entries))
    assert time.perf_counter() - start < 2.0


# --- RegistryResponse -----------------------------------------------------------------------------


def test_success_response_has_no_error_list() -> None:
    element = encode_registry_response(v.RESPONSE_SUCCESS, [])
    assert element.tag == v.TAG_REGISTRY_RESPONSE
    assert element.get("status") == v.RESPONSE_SUCCESS
    assert len(element) == 0
    assert to_bytes(element).startswith(b"<rs:RegistryResponse ")


def test_failure_response_lists_errors() -> None:
    errors = [
        error(ErrorCode.REGISTRY_METADATA_ERROR, "size is not an integer", "Document01"),
        warning(ErrorCode.REGISTRY_ERROR, "something odd"),
    ]
    element = _reparse(encode_registry_response(v.RESPONSE_FAILURE, errors))
    (error_list,) = element
    assert error_list.tag == v.TAG_REGISTRY_ERROR_LIST
    assert error_list.get("highestSeverity") == v.SEVERITY_ERROR
    assert [dict(e.attrib) for e in error_list] == [
        {
            "errorCode": "XDSRegistryMetadataError",
            "codeContext": "size is not an integer",
            "location": "Document01",
            "severity": v.SEVERITY_ERROR,
        },
        {
            "errorCode": "XDSRegistryError",
            "codeContext": "something odd",
            "location": "",
            "severity": v.SEVERITY_WARNING,
        },
    ]


def test_warnings_only_response() -> None:
    element = encode_registry_response(v.RESPONSE_SUCCESS, [warning(ErrorCode.REGISTRY_ERROR, "w")])
    assert element[0].get("highestSeverity") == v.SEVERITY_WARNING


def test_the_order_check_catches_a_misplaced_child() -> None:
    element = encode_document_entry(make_document_entry())
    element.append(element.find(v.TAG_NAME))  # Name moved after the ExternalIdentifiers
    with pytest.raises(AssertionError, match="out of order"):
        _assert_schema_order(element)
