"""The test-plan engine: runs NIST testkit tests (and ours) step by step against any endpoint.

It follows what the NIST toolkit's test engine does with a step (xdstest2 BasicTransaction):
load the metadata file, apply `UseReport` values, translate ebRIM 2.1 to 3.0 for `<XDSb/>`,
assign the patient id, apply `UseId` links, assign fresh uniqueIds and (with `<AssignUuids/>`)
UUIDs, send, then judge: `ExpectedStatus`, `ExpectedErrorMessage`, `ExpectedErrorCode`,
`ExpectedContents`, retrieve checks and `Assertions`. What each step assigned or reported is kept
so that later steps, sections and tests can link to it.

Against a secured server (`RunConfig.identities`), each request carries the VIHF of the identity
its step names (`<Identity>`, our plans' extension; identity.py) over a TLS connection made with
its signer's certificate. `ExpectedStatus` `Fault` expects the server to refuse the request with
a SOAP Fault (an authorization refusal); `ExpectedErrorMessage` must then be in the fault's text.

A step's verdict names its first failed check; the report shows that reason, the request and
the response. A test stops at its first failed step.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from lxml import etree

from dmp_xds.dmp.ins import canonical_patient_id
from dmp_xds.dmp.submission_signature import add_submission_signature
from dmp_xds.tools.conformance import contents, messages
from dmp_xds.tools.conformance.ebrim21 import is_ebrim21, to_ebrim30
from dmp_xds.tools.conformance.identity import Credentials, Identities, StepIdentity
from dmp_xds.tools.conformance.metadata import (
    CONFORMANCE_SOURCE_ID,
    assign_patient_id,
    assign_source_id,
    assign_unique_ids,
    assign_uuids,
    document_unique_ids,
    substitute,
    substitute_text,
)
from dmp_xds.tools.conformance.patients import DEFAULT_ASSIGNING_AUTHORITY, new_patient_id
from dmp_xds.tools.conformance.testkit import PlanError, Section, TestCase, Testkit, read_xml
from dmp_xds.tools.conformance.transport import SoapClient, SoapExchange, TransportError
from dmp_xds.xds import vocabulary as v

MAX_WAIT_SECONDS = 5.0  # WaitBefore is honoured up to this, so a plan cannot stall a run
MAX_REPORT_TEXT = 200_000  # characters of request / response kept per step for the report

# Transactions of other actors: a test that needs them is skipped, not failed.
OTHER_ACTOR_TRANSACTIONS = frozenset(
    {
        "XCQTransaction",
        "XCRTransaction",
        "IGQTransaction",
        "IGRTransaction",
        "MPQTransaction",
        "DsubSubscribeTransaction",
        "PublishTransaction",
        "XDRProvideAndRegisterTransaction",
        "ImagingDocSetRetrieveTransaction",
        "FhirCreateTransaction",
        "SqlQueryTransaction",
        "EpsosTransaction",
        "XcpdTransaction",
        "PatientMoveTransaction",
    }
)
IGNORED_STEP_ELEMENTS = frozenset({"Goal", "Rule", "Standard", "Test"})


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    XFAIL = "xfail"  # expected to fail (a feature not there yet): shown as such, never as passed


class StepFailure(Exception):
    """A check failed; the message is the reason shown in the report."""


class StepSkip(Exception):
    """The step needs something outside this runner's actors: the test is skipped."""


@dataclass
class StepRecord:
    test_id: str
    section: str
    step_id: str
    transaction: str = ""
    passed: bool = True
    reason: str = ""
    endpoint: str = ""
    request_text: str = ""
    response_text: str = ""
    duration: float = 0.0
    input_metadata: etree._Element | None = None
    result: etree._Element | None = None
    assigned_uuids: dict[str, str] = field(default_factory=dict)
    assigned_uids: dict[str, str] = field(default_factory=dict)
    assigned_patient_ids: dict[str, str] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    goal: str = ""
    identity: str = ""  # who the request was sent as, against a secured server

    @property
    def where(self) -> str:
        return "/".join(p for p in (self.test_id, self.section, self.step_id) if p)


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class

    test_id: str
    title: str
    outcome: Outcome
    reason: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    duration: float = 0.0
    prerequisite: bool = False

    @property
    def failed_step(self) -> StepRecord | None:
        return next((s for s in self.steps if not s.passed), None)


@dataclass
class RunConfig:
    registry_url: str
    repository_url: str
    timeout: float = 30.0
    assigning_authority: str = DEFAULT_ASSIGNING_AUTHORITY
    document_dirs: dict[str, Path] = field(default_factory=dict)  # <Document source="name">
    source_id: str = CONFORMANCE_SOURCE_ID
    identities: Identities | None = None  # a secured server: TLS client certificate + VIHF per request
    # The patient of every test, whose record exists beforehand, nothing fed: the DMP has no ITI-8.
    patient_id: str = ""
    # The DMP's base URL (…/si-dmp-server/v2/services/): a <SoapTransaction service="patients">
    # goes to its sub-path.
    services_url: str = ""


