"""The establishment dashboard's figures from real activity: a hospital's doctor creates a DMP
(TD1.1) and publishes, replaces, archives and deletes documents, has a submission refused and
searches, over TLS with the test PKI's card and VIHFs, on SQLite and PostgreSQL; a doctor of
another structure acts too. The figures, the refusal list, the CSV and `dmp-xds stats` must
count the hospital's requests, and only them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from lxml import etree

import hl7v3_messages as msg
import soap_messages as soap
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.security.vihf import security_header
from dmp_xds.services import establishment_stats as es
from dmp_xds.storage.database import create_engine_for
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Association, Author, Submission
from factories import make_association, make_submission, make_submission_set, new_uuid
from secure_server import SecureServer, start_secure_server, stop_secure_server, vihf
from xds_server import BACKENDS, database_for

HOSPITAL = "1990000017"  # the test PKI's hospital: the structure of the "doctor" card's VIHF
OTHER = "1990000099"  # the VIHF structure of "doctor2", whose card names none
PATIENT_INS = msg.ins(4242)
PATIENT = msg.cx(PATIENT_INS)


@dataclass
class Activity:
    server: SecureServer
    published: list[str]  # uniqueIds the hospital published
    refused_codes: list[str]
    refused_document: str
    mismatched_document: str
    deleted: str
    archived: str


def dmpi_post(server: SecureServer, service: str, action: str, body: str, patient: str, card: str) -> None:
    envelope = etree.fromstring(
        f"""<soap:Envelope xmlns:soap="{v.NS_SOAP12}"><soap:Header>
        <To xmlns="{v.NS_WSA}"/>
        <MessageID xmlns="{v.NS_WSA}">urn:uuid:{uuid.uuid4()}</MessageID>
        <Action xmlns="{v.NS_WSA}" mustUnderstand="true">{action}</Action>
        </soap:Header><soap:Body/></soap:Envelope>""".encode()
    )
    envelope[0].append(security_header(vihf(server.pki, card, patient + "^NH")))
    envelope[1].append(msg.element(body))
    identity = server.pki.identity(card)
    response = requests.post(
        f"{server.url}/si-dmp-server/v2/services/{service}",
        data=etree.tostring(envelope),
        timeout=30,
        cert=(identity.certificate, identity.key),
        verify=str(server.pki.anchors),
        headers={"Content-Type": "application/soap+xml"},
    )
    assert response.status_code == 200, response.text


def authored(pki: GeneratedPki, card: str, replaces: str = "") -> Submission:
    """A document of PATIENT written by `card`'s holder (replacing the entry `replaces`)."""
    submission = make_submission(1, submission_set=make_submission_set(patient_id=PATIENT))
    entry = submission.documents[0]
    entry.patient_id = PATIENT
    entry.authors = [Author(person=f"{pki.identity(card).national_id}^MARTIN^Marie^^^Dr^^^&1.2.250.1.71.4.2.1&ISO")]
    if replaces:
        submission.associations.append(make_association(entry.entry_uuid, replaces, association_type=v.RPLC, slots={}))
    return submission


def submit(server: SecureServer, submission: Submission, card: str = "doctor") -> soap.SoapResponse:
    return server.call("registry", soap.register(submission), vihf(server.pki, card, PATIENT), card=card)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=BACKENDS)
def activity(
    request: pytest.FixtureRequest, pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Activity]:
    server = start_secure_server(
        tmp_path_factory.mktemp(f"stats-{request.param}"), pki, tls=True, database_url=database_for(request)
    )
    try:
        yield _act(server, pki)
    finally:
        stop_secure_server(server)


