"""The DMP's own paths (`/si-dmp-server/v2/services/<service>`): a DMP-compatible software changes
only its host, and the XDS services answer there as at /xds/; the patient services are there too
(tests/integration/test_dmpi_patients.py tests them with authentication)."""

from __future__ import annotations

import pytest
import requests

import hl7v3_messages as msg
import soap_messages as soap
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.xds import vocabulary as v
from factories import PATIENT_ID, make_submission

DMPI = "/si-dmp-server/v2/services/"


@pytest.fixture(scope="module")
def server(xds_server):
    xds_server.add_patient(PATIENT_ID)
    return xds_server


def test_registry_and_repository_answer_at_the_dmp_paths(server) -> None:
    submission = make_submission(1)
    for entry in submission.documents:
        entry.hash = entry.size = entry.repository_unique_id = None
    documents = {entry.entry_uuid: b"document body\n" for entry in submission.documents}
    request = soap.provide_and_register(submission, documents)
    response = requests.post(
        server.base_url + DMPI + "repository",
        data=request.body,
        headers={"Content-Type": request.content_type},
        timeout=60,
    )
    stored = soap.parse_response(response.status_code, response.headers["Content-Type"], response.content)
    assert stored.payload.get("status") == v.RESPONSE_SUCCESS, stored.payload
    query = soap.adhoc_query(
        v.SQ_FIND_DOCUMENTS,
        {"$XDSDocumentEntryPatientId": [f"'{PATIENT_ID}'"], "$XDSDocumentEntryStatus": [f"('{v.STATUS_APPROVED}')"]},
    )
    response = requests.post(
        server.base_url + DMPI + "registry", data=query.body, headers={"Content-Type": query.content_type}, timeout=60
    )
    found = soap.parse_response(response.status_code, response.headers["Content-Type"], response.content)
    assert [e.get("id") for e in found.payload.iter(v.TAG_EXTRINSIC_OBJECT)] == [
        d.entry_uuid for d in submission.documents
    ]


@pytest.mark.parametrize("service", ["registry", "repository"])
def test_the_wsdl_at_a_dmp_path_gives_that_path_as_address(server, service: str) -> None:
    response = requests.get(server.base_url + DMPI + service + "?wsdl", timeout=30)
    assert response.status_code == 200
    assert f'location="{server.base_url}{DMPI}{service}"' in response.text


@pytest.mark.parametrize(
    ("service", "action", "body", "answer"),
    [
        ("patients", hv.ACTION_GET_DEMOGRAPHICS, msg.get_demographics(msg.ins(1)), hv.hl7(hv.DEMOGRAPHICS)),
        ("patientsPDQ", hv.ACTION_FIND_CANDIDATES, msg.find_candidates("VALJEAN"), hv.hl7(hv.CANDIDATES)),
    ],
)
def test_the_patient_services_need_authentication(server, service: str, action: str, body: str, answer: str) -> None:
    # Without DMP_XDS_AUTH=vihf nobody can be told apart: an AE that says so, not a record.
    request, _ = soap.envelope(action, msg.element(body))
    response = requests.post(
        server.base_url + DMPI + service, data=request, headers={"Content-Type": "application/soap+xml"}, timeout=30
    )
    parsed = soap.parse_response(response.status_code, response.headers["Content-Type"], response.content)
    assert response.status_code == 200 and parsed.payload.tag == answer
    assert "need authentication" in parsed.payload.findtext(f".//{hv.hl7('acknowledgementDetail')}/{hv.hl7('text')}")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/dmp/admin"),
        ("GET", "/dmp/admin?wsdl"),
        ("GET", "/dmp/wsdl/DMP_Administration.wsdl"),
        ("GET", "/dmp/schemas/dmp/Habilitations.xsd"),
    ],
)
def test_the_home_made_administration_endpoint_is_gone(server, method: str, path: str) -> None:
    # A 404, not a SOAP fault: nothing answers there any more (the DMP's services and the
    # operator's `dmp-xds dmp` commands do what it did); the web front's page says so.
    request, _ = soap.envelope("urn:dmp-xds:2026:dmp-admin:GetDmpStatus", msg.element("<x xmlns='urn:x'/>"))
    response = requests.request(
        method,
        server.base_url + path,
        data=request if method == "POST" else None,
        headers={"Content-Type": "application/soap+xml"},
        timeout=30,
    )
    assert (response.status_code, response.headers["Content-Type"]) == (404, "text/html; charset=utf-8")
    assert "Page introuvable" in response.text and "Fault" not in response.text