@dataclass
class _TestState:
    test: TestCase
    patient_id: str  # the patient fed for this test ($patientid$)
    current_patient_id: str  # changed by <NewPatientId/>


def hl7_now(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y%m%d%H%M%S")


def patient_symbols(patient_id: str) -> dict[str, str]:
    """`$ins$` and `$insroot$`: the INS of the step's patient and its OID, apart, as HL7 V3 messages
    carry a patient (an II's extension and root) where XDS metadata carry the CX `$patientid$`."""
    extension, _, rest = canonical_patient_id(patient_id.strip())[0].partition("^^^&")
    return {"$ins$": extension, "$insroot$": rest.partition("&")[0]} if extension else {}


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REPORT_TEXT else text[:MAX_REPORT_TEXT] + "\n... (cut)"


class Engine:
    def __init__(
        self,
        kit: Testkit,
        config: RunConfig,
        client: SoapClient | None = None,
        feed: Callable[[str], None] | None = None,
        on_test_start: Callable[[TestCase], None] | None = None,
        on_test_end: Callable[[TestResult], None] | None = None,
    ) -> None:
        self.kit = kit
        self.config = config
        self.client = client or SoapClient(config.timeout)
        self.feed = feed
        self.on_test_start = on_test_start or (lambda test: None)
        self.on_test_end = on_test_end or (lambda result: None)
        self.results: dict[str, TestResult] = {}
        self.logs: dict[tuple[str, str], dict[str, StepRecord]] = {}
        self.states: dict[str, _TestState] = {}
        self._running: set[str] = set()
        self._alt_patient_id: str | None = None

    # --- run ------------------------------------------------------------------------------------
    def run(self, tests: list[TestCase]) -> list[TestResult]:
        for test in tests:
            self.run_test(test)
        return list(self.results.values())

    def run_test(self, test: TestCase, prerequisite: bool = False) -> TestResult:
        if test.id in self.results:
            return self.results[test.id]
        self._running.add(test.id)
        self.on_test_start(test)
        started = time.monotonic()
        result = TestResult(test.id, test.title, Outcome.PASSED, prerequisite=prerequisite)
        try:
            self._run_prerequisites(test)
            state = _TestState(test, "", "")
            state.patient_id = state.current_patient_id = self.config.patient_id or self._new_fed_patient()
            self.states[test.id] = state
            for section in test.sections:
                self._run_section(state, section, result)
        except StepSkip as exc:
            result.outcome, result.reason = Outcome.SKIPPED, str(exc)
        except StepFailure as exc:
            result.outcome, result.reason = Outcome.FAILED, str(exc)
        except PlanError as exc:
            result.outcome, result.reason = Outcome.FAILED, f"test plan error: {exc}"
        result.duration = time.monotonic() - started
        if test.xfail_reason is not None:
            if result.outcome is Outcome.FAILED:
                result.outcome = Outcome.XFAIL
                result.reason = f"expected to fail: {test.xfail_reason} (failed: {result.reason})"
            elif result.outcome is Outcome.PASSED:
                result.outcome = Outcome.FAILED
                result.reason = f"marked expected-to-fail ({test.xfail_reason}) but passed: remove its xfail.txt"
        self._running.discard(test.id)
        self.results[test.id] = result
        self.on_test_end(result)
        return result

    def _run_prerequisites(self, test: TestCase) -> None:
        """Run first the tests whose results this one links to (e.g. 12346 for the SQ tests)."""
        for other in self._referenced_tests(test):
            if other == test.id or other in self._running:
                continue
            prerequisite = self.results.get(other) or self.run_test(self.kit.tests[other], prerequisite=True)
            if prerequisite.outcome is not Outcome.PASSED:
                raise StepFailure(
                    f"prerequisite test {other} did not pass ({prerequisite.outcome.value}: {prerequisite.reason})"
                )

    def _referenced_tests(self, test: TestCase) -> list[str]:
        found: list[str] = []
        for section in test.sections:
            try:
                plan = section.plan()
            except PlanError:
                continue  # reported when the section runs
            for element in plan.iter(tag=etree.Element):
                other = None
                if element.get("testdir"):
                    try:
                        other = self.kit.resolve(section.directory, element.get("testdir", ""))[0]
                    except PlanError:
                        continue
                elif messages.local(element) == "UseReport" and element.get("test"):
                    other = element.get("test")
                if other and other in self.kit.tests and other not in found:
                    found.append(other)
        return found

    def _new_fed_patient(self) -> str:
        patient_id = new_patient_id(self.config.assigning_authority)
        if self.feed is not None:
            try:
                self.feed(patient_id)
            except Exception as exc:
                raise StepFailure(f"patient identity feed (ITI-8) of {patient_id} failed: {exc}") from exc
        return patient_id

    @property
    def alt_patient_id(self) -> str:
        """The second, fed, patient the mismatch tests use ($altpatientid$)."""
        if self._alt_patient_id is None:
            self._alt_patient_id = self._new_fed_patient()
        return self._alt_patient_id

    def _run_section(self, state: _TestState, section: Section, result: TestResult) -> None:
        plan = section.plan()
        steps = [el for el in plan if messages.local(el) == "TestStep"]
        if not steps:
            raise PlanError(f"{section.directory / 'testplan.xml'} has no TestStep")
        log = self.logs.setdefault((state.test.id, section.name), {})
        for step in steps:
            record = StepRecord(state.test.id, section.name, step.get("id", ""))
            result.steps.append(record)
            log[record.step_id] = record
            started = time.monotonic()
            try:
                self._run_step(state, section, step, record)
            except StepFailure as exc:
                record.passed, record.reason = False, str(exc)
                goal = f" [step goal: {record.goal}]" if record.goal else ""
                who = f" (as {record.identity})" if record.identity else ""
                raise StepFailure(f"{record.where}{who}: {exc}{goal}") from exc
            finally:
                record.duration = time.monotonic() - started

    # --- one step -------------------------------------------------------------------------------
    def _run_step(self, state: _TestState, section: Section, step: etree._Element, record: StepRecord) -> None:
        expected_status: list[str] = []
        expected_message = ""
        expected_code = ""
        use_alt_patient: str | None = None
        identity: StepIdentity | None = None
        transaction: etree._Element | None = None
        for element in step:
            name = messages.local(element)
            if not name or name in IGNORED_STEP_ELEMENTS:
                continue
            if name == "ExpectedStatus":
                expected_status = [s.strip() for s in (element.text or "").split(",") if s.strip()]
            elif name == "ExpectedErrorMessage":
                expected_message = (element.text or "").strip()
            elif name == "ExpectedErrorCode":
                expected_code = (element.text or "").strip()
            elif name == "NewPatientId":
                # As the toolkit: a new id, not fed to the registry, used by the following steps.
                state.current_patient_id = new_patient_id(self.config.assigning_authority)
            elif name == "AltPatientId":
                use_alt_patient = new_patient_id(self.config.assigning_authority)
            elif name == "Identity":
                identity = StepIdentity.parse(element)
            elif name in OTHER_ACTOR_TRANSACTIONS:
                raise StepSkip(f"step {record.where} uses {name}, a transaction of another actor")
            elif transaction is None:
                transaction = element
            else:
                raise StepFailure(f"unsupported step instruction <{name}>")
        if transaction is None:
            return
        record.transaction = messages.local(transaction)
        record.goal = " ".join(" ".join((g.text or "").split()) for g in step if messages.local(g) == "Goal").strip()
        step_ctx = _Step(
            self,
            state,
            section,
            record,
            transaction,
            expected_status or ["Success"],
            expected_message,
            expected_code,
            use_alt_patient,
            identity,
        )
        step_ctx.run()


class _Step:
    """One transaction instruction of a step, from its plan to its verdict."""

    def __init__(
        self,
        engine: Engine,
        state: _TestState,
        section: Section,
        record: StepRecord,
        instruction: etree._Element,
        expected_status: list[str],
        expected_message: str,
        expected_code: str,
        alt_patient: str | None,
        identity: StepIdentity | None = None,
    ) -> None:
        self.engine = engine
        self.state = state
        self.section = section
        self.record = record
        self.instruction = instruction
        self.kind = messages.local(instruction)
        self.expected_status = expected_status
        self.expected_message = expected_message
        self.expected_code = expected_code
        self.alt_patient = alt_patient
        self.identity = identity
        self.options: set[str] = set()
        self.fixed_patient = ""
        self.metadata_file: str | None = None
        self.keep_uid: str | None = None
        self.use_ids: list[etree._Element] = []
        self.use_reports: list[etree._Element] = []
        self.use_xpaths: list[etree._Element] = []
        self.report_specs: list[etree._Element] = []
        self.expected_contents: etree._Element | None = None
        self.asserts: list[etree._Element] = []
        self.documents: list[etree._Element] = []
        self.reference_metadata: etree._Element | None = None
        self.reference_documents: list[etree._Element] = []

    # --- instructions ---------------------------------------------------------------------------
    def parse(self) -> None:
        for part in self.instruction:
            name = messages.local(part)
            if not name:
                continue
            if name in (
                "XDSb",
                "AssignUuids",
                "NoPatientId",
                "NoMetadata",
                "CreateNewPatientId",
                "NoConvert",
                "NoSignature",
            ):
                self.options.add(name)
            elif name == "PatientId":
                # Our plans' extension: feed (and use from now on) this patient, e.g. the INS of a CDA example.
                self.options.add("PatientId")
                self.fixed_patient = (part.text or "").strip()
            elif name == "MetadataFile":
                self.metadata_file = (part.text or "").strip()
            elif name == "NoAssignUids":
                self.options.add("NoAssignUids")
                self.keep_uid = part.get("id") or None
            elif name == "ParseMetadata":
                if (part.text or "").strip().lower() == "false":
                    self.options.add("NoParse")
            elif name == "UseId":
                self.use_ids.append(part)
            elif name == "UseReport":
                self.use_reports.append(part)
            elif name == "UseXPath":
                self.use_xpaths.append(part)
            elif name == "Report":
                self.report_specs.append(part)
            elif name == "ExpectedContents":
                self.expected_contents = part
            elif name == "Assertions":
                for item in part:
                    item_name = messages.local(item)
                    if item_name == "Assert":
                        self.asserts.append(item)
                    elif item_name == "DataRef" and item.get("file") != "THIS":
                        raise StepFailure(f"Assertions DataRef file={item.get('file')!r} is not supported (only THIS)")
            elif name == "Document":
                self.documents.append(part)
            elif name == "ReferenceMetadata":
                self.reference_metadata = part
            elif name == "ReferenceDocument":
                self.reference_documents.append(part)
            elif name == "WaitBefore":
                try:
                    time.sleep(min(int((part.text or "0").strip()) / 1000, MAX_WAIT_SECONDS))
                except ValueError as exc:
                    raise StepFailure(f"WaitBefore {part.text!r} is not a number of milliseconds") from exc
            elif name in ("InteractionSequence", "SOAPHeader", "Rule", "Goal"):
                continue  # the toolkit ignores these for Registry/Repository tests as well
            elif name == "XDSa":
                raise StepSkip("XDS.a (ebXML 2.1 on the wire) is not a transaction of an XDS.b actor")
            else:
                raise StepFailure(f"unsupported {self.kind} instruction <{name}>")

    def run(self) -> None:
        self.parse()
        if self.kind == "NullTransaction":
            self.check_assertions()
            return
        if self.kind == "PatientIdentityFeedTransaction":
            self.patient_feed()
            return
        if self.kind == "SoapTransaction":
            self.service_call()
            return
        if self.kind not in messages.TRANSACTIONS:
            raise StepFailure(f"transaction <{self.kind}> is not supported by this runner")
        body, attachments = self.prepare()
        action, role, response_root = messages.TRANSACTIONS[self.kind]
        url = self.engine.config.registry_url if role == "registry" else self.engine.config.repository_url
        self.record.endpoint = url
        credentials = self.credentials()
        try:
            exchange = self.engine.client.call(
                url,
                action,
                body,
                attachments,
                mtom=self.kind in ("ProvideAndRegisterTransaction", "RetrieveTransaction"),
                security=credentials.security if credentials else None,
                certificate=credentials.certificate if credentials else None,
            )
        except TransportError as exc:
            self.record.request_text = _clip(etree.tostring(body, encoding="unicode", pretty_print=True))
            self.record.response_text = _clip(exc.response_text)
            raise StepFailure(f"{role} {exc.reason}") from exc
        self.record.request_text = _clip(exchange.request_text)
        self.record.response_text = _clip(exchange.response_text)
        self.record.result = exchange.body
        self.judge(exchange, response_root)
        self.make_reports()
        self.check_assertions()

    def sign_submission(self, body: etree._Element, contents: dict[str, bytes]) -> None:
        """Acting as a DMP-compatible LPS (`--pki`), sign the submission set (XAdES, TD2.1) with
        the step's signer, as the DMP requires; `<NoSignature/>` sends it unsigned."""
        identities = self.engine.config.identities
        if identities is None or "NoSignature" in self.options:
            return
        try:
            key, chain = identities.signing_key(self.identity)
        except ValueError as exc:
            raise StepFailure(f"cannot sign the submission: {exc}") from exc
        try:
            add_submission_signature(body, contents, key, chain)
        except ValueError:
            return  # no submission set to sign (a plan testing bad metadata): the server says what is wrong

    def service_call(self) -> None:
        """`<SoapTransaction service="patients" action="urn:hl7-org:v3:PRPA_IN201307UV02">` (our
        extension): the MetadataFile's element, links applied, sent as the body of a SOAP 1.2
        request to that sub-path of the DMP's base URL, for the services that are not XDS (HL7 V3,
        the DMP's own). Judged by the SOAP Fault or its absence (`ExpectedStatus` `Fault` or
        `Success`), then by `Assertions` over the response and `Report`s from it."""
        service, action = self.instruction.get("service", ""), self.instruction.get("action", "")
        if not service or not action:
            raise PlanError("<SoapTransaction> needs a service (a sub-path of the DMP's base URL) and an action")
        base = self.engine.config.services_url
        if not base:
            raise StepFailure(
                f"<SoapTransaction service={service!r}> calls a service of the DMP's base URL: "
                "run it with `dmp-xds conformance run --base-url`"
            )
        body = self.load_metadata()
        substitute(body, self.links())
        substitute(body, self.id_links())
        substitute(body, patient_symbols(self.alt_patient or self.state.current_patient_id))
        self.record.input_metadata = body
        url = base.rstrip("/") + "/" + service.strip("/")
        self.record.endpoint = url
        credentials = self.credentials()
        try:
            exchange = self.engine.client.call(
                url,
                action,
                copy.deepcopy(body),
                security=credentials.security if credentials else None,
                certificate=credentials.certificate if credentials else None,
            )
        except TransportError as exc:
            self.record.request_text = _clip(etree.tostring(body, encoding="unicode", pretty_print=True))
            self.record.response_text = _clip(exc.response_text)
            raise StepFailure(f"{service} {exc.reason}") from exc
        self.record.request_text = _clip(exchange.request_text)
        self.record.response_text = _clip(exchange.response_text)
        self.record.result = exchange.body
        expected = " or ".join(self.expected_status)
        if exchange.fault is not None:
            if "Fault" not in self.expected_status:
                raise StepFailure(f"SOAP Fault from {url}: {exchange.fault} (expected status {expected})")
            if self.expected_message and self.expected_message not in exchange.fault:
                raise StepFailure(f"expected a SOAP Fault mentioning {self.expected_message!r}, got {exchange.fault}")
        elif self.expected_status == ["Fault"]:
            raise StepFailure(f"expected a SOAP Fault (a refusal), got <{messages.local(exchange.body)}>")
        self.make_reports()
        self.check_assertions()

    def credentials(self) -> Credentials | None:
        """The VIHF and client certificate of this step's identity, about the step's patient;
        None against a server without authentication (no `--pki`: `<Identity>` is not acted)."""
        identities = self.engine.config.identities
        if identities is None:
            return None
        identity = self.identity or identities.default
        self.record.identity = str(identity)
        try:
            return identities.credentials(identity, self.alt_patient or self.state.current_patient_id)
        except ValueError as exc:
            raise StepFailure(f"cannot act as {identity}: {exc}") from exc

    # --- linkage --------------------------------------------------------------------------------
    def _log(self, test_id: str, section: str) -> dict[str, StepRecord]:
        log = self.engine.logs.get((test_id, section))
        if log is None:
            where = "/".join(p for p in (test_id, section) if p)
            raise StepFailure(f"link to {where}, which has not run")
        return log

    def _step_record(self, test_id: str, section: str, step_id: str, link: str) -> StepRecord:
        log = self._log(test_id, section)
        if step_id not in log:
            where = "/".join(p for p in (test_id, section) if p)
            raise StepFailure(
                f"{link} points to step {step_id!r} of {where}, which has no such step "
                f"(steps run there: {', '.join(log) or 'none'})"
            )
        return log[step_id]

    def resolve_use_id(self, use_id: etree._Element) -> str:
        testdir = use_id.get("testdir")
        test_id, section = (
            (self.engine.kit.resolve(self.section.directory, testdir))
            if testdir
            else (self.state.test.id, self.section.name)
        )
        step_id = use_id.get("step", "")
        object_id = use_id.get("id", "")
        kind = use_id.get("section", "AssignedUuids")
        record = self._step_record(test_id, section, step_id, f"UseId {object_id!r}")
        table = {
            "AssignedUuids": record.assigned_uuids,
            "AssignedUids": record.assigned_uids,
            "AssignedPatientId": record.assigned_patient_ids,
        }.get(kind)
        if table is None:
            raise StepFailure(
                f"UseId section {kind!r} is not supported (AssignedUuids, AssignedUids, AssignedPatientId)"
            )
        if object_id in table:
            return table[object_id]
        if kind == "AssignedUuids" and object_id.startswith("urn:uuid:"):
            return object_id  # the file already held a UUID: nothing was assigned, the id is final
        raise StepFailure(
            f"UseId: step {record.where} has no {kind} entry for {object_id!r} (it has: {', '.join(table) or 'none'})"
        )

    def resolve_use_report(self, use: etree._Element) -> str:
        name = use.get("reportName", "")
        test_id = use.get("test") or self.state.test.id
        if test_id not in self.engine.kit.tests and name == "$patientid$":
            # Tests 15817 / 15817b / 15818 of the toolkit are its patient feeds: the patient of this
            # test, or (the "b" one) the alternate patient that the mismatch tests need.
            return self.engine.alt_patient_id if test_id.endswith("b") else self.state.patient_id
        if test_id not in self.engine.kit.tests:
            raise StepFailure(f"UseReport {name!r} refers to test {test_id}, which is not in the testkit")
        section = use.get("section", "")
        section = self.section.name if section == "THIS" else section
        if test_id == self.state.test.id and section == self.section.name and use.get("step") == self.record.step_id:
            record = self.record
        else:
            record = self._step_record(test_id, section, use.get("step", ""), f"UseReport {name!r}")
        if name not in record.reports:
            raise StepFailure(
                f"UseReport: step {record.where} has no report {name!r} "
                f"(reports: {', '.join(record.reports) or 'none'})"
            )
        return record.reports[name]

    def section_log_document(self) -> etree._Element:
        """This section's steps so far, as the toolkit's log.xml shows them to XPath ("THIS")."""
        root = etree.Element("TestResults")
        for record in self.engine.logs.get((self.state.test.id, self.section.name), {}).values():
            step = etree.SubElement(root, "TestStep", id=record.step_id)
            # As in the toolkit's log.xml: TestStep/<the transaction>/InputMetadata and Result.
            holder = etree.SubElement(step, record.transaction) if record.transaction else step
            if record.input_metadata is not None:
                etree.SubElement(holder, "InputMetadata").append(copy.deepcopy(record.input_metadata))
            if record.result is not None:
                etree.SubElement(holder, "Result").append(copy.deepcopy(record.result))
        return root

    def links(self) -> dict[str, str]:
        mapping = {u.get("useAs", ""): self.resolve_use_report(u) for u in self.use_reports}
        # The toolkit runs at human pace; this runner runs a whole collection in about a second,
        # so an object the registry stamped this very second (a Folder's lastUpdateTime) would
        # fall outside a `To` bound of `$now$`, which is exclusive. One second ahead keeps `$now$`
        # after everything submitted so far, as it is when the toolkit runs.
        mapping.setdefault("$now$", hl7_now(timedelta(seconds=1)))
        mapping.setdefault("$lastyear$", hl7_now(-timedelta(days=365)))
        mapping.setdefault("$DATE$", hl7_now()[:8])  # today, UTC as the registry stamps times
        return mapping

    def id_links(self) -> dict[str, str]:
        mapping = {u.get("symbol", ""): self.resolve_use_id(u) for u in self.use_ids}
        if self.use_xpaths:
            log = self.section_log_document()
            for use in self.use_xpaths:
                mapping[use.get("symbol", "")] = _xpath_string(log, (use.text or "").strip())
        return mapping

    # --- request --------------------------------------------------------------------------------
    def load_metadata(self) -> etree._Element:
        if not self.metadata_file:
            raise StepFailure(f"{self.kind} without a MetadataFile")
        return read_xml(self.section.directory / self.metadata_file)

    def read_documents(self) -> list[messages.DocumentPart]:
        parts = []
        for element in self.documents:
            source = element.get("source")
            base = self.engine.config.document_dirs.get(source) if source else self.section.directory
            if base is None:
                raise StepFailure(f"Document source {source!r} is not configured (see --cda-dir)")
            path = base / (element.text or "").strip()
            try:
                parts.append(messages.DocumentPart(element.get("id", ""), path.read_bytes()))
            except OSError as exc:
                raise StepFailure(f"cannot read document {path}: {exc}") from exc
        return parts

    def documents_with_their_ids(
        self, parts: list[messages.DocumentPart], request: etree._Element
    ) -> list[messages.DocumentPart]:
        """`<Document setId="true">` (our extension): the CDA's id becomes the uniqueId the step
        gave its DocumentEntry, so that an ANS example is published under a fresh id."""
        wanted = {e.get("id", "") for e in self.documents if e.get("setId") == "true"}
        if not wanted:
            return parts
        unique_ids = document_unique_ids(request)
        changed = []
        for part in parts:
            if part.object_id in wanted:
                if not unique_ids.get(part.object_id):
                    raise StepFailure(f"Document {part.object_id!r} setId: no DocumentEntry uniqueId for it")
                try:
                    data = messages.with_cda_id(part.data, unique_ids[part.object_id])
                except ValueError as exc:
                    raise StepFailure(f"Document {part.object_id!r} setId: {exc}") from exc
                part = messages.DocumentPart(part.object_id, data)
            changed.append(part)
        return changed

    def prepare(self) -> tuple[etree._Element, list]:
        metadata = self.load_metadata()
        substitute(metadata, self.links())
        if "XDSb" in self.options and is_ebrim21(metadata) and "NoConvert" not in self.options:
            metadata = to_ebrim30(metadata)
        attachments: list = []
        if self.kind in messages.SUBMISSIONS:
            try:
                request = messages.submit_objects_request(metadata)
            except ValueError as exc:
                raise StepFailure(str(exc)) from exc
            parts = self.read_documents() if self.kind == "ProvideAndRegisterTransaction" else []
            document_elements = messages.document_elements(parts)
            if "NoParse" not in self.options:
                if "NoPatientId" not in self.options:
                    patient = self.alt_patient or self.state.current_patient_id
                    self.record.assigned_patient_ids = assign_patient_id(request, patient)
                substitute(request, self.id_links())
                assign_source_id(request, self.engine.config.source_id)
                if "NoAssignUids" not in self.options or self.keep_uid:
                    self.record.assigned_uids = assign_unique_ids(request, self.keep_uid)
                parts = self.documents_with_their_ids(parts, request)
                if "AssignUuids" in self.options:
                    self.record.assigned_uuids = assign_uuids(request, document_elements)
            else:
                substitute(request, self.id_links())
            self.record.input_metadata = request
            if self.kind == "ProvideAndRegisterTransaction":
                body, attachments = messages.provide_and_register(
                    copy.deepcopy(request), document_elements, parts, messages.mime_types_by_id(request)
                )
                self.sign_submission(
                    body, {e.get("id", ""): p.data for e, p in zip(document_elements, parts, strict=True)}
                )
                return body, attachments
            return copy.deepcopy(request), attachments
        substitute(metadata, self.id_links())
        self.record.input_metadata = metadata
        return copy.deepcopy(metadata), attachments

    # --- verdict --------------------------------------------------------------------------------
    def judge(self, exchange: SoapExchange, response_root: str) -> None:
        expected = " or ".join(self.expected_status)
        if exchange.fault is not None:
            if "Fault" not in self.expected_status:
                raise StepFailure(f"SOAP Fault from {exchange.url}: {exchange.fault} (expected status {expected})")
            if self.expected_message and self.expected_message not in exchange.fault:
                raise StepFailure(
                    f"expected a SOAP Fault mentioning {self.expected_message!r}, "
                    f"got (HTTP {exchange.http_status}): {exchange.fault}"
                )
            return
        body = exchange.body
        assert body is not None
        if messages.local(body) != response_root:
            raise StepFailure(f"response body is <{messages.local(body)}>, expected <{response_root}>")
        status = messages.response_status(body)
        errors = messages.registry_errors(body)
        error_text = "; ".join(str(e) for e in errors[:5]) + (
            f"; ... {len(errors) - 5} more" if len(errors) > 5 else ""
        )
        if self.expected_status == ["Fault"]:
            raise StepFailure(f"expected a SOAP Fault (a refusal), got status {status} (HTTP {exchange.http_status})")
        if status not in self.expected_status:
            raise StepFailure(
                f"status {status}, expected {expected}"
                + (f" — errors: {error_text}" if errors else " — no RegistryError given")
            )
        if self.expected_message and not any(
            self.expected_message in e.code or self.expected_message in e.context for e in errors
        ):
            raise StepFailure(
                f"expected an error mentioning {self.expected_message}, got " + (error_text or "no RegistryError")
            )
        if self.expected_code and self.expected_code not in {e.code for e in errors}:
            raise StepFailure(f"expected errorCode {self.expected_code}, got " + (error_text or "no RegistryError"))
        if self.kind == "RetrieveTransaction" and status in ("Success", "PartialSuccess"):
            self.check_retrieve(exchange)
        if self.expected_contents is not None and len(self.expected_contents):
            try:
                problems = contents.check_contents(self.expected_contents, body, self.resolve_use_id)
            except ValueError as exc:
                raise StepFailure(f"ExpectedContents: {exc}") from exc
            if problems:
                raise StepFailure(
                    "ExpectedContents "
                    + problems[0]
                    + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                )

    def check_retrieve(self, exchange: SoapExchange) -> None:
        assert exchange.body is not None
        documents = messages.retrieved_documents(exchange.body, exchange.attachments)
        if not documents:
            raise StepFailure("Retrieve answered Success without any DocumentResponse")
        for document in documents:
            if document.problem:
                raise StepFailure(f"document {document.document_unique_id}: {document.problem}")
        reference = self.reference_entries()
        for document in documents:
            entry = reference.get(document.document_unique_id)
            if entry is None:
                continue
            expected_mime = entry.get("mimeType", "")
            if expected_mime and document.mime_type != expected_mime:
                raise StepFailure(
                    f"document {document.document_unique_id}: mimeType {document.mime_type!r}, "
                    f"metadata says {expected_mime!r}"
                )
            data = document.data or b""
            slots = _slots(entry)
            if slots.get("size") and slots["size"] != str(len(data)):
                raise StepFailure(
                    f"document {document.document_unique_id}: {len(data)} bytes, metadata size says {slots['size']}"
                )
            if slots.get("hash") and slots["hash"].lower() != messages.sha1_hex(data):
                raise StepFailure(
                    f"document {document.document_unique_id}: SHA-1 {messages.sha1_hex(data)}, "
                    f"metadata hash says {slots['hash']}"
                )
        links = self.links()
        returned = {d.document_unique_id for d in documents}
        for ref in self.reference_documents:
            uid = substitute_text(ref.get("uid", ""), links)
            if uid and uid not in returned:
                raise StepFailure(f"document {uid} was not returned")

    def reference_entries(self) -> dict[str, etree._Element]:
        """DocumentEntries (by uniqueId) of the query step named by ReferenceMetadata."""
        if self.reference_metadata is None:
            return {}
        testdir = self.reference_metadata.get("testdir")
        test_id, section = (
            (self.engine.kit.resolve(self.section.directory, testdir))
            if testdir
            else (self.state.test.id, self.section.name)
        )
        record = self._step_record(test_id, section, self.reference_metadata.get("step", ""), "ReferenceMetadata")
        if record.result is None:
            return {}
        entries = {}
        for eo in record.result.iter(tag=etree.Element):
            if messages.local(eo) == "ExtrinsicObject":
                for ident in eo:
                    if (
                        messages.local(ident) == "ExternalIdentifier"
                        and ident.get("identificationScheme") == v.DE_UNIQUE_ID
                    ):
                        entries[ident.get("value", "")] = eo
        return entries

    def make_reports(self) -> None:
        reports = self.record.reports
        # The toolkit logs, for every step, the patient it ran with: later steps read it back
        # with <UseReport reportName="$patientid$" step=... /> (NIST 20001).
        reports["$patientid$"] = self.state.current_patient_id
        for symbol, uid in self.record.assigned_uids.items():
            reports[f"{symbol}_uid"] = uid
        for symbol, uuid_value in self.record.assigned_uuids.items():
            reports[f"{symbol}_uuid"] = uuid_value
        for spec in self.report_specs:
            name = spec.get("name", "")
            where = spec.get("section", "Result")
            source = self.record.input_metadata if where == "InputMetadata" else self.record.result
            if source is None:
                reports[name] = ""
                continue
            # As the toolkit: a Report that finds nothing is empty, not an error by itself.
            reports[name] = _xpath_string(etree.ElementTree(copy.deepcopy(source)).getroot(), (spec.text or "").strip())

    def check_assertions(self) -> None:
        if not self.asserts:
            return
        mapping = {**patient_symbols(self.alt_patient or self.state.current_patient_id), **self.links()}
        log = self.section_log_document()
        for assertion in self.asserts:
            expression = substitute_text((assertion.text or "").strip(), mapping)
            try:
                value = log.xpath(expression)
            except etree.XPathError as exc:
                raise StepFailure(f"Assert {assertion.get('id')!r} is not valid XPath ({exc}): {expression}") from exc
            if not _truthy(value):
                raise StepFailure(f"Assert {assertion.get('id')!r} does not hold: {' '.join(expression.split())}")

    def patient_feed(self) -> None:
        if self.engine.feed is None:
            raise StepFailure("this step sends an ITI-8 patient feed: give --feed HOST:PORT")
        if self.fixed_patient:
            patient = self.fixed_patient
        elif "CreateNewPatientId" in self.options:
            patient = new_patient_id(self.engine.config.assigning_authority)
        else:
            patient = self.state.current_patient_id
        try:
            self.engine.feed(patient)
        except Exception as exc:
            raise StepFailure(f"patient identity feed (ITI-8) of {patient} failed: {exc}") from exc
        self.state.current_patient_id = patient
        if self.fixed_patient:
            self.state.patient_id = patient  # the plan names its patient: it is this test's $patientid$


def _slots(entry: etree._Element) -> dict[str, str]:
    found = {}
    for slot in entry:
        if messages.local(slot) == "Slot":
            values = [value.text or "" for value in slot.iter(tag=etree.Element) if messages.local(value) == "Value"]
            if values:
                found[slot.get("name", "")] = values[0].strip()
    return found


def _xpath_string(root: etree._Element, expression: str) -> str:
    try:
        value = root.xpath(expression)
    except etree.XPathError as exc:
        raise StepFailure(f"invalid XPath ({exc}): {expression}") from exc
    if isinstance(value, list):
        if not value:
            return ""
        first = value[0]
        return (first if isinstance(first, str) else "".join(first.itertext())).strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value != 0 and not math.isnan(value)
    if isinstance(value, (str, list)):
        return len(value) > 0
    return bool(value)
