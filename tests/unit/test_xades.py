"""The XAdES signature of a submission set: what we sign verifies, and every alteration, other
signer or untrusted chain is refused with its reason."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.algorithms import DigestAlgorithm, SignatureMethod

from dmp_xds.security import xades
from dmp_xds.security.cps import TrustStore, load_pem_certificates
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.xds.xml import parse_bytes

SS_UID = "1.2.250.1.999.1.1.7898.1.1"
DOC_UID = "1.2.250.1.999.1.1.7898.3.1"
CDA = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- a comment the canonical form keeps -->\n'
    b'<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2.250.1.999.1.1.7898.3.1"/>'
    b"<title>Compte rendu</title></ClinicalDocument>\n"
)
PDF = b"%PDF-1.4 not xml at all"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def trust(pki: GeneratedPki) -> TrustStore:
    return TrustStore.from_files([pki.anchors], [pki.intermediates], pki.crls)


def credentials(pki: GeneratedPki, name: str) -> tuple[object, list[x509.Certificate]]:
    identity = pki.identity(name)
    key = load_pem_private_key(Path(identity.key).read_bytes(), None)
    return key, load_pem_certificates(Path(identity.certificate).read_bytes())


def sign(pki: GeneratedPki, name: str = "ans-author", documents: list[tuple[str, bytes]] | None = None, **kw) -> bytes:
    key, chain = credentials(pki, name)
    return xades.sign_submission_set(SS_UID, documents or [(DOC_UID, CDA)], key, chain, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("digest", ["sha256", "sha1"])
def test_a_signature_verifies_and_names_its_signer(pki: GeneratedPki, trust: TrustStore, digest: str) -> None:
    data = sign(pki, digest=digest)
    check = xades.verify_submission_signature(data, SS_UID, {DOC_UID: CDA}, trust)
    assert check.ok, check.reason
    assert check.holder is not None and check.holder.national_id == pki.identity("ans-author").national_id
    assert check.covered == (DOC_UID,)
    root = etree.fromstring(data)
    methods = root.xpath("//ds:SignatureMethod/@Algorithm", namespaces={"ds": xades.NS_DS})
    assert methods == [xades.ALGORITHMS[digest][0]]


def test_the_signature_has_the_dmp_structure(pki: GeneratedPki) -> None:
    root = etree.fromstring(sign(pki))
    ns = {"ds": xades.NS_DS, "x": xades.NS_XADES}
    assert root.xpath("ds:SignedInfo/ds:Reference/@URI", namespaces=ns) == ["#IHEManifest", "#S0-SignedProperties"]
    refs = root.xpath("ds:Object/ds:Manifest[@Id='IHEManifest']/ds:Reference", namespaces=ns)
    assert [r.get("URI") for r in refs] == [f"urn:oid:{SS_UID}", f"urn:oid:{DOC_UID}"]
    assert refs[0].findtext(f"{{{xades.NS_DS}}}DigestValue") == xades.PLACEHOLDER_DIGEST
    assert refs[1].xpath("ds:Transforms/ds:Transform/@Algorithm", namespaces=ns) == [xades.C14N_WITH_COMMENTS]
    purpose = root.xpath("ds:Object/SignatureProperties/SignatureProperty[@Id='purposeOfSignature']", namespaces=ns)
    assert purpose[0].text == xades.PURPOSE_OF_SIGNATURE and purpose[0].get("Target") == f"#{root.get('Id')}"
    ssp = "ds:Object/x:QualifyingProperties/x:SignedProperties/x:SignedSignatureProperties"
    assert root.xpath(f"{ssp}/x:SigningTime/text()", namespaces=ns)
    assert len(root.xpath(f"{ssp}/x:SigningCertificate/x:Cert", namespaces=ns)) == 2  # card + its CA
    assert root.xpath(f"{ssp}/x:SignaturePolicyIdentifier/x:SignaturePolicyImplied", namespaces=ns)


def test_an_independent_verifier_accepts_our_signed_info(pki: GeneratedPki) -> None:
    """signxml checks SignedInfo, the manifest's and the signed properties' digests by itself."""
    data = sign(pki, signature_id="sig-1")  # the DMP's uuid Ids are no xs:ID, which signxml checks
    _key, chain = credentials(pki, "ans-author")
    config = SignatureConfiguration(
        require_x509=False,
        expect_references=2,
        signature_methods=frozenset({SignatureMethod.RSA_SHA256}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
    )
    results = XMLVerifier().verify(data, x509_cert=chain[0], id_attribute="Id", expect_config=config)
    assert isinstance(results, list) and len(results) == 2


def test_a_document_that_is_not_xml_is_digested_as_bytes(pki: GeneratedPki, trust: TrustStore) -> None:
    data = sign(pki, documents=[(DOC_UID, PDF)])
    root = etree.fromstring(data)
    value = root.xpath(
        f"//ds:Reference[@URI='urn:oid:{DOC_UID}']/ds:DigestValue/text()", namespaces={"ds": xades.NS_DS}
    )
    assert value == [base64.b64encode(hashlib.sha256(PDF).digest()).decode()]
    assert xades.verify_submission_signature(data, SS_UID, {DOC_UID: PDF}, trust).ok


def test_a_tampered_document_is_refused(pki: GeneratedPki, trust: TrustStore) -> None:
    data = sign(pki)
    check = xades.verify_submission_signature(data, SS_UID, {DOC_UID: CDA.replace(b"Compte", b"Contre")}, trust)
    assert not check.ok and f"digest of document {DOC_UID} does not match" in check.reason


def test_the_tree_already_parsed_is_what_is_digested(pki: GeneratedPki, trust: TrustStore) -> None:
    """The CDA layer's tree of a document is canonicalized as it is, not parsed again from the
    bytes: its digest must be the signed one, the same tree altered is refused."""
    data = sign(pki)
    parsed = parse_bytes(CDA)
    assert xades.verify_submission_signature(data, SS_UID, {DOC_UID: CDA}, trust, parsed={DOC_UID: parsed}).ok
    altered = parse_bytes(CDA.replace(b"Compte", b"Contre"))
    check = xades.verify_submission_signature(data, SS_UID, {DOC_UID: CDA}, trust, parsed={DOC_UID: altered})
    assert not check.ok and f"digest of document {DOC_UID} does not match" in check.reason


def test_canonically_equal_documents_verify(pki: GeneratedPki, trust: TrustStore) -> None:
    """The digest is of the canonical form: another serialization of the same XML verifies."""
    data = sign(pki)
    same = CDA.replace(b"<title>", b"<title >").replace(b'<?xml version="1.0" encoding="UTF-8"?>\n', b"")
    assert xades.verify_submission_signature(data, SS_UID, {DOC_UID: same}, trust).ok


def test_a_wrong_manifest_digest_is_refused_even_if_resigned(pki: GeneratedPki, trust: TrustStore) -> None:
    """Altering the manifest breaks the SignedInfo digest of the manifest."""
    data = sign(pki)
    root = etree.fromstring(data)
    ns = {"ds": xades.NS_DS}
    value = root.xpath(f"//ds:Manifest/ds:Reference[@URI='urn:oid:{DOC_UID}']/ds:DigestValue", namespaces=ns)[0]
    value.text = base64.b64encode(b"\0" * 32).decode()
    check = xades.verify_submission_signature(etree.tostring(root), SS_UID, {DOC_UID: CDA}, trust)
    assert not check.ok and "#IHEManifest does not match" in check.reason


def test_an_altered_signature_value_is_refused(pki: GeneratedPki, trust: TrustStore) -> None:
    root = etree.fromstring(sign(pki))
    value = root.find(f"{{{xades.NS_DS}}}SignatureValue")
    raw = bytearray(base64.b64decode(value.text))
    raw[10] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()
    check = xades.verify_submission_signature(etree.tostring(root), SS_UID, {DOC_UID: CDA}, trust)
    assert not check.ok and "SignatureValue does not verify" in check.reason


def test_a_signature_by_another_key_than_its_certificate_is_refused(pki: GeneratedPki, trust: TrustStore) -> None:
    """The doctor's key with the author's certificate in KeyInfo."""
    key, _ = credentials(pki, "doctor")
    _, chain = credentials(pki, "ans-author")
    data = xades.sign_submission_set(SS_UID, [(DOC_UID, CDA)], key, chain)  # type: ignore[arg-type]
    check = xades.verify_submission_signature(data, SS_UID, {DOC_UID: CDA}, trust)
    assert not check.ok and "SignatureValue does not verify" in check.reason


def test_an_uncovered_document_is_refused(pki: GeneratedPki, trust: TrustStore) -> None:
    data = sign(pki)
    check = xades.verify_submission_signature(data, SS_UID, {DOC_UID: CDA, "1.2.3.4": PDF}, trust)
    assert not check.ok and "does not cover document(s) 1.2.3.4" in check.reason


def test_a_manifest_naming_an_absent_document_is_refused(pki: GeneratedPki, trust: TrustStore) -> None:
    data = sign(pki, documents=[(DOC_UID, CDA), ("1.2.3.4", PDF)])
    check = xades.verify_submission_signature(data, SS_UID, {DOC_UID: CDA}, trust)
    assert not check.ok and "urn:oid:1.2.3.4, which is neither" in check.reason


def test_another_submission_set_is_refused(pki: GeneratedPki, trust: TrustStore) -> None:
    data = sign(pki)
    check = xades.verify_submission_signature(data, "1.2.3.99", {DOC_UID: CDA}, trust)
    assert not check.ok and f"names urn:oid:{SS_UID}, which is neither" in check.reason


def test_any_placeholder_digest_of_the_submission_set_is_accepted(pki: GeneratedPki, trust: TrustStore) -> None:
    """The DMP's examples give the submission set's reference the digest AA==; another value is
    no more meaningful (the set has no bytes), and accepted too - but it is signed, so it can only
    be changed by re-signing: here the SignedInfo digest of the manifest catches it."""
    root = etree.fromstring(sign(pki))
    value = root.xpath(f"//ds:Reference[@URI='urn:oid:{SS_UID}']/ds:DigestValue", namespaces={"ds": xades.NS_DS})[0]
    assert value.text == "AA=="
    value.text = "AAAA"
    check = xades.verify_submission_signature(etree.tostring(root), SS_UID, {DOC_UID: CDA}, trust)
    assert "#IHEManifest does not match" in check.reason


def test_a_broken_chain_is_refused_but_names_the_signer(pki: GeneratedPki, tmp_path: Path) -> None:
    other = create_test_pki(tmp_path / "other")
    foreign = TrustStore.from_files([other.anchors], [other.intermediates], other.crls)
    check = xades.verify_submission_signature(sign(pki), SS_UID, {DOC_UID: CDA}, foreign)
    assert not check.ok and check.reason.startswith("the signing certificate is refused")
    assert check.signer is not None and check.signer.national_id == pki.identity("ans-author").national_id


def test_a_revoked_card_is_refused(pki: GeneratedPki, trust: TrustStore) -> None:
    check = xades.verify_submission_signature(sign(pki, "revoked"), SS_UID, {DOC_UID: CDA}, trust)
    assert not check.ok and "revoked" in check.reason


def test_without_trust_anchors_only_the_signature_is_checked(pki: GeneratedPki) -> None:
    check = xades.verify_submission_signature(sign(pki), SS_UID, {DOC_UID: CDA}, None)
    assert check.ok and check.holder is not None


def test_a_wrapped_manifest_is_refused(pki: GeneratedPki, trust: TrustStore) -> None:
    """A second element with the manifest's Id: the reference no longer names one element."""
    root = etree.fromstring(sign(pki))
    manifest = root.xpath("//ds:Manifest", namespaces={"ds": xades.NS_DS})[0]
    obj = etree.SubElement(root, f"{{{xades.NS_DS}}}Object")
    obj.append(etree.fromstring(etree.tostring(manifest)))
    check = xades.verify_submission_signature(etree.tostring(root), SS_UID, {DOC_UID: CDA}, trust)
    assert not check.ok and "does not name exactly one element" in check.reason