def _act(server: SecureServer, pki: GeneratedPki) -> Activity:
    # TD1.1 by the hospital's doctor: the DMP and its consent are the hospital's.
    dmpi_post(server, "patients", hv.ACTION_PATIENT_ADD, msg.patient_add(PATIENT_INS), PATIENT, "doctor")
    server.cli("dmp", "grant", PATIENT, pki.identity("doctor").national_id)
    server.cli("dmp", "grant", PATIENT, pki.identity("doctor2").national_id)
    first = authored(pki, "doctor")
    assert submit(server, first).status == "Success"
    replacing = authored(pki, "doctor", replaces=first.documents[0].entry_uuid)
    assert submit(server, replacing).status == "Success", submit
    doomed = authored(pki, "doctor")
    assert submit(server, doomed).status == "Success"
    # Refused: a document of another patient than the submission set's.
    bad = authored(pki, "doctor")
    bad.documents[0].patient_id = msg.cx(msg.ins(4343))
    refused = submit(server, bad)
    assert refused.status == "Failure" and refused.error_codes
    # Refused by the repository (ITI-41): the document is not the one its metadata describes.
    wrong = authored(pki, "doctor")
    wrong.documents[0].hash = "0" * 40
    pnr = soap.provide_and_register(wrong, {wrong.documents[0].entry_uuid: b"not what the hash says"}, mtom=False)
    mismatch = server.call("repository", pnr, vihf(pki, "doctor", PATIENT))
    assert set(mismatch.error_codes) == {"XDSRepositoryMetadataError"}, mismatch.error_codes
    # The doctor archives the replacing document and deletes the doomed one (their own).
    ss = make_submission_set(patient_id=PATIENT)
    change = Association(
        new_uuid(),
        v.UPDATE_AVAILABILITY_STATUS,
        ss.entry_uuid,
        replacing.documents[0].entry_uuid,
        slots={v.SLOT_ORIGINAL_STATUS: [v.STATUS_APPROVED], v.SLOT_NEW_STATUS: [v.STATUS_ARCHIVED]},
    )
    archive = server.call(
        "registry", soap.update(Submission(ss, [], [], [change], submission_set_count=1)), vihf(pki, "doctor", PATIENT)
    )
    assert archive.status == "Success", archive.error_codes
    entry = doomed.documents[0]
    link = next(a for a in doomed.associations if a.target == entry.entry_uuid)
    removal = server.call(
        "registry",
        soap.delete_document_set([doomed.submission_set.entry_uuid, link.entry_uuid, entry.entry_uuid]),
        vihf(pki, "doctor", PATIENT),
    )
    assert removal.status == "Success", removal.error_codes
    query = soap.adhoc_query(
        v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{PATIENT}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
    )
    assert server.call("registry", query, vihf(pki, "doctor", PATIENT)).status == "Success"
    # Another structure's doctor publishes and searches: none of it is the hospital's.
    assert submit(server, authored(pki, "doctor2"), card="doctor2").status == "Success"
    server.call("registry", query, vihf(pki, "doctor2", PATIENT), card="doctor2")
    published = [first.documents[0].unique_id or "", replacing.documents[0].unique_id or "", entry.unique_id or ""]
    return Activity(
        server,
        published,
        refused.error_codes,
        bad.documents[0].unique_id or "",
        wrong.documents[0].unique_id or "",
        entry.unique_id or "",
        replacing.documents[0].unique_id or "",
    )


def _engine(activity: Activity):  # type: ignore[no-untyped-def]
    return create_engine_for(activity.server.engine_url())


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def test_the_month_counts_the_structures_activity_and_only_it(activity: Activity) -> None:
    engine = _engine(activity)
    try:
        figures = es.month_figures(engine, HOSPITAL, es.Month.of(_today())).activity
        other = es.month_figures(engine, OTHER, es.Month.of(_today())).activity
    finally:
        engine.dispose()
    assert (figures.dmps_created, figures.consents_collected) == (1, 1)
    assert figures.documents_published == 3
    assert figures.documents_replaced == 1
    assert figures.documents_archived == 1
    assert figures.documents_deleted == 1
    assert figures.patients_fed == 1
    assert figures.submissions_refused == 2
    assert dict(figures.refusals_by_code) == {
        **{code: 1 for code in set(activity.refused_codes)},
        "XDSRepositoryMetadataError": 1,
    }
    assert figures.searches == 1
    assert sum(c.count for c in figures.by_type) == sum(c.count for c in figures.by_class) == 3
    # The other structure: its own publication and search, nothing of the hospital's.
    assert (other.documents_published, other.searches, other.dmps_created, other.submissions_refused) == (1, 1, 0, 0)


