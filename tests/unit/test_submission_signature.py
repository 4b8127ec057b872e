"""The signature DocumentEntry of a DMP submission: what a client adds, and the CI-SIS rules the
repository applies to it (signer = the VIHF's, one signature, its `signs` association)."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from dmp_xds.dmp import submission_signature as ss
from dmp_xds.security.cps import TrustStore, holder_of, load_pem_certificates
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.security.vihf import Principal
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.decode import decode_submit_objects_request
from dmp_xds.xds.ebrim.encode import encode_submit_objects_request
from dmp_xds.xds.errors import ErrorCode
from dmp_xds.xds.model import Submission
from dmp_xds.xds.validation.xds import Transaction, validate_submission
from factories import make_submission

CDA = b'<ClinicalDocument xmlns="urn:hl7-org:v3"><title>x</title></ClinicalDocument>'


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def trust(pki: GeneratedPki) -> TrustStore:
    return TrustStore.from_files([pki.anchors], [pki.intermediates], pki.crls)


def principal(pki: GeneratedPki, name: str, signer: str | None = None) -> Principal:
    identity = pki.identity(name)
    holder = holder_of(load_pem_certificates(Path(pki.signer(name, signer).certificate).read_bytes())[0])
    return Principal(
        kind="professional",
        user_id=identity.national_id,
        name="",
        roles=("10",),
        structure_id=identity.structure_id,
        sector="SA07",
        access_mode="",
        access_reason="",
        patient_id="",
        software="",
        authentication_mode="",
        assertion_id="_id",
        signer=holder,
    )


def signed(pki: GeneratedPki, name: str = "doctor") -> tuple[Submission, dict[str, bytes], etree._Element]:
    """A one-document submission signed by `name`'s card, decoded back as the server reads it."""
    submission = make_submission(1)
    request = etree.Element(v.TAG_PNR_REQUEST, nsmap={"xdsb": v.NS_XDSB})
    request.append(encode_submit_objects_request(submission))
    contents = {submission.documents[0].entry_uuid: CDA}
    identity = pki.identity(name)
    key = load_pem_private_key(Path(identity.key).read_bytes(), None)
    chain = load_pem_certificates(Path(identity.certificate).read_bytes())
    signature_id, data = ss.add_submission_signature(request, contents, key, chain)
    contents[signature_id] = data
    return decode_submit_objects_request(request.find(v.TAG_SUBMIT_OBJECTS_REQUEST)), contents, request


def test_a_client_adds_the_signature_entry_the_dmp_expects(pki: GeneratedPki) -> None:
    submission, contents, request = signed(pki)
    [signature] = [de for de in submission.documents if ss.is_signature_entry(de)]
    assert signature.class_code.key() == v.SIGNATURE_CLASS_CODE
    assert signature.type_code.key() == v.SIGNATURE_TYPE_CODE
    assert signature.format_code.key() == v.SIGNATURE_FORMAT_CODE
    assert {c.code for c in signature.confidentiality_codes} == {"N", "MASQUE_PS", "INVISIBLE_PATIENT"}
    assert signature.language_code == "art" and signature.mime_type == "text/xml"
    assert signature.patient_id == signature.source_patient_id == submission.submission_set.patient_id
    links = {(a.association_type, a.source, a.target): a.slots for a in submission.associations}
    set_id = submission.submission_set.entry_uuid
    assert links[(v.HAS_MEMBER, set_id, signature.entry_uuid)] == {v.SLOT_SUBMISSION_SET_STATUS: ["Original"]}
    assert links[(v.SIGNS, signature.entry_uuid, set_id)] == {v.SLOT_SUBMISSION_SET_STATUS: ["Original"]}
    document = request.find(f"{v.TAG_DOCUMENT}[@id='{signature.entry_uuid}']")
    assert base64.b64decode(document.text) == contents[signature.entry_uuid]
    assert validate_submission(submission, Transaction.ITI41) == []


def test_a_signed_submission_passes(pki: GeneratedPki, trust: TrustStore) -> None:
    submission, contents, _ = signed(pki)
    assert ss.signature_errors(submission, contents, trust, principal(pki, "doctor"), required=True) == []


