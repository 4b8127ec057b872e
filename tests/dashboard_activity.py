"""A hospital's DMP activity over TLS, for the establishment dashboard's tests: its doctor
creates a DMP (TD1.1), publishes, replaces, archives and deletes documents, has two submissions
refused (the registry's metadata check, the repository's hash check) and searches, with the test
PKI's card and VIHFs; a doctor of another structure publishes and searches too."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import requests
from lxml import etree

import hl7v3_messages as msg
import soap_messages as soap
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.security.pki import GeneratedPki
from dmp_xds.security.vihf import security_header
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Association, Author, Submission
from factories import make_association, make_submission, make_submission_set, new_uuid
from secure_server import SecureServer, vihf

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


def act(server: SecureServer, pki: GeneratedPki) -> Activity:
    """The hospital's activity (module docstring), on `server`."""
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
