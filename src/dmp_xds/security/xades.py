"""The XAdES signature of a submission set (IHE Document Digital Signature, as the DMP uses it).

A DMP submission (TD2.1) carries, besides its documents, one more document: an XML-DSig
`ds:Signature` whose `ds:Manifest` (Id `IHEManifest`) lists every document of the submission by
`urn:oid:<uniqueId>` with the digest of its content, and the submission set itself (its reference
has a placeholder digest, `AA==` in the DMP's examples: a submission set has no bytes of its own).
The signature covers that manifest and the XAdES `SignedProperties` (signing time, digests of the
signing certificates, implied policy); a `SignatureProperty` `purposeOfSignature` gives the
purpose (ASTM E1762 "source").

`sign_submission_set` writes one (our client, our tests); `verify_submission_signature` checks
one against the documents of the submission and answers with a value, never an exception: the
signer, or the reason the signature is refused.

The XML-DSig processing is done here in a few explicit steps rather than by a general library:
the references are to elements of this document by `Id` (the manifest, the signed properties)
and to documents outside it by `urn:oid:` URIs, which general verifiers do not resolve; every
element the checks read is the element whose digest was checked, so that a wrapped or added
element can never be what the server believes.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from dmp_xds.security.cps import DOCUMENT_SIGNATURE, Holder, TrustStore, holder_of
from dmp_xds.security.vocabulary import NS_DS
from dmp_xds.xds.xml import UnsafeXmlError, parse_bytes

# --- names (XML-DSig, XAdES 1.1.1 as the DMP writes it, IHE DSG) ---------------------------
NS_XADES = "http://uri.etsi.org/01903/v1.1.1#"
NS_XADES_132 = "http://uri.etsi.org/01903/v1.3.2#"  # read too: the current XAdES namespace
XADES_NAMESPACES = (NS_XADES, NS_XADES_132)

C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_WITH_COMMENTS = C14N + "#WithComments"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_WITH_COMMENTS = EXC_C14N + "WithComments"
CANONICALIZATIONS = frozenset({C14N, C14N_WITH_COMMENTS, EXC_C14N, EXC_C14N_WITH_COMMENTS})

DIGEST_SHA1 = NS_DS + "sha1"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
DIGEST_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
DIGEST_SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
# SHA-1 is read because the DMP's own examples and kit still sign with it; we write SHA-256.
DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    DIGEST_SHA1: hashes.SHA1,
    DIGEST_SHA256: hashes.SHA256,
    DIGEST_SHA384: hashes.SHA384,
    DIGEST_SHA512: hashes.SHA512,
}
RSA_SHA1 = NS_DS + "rsa-sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SIGNATURE_METHODS: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    RSA_SHA1: ("rsa", hashes.SHA1),
    RSA_SHA256: ("rsa", hashes.SHA256),
    RSA_SHA384: ("rsa", hashes.SHA384),
    RSA_SHA512: ("rsa", hashes.SHA512),
    ECDSA_SHA256: ("ecdsa", hashes.SHA256),
}
# What `sign_submission_set` writes, by the name of its digest.
ALGORITHMS = {"sha256": (RSA_SHA256, DIGEST_SHA256), "sha1": (RSA_SHA1, DIGEST_SHA1)}

TYPE_MANIFEST = NS_DS + "Manifest"
TYPE_SIGNED_PROPERTIES = NS_XADES + "SignedProperties"
MANIFEST_ID = "IHEManifest"
SIGNED_PROPERTIES_ID = "S0-SignedProperties"
PURPOSE_PROPERTY_ID = "purposeOfSignature"
# ASTM E1762 "Author's signature / source": the DMP's eventCodeList of the signature entry too.
PURPOSE_OF_SIGNATURE = "1.2.840.10065.1.12.1.14"
# The digest the DMP's examples give the submission set's own reference.
PLACEHOLDER_DIGEST = "AA=="
OID_URI_PREFIX = "urn:oid:"

_DS = f"{{{NS_DS}}}"
TAG_SIGNATURE = _DS + "Signature"
TAG_SIGNED_INFO = _DS + "SignedInfo"
TAG_MANIFEST = _DS + "Manifest"


def _xades(name: str, ns: str = NS_XADES) -> str:
    return f"{{{ns}}}{name}"


class SigningError(ValueError):
    """The signature cannot be written (a key that is not RSA, an unknown algorithm)."""


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The signer of a valid signature, or why it is refused. `signer` is set when the
    signature verified, even when its certificate was then refused (the refusal names them)."""

    holder: Holder | None
    reason: str = ""
    signer: Holder | None = None
    signing_time: str = ""
    covered: tuple[str, ...] = field(default=())  # the document uniqueIds the manifest names

    @property
    def ok(self) -> bool:
        return self.holder is not None and not self.reason


