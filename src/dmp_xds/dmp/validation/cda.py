"""The CDA layer: a `text/xml` document submitted to the repository, checked before it is stored.

1. well-formed and safe XML (the project's parser: no DTD, no entities, no network);
2. valid against the CDA R2 schema with the French extensions (`DMP_XDS_CDA_SCHEMA`, compiled
   once at start-up);
3. the header rules of the CI-SIS "structuration minimale" that XDS metadata rest on (our own
   checks, with the CI-SIS value sets under the CI-SIS profile), and, when `DMP_XDS_SCHEMATRONS`
   is set, the ANS schematrons themselves (`ans_schematrons.py`: structuration minimale, the
   body profiles IHE / modèles de contenus / modèles ANS, and the document's volet; an assert
   with role "warning" stays a warning);
4. the DocumentEntry says what the header says: patient, uniqueId, typeCode, confidentiality,
   creation and service times, authors, legal authenticator, language, facility, practice
   setting, formatCode.

Everything is reported at once. Under the "warn" policy the findings of steps 2 to 4 become
warnings (the document is accepted); XML that cannot be parsed safely is always refused.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from dmp_xds.dmp.cda.header import CdaError, CdaHeader, InstanceId, clinical_document, header_of
from dmp_xds.dmp.cda.timestamps import hl7_ts_to_dtm
from dmp_xds.dmp.ins import INS_ROOTS, nir_problem
from dmp_xds.dmp.validation.ans_schematrons import AnsSchematrons
from dmp_xds.dmp.validation.schematron import SaxonDocument, SchematronError, parse_document, parse_file
from dmp_xds.dmp.validation.valuesets import CisisValueSets, ValueSet
from dmp_xds.xds.errors import ErrorCode, Severity, XdsError
from dmp_xds.xds.model import Code, DocumentEntry
from dmp_xds.xds.vocabulary import NS_HL7
from dmp_xds.xds.xml import UnsafeXmlError, parse_bytes

CDA_MIME_TYPE = "text/xml"
MAX_SCHEMA_ERRORS = 10  # a broken document can give thousands; the first ones say what is wrong
MAX_SCHEMATRON_FINDINGS = 30  # likewise for the ANS schematrons' failed asserts

# ClinicalDocument/typeId of every CDA R2 document.
TYPE_ID_ROOT = "2.16.840.1.113883.1.3"
TYPE_ID_EXTENSION = "POCD_HD000040"
# Header templateIds of the CI-SIS: HL7 France header, and CI-SIS conformity.
TEMPLATE_HL7_FRANCE = "2.16.840.1.113883.2.8.2.1"
TEMPLATE_CISIS = "1.2.250.1.213.1.1.1.1"
_NS = {"hl7": NS_HL7}


class CdaPolicy(enum.StrEnum):
    REJECT = "reject"  # a finding refuses the submission (XDSRepositoryMetadataError)
    WARN = "warn"  # findings are returned as warnings, the document is stored
    OFF = "off"  # no CDA layer


class SchemaError(Exception):
    """The configured CDA schema cannot be loaded."""


def load_schema(path: str | Path) -> etree.XMLSchema:
    try:
        return etree.XMLSchema(etree.parse(str(path)))
    except OSError as exc:
        raise SchemaError(f"CDA schema {path} cannot be read: {exc}") from exc
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        raise SchemaError(f"CDA schema {path} is not a usable XML schema: {exc}") from exc


@dataclass(frozen=True)
class CdaValidator:
    """Built once at start-up; `validate` is then pure per document (lxml schemas are thread-safe
    for validation)."""

    schema: etree.XMLSchema | None
    value_sets: CisisValueSets | None  # None: plain IHE (no INS, no CI-SIS value sets)
    policy: CdaPolicy = CdaPolicy.REJECT
    schematrons: AnsSchematrons | None = None  # None: no schematron layer (DMP_XDS_SCHEMATRONS unset)

    def validate(self, data: bytes, entry: DocumentEntry | None = None) -> list[XdsError]:
        """Every finding on one document (and its DocumentEntry, when given)."""
        return self.check(data, entry)[0]

    def check(
        self, data: bytes, entry: DocumentEntry | None = None, path: Path | None = None
    ) -> tuple[list[XdsError], etree._Element | None]:
        """`validate`, and the document's tree as `parse_bytes` made it (None: not acceptable XML),
        for the later steps that read the same document (the signature's digest). `path`: a file
        holding exactly `data` (the repository's temporary file), which Saxon then reads."""
        where = entry.entry_uuid if entry is not None else ""
        subject = f"Document {entry.entry_uuid} (uniqueId {entry.unique_id})" if entry is not None else "Document"
        try:
            root = parse_bytes(data)
        except UnsafeXmlError as exc:
            return [XdsError(ErrorCode.REPOSITORY_METADATA_ERROR, f"{subject}: {exc}", where)], None
        try:
            document = clinical_document(root)
            header = header_of(document)
        except CdaError as exc:
            return self._findings(subject, where, [str(exc)]), root
        problems = self.schema_problems(document)
        problems += header_problems(header, document, self.value_sets)
        if entry is not None:
            problems += consistency_problems(header, entry, self.value_sets)
        findings = self._findings(subject, where, problems) + self.schematron_findings(
            data, root, header, subject, where, path
        )
        return findings, root

    def schematron_findings(
        self, data: bytes, root: etree._Element, header: CdaHeader, subject: str, where: str, path: Path | None = None
    ) -> list[XdsError]:
        """The ANS schematrons' failed asserts on a document parse_bytes accepted (`data`, its
        tree `root`, maybe its file `path`), each with its schematron, rule and XPath."""
        if self.schematrons is None:
            return []
        template_ids = [(t.root, t.extension) for t in header.template_ids]
        _, findings = self.schematrons.validate(saxon_document(data, root, path), template_ids)
        out = []
        for finding in findings[:MAX_SCHEMATRON_FINDINGS]:
            warning = finding.is_warning or self.policy is CdaPolicy.WARN
            rule = f", rule {finding.rule}" if finding.rule else ""
            at = f", at {finding.location}" if finding.location else ""
            out.append(
                XdsError(
                    ErrorCode.REPOSITORY_METADATA_ERROR,
                    f"{subject}: ANS schematron {finding.schema}{rule}{at}: {finding.message}",
                    where,
                    Severity.WARNING if warning else Severity.ERROR,
                )
            )
        if len(findings) > MAX_SCHEMATRON_FINDINGS:
            out.append(
                XdsError(
                    ErrorCode.REPOSITORY_METADATA_ERROR,
                    f"{subject}: ANS schematrons: {len(findings) - MAX_SCHEMATRON_FINDINGS} more findings",
                    where,
                    Severity.WARNING if self.policy is CdaPolicy.WARN else Severity.ERROR,
                )
            )
        return out

    def applies_to(self, data: bytes) -> bool:
        """Under the IHE profile only CDA documents go through the layer; the DMP takes nothing
        but CDA R2, so under the CI-SIS profile every text/xml document does."""
        if self.value_sets is not None:
            return True
        head = data[:4096]
        return b"ClinicalDocument" in head and NS_HL7.encode() in head

    def schema_problems(self, document: etree._Element) -> list[str]:
        if self.schema is None:
            return []
        tree = document.getroottree() if document.getparent() is None else etree.ElementTree(copy.deepcopy(document))
        if self.schema.validate(tree):
            return []
        errors = list(self.schema.error_log)
        found = [f"CDA schema: line {e.line}: {e.message}" for e in errors[:MAX_SCHEMA_ERRORS]]
        if len(errors) > MAX_SCHEMA_ERRORS:
            found.append(f"CDA schema: {len(errors) - MAX_SCHEMA_ERRORS} more errors")
        return found

    def _findings(self, subject: str, where: str, problems: list[str]) -> list[XdsError]:
        severity = Severity.WARNING if self.policy is CdaPolicy.WARN else Severity.ERROR
        return [XdsError(ErrorCode.REPOSITORY_METADATA_ERROR, f"{subject}: {p}", where, severity) for p in problems]


# --- header rules ----------------------------------------------------------------------------


def saxon_document(data: bytes, root: etree._Element, path: Path | None = None) -> SaxonDocument | bytes:
    """Saxon's tree of a document `parse_bytes` accepted (`root`): parsed from the bytes the
    client sent, Saxon's parser refusing any DOCTYPE as parse_bytes does (so no entity or
    external subset can be opened, whatever encoding the two parsers read), which saves lxml
    writing the tree back (1.4 ms of CPU for 433 kB). Given `path`, the file that holds those
    bytes, Saxon reads it where it is rather than from a copy written for it. If Saxon cannot
    read those bytes, what lxml writes back from its tree: the document parse_bytes checked, in
    UTF-8."""
    try:
        return parse_file(path) if path is not None else parse_document(data)
    except SchematronError:
        return bytes(etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True))


def _has(document: etree._Element, path: str) -> bool:
    return bool(document.xpath(path, namespaces=_NS))


def _in(value_set: ValueSet, code: str, system: str) -> bool:
    return (code, system) in value_set


def header_problems(header: CdaHeader, document: etree._Element, value_sets: CisisValueSets | None) -> list[str]:
    """The header elements XDS metadata are made of, present and well formed (CI-SIS structuration
    minimale); their codes in the CI-SIS value sets when `value_sets` is given."""
    out: list[str] = []
    if not _has(document, f"hl7:typeId[@root='{TYPE_ID_ROOT}' and @extension='{TYPE_ID_EXTENSION}']"):
        out.append(f"header: typeId must be root {TYPE_ID_ROOT}, extension {TYPE_ID_EXTENSION}")
    if header.code is None:
        out.append("header: ClinicalDocument/code (the document type, XDS typeCode) needs @code and @codeSystem")
    if not header.title:
        out.append("header: ClinicalDocument/title is empty")
    effective = header.effective_time or ""
    if not effective:
        out.append("header: ClinicalDocument/effectiveTime (XDS creationTime) is missing")
    if header.confidentiality_code is None:
        out.append("header: confidentialityCode needs @code and @codeSystem")
    if not header.language_code:
        out.append("header: languageCode is missing")
    if not header.patient.ids:
        out.append("header: recordTarget/patientRole has no id (XDS patientId)")
    if not header.authors:
        out.append("header: the document has no author")
    for number, author in enumerate(header.authors, 1):
        if not author.time:
            out.append(f"header: author {number} has no time")
        if not author.ids:
            out.append(f"header: author {number} has no assignedAuthor/id")
    if not _has(document, "hl7:custodian/hl7:assignedCustodian/hl7:representedCustodianOrganization"):
        out.append("header: custodian/assignedCustodian/representedCustodianOrganization is missing")
    if value_sets is not None:
        out += _cisis_header_problems(header, document, value_sets, effective)
    return out


def _cisis_header_problems(
    header: CdaHeader, document: etree._Element, sets: CisisValueSets, effective: str
) -> list[str]:
    out: list[str] = []
    if not _has(document, "hl7:realmCode[@code='FR']"):
        out.append("header (CI-SIS): realmCode must be FR")
    roots = {t.root for t in header.template_ids}
    for template, name in ((TEMPLATE_HL7_FRANCE, "HL7 France"), (TEMPLATE_CISIS, "CI-SIS")):
        if template not in roots:
            out.append(f"header (CI-SIS): templateId {template} ({name} header conformance) is missing")
    if effective and (len(effective.split("+")[0].split("-")[0]) < 12 or not any(s in effective for s in "+-")):
        out.append(
            f"header (CI-SIS): effectiveTime {effective} must be precise to the minute at least, with its UTC offset"
        )
    if header.set_id is None or not header.version_number:
        out.append("header (CI-SIS): setId and versionNumber are required")
    if header.legal_authenticator is None:
        out.append("header (CI-SIS): legalAuthenticator is required")
    if not header.service_events:
        out.append("header (CI-SIS): documentationOf/serviceEvent is required")
    ins = header.patient.ins
    if ins is None:
        out.append(f"header (CI-SIS): recordTarget/patientRole has no INS (id under {', '.join(sorted(INS_ROOTS))})")
    elif ins.extension and (why := nir_problem(ins.extension)):
        out.append(f"header (CI-SIS): patient INS: {why}")
    code = header.code
    if code is not None and not _in(sets.type_code, code.code, code.code_system):
        out.append(f"header (CI-SIS): code {code.code!r} ({code.code_system}) is not in {sets.type_code.name}")
    conf = header.confidentiality_code
    if conf is not None and not _in(sets.confidentiality, conf.code, conf.code_system):
        out.append(
            f"header (CI-SIS): confidentialityCode {conf.code!r} ({conf.code_system}) is not in "
            f"{sets.confidentiality.name}"
        )
    facility = header.healthcare_facility_type
    if facility is None:
        out.append(
            "header (CI-SIS): componentOf/encompassingEncounter/location/healthCareFacility/code "
            "(XDS healthcareFacilityTypeCode) is required"
        )
    elif not _in(sets.healthcare_facility_type, facility.code, facility.code_system):
        out.append(
            f"header (CI-SIS): healthCareFacility/code {facility.code!r} ({facility.code_system}) is not "
            f"in {sets.healthcare_facility_type.name}"
        )
    practice = header.practice_setting
    if practice is not None and not _in(sets.practice_setting, practice.code, practice.code_system):
        out.append(
            f"header (CI-SIS): standardIndustryClassCode {practice.code!r} ({practice.code_system}) is "
            f"not in {sets.practice_setting.name}"
        )
    for number, author in enumerate(header.authors, 1):
        specialty = author.specialty
        if specialty is not None and not _in(sets.author_specialty, specialty.code, specialty.code_system):
            out.append(
                f"header (CI-SIS): author {number} assignedAuthor/code {specialty.code!r} "
                f"({specialty.code_system}) is not in {sets.author_specialty.name}"
            )
    return out


# --- the DocumentEntry says what the header says ------------------------------------------------


def _same_time(metadata: str | None, header_ts: str | None) -> bool:
    """Equal once the header time is in UTC, up to the shorter of the two precisions."""
    header_dtm = hl7_ts_to_dtm(header_ts)
    if not metadata or not header_dtm:
        return metadata == header_dtm or not header_dtm
    shorter = min(len(metadata), len(header_dtm))
    return metadata[:shorter] == header_dtm[:shorter]


def _xcn_id(xcn: str | None) -> tuple[str, str] | None:
    """(id, assigning authority OID) of an XCN, None without an id."""
    if not xcn:
        return None
    components = xcn.split("^")
    authority = components[8].split("&") if len(components) > 8 else []
    root = authority[1] if len(authority) == 3 else ""
    return (components[0], root) if components[0] else None


def _ids(ids: tuple[InstanceId, ...]) -> set[tuple[str, str]]:
    return {(i.extension, i.root) for i in ids if i.extension}


def _code_text(code: Code) -> str:
    return f"{code.code!r} ({code.scheme})"


def consistency_problems(header: CdaHeader, de: DocumentEntry, value_sets: CisisValueSets | None) -> list[str]:
    out: list[str] = []
    if de.mime_type != CDA_MIME_TYPE:
        out.append(f"mimeType {de.mime_type!r}: a CDA document is {CDA_MIME_TYPE}")
    if de.unique_id != header.unique_id:
        out.append(f"uniqueId {de.unique_id} differs from the CDA id {header.unique_id} (ClinicalDocument/id)")
    out += _patient_problems(header, de, value_sets is not None)
    code = header.code
    if (
        code is not None
        and de.type_code is not None
        and (de.type_code.code, de.type_code.scheme) != (code.code, code.code_system)
    ):
        out.append(
            f"typeCode {_code_text(de.type_code)} differs from ClinicalDocument/code {code.code!r} ({code.code_system})"
        )
    conf = header.confidentiality_code
    if conf is not None and (conf.code, conf.code_system) not in {c.key() for c in de.confidentiality_codes}:
        out.append(
            f"confidentialityCode: the CDA's {conf.code!r} ({conf.code_system}) is not among the "
            "DocumentEntry's confidentialityCodes"
        )
    if not _same_time(de.creation_time, header.effective_time):
        out.append(
            f"creationTime {de.creation_time} differs from effectiveTime {header.effective_time} "
            f"(in UTC: {hl7_ts_to_dtm(header.effective_time)})"
        )
    lows = [e.low for e in header.service_events if e.low]
    if de.service_start_time and lows and not any(_same_time(de.service_start_time, low) for low in lows):
        out.append(
            f"serviceStartTime {de.service_start_time} matches no serviceEvent/effectiveTime/low ({', '.join(lows)})"
        )
    highs = [e.high for e in header.service_events if e.high]
    if de.service_stop_time and highs and not any(_same_time(de.service_stop_time, high) for high in highs):
        out.append(
            f"serviceStopTime {de.service_stop_time} matches no serviceEvent/effectiveTime/high ({', '.join(highs)})"
        )
    if header.language_code and de.language_code and de.language_code.lower() != header.language_code.lower():
        out.append(f"languageCode {de.language_code} differs from the CDA's {header.language_code}")
    author_ids = set().union(*(_ids(a.ids) for a in header.authors)) if header.authors else set()
    for author in de.authors:
        person = _xcn_id(author.person)
        if person is not None and person not in author_ids:
            out.append(f"authorPerson {author.person!r}: id {person[0]} ({person[1]}) is not the id of a CDA author")
    legal = _xcn_id(de.legal_authenticator)
    if legal is not None and (header.legal_authenticator is None or legal not in _ids(header.legal_authenticator.ids)):
        out.append(f"legalAuthenticator {de.legal_authenticator!r} is not the CDA's legalAuthenticator")
    facility = header.healthcare_facility_type
    if (
        facility is not None
        and de.healthcare_facility_type_code is not None
        and (de.healthcare_facility_type_code.key() != (facility.code, facility.code_system))
    ):
        out.append(
            f"healthcareFacilityTypeCode {_code_text(de.healthcare_facility_type_code)} differs from "
            f"healthCareFacility/code {facility.code!r} ({facility.code_system})"
        )
    practice = header.practice_setting
    if (
        practice is not None
        and de.practice_setting_code is not None
        and (de.practice_setting_code.key() != (practice.code, practice.code_system))
    ):
        out.append(
            f"practiceSettingCode {_code_text(de.practice_setting_code)} differs from the CDA's "
            f"standardIndustryClassCode {practice.code!r} ({practice.code_system})"
        )
    if value_sets is not None and de.format_code is not None:
        out += _format_problems(header, de.format_code, value_sets)
    return out


def _patient_problems(header: CdaHeader, de: DocumentEntry, cisis: bool) -> list[str]:
    if not de.patient_id:
        return []
    ident, _, rest = de.patient_id.partition("^^^&")
    root = rest.partition("&")[0]
    if cisis:
        ins = header.patient.ins
        if ins is None or (ins.extension, ins.root) != (ident, root):
            shown = f"{ins.extension} ({ins.root})" if ins is not None else "none"
            return [f"patientId {de.patient_id} is not the INS of the CDA's recordTarget ({shown})"]
        return []
    # IHE: the CDA may carry several ids; the one in the patientId's domain must be the same.
    same_domain = [i for i in header.patient.ids if i.root == root]
    if same_domain and all(i.extension != ident for i in same_domain):
        return [
            f"patientId {de.patient_id} differs from the CDA's recordTarget id in that domain "
            f"({', '.join(str(i.extension) for i in same_domain)})"
        ]
    return []


def expected_format_codes(header: CdaHeader, value_sets: CisisValueSets) -> set[tuple[str, str]]:
    """The formatCodes the ANS tables give this document: by body media type (ASS_A12) for an
    unstructured one, by templateId (ASS_A11) for a structured one; empty when none applies."""
    if header.non_xml_body_media_type is not None:
        target = value_sets.format_by_media_type.get(header.non_xml_body_media_type)
        return {target} if target else set()
    return {t for t in (value_sets.format_by_template.get(i.root) for i in header.template_ids) if t}


def _format_problems(header: CdaHeader, format_code: Code, value_sets: CisisValueSets) -> list[str]:
    expected = expected_format_codes(header, value_sets)
    if expected and format_code.key() not in expected:
        wanted = ", ".join(f"{c} ({s})" for c, s in sorted(expected))
        return [f"formatCode {_code_text(format_code)} is not the one the ANS tables give this document: {wanted}"]
    return []
