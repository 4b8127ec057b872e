"""ITI-57 Update Document Set against a real server (SQLite and PostgreSQL): masking as a new
version, latest version by default and the history on request, version errors, archiving and
unarchiving through UpdateAvailabilityStatus, patient reconciliation."""

from __future__ import annotations

from dataclasses import replace

import pytest
from lxml import etree

import soap_messages as soap
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Association, DocumentEntry, Submission
from factories import (
    OTHER_PATIENT_ID,
    PATIENT_ID,
    make_association,
    make_code,
    make_submission,
    make_submission_set,
    new_uuid,
)
from xds_server import stored_state

MASQUE_PS = make_code("MASQUE_PS", "1.2.250.1.213.1.1.4.13", "Document masque aux professionnels")


@pytest.fixture(scope="module")
def server(xds_server):
    xds_server.add_patient(PATIENT_ID)
    xds_server.add_patient(OTHER_PATIENT_ID)
    return xds_server


def errors(response: soap.SoapResponse) -> list[str]:
    return [e.get("errorCode", "") for e in response.payload.iter(v.TAG_REGISTRY_ERROR)]


def registered(server, **kwargs) -> Submission:
    submission = make_submission(1, **kwargs)
    response = server.post("registry", soap.register(submission))
    assert response.status == "Success", errors(response)
    return submission


def new_version(original: DocumentEntry, previous: str, patient: str = PATIENT_ID, **changes) -> Submission:
    ss = make_submission_set(patient_id=patient)
    entry = replace(
        original,
        entry_uuid=new_uuid(),
        logical_id=original.entry_uuid,
        patient_id=patient,
        status=None,
        version=None,
        **changes,
    )
    link = make_association(
        ss.entry_uuid,
        entry.entry_uuid,
        slots={v.SLOT_SUBMISSION_SET_STATUS: ["Original"], v.SLOT_PREVIOUS_VERSION: [previous]},
    )
    return Submission(ss, [entry], [], [link], submission_set_count=1)


def status_update(target: str, original: str, new: str) -> Submission:
    ss = make_submission_set()
    change = Association(
        new_uuid(),
        v.UPDATE_AVAILABILITY_STATUS,
        ss.entry_uuid,
        target,
        slots={v.SLOT_ORIGINAL_STATUS: [original], v.SLOT_NEW_STATUS: [new]},
    )
    return Submission(ss, [], [], [change], submission_set_count=1)


def query(server, query_id: str, params: dict[str, list[str]]) -> list[etree._Element]:
    response = server.post("registry", soap.adhoc_query(query_id, params))
    assert response.payload.get("status", "").endswith("Success"), etree.tostring(response.payload)[:800]
    object_list = response.payload.find(v.TAG_REGISTRY_OBJECT_LIST)
    return [] if object_list is None else list(object_list)


def find(server, *statuses: str) -> set[str]:
    found = query(
        server,
        v.SQ_FIND_DOCUMENTS,
        {v.P_DE_PATIENT_ID: [f"'{PATIENT_ID}'"], v.P_DE_STATUS: ["(" + ",".join(f"'{s}'" for s in statuses) + ")"]},
    )
    return {e.get("id", "") for e in found}


def by_unique_id(server, unique_id: str, level: str | None = None) -> list[etree._Element]:
    params = {v.P_DE_UNIQUE_ID: [f"('{unique_id}')"]}
    if level:
        params[v.P_METADATA_LEVEL] = [level]
    return query(server, v.SQ_GET_DOCUMENTS, params)


def confidentiality(element: etree._Element) -> set[str]:
    return {
        c.get("nodeRepresentation", "")
        for c in element.iter(v.TAG_CLASSIFICATION)
        if c.get("classificationScheme") == v.DE_CONFIDENTIALITY_CODE
    }


def test_masking_makes_a_new_version_and_queries_give_the_latest(server) -> None:
    original = registered(server).documents[0]
    masked = new_version(original, "1", confidentiality_codes=[*original.confidentiality_codes, MASQUE_PS])
    response = server.post("registry", soap.update(masked))
    assert response.status == "Success", errors(response)
    new_uuid_ = masked.documents[0].entry_uuid
    found = find(server, v.STATUS_APPROVED, v.STATUS_DEPRECATED)
    assert new_uuid_ in found and original.entry_uuid not in found
    (latest,) = by_unique_id(server, original.unique_id)
    assert latest.get("id") == new_uuid_ and latest.get("lid") == original.entry_uuid
    assert latest.find(v.TAG_VERSION_INFO).get("versionName") == "2"
    assert "MASQUE_PS" in confidentiality(latest)
    history = by_unique_id(server, original.unique_id, level="2")
    assert {e.get("id"): e.get("status") for e in history} == {
        original.entry_uuid: v.STATUS_DEPRECATED,
        new_uuid_: v.STATUS_APPROVED,
    }
    # Unmasking is one more version, made from the latest.
    unmasked = new_version(original, "2", confidentiality_codes=original.confidentiality_codes)
    assert server.post("registry", soap.update(unmasked)).status == "Success"
    (latest,) = by_unique_id(server, original.unique_id)
    assert "MASQUE_PS" not in confidentiality(latest)


