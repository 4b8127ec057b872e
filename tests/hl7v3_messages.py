"""HL7 V3 requests of the DMP's patient services, written for the tests (our own messages,
shaped like the DMP's example requests TD0.2, TD1.3a, TD1.3b, TD1.4, TD0.5 and the kit's TD1.1
and TD1.2): `xsi:nil` placeholders, a template creationTime and an OID as the author's code
included, as the DMP's own software sends them. They stay apart from the LPS's requests of
dmp/hl7v3/request.py, which are clean: these carry the quirks the server must tolerate."""

from __future__ import annotations

import uuid

from lxml import etree

from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.dmp.ins import INS_TEST_NIR, nir_with_key

LPS_ROOT = "1.2.250.1.999.7"  # our test LPS
NIL = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"'


def ins(number: int) -> str:
    """A valid test INS (NIR with its key), unique per `number`."""
    return nir_with_key(f"18512{number:08d}")


def cx(ins_value: str) -> str:
    return f"{ins_value}^^^&{INS_TEST_NIR}&ISO"


def _wrapper(interaction: str, body: str, message_id: str, creation: str = "20261205101500") -> str:
    return f"""<PRPA_{interaction} xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  ITSVersion="XML_1.0">
  <id root="{LPS_ROOT}.1" extension="{message_id}"/>
  <creationTime value="{creation}"/>
  <interactionId root="2.16.840.1.113883.1.6" extension="PRPA_{interaction}"/>
  <processingCode code="D"/>
  <processingModeCode code="T"/>
  <acceptAckCode code="AL"/>
  <receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE">
    <id root="1.2.250.1.213.4.1.1.1"/><softwareName>DMP</softwareName></device></receiver>
  <sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE">
    <id root="{LPS_ROOT}"/><softwareName>LPS de test</softwareName></device></sender>
  <attentionLine {NIL}/>
  {body}
</PRPA_{interaction}>"""


def _reason(code: str) -> str:
    return f'<reasonCode code="{code}" codeSystem="{hv.REASON_SYSTEM}" displayName="{hv.REASONS.get(code, code)}"/>'


def get_demographics(
    patient: str, reason: str = hv.TEST_EXST, root: str = INS_TEST_NIR, message_id: str = "", query_id: str = ""
) -> str:
    body = f"""<controlActProcess classCode="CACT" moodCode="EVN">
    {_reason(reason)}<reasonOf {NIL}/><overseer {NIL}/>
    <queryByParameter>
      <queryId root="{LPS_ROOT}.2" extension="{query_id or uuid.uuid4()}"/>
      <statusCode code="new"/>
      <parameterList><dataSource {NIL}/>
        <patientIdentifier><value root="{root}" extension="{patient}"/><semanticsText>Patient.id</semanticsText>
        </patientIdentifier>
      </parameterList>
    </queryByParameter>
  </controlActProcess>"""
    return _wrapper("IN201307UV02", body, message_id or str(uuid.uuid4()))


def person(
    usage: str = "VALJEAN",
    given: str = "JEAN",
    birth: str = "",
    gender: str = "M",
    birth_date: str = "19620419",
    city: str = "Montreuil",
    phone: str = "tel:0102030405",
) -> str:
    birth_name = f'<family qualifier="BR">{birth}</family>' if birth else ""
    return f"""<patientPerson classCode="PSN" determinerCode="INSTANCE">
      <name><prefix>M</prefix><family qualifier="SP">{usage}</family>{birth_name}<given>{given}</given></name>
      <telecom value="{phone}" use="MC"/>
      <telecom value="mailto:patient@example.org"/>
      <administrativeGenderCode code="{gender}"/>
      <birthTime value="{birth_date}"/>
      <addr><streetAddressLine>12 rue des Lilas</streetAddressLine><postalCode>93100</postalCode>
        <city>{city}</city><country>France</country></addr>
    </patientPerson>"""


def observation(code: str, value: bool, effective: str = "") -> str:
    time = f'<effectiveTime value="{effective}"/>' if effective else ""
    return f"""<subjectOf typeCode="SBJ"><administrativeObservation classCode="OBS" moodCode="EVN">
      <code code="{code}" codeSystem="{hv.OBSERVATION_SYSTEM}"/>{time}
      <value xsi:type="BL" value="{str(value).lower()}"/></administrativeObservation></subjectOf>"""


