"""`<SoapTransaction service=... action=...>`: a plan step calling a DMP service that is not XDS
(HL7 V3, the DMP's own services), at a sub-path of the DMP's base URL, against a fake endpoint."""

from __future__ import annotations

from pathlib import Path

import test_conformance_engine
from lxml import etree
from lxml.builder import ElementMaker
from test_conformance_engine import Answer, P, Received, envelope, soap_action, write_test

from dmp_xds.tools.conformance.engine import Engine, Outcome, RunConfig, TestResult
from dmp_xds.tools.conformance.testkit import load_testkit
from dmp_xds.tools.conformance.transport import SoapClient

endpoint = test_conformance_engine.endpoint  # the fake endpoint fixture
HL7 = ElementMaker(namespace="urn:hl7-org:v3", nsmap={None: "urn:hl7-org:v3"})
ACTION = "urn:hl7-org:v3:PRPA_IN201307UV02"
ANSWER = HL7.PRPA_IN201308UV02(HL7.acknowledgement(typeCode="AA"), HL7.queryAck(HL7.queryResponseCode(code="OK")))
FAULT = (
    b'<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault>'
    b"<s:Code><s:Value>s:Sender</s:Value></s:Code><s:Reason><s:Text>access refused: not authorized</s:Text>"
    b"</s:Reason></s:Fault></s:Body></s:Envelope>"
)


def soap_step(
    *parts: etree._Element, status: str = "Success", expected_message: str = "", service: str = "patients"
) -> etree._Element:
    return P.TestStep(
        P.ExpectedStatus(status),
        *([P.ExpectedErrorMessage(expected_message)] if expected_message else []),
        P.SoapTransaction(
            P.UseReport(reportName="$patientid$", test="15817", section="pif", step="step", useAs="$patientid$"),
            P.MetadataFile("request.xml"),
            *parts,
            service=service,
            action=ACTION,
        ),
        id="exists",
    )


def write_request(directory: Path) -> None:
    request = HL7.PRPA_IN201307UV02(HL7.patientIdentifier(HL7.value(extension="$patientid$")))
    (directory / "request.xml").write_bytes(etree.tostring(request))


def run(kit: Path, base: str) -> TestResult:
    testkit = load_testkit(kit)
    config = RunConfig("", "", 5.0, patient_id="279035121518989^^^&1.2.250.1.213.1.4.10&ISO", services_url=base)
    return Engine(testkit, config, SoapClient(5.0)).run(list(testkit.tests.values()))[0]


def test_a_soap_step_goes_to_the_service_sub_path_and_is_judged_by_assertions(tmp_path: Path, endpoint) -> None:
    fake = endpoint(lambda received: Answer(body=envelope(ANSWER, "urn:hl7-org:v3:PRPA_IN201308UV02")))
    holds = P.Assert("//*[local-name()='acknowledgement']/@typeCode = 'AA'", id="ack")
    report = P.Report("//*[local-name()='queryResponseCode']/@code", name="$code$", section="Result")
    test = write_test(
        tmp_path, "td0.2-exists", {"exists": [soap_step(report, P.Assertions(P.DataRef(file="THIS"), holds))]}
    )
    write_request(test / "exists")
    base = fake.url.removesuffix("/xds") + "/si-dmp-server/v2/services/"
    result = run(tmp_path, base)
    assert result.outcome is Outcome.PASSED, result.reason
    received: Received = fake.received[0]
    assert received.path == "/si-dmp-server/v2/services/patients"
    assert soap_action(received) == ACTION
    assert 'extension="279035121518989^^^&amp;1.2.250.1.213.1.4.10&amp;ISO"' in received.text
    assert result.steps[0].reports["$code$"] == "OK"

    failing = P.Assert("//*[local-name()='acknowledgement']/@typeCode = 'AE'", id="refused")
    other = write_test(
        tmp_path / "b", "td0.2-x", {"exists": [soap_step(P.Assertions(P.DataRef(file="THIS"), failing))]}
    )
    write_request(other / "exists")
    result = run(tmp_path / "b", base)
    assert result.outcome is Outcome.FAILED and "Assert 'refused' does not hold" in result.reason


def test_a_soap_step_expecting_a_refusal(tmp_path: Path, endpoint) -> None:
    fake = endpoint(lambda received: Answer(status=500, body=FAULT))
    test = write_test(tmp_path, "t", {"exists": [soap_step(status="Fault", expected_message="not authorized")]})
    write_request(test / "exists")
    result = run(tmp_path, fake.url)
    assert result.outcome is Outcome.PASSED, result.reason

    test = write_test(tmp_path / "b", "t", {"exists": [soap_step()]})
    write_request(test / "exists")
    result = run(tmp_path / "b", fake.url)
    assert result.outcome is Outcome.FAILED and "access refused: not authorized" in result.reason


def test_a_soap_step_needs_the_base_url(tmp_path: Path) -> None:
    test = write_test(tmp_path, "t", {"exists": [soap_step()]})
    write_request(test / "exists")
    result = run(tmp_path, "")
    assert result.outcome is Outcome.FAILED and "--base-url" in result.reason
