"""The runner against small fake XDS endpoints on 127.0.0.1: verdicts, links, transport, CLI."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree
from lxml.builder import ElementMaker

from dmp_xds.cli.conformance import conformance
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import TrustStore
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.security.vihf import Principal, VihfVerifier, VouchingRules
from dmp_xds.tools.conformance.engine import Engine, Outcome, RunConfig, TestResult
from dmp_xds.tools.conformance.identity import Identities
from dmp_xds.tools.conformance.testkit import load_testkit
from dmp_xds.tools.conformance.transport import SoapClient
from dmp_xds.xds import vocabulary as v

TESTKIT = Path(__file__).resolve().parents[2] / ".." / "shared" / "nist-testkit"
SINGLE_DOC = TESTKIT / "tests" / "11966" / "submit" / "single_doc.xml"
MY_DOCUMENT = TESTKIT / "tests" / "11966" / "submit" / "my_document.txt"

P = ElementMaker()  # test plans have no namespace
RIM = ElementMaker(namespace=v.NS_RIM, nsmap={"rim": v.NS_RIM})
RS = ElementMaker(namespace=v.NS_RS, nsmap={"rs": v.NS_RS})
QUERY = ElementMaker(namespace=v.NS_QUERY, nsmap={"query": v.NS_QUERY})


# --- fake endpoint --------------------------------------------------------------------------
@dataclass
class Received:
    path: str
    content_type: str
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class Answer:
    status: int = 200
    content_type: str = "application/soap+xml; charset=UTF-8"
    body: bytes = b""
    delay: float = 0.0


Responder = Callable[[Received], Answer]


@dataclass
class FakeEndpoint:
    responder: Responder
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/xds"


@pytest.fixture()
def endpoint() -> Iterator[Callable[[Responder], FakeEndpoint]]:
    started: list[FakeEndpoint] = []

    def start(responder: Responder) -> FakeEndpoint:
        fake = FakeEndpoint(responder)

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # a stuck client cannot hold a handler thread forever

            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length", "0")), 10_000_000)
                received = Received(self.path, self.headers.get("Content-Type", ""), self.rfile.read(length))
                fake.received.append(received)
                answer = fake.responder(received)
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                try:
                    self.wfile.write(answer.body)
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        fake.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        fake.server.daemon_threads = True
        threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        assert fake.server is not None
        fake.server.shutdown()
        fake.server.server_close()


def envelope(body: etree._Element, action: str = "") -> bytes:
    soap = ElementMaker(namespace=v.NS_SOAP12, nsmap={"s": v.NS_SOAP12, "a": v.NS_WSA})
    wsa = ElementMaker(namespace=v.NS_WSA)
    return etree.tostring(
        soap.Envelope(soap.Header(wsa.Action(action)), soap.Body(body)), xml_declaration=True, encoding="UTF-8"
    )


def registry_response(status: str = v.RESPONSE_SUCCESS, errors: list[tuple[str, str]] | None = None) -> Answer:
    response = RS.RegistryResponse(status=status)
    if errors:
        response.append(
            RS.RegistryErrorList(
                *[
                    RS.RegistryError(errorCode=code, codeContext=context, severity=v.SEVERITY_ERROR)
                    for code, context in errors
                ]
            )
        )
    return Answer(body=envelope(response))


def document_entry(entry_id: str, status: str = v.STATUS_APPROVED) -> etree._Element:
    return RIM.ExtrinsicObject(id=entry_id, status=status, objectType=v.DOCUMENT_ENTRY_STABLE, mimeType="text/plain")


def query_response(*objects: etree._Element) -> Answer:
    return Answer(body=envelope(QUERY.AdhocQueryResponse(RIM.RegistryObjectList(*objects), status=v.RESPONSE_SUCCESS)))


def soap_action(received: Received) -> str:
    match = re.search(r"<[^>]*Action[^>]*>([^<]+)<", received.text)
    return match.group(1) if match else ""


# --- plans ----------------------------------------------------------------------------------
def write_plan(directory: Path, *steps: etree._Element) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    plan = P.TestPlan(P.Test(directory.name), *steps)
    (directory / "testplan.xml").write_bytes(etree.tostring(plan, pretty_print=True))


def write_test(
    kit: Path, test_id: str, sections: dict[str, list[etree._Element]], title: str = "a test", collections: str = "reg"
) -> Path:
    directory = kit / "tests" / test_id
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "readme.txt").write_text(title + "\n")
    (directory / "collections.txt").write_text(collections + "\n")
    (directory / "index.idx").write_text("\n".join(sections) + "\n")
    for name, steps in sections.items():
        write_plan(directory / name, *steps)
    return directory


def register_step(step_id: str = "submit", status: str = "Success", *extra: etree._Element) -> etree._Element:
    return P.TestStep(
        P.ExpectedStatus(status),
        P.RegisterTransaction(
            P.XDSb(),
            P.AssignUuids(),
            P.MetadataFile("single_doc.xml"),
            P.Report("//*[local-name()='ExtrinsicObject']/@id", name="docid", section="InputMetadata"),
            *extra,
        ),
        id=step_id,
    )


def query_step(step_id: str, *parts: etree._Element, status: str = "Success") -> etree._Element:
    return P.TestStep(
        P.ExpectedStatus(status), P.StoredQueryTransaction(P.XDSb(), P.MetadataFile("query.xml"), *parts), id=step_id
    )


def write_query(directory: Path, *values: str) -> None:
    query = QUERY.AdhocQueryRequest(
        QUERY.ResponseOption(returnType="LeafClass"),
        RIM.AdhocQuery(
            RIM.Slot(RIM.ValueList(*[RIM.Value(value) for value in values]), name="$XDSDocumentEntryUniqueId"),
            id="urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4",
        ),
    )
    (directory / "query.xml").write_bytes(etree.tostring(query))


def copy_single_doc(directory: Path) -> None:
    assert SINGLE_DOC.is_file(), f"NIST testkit missing: {SINGLE_DOC} (tests need ../shared/nist-testkit)"
    (directory / "single_doc.xml").write_bytes(SINGLE_DOC.read_bytes())
    (directory / "my_document.txt").write_bytes(MY_DOCUMENT.read_bytes())


def run(
    kit: Path, fake: FakeEndpoint, timeout: float = 5.0, feed: Callable[[str], None] | None = None
) -> dict[str, TestResult]:
    testkit = load_testkit(kit)
    engine = Engine(testkit, RunConfig(fake.url, fake.url, timeout), SoapClient(timeout), feed=feed)
    return {r.test_id: r for r in engine.run(sorted(testkit.tests.values(), key=lambda t: t.id))}


def submit_then_query(tmp_path: Path, *query_parts: etree._Element) -> Path:
    test = write_test(tmp_path, "1001", {"submit": [register_step()], "eval": [query_step("eval", *query_parts)]})
    copy_single_doc(test / "submit")
    write_query(test / "eval", "$uid$")
    return test


# --- the four failure verdicts --------------------------------------------------------------
def test_status_differing_from_expected_fails_with_the_registry_errors(tmp_path: Path, endpoint) -> None:
    fake = endpoint(
        lambda r: registry_response(v.RESPONSE_FAILURE, [("XDSRegistryMetadataError", "creationTime missing")])
    )
    test = write_test(tmp_path, "1001", {"submit": [register_step()]})
    copy_single_doc(test / "submit")
    result = run(tmp_path, fake)["1001"]
    assert result.outcome is Outcome.FAILED
    assert "status Failure, expected Success" in result.reason
    assert "XDSRegistryMetadataError: creationTime missing" in result.reason
    step = result.failed_step
    assert step is not None and step.where == "1001/submit/submit"
    assert "SubmitObjectsRequest" in step.request_text and "RegistryResponse" in step.response_text


def test_expected_error_message_must_be_among_the_errors(tmp_path: Path, endpoint) -> None:
    fake = endpoint(lambda r: registry_response(v.RESPONSE_FAILURE, [("XDSRegistryError", "internal")]))
    step = P.TestStep(
        P.ExpectedStatus("Failure"),
        P.ExpectedErrorMessage("XDSUnknownPatientId"),
        P.RegisterTransaction(P.XDSb(), P.MetadataFile("single_doc.xml")),
        id="submit",
    )
    test = write_test(tmp_path, "1001", {"submit": [step]})
    copy_single_doc(test / "submit")
    result = run(tmp_path, fake)["1001"]
    assert result.outcome is Outcome.FAILED
    assert "expected an error mentioning XDSUnknownPatientId, got XDSRegistryError: internal" in result.reason


def test_expected_failure_with_the_right_error_passes(tmp_path: Path, endpoint) -> None:
    fake = endpoint(lambda r: registry_response(v.RESPONSE_FAILURE, [("XDSUnknownPatientId", "who?")]))
    step = P.TestStep(
        P.ExpectedStatus("Failure"),
        P.ExpectedErrorMessage("XDSUnknownPatientId"),
        P.RegisterTransaction(P.XDSb(), P.MetadataFile("single_doc.xml")),
        id="submit",
    )
    test = write_test(tmp_path, "1001", {"submit": [step]})
    copy_single_doc(test / "submit")
    assert run(tmp_path, fake)["1001"].outcome is Outcome.PASSED


def test_wrong_count_in_expected_contents_fails(tmp_path: Path, endpoint) -> None:
    def answer(received: Received) -> Answer:
        if soap_action(received) == v.ACTION_ITI18:
            return query_response(document_entry("urn:uuid:00000000-0000-0000-0000-000000000001"))
        return registry_response()

    fake = endpoint(answer)
    submit_then_query(
        tmp_path,
        P.UseId(testdir="../submit", id="Document01", symbol="$uid$", step="submit", section="AssignedUids"),
        P.ExpectedContents(P.Documents(count="2")),
    )
    result = run(tmp_path, fake)["1001"]
    assert result.outcome is Outcome.FAILED
    assert "ExpectedContents Documents: found 1 DocumentEntries instead of 2" in result.reason


def by_action(received: Received) -> Answer:
    return query_response() if soap_action(received) == v.ACTION_ITI18 else registry_response()


def test_use_id_pointing_to_a_missing_step_fails(tmp_path: Path, endpoint) -> None:
    fake = endpoint(by_action)
    submit_then_query(
        tmp_path,
        P.UseId(testdir="../submit", id="Document01", symbol="$uid$", step="no_such_step", section="AssignedUids"),
    )
    result = run(tmp_path, fake)["1001"]
    assert result.outcome is Outcome.FAILED
    assert (
        "points to step 'no_such_step' of 1001/submit, which has no such step (steps run there: submit)"
        in result.reason
    )
    assert all(soap_action(r) != v.ACTION_ITI18 for r in fake.received)  # nothing sent for the broken step


def test_use_id_to_a_section_that_has_not_run_fails(tmp_path: Path, endpoint) -> None:
    fake = endpoint(lambda r: query_response())
    test = write_test(
        tmp_path,
        "1001",
        {
            "eval": [
                query_step(
                    "eval",
                    P.UseId(testdir="../later", id="Document01", symbol="$uid$", step="s", section="AssignedUids"),
                )
            ]
        },
    )
    write_query(test / "eval", "$uid$")
    result = run(tmp_path, fake)["1001"]
    assert result.outcome is Outcome.FAILED and "link to 1001/later, which has not run" in result.reason


def test_server_that_does_not_answer_fails_within_the_timeout(tmp_path: Path, endpoint) -> None:
    fake = endpoint(lambda r: Answer(body=registry_response().body, delay=3.0))
    test = write_test(tmp_path, "1001", {"submit": [register_step()]})
    copy_single_doc(test / "submit")
    started = time.monotonic()
    result = run(tmp_path, fake, timeout=0.5)["1001"]
    assert time.monotonic() - started < 2.5
    assert result.outcome is Outcome.FAILED
    assert "did not answer within 0.5 s" in result.reason


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            Answer(content_type="text/html", body=b"<html><body>Bad Gateway</body></html>", status=502),
            "is XML but not a SOAP envelope",
        ),
        (Answer(body=b"\x00\x01 definitely not xml"), "is not XML"),
        (Answer(body=b""), "is not XML (an empty body)"),
        (Answer(content_type='multipart/related; boundary="x"', body=b"--x--"), "multipart response with no part"),
    ],
)
def test_server_answering_garbage_fails_with_the_reason(tmp_path: Path, endpoint, answer: Answer, reason: str) -> None:
    fake = endpoint(lambda r: answer)
    test = write_test(tmp_path, "1001", {"submit": [register_step()]})
    copy_single_doc(test / "submit")
    result = run(tmp_path, fake)["1001"]
    assert result.outcome is Outcome.FAILED and reason in result.reason


def test_unreachable_server_fails(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/xds"
        test = write_test(tmp_path, "1001", {"submit": [register_step()]})
        copy_single_doc(test / "submit")
        kit = load_testkit(tmp_path)
        result = Engine(kit, RunConfig(url, url, 2.0)).run(list(kit.tests.values()))[0]
    assert result.outcome is Outcome.FAILED and "unreachable" in result.reason


def test_soap_fault_fails_with_its_reason(tmp_path: Path, endpoint) -> None:
    soap = ElementMaker(namespace=v.NS_SOAP12)
    fault = soap.Fault(soap.Code(soap.Value("soap:Sender")), soap.Reason(soap.Text("action not supported")))
    fake = endpoint(lambda r: Answer(status=500, body=envelope(fault)))
    test = write_test(tmp_path, "1001", {"submit": [register_step()]})
    copy_single_doc(test / "submit")
    result = run(tmp_path, fake)["1001"]
    assert result.outcome is Outcome.FAILED
    assert "SOAP Fault" in result.reason and "action not supported" in result.reason


# --- links, feed, MTOM, assertions ----------------------------------------------------------
def test_links_carry_assigned_ids_patient_and_reports_between_sections(tmp_path: Path, endpoint) -> None:
    submitted: dict[str, str] = {}

    def answer(received: Received) -> Answer:
        if soap_action(received) == v.ACTION_ITI42:
            root = etree.fromstring(received.body)
            (doc,) = root.xpath("//*[local-name()='ExtrinsicObject']")
            submitted["uuid"] = doc.get("id")
            submitted["uid"] = doc.xpath("*[@identificationScheme=$s]/@value", s=v.DE_UNIQUE_ID)[0]
            submitted["patient"] = doc.xpath("*[@identificationScheme=$s]/@value", s=v.DE_PATIENT_ID)[0]
            return registry_response()
        query = etree.fromstring(received.body)
        values = query.xpath("//*[local-name()='Value']/text()")
        assert values == [f"'{submitted['uid']}'", f"'{submitted['uuid']}'", submitted["patient"]], values
        return query_response(document_entry(submitted["uuid"]))

    fake = endpoint(answer)
    test = write_test(
        tmp_path,
        "1001",
        {
            "submit": [register_step()],
            "eval": [
                query_step(
                    "eval",
                    P.UseId(
                        testdir="../submit", id="Document01", symbol="$uid$", step="submit", section="AssignedUids"
                    ),
                    P.UseReport(reportName="docid", section="submit", step="submit", useAs="$docid$"),
                    P.UseId(
                        testdir="../submit",
                        id="SubmissionSet01",
                        symbol="$pid$",
                        step="submit",
                        section="AssignedPatientId",
                    ),
                    P.ExpectedContents(P.Documents(count="1"), P.DocApp()),
                )
            ],
        },
    )
    copy_single_doc(test / "submit")
    write_query(test / "eval", "'$uid$'", "'$docid$'", "$pid$")
    fed: list[str] = []
    result = run(tmp_path, fake, feed=fed.append)["1001"]
    assert result.outcome is Outcome.PASSED, result.reason
    assert submitted["uuid"].startswith("urn:uuid:") and submitted["uid"].startswith("2.25.")
    assert fed == [submitted["patient"]]  # the test's patient was fed (ITI-8) before use


def test_feed_failure_fails_the_test_with_its_reason(tmp_path: Path, endpoint) -> None:
    fake = endpoint(lambda r: registry_response())
    test = write_test(tmp_path, "1001", {"submit": [register_step()]})
    copy_single_doc(test / "submit")

    def broken_feed(patient_id: str) -> None:
        raise RuntimeError("AE unknown assigning authority")

    result = run(tmp_path, fake, feed=broken_feed)["1001"]
    assert result.outcome is Outcome.FAILED
    assert "patient identity feed (ITI-8)" in result.reason and "AE unknown assigning authority" in result.reason
    assert fake.received == []


def test_provide_and_register_is_sent_as_mtom(tmp_path: Path, endpoint) -> None:
    fake = endpoint(lambda r: registry_response())
    step = P.TestStep(
        P.ExpectedStatus("Success"),
        P.ProvideAndRegisterTransaction(
            P.XDSb(), P.AssignUuids(), P.MetadataFile("single_doc.xml"), P.Document("my_document.txt", id="Document01")
        ),
        id="submit",
    )
    test = write_test(tmp_path, "1001", {"submit": [step]})
    copy_single_doc(test / "submit")
    assert run(tmp_path, fake)["1001"].outcome is Outcome.PASSED
    (received,) = fake.received
    assert received.content_type.startswith("multipart/related")
    for parameter in ('type="application/xop+xml"', 'start="<', 'start-info="application/soap+xml"'):
        assert parameter in received.content_type
    href = re.search(rb'<xop:Include[^>]*href="cid:([^"]+)"', received.body)
    assert href is not None
    assert b"Content-ID: <" + href.group(1) + b">" in received.body
    assert MY_DOCUMENT.read_bytes() in received.body
    document_id = re.search(rb'<xdsb:Document[^>]*id="([^"]+)"', received.body)
    assert document_id is not None and document_id.group(1).startswith(b"urn:uuid:")


def test_assertions_over_this_section(tmp_path: Path, endpoint) -> None:
    def answer(received: Received) -> Answer:
        if soap_action(received) == v.ACTION_ITI18:
            return query_response(document_entry("urn:uuid:aaaaaaaa-0000-0000-0000-000000000001", v.STATUS_DEPRECATED))
        return registry_response()

    fake = endpoint(answer)
    holds = P.Assert("count(//*[local-name()='ExtrinsicObject'][@status='" + v.STATUS_DEPRECATED + "']) = 1", id="dep")
    fails = P.Assert("//*[local-name()='ExtrinsicObject']/@status = 'nope'", id="never")
    write_test(
        tmp_path,
        "1001",
        {
            "q": [
                query_step("eval"),
                P.TestStep(P.NullTransaction(P.Assertions(P.DataRef(file="THIS", as_="output"), holds)), id="check"),
            ]
        },
    )
    write_query(tmp_path / "tests" / "1001" / "q", "x")
    write_test(
        tmp_path,
        "1002",
        {
            "q": [
                query_step("eval"),
                P.TestStep(P.NullTransaction(P.Assertions(P.DataRef(file="THIS"), fails)), id="check"),
            ]
        },
    )
    write_query(tmp_path / "tests" / "1002" / "q", "x")
    results = run(tmp_path, fake)
    assert results["1001"].outcome is Outcome.PASSED, results["1001"].reason
    assert results["1002"].outcome is Outcome.FAILED
    assert "Assert 'never' does not hold" in results["1002"].reason


def test_retrieve_checks_bytes_against_the_query_metadata(tmp_path: Path, endpoint) -> None:
    from dmp_xds.tools.conformance.transport import build_mtom

    content = b"hello retrieve"
    xdsb = ElementMaker(namespace=v.NS_XDSB, nsmap={"xdsb": v.NS_XDSB})

    def answer(received: Received) -> Answer:
        if soap_action(received) == v.ACTION_ITI18:
            entry = document_entry("urn:uuid:bbbbbbbb-0000-0000-0000-000000000001")
            entry.append(RIM.Slot(RIM.ValueList(RIM.Value("wronghash")), name="hash"))
            entry.append(RIM.Slot(RIM.ValueList(RIM.Value(str(len(content)))), name="size"))
            entry.append(RIM.ExternalIdentifier(identificationScheme=v.DE_UNIQUE_ID, value="1.2.3"))
            return query_response(entry)
        document = xdsb.Document()
        etree.SubElement(document, f"{{{v.NS_XOP}}}Include", href="cid:part1")
        body = xdsb.RetrieveDocumentSetResponse(
            RS.RegistryResponse(status=v.RESPONSE_SUCCESS),
            xdsb.DocumentResponse(
                xdsb.RepositoryUniqueId("1.1"), xdsb.DocumentUniqueId("1.2.3"), xdsb.mimeType("text/plain"), document
            ),
        )
        soap = ElementMaker(namespace=v.NS_SOAP12, nsmap={"s": v.NS_SOAP12})
        from dmp_xds.xds.xop import Attachment

        data, content_type = build_mtom(soap.Envelope(soap.Body(body)), [Attachment("part1", "text/plain", content)])
        return Answer(content_type=content_type, body=data)

    fake = endpoint(answer)
    retrieve = P.TestStep(
        P.ExpectedStatus("Success"),
        P.RetrieveTransaction(P.XDSb(), P.MetadataFile("retrieve.xml"), P.ReferenceMetadata(step="by_uid")),
        id="retrieve",
    )
    test = write_test(tmp_path, "1001", {"r": [query_step("by_uid"), retrieve]})
    write_query(test / "r", "1.2.3")
    request = xdsb.RetrieveDocumentSetRequest(
        xdsb.DocumentRequest(xdsb.RepositoryUniqueId("1.1"), xdsb.DocumentUniqueId("1.2.3"))
    )
    (test / "r" / "retrieve.xml").write_bytes(etree.tostring(request))
    result = run(tmp_path, fake)["1001"]
    assert result.outcome is Outcome.FAILED
    assert "metadata hash says wronghash" in result.reason


# --- expected-to-fail plans and the CLI ----------------------------------------------------------
def test_xfail_plans_are_never_reported_as_passed(tmp_path: Path, endpoint) -> None:
    fake = endpoint(lambda r: registry_response(v.RESPONSE_FAILURE, [("XDSRegistryError", "no")]))
    for test_id in ("1001", "1002"):
        test = write_test(
            tmp_path, test_id, {"submit": [register_step(status="Failure" if test_id == "1002" else "Success")]}
        )
        copy_single_doc(test / "submit")
        (test / "xfail.txt").write_text("masking needs ITI-57\n")
    results = run(tmp_path, fake)
    assert results["1001"].outcome is Outcome.XFAIL
    assert results["1001"].reason.startswith("expected to fail: masking needs ITI-57")
    assert results["1002"].outcome is Outcome.FAILED and "but passed" in results["1002"].reason


def test_cli_reports_junit_html_summary_and_exit_code(tmp_path: Path, endpoint) -> None:
    def answer(received: Received) -> Answer:
        if b"FAILME" in received.body:
            return registry_response(v.RESPONSE_FAILURE, [("XDSRegistryMetadataError", "FAILME rejected")])
        return registry_response()

    fake = endpoint(answer)
    kit = tmp_path / "kit"
    for test_id in ("1001", "1002"):
        test = write_test(kit, test_id, {"submit": [register_step()]}, collections="reg")
        copy_single_doc(test / "submit")
    failing = kit / "tests" / "1002" / "submit" / "single_doc.xml"
    failing.write_text(failing.read_text().replace("Physical", "FAILME", 1))
    write_test(kit, "1003", {"submit": [register_step()]}, collections="rep")  # not selected
    junit, html = tmp_path / "out.xml", tmp_path / "out.html"
    outcome = CliRunner().invoke(
        conformance,
        [
            "nist",
            "--testkit",
            str(kit),
            "--collection",
            "reg",
            "--registry",
            fake.url,
            "--repository",
            fake.url,
            "--junit",
            str(junit),
            "--html",
            str(html),
            "--timeout",
            "5",
        ],
    )
    assert outcome.exit_code == 1, outcome.output
    lines = outcome.output.strip().splitlines()
    assert lines[-1] == "1 passed, 1 failed, 0 skipped"
    assert any(line.startswith("PASS  1001") for line in lines)
    assert any(line.startswith("FAIL  1002") for line in lines)
    suite = etree.parse(str(junit)).getroot()[0]
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failure = suite.find("testcase[@name='1002 a test']/failure")
    assert failure is not None and "FAILME rejected" in failure.get("message", "")
    page = html.read_text()
    assert "first failed check: status Failure, expected Success" in page
    assert "SubmitObjectsRequest" in page and "RegistryResponse" in page  # request and response shown


def test_cli_exit_code_zero_when_all_pass(tmp_path: Path, endpoint) -> None:
    fake = endpoint(lambda r: registry_response())
    test = write_test(tmp_path / "kit", "1001", {"submit": [register_step()]})
    copy_single_doc(test / "submit")
    outcome = CliRunner().invoke(
        conformance,
        [
            "nist",
            "--testkit",
            str(tmp_path / "kit"),
            "--collection",
            "reg",
            "--registry",
            fake.url,
            "--repository",
            fake.url,
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.strip().splitlines()[-1] == "1 passed, 0 failed, 0 skipped"


def test_assertions_see_the_toolkit_log_layout_and_todays_date(tmp_path: Path, endpoint) -> None:
    """As NIST 12323: //TestStep[@id]/StoredQueryTransaction/Result/..., compared with $DATE$."""

    def answer(received: Received) -> Answer:
        if soap_action(received) == v.ACTION_ITI18:
            return query_response(document_entry("urn:uuid:aaaaaaaa-0000-0000-0000-000000000001", v.STATUS_APPROVED))
        return registry_response()

    fake = endpoint(answer)
    path = (
        "//TestStep[@id='eval']/StoredQueryTransaction/Result/*[local-name()='AdhocQueryResponse']"
        "//*[local-name()='ExtrinsicObject']/@status"
    )
    today = datetime.now(UTC).strftime("%Y%m%d")
    holds = P.Assert(f"count({path}) = 1 and '$DATE$' = '{today}'", id="layout")
    write_test(
        tmp_path,
        "1001",
        {
            "q": [
                query_step("eval"),
                P.TestStep(P.NullTransaction(P.Assertions(P.DataRef(file="THIS", as_="output"), holds)), id="check"),
            ]
        },
    )
    write_query(tmp_path / "tests" / "1001" / "q", "x")
    result = run(tmp_path, fake)["1001"]
    assert result.outcome is Outcome.PASSED, result.reason


