"""TD2.1 as the DMP receives it, over TLS with a card and a VIHF, on a CI-SIS server (SQLite and
PostgreSQL): a SOAP 1.1 envelope in MTOM whose submission set is signed (XAdES), the document
and its signature as `text/xml; charset=Cp1252` parts. A signed submission is stored and its
signature retrievable by its author; a tampered document, a signature by another card than the
VIHF's, or no signature at all are refused with nothing stored and the refusal traced. Then
TD3.3 archive, unarchive and delete at the DMP's path, answered with the DMP's reply action."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

import soap_messages as soap
from dmp_xds.dmp.submission_signature import add_submission_signature
from dmp_xds.security.cps import load_pem_certificates
from dmp_xds.security.pki import GeneratedPki, create_test_pki, signed_vihf
from dmp_xds.security.vihf import security_header
from dmp_xds.tools.client.metadata import build_submission_from_cda
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.encode import encode_submit_objects_request
from dmp_xds.xds.model import Association, Submission
from factories import make_submission_set, new_uuid
from secure_server import AUDIENCE, SecureServer, start_secure_server, stop_secure_server
from xds_server import BACKENDS, database_for, documents_for, stored_state

ANS = Path(__file__).resolve().parents[2] / ".." / "shared" / "ans-testcontenucda"
CDA = ANS / "ExemplesCDA" / "ANEST-CR-ANEST_2022.01.xml"
PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO"  # the INS of that CDA
AUTHOR = "ans-author"  # its author
LOCAL_PATIENT_ID = "0456789999^^^&1.2.250.1.999.1.1.7898.2&ISO"
DMPI = "/si-dmp-server/v2/services/"
WSDL_OPERATION = "DocumentRepository_ProvideAndRegisterDocumentSet-b"

pytestmark = pytest.mark.skipif(not CDA.exists(), reason="the ANS TestContenuCDA files are not in ../shared")


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    pki = create_test_pki(tmp_path_factory.mktemp("xades-pki"))
    running = start_secure_server(
        tmp_path_factory.mktemp(f"xades-{request.param}"),
        pki,
        tls=True,
        extra={
            "DMP_XDS_PROFILE": "cisis",
            "DMP_XDS_VALUE_SETS": str(ANS / "jeuxDeValeurs"),
            "DMP_XDS_CDA_SCHEMA": str(ANS / "infrastructure" / "cda" / "CDA_extended.xsd"),
            "DMP_XDS_SCHEMATRONS": "",
            **documents_for(request),
        },
        database_url=database_for(request),
    )
    try:
        running.cli("dmp", "create", PATIENT, "--collected-by", "the XAdES tests")
        for name in (AUTHOR, "doctor"):
            running.cli("dmp", "grant", PATIENT, running.pki.identity(name).national_id)
        yield running
    finally:
        stop_secure_server(running)


def post(
    server: SecureServer, path: str, body: bytes, content_type: str, card: str, extra: dict[str, str] | None = None
) -> soap.SoapResponse:
    identity = server.pki.identity(card)
    response = requests.post(
        server.url + path,
        data=body,
        timeout=60,
        cert=(identity.certificate, identity.key),
        verify=str(server.pki.anchors),
        headers={"Content-Type": content_type, **(extra or {})},
    )
    return soap.parse_response(response.status_code, response.headers.get("Content-Type", ""), response.content)


def soap11_envelope(payload: etree._Element, pki: GeneratedPki, card: str, action: str | None) -> bytes:
    """A SOAP 1.1 envelope as the DMP's TD2.1 example has it (WS-Addressing with an empty To and
    un-prefixed mustUnderstand), or with no WS-Addressing at all (`action` None: the official kit)."""
    env = etree.Element(f"{{{v.NS_SOAP11}}}Envelope", nsmap={"soap": v.NS_SOAP11})
    header = etree.SubElement(env, f"{{{v.NS_SOAP11}}}Header")
    if action is not None:
        etree.SubElement(header, f"{{{v.NS_WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
        etree.SubElement(header, f"{{{v.NS_WSA}}}To")
        reply_to = etree.SubElement(header, f"{{{v.NS_WSA}}}ReplyTo", mustUnderstand="true")
        etree.SubElement(reply_to, f"{{{v.NS_WSA}}}Address").text = "http://www.w3.org/2005/08/addressing/anonymous"
        etree.SubElement(header, f"{{{v.NS_WSA}}}Action", mustUnderstand="true").text = action
    header.append(security_header(signed_vihf(pki, card, PATIENT, audience=AUDIENCE)))
    etree.SubElement(env, f"{{{v.NS_SOAP11}}}Body").append(payload)
    return etree.tostring(env, encoding="UTF-8", xml_declaration=True)


def td21(
    server: SecureServer,
    card: str = AUTHOR,
    signer: str | None = AUTHOR,
    tamper: bool = False,
    action: str | None = v.ACTION_ITI41,
    document_id_case: bool = False,
) -> tuple[soap.SoapResponse, Submission, str | None]:
    """Submit the CDA as `card`, signed by `signer`'s card (None: unsigned); `tamper`: the CDA
    sent is not the one signed. Returns the response, the submission and the signature's uniqueId."""
    cda = CDA.read_bytes()
    submission = build_submission_from_cda(cda)
    entry = submission.documents[0]
    entry.hash = entry.size = None  # the DMP's clients send neither
    entry.source_patient_id = LOCAL_PATIENT_ID + "^PI"  # as the DMP's example: the software's own id, typed
    request = etree.Element(v.TAG_PNR_REQUEST, nsmap={"xdsb": v.NS_XDSB})
    request.append(encode_submit_objects_request(submission))
    signature_uid = None
    if signer is not None:
        identity = server.pki.identity(signer)
        key = load_pem_private_key(Path(identity.key).read_bytes(), None)
        chain = load_pem_certificates(Path(identity.certificate).read_bytes())
        signature_id, _ = add_submission_signature(request, {entry.entry_uuid: cda}, key, chain)
        signature_uid = etree.fromstring(etree.tostring(request)).xpath(
            "//rim:ExtrinsicObject[@id=$id]/rim:ExternalIdentifier[@identificationScheme=$scheme]/@value",
            namespaces={"rim": v.NS_RIM},
            id=signature_id,
            scheme=v.DE_UNIQUE_ID,
        )[0]
    parts: dict[str, bytes] = {}
    # Every document as an MTOM part: the CDA first, then the signature the helper put inline.
    documents = list(request.iterfind(v.TAG_DOCUMENT))
    for document in documents:
        request.remove(document)
    cda_sent = cda + b"<!-- altered after signing -->\n" if tamper else cda
    doc_id = entry.entry_uuid.lower() if document_id_case else entry.entry_uuid
    for document_id, data in [(doc_id, cda_sent)] + [(d.get("id"), base64.b64decode(d.text)) for d in documents]:
        cid = f"part{len(parts) + 1}.{uuid.uuid4().hex}.xml"
        element = etree.SubElement(request, v.TAG_DOCUMENT, id=document_id)
        etree.SubElement(element, f"{{{v.NS_XOP}}}Include", href=f"cid:{cid}")
        parts[cid] = data
    body, content_type = soap.dmp_mtom_body(soap11_envelope(request, server.pki, card, action), parts, WSDL_OPERATION)
    return post(server, DMPI + "repository", body, content_type, card), submission, signature_uid


