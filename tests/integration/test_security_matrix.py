"""The authorization matrix over real TLS: who × what, each outcome asserted and each access
found in the trace with the right fields.

Who: the patient, a minor's legal representative, an authorized professional, the same
professional on a document they wrote, an unauthorized professional, the attending doctor,
emergency access the patient allowed or refused, a closed DMP. What: search (ITI-18), retrieve (ITI-43), submit (ITI-42), mask (ITI-57
new version with MASQUE_PS), delete (ITI-62). Every mask and delete works on a fresh document
written by a professional who is none of the callers, unless the row is about its author.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from lxml import etree

import soap_messages as soap
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Association, Code, Submission
from factories import make_association, make_submission, make_submission_set, new_uuid
from secure_server import MASKED, PATIENT, SecureServer, patient_vihf, start_secure_server, stop_secure_server, vihf

REFUSING = "2910599123456^^^&1.2.250.1.213.1.4.10&ISO"  # refused emergency access at creation
CLOSED = "1750599123456^^^&1.2.250.1.213.1.4.10&ISO"
SOMEONE_ELSE = "899999999999"  # the author of the documents the callers act on
ACTIONS = ("search", "retrieve", "submit", "mask", "delete")

OK, REFUSED, DOCUMENT_REFUSED = "ok", "refused", "document refused"


@dataclass(frozen=True)
class Caller:
    label: str
    card: str  # the TLS client certificate
    patient: str  # the record the VIHF names
    mode: str = sv.ACCESS_NORMAL
    author: bool = False  # acts on documents they wrote
    is_patient: bool = False  # the patient, or (with `representative`) their legal representative
    representative: str = ""  # the representative's own id, the NameID of their VIHF


MINOR = "1130599123456^^^&1.2.250.1.213.1.4.10&ISO"  # whose legal representative is PARENT
PARENT = "2700599123456^^^&1.2.250.1.213.1.4.10&ISO"

CALLERS = {
    "patient": Caller("patient", "patient-portal", PATIENT, is_patient=True),
    "representative": Caller("legal representative", "patient-portal", MINOR, is_patient=True, representative=PARENT),
    "authorized": Caller("authorized professional", "doctor", PATIENT),
    "author": Caller("authorized professional, its author", "doctor", PATIENT, author=True),
    "unauthorized": Caller("unauthorized professional", "pharmacist", PATIENT),
    "attending": Caller("attending doctor", "doctor2", PATIENT),
    "emergency allowed": Caller("emergency access, allowed", "pharmacist", PATIENT, sv.ACCESS_EMERGENCY),
    "emergency refused": Caller("emergency access, refused", "pharmacist", REFUSING, sv.ACCESS_EMERGENCY),
    "closed": Caller("closed DMP", "doctor", CLOSED),
}

# caller -> outcome of (search, retrieve, submit, mask, delete)
MATRIX = {
    "patient": (OK, OK, OK, OK, OK),
    "representative": (OK, OK, OK, OK, OK),
    # Rights matrix: Bn may mask any document (TD3.3a: Y), delete its own only (TD3.3c: Y(8)).
    "authorized": (OK, OK, OK, OK, DOCUMENT_REFUSED),
    "author": (OK, OK, OK, OK, OK),
    "unauthorized": (REFUSED, REFUSED, REFUSED, REFUSED, REFUSED),
    "attending": (OK, OK, OK, OK, DOCUMENT_REFUSED),
    # Ab (a pharmacist in break-glass mode): publish Y, mask N, delete Y(8) own only.
    "emergency allowed": (OK, OK, OK, DOCUMENT_REFUSED, DOCUMENT_REFUSED),
    "emergency refused": (REFUSED, REFUSED, REFUSED, REFUSED, REFUSED),
    "closed": (REFUSED, REFUSED, REFUSED, REFUSED, REFUSED),
}
CELLS = [
    (who, action, expected)
    for who, outcomes in MATRIX.items()
    for action, expected in zip(ACTIONS, outcomes, strict=True)
]
TRACE_ACTION = {"search": "search", "retrieve": "retrieve", "submit": "submit", "mask": "update", "delete": "delete"}


def refusal(who: str, action: str) -> str:
    """The policy's reason for a refused cell, as the fault and the trace give it."""
    if who == "closed":
        return "the DMP is closed"
    if who == "emergency refused":
        return "the patient refused emergency access"
    return "the patient has not authorized this professional"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    running = start_secure_server(tmp_path_factory.mktemp("secure-matrix"), pki, tls=True)
    doctor = pki.identity("doctor").national_id
    running.cli("dmp", "create", PATIENT, "--collected-by", doctor)
    running.cli("dmp", "grant", PATIENT, doctor)
    running.cli("dmp", "grant", PATIENT, pki.identity("doctor2").national_id, "--kind", "attending")
    running.cli("dmp", "create", REFUSING, "--collected-by", doctor, "--no-emergency-access")
    running.cli("dmp", "grant", REFUSING, doctor)
    running.cli("dmp", "create", CLOSED, "--collected-by", doctor)
    running.cli("dmp", "grant", CLOSED, doctor)
    running.cli("dmp", "close", CLOSED)
    running.cli("dmp", "create", MINOR, "--collected-by", doctor)
    running.cli("dmp", "representative", "add", MINOR, PARENT, "--evidence", "livret de famille")
    yield running
    stop_secure_server(running)


