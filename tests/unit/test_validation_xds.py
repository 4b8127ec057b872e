"""XDS message rules (validation/xds.py): one test per rule family, every error at once."""

from __future__ import annotations

import pytest

from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.errors import ErrorCode
from dmp_xds.xds.model import Author
from dmp_xds.xds.validation.xds import Transaction, validate_submission
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


# --- the rules of the ITI TF-3 audit (README, "Validation and profiles"): one valid and one
# --- invalid case each, asserting the code and the location.

LONG = "x" * 257


def _only_error(submission, transaction=Transaction.ITI42):
    errors = validate_submission(submission, transaction)
    assert len(errors) == 1, [e.context for e in errors]
    return errors[0]


@pytest.mark.parametrize(
    "attribute, good, bad, message",
    [
        ("mime_type", "text/plain; charset=UTF-8", "text", "mimeType 'text' is malformed: not a MIME type"),
        ("language_code", "fr-FR", "fr_FR", "languageCode 'fr_FR' is malformed: not a language tag"),
        (
            "legal_authenticator",
            "^Welby^Marcus",
            "^^Marcus",
            "legalAuthenticator (XCN) '^^Marcus' is malformed: needs an",
        ),
        (
            "legal_authenticator",
            "801234567897^MULLER^^^^^^^&1.2.250.1.71.4.2.1&ISO",
            "801234567897^MULLER^^^^^^^1.2.250.1.71.4.2.1",
            "XCN.9 (assigning authority) must be &OID&ISO",
        ),
        ("unique_id", "1.2.3.4^" + "e" * 16, "1.2.3.4^" + "e" * 17, "extension longer than 16 characters"),
        ("unique_id", "1." + "2" * 62, "1." + "2" * 63, "is not an OID"),
        (
            "source_patient_info",
            ["PID-3|" + "x" * 250],
            ["PID-3|" + LONG],
            "a sourcePatientInfo slot value is 263 characters long, more than the 256",
        ),
    ],
)
def test_document_entry_formats(attribute, good, bad, message):
    submission = make_submission(1)
    de = submission.documents[0]
    setattr(de, attribute, good)
    assert validate_submission(submission, Transaction.ITI42) == []
    setattr(de, attribute, bad)
    error = _only_error(submission)
    assert error.code is ErrorCode.REGISTRY_METADATA_ERROR and error.location == de.entry_uuid
    assert message in error.context, error.context


@pytest.mark.parametrize(
    "institution, message",
    [
        ("Hôpital^^^^^^^^^1.2.3.4.5", None),  # XON.10 an OID: no assigning authority needed
        ("Clinique^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1120456789", None),  # CI-SIS form (XON.7 IDNST)
        ("^^^^^^^^^1.2.3.4.5", "XON.1 (organization name) is required"),
        ("Hôpital^^^^^^^^^H42", "XON.10 'H42' is not an OID: XON.6 must give its assigning authority"),
        ("Hôpital^^^^^1.2.3&ISO^^^^H42", "XON.6 (assigning authority) must be &OID&ISO"),
        ("Hôpital^Paris", "only XON.1, XON.6, XON.7 and XON.10 may be valued, not XON.2"),
    ],
)
def test_author_institution_is_an_xon(institution, message):
    submission = make_submission(1)
    de = submission.documents[0]
    de.authors = [Author(person="^Welby^Marcus", institutions=[institution])]
    if message is None:
        assert validate_submission(submission, Transaction.ITI42) == []
        return
    error = _only_error(submission)
    assert error.code is ErrorCode.REGISTRY_METADATA_ERROR and error.location == de.entry_uuid
    assert f"authorInstitution (XON) {institution!r} is malformed: {message}" in error.context


def test_submission_set_authors_and_intended_recipients():
    submission = make_submission(1)
    ss = submission.submission_set
    ss.authors = [Author(person="^Welby^Marcus")]
    ss.intended_recipients = ["Hôpital^^^^^^^^^1.2.3.4.5|^Welby^Marcus", "|^Doe^John"]
    assert validate_submission(submission, Transaction.ITI42) == []
    ss.authors = [Author(person="^^Marcus")]
    ss.intended_recipients = ["^^^^^^^^^1.2.3.4.5"]
    errors = validate_submission(submission, Transaction.ITI42)
    assert [e.location for e in errors] == [ss.entry_uuid] * 2
    assert "authorPerson (XCN) '^^Marcus' is malformed" in errors[0].context
    assert "intendedRecipient organization (XON) '^^^^^^^^^1.2.3.4.5' is malformed" in errors[1].context


