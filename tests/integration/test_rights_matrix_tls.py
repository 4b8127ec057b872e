"""The DMP's functional rights matrix over real TLS: each XDS row (TD2.1 publish, TD3.1 search and
find a reference, TD3.2 read plain and masked, TD3.3a mask and unmask, TD3.3d archive, TD3.3c
delete) allowed and refused for the matrix's profiles, identities from the test PKI: a doctor
(B), the attending doctor (D), a nurse (A, profession 60), an occupational doctor (C, specialty
SM25), the hospital's secretary with a CPE card (E), the hospital's certificate (F, indirect
mode); access modes from the VIHF. Each refusal names its cell in the answer and in the trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from lxml import etree

import soap_messages as soap
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Association, Submission
from factories import make_association, make_submission, make_submission_set, new_uuid
from secure_server import MASKED, PATIENT, SecureServer, start_secure_server, stop_secure_server, vihf
from xds_server import BACKENDS, database_for, documents_for

REFUSING = "2910599123456^^^&1.2.250.1.213.1.4.10&ISO"  # refused break-glass access
SOMEONE_ELSE = "899999999999"  # the author of documents no caller wrote
OTHER_STRUCTURE = "1990000099"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureServer]:
    running = start_secure_server(
        tmp_path_factory.mktemp(f"rights-{request.param}"),
        pki,
        tls=True,
        database_url=database_for(request),
        extra=documents_for(request),
    )
    ids = {name: pki.identity(name).national_id for name in ("doctor", "doctor2", "nurse", "occupational")}
    hospital = pki.identity("hospital").structure_id
    running.cli("dmp", "create", PATIENT, "--collected-by", ids["doctor"])
    for name in ("doctor", "nurse", "occupational"):
        running.cli("dmp", "grant", PATIENT, ids[name])
    running.cli("dmp", "grant", PATIENT, ids["doctor2"], "--kind", "attending")
    # The hospital's staff: the secretary's CPE card and the hospital's own certificate.
    running.cli("dmp", "grant", PATIENT, hospital, "--kind", "establishment")
    running.cli("dmp", "create", REFUSING, "--collected-by", ids["doctor"], "--no-emergency-access")
    running.cli("dmp", "grant", REFUSING, ids["doctor"])
    yield running
    stop_secure_server(running)


def ask(
    server: SecureServer,
    pki: GeneratedPki,
    endpoint: str,
    request: soap.HttpRequest,
    who: str,
    patient: str = PATIENT,
    mode: str = sv.ACCESS_NORMAL,
) -> soap.SoapResponse:
    """`request` from `who` ("hospital": the nurse's VIHF signed by the hospital, over its
    certificate: indirect mode), in access `mode`."""
    if who == "hospital":
        assertion = vihf(pki, "nurse", patient, signer="hospital", authentication_mode=sv.AUTHENTICATION_INDIRECT)
        return server.call(endpoint, request, assertion, card="hospital")
    reason = {"access_reason": "patient inconscient"} if mode == sv.ACCESS_EMERGENCY else {}
    return server.call(endpoint, request, vihf(pki, who, patient, access_mode=mode, **reason), card=who)


def find(patient: str = PATIENT, return_type: str = "LeafClass") -> soap.HttpRequest:
    return soap.adhoc_query(
        v.SQ_FIND_DOCUMENTS,
        {v.P_DE_PATIENT_ID: [f"'{patient}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]},
        return_type,
    )


def new_version(original: Submission, masked: bool) -> Submission:
    """ITI-57: a new version of the document, with or without MASQUE_PS."""
    entry = original.documents[0]
    ss = make_submission_set(patient_id=entry.patient_id)
    codes = [c for c in entry.confidentiality_codes if c.code != MASKED.code] + ([MASKED] if masked else [])
    version = replace(
        entry,
        entry_uuid=new_uuid(),
        logical_id=entry.entry_uuid,
        status=None,
        version=None,
        confidentiality_codes=codes,
    )
    link = make_association(
        ss.entry_uuid,
        version.entry_uuid,
        slots={v.SLOT_SUBMISSION_SET_STATUS: ["Original"], v.SLOT_PREVIOUS_VERSION: ["1"]},
    )
    return Submission(ss, [version], [], [link], submission_set_count=1)


def status_change(original: Submission, new_status: str) -> Submission:
    """ITI-57: the document's availability status, Approved -> Archived (TD3.3d) or Deleted (TD3.3c)."""
    ss = make_submission_set(patient_id=original.documents[0].patient_id)
    change = Association(
        new_uuid(),
        v.UPDATE_AVAILABILITY_STATUS,
        ss.entry_uuid,
        original.documents[0].entry_uuid,
        slots={v.SLOT_ORIGINAL_STATUS: [v.STATUS_APPROVED], v.SLOT_NEW_STATUS: [new_status]},
    )
    return Submission(ss, [], [], [change], submission_set_count=1)


