"""Every cell of the DMP's rights matrix over real TLS: for each row x column of an independent,
literal copy of the table (a wrong cell in dmp/rights_matrix.py fails here), the row's
transaction is performed against one secured server by the column's identity in its access mode,
on a DMP of its own made for that cell; an allowed cell must be answered, a refused one must name
its cell ("rights matrix: <row>, profile X (...), mode y") in the answer and in its denied trace
row. Cells under a footnote the server can judge are exercised on both sides of its condition.

Columns: A the nurse, B doctor2 (authorized, not attending), C the occupational doctor, D the
doctor with the attending grant, E the hospital's secretary (CPE card), F the hospital's
certificate (the nurse's VIHF signed by the hospital: indirect mode); modes from the VIHF.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

import hl7v3_messages as msg
import soap_messages as soap
from dmp_xds.dmp import cxf_vocabulary as cv
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.dmp.model import Consent
from dmp_xds.dmp.submission_signature import add_submission_signature
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import load_pem_certificates
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.records import DmpStore
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Submission
from integration.test_dmpi_habilitations import cxf
from integration.test_dmpi_patients import post
from integration.test_rights_matrix_tls import find, found, new_version, object_refs, publish, status_change
from secure_server import MASKED, SecureServer, start_secure_server, stop_secure_server, vihf

SOMEONE_ELSE = "899999999999"  # the author of documents no caller wrote
OTHER_STRUCTURE = "1990000099"

# PDT-INF-526 v1.8, copied by hand (not imported) so that a wrong cell in the product fails.
#            An    Ar    Ab    Bn    Br    Bb    C     Dn    Db    E     Fn    Fr
COLUMNS = ("An", "Ar", "Ab", "Bn", "Br", "Bb", "Cn", "Dn", "Db", "En", "Fn", "Fr")
TABLE = {
    "TD0.2/1.3a existence test, administrative data": "Y Y Y Y Y Y Y Y Y Y Y Y",
    "TD0.3 declare oneself authorized": "Y N N Y N N N Y N Y(1) N N",
    "TD0.3 remove own authorization": "Y N N Y N N N Y N N N N",
    "TD0.3 remove oneself as attending doctor": "N N N N N N N Y N N N N",
    "TD0.4 list authorized DMPs": "Y Y Y Y Y Y Y Y Y Y(2) Y(3) N",
    "TD0.5 search a patient without INS": "N Y N N Y N N N N N N Y",
    "TD0.9 contextual web access": "Y Y Y Y Y Y Y Y Y Y N N",
    "TD1.6 list authorized/blocked professionals": "Y N N Y N N Y Y N N N N",
    "TD2.1 publish": "Y Y Y Y Y Y Y Y Y N Y(4) Y(4)",
    "TD2.2 publish by CPE": "N N N N N N N N N Y(4) N N",
    "TD3.1 search metadata": "Y Y Y Y Y Y Y Y Y N N N",
    "TD3.1 find a document's reference": "Y Y Y Y Y Y Y Y Y Y(5) Y(5) Y(5)",
    "TD3.2 document not masked": "Y Y Y Y Y Y N Y Y N N N",
    "TD3.2 masked document": "Y(6) Y(7) Y(7) Y(6) Y(7) Y(7) N Y Y(7) N N N",
    "TD3.3a mask / TD3.3b make visible to the patient": "Y N N Y N N Y Y N N N N",
    "TD3.3a unmask": "Y(8) N N Y(8) N N Y(8) Y N N N N",
    "TD3.3d archive / unarchive": "Y(8) N N Y(8) Y Y Y(8) Y Y N N N",
    "TD3.3c delete": "Y(8) Y(8) Y(8) Y(8) Y(8) Y(8) Y(8) Y(8) Y(8) Y(9) Y(9) Y(9)",
}
PATIENT_AUTHORED = ("TD3.3d archive / unarchive", "TD3.3c delete")  # (*): only the attending doctor
PROFILES = {
    "A": ("nurse", "PS non-médecin"),
    "B": ("doctor2", "médecin non-MT"),
    "C": ("occupational", "médecin du travail"),
    "D": ("doctor", "médecin traitant DMP"),
    "E": ("secretary", "carte CPE"),
    "F": ("hospital", "établissement, mode indirect"),
}
MODES = {"n": sv.ACCESS_NORMAL, "r": sv.ACCESS_REGULATION, "b": sv.ACCESS_EMERGENCY}
# Cells no transaction of the server can reach, and why (they are listed, not silently dropped).
NOT_EXERCISED = {
    "TD0.9 contextual web access": "the server has no DMP web site yet",
}
# An ITI-41 is TD2.2 when a CPE card sends it and TD2.1 otherwise: the N of E in TD2.1 and the N
# of every other column in TD2.2 are that routing, checked by publishing and reading which row
# the trace names.
ROUTED = {"TD2.1 publish": "TD2.2 publish by CPE", "TD2.2 publish by CPE": "TD2.1 publish"}


@dataclass(frozen=True)
class Case:
    row: str
    column: str  # e.g. "Bn"
    cell: str  # "Y", "N", "Y(7)"
    holds: bool = True  # the footnote's (or (*)'s) condition, set up true or false
    patient_authored: bool = False

    @property
    def profile(self) -> str:
        return self.column[0]

    @property
    def mode(self) -> str:
        return self.column[1]

    @property
    def expected(self) -> bool:
        if self.patient_authored:
            return self.profile == "D"
        return self.cell != "N" and self.holds

    def __str__(self) -> str:
        side = "" if self.cell in ("Y", "N") else ("-holds" if self.holds else "-fails")
        return f"{self.row}|{self.column}|{self.cell}{side}{'|patient-authored' if self.patient_authored else ''}"


# The footnotes the server judges, and the cheap set-up of each side.
JUDGED = {"(2)", "(3)", "(6)", "(7)", "(8)", "(9)"}


def cases() -> list[Case]:
    found_cases: list[Case] = []
    for row, cells in TABLE.items():
        if row in NOT_EXERCISED:
            continue
        for column, cell in zip(COLUMNS, cells.split(), strict=True):
            note = cell[1:]
            if note in JUDGED:
                found_cases += [Case(row, column, cell, True), Case(row, column, cell, False)]
            else:
                found_cases.append(Case(row, column, cell))
            if row in PATIENT_AUTHORED and cell != "N":
                found_cases.append(Case(row, column, cell, patient_authored=True))
    return found_cases


CASES = cases()


def test_the_generated_cases_cover_every_cell_but_the_web_access_row() -> None:
    covered = {(c.row, c.column) for c in CASES}
    assert len(covered) == (len(TABLE) - len(NOT_EXERCISED)) * len(COLUMNS)
    assert not any(row in NOT_EXERCISED for row, _ in covered)


# --- the server and each cell's DMP ----------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    running = start_secure_server(tmp_path_factory.mktemp("cells"), pki, tls=True)
    yield running
    stop_secure_server(running)


@pytest.fixture(scope="module")
def records(server: SecureServer) -> Iterator[DmpStore]:
    engine = create_engine_for(server.engine_url())
    yield DmpStore(engine)
    engine.dispose()


_numbers = itertools.count(1)


def new_patient() -> str:
    return msg.cx(msg.ins(70000 + next(_numbers)))


@dataclass
class Cell:
    """One cell's world: its server, its DMP (whose only grant is the column's), its caller."""

    server: SecureServer
    pki: GeneratedPki
    records: DmpStore
    case: Case
    patient: str

    @property
    def caller(self) -> str:
        return PROFILES[self.case.profile][0]

    @property
    def caller_id(self) -> str:
        return self.pki.identity("nurse" if self.caller == "hospital" else self.caller).national_id

    @property
    def hospital(self) -> str:
        return self.pki.identity("hospital").structure_id

    def assertion(self, patient: str | None = None) -> etree._Element:
        patient = patient or self.patient
        mode = MODES[self.case.mode]
        if self.caller == "hospital":
            return vihf(
                self.pki,
                "nurse",
                patient,
                signer="hospital",
                authentication_mode=sv.AUTHENTICATION_INDIRECT,
                access_mode=mode,
            )
        reason = {"access_reason": "patient inconscient"} if mode == sv.ACCESS_EMERGENCY else {}
        return vihf(self.pki, self.caller, patient, access_mode=mode, **reason)

    def xds(self, endpoint: str, request: soap.HttpRequest) -> soap.SoapResponse:
        return self.server.call(endpoint, request, self.assertion(), card=self.caller)

    def cxf(self, operation: str, children: str) -> soap.SoapResponse:
        return cxf(self.server, operation, children, self.assertion(), self.caller)

    def hl7(self, service: str, action: str, body: str) -> soap.SoapResponse:
        return post(self.server, service, action, body, self.patient, self.caller, assertion=self.assertion())

    def grant(self, patient: str | None = None) -> None:
        """The column's own authorization on the DMP: the attending doctor's grant for D, the
        hospital's for E and F, a professional's for the others."""
        patient = patient or self.patient
        if self.case.profile in "EF":
            self.records.grant(patient, "establishment", self.hospital, "accueil")
        else:
            kind = "attending" if self.case.profile == "D" else "professional"
            self.records.grant(patient, kind, self.caller_id, "accueil")

    def document(self, masked: bool = False, own: bool = False, structure: bool = False) -> Submission:
        author = self.caller_id if own else SOMEONE_ELSE
        if self.case.patient_authored:
            author = self.patient.split("^")[0]
        institution = self.hospital if structure else OTHER_STRUCTURE
        return self.server.store_document(
            f"cell-{next(_numbers)}", self.patient, (MASKED,) if masked else (), author=author, institution=institution
        )


@dataclass
class Outcome:
    allowed: bool
    answer: str  # what the caller was told (the whole answer's text)


def text_of(response: soap.SoapResponse) -> str:
    body = etree.tostring(response.payload, encoding="unicode") if response.payload is not None else ""
    return f"{response.fault_reason or ''} {body}"


def xds_outcome(response: soap.SoapResponse) -> Outcome:
    allowed = response.status_code == 200 and response.status in ("Success", "PartialSuccess")
    return Outcome(allowed, text_of(response))


def cxf_outcome(response: soap.SoapResponse, operation: str) -> Outcome:
    if response.status_code != 200:
        return Outcome(False, text_of(response))
    output = response.payload.find(cv.tag(operation, "output"))
    status = output.findtext(cv.tag(operation, "status")) if output is not None else ""
    return Outcome(status == cv.STATUS_OK, text_of(response))


def hl7_outcome(response: soap.SoapResponse) -> Outcome:
    if response.status_code != 200:
        return Outcome(False, text_of(response))
    ns = {"h": hv.NS_HL7}
    element = response.payload.find(".//h:acknowledgement", ns)
    assert element is not None, text_of(response)[:2000]
    kind = element.get("typeCode") or element.find("h:typeCode", ns).get("code")
    return Outcome(kind == "AA", text_of(response))


# --- each row's transaction --------------------------------------------------------------------


def read_admin_data(cell: Cell) -> Outcome:
    """The existence test (TD0.2), then the administrative data (TD1.3a): both allowed, or not."""
    cell.grant()
    ins = cell.patient.split("^")[0]
    outcomes = [
        hl7_outcome(cell.hl7("patients", hv.ACTION_GET_DEMOGRAPHICS, msg.get_demographics(ins, reason)))
        for reason in (hv.TEST_EXST, hv.CNSLT_DATA)
    ]
    return Outcome(all(o.allowed for o in outcomes), " ".join(o.answer for o in outcomes))


def declare_authorized(cell: Cell) -> Outcome:
    """Declared by someone not yet authorized, but for D: the attending doctor is D by their grant."""
    if cell.case.profile == "D":
        cell.grant()
    return cxf_outcome(cell.cxf(cv.SET_AUTHORIZATION, "<action>AJOUT</action>"), cv.SET_AUTHORIZATION)


def remove_own_authorization(cell: Cell) -> Outcome:
    cell.grant()
    return cxf_outcome(cell.cxf(cv.SET_AUTHORIZATION, "<action>SUPPRESSION</action>"), cv.SET_AUTHORIZATION)


def remove_oneself_as_mt(cell: Cell) -> Outcome:
    cell.grant()
    children = f"<action>SUPPRESSION</action><role>{cv.ROLE_ATTENDING}</role>"
    return cxf_outcome(cell.cxf(cv.SET_AUTHORIZATION, children), cv.SET_AUTHORIZATION)


def list_authorized_dmps(cell: Cell) -> Outcome:
    """Allowed: answered, and the cell's DMP listed. (2): the CPE's structure is authorized on
    the DMP, or only a professional of another structure is. (3): the establishment lists by
    the date of new authorizations, or by that of the last document."""
    case = cell.case
    if case.cell == "Y(2)" and not case.holds:
        cell.records.grant(cell.patient, "professional", SOMEONE_ELSE, "accueil")
    else:
        cell.grant()
    date_type = cv.DATE_LAST_DOCUMENT if case.cell == "Y(3)" and not case.holds else cv.DATE_LAST_AUTHORIZATION
    children = "" if case.cell != "Y(3)" else f"<startDate>20000101000000</startDate><dateType>{date_type}</dateType>"
    response = cell.cxf(cv.PATIENT_LIST, children)
    outcome = cxf_outcome(response, cv.PATIENT_LIST)
    listed = {e.text for e in response.payload.iter(f"{{{cv.NS_PATIENTS}}}nationalId")}
    return Outcome(outcome.allowed and cell.patient.split("^")[0] in listed, outcome.answer)


def search_without_ins(cell: Cell) -> Outcome:
    cell.grant()
    return hl7_outcome(cell.hl7("patientsPDQ", hv.ACTION_FIND_CANDIDATES, msg.find_candidates("PERSONNE")))


def list_authorizations(cell: Cell) -> Outcome:
    cell.grant()
    return cxf_outcome(
        cell.cxf(cv.LIST_AUTHORIZATION_BY_PATIENT, "<mode>TOUTE</mode>"), cv.LIST_AUTHORIZATION_BY_PATIENT
    )


def publish_document(cell: Cell) -> Outcome:
    """ITI-41 with the submission set signed (XAdES) by the caller's card, or for F by the
    hospital's certificate, as a DMP-compatible software sends TD2.1. The server here runs the
    IHE profile (the CI-SIS one needs the ANS value sets and CDA documents): it stores the
    signature without verifying it; test_td21_signed_submission.py verifies it under CI-SIS."""
    cell.grant()
    request = publish(cell.patient)
    envelope = etree.fromstring(request.body)
    pnr = envelope.find(f".//{v.TAG_PNR_REQUEST}")
    assert pnr is not None
    contents = {d.get("id", ""): base64.b64decode(d.text or "") for d in pnr.iterfind(v.TAG_DOCUMENT)}
    signer = cell.pki.identity(cell.caller)
    key = load_pem_private_key(Path(signer.key).read_bytes(), None)
    add_submission_signature(pnr, contents, key, load_pem_certificates(Path(signer.certificate).read_bytes()))
    signed = soap.HttpRequest(etree.tostring(envelope), request.content_type, request.message_id)
    return xds_outcome(cell.xds("repository", signed))


def search_metadata(cell: Cell) -> Outcome:
    cell.grant()
    unique_id = cell.document().documents[0].unique_id
    response = cell.xds("registry", find(cell.patient))
    outcome = xds_outcome(response)
    return Outcome(outcome.allowed and unique_id in found(response), outcome.answer)


def find_reference(cell: Cell) -> Outcome:
    cell.grant()
    entry = cell.document().documents[0].entry_uuid
    response = cell.xds("registry", find(cell.patient, "ObjectRef"))
    outcome = xds_outcome(response)
    return Outcome(outcome.allowed and entry in object_refs(response), outcome.answer)


def read(cell: Cell, masked: bool) -> Outcome:
    cell.grant()
    unique_id = cell.document(masked=masked, own=cell.case.holds).documents[0].unique_id or ""
    response = cell.xds("repository", soap.retrieve([(cell.server.repository_id, unique_id)]))
    outcome = xds_outcome(response)
    return Outcome(outcome.allowed and set(soap.document_bytes(response)) == {unique_id}, outcome.answer)


def mask(cell: Cell) -> Outcome:
    cell.grant()
    return xds_outcome(cell.xds("registry", soap.update(new_version(cell.document(), masked=True))))


def unmask(cell: Cell) -> Outcome:
    cell.grant()
    target = cell.document(masked=True, own=cell.case.holds)
    return xds_outcome(cell.xds("registry", soap.update(new_version(target, masked=False))))


def change_status(cell: Cell, status: str) -> Outcome:
    cell.grant()
    holds = cell.case.holds
    target = cell.document(own=holds and cell.case.cell == "Y(8)", structure=holds and cell.case.cell == "Y(9)")
    return xds_outcome(cell.xds("registry", soap.update(status_change(target, status))))


TRANSACTIONS: dict[str, Callable[[Cell], Outcome]] = {
    "TD0.2/1.3a existence test, administrative data": read_admin_data,
    "TD0.3 declare oneself authorized": declare_authorized,
    "TD0.3 remove own authorization": remove_own_authorization,
    "TD0.3 remove oneself as attending doctor": remove_oneself_as_mt,
    "TD0.4 list authorized DMPs": list_authorized_dmps,
    "TD0.5 search a patient without INS": search_without_ins,
    "TD1.6 list authorized/blocked professionals": list_authorizations,
    "TD2.1 publish": publish_document,
    "TD2.2 publish by CPE": publish_document,
    "TD3.1 search metadata": search_metadata,
    "TD3.1 find a document's reference": find_reference,
    "TD3.2 document not masked": lambda cell: read(cell, masked=False),
    "TD3.2 masked document": lambda cell: read(cell, masked=True),
    "TD3.3a mask / TD3.3b make visible to the patient": mask,
    "TD3.3a unmask": unmask,
    "TD3.3d archive / unarchive": lambda cell: change_status(cell, v.STATUS_ARCHIVED),
    "TD3.3c delete": lambda cell: change_status(cell, v.STATUS_DELETED),
}


# Rows about no record (a list, a search without INS): nobody is anyone's attending doctor
# there, so D is judged as B, whose cells are the same in those rows.
WITHOUT_RECORD = ("TD0.4 list authorized DMPs", "TD0.5 search a patient without INS")


def test_the_attending_doctor_has_the_doctors_cells_where_there_is_no_record() -> None:
    for row in WITHOUT_RECORD:
        cells = dict(zip(COLUMNS, TABLE[row].split(), strict=True))
        assert (cells["Dn"], cells["Db"]) == (cells["Bn"], cells["Bb"])


def names_the_cell(text: str, row: str, profile: str, mode: str) -> bool:
    """The refusal names the matrix, the row and the column (a transaction serving two rows,
    e.g. ITI-43, names both: 'TD3.2 document not masked / TD3.2 masked document, ...')."""
    if row in WITHOUT_RECORD and profile == "D":
        profile = "B"
    return (
        "rights matrix:" in text and row in text and f"profile {profile} ({PROFILES[profile][1]}), mode {mode}" in text
    )


def newest_trace(server: SecureServer, patient: str) -> tuple[str, str]:
    trail = server.trail()
    rows = trail.history(patient, limit=1) or trail.history("", limit=1)
    assert rows, "no trace row"
    return rows[0].event.outcome, rows[0].event.detail


@pytest.mark.parametrize("case", CASES, ids=str)
def test_cell(server: SecureServer, pki: GeneratedPki, records: DmpStore, case: Case) -> None:
    patient = new_patient()
    consent = Consent(
        "accueil",
        dt.datetime.now(dt.UTC),
        emergency_access_allowed=case.holds or case.cell != "Y(7)",
        regulation_access_allowed=case.holds or case.cell != "Y(7)",
    )
    records.create(patient, consent)
    cell = Cell(server, pki, records, case, patient)
    outcome = TRANSACTIONS[case.row](cell)
    status, detail = newest_trace(server, patient)
    if case.row in ROUTED and case.cell == "N":
        # Not this row's transaction for this column: the other row judges it (and allows it).
        other = ROUTED[case.row]
        assert outcome.allowed, outcome.answer[:3000]
        assert names_the_cell(detail, other, case.profile, case.mode), detail
        return
    if case.cell == "Y(2)" and not case.holds:
        # (2) is a filter, not a refusal: the CPE's list is answered without this DMP.
        assert not outcome.allowed and status == "success" and "DMPOk" in outcome.answer, outcome.answer[:3000]
        return
    if case.row == "TD3.3a unmask" and not case.holds:
        # Another's masked document is invisible to A, B (Y(6)) and C (N) in the 3.2 row: to
        # them it is unknown, refused as such (a guessed id reveals nothing), and traced failed.
        assert not outcome.allowed and "no registered DocumentEntry has this logical id" in outcome.answer, (
            outcome.answer
        )
        assert status == "failure", detail
        return
    if case.expected:
        assert outcome.allowed, outcome.answer[:3000]
        assert status == "success", detail
        return
    assert not outcome.allowed, outcome.answer[:3000]
    assert status == "denied", (detail, outcome.answer[:3000])
    assert names_the_cell(detail, case.row, case.profile, case.mode), detail
    if case.row == "TD3.2 masked document" and case.cell != "N":
        # A masked document the caller may not read is answered as an unknown one (the answer
        # reveals nothing of it); only the trace names the cell.
        assert "XDSDocumentUniqueIdError" in outcome.answer, outcome.answer[:3000]
        return
    assert names_the_cell(outcome.answer, case.row, case.profile, case.mode), outcome.answer[:3000]