def test_slot_values_of_every_object_are_at_most_256_characters():
    submission = make_submission(1, with_folder=True)
    ss, folder, de = submission.submission_set, submission.folders[0], submission.documents[0]
    assoc = submission.associations[0]
    ss.extra_slots["note"] = ["y" * 256]
    assert validate_submission(submission, Transaction.ITI42) == []
    ss.extra_slots["note"] = [LONG]
    folder.extra_slots["note"] = [LONG]
    de.type_code.scheme = "1." + "2" * 300  # the codingScheme slot of a classification
    assoc.slots["note"] = [LONG]
    errors = validate_submission(submission, Transaction.ITI42)
    locations = {e.location for e in errors if "more than the 256 ebRIM allows" in e.context}
    assert locations == {ss.entry_uuid, folder.entry_uuid, de.entry_uuid, assoc.entry_uuid}
    assert all(e.code is ErrorCode.REGISTRY_METADATA_ERROR for e in errors)


def _has_member(submission):
    ss = submission.submission_set
    return next(
        a
        for a in submission.associations
        if a.association_type == v.HAS_MEMBER
        and a.source == ss.entry_uuid
        and a.target == submission.documents[0].entry_uuid
    )


def test_the_submission_sets_has_member_to_a_new_document_says_original():
    submission = make_submission(1)
    link = _has_member(submission)
    assert link.slots[v.SLOT_SUBMISSION_SET_STATUS] == ["Original"]
    del link.slots[v.SLOT_SUBMISSION_SET_STATUS]
    error = _only_error(submission)
    assert error.code is ErrorCode.REGISTRY_METADATA_ERROR and error.location == link.entry_uuid
    assert "needs a SubmissionSetStatus slot (Original)" in error.context
    link.slots[v.SLOT_SUBMISSION_SET_STATUS] = ["Reference"]
    error = _only_error(submission)
    assert (
        error.location == link.entry_uuid
        and "SubmissionSetStatus Reference names a registered document" in error.context
    )
    link.slots[v.SLOT_SUBMISSION_SET_STATUS] = ["Copy"]
    assert "SubmissionSetStatus must be Original or Reference" in _only_error(submission).context


def test_association_ends_are_objects_of_the_message_or_uuids():
    submission = make_submission(1)
    link = _has_member(submission)
    link.target = "urn:uuid:5b0c5b3e-3a6f-4f43-9d5c-7b7e1f0c2a11"  # a registered document: registry's question
    link.slots[v.SLOT_SUBMISSION_SET_STATUS] = ["Reference"]
    errors = validate_submission(submission, Transaction.ITI42)
    assert all(e.code is not ErrorCode.UNRESOLVED_REFERENCE for e in errors)
    link.target = "Document99"
    errors = [e for e in validate_submission(submission, Transaction.ITI42) if e.code is ErrorCode.UNRESOLVED_REFERENCE]
    assert [(e.location, e.context.split(": ", 1)[1]) for e in errors] == [
        (link.entry_uuid, "targetObject Document99 is neither an object of the message nor a UUID (urn:uuid:...)")
    ]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda s: setattr(s.documents[0], "object_type", "urn:uuid:00000000-0000-0000-0000-000000000000"),
            "is not a DocumentEntry type",
        ),
        (lambda s: setattr(s.documents[0], "size", -1), "size -1 is negative"),
        (lambda s: setattr(s.documents[0], "hash", "ABC"), "hash 'ABC' is not a SHA-1 in hexadecimal"),
        (
            lambda s: setattr(s.documents[0], "service_start_time", "202403121"),
            "serviceStartTime '202403121' is not a DTM",
        ),
        (lambda s: setattr(s.documents[0], "creation_time", "20241312"), "creationTime '20241312' is not a DTM"),
        (lambda s: setattr(s.documents[0], "repository_unique_id", "repo"), "repositoryUniqueId 'repo' is malformed"),
    ],
)
def test_document_entry_attribute_rules(mutate, message):
    submission = make_submission(1)
    mutate(submission)
    error = _only_error(submission)
    assert error.code is ErrorCode.REGISTRY_METADATA_ERROR and error.location == submission.documents[0].entry_uuid
    assert message in error.context


def test_association_type_must_be_an_xds_one():
    submission = make_submission(1)
    link = _has_member(submission)
    link.association_type = "urn:oasis:names:tc:ebxml-regrep:AssociationType:Contains"
    errors = validate_submission(submission, Transaction.ITI42)
    assert (errors[0].location, errors[0].code) == (link.entry_uuid, ErrorCode.REGISTRY_METADATA_ERROR)
    assert "is not an XDS association type" in errors[0].context


def test_an_author_needs_a_person_or_an_institution():
    submission = make_submission(1)
    de = submission.documents[0]
    de.authors = [Author(institutions=["Hôpital^^^^^^^^^1.2.3.4.5"])]
    assert validate_submission(submission, Transaction.ITI42) == []
    de.authors = [Author(roles=["Médecin"])]
    error = _only_error(submission)
    assert (
        error.location == de.entry_uuid and "an author has neither authorPerson nor authorInstitution" in error.context
    )
