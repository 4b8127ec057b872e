"""Document relationships as pure rules: the message alone (validation/xds.py), the message
against a registry snapshot (registry/rules.py), association documentation through the codec."""

from __future__ import annotations

import pytest

from dmp_xds.storage.lifecycle import replacement_folder_associations, stored_folder_members
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.decode import decode_submit_objects_request
from dmp_xds.xds.ebrim.encode import encode_submit_objects_request
from dmp_xds.xds.errors import ErrorCode
from dmp_xds.xds.model import KIND_DOCUMENT_ENTRY, KIND_FOLDER, Submission
from dmp_xds.xds.registry.rules import RegistrySnapshot, check_against_registry
from dmp_xds.xds.validation.xds import Transaction, validate_submission
from factories import OTHER_PATIENT_ID, PATIENT_ID, make_association, make_code, make_submission, new_uuid

STORED = new_uuid()


def with_relation(association_type: str, target: str = STORED) -> Submission:
    submission = make_submission(1)
    submission.associations.append(
        make_association(submission.documents[0].entry_uuid, target, association_type=association_type, slots={})
    )
    return submission


def snapshot(objects: dict[str, tuple[str, str | None, str | None]]) -> RegistrySnapshot:
    return RegistrySnapshot(frozenset({PATIENT_ID, OTHER_PATIENT_ID}), {}, objects)


def codes(errors) -> list[ErrorCode]:
    return [e.code for e in errors]


@pytest.mark.parametrize("association_type", sorted(v.DOCUMENT_RELATIONSHIPS - {v.IS_SNAPSHOT_OF}))
def test_relationship_to_an_approved_document_of_the_patient(association_type: str) -> None:
    submission = with_relation(association_type)
    assert validate_submission(submission, Transaction.ITI42) == []
    assert (
        check_against_registry(submission, snapshot({STORED: (KIND_DOCUMENT_ENTRY, PATIENT_ID, v.STATUS_APPROVED)}))
        == []
    )


@pytest.mark.parametrize("status", [v.STATUS_DEPRECATED, v.STATUS_ARCHIVED])
def test_relationship_to_a_document_that_is_not_approved(status: str) -> None:
    found = check_against_registry(with_relation(v.APND), snapshot({STORED: (KIND_DOCUMENT_ENTRY, PATIENT_ID, status)}))
    assert codes(found) == [ErrorCode.REGISTRY_METADATA_ERROR]
    assert "only an Approved object" in found[0].context


def test_relationship_to_another_patients_document() -> None:
    found = check_against_registry(
        with_relation(v.RPLC), snapshot({STORED: (KIND_DOCUMENT_ENTRY, OTHER_PATIENT_ID, v.STATUS_APPROVED)})
    )
    assert codes(found) == [ErrorCode.PATIENT_ID_DOES_NOT_MATCH]


def test_relationship_to_a_folder() -> None:
    found = check_against_registry(
        with_relation(v.RPLC), snapshot({STORED: (KIND_FOLDER, PATIENT_ID, v.STATUS_APPROVED)})
    )
    assert codes(found) == [ErrorCode.REGISTRY_METADATA_ERROR]


def test_relationship_to_nothing() -> None:
    assert codes(check_against_registry(with_relation(v.XFRM), snapshot({}))) == [ErrorCode.UNRESOLVED_REFERENCE]


def test_relationship_source_must_be_a_new_document() -> None:
    submission = make_submission(1)
    submission.associations.append(make_association(new_uuid(), STORED, association_type=v.APND, slots={}))
    found = validate_submission(submission, Transaction.ITI42)
    assert codes(found) == [ErrorCode.REGISTRY_METADATA_ERROR]
    assert "source of a document relationship" in found[0].context


def test_relationship_target_cannot_be_the_submission_set() -> None:
    submission = make_submission(1)
    submission.associations.append(
        make_association(
            submission.documents[0].entry_uuid, submission.submission_set.entry_uuid, association_type=v.RPLC, slots={}
        )
    )
    assert codes(validate_submission(submission, Transaction.ITI42)) == [ErrorCode.REGISTRY_METADATA_ERROR]


def test_documentation_round_trips_through_the_codec() -> None:
    submission = with_relation(v.RPLC)
    submission.associations[-1].documentation = [make_code("Correction", "1.2.250.1.999.5", "Correction")]
    decoded = decode_submit_objects_request(encode_submit_objects_request(submission))
    assert decoded.problems == []
    (code,) = decoded.associations[-1].documentation
    assert (code.code, code.scheme, code.display) == ("Correction", "1.2.250.1.999.5", "Correction")
    assert validate_submission(decoded, Transaction.ITI42) == []


def test_documentation_is_refused_on_has_member() -> None:
    submission = make_submission(1)
    submission.associations[0].documentation = [make_code("Correction", "1.2.250.1.999.5", "Correction")]
    found = validate_submission(submission, Transaction.ITI42)
    assert codes(found) == [ErrorCode.REGISTRY_METADATA_ERROR]
    assert "document relationships only" in found[0].context


def test_replacement_joins_each_folder_of_its_original_once() -> None:
    submission = with_relation(v.RPLC)
    new = submission.documents[0].entry_uuid
    added = replacement_folder_associations(submission, [("F1", STORED), ("F2", STORED), ("F3", "other")])
    assert [(a.association_type, a.source, a.target) for a in added] == [
        (v.HAS_MEMBER, "F1", new),
        (v.HAS_MEMBER, "F2", new),
    ]
    submission.associations.append(make_association("F1", new, slots={}))
    assert [a.source for a in replacement_folder_associations(submission, [("F1", STORED)])] == []


def test_stored_folder_members_ignore_the_submission_set_and_new_folders() -> None:
    submission = make_submission(1, with_folder=True)
    assert stored_folder_members(submission) == {}
    submission.associations.append(make_association("F9", submission.documents[0].entry_uuid, slots={}))
    assert stored_folder_members(submission) == {"F9": [submission.documents[0].entry_uuid]}
