"""The DMP's HL7 V3 patient services as pure functions: every request read (each reason code,
the DMP's own deviations tolerated), every answer built in the shape of the DMP's example answers,
every malformed message refused with the AE code that says why, and the policy's two questions."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import zeep
from lxml import etree

import hl7v3_messages as msg
from dmp_xds.config import resource_dir
from dmp_xds.dmp.hl7v3 import build
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.dmp.hl7v3.build import Ack
from dmp_xds.dmp.hl7v3.parse import (
    Hl7Error,
    hl7_time,
    parse_find_candidates,
    parse_get_demographics,
    parse_patient_add,
    parse_revise,
    read_header,
)
from dmp_xds.dmp.ins import INS_TEST_NIR
from dmp_xds.dmp.model import Address, Consent, Demographics, DmpRecord, Telecom
from dmp_xds.dmp.policy import KIND_ATTENDING, KIND_PROFESSIONAL, Authorization, RecordState
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import Holder
from dmp_xds.security.vihf import Principal
from dmp_xds.services.gdp import decide, may_search

NOW = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)
INS = msg.ins(1)
PATIENT = msg.cx(INS)
DOCTOR = "899999999901"
NS = {"h": hv.NS_HL7, "gdp": hv.NS_GDP}


def principal(
    kind: str = "professional",
    user_id: str = DOCTOR,
    mode: str = sv.ACCESS_NORMAL,
    patient: str = PATIENT,
    roles: tuple[str, ...] = ("10",),
):
    holder = Holder("professional", "", "", "", "", "", "", "CN=x", "00")
    return Principal(kind, user_id, "Dr X", roles, "1990000042", "SA07", mode, "", patient, "lps", "", "_a", holder)


def record(status: str = "open", grants: tuple[Authorization, ...] = (), emergency: bool = True) -> DmpRecord:
    demographics = Demographics(
        usage_name="VALJEAN",
        birth_name="FAUCHELEVENT",
        given_names=("JEAN",),
        prefix="M",
        gender="M",
        birth_date="19620419",
        addresses=(Address(("12 rue des Lilas",), "93100", "Montreuil", "France"),),
        telecoms=(Telecom("tel:0102030405", "MC"),),
    )
    state = RecordState(PATIENT, status, emergency, False, grants)
    return DmpRecord(state, Consent(DOCTOR, NOW), NOW, None, "", "", demographics)


def one(element: etree._Element, path: str) -> etree._Element:
    found = element.findall(path, NS)
    assert len(found) == 1, (path, etree.tostring(element))
    return found[0]


def codes(element: etree._Element, path: str, attribute: str = "code") -> list[str]:
    return [e.get(attribute) for e in element.iterfind(path, NS)]


# --- reading the requests ---------------------------------------------------------------------


@pytest.mark.parametrize("reason", hv.READ_REASONS)
def test_gdp_read_is_read_with_its_reason_and_the_ins(reason: str) -> None:
    request = parse_get_demographics(msg.element(msg.get_demographics(INS, reason, message_id="m-1", query_id="q-1")))
    assert (request.reason, request.patient_id, request.query_id) == (reason, PATIENT, (f"{msg.LPS_ROOT}.2", "q-1"))
    assert request.header.message_id == (f"{msg.LPS_ROOT}.1", "m-1")
    assert (request.header.sender_id, request.header.sender_name) == (msg.LPS_ROOT, "LPS de test")


@pytest.mark.parametrize(
    ("reason", "status"), [(hv.MODIF_DATA, "active"), (hv.FERM, "terminated"), (hv.REAC, "active")]
)
def test_gdp_revise_is_read_with_each_reason(reason: str, status: str) -> None:
    request = parse_revise(msg.element(msg.revise(INS, reason)))
    assert (request.reason, request.patient_id, request.status) == (reason, PATIENT, status)
    assert request.author.national_id == "899999999901" and request.author.structure_id == "1990000042"
    assert request.demographics is not None and request.demographics.usage_name == "VALJEAN"
    if reason == hv.FERM:
        assert request.closure_reason == hv.CLOSURE_PATIENT_REQUEST
    if reason == hv.REAC:
        assert request.observations == {hv.CONSENT_REACTIVATION: True}


def test_modification_reads_the_whole_identity_and_the_oppositions() -> None:
    content = (
        msg.person(usage="MADELEINE", given="JEAN", birth="VALJEAN", gender="M", birth_date="19620419")
        + msg.observation(hv.OPPOSES_BREAK_GLASS, True)
        + msg.observation(hv.OPPOSES_REGULATION, False)
    )
    request = parse_revise(msg.element(msg.revise(INS, hv.MODIF_DATA, content)))
    assert request.demographics == Demographics(
        usage_name="MADELEINE",
        birth_name="VALJEAN",
        given_names=("JEAN",),
        prefix="M",
        gender="M",
        birth_date="19620419",
        addresses=(Address(("12 rue des Lilas",), "93100", "Montreuil", "France"),),
        telecoms=(Telecom("tel:0102030405", "MC"), Telecom("mailto:patient@example.org")),
    )
    assert request.observations == {hv.OPPOSES_BREAK_GLASS: True, hv.OPPOSES_REGULATION: False}


def test_creation_is_read_with_the_consent_and_the_oppositions() -> None:
    request = parse_patient_add(msg.element(msg.patient_add(INS)))
    assert (request.reason, request.patient_id) == (hv.CREA_RD, PATIENT)
    assert request.observations == {
        hv.CONSENT_OPENING: True,
        hv.OPPOSES_BREAK_GLASS: False,
        hv.OPPOSES_REGULATION: False,
    }
    assert request.demographics.given_names == ("JEAN",)
    assert request.consent_at == dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20261201", dt.datetime(2026, 12, 1, tzinfo=dt.UTC)),
        ("202612010930+0100", dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)),
        ("20261201093005.123", dt.datetime(2026, 12, 1, 9, 30, 5, tzinfo=dt.UTC)),
        ("^{date}", None),
        ("20261301", None),
    ],
)
def test_hl7_times_are_read_or_ignored(value: str, expected: dt.datetime | None) -> None:
    assert hl7_time(value) == expected


def test_pdq_query_is_read_with_its_traits() -> None:
    request = parse_find_candidates(msg.element(msg.find_candidates("Valjean", "Jean", "19620419", query_id="q-5")))
    assert (request.family, request.given, request.birth_date, request.gender) == ("Valjean", "Jean", "19620419", "")
    assert request.query_id == (f"{msg.LPS_ROOT}.2", "q-5")
    assert request.query.tag == hv.hl7("queryByParameter")


def test_the_dmp_deviations_are_tolerated() -> None:
    # xsi:nil placeholders before the real elements, a template creationTime, an OID as the
    # author's code, the kit's birth date on 6 digits: read as any other request.
    text = msg.revise(INS, hv.MODIF_DATA)
    assert 'value="^{date}"' in text and 'code="1.2.250.1.71.4.2.5"' in text
    assert parse_revise(msg.element(text)).reason == hv.MODIF_DATA
    assert 'xsi:nil="true"' in msg.get_demographics(INS)
    assert parse_get_demographics(msg.element(msg.get_demographics(INS))).patient_id == PATIENT


# --- refusing the malformed ones ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        (msg.get_demographics(INS, "LIRE_TOUT"), hv.UNKNOWN_REASON, "'LIRE_TOUT' is not one"),
        (msg.get_demographics(INS, hv.FERM), hv.UNKNOWN_REASON, "is not one of this message's"),
        (msg.get_demographics(INS, root=hv.INS_C_ROOT), hv.INVALID_PATIENT_ID, "not an INS root"),
        (msg.get_demographics(INS[:-2] + "00"), hv.INVALID_PATIENT_ID, "key of NIR"),
        (msg.get_demographics("12345"), hv.INVALID_PATIENT_ID, "is not a NIR"),
        (
            msg.get_demographics(INS)
            .replace("<patientIdentifier>", "<other>")
            .replace("</patientIdentifier>", "</other>"),
            hv.INVALID_REQUEST,
            "parameterList/patientIdentifier/value",
        ),
        (
            msg.get_demographics(INS).replace('extension="PRPA_IN201307UV02"', 'extension="PRPA_IN201305UV02"'),
            hv.INVALID_REQUEST,
            "interactionId",
        ),
    ],
)
def test_a_bad_read_request_is_refused_with_its_code(text: str, code: str, words: str) -> None:
    with pytest.raises(Hl7Error) as refused:
        parse_get_demographics(msg.element(text))
    assert refused.value.code == code and words in refused.value.text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (msg.revise(INS, hv.FERM, closure=""), "needs its reason"),
        (msg.revise(INS, hv.FERM, status="active"), "asks for patient/statusCode terminated"),
        (msg.revise(INS, hv.MODIF_DATA, content=msg.observation(hv.OPPOSES_BREAK_GLASS, True)), "family is missing"),
        (
            msg.revise(
                INS, hv.MODIF_DATA, content=msg.person() + msg.observation("X", True).replace('"true"', '"oui"')
            ),
            "not a boolean",
        ),
        (msg.patient_add(INS, consent=False), hv.CONSENT_OPENING),
        (msg.get_demographics(INS), "not the HL7 V3 message"),
    ],
)
def test_a_bad_revision_or_creation_is_refused(text: str, words: str) -> None:
    parser = parse_patient_add if "IN201311" in text else parse_revise
    with pytest.raises(Hl7Error) as refused:
        parser(msg.element(text))
    assert refused.value.code == hv.INVALID_REQUEST and words in refused.value.text


def test_pdq_without_a_family_name_is_refused() -> None:
    with pytest.raises(Hl7Error, match="at least the family name"):
        parse_find_candidates(msg.element(msg.find_candidates("")))
    with pytest.raises(Hl7Error, match="not a date"):
        parse_find_candidates(msg.element(msg.find_candidates("VALJEAN", birth_date="1962-04-19")))


def test_a_broken_message_still_has_a_header_to_answer() -> None:
    broken = msg.element(msg.get_demographics(INS, message_id="m-9"))
    broken.remove(broken.find(hv.hl7("controlActProcess")))
    assert read_header(broken).message_id == (f"{msg.LPS_ROOT}.1", "m-9")
    with pytest.raises(Hl7Error, match="no controlActProcess"):
        parse_get_demographics(broken)


# --- building the answers ------------------------------------------------------------------------


def _header():
    return read_header(msg.element(msg.get_demographics(INS, message_id="m-1")))


def test_existence_test_answer_is_shaped_like_the_dmps() -> None:
    answer = build.demographics_response(
        _header(), hv.TEST_EXST, ("q", "1"), NOW, Ack(), record(), build.Attention(hv.AUTHORIZATION_VALID, True)
    )
    assert answer.tag == hv.hl7(hv.DEMOGRAPHICS)
    assert [etree.QName(c).localname for c in answer][:10] == [
        "id", "creationTime", "interactionId", "processingCode", "processingModeCode", "acceptAckCode",
        "receiver", "sender", "attentionLine", "attentionLine",
    ]  # fmt: skip
    assert one(answer, "h:receiver/h:device/h:id").get("root") == msg.LPS_ROOT
    assert one(answer, "h:sender/h:device/h:id").get("root") == hv.DMP_DEVICE_ROOT
    assert codes(answer, "h:attentionLine/h:keyWordText") == ["AUTORISATION", "STATUT_MT"]
    assert codes(answer, "h:attentionLine/h:value") == ["VALIDE", None]
    assert codes(answer, "h:attentionLine/h:value", "value") == [None, "true"]
    assert one(answer, "h:acknowledgement").get("typeCode") == "AA"
    assert one(answer, "h:acknowledgement/h:targetMessage/h:id").get("extension") == "m-1"
    patient = one(answer, "h:controlActProcess/h:subject/h:registrationEvent/h:subject1/h:patient")
    assert [(i.get("root"), i.get("extension")) for i in patient.iterfind("h:id", NS)] == [(INS_TEST_NIR, INS)]
    assert one(patient, "h:statusCode").get("code") == "active"
    assert codes(patient, "h:patientPerson/h:name/h:family", "qualifier") == ["SP", "BR"]
    assert patient.find("h:patientPerson/h:addr", NS) is None  # the existence test gives no address
    # the web account is unknown to the record: not said; never attached to Mon espace santé
    assert codes(patient, "h:subjectOf/h:administrativeObservation/h:code") == [hv.ATTACHED_TO_ENS]
    assert codes(answer, "h:controlActProcess/h:queryAck/h:queryResponseCode") == ["OK"]
    assert one(answer, "h:controlActProcess/h:queryAck/h:queryId").get("extension") == "1"
    assert (
        one(answer, "h:controlActProcess/h:subject/h:registrationEvent/h:custodian/h:assignedEntity/h:id").get("root")
        == hv.DMP_DEVICE_ROOT
    )


def test_existence_test_tells_an_unauthorized_caller_who_not_how_to_reach() -> None:
    answer = build.demographics_response(
        _header(), hv.TEST_EXST, ("q", "1"), NOW, Ack(), record(), build.Attention(hv.AUTHORIZATION_NONE, False)
    )
    person = one(answer, ".//h:patient/h:patientPerson")
    assert (
        one(person, "h:birthTime").get("value") == "19620419" and one(person, "h:administrativeGenderCode") is not None
    )
    assert person.find("h:telecom", NS) is None and person.find("h:addr", NS) is None
    authorized = build.demographics_response(
        _header(), hv.TEST_EXST, ("q", "1"), NOW, Ack(), record(), build.Attention(hv.AUTHORIZATION_VALID, False)
    )
    assert codes(authorized, ".//h:patient/h:patientPerson/h:telecom", "value") == ["tel:0102030405"]


def test_web_account_is_said_once_the_record_knows() -> None:
    known = dataclasses.replace(record(), web_account_open=True)
    answer = build.demographics_response(_header(), hv.TEST_EXST, ("q", "1"), NOW, Ack(), known)
    assert codes(answer, ".//h:administrativeObservation/h:code") == [hv.WEB_ACCOUNT_OPEN, hv.ATTACHED_TO_ENS]
    assert codes(answer, ".//h:administrativeObservation/h:code", "codeSystem")[0] == hv.WEB_ACCOUNT_SYSTEM


def test_consultation_answer_gives_the_whole_identity_and_the_oppositions() -> None:
    answer = build.demographics_response(_header(), hv.CNSLT_DATA, ("q", "1"), NOW, Ack(), record(emergency=False))
    assert answer.find("h:attentionLine", NS) is None
    person = one(answer, ".//h:patient/h:patientPerson")
    assert one(person, "h:addr/h:city").text == "Montreuil"
    assert one(person, "h:birthTime").get("value") == "19620419"
    observations = answer.findall(".//h:patient/h:subjectOf/h:administrativeObservation", NS)
    assert [(o.find("h:code", NS).get("code"), o.find("h:value", NS).get("value")) for o in observations] == [
        (hv.OPPOSES_BREAK_GLASS, "true"),
        (hv.OPPOSES_REGULATION, "true"),
    ]
    assert observations[0].find("h:value", NS).get(hv.XSI_TYPE) == "BL"


def test_no_dmp_is_nf_and_a_refusal_is_ae_with_its_detail() -> None:
    none = build.demographics_response(_header(), hv.TEST_EXST, ("q", "1"), NOW, Ack())
    assert codes(none, ".//h:queryResponseCode") == ["NF"] and none.find(".//h:patient", NS) is None
    refused = build.demographics_response(
        _header(), hv.CNSLT_DATA, ("q", "1"), NOW, Ack.error(hv.ACCESS_DENIED, "access refused: no")
    )
    assert one(refused, "h:acknowledgement").get("typeCode") == "AE"
    assert codes(refused, "h:acknowledgement/h:acknowledgementDetail/h:code") == [hv.ACCESS_DENIED]
    assert one(refused, "h:acknowledgement/h:acknowledgementDetail/h:text").text == "access refused: no"
    assert codes(refused, ".//h:queryResponseCode") == ["AE"] and refused.find(".//h:patient", NS) is None


@pytest.mark.parametrize(("reason", "status"), [(hv.MODIF_DATA, "open"), (hv.FERM, "closed"), (hv.REAC, "open")])
def test_revision_answer_wraps_201315_with_status_and_name(reason: str, status: str) -> None:
    answer = build.revise_response(_header(), reason, NOW, Ack(), record(status))
    assert answer.tag == hv.REVISE_RESPONSE
    (message,) = answer
    assert message.tag == hv.hl7(hv.REVISE_ACCEPTED)
    assert one(message, "h:id").get("root") == hv.RESPONSE_ID_ROOT
    assert codes(message, "h:controlActProcess/h:reasonCode") == [reason]
    patient = one(message, ".//h:registrationEvent/h:subject1/h:patient")
    assert [(i.get("root"), i.get("extension")) for i in patient.iterfind("h:id", NS)] == [(INS_TEST_NIR, INS)]
    assert one(patient, "h:statusCode").get("code") == ("terminated" if status == "closed" else "active")
    assert one(patient, "h:patientPerson/h:name/h:family[@qualifier='SP']").text == "VALJEAN"
    assert patient.find("h:patientPerson/h:telecom", NS) is None


def test_refused_revision_and_creation_are_201316_and_201313() -> None:
    refused = build.revise_response(_header(), hv.FERM, NOW, Ack.error(hv.DMP_CLOSED, "already closed"))
    (message,) = refused
    assert message.tag == hv.hl7(hv.REVISE_REFUSED)
    assert codes(message, "h:acknowledgement/h:acknowledgementDetail/h:code") == [hv.DMP_CLOSED]
    assert message.find(".//h:patient", NS) is None
    assert one(message, "h:controlActProcess/h:subject").get(hv.XSI_NIL) == "true"
    created = build.add_response(_header(), NOW, Ack(), record())
    assert created.tag == hv.ADD_RESPONSE and created[0].tag == hv.hl7(hv.ADD_ACCEPTED)
    assert codes(created[0], "h:controlActProcess/h:reasonCode") == [hv.CREA_RD]
    found = build.add_response(_header(), NOW, Ack.error(hv.DMP_FOUND, "exists"))
    assert found[0].tag == hv.hl7(hv.ADD_REFUSED)


def test_pdq_answer_lists_candidates_with_match_and_opposition() -> None:
    query = parse_find_candidates(msg.element(msg.find_candidates("VALJEAN", query_id="q-5")))
    answer = build.candidates_response(query.header, query.query_id, query.query, NOW, Ack(), [record(), record()])
    assert answer.tag == hv.hl7(hv.CANDIDATES)
    # PDQ (edition 2008): the acknowledgement's type is an element
    assert (
        codes(answer, "h:acknowledgement/h:typeCode") == ["AA"]
        and one(answer, "h:acknowledgement").get("typeCode") is None
    )
    assert codes(answer, "h:controlActProcess/h:code") == [hv.PDQ_RESPONSE_EVENT]
    patients = answer.findall("h:controlActProcess/h:subject/h:registrationEvent/h:subject1/h:patient", NS)
    assert len(patients) == 2
    assert codes(patients[0], "h:subjectOf1/h:queryMatchObservation/h:code") == [hv.PDQ_MATCH_CODE]
    assert codes(patients[0], "h:subjectOf1/h:queryMatchObservation/h:value", "value") == ["100"]
    assert codes(patients[0], "h:subjectOf2/h:administrativeObservation/h:code") == [hv.OPPOSES_REGULATION]
    assert codes(patients[0], "h:subjectOf2/h:administrativeObservation/h:value", "value") == ["true"]
    # enough to recognise the patient, not to reach them
    person = one(patients[0], "h:patientPerson")
    assert one(person, "h:addr/h:city").text == "Montreuil" and one(person, "h:birthTime").get("value") == "19620419"
    assert person.find("h:addr/h:streetAddressLine", NS) is None and person.find("h:telecom", NS) is None
    ack = one(answer, "h:controlActProcess/h:queryAck")
    assert codes(ack, "h:queryResponseCode") == ["OK"] and codes(ack, "h:resultTotalQuantity", "value") == ["2"]
    assert one(ack, "h:queryId").get("extension") == "q-5"
    assert one(answer, "h:controlActProcess/h:queryByParameter/h:queryId").get("extension") == "q-5"
    empty = build.candidates_response(query.header, query.query_id, query.query, NOW, Ack(), [])
    assert codes(empty, ".//h:queryResponseCode") == ["NF"]
    refused = build.candidates_response(query.header, query.query_id, None, NOW, Ack.error(hv.ACCESS_DENIED, "no"))
    assert codes(refused, "h:acknowledgement/h:typeCode") == ["AE"]
    assert codes(refused, ".//h:queryResponseCode") == ["AE"]


# --- the caller's rights --------------------------------------------------------------------------


def test_attention_lines_say_the_callers_authorization() -> None:
    year = NOW + dt.timedelta(days=300)
    granted = record(grants=(Authorization(KIND_ATTENDING, DOCTOR, year),)).state
    assert build.attention(principal(), granted, NOW) == build.Attention(hv.AUTHORIZATION_VALID, True)
    lapsed = record(grants=(Authorization(KIND_PROFESSIONAL, DOCTOR, NOW - dt.timedelta(days=1)),)).state
    assert build.attention(principal(), lapsed, NOW) == build.Attention(hv.AUTHORIZATION_EXPIRED, False)
    assert build.attention(principal(), record().state, NOW) == build.Attention(hv.AUTHORIZATION_NONE, False)
    assert build.attention(principal("patient", PATIENT), record().state, NOW).authorization == hv.AUTHORIZATION_VALID


def test_existence_test_is_open_to_any_user_of_the_patients_vihf() -> None:
    assert decide(principal(), PATIENT, record().state, hv.TEST_EXST, NOW).allowed
    other = principal(patient=msg.cx(msg.ins(2)))
    assert not decide(other, PATIENT, record().state, hv.TEST_EXST, NOW).allowed
    # reading the data needs the patient's authorization
    assert not decide(principal(), PATIENT, record().state, hv.CNSLT_DATA, NOW).allowed
    granted = record(grants=(Authorization(KIND_PROFESSIONAL, DOCTOR, NOW + dt.timedelta(days=3)),)).state
    assert decide(principal(), PATIENT, granted, hv.CNSLT_DATA, NOW).allowed
    assert decide(principal(), PATIENT, granted, hv.FERM, NOW).allowed
    assert decide(principal(), PATIENT, None, hv.CREA_RD, NOW).allowed


def test_pdq_is_for_regulation_mode_only() -> None:
    assert may_search(principal(mode=sv.ACCESS_REGULATION), NOW).allowed
    assert may_search(principal(mode=sv.ACCESS_REGULATION, roles=("60",)), NOW).allowed  # Ar: Y
    refused = may_search(principal(mode=sv.ACCESS_NORMAL), NOW)
    assert not refused.allowed and "regulation mode only" in refused.reason and sv.ACCESS_REGULATION in refused.reason
    assert not may_search(principal(mode=sv.ACCESS_EMERGENCY), NOW).allowed
    assert not may_search(principal("patient", PATIENT, mode=sv.ACCESS_REGULATION), NOW).allowed
    # An occupational doctor has no regulation column in the rights matrix: refused, the cell named.
    occupational = may_search(principal(mode=sv.ACCESS_REGULATION, roles=("10", "SM25")), NOW)
    assert not occupational.allowed and "rights matrix" in occupational.reason and "TD0.5" in occupational.reason


# --- the WSDLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wsdl", "operations"),
    [
        (
            "DMP_GestionDossierPatientPartage.wsdl",
            {
                hv.OPERATION_GET_DEMOGRAPHICS: (
                    hv.ACTION_GET_DEMOGRAPHICS,
                    hv.hl7(hv.GET_DEMOGRAPHICS),
                    hv.hl7(hv.DEMOGRAPHICS),
                ),
                hv.OPERATION_PATIENT_REVISE: (hv.ACTION_PATIENT_REVISE, hv.hl7(hv.PATIENT_REVISE), hv.REVISE_RESPONSE),
                hv.OPERATION_PATIENT_ADD: (hv.ACTION_PATIENT_ADD, hv.hl7(hv.PATIENT_ADD), hv.ADD_RESPONSE),
            },
        ),
        (
            "DMP_PDQSupplier.wsdl",
            {
                hv.OPERATION_FIND_CANDIDATES: (
                    hv.ACTION_FIND_CANDIDATES,
                    hv.hl7(hv.FIND_CANDIDATES),
                    hv.hl7(hv.CANDIDATES),
                )
            },
        ),
    ],
)
def test_our_wsdls_have_the_dmps_operations_actions_and_elements(wsdl: str, operations: dict) -> None:
    path = resource_dir("wsdl") / wsdl
    client = zeep.Client(str(path))
    (service,) = client.wsdl.services.values()
    (port,) = service.ports.values()
    assert set(port.binding._operations) == set(operations)
    replies = {
        hv.ACTION_GET_DEMOGRAPHICS: hv.ACTION_DEMOGRAPHICS,
        hv.ACTION_PATIENT_REVISE: hv.ACTION_PATIENT_REVISE_RESPONSE,
        hv.ACTION_PATIENT_ADD: hv.ACTION_PATIENT_ADD_RESPONSE,
        hv.ACTION_FIND_CANDIDATES: hv.ACTION_CANDIDATES,
    }
    for name, (action, request, response) in operations.items():
        operation = port.binding.get(name)
        assert operation.soapaction == action and operation.abstract.wsa_action == action
        assert operation.input.body.qname == etree.QName(request)
        assert operation.output.body.qname == etree.QName(response)
        output = etree.parse(str(path)).xpath(
            f"//wsdl:portType/wsdl:operation[@name='{name}']/wsdl:output/@wsaw:Action",
            namespaces={
                "wsdl": "http://schemas.xmlsoap.org/wsdl/",
                "wsaw": "http://www.w3.org/2006/05/addressing/wsdl",
            },
        )
        assert output == [replies[action]]
    for location in etree.parse(str(path)).xpath("//@schemaLocation"):
        schema = (path.parent / location).resolve()
        assert schema.is_file(), location
        etree.XMLSchema(etree.parse(str(schema)))


def test_the_message_roots_are_valid_against_our_schemas() -> None:
    schema = etree.XMLSchema(etree.parse(str(resource_dir("schemas") / "dmp" / "DMP_GestionDossierPatientPartage.xsd")))
    answer = build.revise_response(_header(), hv.FERM, NOW, Ack(), record("closed"))
    schema.assertValid(answer)
    broken = etree.fromstring(etree.tostring(answer).replace(b"PRPA_IN201315UV02", b"PRPA_IN201312UV02"))
    assert not schema.validate(broken)
