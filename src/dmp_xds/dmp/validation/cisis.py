"""The CI-SIS profile of XDS metadata (French DMP), on top of the IHE rules of `xds.py`.

- every patient id is an INS (`ins.py`: INS roots, NIR key);
- every coded attribute the CI-SIS binds to a value set takes its code from it: classCode (J06),
  typeCode (J07), formatCode (J10), healthcareFacilityTypeCode (J02), practiceSettingCode (J04),
  confidentialityCode (J08), authorSpecialty (J01), and the SubmissionSet's contentTypeCode (J03);
- a DocumentEntry's classCode is the one the ANS table ASS_X04 gives its typeCode (for the six
  typeCodes the ANS table lacks, rows we derived: a mismatch is then only a warning);
- an author who is a person is identified by a national id (XCN.1 with the assigning authority
  of the national professional ids in XCN.9; a patient author by their INS).

Pure: values in, errors out, all at once.
"""

from __future__ import annotations

from dmp_xds.dmp.ins import INS_ROOTS, canonical_patient_id, canonical_source_patient_id, ins_problem
from dmp_xds.dmp.validation.valuesets import CisisValueSets, ValueSet
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.errors import ErrorCode, XdsError, error, warning
from dmp_xds.xds.model import Author, Code, DocumentEntry, Submission

# Assigning authority of the national ids of health professionals (RPPS/ADELI, prefixed: the
# "identifiant national PS"), CI-SIS.
NATIONAL_PS_ID_ROOT = "1.2.250.1.71.4.2.1"
AUTHOR_PERSON_ROOTS = frozenset({NATIONAL_PS_ID_ROOT}) | INS_ROOTS


def _label(kind: str, obj_id: str, unique_id: str | None) -> str:
    return f"{kind} {obj_id}" + (f" (uniqueId {unique_id})" if unique_id else "")


def _dmp_signature_format(de: DocumentEntry) -> bool:
    """The submission set's signature as the DMP writes it (TD2.1): formatCode the XML-DSig
    namespace, which JDV_J10 lacks (it lists IHE DSG's, the classCode's value)."""
    return (
        de.format_code is not None
        and de.format_code.key() == v.SIGNATURE_FORMAT_CODE
        and de.class_code is not None
        and de.class_code.key() == v.SIGNATURE_CLASS_CODE
    )


class _Profile:
    def __init__(self, code: ErrorCode, value_sets: CisisValueSets) -> None:
        self.code = code
        self.sets = value_sets
        self.errors: list[XdsError] = []

    def add(self, context: str, location: str) -> None:
        self.errors.append(error(self.code, context, location))

    def patient(self, label: str, location: str, name: str, cx: str | None) -> None:
        if cx:
            why = ins_problem(cx)
            if why:
                self.add(f"{label}: {name} {cx} is not an INS: {why} (CI-SIS)", location)

    def coded(self, label: str, location: str, name: str, code: Code | None, value_set: ValueSet) -> None:
        if code is not None and code.code and (code.code, code.scheme) not in value_set:
            self.add(
                f"{label}: {name} {code.code!r} (codingScheme {code.scheme}) is not in the CI-SIS "
                f"value set {value_set.name}",
                location,
            )

    def author(self, label: str, location: str, author: Author) -> None:
        if author.person:
            components = author.person.split("^")
            identifier = components[0] if components else ""
            authority = components[8] if len(components) > 8 else ""
            root = authority.split("&")[1] if authority.count("&") == 2 else ""
            if not identifier or root not in AUTHOR_PERSON_ROOTS:
                self.add(
                    f"{label}: authorPerson {author.person!r} must carry a national id: XCN.1 the id, "
                    f"XCN.9 &{NATIONAL_PS_ID_ROOT}&ISO for a professional or an INS root for a "
                    "patient (CI-SIS)",
                    location,
                )
        for specialty in author.specialties:
            parts = specialty.split("^")
            code, system = parts[0], parts[2] if len(parts) > 2 else ""
            if (code, system) not in self.sets.author_specialty:
                self.add(
                    f"{label}: authorSpecialty {specialty!r} is not in the CI-SIS value set "
                    f"{self.sets.author_specialty.name} (written code^display^codeSystem)",
                    location,
                )

    def class_matches_type(self, label: str, location: str, de: DocumentEntry) -> None:
        """CI-SIS: the classCode is deduced from the typeCode (ASS_X04). A typeCode the table
        does not list is not checked here, nor a classCode outside JDV_J06 (reported apart). For
        a typeCode whose row is our derivation, not ANS's, a mismatch is only a warning: the
        derivation may be what is wrong."""
        if de.type_code is None or de.class_code is None or de.class_code.key() not in self.sets.class_code:
            return
        table = self.sets.class_by_type
        expected = table.get(de.type_code.code)
        if expected is None or de.class_code.key() == expected:
            return
        context = (
            f"{label}: classCode {de.class_code.code!r} (codingScheme {de.class_code.scheme}) does not go "
            f"with typeCode {de.type_code.code!r} (codingScheme {de.type_code.scheme}): the CI-SIS table "
            f"{table.name} gives classCode {expected[0]!r} (codingScheme {expected[1]})"
        )
        if de.type_code.code in table.derived:
            self.errors.append(
                warning(
                    self.code, context + " (a row derived by dmp-xds where the ANS table has none: accepted)", location
                )
            )
        else:
            self.add(context, location)

    def document(self, de: DocumentEntry) -> None:
        label, loc = _label("DocumentEntry", de.entry_uuid, de.unique_id), de.entry_uuid
        self.patient(label, loc, "patientId", de.patient_id)
        sets = self.sets
        self.coded(label, loc, "classCode", de.class_code, sets.class_code)
        self.coded(label, loc, "typeCode", de.type_code, sets.type_code)
        if not _dmp_signature_format(de):
            self.coded(label, loc, "formatCode", de.format_code, sets.format_code)
        self.coded(
            label, loc, "healthcareFacilityTypeCode", de.healthcare_facility_type_code, sets.healthcare_facility_type
        )
        self.coded(label, loc, "practiceSettingCode", de.practice_setting_code, sets.practice_setting)
        self.class_matches_type(label, loc, de)
        for confidentiality in de.confidentiality_codes:
            self.coded(label, loc, "confidentialityCode", confidentiality, sets.confidentiality)
        for author in de.authors:
            self.author(label, loc, author)


