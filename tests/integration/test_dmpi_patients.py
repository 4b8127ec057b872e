"""The DMP's HL7 V3 patient services at the DMP's own paths (`patients`: TD0.2, TD1.1-1.4;
`patientsPDQ`: TD0.5) on a secured server over TLS with the test PKI and VIHFs, on SQLite and
PostgreSQL (the services are the DMP's whatever the profile: they change nothing of XDS): our requests shaped like the DMP's example requests get
answers shaped like the DMP's example answers (root element, action, acknowledgement, query
response code, attention lines, observations, status); refusals are AE answers that change
nothing and leave one trace row each."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import requests
from lxml import etree

import hl7v3_messages as msg
import soap_messages as soap
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.security.vihf import security_header
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.records import DmpStore
from dmp_xds.xds import vocabulary as v
from factories import make_document_entry, make_submission, make_submission_set
from secure_server import SecureServer, patient_vihf, start_secure_server, stop_secure_server, vihf
from xds_server import BACKENDS, database_for, documents_for

DMPI = "/si-dmp-server/v2/services/"
NS = {"h": hv.NS_HL7, "gdp": hv.NS_GDP}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureServer]:
    running = start_secure_server(
        tmp_path_factory.mktemp(f"dmpi-patients-{request.param}"),
        pki,
        tls=True,
        database_url=database_for(request),
        extra=documents_for(request),
    )
    yield running
    stop_secure_server(running)


def post(
    server: SecureServer,
    service: str,
    action: str,
    body: str,
    patient: str,
    card: str = "doctor",
    assertion: etree._Element | None = None,
    **claims: str,
) -> soap.SoapResponse:
    """One request as the DMP's examples send it: WS-Addressing with an empty To and un-prefixed
    mustUnderstand, the VIHF of `card` about `patient` (in the DMP's ^NH form) in wsse:Security."""
    envelope = etree.fromstring(
        f"""<soap:Envelope xmlns:soap="{v.NS_SOAP12}"><soap:Header>
        <To xmlns="{v.NS_WSA}"/>
        <MessageID xmlns="{v.NS_WSA}">urn:uuid:{uuid.uuid4()}</MessageID>
        <ReplyTo xmlns="{v.NS_WSA}" mustUnderstand="true"><Address>{v.NS_WSA}/anonymous</Address></ReplyTo>
        <Action xmlns="{v.NS_WSA}" mustUnderstand="true">{action}</Action>
        </soap:Header><soap:Body/></soap:Envelope>""".encode()
    )
    envelope[0].append(
        security_header(assertion if assertion is not None else vihf(server.pki, card, patient + "^NH", **claims))
    )
    envelope[1].append(msg.element(body))
    identity = server.pki.identity(card)
    response = requests.post(
        server.url + DMPI + service,
        data=etree.tostring(envelope),
        timeout=30,
        cert=(identity.certificate, identity.key),
        verify=str(server.pki.anchors),
        headers={"Content-Type": "application/soap+xml"},
    )
    return soap.parse_response(response.status_code, response.headers.get("Content-Type", ""), response.content)


def read(server: SecureServer, ins: str, reason: str = hv.TEST_EXST, **kwargs: str) -> soap.SoapResponse:
    response = post(
        server, "patients", hv.ACTION_GET_DEMOGRAPHICS, msg.get_demographics(ins, reason), msg.cx(ins), **kwargs
    )
    assert response.status_code == 200 and response.payload.tag == hv.hl7(hv.DEMOGRAPHICS)
    assert response.header("Action") == hv.ACTION_DEMOGRAPHICS
    return response


def revise(server: SecureServer, ins: str, reason: str, content: str = "", **kwargs: str) -> etree._Element:
    """The PRPA_IN201315UV02 or 201316UV02 inside gdp:PRPA_IN201314UV02_Response."""
    response = post(
        server, "patients", hv.ACTION_PATIENT_REVISE, msg.revise(ins, reason, content), msg.cx(ins), **kwargs
    )
    assert response.status_code == 200 and response.payload.tag == hv.REVISE_RESPONSE
    assert response.header("Action") == hv.ACTION_PATIENT_REVISE_RESPONSE
    (message,) = response.payload
    return message


def create(server: SecureServer, ins: str, **kwargs: str) -> etree._Element:
    response = post(server, "patients", hv.ACTION_PATIENT_ADD, msg.patient_add(ins), msg.cx(ins), **kwargs)
    assert response.status_code == 200 and response.payload.tag == hv.ADD_RESPONSE
    assert response.header("Action") == hv.ACTION_PATIENT_ADD_RESPONSE
    (message,) = response.payload
    return message


def ack(message: etree._Element) -> tuple[str, str]:
    """(type, acknowledgementDetail code) of an answer: the type is an attribute in GDP, an element in PDQ."""
    element = message.find("h:acknowledgement", NS)
    kind = element.get("typeCode") or element.find("h:typeCode", NS).get("code")
    code = element.find("h:acknowledgementDetail/h:code", NS)
    return kind, "" if code is None else code.get("code")


def detail(message: etree._Element) -> str:
    return message.findtext("h:acknowledgement/h:acknowledgementDetail/h:text", namespaces=NS) or ""


def values(message: etree._Element, path: str, attribute: str = "code") -> list[str]:
    return [e.get(attribute) for e in message.iterfind(path, NS)]


def status(message: etree._Element) -> str:
    (code,) = values(message, ".//h:registrationEvent/h:subject1/h:patient/h:statusCode")
    return code


def trace(server: SecureServer, ins: str) -> list[tuple[str, str, str]]:
    """(action, outcome, detail) of the patient's trace, oldest first."""
    return [(e.event.action, e.event.outcome, e.event.detail) for e in reversed(server.trail().history(msg.cx(ins)))]


def store(server: SecureServer) -> DmpStore:
    return DmpStore(create_engine_for(server.engine_url()))


def test_creation_existence_test_and_consultation(server: SecureServer, pki: GeneratedPki) -> None:
    ins = msg.ins(101)
    none = read(server, ins)
    assert ack(none.payload) == ("AA", "") and values(none.payload, ".//h:queryResponseCode") == ["NF"]
    created = create(server, ins)
    assert created.tag == hv.hl7(hv.ADD_ACCEPTED) and ack(created) == ("AA", "")
    assert status(created) == "active"

    test = read(server, ins).payload
    assert ack(test) == ("AA", "")
    assert values(test, "h:attentionLine/h:keyWordText") == ["AUTORISATION", "STATUT_MT"]
    assert values(test, "h:attentionLine/h:value")[0] == hv.AUTHORIZATION_NONE  # creating it gave no authorization
    assert values(test, ".//h:queryResponseCode") == ["OK"]
    assert values(test, ".//h:patient/h:id", "extension") == [ins]
    assert status(test) == "active"
    assert values(test, ".//h:patient/h:patientPerson/h:name/h:family")
    # No web account yet (TD1.5a makes one): COMPTE_INTERNET_OUVERT says false.
    assert sorted(values(test, ".//h:patient/h:subjectOf/h:administrativeObservation/h:code")) == sorted(
        [hv.ATTACHED_TO_ENS, hv.WEB_ACCOUNT_OPEN]
    )
    assert values(test, "h:acknowledgement/h:targetMessage/h:id", "root") == [f"{msg.LPS_ROOT}.1"]

    # Reading the data needs the patient's authorization; then the attention lines say so.
    refused = read(server, ins, hv.CNSLT_DATA).payload
    assert ack(refused) == ("AE", hv.ACCESS_DENIED) and "has not authorized" in detail(refused)
    doctor = pki.identity("doctor").national_id
    server.cli("dmp", "grant", msg.cx(ins), doctor, "--kind", "attending")
    test = read(server, ins).payload
    assert values(test, "h:attentionLine/h:value") == [hv.AUTHORIZATION_VALID, None]
    assert values(test, "h:attentionLine/h:value", "value") == [None, "true"]
    data = read(server, ins, hv.CNSLT_DATA).payload
    assert ack(data) == ("AA", "") and data.find("h:attentionLine", NS) is None
    person = data.find(".//h:patient/h:patientPerson", NS)
    assert person.findtext("h:name/h:family[@qualifier='SP']", namespaces=NS) == "VALJEAN"
    assert person.findtext("h:addr/h:city", namespaces=NS) == "Montreuil"
    assert values(data, ".//h:patient/h:subjectOf/h:administrativeObservation/h:code") == [
        hv.OPPOSES_BREAK_GLASS,
        hv.OPPOSES_REGULATION,
    ]
    assert values(data, ".//h:patient/h:subjectOf/h:administrativeObservation/h:value", "value") == ["false", "false"]
    assert [(a, o) for a, o, _ in trace(server, ins)] == [
        ("dmp.read", "success"),
        ("dmp.create", "success"),
        ("dmp.read", "success"),
        ("dmp.read", "denied"),
        ("authorization.grant", "success"),
        ("dmp.read", "success"),
        ("dmp.read", "success"),
    ]


def test_modification_changes_the_identity_and_the_oppositions(server: SecureServer, pki: GeneratedPki) -> None:
    ins = msg.ins(102)
    create(server, ins)
    server.cli("dmp", "grant", msg.cx(ins), pki.identity("doctor").national_id)
    content = (
        msg.person(usage="MADELEINE", given="JEAN", birth="VALJEAN", city="Montreuil-sur-Mer")
        + msg.observation(hv.OPPOSES_BREAK_GLASS, True)
        + msg.observation(hv.OPPOSES_REGULATION, False)
    )
    changed = revise(server, ins, hv.MODIF_DATA, content)
    assert changed.tag == hv.hl7(hv.REVISE_ACCEPTED) and ack(changed) == ("AA", "")
    assert values(changed, "h:controlActProcess/h:reasonCode") == [hv.MODIF_DATA]
    assert status(changed) == "active"
    assert changed.findtext(".//h:patientPerson/h:name/h:family[@qualifier='SP']", namespaces=NS) == "MADELEINE"
    data = read(server, ins, hv.CNSLT_DATA).payload
    assert data.findtext(".//h:patientPerson/h:name/h:family[@qualifier='BR']", namespaces=NS) == "VALJEAN"
    assert data.findtext(".//h:patientPerson/h:addr/h:city", namespaces=NS) == "Montreuil-sur-Mer"
    assert values(data, ".//h:patient/h:subjectOf/h:administrativeObservation/h:value", "value") == ["true", "false"]
    # One fact: the opposition is the record's emergency-access choice, as the XDS policy reads it.
    shown = json.loads(server.cli("dmp", "show", msg.cx(ins)))
    assert shown["emergency_access_allowed"] is False and shown["regulation_access_allowed"] is True
    assert shown["demographics"]["usage_name"] == "MADELEINE" and shown["demographics"]["given_names"] == ["JEAN"]
    # the consent's time is the one the creation message gave
    assert shown["consent"]["collected_at"].startswith("2026-12-01T09:30")


def test_close_then_existence_test_shows_terminated_then_reactivate(server: SecureServer, pki: GeneratedPki) -> None:
    ins = msg.ins(103)
    create(server, ins)
    server.cli("dmp", "grant", msg.cx(ins), pki.identity("doctor").national_id)
    closed = revise(server, ins, hv.FERM)
    assert ack(closed) == ("AA", "") and status(closed) == "terminated"
    assert values(closed, "h:controlActProcess/h:reasonCode") == [hv.FERM]
    test = read(server, ins).payload
    assert ack(test) == ("AA", "") and status(test) == "terminated"
    record = store(server).get(msg.cx(ins))
    assert record is not None and record.closed_at is not None and record.status_reason == hv.CLOSURE_PATIENT_REQUEST

    again = revise(server, ins, hv.FERM)
    assert again.tag == hv.hl7(hv.REVISE_REFUSED) and ack(again) == ("AE", hv.DMP_CLOSED)
    modified = revise(server, ins, hv.MODIF_DATA)
    assert ack(modified) == ("AE", hv.DMP_CLOSED) and "reactivate it" in detail(modified)
    recreated = create(server, ins)
    assert recreated.tag == hv.hl7(hv.ADD_REFUSED) and ack(recreated) == ("AE", hv.DMP_CLOSED)

    reopened = revise(server, ins, hv.REAC)
    assert ack(reopened) == ("AA", "") and status(reopened) == "active"
    assert status(read(server, ins).payload) == "active"
    assert ack(revise(server, ins, hv.REAC)) == ("AE", hv.DMP_FOUND)
    assert ack(create(server, ins)) == ("AE", hv.DMP_FOUND)
    assert [(a, o) for a, o, _ in trace(server, ins)][2:] == [
        ("dmp.close", "success"),
        ("dmp.read", "success"),
        ("dmp.close", "failure"),
        ("dmp.update", "failure"),
        ("dmp.create", "failure"),
        ("dmp.reopen", "success"),
        ("dmp.read", "success"),
        ("dmp.reopen", "failure"),
        ("dmp.create", "failure"),
    ]


def test_the_patient_runs_their_own_record(server: SecureServer, pki: GeneratedPki) -> None:
    ins = msg.ins(109)
    patient = msg.cx(ins)

    def as_patient(action: str, body: str) -> etree._Element:
        response = post(server, "patients", action, body, patient, "patient-portal", patient_vihf(pki, patient))
        assert response.status_code == 200, response.fault_reason
        return response.payload

    (created,) = as_patient(hv.ACTION_PATIENT_ADD, msg.patient_add(ins))
    assert ack(created) == ("AA", "")
    test = as_patient(hv.ACTION_GET_DEMOGRAPHICS, msg.get_demographics(ins))
    assert values(test, "h:attentionLine/h:value") == [hv.AUTHORIZATION_VALID, None]
    assert values(test, "h:attentionLine/h:value", "value") == [None, "false"]
    (closed,) = as_patient(hv.ACTION_PATIENT_REVISE, msg.revise(ins, hv.FERM))
    assert ack(closed) == ("AA", "") and status(closed) == "terminated"
    # Another patient's VIHF reads nothing of it, not even whether it exists.
    other = msg.cx(msg.ins(110))
    response = post(
        server, "patients", hv.ACTION_GET_DEMOGRAPHICS, msg.get_demographics(ins), other, "patient-portal",
        patient_vihf(pki, other),
    )  # fmt: skip
    assert ack(response.payload) == ("AE", hv.ACCESS_DENIED) and response.payload.find(".//h:patient", NS) is None


def test_bad_input_is_an_ae_that_changes_nothing_and_is_traced(server: SecureServer, pki: GeneratedPki) -> None:
    ins, other = msg.ins(104), msg.ins(105)
    create(server, ins)
    before = store(server).get(msg.cx(ins))
    rows = len(trace(server, ins))

    # A VIHF about another patient: refused, traced on the message's patient.
    text = msg.revise(ins, hv.FERM)
    response = post(server, "patients", hv.ACTION_PATIENT_REVISE, text, msg.cx(other))
    (message,) = response.payload
    assert ack(message) == ("AE", hv.ACCESS_DENIED) and "the VIHF is about patient" in detail(message)
    # An unauthorized professional may not close it.
    refused = revise(server, ins, hv.FERM)
    assert ack(refused) == ("AE", hv.ACCESS_DENIED) and "has not authorized" in detail(refused)
    # An unknown reason code, a patient id that is not an INS, a malformed message.
    bad_reason = msg.revise(ins, hv.FERM).replace('code="FERM"', 'code="DETRUIRE"')
    (message,) = post(server, "patients", hv.ACTION_PATIENT_REVISE, bad_reason, msg.cx(ins)).payload
    assert ack(message) == ("AE", hv.UNKNOWN_REASON) and "'DETRUIRE'" in detail(message)
    not_ins = msg.get_demographics(ins, root=hv.INS_C_ROOT)
    answer = post(server, "patients", hv.ACTION_GET_DEMOGRAPHICS, not_ins, msg.cx(ins)).payload
    assert ack(answer) == ("AE", hv.INVALID_PATIENT_ID) and values(answer, ".//h:queryResponseCode") == ["AE"]
    no_control = msg.element(msg.revise(ins, hv.MODIF_DATA))
    no_control.remove(no_control.find(hv.hl7("controlActProcess")))
    response = post(server, "patients", hv.ACTION_PATIENT_REVISE, etree.tostring(no_control).decode(), msg.cx(ins))
    (message,) = response.payload
    assert ack(message) == ("AE", hv.INVALID_REQUEST) and "controlActProcess" in detail(message)
    # A message that is not the action's: the revision sent under the read action.
    answer = post(server, "patients", hv.ACTION_GET_DEMOGRAPHICS, msg.revise(ins, hv.FERM), msg.cx(ins)).payload
    assert ack(answer) == ("AE", hv.INVALID_REQUEST) and "not the HL7 V3 message" in detail(answer)
    # A revision of a patient without DMP.
    (message,) = post(server, "patients", hv.ACTION_PATIENT_REVISE, msg.revise(other, hv.FERM), msg.cx(other)).payload
    assert ack(message) == ("AE", hv.DMP_NOT_FOUND)

    assert store(server).get(msg.cx(ins)) == before
    rows_after = trace(server, ins)
    assert [(a, o) for a, o, _ in rows_after[rows:]] == [
        ("dmp.close", "denied"),
        ("dmp.close", "denied"),
        ("dmp.update", "failure"),
        ("dmp.read", "failure"),
        ("dmp.update", "failure"),
        ("dmp.read", "failure"),
    ]
    assert "the VIHF is about patient" in rows_after[rows][2]
    assert [(a, o) for a, o, _ in trace(server, other)] == [("dmp.close", "failure")]


def test_pdq_search_in_regulation_mode_only(server: SecureServer, pki: GeneratedPki) -> None:
    ins = msg.ins(106)
    create(server, ins)
    content = msg.person(usage="THENARDIER", given="EPONINE", birth="JONDRETTE", gender="F", birth_date="19830301")
    server.cli("dmp", "grant", msg.cx(ins), pki.identity("doctor").national_id)
    revise(server, ins, hv.MODIF_DATA, content)
    query = msg.find_candidates("jondrette", query_id="q-106")
    refused = post(server, "patientsPDQ", hv.ACTION_FIND_CANDIDATES, query, msg.cx(ins))
    assert refused.status_code == 200 and refused.header("Action") == hv.ACTION_CANDIDATES
    assert ack(refused.payload) == ("AE", hv.ACCESS_DENIED) and "regulation mode only" in detail(refused.payload)
    assert sv.ACCESS_REGULATION in detail(refused.payload)

    found = post(server, "patientsPDQ", hv.ACTION_FIND_CANDIDATES, query, msg.cx(ins), access_mode=sv.ACCESS_REGULATION)
    answer = found.payload
    assert answer.tag == hv.hl7(hv.CANDIDATES) and ack(answer) == ("AA", "")
    assert values(answer, "h:acknowledgement/h:typeCode") == ["AA"]
    assert values(answer, ".//h:patient/h:id", "extension") == [ins]
    assert values(answer, ".//h:subjectOf1/h:queryMatchObservation/h:code") == [hv.PDQ_MATCH_CODE]
    assert values(answer, ".//h:subjectOf2/h:administrativeObservation/h:code") == [hv.OPPOSES_REGULATION]
    assert values(answer, ".//h:queryAck/h:queryResponseCode") == ["OK"]
    assert values(answer, ".//h:queryAck/h:queryId", "extension") == ["q-106"]
    nobody = post(
        server,
        "patientsPDQ",
        hv.ACTION_FIND_CANDIDATES,
        msg.find_candidates("PERSONNE"),
        msg.cx(ins),
        access_mode=sv.ACCESS_REGULATION,
    ).payload
    assert values(nobody, ".//h:queryAck/h:queryResponseCode") == ["NF"]
    searches = [(a, o, d) for a, o, d in trace(server, ins) if a == "dmp.search"]
    assert [(a, o) for a, o, _ in searches] == [
        ("dmp.search", "denied"),
        ("dmp.search", "success"),
        ("dmp.search", "success"),
    ]
    assert msg.cx(ins) in searches[1][2]


def test_kit_action_accepted_unknown_action_faulted_and_wsdl_served(server: SecureServer) -> None:
    ins = msg.ins(107)
    # The kit sends the read under its answer's action.
    response = post(server, "patients", hv.ACTION_GET_DEMOGRAPHICS_KIT, msg.get_demographics(ins), msg.cx(ins))
    assert response.status_code == 200 and values(response.payload, ".//h:queryResponseCode") == ["NF"]
    wrong = post(server, "patientsPDQ", hv.ACTION_GET_DEMOGRAPHICS, msg.get_demographics(ins), msg.cx(ins))
    assert wrong.status_code == 400 and "is not supported by the patientsPDQ endpoint" in (wrong.fault_reason or "")
    for service in ("patients", "patientsPDQ"):
        wsdl = requests.get(server.url + DMPI + service + "?wsdl", timeout=30, verify=str(server.pki.anchors))
        assert wsdl.status_code == 200 and f'location="{server.url}{DMPI}{service}"' in wsdl.text


def dates(server: SecureServer, patient: str) -> dict[str, str | None]:
    """When the patient's documents were last read, changed and added, as `dmp show` says."""
    record = json.loads(server.cli("dmp", "show", patient))
    return {name: record[name] for name in ("last_access_at", "last_update_at", "last_add_at")}


def test_document_submission_and_search_note_the_last_addition_and_access(
    server: SecureServer, pki: GeneratedPki
) -> None:
    ins = msg.ins(108)
    patient = msg.cx(ins)
    create(server, ins)
    server.cli("dmp", "grant", patient, pki.identity("doctor").national_id)
    assert dates(server, patient)["last_access_at"] is None
    submission = make_submission(
        1,
        submission_set=make_submission_set(patient_id=patient),
        documents=[make_document_entry(patient_id=patient)],
    )
    for entry in submission.documents:
        entry.hash = entry.size = entry.repository_unique_id = None
    request = soap.provide_and_register(submission, {submission.documents[0].entry_uuid: b"compte rendu"}, mtom=False)
    stored = server.call("repository", request, vihf(pki, "doctor", patient))
    assert stored.status == "Success", stored.error_codes
    record = dates(server, patient)
    assert record["last_add_at"] is not None and record["last_access_at"] is None
    query = soap.adhoc_query(
        v.SQ_FIND_DOCUMENTS,
        {"$XDSDocumentEntryPatientId": [f"'{patient}'"], "$XDSDocumentEntryStatus": [f"('{v.STATUS_APPROVED}')"]},
    )
    found = server.call("registry", query, vihf(pki, "doctor", patient))
    assert found.status == "Success", found.error_codes
    record = dates(server, patient)
    assert record["last_access_at"] is not None and record["last_access_at"] >= record["last_add_at"]
    assert record["last_update_at"] is None


# A parent of the patient and their birth place, as the DMP's consultation answer (TD1.3a) gives them.
RELATIVE = """<personalRelationship classCode="PRS"><code code="MTH" codeSystem="2.16.840.1.113883.5.111"/>
  <addr><streetAddressLine>5 place Bellecour</streetAddressLine><additionalLocator>Résidence du Parc</additionalLocator>
  <postalCode>69002</postalCode><city>LYON</city></addr>
  <telecom use="MC" value="tel:0611223344"/>
  <relationshipHolder1 classCode="PSN" determinerCode="INSTANCE"><name><prefix>MME</prefix><given>FANTINE</given>
  <family>THENARDIER</family></name></relationshipHolder1></personalRelationship>
  <birthPlace classCode="BIRTHPL"><addr><city>MONTREUIL-SUR-MER</city></addr></birthPlace>"""


def test_relatives_birth_place_and_death_flag_are_kept_and_read_back(server: SecureServer, pki: GeneratedPki) -> None:
    ins = msg.ins(120)
    person = (
        msg.person()
        .replace("<addr>", '<deceasedInd value="false"/><addr>', 1)
        .replace("</patientPerson>", RELATIVE + "</patientPerson>")
    )
    content = person + msg.observation(hv.CONSENT_OPENING, True, "20261201093000")
    created = post(server, "patients", hv.ACTION_PATIENT_ADD, msg.patient_add(ins, content), msg.cx(ins))
    assert ack(created.payload[0]) == ("AA", "")
    server.cli("dmp", "grant", msg.cx(ins), pki.identity("doctor").national_id)
    for family in ("VALJEAN", "FAUCHELEVENT"):
        data = read(server, ins, hv.CNSLT_DATA).payload
        person_read = data.find(".//h:patient/h:patientPerson", NS)
        # In the order of the DMP's schema (PRPA_MT201303UV02.Person).
        assert [etree.QName(e).localname for e in person_read] == [
            "name",
            "telecom",
            "telecom",
            "administrativeGenderCode",
            "birthTime",
            "deceasedInd",
            "addr",
            "personalRelationship",
            "birthPlace",
        ]
        assert person_read.findtext("h:name/h:family", namespaces=NS) == family
        assert values(person_read, "h:deceasedInd", "value") == ["false"]
        relative = person_read.find("h:personalRelationship", NS)
        assert values(relative, "h:code") == ["MTH"]
        assert [
            relative.findtext(f"h:relationshipHolder1/h:name/h:{p}", namespaces=NS)
            for p in ("prefix", "given", "family")
        ] == ["MME", "FANTINE", "THENARDIER"]
        assert [etree.QName(e).localname for e in relative.find("h:addr", NS)] == [
            "streetAddressLine",
            "additionalLocator",
            "postalCode",
            "city",
        ]
        assert relative.findtext("h:addr/h:additionalLocator", namespaces=NS) == "Résidence du Parc"
        assert values(relative, "h:telecom", "value") == ["tel:0611223344"]
        assert person_read.findtext("h:birthPlace/h:addr/h:city", namespaces=NS) == "MONTREUIL-SUR-MER"
        # The existence test gives none of them.
        test = read(server, ins).payload.find(".//h:patient/h:patientPerson", NS)
        assert test.find("h:personalRelationship", NS) is None and test.find("h:deceasedInd", NS) is None
        # The DMP's modification sends none of them: they stay.
        accepted = revise(server, ins, hv.MODIF_DATA, msg.person(usage="FAUCHELEVENT"))
        assert ack(accepted) == ("AA", "")


def test_a_td31_answer_says_it_is_whole(server: SecureServer, pki: GeneratedPki) -> None:
    # As the DMP's TD3.1 answer: startIndex 0 and totalResultCount, the number of entries given.
    ins = msg.ins(121)
    patient = msg.cx(ins)
    create(server, ins)
    server.cli("dmp", "grant", patient, pki.identity("doctor").national_id)
    for name in ("first", "second"):
        server.store_document(f"td31-{name}", patient=patient)
    query = soap.adhoc_query_payload(
        v.SQ_FIND_DOCUMENTS,
        {"$XDSDocumentEntryPatientId": [f"'{patient}'"], "$XDSDocumentEntryStatus": [f"('{v.STATUS_APPROVED}')"]},
    )
    found = post(server, "registry", v.ACTION_ITI18, etree.tostring(query).decode(), patient)
    assert found.status_code == 200 and found.status == "Success", found.error_codes
    assert len(list(found.payload.iter(v.TAG_EXTRINSIC_OBJECT))) == 2
    assert (found.payload.get("startIndex"), found.payload.get("totalResultCount")) == ("0", "2")
