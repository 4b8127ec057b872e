"""Read the header of a CDA R2 document (HL7 France / CI-SIS) into plain values.

Only what XDS metadata is made of is read: the CI-SIS "volet Partage de documents de santé"
maps each DocumentEntry attribute to a header element, and the comments below name the
attribute each field feeds. The body is not looked at, except for the media type of an
unstructured (`nonXMLBody`) document, which decides its formatCode.

The document comes from outside: it is parsed with the project's secure parser (no DTD, no
entities, no network).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from dmp_xds.dmp.ins import INS_ROOTS
from dmp_xds.xds.vocabulary import NS_HL7
from dmp_xds.xds.xml import parse_bytes

_NS = {"hl7": NS_HL7}


class CdaError(ValueError):
    """The bytes are not a CDA R2 ClinicalDocument."""


@dataclass(frozen=True, slots=True)
class InstanceId:
    """An HL7 v3 II: `root` (an OID) and an optional `extension`."""

    root: str
    extension: str | None = None


@dataclass(frozen=True, slots=True)
class CdaCode:
    code: str
    code_system: str
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class PersonName:
    family: str = ""
    given: tuple[str, ...] = ()
    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True, slots=True)
class CdaOrganization:
    ids: tuple[InstanceId, ...] = ()
    name: str = ""


@dataclass(frozen=True, slots=True)
class CdaAuthor:
    """`author/assignedAuthor`: a professional (person) or a device, for an organization."""

    time: str | None = None
    ids: tuple[InstanceId, ...] = ()  # assignedAuthor/id: RPPS/ADELI national id (authorPerson)
    specialty: CdaCode | None = None  # assignedAuthor/code (authorSpecialty, JDV_J01)
    person: PersonName | None = None  # assignedPerson/name
    device: str | None = None  # assignedAuthoringDevice/softwareName
    organization: CdaOrganization | None = None  # representedOrganization (authorInstitution)
    function: CdaCode | None = None  # author/functionCode (authorRole)


@dataclass(frozen=True, slots=True)
class CdaLegalAuthenticator:
    time: str | None = None
    ids: tuple[InstanceId, ...] = ()
    person: PersonName | None = None
    organization: CdaOrganization | None = None


@dataclass(frozen=True, slots=True)
class CdaServiceEvent:
    """`documentationOf/serviceEvent`: the act documented (eventCodeList, service times)."""

    code: CdaCode | None = None
    low: str | None = None  # serviceStartTime
    high: str | None = None  # serviceStopTime
    # performer/assignedEntity/representedOrganization/standardIndustryClassCode:
    # the CI-SIS practiceSettingCode (JDV_J04)
    practice_setting: CdaCode | None = None


@dataclass(frozen=True, slots=True)
class CdaPatient:
    ids: tuple[InstanceId, ...] = ()
    name: PersonName | None = None
    birth_time: str | None = None
    gender: str | None = None  # administrativeGenderCode/@code

    @property
    def ins(self) -> InstanceId | None:
        """The INS (patientId of the DMP), the first id under an INS root."""
        return next((i for i in self.ids if i.root in INS_ROOTS and i.extension), None)


@dataclass(frozen=True, slots=True)
class CdaHeader:
    document_id: InstanceId
    title: str = ""
    code: CdaCode | None = None  # typeCode (JDV_J07)
    effective_time: str | None = None  # creationTime
    confidentiality_code: CdaCode | None = None
    language_code: str | None = None
    set_id: InstanceId | None = None
    version_number: str | None = None
    template_ids: tuple[InstanceId, ...] = ()
    patient: CdaPatient = field(default_factory=CdaPatient)
    authors: tuple[CdaAuthor, ...] = ()
    legal_authenticator: CdaLegalAuthenticator | None = None
    service_events: tuple[CdaServiceEvent, ...] = ()
    healthcare_facility_type: CdaCode | None = None  # componentOf/.../healthCareFacility/code
    encounter_low: str | None = None
    encounter_high: str | None = None
    non_xml_body_media_type: str | None = None  # set for an unstructured (level 1) document

    @property
    def unique_id(self) -> str:
        """XDSDocumentEntry.uniqueId: `root`, or `root^extension` (ITI TF-3 §4.2.3.2.26)."""
        if self.document_id.extension:
            return f"{self.document_id.root}^{self.document_id.extension}"
        return self.document_id.root

    @property
    def patient_ins(self) -> InstanceId | None:
        return self.patient.ins

    @property
    def practice_setting(self) -> CdaCode | None:
        return next((e.practice_setting for e in self.service_events if e.practice_setting), None)

    @property
    def event_codes(self) -> tuple[CdaCode, ...]:
        return tuple(e.code for e in self.service_events if e.code is not None)

    @property
    def structured(self) -> bool:
        return self.non_xml_body_media_type is None


# --- reading ----------------------------------------------------------------------------------


def _all(element: etree._Element, path: str) -> list[etree._Element]:
    found: list[etree._Element] = element.xpath(path, namespaces=_NS)
    return found


def _one(element: etree._Element | None, path: str) -> etree._Element | None:
    if element is None:
        return None
    found = _all(element, path)
    return found[0] if found else None


def _attr(element: etree._Element | None, name: str) -> str | None:
    if element is None:
        return None
    value = element.get(name)
    return value.strip() if value is not None and value.strip() else None


def _text(element: etree._Element | None) -> str:
    if element is None:
        return ""
    return " ".join("".join(element.itertext()).split())


def _ii(element: etree._Element) -> InstanceId | None:
    root = _attr(element, "root")
    if root is None:  # nullFlavor ids carry no identity
        return None
    return InstanceId(root, _attr(element, "extension"))


def _ids(element: etree._Element | None) -> tuple[InstanceId, ...]:
    if element is None:
        return ()
    return tuple(i for i in (_ii(e) for e in _all(element, "hl7:id")) if i is not None)


def _code(element: etree._Element | None) -> CdaCode | None:
    code, system = _attr(element, "code"), _attr(element, "codeSystem")
    if code is None or system is None:
        return None
    return CdaCode(code, system, _attr(element, "displayName") or "")


def _name(element: etree._Element | None) -> PersonName | None:
    if element is None:
        return None
    # French names may repeat family/given with qualifiers (BR birth name, CL used name...): the
    # birth name comes first in the CI-SIS examples and is the one kept.
    family = _text(_one(element, "hl7:family"))
    given = tuple(t for t in (_text(g) for g in _all(element, "hl7:given")) if t)
    if given and family:
        given = tuple(dict.fromkeys(given))  # "Ruth" given twice (BR and CL) is one first name
    return PersonName(family, given, _text(_one(element, "hl7:prefix")), _text(_one(element, "hl7:suffix")))


def _time(element: etree._Element | None) -> str | None:
    return _attr(element, "value")


def _organization(element: etree._Element | None) -> CdaOrganization | None:
    if element is None:
        return None
    return CdaOrganization(_ids(element), _text(_one(element, "hl7:name")))


def _author(element: etree._Element) -> CdaAuthor:
    assigned = _one(element, "hl7:assignedAuthor")
    return CdaAuthor(
        time=_time(_one(element, "hl7:time")),
        ids=_ids(assigned),
        specialty=_code(_one(assigned, "hl7:code")),
        person=_name(_one(assigned, "hl7:assignedPerson/hl7:name")),
        device=_text(_one(assigned, "hl7:assignedAuthoringDevice/hl7:softwareName")) or None,
        organization=_organization(_one(assigned, "hl7:representedOrganization")),
        function=_code(_one(element, "hl7:functionCode")),
    )


def _legal_authenticator(element: etree._Element | None) -> CdaLegalAuthenticator | None:
    if element is None:
        return None
    entity = _one(element, "hl7:assignedEntity")
    return CdaLegalAuthenticator(
        time=_time(_one(element, "hl7:time")),
        ids=_ids(entity),
        person=_name(_one(entity, "hl7:assignedPerson/hl7:name")),
        organization=_organization(_one(entity, "hl7:representedOrganization")),
    )


def _service_event(element: etree._Element) -> CdaServiceEvent:
    return CdaServiceEvent(
        code=_code(_one(element, "hl7:code")),
        low=_time(_one(element, "hl7:effectiveTime/hl7:low")),
        high=_time(_one(element, "hl7:effectiveTime/hl7:high")),
        practice_setting=_code(
            _one(element, "hl7:performer/hl7:assignedEntity/hl7:representedOrganization/hl7:standardIndustryClassCode")
        ),
    )


def _patient(record_target: etree._Element | None) -> CdaPatient:
    role = _one(record_target, "hl7:patientRole")
    if role is None:
        return CdaPatient()
    patient = _one(role, "hl7:patient")
    return CdaPatient(
        ids=_ids(role),
        name=_name(_one(patient, "hl7:name")),
        birth_time=_time(_one(patient, "hl7:birthTime")),
        gender=_attr(_one(patient, "hl7:administrativeGenderCode"), "code"),
    )


_CLINICAL_DOCUMENT = f"{{{NS_HL7}}}ClinicalDocument"
_XSL_STYLESHEET = "{http://www.w3.org/1999/XSL/Transform}stylesheet"


def _clinical_document(root: etree._Element) -> etree._Element:
    if root.tag == _CLINICAL_DOCUMENT:
        return root
    # A self-presenting ("autoprésentable") CI-SIS document is an XSLT stylesheet that carries
    # the ClinicalDocument inside itself and renders it when opened in a browser.
    if root.tag == _XSL_STYLESHEET:
        embedded = next(root.iter(_CLINICAL_DOCUMENT), None)
        if embedded is not None:
            return embedded
    raise CdaError(f"not a CDA document: root element is {root.tag}")


def clinical_document(root: etree._Element) -> etree._Element:
    """The ClinicalDocument element of a parsed document (itself, or the one a self-presenting
    stylesheet carries); raise CdaError if there is none."""
    return _clinical_document(root)


def read_cda_header(xml_bytes: bytes) -> CdaHeader:
    """Parse a CDA document and return its header; raise CdaError if it is not one."""
    return header_of(_clinical_document(parse_bytes(xml_bytes)))


def header_of(root: etree._Element) -> CdaHeader:
    """The header of an already parsed ClinicalDocument element."""
    document_id = _ii(_one(root, "hl7:id")) if _one(root, "hl7:id") is not None else None
    if document_id is None:
        raise CdaError("the CDA document has no id (ClinicalDocument/id with a root)")
    set_id_element = _one(root, "hl7:setId")
    encounter = _one(root, "hl7:componentOf/hl7:encompassingEncounter")
    return CdaHeader(
        document_id=document_id,
        title=_text(_one(root, "hl7:title")),
        code=_code(_one(root, "hl7:code")),
        effective_time=_time(_one(root, "hl7:effectiveTime")),
        confidentiality_code=_code(_one(root, "hl7:confidentialityCode")),
        language_code=_attr(_one(root, "hl7:languageCode"), "code"),
        set_id=_ii(set_id_element) if set_id_element is not None else None,
        version_number=_attr(_one(root, "hl7:versionNumber"), "value"),
        template_ids=tuple(i for i in (_ii(t) for t in _all(root, "hl7:templateId")) if i is not None),
        patient=_patient(_one(root, "hl7:recordTarget")),
        authors=tuple(_author(a) for a in _all(root, "hl7:author")),
        legal_authenticator=_legal_authenticator(_one(root, "hl7:legalAuthenticator")),
        service_events=tuple(_service_event(e) for e in _all(root, "hl7:documentationOf/hl7:serviceEvent")),
        healthcare_facility_type=_code(_one(encounter, "hl7:location/hl7:healthCareFacility/hl7:code")),
        encounter_low=_time(_one(encounter, "hl7:effectiveTime/hl7:low")),
        encounter_high=_time(_one(encounter, "hl7:effectiveTime/hl7:high")),
        non_xml_body_media_type=_attr(_one(root, "hl7:component/hl7:nonXMLBody/hl7:text"), "mediaType")
        or ("text/plain" if _one(root, "hl7:component/hl7:nonXMLBody") is not None else None),
    )
