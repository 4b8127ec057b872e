"""Masking through ITI-57 hides every version of the document, on every path, over real TLS.

The attack: a doctor writes a document; the patient masks it (ITI-57 new version with
MASQUE_PS); another professional the patient authorized, who is neither its author nor the
attending doctor, then asks for it by every id that still names an older version: ITI-43 by
uniqueId, GetDocuments by version 1's entryUUID, by uniqueId or logical id with $MetadataLevel 2,
and the other stored queries that reach a document or its associations. Every version is judged
by the latest: none of them is in any answer, ITI-43 answers exactly as for a uniqueId never
registered, and the trace records a refused retrieve, not a successful one. The author, the
attending doctor and the patient still see it all; once the patient unmasks it, so does the
other professional. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from lxml import etree

import soap_messages as soap
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Association, Author, Code, DocumentEntry, Submission
from factories import make_association, make_submission, make_submission_set, new_uuid
from secure_server import MASKED, PATIENT, SecureServer, patient_vihf, start_secure_server, stop_secure_server, vihf
from xds_server import BACKENDS, database_for, documents_for

AUTHOR, ATTENDING, OTHER_PROFESSIONAL = "doctor", "doctor2", "nurse"  # PKI cards
UNKNOWN_UNIQUE_ID = "1.2.250.1.999.1.1.424242424242"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureServer]:
    running = start_secure_server(
        tmp_path_factory.mktemp(f"masked-versions-{request.param}"),
        pki,
        tls=True,
        database_url=database_for(request),
        extra=documents_for(request),
    )
    running.cli("dmp", "create", PATIENT, "--collected-by", "accueil")
    for card in (AUTHOR, OTHER_PROFESSIONAL):
        running.cli("dmp", "grant", PATIENT, pki.identity(card).national_id)
    running.cli("dmp", "grant", PATIENT, pki.identity(ATTENDING).national_id, "--kind", "attending")
    yield running
    stop_secure_server(running)


@dataclass
class Story:
    """A document of PATIENT written by AUTHOR, in a folder, transformed by a second document,
    then versioned by the patient: `versions` are its DocumentEntries, oldest first."""

    versions: list[DocumentEntry]
    content: bytes
    folder_uuid: str
    submission_set_uuid: str
    transform_uuid: str  # the second document, an XFRM of version 1
    reference_id: str
    links: set[str]  # the associations known to name a version of the document
    update_set_uuid: str = ""  # the SubmissionSet of the latest version (ITI-57)

    @property
    def unique_id(self) -> str:
        return self.versions[0].unique_id or ""

    @property
    def logical_id(self) -> str:
        return self.versions[0].entry_uuid

    @property
    def ids(self) -> set[str]:
        """The document's uniqueId and every version's entryUUID."""
        return {self.unique_id, *(e.entry_uuid for e in self.versions)}

    @property
    def marks(self) -> set[str]:
        """What shows the document in an answer: its ids, and the associations known to name
        one of its versions (all an ObjectRef answer may show of it)."""
        return self.ids | self.links


def call(
    server: SecureServer, pki: GeneratedPki, who: str, endpoint: str, request: soap.HttpRequest
) -> soap.SoapResponse:
    assertion = patient_vihf(pki) if who == "patient" else vihf(pki, who)
    response = server.call(endpoint, request, assertion, card="patient-portal" if who == "patient" else who)
    assert response.status_code == 200, (who, response.fault_reason)
    return response


def errors(response: soap.SoapResponse) -> list[str]:
    return [e.get("codeContext", "") for e in response.registry_response.iter(v.TAG_REGISTRY_ERROR)]


def new_version(server: SecureServer, pki: GeneratedPki, story: Story, codes: list[Code]) -> None:
    """ITI-57 by the patient: a new version of the document's latest, with these
    confidentiality codes (MASQUE_PS added: masking; taken away: unmasking)."""
    latest = story.versions[-1]
    version = replace(
        latest,
        entry_uuid=new_uuid(),
        logical_id=story.logical_id,
        status=None,
        version=None,
        confidentiality_codes=codes,
    )
    ss = make_submission_set(patient_id=PATIENT)
    link = make_association(
        ss.entry_uuid,
        version.entry_uuid,
        slots={v.SLOT_SUBMISSION_SET_STATUS: ["Original"], v.SLOT_PREVIOUS_VERSION: [str(len(story.versions))]},
    )
    response = call(
        server, pki, "patient", "registry", soap.update(Submission(ss, [version], [], [link], submission_set_count=1))
    )
    assert response.status == "Success", errors(response)
    story.versions.append(version)
    story.links.add(link.entry_uuid)
    story.update_set_uuid = ss.entry_uuid


def written_then_masked(server: SecureServer, pki: GeneratedPki) -> Story:
    """AUTHOR submits (ITI-41) the document in a folder and a transform of it; the patient masks it."""
    author_id = pki.identity(AUTHOR).national_id
    submission = make_submission(1, with_folder=True, submission_set=make_submission_set(patient_id=PATIENT))
    submission.folders[0].patient_id = PATIENT
    entry = submission.documents[0]
    reference_id = f"ORD-{new_uuid()[9:17]}^^^&1.2.250.1.999.3&ISO^urn:ihe:iti:xds:2013:order"
    entry.patient_id, entry.reference_ids = PATIENT, [reference_id]
    entry.authors = [Author(person=f"{author_id}^MARTIN^Marie^^^Dr^^^&1.2.250.1.71.4.2.1&ISO")]
    entry.hash = entry.size = entry.repository_unique_id = None
    content = f"compte rendu confidentiel {entry.unique_id}\n".encode()
    response = call(
        server,
        pki,
        AUTHOR,
        "repository",
        soap.provide_and_register(submission, {entry.entry_uuid: content}, mtom=False),
    )
    assert response.status == "Success", errors(response)
    # As the repository registered it (a new version repeats these).
    entry.hash, entry.size = hashlib.sha1(content).hexdigest(), len(content)
    entry.repository_unique_id = server.repository_id

    transform = make_submission(1, submission_set=make_submission_set(patient_id=PATIENT))
    derived = transform.documents[0]
    derived.patient_id, derived.authors = PATIENT, entry.authors
    derived.hash = derived.size = derived.repository_unique_id = None
    relation = Association(new_uuid(), v.XFRM, derived.entry_uuid, entry.entry_uuid)
    transform.associations.append(relation)
    response = call(
        server,
        pki,
        AUTHOR,
        "repository",
        soap.provide_and_register(transform, {derived.entry_uuid: b"version PDF\n"}, mtom=False),
    )
    assert response.status == "Success", errors(response)

    links = {a.entry_uuid for a in submission.associations if a.target == entry.entry_uuid} | {relation.entry_uuid}
    story = Story(
        [entry],
        content,
        submission.folders[0].entry_uuid,
        submission.submission_set.entry_uuid,
        derived.entry_uuid,
        reference_id,
        links,
    )
    new_version(server, pki, story, [*entry.confidentiality_codes, MASKED])
    return story


def quoted(*values: str) -> str:
    return "(" + ",".join(f"'{value}'" for value in values) + ")"


def queries(story: Story) -> dict[str, tuple[str, dict[str, list[str]], set[str]]]:
    """Every stored query that reaches the document: name -> (query id, parameters, what in
    its answer is there only through the document: none of it may reach a caller it is hidden
    from)."""
    patient = {v.P_DE_PATIENT_ID: [f"'{PATIENT}'"], v.P_DE_STATUS: [quoted(v.STATUS_APPROVED, v.STATUS_DEPRECATED)]}
    level2 = {v.P_METADATA_LEVEL: ["2"]}
    first, latest = story.versions[0].entry_uuid, story.versions[-1].entry_uuid
    return {
        "GetDocuments by version 1's entryUUID": (v.SQ_GET_DOCUMENTS, {v.P_DE_ENTRY_UUID: [quoted(first)]}, set()),
        "GetDocuments by every entryUUID": (
            v.SQ_GET_DOCUMENTS,
            {v.P_DE_ENTRY_UUID: [quoted(*(e.entry_uuid for e in story.versions))]},
            set(),
        ),
        "GetDocuments by uniqueId": (v.SQ_GET_DOCUMENTS, {v.P_DE_UNIQUE_ID: [quoted(story.unique_id)]}, set()),
        "GetDocuments by uniqueId, $MetadataLevel 2": (
            v.SQ_GET_DOCUMENTS,
            {v.P_DE_UNIQUE_ID: [quoted(story.unique_id)], **level2},
            set(),
        ),
        "GetDocuments by logical id, $MetadataLevel 2": (
            v.SQ_GET_DOCUMENTS,
            {v.P_DE_LOGICAL_ID: [quoted(story.logical_id)], **level2},
            set(),
        ),
        "FindDocuments, $MetadataLevel 2": (v.SQ_FIND_DOCUMENTS, {**patient, **level2}, set()),
        "FindDocumentsByReferenceId": (
            v.SQ_FIND_DOCUMENTS_BY_REFERENCE_ID,
            {**patient, v.P_DE_REFERENCE_ID_LIST: [quoted(story.reference_id)]},
            set(),
        ),
        "GetAll": (
            v.SQ_GET_ALL,
            {
                v.P_PATIENT_ID: [f"'{PATIENT}'"],
                v.P_DE_STATUS: [quoted(v.STATUS_APPROVED, v.STATUS_DEPRECATED)],
                v.P_SS_STATUS: [quoted(v.STATUS_APPROVED)],
                v.P_FOLDER_STATUS: [quoted(v.STATUS_APPROVED)],
            },
            set(),
        ),
        "GetSubmissionSetAndContents": (
            v.SQ_GET_SUBMISSION_SET_AND_CONTENTS,
            {v.P_SS_ENTRY_UUID: [f"'{story.update_set_uuid}'"]},
            set(),
        ),
        "GetFolderAndContents": (
            v.SQ_GET_FOLDER_AND_CONTENTS,
            {v.P_FOLDER_ENTRY_UUID: [f"'{story.folder_uuid}'"]},
            set(),
        ),
        "GetFolderAndContents, $MetadataLevel 2": (
            v.SQ_GET_FOLDER_AND_CONTENTS,
            {v.P_FOLDER_ENTRY_UUID: [f"'{story.folder_uuid}'"], **level2},
            set(),
        ),
        "GetFoldersForDocument by version 1": (
            v.SQ_GET_FOLDERS_FOR_DOCUMENT,
            {v.P_DE_ENTRY_UUID: [f"'{first}'"]},
            {story.folder_uuid},
        ),
        "GetFoldersForDocument by uniqueId": (
            v.SQ_GET_FOLDERS_FOR_DOCUMENT,
            {v.P_DE_UNIQUE_ID: [f"'{story.unique_id}'"]},
            {story.folder_uuid},
        ),
        "GetRelatedDocuments of the transform": (
            v.SQ_GET_RELATED_DOCUMENTS,
            {v.P_DE_ENTRY_UUID: [f"'{story.transform_uuid}'"], v.P_ASSOCIATION_TYPES: [quoted(v.XFRM)]},
            {story.transform_uuid},
        ),
        "GetAssociations of version 1": (v.SQ_GET_ASSOCIATIONS, {v.P_UUID: [quoted(first)]}, set()),
        "GetAssociations of the latest": (v.SQ_GET_ASSOCIATIONS, {v.P_UUID: [quoted(latest)]}, set()),
        "GetDocumentsAndAssociations by version 1": (
            v.SQ_GET_DOCUMENTS_AND_ASSOCIATIONS,
            {v.P_DE_ENTRY_UUID: [quoted(first)]},
            set(),
        ),
        "GetSubmissionSets of version 1": (
            v.SQ_GET_SUBMISSION_SETS,
            {v.P_UUID: [quoted(first)]},
            {story.submission_set_uuid},
        ),
    }


def named(text: str, ids: set[str]) -> list[str]:
    """Those of `ids` an answer names (an id is an attribute value: quoted)."""
    return sorted(i for i in ids if f'"{i}"' in text)


def answer(
    server: SecureServer, pki: GeneratedPki, who: str, query_id: str, params: dict[str, list[str]], return_type: str
) -> str:
    response = call(server, pki, who, "registry", soap.adhoc_query(query_id, params, return_type))
    assert response.status == "Success", (who, query_id, response.error_codes)
    return etree.tostring(response.payload).decode()


def retrieve(server: SecureServer, pki: GeneratedPki, who: str, unique_id: str) -> soap.SoapResponse:
    return call(server, pki, who, "repository", soap.retrieve([(server.repository_id, unique_id)]))


def shape(response: soap.SoapResponse, unique_id: str) -> tuple[object, ...]:
    """Everything an ITI-43 answer says, the uniqueId asked for aside."""
    text = etree.tostring(response.registry_response).decode().replace(unique_id, "UNIQUE-ID")
    return response.status_code, response.mtom, len(response.parts), text, soap.document_bytes(response)


@pytest.mark.parametrize("return_type", ["LeafClass", "ObjectRef"])
def test_no_version_of_a_masked_document_reaches_another_professional(server, pki, return_type) -> None:
    story = written_then_masked(server, pki)
    leaks: dict[str, list[str]] = {}
    for name, (query_id, params, through) in queries(story).items():
        # The same query shows the document to its author: it is a query that reaches it.
        seen = answer(server, pki, AUTHOR, query_id, params, return_type)
        assert named(seen, story.marks | through), f"{name}: the author does not see the document"
        leaked = named(answer(server, pki, OTHER_PROFESSIONAL, query_id, params, return_type), story.marks | through)
        if leaked:
            leaks[name] = leaked
    assert not leaks, f"shown to a professional the document is masked from ({return_type}): {sorted(leaks)}"


def test_retrieve_of_a_masked_document_answers_as_an_unknown_one(server, pki) -> None:
    story = written_then_masked(server, pki)
    refused = retrieve(server, pki, OTHER_PROFESSIONAL, story.unique_id)
    trace = server.last_trace().event
    unknown = retrieve(server, pki, OTHER_PROFESSIONAL, UNKNOWN_UNIQUE_ID)
    assert refused.error_codes == ["XDSDocumentUniqueIdError"]
    assert shape(refused, story.unique_id) == shape(unknown, UNKNOWN_UNIQUE_ID)
    # The trace says a retrieve was refused, and why; no document went out.
    assert (trace.action, trace.outcome, trace.documents) == ("retrieve", "denied", ())
    assert trace.actor_id == pki.identity(OTHER_PROFESSIONAL).national_id
    assert f"retrieve {story.unique_id}: refused, masked from professionals by the patient" in trace.detail
    other_id = pki.identity(OTHER_PROFESSIONAL).national_id
    given = [
        e.event
        for e in server.trail().history(PATIENT)
        if e.event.actor_id == other_id and story.unique_id in e.event.documents
    ]
    assert given == [], "a trace row says the masked document was given to the other professional"
    # Its author still gets it, and the trace says so.
    assert soap.document_bytes(retrieve(server, pki, AUTHOR, story.unique_id)) == {story.unique_id: story.content}
    trace = server.last_trace().event
    assert (trace.action, trace.outcome, trace.documents) == ("retrieve", "success", (story.unique_id,))


@pytest.mark.parametrize("who", [AUTHOR, ATTENDING, "patient"])
def test_the_author_the_attending_doctor_and_the_patient_still_see_every_version(server, pki, who) -> None:
    story = written_then_masked(server, pki)
    assert soap.document_bytes(retrieve(server, pki, who, story.unique_id)) == {story.unique_id: story.content}
    every_version = answer(
        server,
        pki,
        who,
        v.SQ_GET_DOCUMENTS,
        {v.P_DE_LOGICAL_ID: [quoted(story.logical_id)], v.P_METADATA_LEVEL: ["2"]},
        "LeafClass",
    )
    assert named(every_version, story.ids) == sorted(story.ids)
    first = answer(
        server, pki, who, v.SQ_GET_DOCUMENTS, {v.P_DE_ENTRY_UUID: [quoted(story.versions[0].entry_uuid)]}, "LeafClass"
    )
    assert named(first, story.ids) == sorted({story.unique_id, story.versions[0].entry_uuid})


def test_unmasked_in_its_latest_version_every_version_is_visible_again(server, pki) -> None:
    story = written_then_masked(server, pki)
    masked_codes = story.versions[-1].confidentiality_codes
    new_version(server, pki, story, [c for c in masked_codes if c.code != MASKED.code])
    assert soap.document_bytes(retrieve(server, pki, OTHER_PROFESSIONAL, story.unique_id)) == {
        story.unique_id: story.content
    }
    assert server.last_trace().event.outcome == "success"
    every_version = answer(
        server,
        pki,
        OTHER_PROFESSIONAL,
        v.SQ_GET_DOCUMENTS,
        {v.P_DE_UNIQUE_ID: [quoted(story.unique_id)], v.P_METADATA_LEVEL: ["2"]},
        "LeafClass",
    )
    # Version 2 carries MASQUE_PS, but the document's current state (version 3) does not.
    assert len(re.findall(r"<rim:ExtrinsicObject ", every_version)) == 3
    assert named(every_version, story.ids) == sorted(story.ids)
    still_hidden = [
        name
        for name, (query_id, params, through) in queries(story).items()
        if not named(answer(server, pki, OTHER_PROFESSIONAL, query_id, params, "ObjectRef"), story.marks | through)
    ]
    assert still_hidden == []


def test_an_older_version_of_a_masked_document_is_unknown_to_a_deletion(server, pki) -> None:
    """ITI-62 naming version 1 by its entryUUID is answered as for an id never registered,
    not with an answer that tells the professional it exists (its references, a refusal)."""
    story = written_then_masked(server, pki)
    first = story.versions[0].entry_uuid
    removal = call(server, pki, OTHER_PROFESSIONAL, "registry", soap.delete_document_set([first]))
    assert server.last_trace().event.documents == ()
    never = new_uuid()
    unknown = call(server, pki, OTHER_PROFESSIONAL, "registry", soap.delete_document_set([never]))
    assert removal.error_codes == unknown.error_codes == ["UnresolvedReferenceException"]
    assert [e.replace(first, "ID") for e in errors(removal)] == [e.replace(never, "ID") for e in errors(unknown)]
