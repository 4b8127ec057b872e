"""A server with the CI-SIS profile on (the default): the ANS examples, submitted with metadata
built from their headers, are stored; mutations are refused with the reason; a missing value set
stops start-up; with DMP_XDS_SCHEMATRONS, the ANS schematrons refuse what they refuse."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from lxml import etree

import soap_messages as soap
from dmp_xds.dmp.cda.header import read_cda_header
from dmp_xds.tools.client.metadata import build_submission_from_cda
from dmp_xds.tools.client.soap import XdsClient
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.encode import encode_submit_objects_request
from xds_server import RunningServer, free_port, start_server, stop_server

ANS = Path(__file__).resolve().parents[2] / ".." / "shared" / "ans-testcontenucda"
EXAMPLES = sorted((ANS / "ExemplesCDA").glob("*.xml"))
CISIS_ENV = {
    "DMP_XDS_PROFILE": "cisis",
    "DMP_XDS_VALUE_SETS": str(ANS / "jeuxDeValeurs"),
    "DMP_XDS_CDA_SCHEMA": str(ANS / "infrastructure" / "cda" / "CDA_extended.xsd"),
}
# Refused, rightly, by the CI-SIS profile (see tests/unit/test_cda_validation.py): NIR with a wrong
# key as ANS publishes them, and BIO-TROD whose formatCode the ANS table does not give.
REFUSED = {
    "CSE-CS24_2024.01.xml",
    "CSE-CS24_2025.01.xml",
    "CSE-CS8_2024.01.xml",
    "CSE-CS8_2025.01.xml",
    "CSE-CS9_2024.01.xml",
    "CSE-CS9_2025.01.xml",
    "CSE-MDE_2023.01.xml",
    "OBP-SEM_2024.01.xml",
    "OBP-SNE_2024.01.xml",
    "SDM-MR_2024.01_nouveau-ne.xml",
    "BIO-TROD_2024.01_Angine.xml",
    "BIO-TROD_2024.01_COVID-19.xml",
    "BIO-TROD_2024.01_COVID-19_Grippe-A_Grippe-B.xml",
    "BIO-TROD_2024.01_Cystite.xml",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("xds-cisis"), "", CISIS_ENV)
    patients = set()
    for path in EXAMPLES:
        ins = read_cda_header(path.read_bytes()).patient.ins
        assert ins is not None
        patients.add(f"{ins.extension}^^^&{ins.root}&ISO")
    for patient in sorted(patients):
        running.add_patient(patient)
    yield running
    stop_server(running)


def _submit(server: RunningServer, data: bytes, **options: object) -> etree._Element:
    client = XdsClient(server.base_url + "/xds/registry", server.base_url + "/xds/repository")
    submission = build_submission_from_cda(data, **options)
    return client.provide_and_register(
        encode_submit_objects_request(submission), {submission.documents[0].entry_uuid: data}
    )


def _errors(response: etree._Element) -> list[tuple[str, str]]:
    return [(e.get("errorCode", ""), e.get("codeContext", "")) for e in response.iter(f"{{{v.NS_RS}}}RegistryError")]


@pytest.mark.parametrize(("mtom", "root_type"), [(True, soap.SOAP12), (True, "text/xml"), (False, "text/xml")])
def test_a_soap11_submission_as_the_dmp_sends_it_is_answered_in_soap12(
    server: RunningServer, mtom: bool, root_type: str
) -> None:
    data = next(p for p in EXAMPLES if p.name not in REFUSED).read_bytes()
    submission = build_submission_from_cda(data)
    payload, parts = soap.pnr_payload(submission, {submission.documents[0].entry_uuid: data}, mtom)
    env, message_id = soap.dmp_soap11_envelope(v.ACTION_ITI41, payload)
    body, content_type = soap.mtom_body(env, parts, root_type=root_type) if mtom else (env, root_type)
    resp = requests.post(server.repository_url, data=body, headers={"Content-Type": content_type}, timeout=60)
    response = soap.parse_response(resp.status_code, resp.headers.get("Content-Type", ""), resp.content)
    assert response.envelope.tag == f"{{{v.NS_SOAP12}}}Envelope"
    assert response.fault_reason is None
    assert response.status == "Success", response.error_codes
    assert response.header("RelatesTo") == message_id
    assert response.header("Action") == v.response_action(v.ACTION_ITI41)


def test_the_ans_examples_are_accepted_with_metadata_from_their_header(server: RunningServer) -> None:
    outcome = {}
    for path in EXAMPLES:
        response = _submit(server, path.read_bytes())
        outcome[path.name] = response.get("status", "").endswith(":Success")
        if outcome[path.name] == (path.name in REFUSED):
            pytest.fail(f"{path.name}: {response.get('status')} {_errors(response)}")
    assert sum(outcome.values()) == len(EXAMPLES) - len(REFUSED) == 80


@pytest.mark.parametrize(
    "old, new, message",
    [
        (b'root="1.2.250.1.213.1.4.10"', b'root="1.2.250.1.999.1"', "patientId"),
        (b'code="77436-4"', b'code="99999-9"', "code '99999-9' (2.16.840.1.113883.6.1) is not in JDV_J07"),
        (b'<languageCode code="fr-FR"/>', b'<languageCode code="fr-FR"/><langue/>', "CDA schema: line"),
    ],
)
def test_mutations_are_refused_with_the_reason(server: RunningServer, old: bytes, new: bytes, message: str) -> None:
    data = (ANS / "ExemplesCDA" / "ANEST-CR-ANEST_2022.01.xml").read_bytes().replace(old, new, 1)
    options = {"patient_id": "279035121518989^^^&1.2.250.1.213.1.4.10&ISO"} if b"1.2.250.1.999.1" in new else {}
    response = _submit(server, data, **options)
    assert response.get("status", "").endswith(":Failure")
    errors = _errors(response)
    assert any(code == "XDSRepositoryMetadataError" and message in context for code, context in errors), errors


def test_header_and_metadata_mismatch_is_refused(server: RunningServer) -> None:
    data = (ANS / "ExemplesCDA" / "ANEST-CR-ANEST_2022.01.xml").read_bytes()
    response = _submit(server, data, language_code="en-US")
    assert ("XDSRepositoryMetadataError",) == tuple({c for c, _ in _errors(response)})
    assert any("languageCode en-US differs from the CDA's fr-FR" in context for _, context in _errors(response))


def test_a_missing_value_set_stops_start_up(tmp_path: Path) -> None:
    env = {
        **os.environ,
        **CISIS_ENV,
        "DMP_XDS_DATA_DIR": str(tmp_path),
        "DMP_XDS_PORT": str(free_port()),
        "DMP_XDS_VALUE_SETS": str(tmp_path / "no-value-sets"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "dmp_xds.cli", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DMP_XDS_VALUE_SETS" in result.stderr and "Traceback" not in result.stderr


def test_validate_command_exit_codes(tmp_path: Path) -> None:
    env = {**os.environ, **CISIS_ENV, "DMP_XDS_DATA_DIR": str(tmp_path)}
    good = ANS / "ExemplesCDA" / "ANEST-CR-ANEST_2022.01.xml"
    ok = subprocess.run(
        [sys.executable, "-m", "dmp_xds.cli", "validate", str(good)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and "VALID (0 errors" in ok.stdout, ok.stdout + ok.stderr
    bad = tmp_path / "bad.xml"
    bad.write_bytes(good.read_bytes().replace(b'code="77436-4"', b'code="99999-9"', 1))
    refused = subprocess.run(
        [sys.executable, "-m", "dmp_xds.cli", "validate", str(bad)], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1 and "NOT VALID" in refused.stdout and "99999-9" in refused.stdout
    message = tmp_path / "submission.xml"
    message.write_bytes(
        etree.tostring(
            encode_submit_objects_request(
                build_submission_from_cda(good.read_bytes(), patient_id="1234567890123^^^&1.2.250.1.213.1.4.8&ISO")
            )
        )
    )
    submission = subprocess.run(
        [sys.executable, "-m", "dmp_xds.cli", "validate", str(message)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert submission.returncode == 1 and "is not an INS" in submission.stdout, submission.stdout


def test_with_the_ans_schematrons_a_volet_rule_refuses_the_document(tmp_path_factory: pytest.TempPathFactory) -> None:
    running = start_server(
        tmp_path_factory.mktemp("xds-schematrons"), "", {**CISIS_ENV, "DMP_XDS_SCHEMATRONS": str(ANS / "schematrons")}
    )
    try:
        running.add_patient("279035121518989^^^&1.2.250.1.213.1.4.10&ISO")
        good = (ANS / "ExemplesCDA" / "ANEST-CR-ANEST_2022.01.xml").read_bytes()
        assert _submit(running, good).get("status", "").endswith(":Success")
        # 34749-2 is a CI-SIS typeCode (JDV_J07) but not the one the ANEST-CR-ANEST volet fixes.
        response = _submit(running, good.replace(b'<code code="77436-4"', b'<code code="34749-2"', 1))
        assert response.get("status", "").endswith(":Failure")
        (error,) = _errors(response)
        assert error[0] == "XDSRepositoryMetadataError"
        assert "ANS schematron CI-SIS_ANEST-CR-ANEST_2022.01.sch" in error[1] and "[Entete_ANEST-CR-ANEST]" in error[1]
    finally:
        stop_server(running)


def test_a_missing_schematron_directory_stops_start_up(tmp_path: Path) -> None:
    env = {
        **os.environ,
        **CISIS_ENV,
        "DMP_XDS_DATA_DIR": str(tmp_path),
        "DMP_XDS_PORT": str(free_port()),
        "DMP_XDS_SCHEMATRONS": str(tmp_path / "no-schematrons"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "dmp_xds.cli", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DMP_XDS_SCHEMATRONS" in result.stderr and "Traceback" not in result.stderr