def _refuse(reason: str, signer: Holder | None = None) -> SignatureCheck:
    return SignatureCheck(None, reason, signer)


# --- canonicalization and digests -------------------------------------------------------------


def _standalone(element: etree._Element) -> etree._Element:
    """A copy of `element` as the root of a document of its own, declaring every namespace in
    scope where it stands. libxml2's canonical form of an element inside a document writes a
    spurious `xmlns=""` on the descendants of an element in a default namespace (the DMP's own
    signatures use one); the canonical form of a whole document is right."""
    root = etree.Element(element.tag, attrib=dict(element.attrib), nsmap=element.nsmap)
    root.text = element.text
    for child in element:
        root.append(copy.deepcopy(child))
    return root


def _c14n(node: etree._Element | etree._ElementTree, algorithm: str) -> bytes:
    if isinstance(node, etree._Element) and node.getparent() is not None:
        node = _standalone(node)
    data: bytes = etree.tostring(
        node,
        method="c14n",
        exclusive=algorithm.startswith(EXC_C14N),
        with_comments=algorithm.endswith("WithComments"),
    )
    return data


def _digest(data: bytes, algorithm: str) -> str:
    h = hashes.Hash(DIGESTS[algorithm]())
    h.update(data)
    return base64.b64encode(h.finalize()).decode("ascii")


def _is_xml(data: bytes) -> bool:
    try:
        parse_bytes(data)
    except UnsafeXmlError:
        return False
    return True


def document_octets(data: bytes, transforms: Sequence[str], parsed: etree._Element | None = None) -> bytes:
    """The octets a manifest reference digests: the document's bytes, or, with a canonicalization
    transform (the DMP's references to CDA documents), its canonical form. Raises UnsafeXmlError
    when the transform asks for XML and the document is not acceptable XML. `parsed`: the tree
    `parse_bytes(data)` already gave (the CDA layer's), canonicalized instead of parsing again."""
    if not transforms:
        return data
    root = parsed if parsed is not None else parse_bytes(data)
    return _c14n(root.getroottree(), transforms[-1])


# --- signing ----------------------------------------------------------------------------------