def test_another_card_than_the_vihfs_is_refused(pki: GeneratedPki, trust: TrustStore) -> None:
    submission, contents, _ = signed(pki, "doctor")
    [found] = ss.signature_errors(submission, contents, trust, principal(pki, "nurse"), required=True)
    assert found.code is ErrorCode.REPOSITORY_ERROR and "signed with the card of" in found.context


def test_the_establishment_signs_for_its_staff_in_indirect_mode(pki: GeneratedPki, trust: TrustStore) -> None:
    submission, contents, _ = signed(pki, "hospital")
    nurse = principal(pki, "nurse", signer="hospital")  # the hospital's nurse
    assert ss.signature_errors(submission, contents, trust, nurse, required=True) == []
    other = replace(nurse, structure_id="1990000099")
    [found] = ss.signature_errors(submission, contents, trust, other, required=True)
    assert "certificate of structure" in found.context


def test_a_tampered_document_is_refused(pki: GeneratedPki, trust: TrustStore) -> None:
    submission, contents, _ = signed(pki)
    contents[submission.documents[0].entry_uuid] = CDA.replace(b"x", b"y")
    [found] = ss.signature_errors(submission, contents, trust, None, required=True)
    assert found.code is ErrorCode.REPOSITORY_ERROR and "does not match the signed manifest" in found.context


def test_an_unsigned_submission_is_refused_only_when_required(trust: TrustStore) -> None:
    submission = make_submission(1)
    contents = {submission.documents[0].entry_uuid: CDA}
    [found] = ss.signature_errors(submission, contents, trust, None, required=True)
    assert found.code is ErrorCode.REPOSITORY_METADATA_ERROR and "no signature DocumentEntry" in found.context
    assert ss.signature_errors(submission, contents, trust, None, required=False) == []


def test_a_signature_without_its_signs_association_is_refused(pki: GeneratedPki, trust: TrustStore) -> None:
    submission, contents, _ = signed(pki)
    submission.associations = [a for a in submission.associations if a.association_type != v.SIGNS]
    [found] = ss.signature_errors(submission, contents, trust, None, required=True)
    assert "no urn:ihe:iti:2007:AssociationType:signs association" in found.context


def test_two_signatures_are_refused(pki: GeneratedPki, trust: TrustStore) -> None:
    submission, contents, _ = signed(pki)
    submission.documents[0].format_code = replace(submission.documents[-1].format_code)
    [found] = ss.signature_errors(submission, contents, trust, None, required=True)
    assert "2 signature DocumentEntries" in found.context


def test_signing_time_is_the_clients(pki: GeneratedPki) -> None:
    submission = make_submission(1)
    request = etree.Element(v.TAG_PNR_REQUEST, nsmap={"xdsb": v.NS_XDSB})
    request.append(encode_submit_objects_request(submission))
    identity = pki.identity("doctor")
    key = load_pem_private_key(Path(identity.key).read_bytes(), None)
    chain = load_pem_certificates(Path(identity.certificate).read_bytes())
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    _, data = ss.add_submission_signature(request, {submission.documents[0].entry_uuid: CDA}, key, chain, now=now)
    assert b"2026-01-02T03:04:05.000Z" in data


def test_a_client_signs_the_submit_objects_request_it_sends(pki: GeneratedPki, trust: TrustStore) -> None:
    """The client's form: the SubmitObjectsRequest and its documents by entry id, the signature
    then sent as one more document."""
    submission = make_submission(1)
    sor = encode_submit_objects_request(submission)
    documents = {submission.documents[0].entry_uuid: CDA}
    identity = pki.identity("doctor")
    key = load_pem_private_key(Path(identity.key).read_bytes(), None)
    chain = load_pem_certificates(Path(identity.certificate).read_bytes())
    signature_id, data = ss.sign_submission_objects(sor, documents, key, chain)
    documents[signature_id] = data
    sent = decode_submit_objects_request(sor)
    assert [de.entry_uuid for de in sent.documents if ss.is_signature_entry(de)] == [signature_id]
    assert ss.signature_errors(sent, documents, trust, principal(pki, "doctor"), required=True) == []
    with pytest.raises(ValueError, match="SubmitObjectsRequest"):
        ss.sign_submission_objects(etree.Element("x"), documents, key, chain)
