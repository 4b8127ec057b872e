"""XDS message rules (validation/xds.py): one test per rule family, every error at once."""

from __future__ import annotations

from dmp_xds.errors import ErrorCode
from dmp_xds.validation.xds import Transaction, validate_submission
from factories import OTHER_PATIENT_ID, make_code, make_document_entry, make_submission


def _codes(errors):
    return [e.code for e in errors]


def test_a_complete_submission_is_valid():
    assert validate_submission(make_submission(2, with_folder=True), Transaction.ITI42) == []


def test_every_missing_attribute_is_reported_with_its_object():
    submission = make_submission(1)
    de = submission.documents[0]
    de.class_code = None
    de.creation_time = None
    de.mime_type = None
    errors = validate_submission(submission, Transaction.ITI42)
    assert _codes(errors) == [ErrorCode.REGISTRY_METADATA_ERROR] * 3
    contexts = " | ".join(e.context for e in errors)
    for name in ("classCode", "creationTime", "mimeType"):
        assert name in contexts
    assert all(de.unique_id in e.context for e in errors)


def test_repository_needs_no_hash_size_or_repository_id_but_registry_does():
    submission = make_submission(1)
    de = submission.documents[0]
    de.hash = de.size = de.repository_unique_id = None
    assert validate_submission(submission, Transaction.ITI41) == []
    assert len(validate_submission(submission, Transaction.ITI42)) == 3


def test_iti41_metadata_errors_carry_the_repository_code():
    submission = make_submission(1)
    submission.documents[0].type_code = None
    assert _codes(validate_submission(submission, Transaction.ITI41)) == [ErrorCode.REPOSITORY_METADATA_ERROR]


def test_malformed_values():
    submission = make_submission(1)
    de = submission.documents[0]
    de.patient_id = de.patient_id.replace("&ISO", "")
    submission.submission_set.patient_id = de.patient_id
    de.creation_time = "2024-03-12"
    de.hash = "xyz"
    de.type_code = make_code(scheme="")
    errors = validate_submission(submission, Transaction.ITI42)
    text = " | ".join(e.context for e in errors)
    assert "patientId" in text and "creationTime" in text and "hash" in text and "typeCode" in text


def test_patient_mismatch_inside_the_message():
    submission = make_submission(1)
    submission.documents[0].patient_id = OTHER_PATIENT_ID
    assert _codes(validate_submission(submission, Transaction.ITI42)) == [ErrorCode.PATIENT_ID_DOES_NOT_MATCH]


def test_duplicate_unique_id_in_message():
    submission = make_submission(2)
    submission.documents[1].unique_id = submission.documents[0].unique_id
    assert _codes(validate_submission(submission, Transaction.ITI42)) == [ErrorCode.DUPLICATE_UNIQUE_ID_IN_MESSAGE]


def test_exactly_one_submission_set():
    submission = make_submission(1)
    submission.submission_set = None
    submission.submission_set_count = 0
    errors = validate_submission(submission, Transaction.ITI42)
    assert any("exactly one SubmissionSet" in e.context for e in errors)


def test_document_must_be_member_of_the_submission_set():
    submission = make_submission(1)
    submission.associations.clear()
    errors = validate_submission(submission, Transaction.ITI42)
    assert any("not a member" in e.context for e in errors)


def test_decoder_problems_become_errors():
    submission = make_submission(1)
    submission.problems.append("Classification urn:uuid:x classifies an unknown object")
    errors = validate_submission(submission, Transaction.ITI42)
    assert [e.context for e in errors] == ["Classification urn:uuid:x classifies an unknown object"]


def test_single_valued_slot_with_several_values():
    de = make_document_entry()
    de.multi_valued_slots["creationTime"] = 2
    errors = validate_submission(make_submission(1, documents=[de]), Transaction.ITI42)
    assert any("creationTime is single-valued" in e.context for e in errors)
