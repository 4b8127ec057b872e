"""Document relationships and folders in ITI-42, against a real server on SQLite and PostgreSQL:
RPLC / XFRM_RPLC deprecate the original and join its folders, APND / XFRM / signs leave it
Approved, a deprecated document can be neither replaced again nor related to, patients must
match, folders are created empty or full, get members later and keep lastUpdateTime current,
association documentation is kept and given back."""

from __future__ import annotations

import time

import pytest
from lxml import etree

import soap_messages as soap
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Submission
from factories import (
    OTHER_PATIENT_ID,
    PATIENT_ID,
    make_association,
    make_code,
    make_document_entry,
    make_folder,
    make_submission,
    make_submission_set,
    new_uuid,
)
from xds_server import stored_state


@pytest.fixture(scope="module")
def server(xds_server):
    xds_server.add_patient(PATIENT_ID)
    xds_server.add_patient(OTHER_PATIENT_ID)
    return xds_server


def register(server, submission: Submission) -> soap.SoapResponse:
    return server.post("registry", soap.register(submission))


def errors(response: soap.SoapResponse) -> list[str]:
    return [e.get("errorCode", "") for e in response.payload.iter(v.TAG_REGISTRY_ERROR)]


def registered(server, count: int = 1, **kwargs) -> Submission:
    submission = make_submission(count, **kwargs)
    response = register(server, submission)
    assert response.status == "Success", errors(response)
    return submission


def related(original: str, association_type: str, patient: str = PATIENT_ID, documentation: bool = False) -> Submission:
    """A submission of one new document related to `original`."""
    ss = make_submission_set(patient_id=patient)
    submission = make_submission(submission_set=ss, documents=[make_document_entry(patient_id=patient)])
    relation = make_association(
        submission.documents[0].entry_uuid, original, association_type=association_type, slots={}
    )
    if documentation:
        relation.documentation = [make_code("Correction", "1.2.250.1.999.5", "Correction d'une erreur")]
    submission.associations.append(relation)
    return submission


def query(server, query_id: str, params: dict[str, list[str]]) -> list[etree._Element]:
    response = server.post("registry", soap.adhoc_query(query_id, params))
    assert response.payload.get("status", "").endswith("Success"), etree.tostring(response.payload)[:800]
    object_list = response.payload.find(v.TAG_REGISTRY_OBJECT_LIST)
    return [] if object_list is None else list(object_list)


def status_of(server, entry_uuid: str) -> str:
    (entry,) = query(server, v.SQ_GET_DOCUMENTS, {v.P_DE_ENTRY_UUID: [f"('{entry_uuid}')"]})
    return entry.get("status", "")


def folders_of(server, entry_uuid: str) -> set[str]:
    found = query(server, v.SQ_GET_FOLDERS_FOR_DOCUMENT, {v.P_DE_ENTRY_UUID: [f"'{entry_uuid}'"]})
    return {f.get("id", "") for f in found}


def last_update_time(server, folder_uuid: str) -> str:
    (folder,) = query(server, v.SQ_GET_FOLDERS, {v.P_FOLDER_ENTRY_UUID: [f"('{folder_uuid}')"]})
    for slot in folder.iter(v.TAG_SLOT):
        if slot.get("name") == v.SLOT_LAST_UPDATE_TIME:
            return slot.findtext(f"{v.TAG_VALUE_LIST}/{v.TAG_VALUE}") or ""
    raise AssertionError("no lastUpdateTime")


def assert_refused(server, submission: Submission, code: str) -> None:
    before = stored_state(server)
    response = register(server, submission)
    assert response.status == "Failure"
    assert code in errors(response), errors(response)
    assert stored_state(server) == before


# --- replacements ------------------------------------------------------------------------------


@pytest.mark.parametrize("association_type", [v.RPLC, v.XFRM_RPLC])
def test_replacement_deprecates_the_original(server, association_type: str) -> None:
    original = registered(server).documents[0].entry_uuid
    replacement = related(original, association_type)
    response = register(server, replacement)
    assert response.status == "Success", errors(response)
    assert status_of(server, original) == v.STATUS_DEPRECATED
    assert status_of(server, replacement.documents[0].entry_uuid) == v.STATUS_APPROVED


@pytest.mark.parametrize("association_type", [v.APND, v.XFRM, v.SIGNS])
def test_append_transform_sign_leave_the_original_approved(server, association_type: str) -> None:
    original = registered(server).documents[0].entry_uuid
    response = register(server, related(original, association_type))
    assert response.status == "Success", errors(response)
    assert status_of(server, original) == v.STATUS_APPROVED


@pytest.mark.parametrize("association_type", [v.RPLC, v.XFRM_RPLC, v.APND, v.XFRM, v.SIGNS])
def test_no_relationship_to_a_deprecated_document(server, association_type: str) -> None:
    """NIST 11993, 11994: once replaced, a document is neither replaced again nor related to."""
    original = registered(server).documents[0].entry_uuid
    assert register(server, related(original, v.RPLC)).status == "Success"
    assert_refused(server, related(original, association_type), "XDSRegistryMetadataError")


def test_relationship_to_another_patients_document_is_refused(server) -> None:
    original = registered(server).documents[0].entry_uuid
    assert_refused(server, related(original, v.RPLC, patient=OTHER_PATIENT_ID), "XDSPatientIdDoesNotMatch")
    assert status_of(server, original) == v.STATUS_APPROVED


def test_relationship_to_an_unknown_document_is_refused(server) -> None:
    assert_refused(server, related(new_uuid(), v.APND), "UnresolvedReferenceException")