TRACE_TABLES = ("audit_entry", "audit_head", "vihf_replay")  # a refused request leaves its trace, nothing else


def registry_state(server: SecureServer) -> tuple[dict[str, int], list[str]]:
    counts, files = stored_state(server)
    return {k: n for k, n in counts.items() if k not in TRACE_TABLES}, files


def errors(response: soap.SoapResponse) -> list[tuple[str, str]]:
    return [(e.get("errorCode", ""), e.get("codeContext", "")) for e in response.payload.iter(v.TAG_REGISTRY_ERROR)]


def query(server: SecureServer, path: str, card: str, params: dict[str, list[str]], query_id: str) -> soap.SoapResponse:
    request = soap.adhoc_query(query_id, params)
    envelope = etree.fromstring(request.body)
    envelope.find(f"{{{v.NS_SOAP12}}}Header").append(
        security_header(signed_vihf(server.pki, card, PATIENT, audience=AUDIENCE))
    )
    return post(server, path, etree.tostring(envelope), request.content_type, card)


def find_documents(server: SecureServer, *statuses: str) -> set[tuple[str, str]]:
    """(uniqueId, entryUUID) of the patient's documents in these statuses, as the author sees them
    (the CDA is submitted by several tests: its uniqueId is in several entries)."""
    params = {
        v.P_DE_PATIENT_ID: [f"'{PATIENT}'"],
        v.P_DE_STATUS: ["(" + ",".join(f"'{s}'" for s in statuses) + ")"],
    }
    response = query(server, DMPI + "registry", AUTHOR, params, v.SQ_FIND_DOCUMENTS)
    assert response.status == "Success", errors(response)
    found = set()
    for eo in response.payload.iter(v.TAG_EXTRINSIC_OBJECT):
        uid = eo.xpath(
            "rim:ExternalIdentifier[@identificationScheme=$s]/@value", namespaces={"rim": v.NS_RIM}, s=v.DE_UNIQUE_ID
        )
        found.add((uid[0], eo.get("id")))
    return found


def unique_ids(found: set[tuple[str, str]]) -> set[str]:
    return {uid for uid, _ in found}


def retrieve(server: SecureServer, unique_id: str) -> dict[str, bytes]:
    request = soap.retrieve([(server.repository_id, unique_id)])
    envelope = etree.fromstring(request.body)
    envelope.find(f"{{{v.NS_SOAP12}}}Header").append(
        security_header(signed_vihf(server.pki, AUTHOR, PATIENT, audience=AUDIENCE))
    )
    response = post(server, DMPI + "repository", etree.tostring(envelope), request.content_type, AUTHOR)
    return soap.document_bytes(response)