def test_signing_certificate_must_be_the_signer(pki: GeneratedPki, trust: TrustStore) -> None:
    """KeyInfo swapped for another trusted card: the SignatureValue no longer verifies; and a
    SigningCertificate that does not name the signer is refused on its own."""
    root = etree.fromstring(sign(pki))
    ns = {"ds": xades.NS_DS, "x": xades.NS_XADES}
    for value in root.xpath("//x:CertDigest/x:DigestValue", namespaces=ns):
        value.text = "AAAA"
    check = xades.verify_submission_signature(etree.tostring(root), SS_UID, {DOC_UID: CDA}, trust)
    assert "#S0-SignedProperties does not match" in check.reason


def test_not_a_signature_is_refused(trust: TrustStore) -> None:
    check = xades.verify_submission_signature(CDA, SS_UID, {DOC_UID: CDA}, trust)
    assert not check.ok and "not ds:Signature" in check.reason
    check = xades.verify_submission_signature(b"<ds:Signature", SS_UID, {}, trust)
    assert not check.ok and "not acceptable XML" in check.reason


def test_only_rsa_keys_sign(pki: GeneratedPki) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    _, chain = credentials(pki, "ans-author")
    with pytest.raises(xades.SigningError):
        xades.sign_submission_set(SS_UID, [], ec.generate_private_key(ec.SECP256R1()), chain)