def test_relationship_to_a_folder_is_refused(server) -> None:
    folder = registered(server, with_folder=True).folders[0].entry_uuid
    assert_refused(server, related(folder, v.RPLC), "XDSRegistryMetadataError")


def test_relationship_from_a_stored_document_is_refused(server) -> None:
    first, second = registered(server, 2).documents
    submission = make_submission(1)
    submission.associations.append(
        make_association(first.entry_uuid, second.entry_uuid, association_type=v.APND, slots={})
    )
    response = register(server, submission)
    assert response.status == "Failure"
    assert "XDSRegistryMetadataError" in errors(response)


def test_replacement_joins_the_folders_of_the_original(server) -> None:
    """NIST 12327."""
    stored = registered(server, with_folder=True)
    original, folder = stored.documents[0].entry_uuid, stored.folders[0].entry_uuid
    before = last_update_time(server, folder)
    time.sleep(1.1)  # lastUpdateTime has a one-second resolution
    replacement = related(original, v.RPLC)
    assert register(server, replacement).status == "Success"
    assert folders_of(server, replacement.documents[0].entry_uuid) == {folder}
    assert folders_of(server, original) == {folder}  # the original stays in the folder, deprecated
    assert last_update_time(server, folder) > before


def test_append_does_not_join_the_folder(server) -> None:
    stored = registered(server, with_folder=True)
    appended = related(stored.documents[0].entry_uuid, v.APND)
    assert register(server, appended).status == "Success"
    assert folders_of(server, appended.documents[0].entry_uuid) == set()


def test_concurrent_replacements_of_one_document_let_one_win(server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    original = registered(server).documents[0].entry_uuid
    attempts = [related(original, v.RPLC) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda s: register(server, s).status, attempts))
    assert statuses.count("Success") == 1, statuses


# --- association documentation (NIST 12370) ---------------------------------------------------


def test_relationship_documentation_is_kept_and_given_back(server) -> None:
    original = registered(server).documents[0].entry_uuid
    replacement = related(original, v.RPLC, documentation=True)
    assert register(server, replacement).status == "Success"
    relation = replacement.associations[-1]
    found = query(server, v.SQ_GET_ASSOCIATIONS, {v.P_UUID: [f"('{original}')"]})
    (element,) = [a for a in found if a.get("id") == relation.entry_uuid]
    (classification,) = element.findall(v.TAG_CLASSIFICATION)
    assert classification.get("classificationScheme") == v.ASSOCIATION_DOCUMENTATION
    assert classification.get("nodeRepresentation") == "Correction"
    assert classification.get("classifiedObject") == relation.entry_uuid


def test_documentation_on_a_has_member_association_is_refused(server) -> None:
    submission = make_submission(1)
    submission.associations[0].documentation = [make_code("Correction", "1.2.250.1.999.5", "Correction")]
    assert_refused(server, submission, "XDSRegistryMetadataError")


# --- folders -----------------------------------------------------------------------------------


def test_empty_folder_then_existing_document_added(server) -> None:
    ss = make_submission_set()
    folder = make_folder()
    empty = Submission(
        ss, [], [folder], [make_association(ss.entry_uuid, folder.entry_uuid, slots={})], submission_set_count=1
    )
    assert register(server, empty).status == "Success"
    document = registered(server).documents[0].entry_uuid
    before = last_update_time(server, folder.entry_uuid)
    time.sleep(1.1)
    assert register(server, add_to_folder(folder.entry_uuid, document)).status == "Success"
    assert folders_of(server, document) == {folder.entry_uuid}
    assert last_update_time(server, folder.entry_uuid) > before


def add_to_folder(folder: str, document: str, patient: str = PATIENT_ID) -> Submission:
    ss = make_submission_set(patient_id=patient)
    link = make_association(folder, document, slots={})
    return Submission(
        ss, [], [], [link, make_association(ss.entry_uuid, link.entry_uuid, slots={})], submission_set_count=1
    )


def test_new_document_added_to_an_existing_folder(server) -> None:
    folder = registered(server, with_folder=True).folders[0].entry_uuid
    submission = make_submission(1)
    link = make_association(folder, submission.documents[0].entry_uuid, slots={})
    submission.associations += [link, make_association(submission.submission_set.entry_uuid, link.entry_uuid, slots={})]
    assert register(server, submission).status == "Success"
    assert folders_of(server, submission.documents[0].entry_uuid) == {folder}


def test_another_patients_document_cannot_join_a_folder(server) -> None:
    folder = registered(server, with_folder=True).folders[0].entry_uuid
    other = make_submission(
        1,
        submission_set=make_submission_set(patient_id=OTHER_PATIENT_ID),
        documents=[make_document_entry(patient_id=OTHER_PATIENT_ID)],
    )
    assert register(server, other).status == "Success"
    assert_refused(server, add_to_folder(folder, other.documents[0].entry_uuid), "XDSPatientIdDoesNotMatch")


def test_a_deprecated_document_cannot_join_a_folder(server) -> None:
    folder = registered(server, with_folder=True).folders[0].entry_uuid
    original = registered(server).documents[0].entry_uuid
    assert register(server, related(original, v.RPLC)).status == "Success"
    assert_refused(server, add_to_folder(folder, original), "XDSRegistryMetadataError")


def test_a_document_cannot_be_the_source_of_has_member(server) -> None:
    first, second = registered(server, 2).documents
    assert_refused(server, add_to_folder(first.entry_uuid, second.entry_uuid), "XDSRegistryMetadataError")
