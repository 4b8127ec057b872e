"""The client as a DMP-compatible LPS, pure parts: where the DMP's services are, the one place
the submission set's signature is added, the CDA id a plan publishes under, the DMPi plans' layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from dmp_xds.tools.client.lps import service_urls
from dmp_xds.tools.client.publish import provide_and_register_request
from dmp_xds.tools.conformance.messages import with_cda_id
from dmp_xds.tools.conformance.testkit import load_testkit
from dmp_xds.xds import vocabulary as v
from factories import make_submission

DMPI_PLANS = Path(__file__).resolve().parents[2] / "conformance" / "dmpi"
CDA = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<?xml-stylesheet type="text/xsl" href="cda.xsl"?>\n'
    b'<ClinicalDocument xmlns="urn:hl7-org:v3"><typeId root="2.16.840.1.113883.1.3"/>'
    b'<id root="1.2.3" extension="old"/><title>t</title><recordTarget><id root="9.9"/></recordTarget>'
    b"</ClinicalDocument>"
)


@pytest.mark.parametrize(
    ("base", "registry", "repository"),
    [
        (
            "https://dmp.example/si-dmp-server/v2/services/",
            "https://dmp.example/si-dmp-server/v2/services/registry",
            "https://dmp.example/si-dmp-server/v2/services/repository",
        ),
        (
            "https://dmp.example/si-dmp-server/v2/services",
            "https://dmp.example/si-dmp-server/v2/services/registry",
            "https://dmp.example/si-dmp-server/v2/services/repository",
        ),
        ("https://127.0.0.1:8080", "https://127.0.0.1:8080/xds/registry", "https://127.0.0.1:8080/xds/repository"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/xds/registry", "http://127.0.0.1:8080/xds/repository"),
    ],
)
def test_service_urls(base: str, registry: str, repository: str) -> None:
    urls = service_urls(base)
    assert (urls.registry, urls.repository) == (registry, repository)


def test_sign_submission_is_applied_to_what_is_sent() -> None:
    submission = make_submission(1)
    first = submission.documents[0].entry_uuid
    documents = {first: b"cda"}
    seen: list[dict[str, bytes]] = []

    def signer(request: etree._Element, docs: dict[str, bytes]) -> dict[str, bytes]:
        seen.append(dict(docs))
        objects = request.find(v.TAG_REGISTRY_OBJECT_LIST)
        etree.SubElement(objects, v.TAG_EXTRINSIC_OBJECT, id="urn:uuid:signature")
        return {**docs, "urn:uuid:signature": b"<ds:Signature/>"}

    request, sent = provide_and_register_request(submission, documents, sign_submission=signer)
    assert seen == [documents]
    assert sent == {first: b"cda", "urn:uuid:signature": b"<ds:Signature/>"}
    assert [e.get("id") for e in request.iter(v.TAG_EXTRINSIC_OBJECT)] == [first, "urn:uuid:signature"]

    unsigned, sent = provide_and_register_request(submission, documents)
    assert sent == documents
    assert [e.get("id") for e in unsigned.iter(v.TAG_EXTRINSIC_OBJECT)] == [first]


def test_with_cda_id_sets_the_document_id_only() -> None:
    changed = with_cda_id(CDA, "2.25.42")
    root = etree.fromstring(changed)
    ids = root.findall("{urn:hl7-org:v3}id")
    assert [dict(i.attrib) for i in ids] == [{"root": "2.25.42"}]
    assert root.find("{urn:hl7-org:v3}recordTarget/{urn:hl7-org:v3}id").get("root") == "9.9"
    assert b"xml-stylesheet" in changed
    assert dict(etree.fromstring(with_cda_id(CDA, "1.2.3^new")).find("{urn:hl7-org:v3}id").attrib) == {
        "root": "1.2.3",
        "extension": "new",
    }


@pytest.mark.parametrize("data", [b"not xml", b'<x xmlns="urn:hl7-org:v3"><id root="1"/></x>', b"<ClinicalDocument/>"])
def test_with_cda_id_refuses_what_is_no_cda(data: bytes) -> None:
    with pytest.raises(ValueError, match="not"):
        with_cda_id(data, "2.25.1")


def test_dmpi_plans_one_test_per_td_each_a_dmpi_collection() -> None:
    kit = load_testkit(DMPI_PLANS)
    # One test per TD, and the rights matrix's cells across them.
    assert all(name.startswith("td") or name == "rights-matrix" for name in kit.tests)
    assert "rights-matrix" in kit.tests
    assert all(test.collections == frozenset({"dmpi"}) and test.title for test in kit.tests.values())
    for test in kit.tests.values():
        for section in test.sections:
            plan = section.plan()
            # Every step names who acts (the runner sends the VIHF of that identity).
            assert all(step.find("Identity") is not None for step in plan.iter("TestStep")), section.directory