def test_testdir_naming_a_sibling_section_without_dotdot(tmp_path: Path) -> None:
    """As NIST 12021/retrieve: testdir="submit" means the test's own submit section."""
    from dmp_xds.tools.conformance.testkit import Testkit

    (tmp_path / "1001" / "submit").mkdir(parents=True)
    (tmp_path / "1001" / "retrieve").mkdir()
    kit = Testkit(tmp_path)
    assert kit.resolve(tmp_path / "1001" / "retrieve", "submit") == ("1001", "submit")
    assert kit.resolve(tmp_path / "1001" / "retrieve", "../submit") == ("1001", "submit")


# --- the runner as a DMP-compatible LPS: identities (VIHF per request), refusals expected ---------
AUDIENCE = "urn:dmp-xds:conformance-test"
REFUSAL = "access refused: the patient has not authorized this professional"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


def fault(reason: str) -> Answer:
    soap = ElementMaker(namespace=v.NS_SOAP12)
    body = soap.Fault(
        soap.Code(soap.Value("soap:Sender"), soap.Subcode(soap.Value("wsse:FailedCheck"))),
        soap.Reason(soap.Text(reason)),
    )
    return Answer(status=403, body=envelope(body))


def query_test(kit: Path, *steps: etree._Element) -> None:
    test = write_test(kit, "1001", {"eval": list(steps)})
    write_query(test / "eval", "1.2.3")


