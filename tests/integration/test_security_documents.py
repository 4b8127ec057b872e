"""Document-level policy over real TLS: what an allowed caller may see of the record.

A masked document (MASQUE_PS) is invisible to a professional who is neither its author nor the
attending doctor, in every stored query and in ITI-43, as is any object of another patient than
the VIHF's: not listed, not counted, not reachable by a guessed uniqueId. A submission goes only
to the record the VIHF names.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import soap_messages as soap
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.xds import vocabulary as v
from factories import make_submission
from secure_server import MASKED, PATIENT, SecureServer, start_secure_server, stop_secure_server, vihf

OTHER = "1750599123456^^^&1.2.250.1.213.1.4.10&ISO"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    running = start_secure_server(tmp_path_factory.mktemp("secure-docs"), pki, tls=True)
    for patient in (PATIENT, OTHER):
        running.cli("dmp", "create", patient, "--collected-by", "operator")
        running.cli("dmp", "grant", patient, pki.identity("doctor").national_id)
    yield running
    stop_secure_server(running)


@pytest.fixture(scope="module")
def documents(server: SecureServer, pki: GeneratedPki) -> dict[str, str]:
    """uniqueIds of: a plain document, a masked one, a masked one the doctor wrote, another
    patient's; registered with their files straight into the server's store."""
    doctor = pki.identity("doctor").national_id
    made: dict[str, str] = {}
    for name, patient, codes, author in (
        ("plain", PATIENT, (), ""),
        ("masked", PATIENT, (MASKED,), ""),
        ("masked_own", PATIENT, (MASKED,), doctor),
        ("other", OTHER, (), ""),
    ):
        made[name] = server.store_document(name, patient, codes, author).documents[0].unique_id
    return made


def _found_unique_ids(response: soap.SoapResponse) -> set[str]:
    return {
        ident.get("value", "")
        for ident in response.payload.iter(v.TAG_EXTERNAL_IDENTIFIER)
        if ident.get("identificationScheme") == v.DE_UNIQUE_ID
    }


def _get_documents(unique_ids: list[str], return_type: str = "LeafClass") -> soap.HttpRequest:
    return soap.adhoc_query(
        v.SQ_GET_DOCUMENTS,
        {"$XDSDocumentEntryUniqueId": ["(" + ",".join(f"'{u}'" for u in unique_ids) + ")"]},
        return_type,
    )


def test_find_documents_hides_masked_documents_from_a_professional(server, pki, documents) -> None:
    query = soap.adhoc_query(
        v.SQ_FIND_DOCUMENTS,
        {"$XDSDocumentEntryPatientId": [f"'{PATIENT}'"], "$XDSDocumentEntryStatus": [f"('{v.STATUS_APPROVED}')"]},
    )
    response = server.call("registry", query, vihf(pki, "doctor"))
    assert response.status_code == 200, response.fault_reason
    # The author sees the document they masked-from-others; nobody else's masked one.
    assert _found_unique_ids(response) == {documents["plain"], documents["masked_own"]}
    refs = server.call(
        "registry",
        soap.adhoc_query(
            v.SQ_FIND_DOCUMENTS,
            {"$XDSDocumentEntryPatientId": [f"'{PATIENT}'"], "$XDSDocumentEntryStatus": [f"('{v.STATUS_APPROVED}')"]},
            "ObjectRef",
        ),
        vihf(pki, "doctor"),
    )
    assert len(list(refs.payload.iter(f"{{{v.NS_RIM}}}ObjectRef"))) == 2  # not even counted


def test_guessed_unique_ids_reveal_nothing(server, pki, documents) -> None:
    wanted = [documents["masked"], documents["other"], documents["plain"]]
    response = server.call("registry", _get_documents(wanted), vihf(pki, "doctor"))
    assert _found_unique_ids(response) == {documents["plain"]}
    associations = server.call(
        "registry",
        soap.adhoc_query(
            v.SQ_GET_DOCUMENTS_AND_ASSOCIATIONS, {"$XDSDocumentEntryUniqueId": [f"('{documents['masked']}')"]}
        ),
        vihf(pki, "doctor"),
    )
    assert list(associations.payload.iter(v.TAG_ASSOCIATION)) == []


def test_emergency_access_sees_masked_documents_the_patient_allowed(server, pki, documents) -> None:
    """The rights matrix: in break-glass mode a doctor reads masked documents if the patient
    allowed break-glass access (TD3.2 masked, Bb: Y(7)), which this record does."""
    response = server.call(
        "registry",
        _get_documents([documents["masked"]]),
        vihf(pki, "doctor2", access_mode=sv.ACCESS_EMERGENCY, access_reason="coma"),
        card="doctor2",
    )
    assert response.status_code == 200, response.fault_reason
    assert _found_unique_ids(response) == {documents["masked"]}


def test_retrieve_answers_a_hidden_document_as_unknown(server, pki, documents) -> None:
    repository_id = server.repository_id
    request = soap.retrieve(
        [(repository_id, documents["plain"]), (repository_id, documents["masked"]), (repository_id, documents["other"])]
    )
    response = server.call("repository", request, vihf(pki, "doctor"))
    assert response.status == "PartialSuccess", response.fault_reason
    assert set(soap.document_bytes(response)) == {documents["plain"]}
    contexts = [e.get("codeContext", "") for e in response.registry_response.iter(v.TAG_REGISTRY_ERROR)]
    assert response.error_codes == ["XDSDocumentUniqueIdError", "XDSDocumentUniqueIdError"]
    assert all("is not in this repository" in c for c in contexts)  # same words as a truly unknown one


def test_submission_only_to_the_record_the_vihf_names(server, pki) -> None:
    submission = make_submission(1)
    submission.submission_set.patient_id = OTHER
    submission.documents[0].patient_id = OTHER
    response = server.call("registry", soap.register(submission), vihf(pki, "doctor", PATIENT))
    assert response.status == "Failure"
    assert response.error_codes == ["XDSPatientIdDoesNotMatch"]
