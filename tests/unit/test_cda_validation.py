"""The CDA layer on the 94 ANS examples, their mutations, and header <-> DocumentEntry consistency."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dmp_xds.dmp.validation.cda import CdaPolicy, CdaValidator, load_schema
from dmp_xds.dmp.validation.validators import Validators
from dmp_xds.dmp.validation.valuesets import CisisValueSets, load_cisis_value_sets
from dmp_xds.tools.client.metadata import build_submission_from_cda
from dmp_xds.xds.errors import ErrorCode, Severity
from dmp_xds.xds.model import Code, DocumentEntry
from dmp_xds.xds.validation.xds import Transaction

ANS = Path(__file__).resolve().parents[2] / ".." / "shared" / "ans-testcontenucda"
EXAMPLES = sorted((ANS / "ExemplesCDA").glob("*.xml"))
ANEST = ANS / "ExemplesCDA" / "ANEST-CR-ANEST_2022.01.xml"

# ANS publishes these examples with a NIR whose key is wrong (97 - NIR mod 97): the INS rule of
# reference/dmp.md refuses them, rightly. Expected key in the comment.
WRONG_NIR_KEY = {
    "CSE-CS24_2024.01.xml": "221042545611404",  # 83
    "CSE-CS24_2025.01.xml": "221042545611404",
    "CSE-CS8_2024.01.xml": "223042545611404",  # 82
    "CSE-CS8_2025.01.xml": "221042545611404",
    "CSE-CS9_2024.01.xml": "221042545611404",
    "CSE-CS9_2025.01.xml": "221042545611404",
    "CSE-MDE_2023.01.xml": "222127505611201",  # 47
    "OBP-SEM_2024.01.xml": "223042545611404",
    "OBP-SNE_2024.01.xml": "223042545611404",
    "SDM-MR_2024.01_nouveau-ne.xml": "224027511583555",  # 12
}
# The ANS formatCode table ASS_A11 has no entry for the BIO-TROD template 1.2.250.1.213.1.1.1.59:
# the header does not give a CI-SIS formatCode, the submitter must (submit --format-code).
NO_FORMAT_CODE_IN_ANS_TABLE = {
    f"BIO-TROD_2024.01_{n}.xml" for n in ("Angine", "COVID-19", "COVID-19_Grippe-A_Grippe-B", "Cystite")
}


@pytest.fixture(scope="module")
def value_sets() -> CisisValueSets:
    return load_cisis_value_sets(ANS / "jeuxDeValeurs")


@pytest.fixture(scope="module")
def cda(value_sets: CisisValueSets) -> CdaValidator:
    return CdaValidator(load_schema(ANS / "infrastructure" / "cda" / "CDA_extended.xsd"), value_sets)


@pytest.fixture(scope="module")
def validators(value_sets: CisisValueSets, cda: CdaValidator) -> Validators:
    return Validators(value_sets, cda)


def entry_for(data: bytes, **overrides: object) -> DocumentEntry:
    (entry,) = build_submission_from_cda(data).documents
    return replace(entry, **overrides)


def test_there_are_94_examples() -> None:
    assert len(EXAMPLES) == 94


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_ans_example_passes_the_cda_layer(cda: CdaValidator, path: Path) -> None:
    errors = cda.validate(path.read_bytes())
    if path.name in WRONG_NIR_KEY:
        assert [e.context for e in errors] == [
            f"Document: header (CI-SIS): patient INS: the key of NIR {WRONG_NIR_KEY[path.name]} is wrong "
            f"(expected {errors[0].context[-3:-1]})"
        ]
    else:
        assert errors == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_with_metadata_from_its_header_is_accepted(validators: Validators, path: Path) -> None:
    data = path.read_bytes()
    submission = build_submission_from_cda(data)
    errors = validators.metadata_errors(submission, Transaction.ITI41)
    errors += validators.document_errors(submission.documents[0], data)
    if path.name in WRONG_NIR_KEY:
        assert errors and all("NIR" in e.context for e in errors)
    elif path.name in NO_FORMAT_CODE_IN_ANS_TABLE:
        assert [e.context.split(": ", 1)[1][:30] for e in errors] == ["formatCode 'urn:ihe:iti:xds:20"]
    else:
        assert errors == []


# --- mutations ---------------------------------------------------------------------------------


def _mutated(old: bytes, new: bytes, source: Path = ANEST) -> bytes:
    data = source.read_bytes()
    assert old in data
    return data.replace(old, new, 1)


@pytest.mark.parametrize(
    "old, new, message",
    [
        (b'root="1.2.250.1.213.1.4.10"', b'root="1.2.250.1.999.1"', "recordTarget/patientRole has no INS"),
        (b"279035121518989", b"279035121518988", "the key of NIR 279035121518988 is wrong (expected 89)"),
        (b'code="77436-4"', b'code="99999-9"', "code '99999-9' (2.16.840.1.113883.6.1) is not in JDV_J07"),
        (b'<confidentialityCode code="N"', b'<confidentialityCode code="Z"', "confidentialityCode 'Z'"),
        (b'<realmCode code="FR"/>', b'<realmCode code="US"/>', "realmCode must be FR"),
        (b'<languageCode code="fr-FR"/>', b'<languageCode code="fr-FR"/><langue/>', "CDA schema: line"),
        (b"<legalAuthenticator>", b"<legalAuthenticator><foo/>", "CDA schema: line"),
    ],
)
def test_mutations_are_refused_with_their_reason(cda: CdaValidator, old: bytes, new: bytes, message: str) -> None:
    errors = cda.validate(_mutated(old, new))
    assert errors and all(e.code is ErrorCode.REPOSITORY_METADATA_ERROR and e.is_error for e in errors)
    assert any(message in e.context for e in errors), [e.context for e in errors]


def test_unsafe_and_malformed_xml_is_refused_even_under_warn(cda: CdaValidator) -> None:
    warn = replace(cda, policy=CdaPolicy.WARN)
    dtd = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><ClinicalDocument xmlns="urn:hl7-org:v3"/>'
    (error,) = warn.validate(dtd)
    assert error.is_error and "DOCTYPE" in error.context
    (error,) = warn.validate(ANEST.read_bytes()[:5000])
    assert error.is_error and "not well-formed" in error.context


def test_a_document_that_is_not_a_cda(cda: CdaValidator) -> None:
    (error,) = cda.validate(b'<report xmlns="urn:example"/>')
    assert "not a CDA document" in error.context


# --- consistency with the DocumentEntry ----------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"patient_id": "277076322082910^^^&1.2.250.1.213.1.4.8&ISO"}, "is not the INS of the CDA's recordTarget"),
        ({"unique_id": "1.2.3.4"}, "uniqueId 1.2.3.4 differs from the CDA id"),
        ({"type_code": Code("11488-4", "2.16.840.1.113883.6.1")}, "typeCode '11488-4'"),
        ({"confidentiality_codes": [Code("R", "2.16.840.1.113883.5.25")]}, "confidentialityCode: the CDA's 'N'"),
        ({"creation_time": "20200319111700"}, "creationTime 20200319111700 differs from effectiveTime"),
        ({"service_start_time": "19990101"}, "serviceStartTime 19990101 matches no serviceEvent"),
        ({"language_code": "en-US"}, "languageCode en-US differs"),
        (
            {"legal_authenticator": "899999999999^X^^^^^^^&1.2.250.1.71.4.2.1&ISO"},
            "is not the CDA's legalAuthenticator",
        ),
        ({"healthcare_facility_type_code": Code("SA03", "1.2.250.1.71.4.2.4")}, "healthcareFacilityTypeCode 'SA03'"),
        ({"practice_setting_code": Code("AMBULATOIRE", "1.2.250.1.213.1.1.4.9")}, "practiceSettingCode 'AMBULATOIRE'"),
        (
            {"format_code": Code("urn:asip:ci-sis:vsm:2012", "1.2.250.1.213.1.1.4.2.282")},
            "formatCode 'urn:asip:ci-sis:vsm:2012' (1.2.250.1.213.1.1.4.2.282) is not the one the ANS tables give",
        ),
        ({"mime_type": "application/xml"}, "mimeType 'application/xml'"),
    ],
)
def test_header_and_document_entry_mismatches(cda: CdaValidator, overrides: dict[str, object], message: str) -> None:
    data = ANEST.read_bytes()
    assert cda.validate(data, entry_for(data)) == []
    entry = entry_for(data, **overrides)
    errors = cda.validate(data, entry)
    assert len(errors) == 1, [e.context for e in errors]
    assert message in errors[0].context and errors[0].location == entry.entry_uuid
    assert errors[0].code is ErrorCode.REPOSITORY_METADATA_ERROR


def test_authors_must_be_authors_of_the_cda(cda: CdaValidator) -> None:
    data = ANEST.read_bytes()
    entry = entry_for(data)
    entry.authors[0].person = "899999999999^AUTRE^Paul^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
    (error,) = cda.validate(data, entry)
    assert "id 899999999999 (1.2.250.1.71.4.2.1) is not the id of a CDA author" in error.context


def test_warn_policy_accepts_with_warnings(cda: CdaValidator) -> None:
    data = ANEST.read_bytes()
    findings = replace(cda, policy=CdaPolicy.WARN).validate(data, entry_for(data, language_code="en-US"))
    assert [f.severity for f in findings] == [Severity.WARNING]


def test_ihe_profile_checks_schema_and_consistency_without_french_rules(cda: CdaValidator) -> None:
    ihe = CdaValidator(cda.schema, None)
    mutated = _mutated(b'root="1.2.250.1.213.1.4.10"', b'root="1.2.250.1.999.1"')
    assert ihe.validate(mutated) == []  # no INS required
    data = ANEST.read_bytes()
    (error,) = ihe.validate(data, entry_for(data, unique_id="1.2.3.4"))
    assert "uniqueId 1.2.3.4 differs" in error.context
    assert not ihe.applies_to(b"<xml>not a CDA</xml>") and ihe.applies_to(data)


def test_non_cda_documents_skip_the_layer(validators: Validators) -> None:
    data = ANEST.read_bytes()
    assert validators.document_errors(entry_for(data, mime_type="application/pdf"), b"%PDF-1.4 ...") == []