def document(server: SecureServer, patient: str = PATIENT, masked: bool = False, **author: str) -> Submission:
    return server.store_document(f"rm-{new_uuid()[9:17]}", patient, (MASKED,) if masked else (), **author)


def found(response: soap.SoapResponse) -> set[str]:
    return {
        i.get("value", "")
        for i in response.payload.iter(v.TAG_EXTERNAL_IDENTIFIER)
        if i.get("identificationScheme") == v.DE_UNIQUE_ID
    }


def object_refs(response: soap.SoapResponse) -> set[str]:
    return {o.get("id", "") for o in response.payload.iter(f"{{{v.NS_RIM}}}ObjectRef")}


def assert_xds_refused(server: SecureServer, response: soap.SoapResponse, cell: str, patient: str = PATIENT) -> None:
    """Refused inside the transaction: an XDSRegistryError naming the cell, and a denied trace row."""
    assert response.status_code == 200, response.fault_reason
    assert "XDSRegistryError" in response.error_codes, response.error_codes
    text = etree.tostring(response.payload, encoding="unicode")
    assert "access refused" in text and cell in text, text[:2000]
    row = server.last_trace(patient).event
    assert row.outcome == "denied" and cell in row.detail, row.detail


def assert_fault(server: SecureServer, response: soap.SoapResponse, cell: str, patient: str = PATIENT) -> None:
    """Refused at the record's door: a SOAP fault naming the cell, and a denied trace row."""
    assert response.status_code == 403, (response.status_code, response.error_codes)
    assert f"access refused: {cell}" in (response.fault_reason or ""), response.fault_reason
    row = server.last_trace(patient).event
    assert row.outcome == "denied" and cell in row.detail, row.detail


def assert_success(server: SecureServer, response: soap.SoapResponse, cell: str, patient: str = PATIENT) -> None:
    assert response.status_code == 200, response.fault_reason
    assert response.status in ("Success", "PartialSuccess"), response.error_codes
    row = server.last_trace(patient).event
    assert row.outcome == "success" and cell in row.detail, row.detail


# --- TD3.1 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["nurse", "occupational", "doctor2"])
def test_search_metadata_allowed(server: SecureServer, pki: GeneratedPki, who: str) -> None:
    plain = document(server).documents[0].unique_id
    response = ask(server, pki, "registry", find(), who)
    assert response.status_code == 200 and plain in found(response), response.error_codes


@pytest.mark.parametrize(
    "who, cell",
    [
        ("secretary", "rights matrix: TD3.1 search metadata, profile E (carte CPE), mode n: N"),
        ("hospital", "rights matrix: TD3.1 search metadata, profile F (établissement, mode indirect), mode n: N"),
    ],
)
def test_search_metadata_refused(server: SecureServer, pki: GeneratedPki, who: str, cell: str) -> None:
    document(server)
    response = ask(server, pki, "registry", find(), who)
    assert_xds_refused(server, response, cell)
    assert found(response) == set()


@pytest.mark.parametrize("who, profile", [("secretary", "E"), ("hospital", "F"), ("nurse", "A")])
def test_find_a_reference(server: SecureServer, pki: GeneratedPki, who: str, profile: str) -> None:
    target = document(server).documents[0].entry_uuid
    response = ask(server, pki, "registry", find(return_type="ObjectRef"), who)
    assert response.status_code == 200 and target in object_refs(response), response.error_codes
    assert server.last_trace().event.outcome == "success"


# --- TD3.2 ----------------------------------------------------------------------------------


def retrieve(server: SecureServer, unique_id: str) -> soap.HttpRequest:
    return soap.retrieve([(server.repository_id, unique_id)])


@pytest.mark.parametrize("who", ["nurse", "doctor", "doctor2"])
def test_read_a_plain_document(server: SecureServer, pki: GeneratedPki, who: str) -> None:
    unique_id = document(server).documents[0].unique_id or ""
    response = ask(server, pki, "repository", retrieve(server, unique_id), who)
    assert response.status == "Success" and set(soap.document_bytes(response)) == {unique_id}


@pytest.mark.parametrize(
    "who, profile",
    [
        ("occupational", "C (médecin du travail)"),
        ("secretary", "E (carte CPE)"),
        ("hospital", "F (établissement, mode indirect)"),
    ],
)
def test_read_refused(server: SecureServer, pki: GeneratedPki, who: str, profile: str) -> None:
    unique_id = document(server).documents[0].unique_id or ""
    response = ask(server, pki, "repository", retrieve(server, unique_id), who)
    cell = f"rights matrix: TD3.2 document not masked / TD3.2 masked document, profile {profile}, mode n: N / N"
    assert_fault(server, response, cell)


