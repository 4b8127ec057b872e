"""ebRIM 2.1 → 3.0 translation and metadata preparation, on real NIST testkit files."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from dmp_xds.tools.conformance.ebrim21 import WELL_KNOWN_UUIDS, is_ebrim21, to_ebrim30
from dmp_xds.tools.conformance.metadata import (
    assign_patient_id,
    assign_source_id,
    assign_unique_ids,
    assign_uuids,
    substitute,
)
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim import EbrimDecodeError, decode_submit_objects_request
from dmp_xds.xds.xml import parse_bytes

TESTKIT = Path(__file__).resolve().parents[2] / ".." / "shared" / "nist-testkit"
RIM = {"rim": v.NS_RIM, "lcm": v.NS_LCM}


def _load(relative: str) -> etree._Element:
    path = TESTKIT / "tests" / relative
    assert path.is_file(), f"NIST testkit missing: {path} (tests need ../shared/nist-testkit)"
    return parse_bytes(path.read_bytes())


def _ebrim21_submissions() -> list[Path]:
    root = TESTKIT / "tests"
    assert root.is_dir(), f"NIST testkit missing: {root}"
    found = []
    for path in sorted(root.rglob("*.xml")):
        if path.name == "testplan.xml":
            continue
        try:
            element = parse_bytes(path.read_bytes())
        except ValueError:
            continue
        if is_ebrim21(element) and etree.QName(element).localname == "SubmitObjectsRequest":
            found.append(path)
    return found


SUBMISSIONS_21 = _ebrim21_submissions()


def test_the_testkit_has_ebrim21_submissions() -> None:
    assert len(SUBMISSIONS_21) > 100


def test_single_document_submission_becomes_xds_b() -> None:
    request = to_ebrim30(_load("11992/submit/metadata.xml"))
    assert request.tag == v.TAG_SUBMIT_OBJECTS_REQUEST
    assert not is_ebrim21(request)
    (document,) = request.xpath("rim:RegistryObjectList/rim:ExtrinsicObject", namespaces=RIM)
    assert document.get("id") == "Document01"
    # 3.0 order: slots first, then Name, Description, Classification, ExternalIdentifier.
    names = [etree.QName(child).localname for child in document]
    assert names.index("Slot") < names.index("Name") < names.index("Classification") < names.index("ExternalIdentifier")
    for classification in document.xpath("rim:Classification", namespaces=RIM):
        assert classification.get("id", "").startswith("urn:uuid:")
        assert classification.get("classifiedObject") == "Document01"
    for identifier in document.xpath("rim:ExternalIdentifier", namespaces=RIM):
        assert identifier.get("id", "").startswith("urn:uuid:")
        assert identifier.get("registryObject") == "Document01"
    (association,) = request.xpath("//rim:Association", namespaces=RIM)
    assert association.get("associationType") == v.HAS_MEMBER
    assert association.get("id")
    ss_marker = request.xpath("rim:RegistryObjectList/rim:Classification", namespaces=RIM)
    assert [c.get("classificationNode") for c in ss_marker] == [v.SUBMISSION_SET_NODE]
    assert ss_marker[0].get("classifiedObject") == "SubmissionSet01"


def test_scheme_declarations_are_dropped_but_real_references_kept() -> None:
    request = to_ebrim30(_load("11992/rplc/metadata.xml"))
    refs = [r.get("id") for r in request.xpath("//rim:ObjectRef", namespaces=RIM)]
    assert not set(refs) & WELL_KNOWN_UUIDS
    (rplc,) = [a for a in request.xpath("//rim:Association", namespaces=RIM) if a.get("associationType") == v.RPLC]
    assert rplc.get("targetObject") == "$rplc_doc_uuid$"  # filled by UseReport before sending


def test_ebrim30_input_is_left_alone() -> None:
    request = _load("ReposAcceptanceTest-1113/SubmitFolder/single_fol.xml")
    assert not is_ebrim21(request)
    assert to_ebrim30(request) is request


@pytest.mark.parametrize("path", SUBMISSIONS_21, ids=lambda p: str(p.relative_to(TESTKIT / "tests")))
def test_every_testkit_21_submission_translates_and_decodes(path: Path) -> None:
    request = to_ebrim30(parse_bytes(path.read_bytes()))
    assert not is_ebrim21(request)
    for element in request.iter(tag=etree.Element):
        local = etree.QName(element).localname
        if local in ("Classification", "ExternalIdentifier", "Association"):
            assert element.get("id"), f"{local} without id"
    try:
        decode_submit_objects_request(request)
    except EbrimDecodeError as exc:  # structure the server's decoder cannot read
        pytest.fail(f"translated {path} does not decode: {exc}")


def test_patient_unique_ids_and_uuids_are_assigned_and_logged() -> None:
    request = to_ebrim30(_load("11992/submit/metadata.xml"))
    patient = "abc^^^&1.2.3&ISO"
    patients = assign_patient_id(request, patient)
    assert patients == {"Document01": patient, "SubmissionSet01": patient}
    assign_source_id(request, "1.2.3.4")
    uids = assign_unique_ids(request)
    assert set(uids) == {"Document01", "SubmissionSet01"}
    assert all(u.startswith("2.25.") and len(u) <= 64 for u in uids.values())
    document_part = etree.Element(f"{{{v.NS_XDSB}}}Document", id="Document01")
    uuids = assign_uuids(request, [document_part])
    assert {"Document01", "SubmissionSet01"} <= set(uuids)
    (document,) = request.xpath("//rim:ExtrinsicObject", namespaces=RIM)
    assert document.get("id") == uuids["Document01"] == document_part.get("id")
    for classification in document.xpath("rim:Classification", namespaces=RIM):
        assert classification.get("classifiedObject") == uuids["Document01"]
    (association,) = request.xpath("//rim:Association", namespaces=RIM)
    assert association.get("sourceObject") == uuids["SubmissionSet01"]
    assert association.get("targetObject") == uuids["Document01"]
    values = {
        i.get("identificationScheme"): i.get("value") for i in request.xpath("//rim:ExternalIdentifier", namespaces=RIM)
    }
    assert values[v.DE_PATIENT_ID] == values[v.SS_PATIENT_ID] == patient
    assert values[v.DE_UNIQUE_ID] == uids["Document01"]
    assert values[v.SS_SOURCE_ID] == "1.2.3.4"


def test_no_assign_uids_keeps_the_named_object() -> None:
    request = to_ebrim30(_load("11992/submit/metadata.xml"))
    uids = assign_unique_ids(request, keep="Document01")
    assert set(uids) == {"SubmissionSet01"}


def test_substitute_replaces_in_attributes_and_text() -> None:
    query = etree.fromstring("<q a=\"'$uid$'\"><v>('$uid1$','$uid$')</v></q>")
    substitute(query, {"$uid$": "1.2", "$uid1$": "3.4"})
    assert query.get("a") == "'1.2'"
    assert query[0].text == "('3.4','1.2')"
