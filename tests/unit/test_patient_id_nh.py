"""The DMP's patient id `INS^^^&OID&ISO^NH^^<date>`: read as the INS alone under the CI-SIS
profile (submissions, queries, the VIHF's patient), refused by plain IHE as before."""

from __future__ import annotations

import pytest
from test_cisis_profile import TEST_INS, cisis_submission, value_sets  # noqa: F401 (a fixture)

from dmp_xds.dmp.ins import canonical_patient_id, canonical_source_patient_id
from dmp_xds.dmp.validation.validators import Validators
from dmp_xds.dmp.validation.valuesets import CisisValueSets
from dmp_xds.xds.errors import ErrorCode
from dmp_xds.xds.validation.xds import Transaction


@pytest.mark.parametrize(
    "cx",
    [
        TEST_INS + "^NH",
        TEST_INS + "^NH^^20100907",
        TEST_INS + "^NH^^20100907123045",
        TEST_INS + "^NH^",
        TEST_INS + "^NH^^",
    ],
)
def test_the_dmp_forms_name_the_ins_alone(cx: str) -> None:
    assert canonical_patient_id(cx) == (TEST_INS, None)


def test_the_canonical_form_and_shorter_ids_are_left_to_the_cx_rules() -> None:
    assert canonical_patient_id(TEST_INS) == (TEST_INS, None)
    assert canonical_patient_id("not-a-cx") == ("not-a-cx", None)


@pytest.mark.parametrize(
    "cx, component",
    [
        (TEST_INS + "^PI^^20100907", "CX.5 (identifier type) must be NH, not 'PI'"),
        (TEST_INS + "^^^20100907", "CX.5 (identifier type) must be NH, not ''"),
        (TEST_INS + "^NH^x^20100907", "CX.6 must be empty"),
        (TEST_INS + "^NH^^2010090", "CX.7 (effective date) '2010090' is not a date"),
        (TEST_INS + "^NH^^2010-09-07", "CX.7 (effective date) '2010-09-07' is not a date"),
        (TEST_INS + "^NH^^20101307", "CX.7 (effective date) '20101307' is not a valid date"),
        (TEST_INS + "^NH^^20100907256000", "is not a valid date"),
        (TEST_INS + "^NH^^20100907^x", "more than 7 components"),
    ],
)
def test_a_malformed_cx5_or_cx7_is_refused_naming_the_component(cx: str, component: str) -> None:
    canonical, problem = canonical_patient_id(cx)
    assert canonical == cx and problem is not None and component in problem


def test_cisis_stores_the_ins_alone(value_sets: CisisValueSets) -> None:  # noqa: F811
    submission = cisis_submission(patient_id=TEST_INS + "^NH^^20100907", source_patient_id=TEST_INS + "^NH")
    assert submission.submission_set is not None
    submission.submission_set.patient_id = TEST_INS + "^NH^^20100907123045"
    validators = Validators(value_sets)
    assert [e for e in validators.metadata_errors(submission, Transaction.ITI42) if e.is_error] == []
    de = submission.documents[0]
    assert (de.patient_id, de.source_patient_id, submission.submission_set.patient_id) == (TEST_INS,) * 3
    assert validators.patient_id(TEST_INS + "^NH") == TEST_INS


def test_cisis_refuses_a_malformed_cx7_with_the_metadata_error_code(value_sets: CisisValueSets) -> None:  # noqa: F811
    submission = cisis_submission(patient_id=TEST_INS + "^NH^^2010")
    (problem,) = Validators(value_sets).metadata_errors(submission, Transaction.ITI41)
    assert problem.code is ErrorCode.REPOSITORY_METADATA_ERROR and "patientId" in problem.context
    assert "CX.7 (effective date) '2010'" in problem.context


def test_plain_ihe_refuses_the_nh_form_as_before(value_sets: CisisValueSets) -> None:  # noqa: F811
    submission = cisis_submission(patient_id=TEST_INS + "^NH^^20100907")
    errors = Validators().metadata_errors(submission, Transaction.ITI42)
    assert any("4 components" in e.context for e in errors), errors
    assert submission.documents[0].patient_id == TEST_INS + "^NH^^20100907"
    assert Validators().patient_id(TEST_INS + "^NH") == TEST_INS + "^NH"


def test_a_local_source_patient_id_keeps_its_id_without_its_type(value_sets: CisisValueSets) -> None:  # noqa: F811
    """The DMP's TD2.1 example: sourcePatientId is the software's own id of the patient, typed PI."""
    local = "0456789999^^^&1.2.250.1.999.1.1.7898.2&ISO"
    submission = cisis_submission(patient_id=TEST_INS + "^NH^^20100907", source_patient_id=local + "^PI")
    assert [e for e in Validators(value_sets).metadata_errors(submission, Transaction.ITI41) if e.is_error] == []
    assert submission.documents[0].source_patient_id == local
    assert canonical_source_patient_id(local + "^PI^x")[1] is not None  # something after CX.5: not that form
    assert canonical_source_patient_id(TEST_INS + "^NH^^20100907") == (TEST_INS, None)
    other = cisis_submission(patient_id=TEST_INS + "^PI")
    assert any("must be NH" in e.context for e in Validators(value_sets).metadata_errors(other, Transaction.ITI41))