def run_as(kit: Path, fake: FakeEndpoint, identities: Identities | None = None) -> TestResult:
    testkit = load_testkit(kit)
    config = RunConfig(fake.url, fake.url, 5.0, identities=identities)
    return Engine(testkit, config, SoapClient(5.0)).run(list(testkit.tests.values()))[0]


def principal_of(pki: GeneratedPki, received: Received) -> Principal:
    """What the server's VIHF verifier makes of a request's wsse:Security header."""
    header = etree.fromstring(received.body).find(f"{{{v.NS_SOAP12}}}Header/{{{v.NS_WSSE}}}Security")
    trust = TrustStore.from_files([pki.anchors], [pki.intermediates], pki.crls)
    portal = VouchingRules(frozenset({pki.patient_portal().structure_id}))
    result = VihfVerifier(trust, audience=AUDIENCE, vouching=portal).verify(header)
    assert result.principal is not None, result.reason
    return result.principal


# --- a refusal expected -------------------------------------------------------------------------
def refused_step(status: str = "Fault", message: str = "has not authorized") -> etree._Element:
    step = query_step("refused", status=status)
    step.insert(1, P.ExpectedErrorMessage(message))
    return step


def test_an_expected_fault_with_its_reason_passes(tmp_path: Path, endpoint) -> None:
    query_test(tmp_path, refused_step())
    assert run_as(tmp_path, endpoint(lambda r: fault(REFUSAL))).outcome is Outcome.PASSED


