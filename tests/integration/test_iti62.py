"""ITI-62 Delete Document Set against a real server (SQLite and PostgreSQL): unknown ids,
references left behind, emptied SubmissionSets, all or nothing, the lifecycle history of every
deleted object, and the repository's files removed with the last entry of their document."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

import soap_messages as soap
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Submission
from factories import PATIENT_ID, make_association, make_submission, make_submission_set, new_uuid
from xds_server import RunningServer, stored_state


@pytest.fixture(scope="module")
def server(xds_server):
    xds_server.add_patient(PATIENT_ID)
    return xds_server


def errors(response: soap.SoapResponse) -> list[str]:
    return [e.get("errorCode", "") for e in response.payload.iter(v.TAG_REGISTRY_ERROR)]


def registered(server, endpoint: str = "registry", **kwargs) -> Submission:
    submission = make_submission(1, **kwargs)
    if endpoint == "registry":
        response = server.post("registry", soap.register(submission))
    else:
        de = submission.documents[0]
        de.hash = de.size = de.repository_unique_id = None
        response = server.post(
            "repository",
            soap.provide_and_register(
                submission, {de.entry_uuid: b"deleted with its last entry " + de.unique_id.encode()}
            ),
        )
    assert response.status == "Success", errors(response)
    return submission


def all_ids(submission: Submission) -> list[str]:
    return submission.all_ids()


def delete(server, ids: list[str]) -> soap.SoapResponse:
    response = server.post("registry", soap.delete_document_set(ids))
    assert response.header("Action") == v.ACTION_ITI62 + "Response"
    return response


def refused(server, ids: list[str]) -> list[str]:
    """Ask for a deletion that must fail, and check that it changed nothing."""
    before = stored_state(server)
    response = delete(server, ids)
    assert response.status == "Failure"
    assert stored_state(server) == before
    return errors(response)


def deletion_events(server: RunningServer, uuids: list[str]) -> dict[str, tuple[str, str, str]]:
    """object uuid -> (transaction, action, kind) of its lifecycle events among `uuids`."""
    from dmp_xds.config import Settings, default_database_url
    from dmp_xds.storage.database import create_engine_for
    from dmp_xds.storage.tables import LifecycleEventRow

    event = LifecycleEventRow.__table__
    engine = create_engine_for(server.database_url or default_database_url(Settings(data_dir=server.data_dir)))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(event.c.object_uuid, event.c.transaction, event.c.action, event.c.object_kind).where(
                    event.c.object_uuid.in_(uuids)
                )
            ).all()
    finally:
        engine.dispose()
    return {row.object_uuid: (row.transaction, row.action, row.object_kind) for row in rows}


def test_unknown_id_is_an_unresolved_reference(server) -> None:
    submission = registered(server)
    assert refused(server, [*all_ids(submission), new_uuid()]) == ["UnresolvedReferenceException"]


def test_submission_set_alone_is_still_referenced(server) -> None:
    submission = registered(server)
    assert refused(server, [submission.submission_set.entry_uuid]) == ["ReferencesExistException"]


def test_members_without_their_submission_set_would_leave_it_empty(server) -> None:
    submission = registered(server)
    members = [submission.documents[0].entry_uuid, submission.associations[0].entry_uuid]
    assert refused(server, members) == ["XDSUnreferencedObjectException"]


def test_document_in_a_folder_needs_its_folder_association(server) -> None:
    submission = registered(server, with_folder=True)
    folder_link = next(a for a in submission.associations if a.source == submission.folders[0].entry_uuid)
    everything_but_it = [i for i in all_ids(submission) if i != folder_link.entry_uuid]
    assert "ReferencesExistException" in refused(server, everything_but_it)


def test_whole_submission_is_deleted_and_each_object_traced(server) -> None:
    submission = registered(server, with_folder=True)
    ids = all_ids(submission)
    before_counts, _ = stored_state(server)
    assert delete(server, ids).status == "Success"
    after_counts, _ = stored_state(server)
    assert before_counts["document_entry"] - after_counts["document_entry"] == 1
    assert before_counts["folder"] - after_counts["folder"] == 1
    assert before_counts["submission_set"] - after_counts["submission_set"] == 1
    assert before_counts["association"] - after_counts["association"] == len(submission.associations)
    assert before_counts["document_entry_code"] > after_counts["document_entry_code"]  # child rows cascade
    assert after_counts["lifecycle_event"] - before_counts["lifecycle_event"] == len(ids)
    events = deletion_events(server, ids)
    assert set(events) == set(ids) and {e[:2] for e in events.values()} == {("ITI-62", "deleted")}
    assert events[submission.folders[0].entry_uuid][2] == "Folder"
    found = server.post(
        "registry",
        soap.adhoc_query(
            v.SQ_GET_SUBMISSION_SET_AND_CONTENTS, {v.P_SS_ENTRY_UUID: [f"'{submission.submission_set.entry_uuid}'"]}
        ),
    )
    assert (
        found.payload.find(v.TAG_REGISTRY_OBJECT_LIST) is None
        or len(found.payload.find(v.TAG_REGISTRY_OBJECT_LIST)) == 0
    )
    # Deleted means gone: asking again names unknown objects.
    assert refused(server, ids) == ["UnresolvedReferenceException"] * len(ids)


def test_unique_ids_are_free_again_once_their_objects_are_deleted(server) -> None:
    first = registered(server, with_folder=True)
    again = make_submission(1, with_folder=True)
    again.submission_set.unique_id = first.submission_set.unique_id
    again.folders[0].unique_id = first.folders[0].unique_id
    again.documents[0].unique_id = first.documents[0].unique_id
    again.documents[0].hash = "0" * 40  # another document
    assert errors(server.post("registry", soap.register(again))) == [
        "XDSNonIdenticalHash",
        "XDSDuplicateUniqueIdInRegistry",
        "XDSDuplicateUniqueIdInRegistry",
    ]
    assert delete(server, all_ids(first)).status == "Success"
    response = server.post("registry", soap.register(again))
    assert response.status == "Success", errors(response)


def test_appended_document_keeps_its_original_until_the_append_goes(server) -> None:
    original = registered(server)
    appending = make_submission(1)
    apnd = make_association(
        appending.documents[0].entry_uuid, original.documents[0].entry_uuid, association_type=v.APND, slots={}
    )
    appending.associations.append(apnd)
    assert server.post("registry", soap.register(appending)).status == "Success"
    assert refused(server, all_ids(original)) == ["ReferencesExistException"]
    assert delete(server, all_ids(appending)).status == "Success"
    assert delete(server, all_ids(original)).status == "Success"


def test_document_file_goes_with_the_last_entry_of_its_document(server) -> None:
    """Every version of a document shares its uniqueId and its file: deleting the first
    version keeps the file for the second; deleting the second removes it, after the commit."""
    first = registered(server, endpoint="repository")
    de = first.documents[0]
    ss = make_submission_set()
    version = replace(
        de, entry_uuid=new_uuid(), logical_id=de.entry_uuid, status=None, version=None, hash=None, size=None
    )
    stored = server.post(
        "registry", soap.adhoc_query(v.SQ_GET_DOCUMENTS, {v.P_DE_ENTRY_UUID: [f"('{de.entry_uuid}')"]})
    )
    slots = {s.get("name"): s.findtext(f"{v.TAG_VALUE_LIST}/{v.TAG_VALUE}") for s in stored.payload.iter(v.TAG_SLOT)}
    version.hash, version.size = slots["hash"], int(slots["size"])
    version.repository_unique_id = server.repository_unique_id
    link = make_association(
        ss.entry_uuid,
        version.entry_uuid,
        slots={v.SLOT_SUBMISSION_SET_STATUS: ["Original"], v.SLOT_PREVIOUS_VERSION: ["1"]},
    )
    second = Submission(ss, [version], [], [link], submission_set_count=1)
    response = server.post("registry", soap.update(second))
    assert response.status == "Success", errors(response)
    retrieve = soap.retrieve([(server.repository_unique_id, de.unique_id)])
    _, files = stored_state(server)

    assert delete(server, all_ids(first)).status == "Success"
    assert stored_state(server)[1] == files
    assert server.post("repository", retrieve).status == "Success"

    assert delete(server, all_ids(second)).status == "Success"
    assert len(stored_state(server)[1]) == len(files) - 1
    assert errors(server.post("repository", retrieve)) == ["XDSDocumentUniqueIdError"]


def test_request_by_query_is_refused(server) -> None:
    request = soap.delete_document_set([])
    body = request.body.replace(b"<rim:ObjectRefList/>", b'<rim:AdhocQuery id="urn:uuid:x"/><rim:ObjectRefList/>')
    assert body != request.body
    response = server.post("registry", replace(request, body=body))
    assert errors(response) == ["XDSRegistryMetadataError"]