def sign_submission_set(
    submission_set_unique_id: str,
    documents: Sequence[tuple[str, bytes]],
    key: PrivateKeyTypes,
    chain: Sequence[x509.Certificate],
    *,
    signature_id: str | None = None,
    digest: str = "sha256",
    now: dt.datetime | None = None,
) -> bytes:
    """The `ds:Signature` document of a submission set: `documents` are the (uniqueId, content)
    of every document of the submission, `chain[0]` the signer's certificate (`key` its RSA key)
    and the rest its issuers. `digest`: "sha256" (default) or "sha1" (the DMP's examples)."""
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SigningError(f"a submission set is signed with RSA: the key must be an RSA key, not {type(key).__name__}")
    if digest not in ALGORITHMS:
        raise SigningError(f"unknown digest {digest!r}: {', '.join(ALGORITHMS)}")
    if not chain:
        raise SigningError("the signer's certificate is required")
    method, digest_uri = ALGORITHMS[digest]
    signature_id = signature_id or str(uuid.uuid4())
    now = now or dt.datetime.now(dt.UTC)

    signature = etree.Element(TAG_SIGNATURE, nsmap={"ds": NS_DS}, Id=signature_id)
    signed_info = etree.SubElement(signature, TAG_SIGNED_INFO)
    etree.SubElement(signed_info, _DS + "CanonicalizationMethod", Algorithm=C14N_WITH_COMMENTS)
    etree.SubElement(signed_info, _DS + "SignatureMethod", Algorithm=method)
    for ref_type, target in ((TYPE_MANIFEST, MANIFEST_ID), (TYPE_SIGNED_PROPERTIES, SIGNED_PROPERTIES_ID)):
        reference = etree.SubElement(signed_info, _DS + "Reference", Type=ref_type, URI=f"#{target}")
        etree.SubElement(reference, _DS + "DigestMethod", Algorithm=digest_uri)
        etree.SubElement(reference, _DS + "DigestValue")
    etree.SubElement(signature, _DS + "SignatureValue")
    x509_data = etree.SubElement(etree.SubElement(signature, _DS + "KeyInfo"), _DS + "X509Data")
    for cert in chain:
        etree.SubElement(x509_data, _DS + "X509Certificate").text = base64.b64encode(
            cert.public_bytes(Encoding.DER)
        ).decode("ascii")

    manifest = etree.SubElement(etree.SubElement(signature, _DS + "Object"), TAG_MANIFEST, Id=MANIFEST_ID)
    reference = etree.SubElement(manifest, _DS + "Reference", URI=OID_URI_PREFIX + submission_set_unique_id)
    etree.SubElement(reference, _DS + "DigestMethod", Algorithm=digest_uri)
    etree.SubElement(reference, _DS + "DigestValue").text = PLACEHOLDER_DIGEST
    for unique_id, data in documents:
        reference = etree.SubElement(manifest, _DS + "Reference", URI=OID_URI_PREFIX + unique_id)
        transforms = [C14N_WITH_COMMENTS] if _is_xml(data) else []
        if transforms:
            etree.SubElement(
                etree.SubElement(reference, _DS + "Transforms"), _DS + "Transform", Algorithm=C14N_WITH_COMMENTS
            )
        etree.SubElement(reference, _DS + "DigestMethod", Algorithm=digest_uri)
        etree.SubElement(reference, _DS + "DigestValue").text = _digest(document_octets(data, transforms), digest_uri)

    # In no namespace, as the DMP writes it: a ds:SignatureProperty may not hold bare text
    # (XML-DSig schema), and the purpose is a bare OID.
    properties = etree.SubElement(etree.SubElement(signature, _DS + "Object"), "SignatureProperties")
    etree.SubElement(
        properties, "SignatureProperty", Id=PURPOSE_PROPERTY_ID, Target=f"#{signature_id}"
    ).text = PURPOSE_OF_SIGNATURE

    qualifying = etree.SubElement(
        etree.SubElement(signature, _DS + "Object"),
        _xades("QualifyingProperties"),
        nsmap={"xades": NS_XADES},
        Target=f"#{signature_id}",
    )
    signed_properties = etree.SubElement(qualifying, _xades("SignedProperties"), Id=SIGNED_PROPERTIES_ID)
    ssp = etree.SubElement(signed_properties, _xades("SignedSignatureProperties"))
    etree.SubElement(ssp, _xades("SigningTime")).text = (
        now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    )
    signing_certificate = etree.SubElement(ssp, _xades("SigningCertificate"))
    for cert in chain:
        entry = etree.SubElement(signing_certificate, _xades("Cert"))
        cert_digest = etree.SubElement(entry, _xades("CertDigest"))
        etree.SubElement(cert_digest, _xades("DigestMethod"), Algorithm=digest_uri)
        etree.SubElement(cert_digest, _xades("DigestValue")).text = _digest(cert.public_bytes(Encoding.DER), digest_uri)
        issuer_serial = etree.SubElement(entry, _xades("IssuerSerial"))
        etree.SubElement(issuer_serial, _DS + "X509IssuerName").text = cert.issuer.rfc4514_string()
        etree.SubElement(issuer_serial, _DS + "X509SerialNumber").text = str(cert.serial_number)
    policy = etree.SubElement(ssp, _xades("SignaturePolicyIdentifier"))
    etree.SubElement(policy, _xades("SignaturePolicyImplied"))

    # Digests are taken on the document as it will be read: serialized and parsed again.
    signature = parse_bytes(etree.tostring(signature, encoding="UTF-8"))
    signed_info = signature.find(TAG_SIGNED_INFO)
    assert signed_info is not None
    for reference in signed_info.iterfind(_DS + "Reference"):
        referenced = _by_id(signature, str(reference.get("URI", ""))[1:])
        digest_value = reference.find(_DS + "DigestValue")
        assert referenced is not None and digest_value is not None
        digest_value.text = _digest(_c14n(referenced, C14N), digest_uri)
    algorithm = SIGNATURE_METHODS[method][1]
    signed = key.sign(_c14n(signed_info, C14N_WITH_COMMENTS), padding.PKCS1v15(), algorithm())
    signature_value = signature.find(_DS + "SignatureValue")
    assert signature_value is not None
    signature_value.text = base64.b64encode(signed).decode("ascii")
    out: bytes = etree.tostring(signature, encoding="UTF-8", xml_declaration=True)
    return out


