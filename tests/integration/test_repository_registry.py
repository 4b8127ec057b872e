"""ITI-41, ITI-42 and ITI-43 end to end over HTTP against a real server (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib

import pytest

import soap_messages as soap
from dmp_xds.xds import vocabulary as v
from factories import OTHER_PATIENT_ID, PATIENT_ID, make_document_entry, make_submission


@pytest.fixture(scope="module")
def server(xds_server):
    xds_server.add_patient(PATIENT_ID)
    xds_server.add_patient(OTHER_PATIENT_ID)
    return xds_server


def _for_repository(submission):
    """Metadata as a source sends it to a repository: hash, size and repositoryUniqueId left out."""
    for de in submission.documents:
        de.hash = None
        de.size = None
        de.repository_unique_id = None
    return submission


def _documents(submission, prefix=b"doc"):
    return {de.entry_uuid: prefix + b" " + de.unique_id.encode() + b"\n" * 10 for de in submission.documents}


@pytest.mark.parametrize("mtom", [True, False], ids=["mtom", "inline"])
def test_provide_and_register_then_retrieve(server, mtom):
    submission = _for_repository(make_submission(2))
    documents = _documents(submission)
    by_unique_id = {de.unique_id: documents[de.entry_uuid] for de in submission.documents}
    request = soap.provide_and_register(submission, documents, mtom=mtom)
    response = server.post("repository", request)
    assert response.status_code == 200
    assert response.status == "Success", response.error_codes
    assert response.header("Action") == v.ACTION_ITI41 + "Response"
    assert response.header("RelatesTo") == request.message_id
    assert response.mtom is mtom  # an MTOM request gets an MTOM response

    retrieved = server.post("repository", soap.retrieve([(server.repository_unique_id, u) for u in by_unique_id]))
    assert retrieved.status == "Success"
    assert retrieved.mtom
    assert retrieved.header("Action") == v.ACTION_ITI43 + "Response"
    assert soap.document_bytes(retrieved) == by_unique_id
    mime_types = [
        d.findtext(f"{{{v.NS_XDSB}}}mimeType") for d in retrieved.payload.iter(f"{{{v.NS_XDSB}}}DocumentResponse")
    ]
    assert mime_types == ["text/plain", "text/plain"] or all(mime_types)


def test_registered_metadata_gets_hash_size_and_repository_id(server):
    submission = _for_repository(make_submission(1))
    documents = _documents(submission)
    de = submission.documents[0]
    assert server.post("repository", soap.provide_and_register(submission, documents)).status == "Success"
    # Registering the same document (same uniqueId, same hash) again through ITI-42 is allowed
    # (NIST 12004), which proves the registry holds exactly the hash the repository computed.
    again = make_submission(
        1,
        documents=[
            make_document_entry(
                unique_id=de.unique_id,
                hash=hashlib.sha1(documents[de.entry_uuid]).hexdigest(),
                size=len(documents[de.entry_uuid]),
                repository_unique_id=server.repository_unique_id,
            )
        ],
    )
    assert server.post("registry", soap.register(again)).status == "Success"
    different = make_submission(1, documents=[make_document_entry(unique_id=de.unique_id, hash="0" * 40)])
    response = server.post("registry", soap.register(different))
    assert response.status == "Failure"
    assert response.error_codes == ["XDSNonIdenticalHash"]


def test_register_document_set(server):
    response = server.post("registry", soap.register(make_submission(2, with_folder=True)))
    assert response.status == "Success", response.error_codes
    assert response.header("Action") == v.ACTION_ITI42 + "Response"


def test_unknown_patient(server):
    submission = make_submission(1)
    unknown = "999999999999^^^&1.2.250.1.213.1.4.8&ISO"
    submission.submission_set.patient_id = unknown
    submission.documents[0].patient_id = unknown
    response = server.post("registry", soap.register(submission))
    assert response.status == "Failure"
    assert response.error_codes == ["XDSUnknownPatientId"]


def test_patient_mismatch(server):
    submission = make_submission(1)
    submission.documents[0].patient_id = OTHER_PATIENT_ID
    response = server.post("registry", soap.register(submission))
    assert "XDSPatientIdDoesNotMatch" in response.error_codes


def test_duplicate_unique_id_in_registry_and_in_message(server):
    first = make_submission(1)
    assert server.post("registry", soap.register(first)).status == "Success"
    second = make_submission(1)
    second.submission_set.unique_id = first.submission_set.unique_id
    assert server.post("registry", soap.register(second)).error_codes == ["XDSDuplicateUniqueIdInRegistry"]
    twice = make_submission(2)
    twice.documents[1].unique_id = twice.documents[0].unique_id
    assert "XDSRegistryDuplicateUniqueIdInMessage" in server.post("registry", soap.register(twice)).error_codes


def test_missing_required_attribute_and_unresolved_reference(server):
    submission = make_submission(1)
    submission.documents[0].class_code = None
    response = server.post("registry", soap.register(submission))
    assert response.error_codes == ["XDSRegistryMetadataError"]
    assert "classCode" in response.registry_response.find(f".//{{{v.NS_RS}}}RegistryError").get("codeContext")

    dangling = make_submission(1)
    dangling.associations[0].target = "urn:uuid:00000000-0000-4000-8000-000000000000"
    dangling.documents.clear()
    response = server.post("registry", soap.register(dangling))
    assert response.error_codes == ["UnresolvedReferenceException"]


def test_hash_and_size_mismatch_are_repository_metadata_errors(server):
    submission = _for_repository(make_submission(1))
    documents = _documents(submission)
    submission.documents[0].hash = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    submission.documents[0].size = 1
    response = server.post("repository", soap.provide_and_register(submission, documents))
    assert response.status == "Failure"
    assert response.error_codes == ["XDSRepositoryMetadataError", "XDSRepositoryMetadataError"]


def test_missing_document_and_missing_metadata(server):
    submission = _for_repository(make_submission(1))
    response = server.post("repository", soap.provide_and_register(submission, {}))
    assert response.error_codes == ["XDSMissingDocument"]
    extra = {**_documents(submission), "Document99": b"orphan"}
    response = server.post("repository", soap.provide_and_register(submission, extra))
    assert response.error_codes == ["XDSMissingDocumentMetadata"]


def test_retrieve_partial_success_and_unknown_repository(server):
    submission = _for_repository(make_submission(1))
    documents = _documents(submission)
    assert server.post("repository", soap.provide_and_register(submission, documents)).status == "Success"
    known = submission.documents[0].unique_id
    response = server.post(
        "repository",
        soap.retrieve([(server.repository_unique_id, known), (server.repository_unique_id, "1.2.3.4.5.404")]),
    )
    assert response.status == "PartialSuccess"
    assert response.error_codes == ["XDSDocumentUniqueIdError"]
    assert list(soap.document_bytes(response)) == [known]
    response = server.post("repository", soap.retrieve([("1.2.3.999", known)]))
    assert response.status == "Failure"
    assert response.error_codes == ["XDSUnknownRepositoryId"]


def test_entry_uuid_already_registered_is_named(server):
    first = make_submission(1)
    taken = first.documents[0].entry_uuid
    assert server.post("registry", soap.register(first)).status == "Success"
    second = make_submission(1)
    second.documents[0].entry_uuid = taken
    second.associations[0].target = taken
    response = server.post("registry", soap.register(second))
    assert response.error_codes == ["XDSRegistryMetadataError"]
    context = response.registry_response.find(f".//{{{v.NS_RS}}}RegistryError").get("codeContext")
    assert taken in context and "already used" in context