def test_canonical_form_of_an_element_in_a_default_namespace() -> None:
    """The DMP writes its signatures in the default XML-DSig namespace; libxml2 alone would
    canonicalize a referenced element of such a document with spurious xmlns="" below it."""
    root = etree.fromstring(b'<S xmlns="urn:ds" xmlns:p="urn:p"><M Id="m"><R URI="u"><D/></R></M></S>')
    assert xades._c14n(root[0], xades.C14N) == b'<M xmlns="urn:ds" xmlns:p="urn:p" Id="m"><R URI="u"><D></D></R></M>'
    assert xades._c14n(root[0], xades.EXC_C14N) == b'<M xmlns="urn:ds" Id="m"><R URI="u"><D></D></R></M>'


def test_a_signature_in_the_default_namespace_verifies(pki: GeneratedPki, trust: TrustStore) -> None:
    """Signed as the DMP's signer writes it (default namespace, SignatureProperties in none)."""
    key, chain = credentials(pki, "ans-author")
    ds = f"{{{xades.NS_DS}}}"
    root = etree.fromstring(sign(pki))
    text = etree.tostring(root).decode()
    # The same document with the ds prefix dropped: re-signed by hand below.
    plain = etree.fromstring(text.replace("ds:", "").replace('xmlns:ds="', 'xmlns="'))
    signed_info = plain.find(ds + "SignedInfo")
    for reference in signed_info.iterfind(ds + "Reference"):
        target = plain.xpath("//*[@Id=$id]", id=reference.get("URI")[1:])[0]
        reference.find(ds + "DigestValue").text = xades._digest(
            xades._c14n(target, xades.C14N), reference.find(ds + "DigestMethod").get("Algorithm")
        )
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    value = key.sign(xades._c14n(signed_info, xades.C14N_WITH_COMMENTS), padding.PKCS1v15(), hashes.SHA256())
    plain.find(ds + "SignatureValue").text = base64.b64encode(value).decode()
    data = etree.tostring(plain)
    assert b"<Signature " in data and b"<SignedInfo>" in data
    check = xades.verify_submission_signature(data, SS_UID, {DOC_UID: CDA}, trust)
    assert check.ok, check.reason