def test_read_masked_documents(server: SecureServer, pki: GeneratedPki) -> None:
    doctor = pki.identity("doctor").national_id
    own = document(server, masked=True, author=doctor).documents[0].unique_id or ""
    theirs = document(server, masked=True, author=SOMEONE_ELSE).documents[0].unique_id or ""
    # Bn: Y(6), own documents only. A masked document is answered as an unknown one (it reveals
    # nothing); the trace tells the cell.
    mine = ask(server, pki, "repository", retrieve(server, own), "doctor")
    assert mine.status == "Success"
    assert "TD3.2 masked document, profile B (médecin non-MT), mode n: Y(6)" in server.last_trace().event.detail
    hidden = ask(server, pki, "repository", retrieve(server, theirs), "doctor")
    assert hidden.error_codes == ["XDSDocumentUniqueIdError"]
    row = server.last_trace().event
    assert row.outcome == "denied"
    assert "TD3.2 masked document, profile B (médecin non-MT), mode n: Y(6) refused" in row.detail
    # Dn: Y. Ab (a nurse in break-glass mode, the patient allowing it): Y(7).
    attending = ask(server, pki, "repository", retrieve(server, theirs), "doctor2")
    assert attending.status == "Success"
    assert "profile D (médecin traitant DMP), mode n: Y" in server.last_trace().event.detail
    urgent = ask(server, pki, "repository", retrieve(server, theirs), "pharmacist", mode=sv.ACCESS_EMERGENCY)
    assert urgent.status == "Success", urgent.error_codes
    assert "profile A (PS non-médecin), mode b: Y(7)" in server.last_trace().event.detail


def test_read_masked_in_break_glass_mode_the_patient_refused(server: SecureServer, pki: GeneratedPki) -> None:
    """(7): the doctor is authorized, so gets in; the masked document stays closed to break-glass."""
    masked = document(server, REFUSING, masked=True, author=SOMEONE_ELSE).documents[0].unique_id or ""
    plain = document(server, REFUSING).documents[0].unique_id or ""
    response = ask(
        server,
        pki,
        "repository",
        soap.retrieve([(server.repository_id, masked), (server.repository_id, plain)]),
        "doctor",
        REFUSING,
        sv.ACCESS_EMERGENCY,
    )
    assert response.status == "PartialSuccess" and set(soap.document_bytes(response)) == {plain}
    row = server.last_trace(REFUSING).event
    assert "TD3.2 masked document, profile B (médecin non-MT), mode b: Y(7) refused" in row.detail
    assert "the patient refused this access mode" in row.detail


# --- TD3.3a / TD3.3d / TD3.3c ------------------------------------------------------------------


def test_mask_allowed_to_a_nurse_refused_in_break_glass(server: SecureServer, pki: GeneratedPki) -> None:
    target = document(server, author=SOMEONE_ELSE)
    allowed = ask(server, pki, "registry", soap.update(new_version(target, masked=True)), "nurse")
    assert_success(
        server, allowed, "TD3.3a mask / TD3.3b make visible to the patient, profile A (PS non-médecin), mode n: Y"
    )
    other = document(server, author=SOMEONE_ELSE)
    refused = ask(
        server, pki, "registry", soap.update(new_version(other, masked=True)), "pharmacist", mode=sv.ACCESS_EMERGENCY
    )
    assert_xds_refused(
        server,
        refused,
        "rights matrix: TD3.3a mask / TD3.3b make visible to the patient, profile A (PS non-médecin), mode b: N",
    )


def test_mask_refused_to_a_cpe_card(server: SecureServer, pki: GeneratedPki) -> None:
    target = document(server, author=SOMEONE_ELSE)
    refused = ask(server, pki, "registry", soap.update(new_version(target, masked=True)), "secretary")
    assert_xds_refused(
        server, refused, "TD3.3a mask / TD3.3b make visible to the patient, profile E (carte CPE), mode n: N"
    )


def test_unmask(server: SecureServer, pki: GeneratedPki) -> None:
    doctor = pki.identity("doctor").national_id
    own = document(server, masked=True, author=doctor)
    allowed = ask(server, pki, "registry", soap.update(new_version(own, masked=False)), "doctor")
    assert_success(server, allowed, "TD3.3a unmask, profile B (médecin non-MT), mode n: Y(8)")
    # The attending doctor sees masked documents in break-glass mode too (Db: Y(7)) but may not unmask there.
    theirs = document(server, masked=True, author=SOMEONE_ELSE)
    refused = ask(
        server, pki, "registry", soap.update(new_version(theirs, masked=False)), "doctor2", mode=sv.ACCESS_EMERGENCY
    )
    assert_xds_refused(server, refused, "rights matrix: TD3.3a unmask, profile D (médecin traitant DMP), mode b: N")