AUTHOR = """<author typeCode="AUT"><assignedEntity classCode="ASSIGNED">
      <id root="1.2.250.1.71.4.2.1" extension="{national_id}"/>
      <code code="1.2.250.1.71.4.2.5" displayName="Qualifié en médecine générale"/>
      <assignedPerson classCode="PSN" determinerCode="INSTANCE"><name><family>MYRIEL</family><given>CHARLES</given></name>
      </assignedPerson>
      <representedOrganization classCode="ORG" determinerCode="INSTANCE">
        <id root="1.2.250.1.71.4.2.2" extension="1990000042"/><name>Cabinet de test</name>
      </representedOrganization></assignedEntity></author>"""


def _registration(patient: str, reason: str, status: str, content: str, after: str = "", national_id: str = "") -> str:
    return f"""<controlActProcess classCode="CACT" moodCode="EVN">
    {_reason(reason)}
    <subject typeCode="SUBJ" contextConductionInd="false">
      <registrationRequest classCode="REG" moodCode="RQO">
        <statusCode code="active"/>
        <subject1 typeCode="SBJ"><patient classCode="PAT">
          <id root="{INS_TEST_NIR}" extension="{patient}"/>
          <statusCode code="{status}"/>
          {content}
        </patient></subject1>
        {AUTHOR.format(national_id=national_id or "899999999901")}
      </registrationRequest>
    </subject>
    {after}
  </controlActProcess>"""


def revise(
    patient: str,
    reason: str,
    content: str = "",
    status: str = "",
    closure: str = hv.CLOSURE_PATIENT_REQUEST,
    message_id: str = "",
) -> str:
    status = status or (hv.STATUS_TERMINATED if reason == hv.FERM else hv.STATUS_ACTIVE)
    if not content:
        content = person() if reason != hv.REAC else person() + observation(hv.CONSENT_REACTIVATION, True)
    after = ""
    if reason == hv.FERM and closure:
        after = f"""<reasonOf typeCode="RSON"><detectedIssueEvent classCode="ALRT" moodCode="EVN">
      <code code="{closure}" codeSystem="{hv.CLOSURE_REASON_SYSTEM}"/><text>{closure}</text>
      </detectedIssueEvent></reasonOf>"""
    # The DMP's own TD1.3b example sends a template placeholder as creationTime: tolerated.
    return _wrapper(
        "IN201314UV02",
        _registration(patient, reason, status, content, after),
        message_id or str(uuid.uuid4()),
        "^{date}",
    )


def patient_add(patient: str, content: str = "", consent: bool = True, message_id: str = "") -> str:
    content = content or (
        person()
        + (observation(hv.CONSENT_OPENING, True, "20261201093000") if consent else "")
        + observation(hv.OPPOSES_BREAK_GLASS, False)
        + observation(hv.OPPOSES_REGULATION, False)
    )
    return _wrapper(
        "IN201311UV02", _registration(patient, hv.CREA_RD, "active", content), message_id or str(uuid.uuid4())
    )


def find_candidates(
    family: str, given: str = "", birth_date: str = "", message_id: str = "", query_id: str = ""
) -> str:
    parameters = f"""<livingSubjectName><value><family>{family}</family>{f"<given>{given}</given>" if given else ""}</value>
        <semanticsText>LivingSubject.name</semanticsText></livingSubjectName>"""
    if birth_date:
        parameters = (
            f'<livingSubjectBirthTime><value value="{birth_date}"/>'
            "<semanticsText>LivingSubject.birthTime</semanticsText></livingSubjectBirthTime>" + parameters
        )
    body = f"""<controlActProcess classCode="CACT" moodCode="EVN">
    <code code="PRPA_TE201305UV02" codeSystem="2.16.840.1.113883.1.6"/>
    <queryByParameter>
      <queryId root="{LPS_ROOT}.2" extension="{query_id or uuid.uuid4()}"/>
      <statusCode code="new"/>
      <parameterList>{parameters}</parameterList>
    </queryByParameter>
  </controlActProcess>"""
    return _wrapper("IN201305UV02", body, message_id or str(uuid.uuid4()))


def element(text: str) -> etree._Element:
    return etree.fromstring(text.encode())