def test_the_days_refusals_say_who_which_document_and_which_rule(activity: Activity) -> None:
    engine = _engine(activity)
    try:
        day = es.day_refusals(engine, HOSPITAL, _today())
        elsewhere = es.day_refusals(engine, OTHER, _today())
    finally:
        engine.dispose()
    refusal, mismatch = day.refusals
    assert refusal.actor_id == mismatch.actor_id == activity.server.pki.identity("doctor").national_id
    assert refusal.documents == (activity.refused_document,)
    assert set(refusal.codes) == set(activity.refused_codes)
    assert activity.refused_codes[0] in refusal.rules and len(refusal.rules) > len(activity.refused_codes[0]) + 5
    assert mismatch.documents == (activity.mismatched_document,)
    assert mismatch.codes == ("XDSRepositoryMetadataError",)
    assert "differs from the document's SHA-1" in mismatch.rules
    assert elsewhere.refusals == ()


def test_the_csv_gives_back_the_figures(activity: Activity) -> None:
    engine = _engine(activity)
    try:
        figures = es.month_figures(engine, HOSPITAL, es.Month.of(_today()))
        series = es.monthly_series(engine, HOSPITAL, es.Month.of(_today()))
    finally:
        engine.dispose()
    rows = es.read_csv(es.to_csv(es.figures_table(figures)))
    assert rows[0] == ["Indicateur", "Valeur"]
    values = {label: int(value) for label, value in rows[1:]}
    assert values["Documents publiés"] == figures.activity.documents_published == 3
    assert values["Envois refusés"] == 2 and values["DMP créés"] == 1
    monthly = es.read_csv(es.to_csv(es.series_table(series)))
    assert len(monthly) == 13 and monthly[-1][0] == es.Month.of(_today()).key
    assert monthly[-1][1:] == [str(values[label]) for _, label in es.FIGURES]


def test_a_month_over_is_read_once(activity: Activity) -> None:
    month = es.Month.of(_today())
    later = month.end + es.CLOSED_AFTER
    engine = _engine(activity)
    try:
        current = es.month_figures(engine, HOSPITAL, month)
        hits = es._closed_month.cache_info().hits
        assert es.month_figures(engine, HOSPITAL, month, now=later) == current
        assert es.month_figures(engine, HOSPITAL, month, now=later) == current
        assert es._closed_month.cache_info().hits == hits + 1
    finally:
        engine.dispose()


def test_the_command_line_gives_the_same_figures(activity: Activity) -> None:
    month = es.Month.of(_today()).key
    out = activity.server.cli(
        "stats", "--structure", HOSPITAL, "--month", month, "--refusals-on", _today().isoformat(), "--format", "json"
    )
    data = json.loads(out)
    (figures,) = data["figures"]
    assert (figures["documents_published"], figures["submissions_refused"], figures["dmps_created"]) == (3, 2, 1)
    refusals = data[f"refus-{HOSPITAL}-{_today().isoformat()}"]
    assert [r["Documents"] for r in refusals] == [activity.refused_document, activity.mismatched_document]
    assert refusals[1]["Codes d'erreur"] == "XDSRepositoryMetadataError"
    table = activity.server.cli("stats", "--structure", HOSPITAL, "--month", month, "--year-to", month)
    assert "Documents publiés" in table and "Activité mois par mois" in table
    other = json.loads(activity.server.cli("stats", "--structure", OTHER, "--month", month, "--format", "json"))
    assert other["figures"][0]["documents_published"] == 1


def test_the_trace_still_verifies(activity: Activity) -> None:
    """The refusals' documents and codes are in the row's own fields: the chain is whole."""
    assert "intact" in activity.server.cli("audit", "verify")