def test_archive(server: SecureServer, pki: GeneratedPki) -> None:
    target = document(server, author=SOMEONE_ELSE)
    refused = ask(server, pki, "registry", soap.update(status_change(target, v.STATUS_ARCHIVED)), "doctor")
    assert_xds_refused(
        server,
        refused,
        "rights matrix: TD3.3d archive / unarchive, profile B (médecin non-MT), mode n: Y(8) refused, "
        "the caller is not the document's author",
    )
    allowed = ask(server, pki, "registry", soap.update(status_change(target, v.STATUS_ARCHIVED)), "doctor2")
    assert_success(server, allowed, "TD3.3d archive / unarchive, profile D (médecin traitant DMP), mode n: Y")


def test_archive_a_patient_authored_document(server: SecureServer, pki: GeneratedPki) -> None:
    """(*): its own-documents cell does not let the doctor; the attending doctor may."""
    patient_wrote = document(server, author=PATIENT.split("^")[0])
    refused = ask(server, pki, "registry", soap.update(status_change(patient_wrote, v.STATUS_ARCHIVED)), "nurse")
    assert_xds_refused(
        server, refused, "TD3.3d archive / unarchive, profile A (PS non-médecin), mode n: Y(8) refused, (*)"
    )
    allowed = ask(server, pki, "registry", soap.update(status_change(patient_wrote, v.STATUS_ARCHIVED)), "doctor2")
    assert_success(server, allowed, "(*) on a document the patient wrote")


@pytest.mark.parametrize(
    "who, profile", [("hospital", "F (établissement, mode indirect)"), ("secretary", "E (carte CPE)")]
)
def test_delete_the_structures_documents(server: SecureServer, pki: GeneratedPki, who: str, profile: str) -> None:
    hospital = pki.identity("hospital").structure_id
    ours = document(server, author=SOMEONE_ELSE, institution=hospital)
    allowed = ask(server, pki, "registry", soap.update(status_change(ours, v.STATUS_DELETED)), who)
    assert_success(server, allowed, f"TD3.3c delete, profile {profile}, mode n: Y(9)")
    theirs = document(server, author=SOMEONE_ELSE, institution=OTHER_STRUCTURE)
    refused = ask(server, pki, "registry", soap.update(status_change(theirs, v.STATUS_DELETED)), who)
    assert_xds_refused(server, refused, f"rights matrix: TD3.3c delete, profile {profile}, mode n: Y(9) refused")


def test_delete_own_documents_only(server: SecureServer, pki: GeneratedPki) -> None:
    nurse = pki.identity("nurse").national_id
    own = document(server, author=nurse)
    allowed = ask(server, pki, "registry", soap.update(status_change(own, v.STATUS_DELETED)), "nurse")
    assert_success(server, allowed, "TD3.3c delete, profile A (PS non-médecin), mode n: Y(8)")
    theirs = document(server, author=SOMEONE_ELSE)
    refused = ask(server, pki, "registry", soap.update(status_change(theirs, v.STATUS_DELETED)), "occupational")
    assert_xds_refused(server, refused, "TD3.3c delete, profile C (médecin du travail), mode n: Y(8) refused")


# --- TD2.1 / TD2.2 ----------------------------------------------------------------------------


def publish(patient: str = PATIENT) -> soap.HttpRequest:
    submission = make_submission(1, submission_set=make_submission_set(patient_id=patient))
    for entry in submission.documents:
        entry.patient_id = patient
        entry.hash = entry.size = entry.repository_unique_id = None
    return soap.provide_and_register(
        submission, {e.entry_uuid: b"compte rendu\n" for e in submission.documents}, mtom=False
    )


@pytest.mark.parametrize(
    "who, cell",
    [
        (
            "hospital",
            "TD2.1 publish, profile F (établissement, mode indirect), mode n: Y(4) the document is attributed",
        ),
        ("secretary", "TD2.2 publish by CPE, profile E (carte CPE), mode n: Y(4)"),
        ("occupational", "TD2.1 publish, profile C (médecin du travail), mode n: Y"),
    ],
)
def test_publish_allowed(server: SecureServer, pki: GeneratedPki, who: str, cell: str) -> None:
    response = ask(server, pki, "repository", publish(), who)
    assert_success(server, response, cell)


def test_publish_refused_where_the_matrix_has_no_column(server: SecureServer, pki: GeneratedPki) -> None:
    """The occupational doctor has a normal column only: in break-glass mode, nothing."""
    response = ask(server, pki, "repository", publish(), "occupational", mode=sv.ACCESS_EMERGENCY)
    assert_fault(
        server,
        response,
        "rights matrix: TD2.1 publish, profile C (médecin du travail), mode b: the matrix gives this profile no access",
    )
