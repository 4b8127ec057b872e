"""The HL7 V3 answers of the DMP's patient services, built as the DMP builds them.

Shapes follow the DMP's example answers: the DMP is the sender and custodian (device
1.2.250.1.213.4.1.1.1), the LPS that asked the receiver; `processingCode` P, `acceptAckCode` NE;
the acknowledgement names the request's id. In the GDP messages (HL7 normative edition 2009)
the acknowledgement's type is an attribute; in PDQ (edition 2008) a child element. What a TD
answers about the patient is the DMP's choice per reason code: the existence test (TD0.2) the
identity, the web account and the attachment to Mon espace santé, plus the caller's
authorization in two attention lines; the consultation (TD1.3a) the whole identity and the
oppositions; a revision (TD1.2-1.4) the status and the name.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lxml import etree

from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.dmp.hl7v3.parse import Header
from dmp_xds.dmp.model import Address, Demographics, DmpRecord, Telecom
from dmp_xds.dmp.policy import CLOSED, KIND_ATTENDING, KIND_PROFESSIONAL, RecordState, authorization_of
from dmp_xds.dmp.policy import is_attending as policy_is_attending
from dmp_xds.security.vihf import Principal

E = hv.hl7


@dataclass(frozen=True)
class Ack:
    """The acknowledgement: AA, or AE with its acknowledgementDetail code and text."""

    code: str = hv.ACK_ACCEPT
    detail: str = ""
    text: str = ""

    @classmethod
    def error(cls, detail: str, text: str) -> Ack:
        return cls(hv.ACK_ERROR, detail, text)

    @property
    def accepted(self) -> bool:
        return self.code == hv.ACK_ACCEPT


@dataclass(frozen=True)
class Attention:
    """The TD0.2 attention lines: the caller's authorization on this DMP, and whether they are
    its attending doctor (médecin traitant)."""

    authorization: str
    attending: bool


def attention(principal: Principal, record: RecordState, now: dt.datetime) -> Attention:
    """What TD0.2 tells the caller of their own rights: VALIDE when the patient lets them in
    (the patient themself, their representative, a professional or their structure authorized),
    EXPIREE when their personal authorization has lapsed, NON_EXISTANTE otherwise."""
    if not principal.is_professional or authorization_of(principal, record, now) is not None:
        status = hv.AUTHORIZATION_VALID
    elif any(
        a.kind in (KIND_PROFESSIONAL, KIND_ATTENDING)
        and a.grantee == principal.user_id
        and a.revoked_at is None
        and not a.active(now)
        for a in record.authorizations
    ):
        status = hv.AUTHORIZATION_EXPIRED
    else:
        status = hv.AUTHORIZATION_NONE
    return Attention(status, principal.is_professional and policy_is_attending(principal, record, now))


# --- observations ------------------------------------------------------------------------------

# What each read answer says of the patient besides their identity (TD0.2 and TD1.3a examples).
EXISTENCE_OBSERVATIONS = (hv.WEB_ACCOUNT_OPEN, hv.ATTACHED_TO_ENS)
CONSULTATION_OBSERVATIONS = (hv.OPPOSES_BREAK_GLASS, hv.OPPOSES_REGULATION)
CANDIDATE_OBSERVATIONS = (hv.OPPOSES_REGULATION,)


def observation_values(record: DmpRecord, codes: Iterable[str]) -> list[tuple[str, bool]]:
    """The boolean administrative observations `codes` the record knows (an unknown one is left out)."""
    known: dict[str, bool | None] = {
        hv.WEB_ACCOUNT_OPEN: record.web_account_open,
        # A DMP here is never attached to "Mon espace santé": there is none to attach it to.
        hv.ATTACHED_TO_ENS: False,
        hv.OPPOSES_BREAK_GLASS: record.opposes_emergency_access,
        hv.OPPOSES_REGULATION: record.opposes_regulation_access,
    }
    return [(code, value) for code in codes if (value := known.get(code)) is not None]


def _observation(parent: etree._Element, code: str, value: bool) -> None:
    observation = etree.SubElement(parent, E("administrativeObservation"), classCode="OBS", moodCode="EVN")
    system = hv.WEB_ACCOUNT_SYSTEM if code == hv.WEB_ACCOUNT_OPEN else hv.OBSERVATION_SYSTEM
    etree.SubElement(observation, E("code"), code=code, codeSystem=system, displayName=hv.OBSERVATIONS[code])
    _bl(etree.SubElement(observation, E("value")), value)


def _bl(element: etree._Element, value: bool) -> None:
    element.set("value", "true" if value else "false")
    element.set(hv.XSI_TYPE, "BL")


# --- the message wrapper ---------------------------------------------------------------------


def _message(
    interaction: str,
    request: Header,
    now: dt.datetime,
    ack: Ack,
    ack_as_element: bool = False,
    attention_lines: Attention | None = None,
    message_id: str | None = None,
) -> etree._Element:
    message = etree.Element(E(interaction), {"ITSVersion": "XML_1.0"}, nsmap={None: hv.NS_HL7, "xsi": hv.NS_XSI})
    etree.SubElement(message, E("id"), root=hv.RESPONSE_ID_ROOT, extension=message_id or str(uuid.uuid4()))
    etree.SubElement(message, E("creationTime"), value=now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S"))
    etree.SubElement(message, E("interactionId"), root=hv.INTERACTION_ROOT, extension=interaction)
    etree.SubElement(message, E("processingCode"), code="P")
    etree.SubElement(message, E("processingModeCode"), code="T")
    etree.SubElement(message, E("acceptAckCode"), code="NE")
    _device(message, "receiver", "RCV", request.sender_id, request.sender_name)
    _device(message, "sender", "SND", hv.DMP_DEVICE_ROOT, hv.DMP_SOFTWARE_NAME)
    if attention_lines is not None:
        line = etree.SubElement(message, E("attentionLine"))
        key, system = hv.AUTHORIZATION_KEY
        etree.SubElement(line, E("keyWordText"), code=key, codeSystem=system)
        value = etree.SubElement(
            line, E("value"), code=attention_lines.authorization, codeSystem=hv.AUTHORIZATION_VALUE_SYSTEM
        )
        value.set(hv.XSI_TYPE, "CV")
        line = etree.SubElement(message, E("attentionLine"))
        key, system = hv.ATTENDING_KEY
        etree.SubElement(line, E("keyWordText"), code=key, codeSystem=system)
        _bl(etree.SubElement(line, E("value")), attention_lines.attending)
    acknowledgement = etree.SubElement(message, E("acknowledgement"))
    if ack_as_element:
        etree.SubElement(acknowledgement, E("typeCode"), code=ack.code)
    else:
        acknowledgement.set("typeCode", ack.code)
    target = etree.SubElement(acknowledgement, E("targetMessage"))
    root, extension = request.message_id
    target_id = etree.SubElement(target, E("id"))
    if root:
        target_id.set("root", root)
    if extension:
        target_id.set("extension", extension)
    if not ack.accepted:
        detail = etree.SubElement(acknowledgement, E("acknowledgementDetail"), typeCode="E")
        etree.SubElement(detail, E("code"), code=ack.detail)
        etree.SubElement(detail, E("text")).text = ack.text
    return message


def _device(message: etree._Element, role: str, type_code: str, root: str, name: str) -> None:
    device = etree.SubElement(
        etree.SubElement(message, E(role), typeCode=type_code),
        E("device"),
        classCode="DEV",
        determinerCode="INSTANCE",
    )
    device_id = etree.SubElement(device, E("id"))
    if root:
        device_id.set("root", root)
    if name:
        etree.SubElement(device, E("softwareName")).text = name


def _control(message: etree._Element, reason: str) -> etree._Element:
    control = etree.SubElement(message, E("controlActProcess"), classCode="CACT", moodCode="EVN")
    if reason:
        etree.SubElement(
            control, E("reasonCode"), code=reason, codeSystem=hv.REASON_SYSTEM, displayName=hv.REASONS[reason]
        )
    return control


def _registration(control: etree._Element, status: str = "completed") -> etree._Element:
    subject = etree.SubElement(control, E("subject"), contextConductionInd="false", typeCode="SUBJ")
    event = etree.SubElement(subject, E("registrationEvent"), classCode="REG", moodCode="EVN")
    etree.SubElement(event, E("statusCode"), code=status)
    return event


def _custodian(event: etree._Element) -> None:
    entity = etree.SubElement(
        etree.SubElement(event, E("custodian"), typeCode="CST"), E("assignedEntity"), classCode="ASSIGNED"
    )
    etree.SubElement(entity, E("id"), root=hv.DMP_DEVICE_ROOT)


def record_status(record: DmpRecord) -> str:
    return hv.STATUS_TERMINATED if record.state.status == CLOSED else hv.STATUS_ACTIVE


# How much of the patient's identity each answer gives (the DMP's example answers): the name after
# a revision; the name, telecoms, sex and birth date to the existence test; everything to the
# consultation. Someone the patient has not authorized learns enough to recognise the patient, not
# to reach them: a PDQ candidate's name, sex, birth date and town; the existence test's name, sex
# and birth date.
NAMES, IDENTITY, EXISTENCE, FULL, CANDIDATE = "names", "identity", "existence", "full", "candidate"


def _patient(parent: etree._Element, record: DmpRecord, with_id: bool, level: str) -> etree._Element:
    patient = etree.SubElement(parent, E("patient"), classCode="PAT")
    if with_id:
        ins, _, rest = record.patient_id.partition("^^^&")
        etree.SubElement(patient, E("id"), root=rest.partition("&")[0], extension=ins)
    etree.SubElement(patient, E("statusCode"), code=record_status(record))
    person = etree.SubElement(patient, E("patientPerson"), classCode="PSN", determinerCode="INSTANCE")
    _person(person, record.demographics, level)
    return patient


def _person(person: etree._Element, data: Demographics, level: str) -> None:
    name = etree.SubElement(person, E("name"))
    if data.prefix:
        etree.SubElement(name, E("prefix")).text = data.prefix
    for given in data.given_names:
        etree.SubElement(name, E("given")).text = given
    if data.usage_name:
        etree.SubElement(name, E("family"), qualifier="SP").text = data.usage_name
    if data.birth_name:
        etree.SubElement(name, E("family"), qualifier="BR").text = data.birth_name
    if level == NAMES:
        return
    _telecoms(person, data.telecoms if level in (EXISTENCE, FULL) else ())
    if data.gender:
        etree.SubElement(person, E("administrativeGenderCode"), code=data.gender)
    if data.birth_date:
        etree.SubElement(person, E("birthTime"), value=data.birth_date)
    if level in (IDENTITY, EXISTENCE):
        return
    full = level == FULL
    if full and data.deceased:
        etree.SubElement(person, E("deceasedInd"), value=data.deceased)
    for address in data.addresses:
        _address(person, address, full)
    if not full:
        return
    # In the order of the DMP's schema (PRPA_MT201303UV02.Person): addr, personalRelationship, birthPlace.
    for relation in data.relationships:
        element = etree.SubElement(person, E("personalRelationship"), classCode="PRS")
        code = etree.SubElement(element, E("code"), code=relation.code)
        if relation.code_system:
            code.set("codeSystem", relation.code_system)
        for address in relation.addresses:
            _address(element, address, full)
        _telecoms(element, relation.telecoms)
        holder = etree.SubElement(element, E("relationshipHolder1"), classCode="PSN", determinerCode="INSTANCE")
        name = etree.SubElement(holder, E("name"))
        for tag, values in (
            ("prefix", (relation.prefix,)),
            ("given", relation.given_names),
            ("family", (relation.family,)),
        ):
            for value in values:
                if value:
                    etree.SubElement(name, E(tag)).text = value
    if data.birth_place != Address():
        birth_place = etree.SubElement(person, E("birthPlace"), classCode="BIRTHPL")
        _address(birth_place, data.birth_place, full)


def _address(parent: etree._Element, address: Address, full: bool) -> None:
    addr = etree.SubElement(parent, E("addr"))
    for tag, lines in (("streetAddressLine", address.lines), ("additionalLocator", address.locators)):
        for line in lines if full else ():
            etree.SubElement(addr, E(tag)).text = line
    parts = [("postalCode", address.postal_code), ("city", address.city)]
    for part, value in parts + ([("country", address.country)] if full else []):
        if value:
            etree.SubElement(addr, E(part)).text = value


def _telecoms(parent: etree._Element, telecoms: Sequence[Telecom]) -> None:
    for telecom in telecoms:
        element = etree.SubElement(parent, E("telecom"))
        if telecom.use:
            element.set("use", telecom.use)
        element.set("value", telecom.value)


# --- the answers -----------------------------------------------------------------------------


def demographics_response(
    request: Header,
    reason: str,
    query_id: tuple[str, str],
    now: dt.datetime,
    ack: Ack,
    record: DmpRecord | None = None,
    attention_lines: Attention | None = None,
    message_id: str | None = None,
) -> etree._Element:
    """PRPA_IN201308UV02, the GDP-read answer: the patient (queryResponseCode OK), none (NF: no
    DMP), or an AE acknowledgement (queryResponseCode AE)."""
    message = _message(hv.DEMOGRAPHICS, request, now, ack, attention_lines=attention_lines, message_id=message_id)
    control = _control(message, reason if reason in hv.REASONS else "")
    if ack.accepted and record is not None:
        event = _registration(control)
        subject1 = etree.SubElement(event, E("subject1"), typeCode="SBJ")
        full = reason == hv.CNSLT_DATA
        authorized = attention_lines is None or attention_lines.authorization == hv.AUTHORIZATION_VALID
        level = FULL if full else EXISTENCE if authorized else IDENTITY
        patient = _patient(subject1, record, with_id=True, level=level)
        codes = CONSULTATION_OBSERVATIONS if full else EXISTENCE_OBSERVATIONS
        for code, value in observation_values(record, codes):
            _observation(etree.SubElement(patient, E("subjectOf"), typeCode="SBJ"), code, value)
        _custodian(event)
    query_ack = etree.SubElement(control, E("queryAck"))
    _query_id(query_ack, query_id)
    code = hv.QUERY_ERROR if not ack.accepted else hv.QUERY_OK if record is not None else hv.QUERY_NOT_FOUND
    etree.SubElement(query_ack, E("queryResponseCode"), code=code)
    return message


def _query_id(parent: etree._Element, query_id: tuple[str, str]) -> None:
    element = etree.SubElement(parent, E("queryId"))
    if query_id[0]:
        element.set("root", query_id[0])
    if query_id[1]:
        element.set("extension", query_id[1])


def _registration_answer(
    wrapper: str,
    accepted_interaction: str,
    refused_interaction: str,
    request: Header,
    reason: str,
    now: dt.datetime,
    ack: Ack,
    record: DmpRecord | None,
    message_id: str | None,
) -> etree._Element:
    response = etree.Element(wrapper, nsmap={None: hv.NS_HL7, "gdp": hv.NS_GDP})
    interaction = accepted_interaction if ack.accepted else refused_interaction
    message = _message(interaction, request, now, ack, message_id=message_id)
    response.append(message)
    control = _control(message, reason if reason in hv.REASONS else "")
    if ack.accepted and record is not None:
        event = _registration(control)
        subject1 = etree.SubElement(event, E("subject1"), typeCode="SBJ")
        # The DMP's examples leave the patient's id out, which HL7 requires: given here.
        _patient(subject1, record, with_id=True, level=NAMES)
        _custodian(event)
    else:
        # A refusal names no registration, but HL7 requires the element: nil, as the DMP writes
        # the elements it leaves empty.
        etree.SubElement(control, E("subject"), {"typeCode": "SUBJ", hv.XSI_NIL: "true"})
    return response


def revise_response(
    request: Header,
    reason: str,
    now: dt.datetime,
    ack: Ack,
    record: DmpRecord | None = None,
    message_id: str | None = None,
) -> etree._Element:
    """gdp:PRPA_IN201314UV02_Response holding PRPA_IN201315UV02 (accepted: the patient's status
    and name) or PRPA_IN201316UV02 (refused: AE)."""
    return _registration_answer(
        hv.REVISE_RESPONSE, hv.REVISE_ACCEPTED, hv.REVISE_REFUSED, request, reason, now, ack, record, message_id
    )


def add_response(
    request: Header,
    now: dt.datetime,
    ack: Ack,
    record: DmpRecord | None = None,
    message_id: str | None = None,
) -> etree._Element:
    """gdp:PRPA_IN201311UV02_Response holding PRPA_IN201312UV02 (created) or 201313UV02 (refused)."""
    return _registration_answer(
        hv.ADD_RESPONSE, hv.ADD_ACCEPTED, hv.ADD_REFUSED, request, hv.CREA_RD, now, ack, record, message_id
    )


def candidates_response(
    request: Header,
    query_id: tuple[str, str],
    query: etree._Element | None,
    now: dt.datetime,
    ack: Ack,
    candidates: Sequence[DmpRecord] = (),
    message_id: str | None = None,
) -> etree._Element:
    """PRPA_IN201306UV02, the PDQ answer: one registrationEvent per candidate (identity, match
    percentage, opposition to the regulation centre's access), the counts, the query echoed."""
    message = _message(hv.CANDIDATES, request, now, ack, ack_as_element=True, message_id=message_id)
    control = etree.SubElement(message, E("controlActProcess"), classCode="CACT", moodCode="EVN")
    # The DMP's example types this code CS while giving it a code system, which CS forbids: a CD.
    etree.SubElement(control, E("code"), code=hv.PDQ_RESPONSE_EVENT, codeSystem=hv.INTERACTION_ROOT)
    for record in candidates if ack.accepted else ():
        event = _registration(control, hv.STATUS_ACTIVE)
        subject1 = etree.SubElement(event, E("subject1"), typeCode="SBJ")
        patient = _patient(subject1, record, with_id=True, level=CANDIDATE)
        match = etree.SubElement(
            etree.SubElement(patient, E("subjectOf1"), typeCode="SBJ"),
            E("queryMatchObservation"),
            classCode="COND",
            moodCode="EVN",
        )
        match_code = etree.SubElement(match, E("code"), code=hv.PDQ_MATCH_CODE)
        match_code.set(hv.XSI_TYPE, "CS")
        percentage = etree.SubElement(match, E("value"), value="100")  # every candidate matches every trait asked
        percentage.set(hv.XSI_TYPE, "INT")
        for observation, value in observation_values(record, CANDIDATE_OBSERVATIONS):
            _observation(etree.SubElement(patient, E("subjectOf2"), typeCode="SBJ"), observation, value)
        _custodian(event)
    query_ack = etree.SubElement(control, E("queryAck"))
    _query_id(query_ack, query_id)
    found = len(candidates) if ack.accepted else 0
    response_code = hv.QUERY_ERROR if not ack.accepted else hv.QUERY_OK if found else hv.QUERY_NOT_FOUND
    etree.SubElement(query_ack, E("queryResponseCode"), code=response_code)
    for name, quantity in (
        ("resultTotalQuantity", found),
        ("resultCurrentQuantity", found),
        ("resultRemainingQuantity", 0),
    ):
        etree.SubElement(query_ack, E(name), value=str(quantity))
    if query is not None:
        control.append(_copy(query))
    return message


def _copy(element: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(element))