# --- verifying --------------------------------------------------------------------------------


def _by_id(root: etree._Element, element_id: str) -> etree._Element | None:
    """The one element whose `Id` is `element_id`; None if there is none or several (several is
    how a wrapping attack makes a reference resolve to another element than the one read)."""
    found = root.xpath("//*[@Id=$id]", id=element_id)
    return found[0] if isinstance(found, list) and len(found) == 1 else None


def _transforms(reference: etree._Element) -> list[str] | str:
    """The canonicalization transforms of a reference, or why they are refused."""
    algorithms = [t.get("Algorithm", "") for t in reference.iterfind(f"{_DS}Transforms/{_DS}Transform")]
    unknown = [a for a in algorithms if a not in CANONICALIZATIONS]
    if unknown:
        return f"transform {unknown[0]!r} is not supported (canonicalization only)"
    return algorithms


def _reference_digest(reference: etree._Element) -> tuple[str, str] | str:
    method = reference.find(_DS + "DigestMethod")
    algorithm = method.get("Algorithm", "") if method is not None else ""
    if algorithm not in DIGESTS:
        return f"digest method {algorithm or '(none)'!r} is not supported"
    return algorithm, "".join((reference.findtext(_DS + "DigestValue") or "").split())


def _key_info_chain(signature: etree._Element) -> list[x509.Certificate] | str:
    texts = [e.text or "" for e in signature.iterfind(f"{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate")]
    if not texts:
        return "the signature carries no ds:KeyInfo/X509Data/X509Certificate"
    chain = []
    for text in texts:
        try:
            chain.append(x509.load_der_x509_certificate(base64.b64decode("".join(text.split()), validate=True)))
        except (ValueError, binascii.Error):
            return "a ds:X509Certificate of the signature is not a certificate"
    return chain