def canonical_patient_ids(submission: Submission, code: ErrorCode) -> list[XdsError]:
    """Rewrite the submission's patient ids to `INS^^^&OID&ISO` (CX.5 `NH` and the CX.7 date of the
    DMP's form dropped; a sourcePatientId's other CX.5, the type of a local id, dropped too): stored
    so, a document is found by the INS alone, whichever form the query uses. The errors name a
    malformed CX.5 or CX.7 (the ids concerned are left as they are)."""
    errors: list[XdsError] = []

    def read(label: str, location: str, name: str, cx: str | None) -> str | None:
        if cx is None:
            return None
        reader = canonical_source_patient_id if name == "sourcePatientId" else canonical_patient_id
        canonical, problem = reader(cx)
        if problem:
            errors.append(error(code, f"{label}: {name} {cx}: {problem} (CI-SIS)", location))
        return canonical

    ss = submission.submission_set
    if ss is not None:
        ss.patient_id = read(
            _label("SubmissionSet", ss.entry_uuid, ss.unique_id), ss.entry_uuid, "patientId", ss.patient_id
        )
    for de in submission.documents:
        label = _label("DocumentEntry", de.entry_uuid, de.unique_id)
        de.patient_id = read(label, de.entry_uuid, "patientId", de.patient_id)
        de.source_patient_id = read(label, de.entry_uuid, "sourcePatientId", de.source_patient_id)
    for folder in submission.folders:
        label = _label("Folder", folder.entry_uuid, folder.unique_id)
        folder.patient_id = read(label, folder.entry_uuid, "patientId", folder.patient_id)
    return errors


def validate_cisis(submission: Submission, value_sets: CisisValueSets, code: ErrorCode) -> list[XdsError]:
    """The CI-SIS rules of one submission; `code` is the metadata error code of the actor
    (XDSRepositoryMetadataError for ITI-41, XDSRegistryMetadataError for ITI-42)."""
    p = _Profile(code, value_sets)
    ss = submission.submission_set
    if ss is not None:
        label = _label("SubmissionSet", ss.entry_uuid, ss.unique_id)
        p.patient(label, ss.entry_uuid, "patientId", ss.patient_id)
        p.coded(label, ss.entry_uuid, "contentTypeCode", ss.content_type_code, value_sets.content_type)
        for author in ss.authors:
            p.author(label, ss.entry_uuid, author)
    for de in submission.documents:
        p.document(de)
    for folder in submission.folders:
        p.patient(
            _label("Folder", folder.entry_uuid, folder.unique_id), folder.entry_uuid, "patientId", folder.patient_id
        )
    return p.errors
