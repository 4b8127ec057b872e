"""ebRIM 3.0 -> model: real NIST testkit messages, and malformed ones built here."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim import (
    EbrimDecodeError,
    decode_registry_object_list,
    decode_submit_objects_request,
    encode_registry_object_list,
    encode_submit_objects_request,
)
from dmp_xds.xds.model import DocumentEntry, LocalizedString, ObjectRef, Submission
from dmp_xds.xds.xml import parse_bytes, to_bytes
from factories import (
    PATIENT_ID,
    TESTKIT,
    ebrim30_testkit_files,
    make_document_entry,
    make_folder,
    make_submission,
    submit_objects_requests_in,
)

TESTKIT_FILES = ebrim30_testkit_files()


def _decode_file(relative: str) -> Submission:
    (request,) = submit_objects_requests_in(TESTKIT / "tests" / relative)
    return decode_submit_objects_request(request)


def _object_list(submission: Submission) -> etree._Element:
    """A RegistryObjectList of a factory submission, to be spoilt by a test."""
    return encode_submit_objects_request(submission).find(v.TAG_REGISTRY_OBJECT_LIST)


def _rim(tag: str) -> str:
    return "{" + v.NS_RIM + "}" + tag


def _child(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    for element in parent.iter(tag):
        if all(element.get(k) == value for k, value in attrs.items()):
            return element
    raise AssertionError(f"no {tag} with {attrs}")


# --- the testkit ---------------------------------------------------------------------------------


def test_testkit_holds_the_expected_ebrim30_submissions() -> None:
    # 48 files (45 in the test plans, 3 in the shared test data) carry a 3.0
    # SubmitObjectsRequest; far fewer would mean the testkit was truncated and the
    # parametrized tests below run on too little.
    assert len(TESTKIT_FILES) >= 45


@pytest.mark.parametrize("path", TESTKIT_FILES, ids=[str(p.relative_to(TESTKIT)) for p in TESTKIT_FILES])
def test_every_testkit_submission_decodes_without_problems(path: Path) -> None:
    for request in submit_objects_requests_in(path):
        submission = decode_submit_objects_request(request)
        assert submission.problems == []
        assert submission.submission_set_count == 1
        assert submission.submission_set is not None
        for entry in submission.documents:
            assert entry.multi_valued_slots == {}
            assert entry.patient_id is not None and entry.unique_id is not None


def test_single_document_of_test_20100b() -> None:
    submission = _decode_file("20100b/submit_doc/single_doc.xml")
    (entry,) = submission.documents
    assert entry.entry_uuid == "Document01"  # symbolic ids are kept
    assert entry.object_type == v.DOCUMENT_ENTRY_STABLE
    assert entry.mime_type == "text/plain"
    assert entry.creation_time == "20051224"
    assert entry.size == 4
    assert entry.hash == "e543712c0e10501972de13a5bfcbe826c49feb75"
    assert entry.repository_unique_id == "1.19.6.24.109.42.1"
    assert entry.source_patient_id == "89765a87b^^^&1.2.3.4.5&ISO"
    assert entry.source_patient_info[0] == "PID-3|pid1^^^&1.2.3.4.5.6&ISO"
    assert len(entry.source_patient_info) == 5
    assert entry.title == [LocalizedString("Physical")]
    assert entry.comments == []  # <rim:Description/> is empty
    assert (entry.class_code.code, entry.class_code.scheme, entry.class_code.display) == (
        "REPORTS",
        "1.3.6.1.4.1.19376.1.2.6.1",
        "Reports",
    )
    assert entry.class_code.classification_id == "id_3"
    assert [c.code for c in entry.event_codes] == [
        "urn:connectathon:bppc:foundational:policy",
        "urn:connectathon:policy:full-access",
    ]
    assert [c.code for c in entry.confidentiality_codes] == ["V"]
    assert entry.type_code.key() == ("11369-6", "2.16.840.1.113883.6.1")
    assert entry.healthcare_facility_type_code.code == "225728007"
    assert entry.practice_setting_code.display == "Radiology"
    assert entry.format_code.code == "urn:ihe:rad:TEXT"
    assert entry.patient_id == "$patientidDE$"
    assert entry.patient_id_identifier_id == "id_11"
    assert (entry.unique_id, entry.unique_id_identifier_id) == ("Document01", "id_12")
    first, second = entry.authors
    assert first.person == "^Smitty^Gerald^^^"
    assert first.institutions == [
        "Cleveland Clinic^^^^^&1.2.3&ISO^^^^CleveClin",
        "Parma Community^^^^^^^^^1.2.3",
    ]
    assert first.roles == ["Attending"] and first.specialties == ["Orthopedic"]
    assert first.classification_id == "id_1"
    assert second.person == "^Dopplemeyer^Sherry^^^"


def test_submission_set_marked_by_a_top_level_classification() -> None:
    submission = _decode_file("20100b/submit_doc/single_doc.xml")
    ss = submission.submission_set
    assert ss is not None
    assert ss.entry_uuid == "SubmissionSet01"
    assert ss.classification_id == "ID_704024720_1"
    assert ss.submission_time == "20041225235050"
    assert ss.source_id == "1.3.6.1.4.1.21367.2008.1.2.178"
    assert ss.source_id_identifier_id == "id_16"
    assert ss.content_type_code.code == "225728007"
    assert ss.comments == [LocalizedString("Annual physical")]
    (association,) = submission.associations
    assert (association.source, association.target) == ("SubmissionSet01", "Document01")
    assert association.association_type == v.HAS_MEMBER
    assert association.slots == {v.SLOT_SUBMISSION_SET_STATUS: ["Original"]}


def test_folder_inside_provide_and_register_request() -> None:
    submission = _decode_file("ReposAcceptanceTest-1113/SubmitFolderwDoc/fol_doc.xml")
    (folder,) = submission.folders
    assert folder.entry_uuid == "myFolderId1"
    assert folder.classification_id == "urn:uuid:2bf23d26-5dda-4442-afb1-8bec99631e3e"
    assert folder.title == [LocalizedString("FOLDER")]
    assert [(c.code, c.scheme) for c in folder.codes] == [("Referrals", "1.3.6.1.4.1.21367.2017.3")]
    assert folder.unique_id == "1.2.42.20181005.1504.4.777.200"
    assert folder.patient_id == "P1005125143.2^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
    assert submission.submission_set.entry_uuid == "mySsId01"
    assert [a.entry_uuid for a in submission.associations] == [
        "myAssocId1",
        "myAssocId4",
        "myAssocId2",
        "myAssocId3",
    ]
    assert submission.associations[0].slots == {}


# --- the two forms of the SubmissionSet / Folder marker -----------------------------------------


def test_nested_node_classification_marks_the_package() -> None:
    submission = make_submission(with_folder=True)
    ss, folder = submission.submission_set, submission.folders[0]
    ss.classification_id, folder.classification_id = "ss-node", "folder-node"
    element = encode_registry_object_list([ss, folder])  # nests the markers
    assert element.find(v.TAG_CLASSIFICATION) is None
    decoded = decode_registry_object_list(element)
    assert decoded.problems == []
    assert decoded.submission_set.classification_id == "ss-node"
    assert decoded.folders[0].classification_id == "folder-node"


def test_several_submission_sets_are_counted() -> None:
    first = make_submission().submission_set
    second = make_submission().submission_set
    decoded = decode_registry_object_list(encode_registry_object_list([first, second]))
    assert decoded.submission_set_count == 2
    assert decoded.submission_set.entry_uuid == first.entry_uuid


# --- values XDS does not name, and optional attributes -------------------------------------------


def test_unknown_slots_are_kept_in_order() -> None:
    entry = make_document_entry(extra_slots={"zeta": ["1"], "alpha": ["a", "b"]})
    decoded = decode_registry_object_list(encode_registry_object_list([entry]))
    extra = decoded.documents[0].extra_slots
    assert list(extra.items()) == [("zeta", ["1"]), ("alpha", ["a", "b"])]


def test_optional_attributes_and_reference_ids() -> None:
    entry = make_document_entry(
        status=v.STATUS_APPROVED,
        logical_id="urn:uuid:7d9f1c8e-0b0a-4c1e-9a57-0d8b5e3b9a11",
        version="2",
        home_community_id="urn:oid:1.2.250.1.999",
        document_availability=v.DOCUMENT_AVAILABILITY_ONLINE,
        uri="https://repository.example/doc/1",
        limited_metadata=True,
        object_type=v.DOCUMENT_ENTRY_ON_DEMAND,
        title=[LocalizedString("Titre", "fr-FR", "UTF-8"), LocalizedString("Title", "en-US")],
    )
    (decoded,) = decode_registry_object_list(encode_registry_object_list([entry])).documents
    assert decoded.status == v.STATUS_APPROVED
    assert decoded.logical_id == entry.logical_id
    assert decoded.version == "2"
    assert decoded.home_community_id == "urn:oid:1.2.250.1.999"
    assert decoded.document_availability == v.DOCUMENT_AVAILABILITY_ONLINE
    assert decoded.uri == entry.uri
    assert decoded.limited_metadata is True
    assert decoded.object_type == v.DOCUMENT_ENTRY_ON_DEMAND
    assert decoded.title == entry.title
    assert decoded.reference_ids == entry.reference_ids
    assert decoded.patient_id == PATIENT_ID


def test_object_refs() -> None:
    refs = [ObjectRef("urn:uuid:0e3f7a52-3c1b-4f6e-9d1a-8f2b7c4d5e60", "urn:oid:1.2.3")]
    decoded = decode_registry_object_list(encode_registry_object_list(refs))
    assert decoded.object_refs == refs


def test_comments_and_processing_instructions_are_ignored() -> None:
    element = _object_list(make_submission())
    element.insert(0, etree.Comment("a comment"))
    element[2].insert(0, etree.Comment("inside the package"))
    assert decode_registry_object_list(element).problems == []


# --- malformed metadata: reported, never raised ---------------------------------------------------


def test_size_not_an_integer_is_a_problem() -> None:
    element = _object_list(make_submission())
    size = _child(element, v.TAG_SLOT, name=v.SLOT_SIZE)
    size.find(v.TAG_VALUE_LIST)[0].text = "12kB"
    decoded = decode_registry_object_list(element)
    assert decoded.documents[0].size is None
    assert any("size" in p and "12kB" in p for p in decoded.problems)


def test_single_valued_slot_with_several_values_keeps_first_and_counts() -> None:
    element = _object_list(make_submission())
    value_list = _child(element, v.TAG_SLOT, name=v.SLOT_CREATION_TIME).find(v.TAG_VALUE_LIST)
    etree.SubElement(value_list, v.TAG_VALUE).text = "20200101"
    etree.SubElement(value_list, v.TAG_VALUE).text = "20210101"
    (entry,) = decode_registry_object_list(element).documents
    assert entry.creation_time == "20240312093000"
    assert entry.multi_valued_slots == {v.SLOT_CREATION_TIME: 3}


def test_single_valued_code_and_identifier_given_twice_are_counted() -> None:
    entry = make_document_entry()
    element = encode_registry_object_list([entry])
    extrinsic = element[0]
    class_code = _child(extrinsic, v.TAG_CLASSIFICATION, classificationScheme=v.DE_CLASS_CODE)
    unique_id = _child(extrinsic, v.TAG_EXTERNAL_IDENTIFIER, identificationScheme=v.DE_UNIQUE_ID)
    for original in (class_code, unique_id):
        twin = etree.fromstring(etree.tostring(original))
        twin.set("id", original.get("id") + "-twin")
        original.addnext(twin)
    (decoded,) = decode_registry_object_list(element).documents
    assert decoded.multi_valued_slots == {"classCode": 2, "uniqueId": 2}
    assert decoded.unique_id == entry.unique_id
    assert decoded.class_code.classification_id == class_code.get("id")


def test_slot_given_twice_is_a_problem() -> None:
    element = _object_list(make_submission())
    slot = _child(element, v.TAG_SLOT, name=v.SLOT_HASH)
    slot.addnext(etree.fromstring(etree.tostring(slot)))
    assert any("hash is given twice" in p for p in decode_registry_object_list(element).problems)


def test_package_classified_as_neither_is_a_problem() -> None:
    element = _object_list(make_submission(with_folder=True))
    for node in list(element.iterchildren(v.TAG_CLASSIFICATION)):
        if node.get("classificationNode") == v.FOLDER_NODE:
            element.remove(node)
    decoded = decode_registry_object_list(element)
    assert decoded.folders == []
    assert any("neither as SubmissionSet nor as Folder" in p for p in decoded.problems)


def test_package_classified_as_both_is_a_problem() -> None:
    submission = make_submission()
    element = _object_list(submission)
    attrib = {
        "id": "both",
        "classificationNode": v.FOLDER_NODE,
        "classifiedObject": submission.submission_set.entry_uuid,
    }
    etree.SubElement(element, v.TAG_CLASSIFICATION, attrib)
    decoded = decode_registry_object_list(element)
    assert decoded.submission_set is None and decoded.submission_set_count == 0
    assert any("both as SubmissionSet and as Folder" in p for p in decoded.problems)


def test_classification_of_unknown_object_is_a_problem() -> None:
    submission = make_submission()
    element = _object_list(submission)
    marker = next(element.iterchildren(v.TAG_CLASSIFICATION))
    marker.set("classifiedObject", "NoSuchObject")
    decoded = decode_registry_object_list(element)
    assert any("unknown object NoSuchObject" in p for p in decoded.problems)
    assert any("neither as SubmissionSet nor as Folder" in p for p in decoded.problems)


def test_unknown_schemes_and_nodes_are_problems() -> None:
    element = _object_list(make_submission())
    extrinsic = element.find(v.TAG_EXTRINSIC_OBJECT)
    _child(extrinsic, v.TAG_EXTERNAL_IDENTIFIER, identificationScheme=v.DE_UNIQUE_ID).set(
        "identificationScheme", "urn:uuid:00000000-0000-0000-0000-000000000001"
    )
    _child(extrinsic, v.TAG_CLASSIFICATION, classificationScheme=v.DE_TYPE_CODE).set(
        "classificationScheme", "urn:uuid:00000000-0000-0000-0000-000000000002"
    )
    etree.SubElement(extrinsic, v.TAG_CLASSIFICATION, classificationNode=v.FOLDER_NODE)
    decoded = decode_registry_object_list(element)
    entry = decoded.documents[0]
    assert entry.unique_id is None and entry.type_code is None
    text = "\n".join(decoded.problems)
    assert "unknown ExternalIdentifier scheme urn:uuid:00000000-0000-0000-0000-000000000001" in text
    assert "unknown classification scheme urn:uuid:00000000-0000-0000-0000-000000000002" in text
    assert f"unknown classification node {v.FOLDER_NODE}" in text


def test_inconsistent_nested_references_are_problems() -> None:
    element = _object_list(make_submission())
    extrinsic = element.find(v.TAG_EXTRINSIC_OBJECT)
    extrinsic.find(v.TAG_CLASSIFICATION).set("classifiedObject", "SomethingElse")
    extrinsic.find(v.TAG_EXTERNAL_IDENTIFIER).set("registryObject", "SomethingElse")
    problems = decode_registry_object_list(element).problems
    assert any("nested Classification" in p and "SomethingElse" in p for p in problems)
    assert any("nested ExternalIdentifier" in p and "SomethingElse" in p for p in problems)


def test_object_type_is_kept_as_sent_and_missing_id_is_a_problem() -> None:
    element = _object_list(make_submission(2))
    first, second = element.iterchildren(v.TAG_EXTRINSIC_OBJECT)
    del first.attrib["objectType"]
    second.set("objectType", "urn:uuid:not-a-document-type")
    del second.attrib["id"]
    decoded = decode_registry_object_list(element)
    # The validator judges objectType; the decoder only keeps what was sent.
    assert [d.object_type for d in decoded.documents] == ["", "urn:uuid:not-a-document-type"]
    assert decoded.problems[0] == "ExtrinsicObject without an id attribute"
    assert not any("objectType" in p for p in decoded.problems)


def test_duplicate_ids_and_association_defects_are_problems() -> None:
    submission = make_submission(2)
    submission.documents[1].entry_uuid = submission.documents[0].entry_uuid
    element = _object_list(submission)
    association = element.find(v.TAG_ASSOCIATION)
    del association.attrib["targetObject"]
    etree.SubElement(association, v.TAG_CLASSIFICATION, classificationScheme="x")
    problems = decode_registry_object_list(element).problems
    assert any("is used by several objects" in p for p in problems)
    assert any("missing targetObject" in p for p in problems)
    assert any("unexpected Classification" in p for p in problems)


def test_code_and_author_defects_are_problems() -> None:
    element = _object_list(make_submission())
    extrinsic = element.find(v.TAG_EXTRINSIC_OBJECT)
    class_code = _child(extrinsic, v.TAG_CLASSIFICATION, classificationScheme=v.DE_CLASS_CODE)
    value_list = class_code.find(v.TAG_SLOT).find(v.TAG_VALUE_LIST)
    etree.SubElement(value_list, v.TAG_VALUE).text = "1.2.3"
    author = _child(extrinsic, v.TAG_CLASSIFICATION, classificationScheme=v.DE_AUTHOR)
    person = _child(author, v.TAG_SLOT, name=v.SLOT_AUTHOR_PERSON).find(v.TAG_VALUE_LIST)
    etree.SubElement(person, v.TAG_VALUE).text = "^Other^Person"
    etree.SubElement(author, v.TAG_SLOT, name="authorShoeSize")
    problems = "\n".join(decode_registry_object_list(element).problems)
    assert "codingScheme must have one value" in problems
    assert "authorPerson has 2 values" in problems
    assert "unexpected slot authorShoeSize" in problems


def test_unexpected_elements_are_problems() -> None:
    element = _object_list(make_submission())
    etree.SubElement(element, "{" + v.NS_RIM21 + "}ExtrinsicObject", id="old")
    etree.SubElement(element.find(v.TAG_EXTRINSIC_OBJECT), "{urn:example}Extension")
    problems = "\n".join(decode_registry_object_list(element).problems)
    assert f"unexpected element {{{v.NS_RIM21}}}ExtrinsicObject" in problems
    assert "unexpected element {urn:example}Extension" in problems


# --- not ebRIM at all: raised ---------------------------------------------------------------------


def test_wrong_root_elements_raise() -> None:
    list_element = _object_list(make_submission())
    with pytest.raises(EbrimDecodeError):
        decode_submit_objects_request(list_element)
    with pytest.raises(EbrimDecodeError):
        decode_registry_object_list(list_element.getparent())
    with pytest.raises(EbrimDecodeError):
        decode_registry_object_list(etree.Element("{" + v.NS_RIM21 + "}LeafRegistryObjectList"))


def test_submit_objects_request_without_object_list_raises() -> None:
    request = etree.Element(v.TAG_SUBMIT_OBJECTS_REQUEST)
    with pytest.raises(EbrimDecodeError, match="without rim:RegistryObjectList"):
        decode_submit_objects_request(request)


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(EbrimDecodeError, ValueError)


def test_decoding_reparsed_bytes_uses_the_secure_parser() -> None:
    data = to_bytes(encode_submit_objects_request(make_submission()))
    decoded = decode_submit_objects_request(parse_bytes(data))
    assert isinstance(decoded.documents[0], DocumentEntry)
    assert decoded.problems == []


def test_folder_factory_decodes() -> None:
    folder = make_folder(version="3", logical_id="urn:uuid:11111111-2222-4333-8444-555555555555")
    (decoded,) = decode_registry_object_list(encode_registry_object_list([folder])).folders
    assert (decoded.version, decoded.logical_id) == ("3", folder.logical_id)
