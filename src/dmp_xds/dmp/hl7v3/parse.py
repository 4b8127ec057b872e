"""The HL7 V3 requests of the DMP's patient services, read into dataclasses.

Each reader takes the SOAP Body's element and returns its request, or raises Hl7Error with the
acknowledgementDetail code and a text the answer's AE carries. The DMP's own examples and kit
deviate from the HL7 letter in ways an LPS relies on, so the readers tolerate them: optional
elements sent as `xsi:nil`, a `creationTime` that is a template placeholder (`^{date}`), an OID
in `assignedEntity/code@code`, either HL7 namespace prefix. Nothing here is checked that the
answer does not need.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from lxml import etree

from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.dmp.ins import INS_ROOTS, nir_problem
from dmp_xds.dmp.model import Address, Demographics, Relationship, Telecom


class Hl7Error(Exception):
    """The request cannot be served: `code` (vocabulary's acknowledgementDetail codes) and `text`."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def invalid(text: str) -> Hl7Error:
    return Hl7Error(hv.INVALID_REQUEST, text)


@dataclass(frozen=True)
class Header:
    """What an answer repeats of the request: its id (acknowledgement/targetMessage) and its
    sender device (the answer's receiver)."""

    message_id: tuple[str, str] = ("", "")  # (root, extension)
    sender_id: str = ""
    sender_name: str = ""


@dataclass(frozen=True)
class Author:
    """registrationRequest/author/assignedEntity: the professional who acts, as the LPS says."""

    national_id: str = ""
    name: str = ""
    structure_id: str = ""
    structure_name: str = ""


@dataclass(frozen=True)
class GetDemographics:
    """PRPA_IN201307UV02: TD0.2 (TEST_EXST) or TD1.3a (CNSLT_DATA)."""

    header: Header
    reason: str
    query_id: tuple[str, str]
    patient_id: str  # CX, INS^^^&root&ISO


@dataclass(frozen=True)
class Revise:
    """PRPA_IN201314UV02: TD1.3b (MODIF_DATA), TD1.4 (FERM), TD1.2 (REAC)."""

    header: Header
    reason: str
    patient_id: str
    status: str  # patient/statusCode: active | terminated
    demographics: Demographics | None  # None: no patientPerson data sent (names only count)
    observations: dict[str, bool] = field(default_factory=dict)  # administrativeObservation code -> value
    author: Author = Author()
    closure_reason: str = ""  # reasonOf/detectedIssueEvent/code (FERM)
    closure_text: str = ""


@dataclass(frozen=True)
class PatientAdd:
    """PRPA_IN201311UV02: TD1.1 (CREA_RD)."""

    header: Header
    reason: str
    patient_id: str
    demographics: Demographics
    observations: dict[str, bool]
    consent_at: dt.datetime | None  # effectiveTime of CONSENTEMENT_OUVERTURE_DMP (None: not sent)
    author: Author


@dataclass(frozen=True)
class FindCandidates:
    """PRPA_IN201305UV02 (PDQ, TD0.5): search by demographics."""

    header: Header
    query_id: tuple[str, str]
    family: str
    given: str
    birth_date: str
    gender: str
    query: etree._Element  # queryByParameter, echoed in the answer


# --- helpers ---------------------------------------------------------------------------------


def _local(element: etree._Element) -> str:
    return str(etree.QName(element).localname)


def _nil(element: etree._Element) -> bool:
    return element.get(hv.XSI_NIL) in ("true", "1")


def _children(parent: etree._Element | None, name: str) -> Iterator[etree._Element]:
    """The HL7 children named `name`, skipping the `xsi:nil` placeholders the DMP's examples send."""
    if parent is None:
        return
    for child in parent:
        if isinstance(child.tag, str) and child.tag == hv.hl7(name) and not _nil(child):
            yield child


def _child(parent: etree._Element | None, *path: str) -> etree._Element | None:
    element = parent
    for name in path:
        element = next(_children(element, name), None)
        if element is None:
            return None
    return element


def _require(parent: etree._Element | None, *path: str) -> etree._Element:
    element = _child(parent, *path)
    if element is None:
        raise invalid(f"the message has no {'/'.join(path)}")
    return element


def _text(element: etree._Element | None) -> str:
    return "".join(element.itertext()).strip() if element is not None else ""


def _attr(element: etree._Element | None, name: str) -> str:
    # Not `element or ...`: an lxml element without children is falsy.
    return (element.get(name) or "").strip() if element is not None else ""


def _ii(element: etree._Element | None) -> tuple[str, str]:
    if element is None:
        return "", ""
    return (element.get("root") or "").strip(), (element.get("extension") or "").strip()


def read_header(message: etree._Element) -> Header:
    """The header of any HL7 V3 message, as far as it can be read (a broken message still gets
    an answer that names it)."""
    device = _child(message, "sender", "device")
    return Header(_ii(_child(message, "id")), _ii(_child(device, "id"))[0], _text(_child(device, "softwareName")))


def _root(message: etree._Element, interaction: str) -> None:
    if message.tag != hv.hl7(interaction):
        raise invalid(f"the SOAP Body holds {message.tag}, not the HL7 V3 message {{{hv.NS_HL7}}}{interaction}")
    declared = _ii(_child(message, "interactionId"))[1]
    if declared and declared != interaction:
        raise invalid(f"interactionId {declared} does not match the message {interaction}")


def _reason(control: etree._Element, allowed: tuple[str, ...]) -> str:
    codes = [_attr(r, "code") for r in _children(control, "reasonCode")]
    if not codes or not codes[0]:
        raise Hl7Error(
            hv.UNKNOWN_REASON, f"controlActProcess/reasonCode is missing (expected one of {', '.join(allowed)})"
        )
    code = codes[0]
    if code not in allowed:
        raise Hl7Error(hv.UNKNOWN_REASON, f"reasonCode {code!r} is not one of this message's ({', '.join(allowed)})")
    return code


def patient_cx(root: str, extension: str) -> str:
    """The CX patient id of an HL7 II, which must be an INS (the DMP is keyed on it)."""
    if not extension:
        raise Hl7Error(hv.INVALID_PATIENT_ID, "the patient identifier has no extension (the INS)")
    if root not in INS_ROOTS:
        raise Hl7Error(
            hv.INVALID_PATIENT_ID,
            f"the patient identifier's root {root or '(none)'} is not an INS root ({', '.join(sorted(INS_ROOTS))})",
        )
    problem = nir_problem(extension)
    if problem:
        raise Hl7Error(hv.INVALID_PATIENT_ID, f"the patient identifier is not an INS: {problem}")
    return f"{extension}^^^&{root}&ISO"


def _patient_of(patient: etree._Element) -> str:
    """patient/id: the INS among the ids (an INS-C may come along)."""
    ids = [_ii(i) for i in _children(patient, "id")]
    if not ids:
        raise invalid("the patient has no id")
    for root, extension in ids:
        if root in INS_ROOTS:
            return patient_cx(root, extension)
    return patient_cx(*ids[0])


def _name(name: etree._Element | None) -> tuple[str, tuple[str, ...], str, str]:
    """(prefix, given names, usage name, birth name) of an HL7 PN: family qualified SP is the
    usage name, BR the birth name; an unqualified family is the usage name."""
    usage = birth = prefix = ""
    given: list[str] = []
    for part in name if name is not None else ():
        if not isinstance(part.tag, str) or _nil(part):
            continue
        local, value = _local(part), _text(part)
        if local == "family":
            qualifiers = (part.get("qualifier") or "").split()
            if "BR" in qualifiers:
                birth = birth or value
            else:
                usage = usage or value
        elif local == "given" and value:
            given.append(value)
        elif local == "prefix":
            prefix = prefix or value
    return prefix, tuple(given), usage, birth


def _telecoms(parent: etree._Element) -> tuple[Telecom, ...]:
    return tuple(
        Telecom((t.get("value") or "").strip(), (t.get("use") or "").strip())
        for t in _children(parent, "telecom")
        if (t.get("value") or "").strip()
    )


def _addresses(parent: etree._Element) -> tuple[Address, ...]:
    return tuple(a for a in (_address(e) for e in _children(parent, "addr")) if a != Address())


def _relationship(element: etree._Element) -> Relationship:
    code = _child(element, "code")
    prefix, given, usage, birth = _name(_child(element, "relationshipHolder1", "name"))
    return Relationship(
        _attr(code, "code"),
        _attr(code, "codeSystem"),
        prefix,
        given,
        usage or birth,
        _addresses(element),
        _telecoms(element),
    )


def demographics(person: etree._Element) -> Demographics:
    """patientPerson: names, telecoms, sex, birth date, whether deceased, addresses, the people
    close to the patient (personalRelationship) and the birth place, as the DMP gives them back."""
    prefix, given, usage, birth = _name(_child(person, "name"))
    deceased = _attr(_child(person, "deceasedInd"), "value").lower()
    birth_place = _child(person, "birthPlace", "addr")
    return Demographics(
        usage_name=usage,
        birth_name=birth,
        given_names=given,
        prefix=prefix,
        gender=_attr(_child(person, "administrativeGenderCode"), "code"),
        birth_date=_attr(_child(person, "birthTime"), "value"),
        addresses=_addresses(person),
        telecoms=_telecoms(person),
        deceased=deceased if deceased in ("true", "false") else "",
        birth_place=Address() if birth_place is None else _address(birth_place),
        relationships=tuple(
            r for r in (_relationship(e) for e in _children(person, "personalRelationship")) if r.code or r.family
        ),
    )


def _address(addr: etree._Element) -> Address:
    def lines(name: str) -> tuple[str, ...]:
        return tuple(_text(p) for p in _children(addr, name) if _text(p))

    return Address(
        lines("streetAddressLine"),
        _text(_child(addr, "postalCode")),
        _text(_child(addr, "city")),
        _text(_child(addr, "country")),
        lines("additionalLocator"),
    )


def observations(patient: etree._Element, relation: str = "subjectOf") -> dict[str, bool]:
    """The boolean administrative observations (oppositions, consents) under `relation`."""
    found: dict[str, bool] = {}
    for subject in _children(patient, relation):
        observation = _child(subject, "administrativeObservation")
        code = _attr(_child(observation, "code"), "code")
        value = _child(observation, "value")
        if not code or value is None:
            continue
        text = (value.get("value") or "").strip().lower()
        if text not in ("true", "false"):
            raise invalid(f"administrativeObservation {code}: value {text!r} is not a boolean (BL)")
        found[code] = text == "true"
    return found


def _author(registration: etree._Element) -> Author:
    entity = _child(registration, "author", "assignedEntity")
    if entity is None:
        return Author()
    person = _child(entity, "assignedPerson", "name")
    organization = _child(entity, "representedOrganization")
    name = " ".join(p for p in (_text(_child(person, "given")), _text(_child(person, "family"))) if p)
    return Author(
        _ii(_child(entity, "id"))[1], name, _ii(_child(organization, "id"))[1], _text(_child(organization, "name"))
    )


# --- the requests ----------------------------------------------------------------------------


def parse_get_demographics(message: etree._Element) -> GetDemographics:
    _root(message, hv.GET_DEMOGRAPHICS)
    header = read_header(message)
    control = _require(message, "controlActProcess")
    reason = _reason(control, hv.READ_REASONS)
    query = _require(control, "queryByParameter")
    identifier = _require(query, "parameterList", "patientIdentifier", "value")
    return GetDemographics(header, reason, _ii(_child(query, "queryId")), patient_cx(*_ii(identifier)))


def parse_revise(message: etree._Element) -> Revise:
    _root(message, hv.PATIENT_REVISE)
    header = read_header(message)
    control = _require(message, "controlActProcess")
    reason = _reason(control, hv.REVISE_REASONS)
    registration = _require(control, "subject", "registrationRequest")
    patient = _require(registration, "subject1", "patient")
    patient_id = _patient_of(patient)
    status = _attr(_child(patient, "statusCode"), "code")
    expected = hv.STATUS_TERMINATED if reason == hv.FERM else hv.STATUS_ACTIVE
    if status and status != expected:
        raise invalid(f"reasonCode {reason} asks for patient/statusCode {expected}, not {status}")
    person = _child(patient, "patientPerson")
    closure = _child(control, "reasonOf", "detectedIssueEvent")
    closure_code = _attr(_child(closure, "code"), "code")
    if reason == hv.FERM and not closure_code:
        raise invalid(
            "a closure (FERM) needs its reason: controlActProcess/reasonOf/detectedIssueEvent/code "
            f"(e.g. {hv.CLOSURE_PATIENT_REQUEST}, code system {hv.CLOSURE_REASON_SYSTEM})"
        )
    read = demographics(person) if person is not None else None
    if reason == hv.MODIF_DATA and (read is None or not (read.usage_name or read.birth_name)):
        raise invalid("a modification (MODIF_DATA) sends the patient's data: patientPerson/name/family is missing")
    return Revise(
        header,
        reason,
        patient_id,
        status or expected,
        read,
        observations(patient),
        _author(registration),
        closure_code,
        _text(_child(closure, "text")),
    )


def parse_patient_add(message: etree._Element) -> PatientAdd:
    _root(message, hv.PATIENT_ADD)
    header = read_header(message)
    control = _require(message, "controlActProcess")
    reason = _reason(control, hv.ADD_REASONS)
    registration = _require(control, "subject", "registrationRequest")
    patient = _require(registration, "subject1", "patient")
    patient_id = _patient_of(patient)
    person = _require(patient, "patientPerson")
    found = observations(patient)
    if not found.get(hv.CONSENT_OPENING):
        raise invalid(
            f"a DMP is created with the patient's consent: administrativeObservation {hv.CONSENT_OPENING} "
            "(code system " + hv.OBSERVATION_SYSTEM + ") must be sent with the value true"
        )
    consent_at = None
    for subject in _children(patient, "subjectOf"):
        observation = _child(subject, "administrativeObservation")
        if _attr(_child(observation, "code"), "code") == hv.CONSENT_OPENING:
            consent_at = hl7_time(_attr(_child(observation, "effectiveTime"), "value"))
    return PatientAdd(header, reason, patient_id, demographics(person), found, consent_at, _author(registration))


def parse_find_candidates(message: etree._Element) -> FindCandidates:
    _root(message, hv.FIND_CANDIDATES)
    header = read_header(message)
    control = _require(message, "controlActProcess")
    event = _attr(_child(control, "code"), "code")
    if event and event != hv.PDQ_QUERY_EVENT:
        raise invalid(f"controlActProcess/code {event!r} is not {hv.PDQ_QUERY_EVENT}")
    query = _require(control, "queryByParameter")
    parameters = _require(query, "parameterList")
    name = _child(parameters, "livingSubjectName", "value")
    family = _text(_child(name, "family"))
    if not family:
        raise invalid("PDQ needs at least the family name: parameterList/livingSubjectName/value/family")
    given = _text(_child(name, "given"))
    birth = _attr(_child(parameters, "livingSubjectBirthTime", "value"), "value")
    if birth and not _is_date(birth):
        raise invalid(f"livingSubjectBirthTime {birth!r} is not a date YYYYMMDD")
    gender = _attr(_child(parameters, "livingSubjectAdministrativeGender", "value"), "code")
    return FindCandidates(header, _ii(_child(query, "queryId")), family, given, birth, gender, query)


def hl7_time(value: str) -> dt.datetime | None:
    """An HL7 TS (YYYYMMDD[HHMM[SS]], an offset or fraction after it ignored) as a UTC time, or
    None when it is not one (the kit fills this from the LPS's clock: nothing to refuse for)."""
    digits = value[: next((i for i, c in enumerate(value) if not c.isdigit()), len(value))]
    for length, pattern in ((14, "%Y%m%d%H%M%S"), (12, "%Y%m%d%H%M"), (8, "%Y%m%d")):
        if len(digits) >= length:
            try:
                return dt.datetime.strptime(digits[:length], pattern).replace(tzinfo=dt.UTC)
            except ValueError:
                return None
    return None


def _is_date(value: str) -> bool:
    try:
        dt.datetime.strptime(value[:8], "%Y%m%d")
    except ValueError:
        return False
    return len(value) >= 8 and value.isdigit()