def assertion_of(pki: GeneratedPki, caller: Caller) -> etree._Element:
    if caller.is_patient:
        return patient_vihf(pki, caller.patient, representative=caller.representative)
    reason = "patient inconscient" if caller.mode == sv.ACCESS_EMERGENCY else ""
    return vihf(pki, caller.card, caller.patient, access_mode=caller.mode, access_reason=reason)


def masking(original: Submission) -> Submission:
    """ITI-57: a new version of the document with MASQUE_PS."""
    entry = original.documents[0]
    ss = make_submission_set(patient_id=entry.patient_id)
    version = replace(
        entry,
        entry_uuid=new_uuid(),
        logical_id=entry.entry_uuid,
        status=None,
        version=None,
        confidentiality_codes=[*entry.confidentiality_codes, MASKED],
    )
    link = make_association(
        ss.entry_uuid,
        version.entry_uuid,
        slots={v.SLOT_SUBMISSION_SET_STATUS: ["Original"], v.SLOT_PREVIOUS_VERSION: ["1"]},
    )
    return Submission(ss, [version], [], [link], submission_set_count=1)


def request_for(
    server: SecureServer, pki: GeneratedPki, caller: Caller, action: str
) -> tuple[str, soap.HttpRequest, str]:
    """(endpoint, request, uniqueId of the document it is about) of one cell."""
    author = pki.identity(caller.card).national_id if caller.author else SOMEONE_ELSE
    target = server.store_document(f"{caller.card}-{action}-{new_uuid()[9:17]}", caller.patient, author=author)
    unique_id = target.documents[0].unique_id or ""
    if action == "search":
        return (
            "registry",
            soap.adhoc_query(
                v.SQ_FIND_DOCUMENTS,
                {v.P_DE_PATIENT_ID: [f"'{caller.patient}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]},
            ),
            unique_id,
        )
    if action == "retrieve":
        return "repository", soap.retrieve([(server.repository_id, unique_id)]), unique_id
    if action == "submit":
        submission = make_submission(1, submission_set=make_submission_set(patient_id=caller.patient))
        submission.documents[0].patient_id = caller.patient
        return "registry", soap.register(submission), submission.documents[0].unique_id or ""
    if action == "mask":
        return "registry", soap.update(masking(target)), unique_id
    entry = target.documents[0]
    association = next(a for a in target.associations if a.target == entry.entry_uuid)
    ids = [target.submission_set.entry_uuid, association.entry_uuid, entry.entry_uuid]
    return "registry", soap.delete_document_set(ids), unique_id


@pytest.mark.parametrize("who, action, expected", CELLS, ids=[f"{w}-{a}" for w, a, _ in CELLS])
def test_authorization_matrix(server: SecureServer, pki: GeneratedPki, who: str, action: str, expected: str) -> None:
    caller = CALLERS[who]
    endpoint, request, unique_id = request_for(server, pki, caller, action)
    response = server.call(endpoint, request, assertion_of(pki, caller), card=caller.card)
    entry = server.last_trace(caller.patient)
    event = entry.event
    # The trace row of this very request: who, from where, how, what, about whom.
    identity = pki.identity(caller.card)
    assert event.actor_id == (caller.representative or caller.patient if caller.is_patient else identity.national_id)
    assert event.action == TRACE_ACTION[action]
    assert event.patient_id == caller.patient
    assert event.access_mode == caller.mode
    assert entry.emergency is (caller.mode == sv.ACCESS_EMERGENCY)
    if not caller.is_patient:
        assert event.structure_id == (identity.structure_id or "1990000099")
    if expected == REFUSED:
        assert response.status_code == 403, (who, action, response.status, response.error_codes)
        assert f"access refused: {refusal(who, action)}" in (response.fault_reason or ""), response.fault_reason
        assert (event.outcome, event.documents) == ("denied", ()) and refusal(who, action) in event.detail
        return
    assert response.status_code == 200, (who, action, response.fault_reason)
    if expected == DOCUMENT_REFUSED:
        assert response.status == "Failure" and response.error_codes == ["XDSRegistryError"]
        context = next(response.payload.iter(v.TAG_REGISTRY_ERROR)).get("codeContext", "")
        assert "access refused" in context and unique_id in context and "rights matrix: TD3.3" in context
        assert "rights matrix: TD3.3" in event.detail
        assert (event.outcome, event.documents) == ("denied", (unique_id,))
        assert f"{'mask' if action == 'mask' else 'delete'} {unique_id}: refused" in event.detail
        return
    status = response.payload.get("status") or response.registry_response.get("status", "")
    assert status.endswith(":Success"), (who, action, response.error_codes)
    assert event.outcome == "success"
    assert unique_id in event.documents
    if action in ("mask", "delete"):
        assert event.documents == (unique_id,) and f"{unique_id}: allowed" in event.detail
    if entry.emergency:
        assert "EMERGENCY ACCESS" in event.detail and event.access_reason == "patient inconscient"


def test_every_cell_of_the_issue_is_in_the_matrix() -> None:
    assert set(MATRIX) >= {
        "patient",
        "representative",
        "authorized",
        "unauthorized",
        "attending",
        "emergency allowed",
        "emergency refused",
        "closed",
    }
    assert all(len(outcomes) == len(ACTIONS) for outcomes in MATRIX.values())


def test_a_hidden_document_is_changed_as_an_unknown_one(server: SecureServer, pki: GeneratedPki) -> None:
    """Masked from an authorized professional who did not write it: ITI-57 and ITI-62 answer as
    for an id that was never registered, revealing nothing."""
    hidden = server.store_document(f"hidden-{new_uuid()[9:17]}", PATIENT, (MASKED,), SOMEONE_ELSE)
    update = server.call("registry", soap.update(masking(hidden)), vihf(pki, "doctor"))
    assert update.error_codes == ["XDSMetadataVersionError"]
    assert "no registered DocumentEntry has this logical id" in etree.tostring(update.payload).decode()
    entry = hidden.documents[0]
    removal = server.call("registry", soap.delete_document_set([entry.entry_uuid]), vihf(pki, "doctor"))
    assert removal.error_codes == ["UnresolvedReferenceException"]
    assert f"{entry.entry_uuid} is not registered" in etree.tostring(removal.payload).decode()
    # The attending doctor sees it, and may unmask it.
    still = server.call(
        "registry",
        soap.adhoc_query(v.SQ_GET_DOCUMENTS, {v.P_DE_UNIQUE_ID: [f"('{entry.unique_id}')"]}),
        vihf(pki, "doctor2"),
        card="doctor2",
    )
    assert entry.unique_id in etree.tostring(still.payload).decode()


def test_archiving_is_the_patients_or_as_the_matrix_says(server: SecureServer, pki: GeneratedPki) -> None:
    target = server.store_document(f"archive-{new_uuid()[9:17]}", PATIENT, author=SOMEONE_ELSE)
    ss = make_submission_set(patient_id=PATIENT)
    change = Association(
        new_uuid(),
        v.UPDATE_AVAILABILITY_STATUS,
        ss.entry_uuid,
        target.documents[0].entry_uuid,
        slots={v.SLOT_ORIGINAL_STATUS: [v.STATUS_APPROVED], v.SLOT_NEW_STATUS: [v.STATUS_ARCHIVED]},
    )
    request = Submission(ss, [], [], [change], submission_set_count=1)
    # Not its author: the rights matrix's TD3.3d cell of an authorized doctor is Y(8), own documents.
    refused = server.call("registry", soap.update(request), vihf(pki, "doctor"))
    assert refused.error_codes == ["XDSRegistryError"]
    text = etree.tostring(refused.payload).decode()
    assert "change status" in text and "TD3.3d archive / unarchive, profile B" in text and "Y(8) refused" in text
    request.submission_set.entry_uuid = new_uuid()
    change.source = request.submission_set.entry_uuid
    change.entry_uuid = new_uuid()
    allowed = server.call("registry", soap.update(request), patient_vihf(pki), card="patient-portal")
    assert allowed.status == "Success", allowed.error_codes
    event = server.last_trace().event
    assert event.documents == (target.documents[0].unique_id,)
    assert "change-status" in event.detail


# --- legal representatives (INVISIBLE_REPRESENTANTS_LEGAUX) ------------------------------------

OTHER_MINOR = "1120599123456^^^&1.2.250.1.213.1.4.10&ISO"
STRANGER_ADULT = "1650599123456^^^&1.2.250.1.213.1.4.10&ISO"
HIDDEN_FROM_PARENTS = Code(
    "INVISIBLE_REPRESENTANTS_LEGAUX", "1.2.250.1.213.1.1.4.13", "Non visible par les représentants légaux du patient"
)


def test_legal_representative_does_not_see_what_is_hidden_from_them(server: SecureServer, pki: GeneratedPki) -> None:
    server.cli("dmp", "create", OTHER_MINOR, "--collected-by", "accueil")
    server.cli("dmp", "representative", "add", OTHER_MINOR, PARENT)
    plain = server.store_document(f"minor-{new_uuid()[9:17]}", OTHER_MINOR).documents[0].unique_id
    secret = server.store_document(f"minor-secret-{new_uuid()[9:17]}", OTHER_MINOR, (HIDDEN_FROM_PARENTS,)).documents[0]
    query = soap.adhoc_query(
        v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{OTHER_MINOR}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
    )

    def found(response: soap.SoapResponse) -> set[str]:
        return {
            i.get("value", "")
            for i in response.payload.iter(v.TAG_EXTERNAL_IDENTIFIER)
            if i.get("identificationScheme") == v.DE_UNIQUE_ID
        }

    parent = patient_vihf(pki, OTHER_MINOR, representative=PARENT)
    assert found(server.call("registry", query, parent, card="patient-portal")) == {plain}
    trace = server.last_trace(OTHER_MINOR).event
    assert (trace.actor_id, trace.outcome, trace.documents) == (PARENT, "success", (plain,))
    # The minor sees both; a guessed uniqueId tells the parent nothing.
    assert found(server.call("registry", query, patient_vihf(pki, OTHER_MINOR), card="patient-portal")) == {
        plain,
        secret.unique_id,
    }
    retrieve = server.call(
        "repository",
        soap.retrieve([(server.repository_id, secret.unique_id or "")]),
        patient_vihf(pki, OTHER_MINOR, representative=PARENT),
        card="patient-portal",
    )
    assert retrieve.error_codes == ["XDSDocumentUniqueIdError"]
    # Nor may they change it; they may manage the rest as the patient would.
    removal = server.call(
        "registry",
        soap.delete_document_set([secret.entry_uuid]),
        patient_vihf(pki, OTHER_MINOR, representative=PARENT),
        card="patient-portal",
    )
    assert removal.error_codes == ["UnresolvedReferenceException"]
    # Someone the operator did not declare is no representative, whatever their VIHF says.
    stranger = server.call(
        "registry", query, patient_vihf(pki, OTHER_MINOR, representative=STRANGER_ADULT), card="patient-portal"
    )
    assert stranger.status_code == 403 and "not a declared legal representative" in (stranger.fault_reason or "")
    server.cli("dmp", "representative", "remove", OTHER_MINOR, PARENT)
    removed = server.call(
        "registry", query, patient_vihf(pki, OTHER_MINOR, representative=PARENT), card="patient-portal"
    )
    assert removed.status_code == 403
