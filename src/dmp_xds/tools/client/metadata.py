"""Build the XDS metadata of a one-document submission (ITI-41) as model objects.

Pure functions: values in, a `Submission` out. Encoding it to ebRIM is the ebrim package's job
(`dmp_xds.xds.ebrim.encode.encode_submit_objects_request`).

The submission is what a Document Source sends for a new document: one DocumentEntry, one
SubmissionSet, and the HasMember association between them with SubmissionSetStatus=Original.
Object ids are symbolic (`Document01`...): the registry gives them UUIDs. uniqueIds are fresh
OIDs under `2.25` (ITU-T X.667: an OID made of a UUID), times are UTC DTM.

Defaults that are not read from the document, and their status:
- classCode: the one the ANS table ASS_X04-CorrespondanceType-Classe (shipped in `dmp_xds/data`,
  with six rows for typeCodes newer than the table derived by us and marked so in its header)
  gives the typeCode, as the DMP requires; `10` / `1.2.250.1.213.1.1.4.1` "Compte rendu" (JDV_J06)
  for a typeCode the table does not list.
- formatCode from the ANS tables shipped in `dmp_xds/data`: by the body's media type for an
  unstructured CDA (ASS_A12: `urn:ihe:iti:xds-sd:pdf:2008`...), by the templateId of the content
  specification for a structured one (ASS_A11: `urn:asip:ci-sis:cr-anest:2020`...). A CDA that
  neither table knows gets `urn:ihe:iti:xds:2017:mimeTypeSufficient` (IHE), which is not a CI-SIS
  code: pass `format_code`.
- SubmissionSet contentTypeCode (CI-SIS JDV_J03, shipped in `dmp_xds/data`): the document's
  healthcareFacilityTypeCode when JDV_J03 has it (the sector codes of TRE_R02 are in both), else
  `97` "Type d'activité indifférencié" (TRE_R209), unless `content_type_code` is given.
- sourceId: `DEFAULT_SOURCE_ID`, a fixed OID of this reference client.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from dmp_xds.dmp.cda.header import CdaCode, CdaHeader, CdaOrganization, InstanceId, PersonName, read_cda_header
from dmp_xds.dmp.cda.timestamps import hl7_ts_to_dtm
from dmp_xds.dmp.validation.valuesets import load_class_and_content_type_tables, load_format_mappings
from dmp_xds.xds.model import Association, Author, Code, DocumentEntry, LocalizedString, Submission, SubmissionSet
from dmp_xds.xds.vocabulary import HAS_MEMBER, SLOT_SUBMISSION_SET_STATUS

DOCUMENT_ID = "Document01"
SUBMISSION_SET_ID = "SubmissionSet01"
ASSOCIATION_ID = "Association01"

IHE_FORMAT_CODES = "1.3.6.1.4.1.19376.1.2.3"
# Display names as JDV_J10 gives them (the code comes from the ANS table ASS_A12).
FORMAT_CDA_PDF = Code("urn:ihe:iti:xds-sd:pdf:2008", IHE_FORMAT_CODES, "Document à corps non structuré en Pdf/A-1")
FORMAT_CDA_TEXT = Code("urn:ihe:iti:xds-sd:text:2008", IHE_FORMAT_CODES, "Document à corps non structuré en texte brut")
FORMAT_MIME_TYPE_SUFFICIENT = Code("urn:ihe:iti:xds:2017:mimeTypeSufficient", IHE_FORMAT_CODES, "mimeType Sufficient")
DEFAULT_CLASS_CODE = Code("10", "1.2.250.1.213.1.1.4.1", "Compte rendu")
DEFAULT_CONTENT_TYPE_CODE = Code("97", "1.2.250.1.213.2.2", "Type d'activité indifférencié")
DEFAULT_CONFIDENTIALITY = Code("N", "2.16.840.1.113883.5.25", "Normal")
DEFAULT_LANGUAGE = "fr-FR"
# A stable OID for this client: 2.25 + the UUID (v5) of its name, so every run sends the same.
DEFAULT_SOURCE_ID = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:dmp-xds:reference-client').int}"

# Identifier type codes of the French national identifiers (CI-SIS XCN.13 / XON.7).
_ID_TYPE_BY_ROOT = {"1.2.250.1.71.4.2.1": "IDNPS", "1.2.250.1.71.4.2.2": "IDNST"}


# --- small value helpers ----------------------------------------------------------------------


def parse_code(text: str) -> Code:
    """`code^codingScheme^display` (display optional) as given on the command line."""
    parts = text.split("^")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"a code is written code^codingScheme[^display], got {text!r}")
    return Code(parts[0], parts[1], "^".join(parts[2:]))


def new_unique_id() -> str:
    return f"2.25.{uuid.uuid4().int}"


def utc_dtm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def _esc(text: str) -> str:
    """HL7 v2 escaping of the delimiters that may appear in a name."""
    out = text.replace("\\", "\\E\\")
    for char, escape in (("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\")):
        out = out.replace(char, escape)
    return out


def cx(value: str, assigning_authority: str) -> str:
    """A patient id in CX form: `value^^^&OID&ISO`."""
    return f"{value}^^^&{assigning_authority}&ISO"


def xcn(identifier: InstanceId | None, name: PersonName | None) -> str:
    """An XCN (authorPerson, legalAuthenticator): `id^family^given^^suffix^prefix^^^&OID&ISO^...`."""
    components = [""] * 13
    if identifier is not None and identifier.extension:
        components[0] = _esc(identifier.extension)
        components[8] = f"&{identifier.root}&ISO"
        components[12] = _ID_TYPE_BY_ROOT.get(identifier.root, "")
        if name is not None:
            components[9] = "D"  # name type: display name (CI-SIS)
    if name is not None:
        components[1] = _esc(name.family)
        components[2] = _esc(name.given[0]) if name.given else ""
        components[3] = _esc(" ".join(name.given[1:]))
        components[4] = _esc(name.suffix)
        components[5] = _esc(name.prefix)
    return "^".join(components).rstrip("^")


def xon(organization: CdaOrganization) -> str:
    """An XON (authorInstitution): `name^^^^^&OID&ISO^type^^^id`."""
    identifier = next((i for i in organization.ids if i.extension), None)
    if identifier is None:
        return _esc(organization.name)
    components = [
        _esc(organization.name),
        "",
        "",
        "",
        "",
        f"&{identifier.root}&ISO",
        _ID_TYPE_BY_ROOT.get(identifier.root, ""),
        "",
        "",
        _esc(identifier.extension or ""),
    ]
    return "^".join(components)


def coded_string(code: CdaCode) -> str:
    """authorSpecialty / authorRole as CI-SIS writes them: `code^display^codeSystem`."""
    return f"{_esc(code.code)}^{_esc(code.display_name)}^{code.code_system}"


def _model_code(code: CdaCode | None) -> Code | None:
    return None if code is None else Code(code.code, code.code_system, code.display_name)


def _codes(value: Code | Sequence[Code] | None) -> list[Code]:
    if value is None:
        return []
    return [value] if isinstance(value, Code) else list(value)


def _strings(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [v for v in value if v]


# --- the builders ----------------------------------------------------------------------------


def build_submission(
    document: bytes,
    *,
    patient_id: str,
    mime_type: str,
    title: str,
    class_code: Code,
    type_code: Code,
    format_code: Code,
    confidentiality_code: Code | Sequence[Code],
    healthcare_facility_type_code: Code,
    practice_setting_code: Code,
    author_person: str | None = None,
    author_institution: str | Sequence[str] | None = None,
    author_role: str | Sequence[str] | None = None,
    author_specialty: str | Sequence[str] | None = None,
    source_id: str = DEFAULT_SOURCE_ID,
    content_type_code: Code | None = None,
    event_codes: Sequence[Code] = (),
    comments: str | None = None,
    creation_time: str | None = None,
    service_start_time: str | None = None,
    service_stop_time: str | None = None,
    language_code: str = DEFAULT_LANGUAGE,
    legal_authenticator: str | None = None,
    source_patient_id: str | None = None,
    source_patient_info: Sequence[str] = (),
    unique_id: str | None = None,
    submission_set_title: str | None = None,
    submission_time: datetime | None = None,
) -> Submission:
    """One DocumentEntry for `document`, its SubmissionSet and their HasMember association."""
    now = submission_time or datetime.now(UTC)
    confidentiality = _codes(confidentiality_code)
    if not confidentiality:
        raise ValueError("a document needs at least one confidentialityCode")
    authors: list[Author] = []
    if author_person or author_institution:
        authors.append(
            Author(
                person=author_person,
                institutions=_strings(author_institution),
                roles=_strings(author_role),
                specialties=_strings(author_specialty),
            )
        )
    entry = DocumentEntry(
        entry_uuid=DOCUMENT_ID,
        unique_id=unique_id or new_unique_id(),
        patient_id=patient_id,
        mime_type=mime_type,
        title=[LocalizedString(title, language_code)] if title else [],
        comments=[LocalizedString(comments, language_code)] if comments else [],
        class_code=class_code,
        type_code=type_code,
        format_code=format_code,
        healthcare_facility_type_code=healthcare_facility_type_code,
        practice_setting_code=practice_setting_code,
        confidentiality_codes=confidentiality,
        event_codes=list(event_codes),
        authors=authors,
        creation_time=creation_time or utc_dtm(now),
        service_start_time=service_start_time,
        service_stop_time=service_stop_time,
        # The repository computes both again and refuses a mismatch (XDSNonIdenticalHash/Size):
        # sending them lets it check that the bytes arrived intact.
        hash=hashlib.sha1(document).hexdigest(),
        size=len(document),
        language_code=language_code,
        legal_authenticator=legal_authenticator,
        source_patient_id=source_patient_id or patient_id,
        source_patient_info=list(source_patient_info),
    )
    submission_set = SubmissionSet(
        entry_uuid=SUBMISSION_SET_ID,
        unique_id=new_unique_id(),
        source_id=source_id,
        patient_id=patient_id,
        submission_time=utc_dtm(now),
        title=[LocalizedString(submission_set_title, language_code)] if submission_set_title else [],
        content_type_code=replace(
            content_type_code or default_content_type_code(healthcare_facility_type_code), classification_id=None
        ),
        authors=[replace(a) for a in authors],
    )
    association = Association(
        entry_uuid=ASSOCIATION_ID,
        association_type=HAS_MEMBER,
        source=SUBMISSION_SET_ID,
        target=DOCUMENT_ID,
        slots={SLOT_SUBMISSION_SET_STATUS: ["Original"]},
    )
    return Submission(
        submission_set=submission_set,
        documents=[entry],
        associations=[association],
        submission_set_count=1,
    )


def default_class_code(type_code: Code | None) -> Code:
    """The classCode ASS_X04 gives this typeCode (see the module docstring)."""
    by_type, j06, _ = load_class_and_content_type_tables()
    target = by_type.get(type_code.code) if type_code is not None else None
    return Code(target[0], target[1], j06.display(*target)) if target else DEFAULT_CLASS_CODE


def default_content_type_code(healthcare_facility_type_code: Code) -> Code:
    """The SubmissionSet contentTypeCode for a document from this kind of facility (module docstring)."""
    _, _, j03 = load_class_and_content_type_tables()
    if healthcare_facility_type_code.key() in j03:
        return Code(
            healthcare_facility_type_code.code,
            healthcare_facility_type_code.scheme,
            j03.display(*healthcare_facility_type_code.key()),
        )
    return DEFAULT_CONTENT_TYPE_CODE


def default_format_code(header: CdaHeader) -> Code:
    """The formatCode the ANS tables give this CDA (see the module docstring)."""
    by_template, by_media_type, j10 = load_format_mappings()
    media_type = header.non_xml_body_media_type
    if media_type is not None:
        target = by_media_type.get(media_type)
    else:
        target = next((t for t in (by_template.get(i.root) for i in header.template_ids) if t), None)
    if target is None:
        return FORMAT_MIME_TYPE_SUFFICIENT
    return Code(target[0], target[1], j10.display(*target))


def _source_patient_info(header: CdaHeader, patient_id: str) -> list[str]:
    patient = header.patient
    info = [f"PID-3|{patient_id}"]
    if patient.name is not None:
        given = patient.name.given[0] if patient.name.given else ""
        info.append(f"PID-5|{_esc(patient.name.family)}^{_esc(given)}^^^^^L")
    if patient.birth_time:
        info.append(f"PID-7|{patient.birth_time[:8]}")
    if patient.gender:
        info.append(f"PID-8|{patient.gender}")
    return info


def metadata_from_cda(header: CdaHeader) -> dict[str, Any]:
    """The `build_submission` arguments that the CDA header provides."""
    values: dict[str, Any] = {
        "mime_type": "text/xml",
        "title": header.title,
        "unique_id": header.unique_id,
        "class_code": default_class_code(_model_code(header.code)),
        "format_code": default_format_code(header),
        "confidentiality_code": _model_code(header.confidentiality_code) or DEFAULT_CONFIDENTIALITY,
        "language_code": header.language_code or DEFAULT_LANGUAGE,
        "creation_time": hl7_ts_to_dtm(header.effective_time),
        "event_codes": [c for c in (_model_code(e) for e in header.event_codes) if c is not None],
    }
    if header.code is not None:
        values["type_code"] = _model_code(header.code)
    if header.healthcare_facility_type is not None:
        values["healthcare_facility_type_code"] = _model_code(header.healthcare_facility_type)
    if header.practice_setting is not None:
        values["practice_setting_code"] = _model_code(header.practice_setting)
    ins = header.patient_ins
    if ins is not None and ins.extension:
        values["patient_id"] = cx(ins.extension, ins.root)
        values["source_patient_info"] = _source_patient_info(header, values["patient_id"])
    if header.service_events:
        values["service_start_time"] = hl7_ts_to_dtm(header.service_events[0].low)
        values["service_stop_time"] = hl7_ts_to_dtm(header.service_events[0].high)
    if header.authors:
        author = header.authors[0]
        identifier = next((i for i in author.ids if i.extension), None)
        if author.person is not None or identifier is not None:
            values["author_person"] = xcn(identifier, author.person)
        if author.organization is not None and author.organization.name:
            # XON.1, the organization's name, is required (ITI TF-3 Table 4.2.3.1.7-2): a CDA
            # organization without a name gives no authorInstitution (the authorPerson stays).
            values["author_institution"] = xon(author.organization)
        if author.specialty is not None:
            values["author_specialty"] = coded_string(author.specialty)
        if author.function is not None:
            values["author_role"] = coded_string(author.function)
    legal = header.legal_authenticator
    if legal is not None:
        values["legal_authenticator"] = xcn(next((i for i in legal.ids if i.extension), None), legal.person)
    return values


def build_submission_from_cda(cda_bytes: bytes, **option_overrides: Any) -> Submission:
    """`build_submission` for a CDA document: the header gives the metadata, the options
    (same names as `build_submission`'s, None meaning "not given") override it."""
    header = read_cda_header(cda_bytes)
    values = metadata_from_cda(header)
    values.update({k: v for k, v in option_overrides.items() if v is not None})
    if values.get("patient_id") and option_overrides.get("source_patient_info") is None:
        # PID-3 must name the patient the document is submitted for, even when overridden.
        values["source_patient_info"] = _source_patient_info(header, values["patient_id"])
    missing = [
        name
        for name in ("patient_id", "type_code", "healthcare_facility_type_code", "practice_setting_code")
        if values.get(name) is None
    ]
    if missing:
        raise ValueError(f"the CDA header does not give {', '.join(missing)}: pass them as options")
    return build_submission(cda_bytes, **values)