def test_a_signed_td21_is_stored_and_its_signature_retrievable_by_its_author(server: SecureServer) -> None:
    response, submission, signature_uid = td21(server)
    assert response.status == "Success", errors(response)
    assert response.envelope.tag == f"{{{v.NS_SOAP12}}}Envelope"  # answered SOAP 1.2
    found = unique_ids(find_documents(server, v.STATUS_APPROVED))
    assert {submission.documents[0].unique_id, signature_uid} <= found
    signature = retrieve(server, signature_uid)[signature_uid]
    assert etree.fromstring(signature).tag == "{http://www.w3.org/2000/09/xmldsig#}Signature"


@pytest.mark.parametrize(
    ("kind", "code", "context"),
    [
        ("tampered", "XDSRepositoryError", "does not match the signed manifest"),
        ("other-card", "XDSRepositoryError", "signed with the card of"),
        ("unsigned", "XDSRepositoryMetadataError", "no signature DocumentEntry"),
    ],
)
def test_a_bad_or_missing_signature_is_refused_and_nothing_stored(
    server: SecureServer, kind: str, code: str, context: str
) -> None:
    before = registry_state(server)
    signer = {"other-card": "doctor", "unsigned": None}.get(kind, AUTHOR)
    response, _submission, _ = td21(server, signer=signer, tamper=kind == "tampered")
    assert response.status == "Failure"
    assert [c for c, _ in errors(response)] == [code] and context in errors(response)[0][1]
    assert registry_state(server) == before
    trace = server.last_trace(PATIENT).event
    assert (trace.action, trace.outcome) == ("submit", "failure") and context in trace.detail


def test_a_td21_without_ws_addressing_is_dispatched_on_its_content_type_action(server: SecureServer) -> None:
    response, submission, _ = td21(server, action=None)
    assert response.status == "Success", errors(response)
    assert submission.documents[0].unique_id in unique_ids(find_documents(server, v.STATUS_APPROVED))


def test_a_document_id_differing_in_case_from_its_entry_is_accepted(server: SecureServer) -> None:
    response, submission, _ = td21(server, document_id_case=True)
    assert response.status == "Success", errors(response)


def status_update(server: SecureServer, path: str, target: str, original: str, new: str) -> soap.SoapResponse:
    ss = make_submission_set(patient_id=PATIENT)
    ss.authors = []
    change = Association(
        new_uuid(),
        v.UPDATE_AVAILABILITY_STATUS,
        ss.entry_uuid,
        target,
        slots={v.SLOT_ORIGINAL_STATUS: [original], v.SLOT_NEW_STATUS: [new]},
    )
    request = soap.update(Submission(ss, [], [], [change], submission_set_count=1))
    envelope = etree.fromstring(request.body)
    envelope.find(f"{{{v.NS_SOAP12}}}Header").append(
        security_header(signed_vihf(server.pki, AUTHOR, PATIENT, audience=AUDIENCE))
    )
    return post(server, path, etree.tostring(envelope), request.content_type, AUTHOR)


def test_td33_archive_unarchive_delete_with_the_dmp_reply_action(server: SecureServer) -> None:
    before = find_documents(server, v.STATUS_APPROVED)
    response, submission, _ = td21(server)
    assert response.status == "Success", errors(response)
    unique_id = submission.documents[0].unique_id
    [(_, entry_uuid)] = [d for d in find_documents(server, v.STATUS_APPROVED) - before if d[0] == unique_id]
    document = (unique_id, entry_uuid)
    registry = DMPI + "registry"

    archived = status_update(server, registry, entry_uuid, v.STATUS_APPROVED, v.STATUS_ARCHIVED)
    assert archived.status == "Success", errors(archived)
    assert archived.header("Action") == v.ACTION_ITI57_DMP_RESPONSE == "urn:ihe:iti:2010:UpdateDocumentSet-Response"
    assert document in find_documents(server, v.STATUS_ARCHIVED)
    assert document not in find_documents(server, v.STATUS_APPROVED)

    # At IHE's path the reply keeps IHE's action.
    unarchived = status_update(server, "/xds/registry", entry_uuid, v.STATUS_ARCHIVED, v.STATUS_APPROVED)
    assert unarchived.status == "Success", errors(unarchived)
    assert unarchived.header("Action") == v.ACTION_ITI57 + "Response"
    assert document in find_documents(server, v.STATUS_APPROVED)

    deleted = status_update(server, registry, entry_uuid, v.STATUS_APPROVED, v.STATUS_DELETED)
    assert deleted.status == "Success", errors(deleted)
    assert document in find_documents(server, v.STATUS_DELETED)
    assert document not in find_documents(server, v.STATUS_APPROVED, v.STATUS_ARCHIVED)