@pytest.mark.parametrize("previous", ["2", "0"])
def test_previous_version_must_be_the_latest(server, previous: str) -> None:
    original = registered(server).documents[0]
    before = stored_state(server)
    response = server.post("registry", soap.update(new_version(original, previous)))
    assert response.status == "Failure" and errors(response) == ["XDSMetadataVersionError"]
    assert stored_state(server) == before


def test_unknown_logical_id(server) -> None:
    original = registered(server).documents[0]
    stray = new_version(original, "1")
    stray.documents[0].logical_id = new_uuid()
    assert errors(server.post("registry", soap.update(stray))) == ["XDSMetadataVersionError"]


def test_unique_id_cannot_change(server) -> None:
    original = registered(server).documents[0]
    response = server.post("registry", soap.update(new_version(original, "1", unique_id=original.unique_id + ".9")))
    assert errors(response) == ["XDSMetadataUpdateError"]


def test_archive_and_unarchive(server) -> None:
    document = registered(server).documents[0].entry_uuid
    archive = status_update(document, v.STATUS_APPROVED, v.STATUS_ARCHIVED)
    assert server.post("registry", soap.update(archive)).status == "Success"
    assert document not in find(server, v.STATUS_APPROVED, v.STATUS_DEPRECATED)  # left out of default searches
    assert document in find(server, v.STATUS_ARCHIVED)
    # The stated original status must be the current one.
    assert errors(
        server.post("registry", soap.update(status_update(document, v.STATUS_APPROVED, v.STATUS_DEPRECATED)))
    ) == ["XDSMetadataUpdateError"]
    assert (
        server.post("registry", soap.update(status_update(document, v.STATUS_ARCHIVED, v.STATUS_APPROVED))).status
        == "Success"
    )
    assert document in find(server, v.STATUS_APPROVED)


@pytest.mark.parametrize("via", [(), (v.STATUS_ARCHIVED,)])
def test_logical_deletion_is_final(server, via: tuple[str, ...]) -> None:
    original = registered(server).documents[0]
    document = original.entry_uuid
    path = (v.STATUS_APPROVED, *via, v.STATUS_DELETED)
    for before, after in zip(path, path[1:], strict=False):
        assert server.post("registry", soap.update(status_update(document, before, after))).status == "Success"
    everything_else = (v.STATUS_APPROVED, v.STATUS_DEPRECATED, v.STATUS_ARCHIVED)
    assert document not in find(server, *everything_else)  # left out unless asked for by status
    assert document in find(server, v.STATUS_DELETED)
    undelete = server.post("registry", soap.update(status_update(document, v.STATUS_DELETED, v.STATUS_APPROVED)))
    assert errors(undelete) == ["XDSMetadataUpdateError"]
    assert errors(server.post("registry", soap.update(new_version(original, "1")))) == ["XDSMetadataUpdateError"]
    assert document in find(server, v.STATUS_DELETED)


def test_no_status_update_of_an_older_version(server) -> None:
    original = registered(server).documents[0]
    assert server.post("registry", soap.update(new_version(original, "1"))).status == "Success"
    response = server.post(
        "registry", soap.update(status_update(original.entry_uuid, v.STATUS_DEPRECATED, v.STATUS_APPROVED))
    )
    assert errors(response) == ["XDSMetadataVersionError"]


def test_patient_change_of_a_document_in_a_folder_is_refused(server) -> None:
    original = registered(server, with_folder=True).documents[0]
    response = server.post("registry", soap.update(new_version(original, "1", patient=OTHER_PATIENT_ID)))
    assert "XDSPatientIDReconciliationError" in errors(response)


def test_new_version_stays_in_the_folder(server) -> None:
    stored = registered(server, with_folder=True)
    original, folder = stored.documents[0], stored.folders[0].entry_uuid
    update = new_version(original, "1")
    assert server.post("registry", soap.update(update)).status == "Success"
    found = query(server, v.SQ_GET_FOLDERS_FOR_DOCUMENT, {v.P_DE_ENTRY_UUID: [f"'{update.documents[0].entry_uuid}'"]})
    assert [f.get("id") for f in found] == [folder]


def test_registration_cannot_carry_update_operations(server) -> None:
    """NIST 21000: ITI-42 refuses ITI-57 semantics."""
    original = registered(server).documents[0]
    submission = make_submission(1)
    submission.associations.append(
        status_update(original.entry_uuid, v.STATUS_APPROVED, v.STATUS_DEPRECATED).associations[0]
    )
    submission.associations[-1].source = submission.submission_set.entry_uuid
    assert "XDSRegistryMetadataError" in errors(server.post("registry", soap.register(submission)))