def test_a_request_accepted_where_a_refusal_is_expected_fails(tmp_path: Path, endpoint) -> None:
    query_test(tmp_path, refused_step())
    result = run_as(tmp_path, endpoint(lambda r: query_response()))
    assert result.outcome is Outcome.FAILED
    assert "1001/eval/refused: expected a SOAP Fault (a refusal), got status" in result.reason
    assert "Success (HTTP 200)" in result.reason


def test_a_fault_for_another_reason_fails(tmp_path: Path, endpoint) -> None:
    query_test(tmp_path, refused_step())
    result = run_as(tmp_path, endpoint(lambda r: fault("the VIHF has expired")))
    assert result.outcome is Outcome.FAILED
    assert (
        "expected a SOAP Fault mentioning 'has not authorized', got (HTTP 403): the VIHF has expired" in result.reason
    )


# --- identities ---------------------------------------------------------------------------------
def test_each_request_carries_a_fresh_vihf_of_its_steps_identity(tmp_path: Path, endpoint, pki: GeneratedPki) -> None:
    emergency = P.Identity("pharmacist", accessMode="bris_de_glace", reason="patient inconscient")
    steps = [
        query_step("as_default"),
        query_step("as_pharmacist"),
        query_step("as_patient"),
        query_step("as_hospital_staff"),
    ]
    steps[1].insert(0, emergency)
    steps[2].insert(0, P.Identity("patient"))
    steps[3].insert(0, P.Identity("nurse", signer="hospital"))
    query_test(tmp_path, *steps)
    fake = endpoint(lambda r: query_response())
    result = run_as(tmp_path, fake, Identities(pki, "doctor", AUDIENCE))
    assert result.outcome is Outcome.PASSED, result.reason
    assert [s.identity for s in result.steps] == [
        "doctor",
        "pharmacist (bris_de_glace: patient inconscient)",
        "patient",
        "nurse (signed by hospital)",
    ]
    principals = [principal_of(pki, received) for received in fake.received]
    patient = result.steps[0].reports["$patientid$"]  # the test's patient
    assert all(p.patient_id == patient for p in principals)
    doctor, pharmacist, patient_self, nurse = principals
    assert (doctor.user_id, doctor.access_mode) == (pki.identity("doctor").national_id, sv.ACCESS_NORMAL)
    assert (pharmacist.user_id, pharmacist.access_mode) == (pki.identity("pharmacist").national_id, "bris_de_glace")
    assert pharmacist.access_reason == "patient inconscient"
    assert patient_self.is_patient and patient_self.vouched_by == pki.patient_portal().structure_id
    assert nurse.user_id == pki.identity("nurse").national_id and nurse.vouched_by == "1990000017"
    assert len({p.assertion_id for p in principals}) == 4