def _signature_value_problem(signature: etree._Element, signed_info: etree._Element, cert: x509.Certificate) -> str:
    c14n = signed_info.find(_DS + "CanonicalizationMethod")
    c14n_algorithm = c14n.get("Algorithm", "") if c14n is not None else ""
    if c14n_algorithm not in CANONICALIZATIONS:
        return f"SignedInfo canonicalization {c14n_algorithm or '(none)'!r} is not supported"
    method = signed_info.find(_DS + "SignatureMethod")
    method_uri = method.get("Algorithm", "") if method is not None else ""
    if method_uri not in SIGNATURE_METHODS:
        return f"signature method {method_uri or '(none)'!r} is not supported"
    kind, algorithm = SIGNATURE_METHODS[method_uri]
    try:
        value = base64.b64decode("".join((signature.findtext(_DS + "SignatureValue") or "").split()), validate=True)
    except binascii.Error:
        return "the SignatureValue is not base64"
    octets = _c14n(signed_info, c14n_algorithm)
    public_key = cert.public_key()
    try:
        if kind == "rsa" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(value, octets, padding.PKCS1v15(), algorithm())
        elif kind == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(_ecdsa_der(value), octets, ec.ECDSA(algorithm()))
        else:
            return f"the signing certificate's key does not go with the signature method {method_uri}"
    except (InvalidSignature, ValueError):
        return "the SignatureValue does not verify with the signing certificate (SignedInfo altered or another key)"
    return ""


def _ecdsa_der(raw: bytes) -> bytes:
    """XML-DSig writes ECDSA signatures as r||s; cryptography reads DER."""
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def _signed_references(signature: etree._Element, signed_info: etree._Element) -> dict[str, etree._Element] | str:
    """The elements SignedInfo covers, each digest checked: {"manifest": ..., "properties": ...}."""
    covered: dict[str, etree._Element] = {}
    for reference in signed_info.iterfind(_DS + "Reference"):
        uri = reference.get("URI", "")
        if not uri.startswith("#"):
            return f"SignedInfo reference {uri!r} is not to an element of the signature"
        target = _by_id(signature, uri[1:])
        if target is None:
            return f"SignedInfo reference {uri!r} does not name exactly one element (signature wrapping?)"
        transforms = _transforms(reference)
        if isinstance(transforms, str):
            return f"SignedInfo reference {uri}: {transforms}"
        digest = _reference_digest(reference)
        if isinstance(digest, str):
            return f"SignedInfo reference {uri}: {digest}"
        # A same-document reference without transforms is canonicalized without comments.
        octets = _c14n(target, transforms[-1] if transforms else C14N)
        if _digest(octets, digest[0]) != digest[1]:
            return f"the digest of {uri} does not match: the signed element was altered"
        if target.tag == TAG_MANIFEST:
            covered["manifest"] = target
        elif etree.QName(target).localname == "SignedProperties" and etree.QName(target).namespace in XADES_NAMESPACES:
            covered["properties"] = target
    if "manifest" not in covered:
        return "the signature does not cover a ds:Manifest (IHE Document Digital Signature)"
    if "properties" not in covered:
        return "the signature does not cover its XAdES SignedProperties"
    return covered


def _signing_certificate_problem(properties: etree._Element, cert: x509.Certificate) -> tuple[str, str]:
    """(problem, signing time): the signed properties must name the signing certificate."""
    ns = etree.QName(properties).namespace or NS_XADES
    ssp = properties.find(_xades("SignedSignatureProperties", ns))
    if ssp is None:
        return "the SignedProperties have no SignedSignatureProperties", ""
    signing_time = (ssp.findtext(_xades("SigningTime", ns)) or "").strip()
    der = cert.public_bytes(Encoding.DER)
    for entry in ssp.iterfind(f"{_xades('SigningCertificate', ns)}/{_xades('Cert', ns)}"):
        cert_digest = entry.find(_xades("CertDigest", ns))
        if cert_digest is None:
            continue
        # XAdES 1.1.1 puts DigestMethod/DigestValue in its own namespace, 1.3.2 in XML-DSig's.
        method = cert_digest.find(_xades("DigestMethod", ns))
        if method is None:
            method = cert_digest.find(_DS + "DigestMethod")
        value = cert_digest.findtext(_xades("DigestValue", ns)) or cert_digest.findtext(_DS + "DigestValue") or ""
        algorithm = method.get("Algorithm", "") if method is not None else ""
        if algorithm in DIGESTS and _digest(der, algorithm) == "".join(value.split()):
            return "", signing_time
    return "the XAdES SigningCertificate does not name the certificate that signed", signing_time


