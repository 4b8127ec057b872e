"""The WSDLs load in zeep, expose every XDS.b operation on a SOAP 1.2 binding, and their schema
locations resolve on disk (through the server's URL layout: tests/integration/test_wsdl_over_http.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import zeep
from lxml import etree
from zeep.wsdl.bindings.soap import Soap12Binding

from dmp_xds.config import resource_dir
from dmp_xds.tools.client.soap import REGISTRY_WSDL_FILE, REPOSITORY_WSDL_FILE
from dmp_xds.xds import vocabulary as v

REPOSITORY_WSDL = resource_dir("wsdl") / REPOSITORY_WSDL_FILE
REGISTRY_WSDL = resource_dir("wsdl") / REGISTRY_WSDL_FILE

EXPECTED = {
    REPOSITORY_WSDL: {
        "DocumentRepository_ProvideAndRegisterDocumentSet-b": (
            v.ACTION_ITI41,
            f"{{{v.NS_XDSB}}}ProvideAndRegisterDocumentSetRequest",
            v.TAG_REGISTRY_RESPONSE,
        ),
        "DocumentRepository_RetrieveDocumentSet": (
            v.ACTION_ITI43,
            f"{{{v.NS_XDSB}}}RetrieveDocumentSetRequest",
            f"{{{v.NS_XDSB}}}RetrieveDocumentSetResponse",
        ),
    },
    REGISTRY_WSDL: {
        "DocumentRegistry_RegisterDocumentSet-b": (
            v.ACTION_ITI42,
            v.TAG_SUBMIT_OBJECTS_REQUEST,
            v.TAG_REGISTRY_RESPONSE,
        ),
        "DocumentRegistry_RegistryStoredQuery": (
            v.ACTION_ITI18,
            f"{{{v.NS_QUERY}}}AdhocQueryRequest",
            f"{{{v.NS_QUERY}}}AdhocQueryResponse",
        ),
        "DocumentRegistry_UpdateDocumentSet": (v.ACTION_ITI57, v.TAG_SUBMIT_OBJECTS_REQUEST, v.TAG_REGISTRY_RESPONSE),
        "DocumentRegistry_DeleteDocumentSet": (
            v.ACTION_ITI62,
            f"{{{v.NS_LCM}}}RemoveObjectsRequest",
            v.TAG_REGISTRY_RESPONSE,
        ),
    },
}


def _binding(client: zeep.Client) -> Soap12Binding:
    (service,) = client.wsdl.services.values()
    (port,) = service.ports.values()
    assert isinstance(port.binding, Soap12Binding)
    return port.binding


@pytest.mark.parametrize("wsdl", list(EXPECTED), ids=lambda p: p.name)
def test_operations_soap12_document_literal_with_actions(wsdl: Path) -> None:
    binding = _binding(zeep.Client(str(wsdl)))
    assert set(binding._operations) == set(EXPECTED[wsdl])
    for name, (action, request_element, response_element) in EXPECTED[wsdl].items():
        operation = binding.get(name)
        assert operation.soapaction == action
        assert operation.style == "document"
        assert operation.abstract.wsa_action == action
        # zeep keeps only the input action; the output one is read from the portType.
        output_action = etree.parse(str(wsdl)).xpath(
            f"//wsdl:portType/wsdl:operation[@name='{name}']/wsdl:output/@wsaw:Action",
            namespaces={
                "wsdl": "http://schemas.xmlsoap.org/wsdl/",
                "wsaw": "http://www.w3.org/2006/05/addressing/wsdl",
            },
        )
        assert output_action == [v.response_action(action)]
        assert operation.input.body.qname == etree.QName(request_element)
        assert operation.output.body.qname == etree.QName(response_element)


def test_soap12_namespace_and_literal_use() -> None:
    for wsdl in EXPECTED:
        tree = etree.parse(str(wsdl))
        ns = {"soap12": "http://schemas.xmlsoap.org/wsdl/soap12/"}
        assert tree.xpath("//soap12:binding[@style='document']", namespaces=ns)
        uses = tree.xpath("//soap12:body/@use", namespaces=ns)
        assert uses and set(uses) == {"literal"}


def test_zeep_builds_a_retrieve_request() -> None:
    client = zeep.Client(str(REPOSITORY_WSDL))
    service = client.create_service(
        f"{{{v.NS_XDSB}}}DocumentRepository_Binding_Soap12", "http://xds.example/xds/repository"
    )
    envelope = client.create_message(
        service,
        "DocumentRepository_RetrieveDocumentSet",
        DocumentRequest=[{"RepositoryUniqueId": "1.2.3", "DocumentUniqueId": "4.5.6"}],
    )
    assert envelope.tag == f"{{{v.NS_SOAP12}}}Envelope"
    assert envelope.findtext(f"{{{v.NS_SOAP12}}}Header/{{{v.NS_WSA}}}Action") == v.ACTION_ITI43
    assert envelope.find(f"{{{v.NS_SOAP12}}}Header/{{{v.NS_WSA}}}MessageID") is not None
    assert envelope.findtext(f".//{{{v.NS_XDSB}}}DocumentUniqueId") == "4.5.6"


def test_zeep_builds_a_provide_and_register_request_with_documents() -> None:
    client = zeep.Client(str(REPOSITORY_WSDL))
    request = client.get_element(f"{{{v.NS_XDSB}}}ProvideAndRegisterDocumentSetRequest")
    node = etree.Element("root")
    request.render(
        node,
        request(SubmitObjectsRequest={"RegistryObjectList": {}}, Document=[{"id": "Document01", "_value_1": b"abc"}]),
    )
    document = node.find(f".//{{{v.NS_XDSB}}}Document")
    assert document.get("id") == "Document01" and document.text == "YWJj"
    assert node.find(f".//{v.TAG_SUBMIT_OBJECTS_REQUEST}/{v.TAG_REGISTRY_OBJECT_LIST}") is not None


def test_schemas_compile_and_relative_locations_resolve_on_disk() -> None:
    schemas = resource_dir("schemas")
    for xsd in ["ebRS/rim.xsd", "ebRS/rs.xsd", "ebRS/lcm.xsd", "ebRS/query.xsd", "IHE/XDS.b_DocumentRepository.xsd"]:
        etree.XMLSchema(etree.parse(str(schemas / xsd)))
    for wsdl in EXPECTED:
        for location in etree.parse(str(wsdl)).xpath("//@schemaLocation"):
            assert (wsdl.parent / location).resolve().is_file(), location