def test_without_a_pki_no_vihf_is_sent(tmp_path: Path, endpoint) -> None:
    step = query_step("eval")
    step.insert(0, P.Identity("pharmacist"))
    query_test(tmp_path, step)
    fake = endpoint(lambda r: query_response())
    assert run_as(tmp_path, fake).outcome is Outcome.PASSED
    assert b"Security" not in fake.received[0].body


def test_an_identity_not_in_the_pki_fails_the_step_naming_it(tmp_path: Path, endpoint, pki: GeneratedPki) -> None:
    step = query_step("eval")
    step.insert(0, P.Identity("surgeon"))
    query_test(tmp_path, step)
    fake = endpoint(lambda r: query_response())
    result = run_as(tmp_path, fake, Identities(pki))
    assert result.outcome is Outcome.FAILED and not fake.received
    assert "1001/eval/eval (as surgeon): cannot act as surgeon: no identity 'surgeon'" in result.reason


def test_an_unknown_access_mode_is_a_plan_error(tmp_path: Path, endpoint, pki: GeneratedPki) -> None:
    step = query_step("eval")
    step.insert(0, P.Identity("doctor", accessMode="whenever"))
    query_test(tmp_path, step)
    result = run_as(tmp_path, endpoint(lambda r: query_response()), Identities(pki))
    assert result.outcome is Outcome.FAILED
    assert "test plan error: <Identity accessMode='whenever'>: expected one of normal" in result.reason


def test_cli_refuses_a_folder_that_is_not_a_pki_and_an_unknown_default_identity(
    tmp_path: Path, pki: GeneratedPki
) -> None:
    query_test(tmp_path / "kit", query_step("eval"))
    common = ["plans", str(tmp_path / "kit" / "tests"), "--registry", "http://x", "--repository", "http://x"]
    outcome = CliRunner().invoke(conformance, [*common, "--pki", str(tmp_path)])
    assert outcome.exit_code == 2 and "is not a test PKI (dmp-xds pki init DIR)" in outcome.output
    outcome = CliRunner().invoke(conformance, [*common, "--pki", str(pki.directory), "--identity", "surgeon"])
    assert outcome.exit_code == 2 and "no identity 'surgeon'" in outcome.output