def _manifest_problem(
    manifest: etree._Element,
    submission_set_unique_id: str,
    documents: Mapping[str, bytes],
    parsed: Mapping[str, etree._Element],
) -> tuple[str, tuple[str, ...]]:
    """Each manifest reference against the submission's documents, and every document covered."""
    named: list[str] = []
    for reference in manifest.iterfind(_DS + "Reference"):
        uri = reference.get("URI", "")
        if not uri.startswith(OID_URI_PREFIX):
            return f"manifest reference {uri!r} is not urn:oid:<uniqueId>", ()
        unique_id = uri[len(OID_URI_PREFIX) :]
        if unique_id in named:
            return f"the manifest names {uri} twice", ()
        named.append(unique_id)
        if unique_id == submission_set_unique_id:
            continue  # the submission set has no content: its digest is a placeholder
        if unique_id not in documents:
            return f"the manifest names {uri}, which is neither a document of the submission nor its submission set", ()
        transforms = _transforms(reference)
        if isinstance(transforms, str):
            return f"manifest reference {uri}: {transforms}", ()
        digest = _reference_digest(reference)
        if isinstance(digest, str):
            return f"manifest reference {uri}: {digest}", ()
        try:
            octets = document_octets(documents[unique_id], transforms, parsed.get(unique_id))
        except UnsafeXmlError as exc:
            return f"manifest reference {uri}: the document cannot be canonicalized: {exc}", ()
        if _digest(octets, digest[0]) != digest[1]:
            return (
                f"the digest of document {unique_id} does not match the signed manifest: the document was altered "
                "after it was signed, or is not the one signed",
                (),
            )
    if submission_set_unique_id not in named:
        return f"the manifest does not name the submission set (urn:oid:{submission_set_unique_id})", ()
    missing = sorted(set(documents) - set(named))
    if missing:
        return f"the manifest does not cover document(s) {', '.join(missing)} of the submission", ()
    return "", tuple(u for u in named if u != submission_set_unique_id)


def verify_submission_signature(
    data: bytes,
    submission_set_unique_id: str,
    documents: Mapping[str, bytes],
    trust: TrustStore | None,
    now: dt.datetime | None = None,
    parsed: Mapping[str, etree._Element] | None = None,
) -> SignatureCheck:
    """Check the signature document `data` of a submission: `documents` maps the uniqueId of
    each other document of the submission to its content. `trust`: the server's trust anchors
    (None: a server without authentication, which checks the signature but not who signed).
    `parsed`: by uniqueId, the trees `parse_bytes` already made of some of those documents."""
    try:
        signature = parse_bytes(data)
    except UnsafeXmlError as exc:
        return _refuse(f"the signature is not acceptable XML: {exc}")
    if signature.tag != TAG_SIGNATURE:
        return _refuse(f"the signature document's root is {signature.tag}, not ds:Signature")
    signed_info = signature.find(TAG_SIGNED_INFO)
    if signed_info is None:
        return _refuse("the signature has no ds:SignedInfo")
    chain = _key_info_chain(signature)
    if isinstance(chain, str):
        return _refuse(chain)
    problem = _signature_value_problem(signature, signed_info, chain[0])
    if problem:
        return _refuse(problem)
    covered = _signed_references(signature, signed_info)
    if isinstance(covered, str):
        return _refuse(covered)
    problem, signing_time = _signing_certificate_problem(covered["properties"], chain[0])
    if problem:
        return _refuse(problem)
    problem, named = _manifest_problem(covered["manifest"], submission_set_unique_id, documents, parsed or {})
    if problem:
        return _refuse(problem)
    signer = holder_of(chain[0])
    if trust is not None:
        check = trust.check(chain, now, DOCUMENT_SIGNATURE)
        if check.holder is None:
            return _refuse(f"the signing certificate is refused: {check.reason}", signer)
        signer = check.holder
    return SignatureCheck(signer, "", signer, signing_time, named)
