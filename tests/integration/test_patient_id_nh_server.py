"""A CI-SIS server over HTTP takes the DMP's patient id `INS^^^&OID&ISO^NH^^<date>` (the TD3.3
example's): the document is stored under the INS alone and found by a query with `^NH` or
without; a CX.7 that is not a date is refused, naming it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from dmp_xds.tools.client.metadata import build_submission_from_cda
from dmp_xds.tools.client.soap import XdsClient
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.encode import encode_submit_objects_request
from soap_messages import adhoc_query_payload
from xds_server import RunningServer, start_server, stop_server

ANS = Path(__file__).resolve().parents[2] / ".." / "shared" / "ans-testcontenucda"
CISIS_ENV = {
    "DMP_XDS_PROFILE": "cisis",
    "DMP_XDS_VALUE_SETS": str(ANS / "jeuxDeValeurs"),
    "DMP_XDS_CDA_SCHEMA": str(ANS / "infrastructure" / "cda" / "CDA_extended.xsd"),
}
INS = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO"  # the patient of the ANS example


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("xds-cisis-nh"), "", CISIS_ENV)
    running.add_patient(INS)
    yield running
    stop_server(running)


def _client(server: RunningServer) -> XdsClient:
    return XdsClient(server.registry_url, server.repository_url)


def _submit(server: RunningServer, patient_id: str) -> etree._Element:
    data = (ANS / "ExemplesCDA" / "ANEST-CR-ANEST_2022.01.xml").read_bytes()
    submission = build_submission_from_cda(data, patient_id=patient_id)
    entry = submission.documents[0]
    return _client(server).provide_and_register(encode_submit_objects_request(submission), {entry.entry_uuid: data})


def _find(server: RunningServer, patient_id: str) -> list[etree._Element]:
    request = adhoc_query_payload(
        v.SQ_FIND_DOCUMENTS,
        {v.P_DE_PATIENT_ID: [f"'{patient_id}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]},
    )
    response = _client(server).stored_query(request)
    assert response.get("status", "").endswith(":Success"), etree.tostring(response)
    return list(response.iter(f"{{{v.NS_RIM}}}ExtrinsicObject"))


def _patient_of(entry: etree._Element) -> str:
    (patient,) = [
        e.get("value", "")
        for e in entry.iter(f"{{{v.NS_RIM}}}ExternalIdentifier")
        if e.get("identificationScheme") == v.DE_PATIENT_ID
    ]
    return patient


def test_the_td33_patient_id_is_stored_as_the_ins_and_found_in_both_forms(server: RunningServer) -> None:
    response = _submit(server, INS + "^NH^^20100907")
    assert response.get("status", "").endswith(":Success"), etree.tostring(response)
    for asked in (INS + "^NH", INS):
        # The server holds this one document (the refused submission below stores nothing).
        assert [_patient_of(e) for e in _find(server, asked)] == [INS], asked


def test_a_cx7_that_is_not_a_date_is_refused_naming_it(server: RunningServer) -> None:
    response = _submit(server, INS + "^NH^^2010-09-07")
    assert response.get("status", "").endswith(":Failure")
    contexts = [(e.get("errorCode"), e.get("codeContext", "")) for e in response.iter(f"{{{v.NS_RS}}}RegistryError")]
    assert any(code == "XDSRepositoryMetadataError" and "CX.7 (effective date)" in c for code, c in contexts), contexts
