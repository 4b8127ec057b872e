"""The HL7 V3 requests an LPS sends to the DMP's patient services, and its reading of the answers.

The other side of dmp/hl7v3/parse.py (which reads these requests) and build.py (which writes the
answers), used by the client (`dmp-xds dmp exists|read|modify|...`); the conformance plans'
requests were written with it too, so that one module says what an LPS sends. Shapes follow
the DMP's example requests: the LPS is the sender device, the DMP (1.2.250.1.213.4.1.1.1) the
receiver, `processingCode` D, `acceptAckCode` AL; but no `xsi:nil` placeholders nor template
values (tests/hl7v3_messages.py sends those, to check the server tolerates them).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lxml import etree

from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.dmp.hl7v3.parse import demographics, observations
from dmp_xds.dmp.ins import canonical_patient_id
from dmp_xds.dmp.model import Demographics

E = hv.hl7
# This client's device id, an OID of its own (2.25 + the UUID v5 of its name), as the DMP's
# examples give the LPS's; message and query ids hang under it (.1, .2).
LPS_ROOT = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:dmp-xds:lps-device').int}"
LPS_NAME = "dmp-xds"


@dataclass(frozen=True)
class Sender:
    """The LPS that sends: its device id and software name."""

    root: str = LPS_ROOT
    name: str = LPS_NAME


@dataclass(frozen=True)
class Author:
    """registrationRequest/author: the professional who acts (their national id and name) and
    their structure, as the revisions and the creation name them."""

    national_id: str
    family: str = ""
    given: str = ""
    structure_id: str = ""
    structure_name: str = ""


def ii(cx: str) -> tuple[str, str]:
    """(root, extension) of an INS as CX (`INS^^^&OID&ISO`, the DMP's `^NH` form accepted)."""
    canonical, _ = canonical_patient_id(cx.strip())
    extension, _, rest = canonical.partition("^^^&")
    return rest.partition("&")[0], extension


def _message(interaction: str, sender: Sender, message_id: str = "", now: dt.datetime | None = None) -> etree._Element:
    message = etree.Element(E(interaction), {"ITSVersion": "XML_1.0"}, nsmap={None: hv.NS_HL7, "xsi": hv.NS_XSI})
    etree.SubElement(message, E("id"), root=sender.root + ".1", extension=message_id or str(uuid.uuid4()))
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")
    etree.SubElement(message, E("creationTime"), value=stamp)
    etree.SubElement(message, E("interactionId"), root=hv.INTERACTION_ROOT, extension=interaction)
    etree.SubElement(message, E("processingCode"), code="D")
    etree.SubElement(message, E("processingModeCode"), code="T")
    etree.SubElement(message, E("acceptAckCode"), code="AL")
    for role, type_code, root, name in (
        ("receiver", "RCV", hv.DMP_DEVICE_ROOT, hv.DMP_SOFTWARE_NAME),
        ("sender", "SND", sender.root, sender.name),
    ):
        device = etree.SubElement(
            etree.SubElement(message, E(role), typeCode=type_code),
            E("device"),
            classCode="DEV",
            determinerCode="INSTANCE",
        )
        etree.SubElement(device, E("id"), root=root)
        etree.SubElement(device, E("softwareName")).text = name
    return message


def _control(message: etree._Element, reason: str) -> etree._Element:
    control = etree.SubElement(message, E("controlActProcess"), classCode="CACT", moodCode="EVN")
    if reason:
        etree.SubElement(
            control, E("reasonCode"), code=reason, codeSystem=hv.REASON_SYSTEM, displayName=hv.REASONS[reason]
        )
    return control


def _query(control: etree._Element, sender: Sender) -> etree._Element:
    query = etree.SubElement(control, E("queryByParameter"))
    etree.SubElement(query, E("queryId"), root=sender.root + ".2", extension=str(uuid.uuid4()))
    etree.SubElement(query, E("statusCode"), code="new")
    return etree.SubElement(query, E("parameterList"))


def get_demographics(patient: str, reason: str = hv.TEST_EXST, sender: Sender = Sender()) -> etree._Element:
    """PRPA_IN201307UV02: TD0.2 (TEST_EXST, the existence test) or TD1.3a (CNSLT_DATA)."""
    message = _message(hv.GET_DEMOGRAPHICS, sender)
    parameters = _query(_control(message, reason), sender)
    identifier = etree.SubElement(parameters, E("patientIdentifier"))
    root, extension = ii(patient)
    etree.SubElement(identifier, E("value"), root=root, extension=extension)
    etree.SubElement(identifier, E("semanticsText")).text = "Patient.id"
    return message


def person(parent: etree._Element, data: Demographics) -> etree._Element:
    """patientPerson: what parse.demographics reads back."""
    element = etree.SubElement(parent, E("patientPerson"), classCode="PSN", determinerCode="INSTANCE")
    name = etree.SubElement(element, E("name"))
    if data.prefix:
        etree.SubElement(name, E("prefix")).text = data.prefix
    if data.usage_name:
        etree.SubElement(name, E("family"), qualifier="SP").text = data.usage_name
    if data.birth_name:
        etree.SubElement(name, E("family"), qualifier="BR").text = data.birth_name
    for given in data.given_names:
        etree.SubElement(name, E("given")).text = given
    for telecom in data.telecoms:
        item = etree.SubElement(element, E("telecom"), value=telecom.value)
        if telecom.use:
            item.set("use", telecom.use)
    if data.gender:
        etree.SubElement(element, E("administrativeGenderCode"), code=data.gender)
    if data.birth_date:
        etree.SubElement(element, E("birthTime"), value=data.birth_date)
    for address in data.addresses:
        addr = etree.SubElement(element, E("addr"))
        for line in address.lines:
            etree.SubElement(addr, E("streetAddressLine")).text = line
        for part, value in (("postalCode", address.postal_code), ("city", address.city), ("country", address.country)):
            if value:
                etree.SubElement(addr, E(part)).text = value
    return element


def _observation(patient: etree._Element, code: str, value: bool, effective: dt.datetime | None = None) -> None:
    observation = etree.SubElement(
        etree.SubElement(patient, E("subjectOf"), typeCode="SBJ"),
        E("administrativeObservation"),
        classCode="OBS",
        moodCode="EVN",
    )
    etree.SubElement(observation, E("code"), code=code, codeSystem=hv.OBSERVATION_SYSTEM)
    if effective is not None:
        etree.SubElement(observation, E("effectiveTime"), value=effective.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S"))
    value_element = etree.SubElement(observation, E("value"), value="true" if value else "false")
    value_element.set(hv.XSI_TYPE, "BL")


def _author(registration: etree._Element, author: Author) -> None:
    entity = etree.SubElement(
        etree.SubElement(registration, E("author"), typeCode="AUT"), E("assignedEntity"), classCode="ASSIGNED"
    )
    etree.SubElement(entity, E("id"), root=hv.PROFESSIONAL_ID_ROOT, extension=author.national_id)
    if author.family or author.given:
        named = etree.SubElement(entity, E("assignedPerson"), classCode="PSN", determinerCode="INSTANCE")
        name = etree.SubElement(named, E("name"))
        if author.family:
            etree.SubElement(name, E("family")).text = author.family
        if author.given:
            etree.SubElement(name, E("given")).text = author.given
    if author.structure_id:
        organization = etree.SubElement(
            entity, E("representedOrganization"), classCode="ORG", determinerCode="INSTANCE"
        )
        etree.SubElement(organization, E("id"), root=hv.STRUCTURE_ID_ROOT, extension=author.structure_id)
        if author.structure_name:
            etree.SubElement(organization, E("name")).text = author.structure_name


def _registration(
    interaction: str,
    reason: str,
    patient_id: str,
    status: str,
    data: Demographics | None,
    flags: Mapping[str, bool],
    author: Author | None,
    sender: Sender,
    consent_at: dt.datetime | None = None,
) -> tuple[etree._Element, etree._Element]:
    message = _message(interaction, sender)
    control = _control(message, reason)
    registration = etree.SubElement(
        etree.SubElement(control, E("subject"), typeCode="SUBJ", contextConductionInd="false"),
        E("registrationRequest"),
        classCode="REG",
        moodCode="RQO",
    )
    etree.SubElement(registration, E("statusCode"), code="active")
    patient = etree.SubElement(
        etree.SubElement(registration, E("subject1"), typeCode="SBJ"), E("patient"), classCode="PAT"
    )
    root, extension = ii(patient_id)
    etree.SubElement(patient, E("id"), root=root, extension=extension)
    etree.SubElement(patient, E("statusCode"), code=status)
    if data is not None:
        person(patient, data)
    for code, value in flags.items():
        _observation(patient, code, value, consent_at if code == hv.CONSENT_OPENING else None)
    if author is not None:
        _author(registration, author)
    return message, control


def revise(
    patient: str,
    reason: str,
    data: Demographics | None = None,
    flags: Mapping[str, bool] | None = None,
    author: Author | None = None,
    closure: str = hv.CLOSURE_PATIENT_REQUEST,
    closure_text: str = "",
    sender: Sender = Sender(),
) -> etree._Element:
    """PRPA_IN201314UV02: TD1.3b (MODIF_DATA: the whole administrative data, changed), TD1.4
    (FERM, with the closure's reason) or TD1.2 (REAC, with the patient's consent)."""
    status = hv.STATUS_TERMINATED if reason == hv.FERM else hv.STATUS_ACTIVE
    message, control = _registration(hv.PATIENT_REVISE, reason, patient, status, data, flags or {}, author, sender)
    if reason == hv.FERM:
        event = etree.SubElement(
            etree.SubElement(control, E("reasonOf"), typeCode="RSON"),
            E("detectedIssueEvent"),
            classCode="ALRT",
            moodCode="EVN",
        )
        etree.SubElement(event, E("code"), code=closure, codeSystem=hv.CLOSURE_REASON_SYSTEM)
        etree.SubElement(event, E("text")).text = closure_text or closure
    return message


def patient_add(
    patient: str,
    data: Demographics,
    consent_at: dt.datetime | None,
    flags: Mapping[str, bool] | None = None,
    author: Author | None = None,
    sender: Sender = Sender(),
) -> etree._Element:
    """PRPA_IN201311UV02: TD1.1, the creation, with the patient's consent (CONSENTEMENT_OUVERTURE_DMP
    true, at `consent_at`; None sends no consent, which the DMP refuses) and their oppositions."""
    sent = ({hv.CONSENT_OPENING: True} if consent_at is not None else {}) | dict(flags or {})
    message, _ = _registration(
        hv.PATIENT_ADD, hv.CREA_RD, patient, hv.STATUS_ACTIVE, data, sent, author, sender, consent_at
    )
    return message


def find_candidates(
    family: str, given: str = "", birth_date: str = "", gender: str = "", sender: Sender = Sender()
) -> etree._Element:
    """PRPA_IN201305UV02: TD0.5, a search by name (and birth date, sex), for a patient whose INS
    is not known (regulation mode)."""
    message = _message(hv.FIND_CANDIDATES, sender)
    control = etree.SubElement(message, E("controlActProcess"), classCode="CACT", moodCode="EVN")
    etree.SubElement(control, E("code"), code=hv.PDQ_QUERY_EVENT, codeSystem=hv.INTERACTION_ROOT)
    parameters = _query(control, sender)
    if gender:
        item = etree.SubElement(parameters, E("livingSubjectAdministrativeGender"))
        etree.SubElement(item, E("value"), code=gender)
        etree.SubElement(item, E("semanticsText")).text = "LivingSubject.administrativeGender"
    if birth_date:
        item = etree.SubElement(parameters, E("livingSubjectBirthTime"))
        etree.SubElement(item, E("value"), value=birth_date)
        etree.SubElement(item, E("semanticsText")).text = "LivingSubject.birthTime"
    item = etree.SubElement(parameters, E("livingSubjectName"))
    value = etree.SubElement(item, E("value"))
    etree.SubElement(value, E("family")).text = family
    if given:
        etree.SubElement(value, E("given")).text = given
    etree.SubElement(item, E("semanticsText")).text = "LivingSubject.name"
    return message


# --- the answers, as an LPS reads them --------------------------------------------------------


@dataclass(frozen=True)
class Patient:
    """A patient an answer gives: their INS (CX), the DMP's status, identity and observations."""

    patient_id: str
    status: str
    demographics: Demographics
    observations: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """What an LPS learns from an answer of the patient services."""

    interaction: str
    ack: str  # AA | AE
    detail: str = ""  # acknowledgementDetail/code of an AE (DMPAccessDeniedByRightsService...)
    text: str = ""  # acknowledgementDetail/text
    query_code: str = ""  # queryAck/queryResponseCode (OK, NF, AE) of a query's answer
    patients: tuple[Patient, ...] = ()
    attention: dict[str, str] = field(default_factory=dict)  # TD0.2: AUTORISATION, STATUT_MT

    @property
    def accepted(self) -> bool:
        return self.ack == hv.ACK_ACCEPT and self.query_code in ("", hv.QUERY_OK, hv.QUERY_NOT_FOUND)


def _find(parent: etree._Element, path: str) -> etree._Element | None:
    return parent.find(path, {"h": hv.NS_HL7})


def _all(parent: etree._Element, path: str) -> list[etree._Element]:
    return list(parent.iterfind(path, {"h": hv.NS_HL7}))


def read_answer(answer: etree._Element) -> Answer:
    """An answer of the patient services: PRPA_IN201308UV02 (TD0.2, TD1.3a), 201306UV02 (TD0.5),
    or the GDP wrappers around 201312/201313/201315/201316UV02 (TD1.1-1.4). Raises ValueError for
    an element that is none of them."""
    message = answer
    if etree.QName(answer).namespace == hv.NS_GDP and len(answer):
        message = answer[0]
    qname = etree.QName(message)
    if qname.namespace != hv.NS_HL7 or not qname.localname.startswith("PRPA_IN"):
        raise ValueError(f"<{qname.localname}> is not an answer of the DMP's patient services")
    acknowledgement = _find(message, "h:acknowledgement")
    if acknowledgement is None:
        raise ValueError(f"<{qname.localname}> has no acknowledgement")
    type_code = acknowledgement.get("typeCode") or ""
    if not type_code:
        element = _find(acknowledgement, "h:typeCode")
        type_code = element.get("code", "") if element is not None else ""
    detail = _find(acknowledgement, "h:acknowledgementDetail")
    code = _find(detail, "h:code") if detail is not None else None
    query_code = _find(message, "h:controlActProcess/h:queryAck/h:queryResponseCode")
    attention = {}
    for line in _all(message, "h:attentionLine"):
        key, value = _find(line, "h:keyWordText"), _find(line, "h:value")
        if key is not None and value is not None:
            attention[key.get("code", "")] = value.get("code") or value.get("value") or ""
    patients = []
    for patient in _all(message, "h:controlActProcess/h:subject/h:registrationEvent/h:subject1/h:patient"):
        identifier = _find(patient, "h:id")
        root, extension = (
            (identifier.get("root", ""), identifier.get("extension", "")) if identifier is not None else ("", "")
        )
        status = _find(patient, "h:statusCode")
        person_element = _find(patient, "h:patientPerson")
        flags = observations(patient) | observations(patient, "subjectOf2")
        patients.append(
            Patient(
                f"{extension}^^^&{root}&ISO" if extension else "",
                status.get("code", "") if status is not None else "",
                demographics(person_element) if person_element is not None else Demographics(),
                flags,
            )
        )
    return Answer(
        qname.localname,
        type_code,
        code.get("code", "") if code is not None else "",
        (detail.findtext(f"{{{hv.NS_HL7}}}text") or "").strip() if detail is not None else "",
        query_code.get("code", "") if query_code is not None else "",
        tuple(patients),
        attention,
    )


def oppositions(break_glass: bool | None, regulation: bool | None) -> dict[str, bool]:
    """The opposition observations to send: only those given."""
    given: Iterable[tuple[str, bool | None]] = (
        (hv.OPPOSES_BREAK_GLASS, break_glass),
        (hv.OPPOSES_REGULATION, regulation),
    )
    return {code: value for code, value in given if value is not None}
