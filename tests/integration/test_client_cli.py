"""`submit` / `retrieve` commands, against the fake endpoint of test_client_soap."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from test_client_soap import DOCUMENT, FakeEndpoint, endpoint, envelope, mtom  # noqa: F401 - fixture

from dmp_xds.cli.client import get_documents_request, patient_cx, repository_id_from, retrieve, submit
from dmp_xds.xds import vocabulary as v
from factories import ANS_EXAMPLES as EXAMPLES

FAILURE = (
    f'<rs:RegistryResponse xmlns:rs="{v.NS_RS}" status="{v.RESPONSE_FAILURE}"><rs:RegistryErrorList>'
    f'<rs:RegistryError errorCode="XDSUnknownPatientId" codeContext="no DMP" location="here" '
    f'severity="{v.SEVERITY_ERROR}"/></rs:RegistryErrorList></rs:RegistryResponse>'
)


def test_submit_cda_prints_status_and_unique_id(endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMP_XDS_URL", endpoint.url)
    result = CliRunner().invoke(submit, [str(EXAMPLES / "VAC_2023.01.xml")])
    assert result.exit_code == 0, result.output
    assert "status: Success" in result.output
    assert "documentUniqueId: 1.2.250.1.213.1.1.1.37.2023.1.1" in result.output
    assert endpoint.requests[0][0] == "/xds/repository"


def test_submit_failure_exits_non_zero_with_errors(endpoint: FakeEndpoint, tmp_path: Path) -> None:
    endpoint.reply = (200, "application/soap+xml", envelope(FAILURE))
    note = tmp_path / "note.txt"
    note.write_bytes(b"hello")
    result = CliRunner().invoke(
        submit,
        [
            str(note),
            "--patient",
            "1234567890123",
            "--type-code",
            "11488-4^2.16.840.1.113883.6.1^CR",
            "--healthcare-facility-type",
            "SA01^1.2.250.1.71.4.2.4",
            "--practice-setting",
            "ETABLISSEMENT^1.2.250.1.213.1.1.4.9",
            "--repository",
            endpoint.url + "/xds/repository",
        ],
    )
    assert result.exit_code == 1
    assert "status: Failure" in result.output
    assert "XDSUnknownPatientId: no DMP (here)" in result.output


def test_submit_non_cda_needs_its_codes(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_bytes(b"hello")
    result = CliRunner().invoke(submit, [str(note), "--patient", "1234567890123"])
    assert result.exit_code == 2 and "--type-code" in result.output
    result = CliRunner().invoke(submit, [str(note), "--type-code", "bad"])
    assert result.exit_code == 2


def test_retrieve_writes_the_document(endpoint: FakeEndpoint, tmp_path: Path) -> None:
    body = (
        f'<xdsb:RetrieveDocumentSetResponse xmlns:xdsb="{v.NS_XDSB}" xmlns:xop="{v.NS_XOP}">'
        f'<rs:RegistryResponse xmlns:rs="{v.NS_RS}" status="{v.RESPONSE_SUCCESS}"/>'
        "<xdsb:DocumentResponse><xdsb:RepositoryUniqueId>1.2</xdsb:RepositoryUniqueId>"
        "<xdsb:DocumentUniqueId>1.2.3</xdsb:DocumentUniqueId><xdsb:mimeType>text/plain</xdsb:mimeType>"
        '<xdsb:Document><xop:Include href="cid:d@1"/></xdsb:Document></xdsb:DocumentResponse>'
        "</xdsb:RetrieveDocumentSetResponse>"
    )
    endpoint.reply = (200, *mtom(envelope(body), {"d@1": DOCUMENT}))
    output = tmp_path / "out.bin"
    result = CliRunner().invoke(
        retrieve,
        ["1.2.3", "--repository-id", "1.2", "--repository", endpoint.url + "/xds/repository", "-o", str(output)],
    )
    assert result.exit_code == 0, result.output
    assert output.read_bytes() == DOCUMENT


def test_get_documents_query_and_repository_id() -> None:
    request = get_documents_request("1.2.3")
    assert request.find(f"{{{v.NS_RIM}}}AdhocQuery").get("id") == "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
    assert request.findtext(f".//{v.TAG_VALUE}") == "('1.2.3')"
    from lxml import etree

    response = etree.fromstring(
        f'<q:AdhocQueryResponse xmlns:q="{v.NS_QUERY}" xmlns:rim="{v.NS_RIM}"><rim:RegistryObjectList>'
        '<rim:ExtrinsicObject id="urn:uuid:1"><rim:Slot name="repositoryUniqueId"><rim:ValueList>'
        "<rim:Value>1.2.9</rim:Value></rim:ValueList></rim:Slot></rim:ExtrinsicObject>"
        "</rim:RegistryObjectList></q:AdhocQueryResponse>"
    )
    assert repository_id_from(response) == "1.2.9"


def test_patient_option() -> None:
    assert patient_cx("1234567890123") == "1234567890123^^^&1.2.250.1.213.1.4.8&ISO"
    assert patient_cx("X^^^&1.2&ISO") == "X^^^&1.2&ISO"
