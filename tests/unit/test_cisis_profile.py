"""CI-SIS profile: INS (roots, NIR key, Corsica), value sets, author national ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmp_xds.dmp.ins import ins_problem, nir_key, nir_problem
from dmp_xds.dmp.validation.cisis import validate_cisis
from dmp_xds.dmp.validation.valuesets import (
    ANS_FILES,
    CisisValueSets,
    ValueSetError,
    load_cisis_value_sets,
    read_mapping,
    read_value_set,
)
from dmp_xds.xds.errors import ErrorCode, Severity
from dmp_xds.xds.model import Code, Submission
from factories import make_author, make_document_entry, make_submission, make_submission_set

ANS_VALUE_SETS = Path(__file__).resolve().parents[2] / ".." / "shared" / "ans-testcontenucda" / "jeuxDeValeurs"
TEST_INS = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO"  # the ANS examples' test patient
RPPS_AUTHOR = "801234567897^MULLER^Charles^^^Dr^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
CODE = ErrorCode.REGISTRY_METADATA_ERROR


@pytest.fixture(scope="module")
def value_sets() -> CisisValueSets:
    return load_cisis_value_sets(ANS_VALUE_SETS)


def cisis_submission(**entry: object) -> Submission:
    """A submission whose every value is CI-SIS valid, with DocumentEntry overrides."""
    values: dict[str, object] = dict(
        patient_id=TEST_INS,
        class_code=Code("10", "1.2.250.1.213.1.1.4.1"),
        type_code=Code("11488-4", "2.16.840.1.113883.6.1"),
        format_code=Code("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3"),
        healthcare_facility_type_code=Code("SA01", "1.2.250.1.71.4.2.4"),
        practice_setting_code=Code("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9"),
        confidentiality_codes=[Code("N", "2.16.840.1.113883.5.25")],
        authors=[make_author(person=RPPS_AUTHOR, specialties=["G15_10/SM26^Médecin^1.2.250.1.213.1.1.4.5"])],
    )
    values.update(entry)
    submission = make_submission(documents=[make_document_entry(**values)])
    assert submission.submission_set is not None
    submission.submission_set.patient_id = TEST_INS
    submission.submission_set.authors = []
    return submission


# --- INS -----------------------------------------------------------------------------------------


def test_nir_key_and_corsica() -> None:
    assert nir_key("2790351215189") == 89
    # Corsica: 2A counts as 19, 2B as 18 before the modulo.
    assert nir_key("180052A012345") == 97 - int("1800519012345") % 97
    assert nir_key("180052B012345") == 97 - int("1800518012345") % 97
    assert nir_problem(f"180052A012345{nir_key('180052A012345'):02d}") is None
    assert "wrong" in (nir_problem(f"180052B012345{nir_key('180052A012345'):02d}") or "")


@pytest.mark.parametrize(
    "cx, why",
    [
        (TEST_INS, None),
        ("279035121518989^^^&1.2.250.1.213.1.4.8&ISO", None),
        ("279035121518988^^^&1.2.250.1.213.1.4.10&ISO", "key of NIR 279035121518988 is wrong (expected 89)"),
        ("27903512151898^^^&1.2.250.1.213.1.4.10&ISO", "is not a NIR"),
        ("279035121518989^^^&1.2.250.1.999&ISO", "is not an INS root"),
        ("279035121518989^^^&1.2.250.1.213.1.4.2&ISO", "is not an INS root"),  # INS-C: no longer accepted
    ],
)
def test_ins(cx: str, why: str | None) -> None:
    problem = ins_problem(cx)
    assert (problem is None) if why is None else (why in (problem or ""))


# --- value set files --------------------------------------------------------------------------


def test_value_sets_load_ans_files_and_ours(value_sets: CisisValueSets) -> None:
    assert ("11488-4", "2.16.840.1.113883.6.1") in value_sets.type_code
    assert ("MASQUE_PS", "1.2.250.1.213.1.1.4.13") in value_sets.confidentiality
    assert ("10", "1.2.250.1.213.1.1.4.1") in value_sets.class_code  # shipped (JDV_J06)
    assert ("urn:asip:ci-sis:cr-anest:2020", "1.2.250.1.213.1.1.4.2.282") in value_sets.format_code
    assert value_sets.format_by_template.get("1.2.250.1.213.1.1.1.40") == (
        "urn:asip:ci-sis:cr-anest:2020",
        "1.2.250.1.213.1.1.4.2.282",
    )


def test_a_missing_value_set_file_is_an_error_naming_it(tmp_path: Path) -> None:
    for name in list(ANS_FILES.values())[1:]:
        (tmp_path / name).write_bytes((ANS_VALUE_SETS / name).read_bytes())
    with pytest.raises(ValueSetError, match=ANS_FILES["author_specialty"]):
        load_cisis_value_sets(tmp_path)
    with pytest.raises(ValueSetError, match="DMP_XDS_VALUE_SETS"):
        load_cisis_value_sets(tmp_path / "nowhere")


def test_an_empty_value_set_file_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "JDV_empty.xml"
    empty.write_text(
        '<RetrieveValueSetResponse xmlns="urn:ihe:iti:svs:2008"><ValueSet id="1.2"/></RetrieveValueSetResponse>'
    )
    with pytest.raises(ValueSetError, match="no concept"):
        read_value_set(empty)


# --- the profile -------------------------------------------------------------------------------


def test_a_cisis_submission_is_valid(value_sets: CisisValueSets) -> None:
    assert validate_cisis(cisis_submission(), value_sets, CODE) == []


@pytest.mark.parametrize(
    "attribute, value, message",
    [
        (
            "class_code",
            Code("11", "2.16.840.1.113883.6.1"),
            "classCode '11' (codingScheme 2.16.840.1.113883.6.1) is not in",
        ),
        ("type_code", Code("99999-9", "2.16.840.1.113883.6.1"), "typeCode '99999-9'"),
        ("format_code", Code("urn:ihe:iti:xds:2017:mimeTypeSufficient", "1.3.6.1.4.1.19376.1.2.3"), "formatCode"),
        ("healthcare_facility_type_code", Code("SA99", "1.2.250.1.71.4.2.4"), "healthcareFacilityTypeCode 'SA99'"),
        ("practice_setting_code", Code("NOWHERE", "1.2.250.1.213.1.1.4.9"), "practiceSettingCode 'NOWHERE'"),
        (
            "confidentiality_codes",
            [Code("N", "2.16.840.1.113883.5.25"), Code("SECRET", "1.2.250.1.213.1.1.4.13")],
            "confidentialityCode 'SECRET'",
        ),
        (
            "patient_id",
            "1234567890123^^^&1.2.250.1.213.1.4.8&ISO",
            "patientId 1234567890123^^^&1.2.250.1.213.1.4.8&ISO is not an INS",
        ),
        ("authors", [make_author(person="^MARTIN^Jeanne", specialties=[])], "must carry a national id"),
        (
            "authors",
            [make_author(person="12345^MARTIN^^^^^^^&1.2.250.1.999&ISO", specialties=[])],
            "must carry a national id",
        ),
        (
            "authors",
            [make_author(person=RPPS_AUTHOR, specialties=["SM99^Inconnue^1.2.250.1.71.4.2.5"])],
            "authorSpecialty 'SM99^Inconnue^1.2.250.1.71.4.2.5' is not in",
        ),
    ],
)
def test_each_rule_names_the_object_and_attribute(
    value_sets: CisisValueSets, attribute: str, value: object, message: str
) -> None:
    submission = cisis_submission(**{attribute: value})
    errors = validate_cisis(submission, value_sets, CODE)
    (entry,) = submission.documents
    assert len(errors) == 1, errors
    assert errors[0].code is CODE and errors[0].location == entry.entry_uuid
    assert message in errors[0].context and entry.entry_uuid in errors[0].context


def test_all_errors_at_once_and_the_submission_set_patient(value_sets: CisisValueSets) -> None:
    submission = cisis_submission(type_code=Code("X", "1.2.3"), class_code=Code("Y", "1.2.3"))
    assert submission.submission_set is not None
    submission.submission_set.patient_id = "279035121518988^^^&1.2.250.1.213.1.4.10&ISO"
    errors = validate_cisis(submission, value_sets, ErrorCode.REPOSITORY_METADATA_ERROR)
    assert len(errors) == 3
    assert {e.code for e in errors} == {ErrorCode.REPOSITORY_METADATA_ERROR}
    assert any(e.location == submission.submission_set.entry_uuid and "SubmissionSet" in e.context for e in errors)


# --- classCode from typeCode (ASS_X04), contentTypeCode (JDV_J03) ------------------------------


@pytest.mark.parametrize(
    "type_code, class_code",
    [
        (
            Code("11488-4", "2.16.840.1.113883.6.1"),
            Code("10", "1.2.250.1.213.1.1.4.1"),
        ),  # CR de consultation: compte rendu
        (Code("34133-9", "2.16.840.1.113883.6.1"), Code("11", "1.2.250.1.213.1.1.4.1")),  # synthèse d'épisode: synthèse
        (
            Code("57833-6", "2.16.840.1.113883.6.1"),
            Code("42", "1.2.250.1.213.1.1.4.1"),
        ),  # prescription de produits de santé
        (Code("CERT_DECL", "1.2.250.1.213.1.1.4.12"), Code("52", "1.2.250.1.213.1.1.4.1")),  # certificat, déclaration
        (Code("34120-6", "2.16.840.1.113883.6.1"), Code("11", "1.2.250.1.213.1.1.4.1")),  # bilan: a derived row
    ],
)
def test_the_class_code_the_ans_table_gives_the_type_code_is_accepted(
    value_sets: CisisValueSets, type_code: Code, class_code: Code
) -> None:
    assert validate_cisis(cisis_submission(type_code=type_code, class_code=class_code), value_sets, CODE) == []


def test_a_class_code_that_does_not_go_with_the_type_code_is_refused(value_sets: CisisValueSets) -> None:
    submission = cisis_submission(
        type_code=Code("34133-9", "2.16.840.1.113883.6.1"), class_code=Code("10", "1.2.250.1.213.1.1.4.1")
    )
    (error,) = validate_cisis(submission, value_sets, CODE)
    (entry,) = submission.documents
    assert error.code is CODE and error.location == entry.entry_uuid
    assert error.context == (
        f"DocumentEntry {entry.entry_uuid} (uniqueId {entry.unique_id}): classCode '10' (codingScheme "
        "1.2.250.1.213.1.1.4.1) does not go with typeCode '34133-9' (codingScheme 2.16.840.1.113883.6.1): the "
        "CI-SIS table xds-class-by-type-x04 gives classCode '11' (codingScheme 1.2.250.1.213.1.1.4.1)"
    )


def test_every_jdv_j07_type_code_has_a_class_code(value_sets: CisisValueSets) -> None:
    # A typeCode ANS adds to JDV_J07 needs its ASS_X04 row (or a derived one, until ANS's).
    types = {code for code, _ in value_sets.type_code.codes}
    assert types - set(value_sets.class_by_type.targets) == set()
    assert value_sets.class_by_type.derived == {"28617-9", "34120-6", "60280-5", "78341-5", "89233-1", "101881-1"}
    assert value_sets.class_by_type.get("89233-1") == ("10", "1.2.250.1.213.1.1.4.1")  # CR de grossesse
    assert all(value_sets.class_by_type.get(code) in value_sets.class_code for code in types)


def test_a_class_code_against_a_derived_row_is_only_a_warning(value_sets: CisisValueSets) -> None:
    # ANS's 2024-02-23 table has no row for 101881-1 (carte d'implant): ours says 52, derived.
    submission = cisis_submission(
        type_code=Code("101881-1", "2.16.840.1.113883.6.1"), class_code=Code("10", "1.2.250.1.213.1.1.4.1")
    )
    (warned,) = validate_cisis(submission, value_sets, CODE)
    assert warned.severity is Severity.WARNING and warned.code is CODE
    assert "does not go with typeCode '101881-1'" in warned.context and "gives classCode '52'" in warned.context
    assert warned.context.endswith("(a row derived by dmp-xds where the ANS table has none: accepted)")
    submission.documents[0].class_code = Code("52", "1.2.250.1.213.1.1.4.1")
    assert validate_cisis(submission, value_sets, CODE) == []


def test_an_association_table_row_is_ans_or_marked_derived(tmp_path: Path) -> None:
    table = tmp_path / "x04.tsv"
    table.write_text("# comment\nA\t10\t1.2\nB\t11\t1.2\tderived\n", encoding="utf-8")
    mapping = read_mapping(table)
    assert (mapping.targets, mapping.derived) == ({"A": ("10", "1.2"), "B": ("11", "1.2")}, frozenset({"B"}))
    table.write_text("A\t10\t1.2\tguessed\n", encoding="utf-8")
    with pytest.raises(ValueSetError, match="x04.tsv:1: .*'derived'"):
        read_mapping(table)


def test_the_factories_content_type_code_is_in_jdv_j03(value_sets: CisisValueSets) -> None:
    # The test submissions keep the factory's SubmissionSet contentTypeCode: 04 of TRE_R209.
    submission = cisis_submission()
    assert submission.submission_set is not None
    assert submission.submission_set.content_type_code == make_submission_set().content_type_code
    assert submission.submission_set.content_type_code.key() == ("04", "1.2.250.1.213.2.2")
    assert validate_cisis(submission, value_sets, CODE) == []


@pytest.mark.parametrize(
    "content_type",
    [
        Code("EXP_PATIENT", "1.2.250.1.213.1.1.4.6"),
        Code("SA07", "1.2.250.1.71.4.2.4"),
        Code("05", "1.2.250.1.213.1.6.1.128"),
        Code("97", "1.2.250.1.213.2.2"),
    ],
)
def test_content_type_codes_of_jdv_j03_are_accepted(value_sets: CisisValueSets, content_type: Code) -> None:
    submission = cisis_submission()
    assert submission.submission_set is not None
    submission.submission_set.content_type_code = content_type
    assert validate_cisis(submission, value_sets, CODE) == []


@pytest.mark.parametrize(
    "content_type",
    [
        Code("04", "1.2.250.1.213.1.1.4.12"),  # the right code in another code system
        Code("10", "1.2.250.1.213.1.1.4.1"),  # a classCode is not a contentTypeCode
        Code("SA01", "1.2.250.1.71.4.2.4"),  # a healthcare facility type JDV_J03 does not list
    ],
)
def test_a_content_type_code_outside_jdv_j03_is_refused(value_sets: CisisValueSets, content_type: Code) -> None:
    submission = cisis_submission()
    ss = submission.submission_set
    assert ss is not None
    ss.content_type_code = content_type
    (error,) = validate_cisis(submission, value_sets, CODE)
    assert error.code is CODE and error.location == ss.entry_uuid
    assert error.context == (
        f"SubmissionSet {ss.entry_uuid} (uniqueId {ss.unique_id}): contentTypeCode "
        f"{content_type.code!r} (codingScheme {content_type.scheme}) is not in the CI-SIS value "
        "set xds-content-type-code-j03"
    )