def signing_certificate(pki: GeneratedPki, name: str) -> tuple[object, list[x509.Certificate]]:
    """A card's signing certificate as IGC-Santé issues it (the DMP's TD2.1 example): key usage
    non-repudiation only, extended key usage e-mail protection, the holder of `name`'s card."""
    import datetime as dt

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_cert = load_pem_certificates((pki.directory / "ca" / "cards.pem").read_bytes())[0]
    ca_key = load_pem_private_key((pki.directory / "ca" / "cards.key").read_bytes(), None)
    _, card_chain = credentials(pki, name)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    usage = x509.KeyUsage(False, True, False, False, False, False, False, False, False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(card_chain[0].subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, [cert, ca_cert]


def test_a_cards_signing_certificate_signs_though_it_cannot_authenticate(pki: GeneratedPki, trust: TrustStore) -> None:
    from dmp_xds.security.cps import AUTHENTICATION, DOCUMENT_SIGNATURE

    key, chain = signing_certificate(pki, "ans-author")
    data = xades.sign_submission_set(SS_UID, [(DOC_UID, CDA)], key, chain)  # type: ignore[arg-type]
    check = xades.verify_submission_signature(data, SS_UID, {DOC_UID: CDA}, trust)
    assert check.ok, check.reason
    assert check.holder.national_id == pki.identity("ans-author").national_id
    assert trust.check(chain, purpose=DOCUMENT_SIGNATURE).ok
    refused = trust.check(chain, purpose=AUTHENTICATION)
    assert not refused.ok and "key usage" in refused.reason
    assert trust.check(chain, purpose=DOCUMENT_SIGNATURE).ok  # the cached verdicts are per usage
