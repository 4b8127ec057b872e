"""A complete test PKI on the model of the ANS one (IGC-Santé), for tests, demos and editors.

`dmp-xds pki init DIR` writes:

    ca/root.pem                 root CA ("AC RACINE IGC-SANTE TEST")
    ca/cards.pem                professional-card CA ("AC IGC-SANTE TEST PERSONNES")
    ca/servers.pem              server / organisation CA ("AC IGC-SANTE TEST ORGANISATIONS")
    trust/anchors.pem           what a server trusts: the root
    trust/intermediates.pem     the two intermediate CAs
    crl/*.crl.pem               one CRL per CA (the cards CRL lists the revoked card)
    server/server.pem .key      this server's TLS certificate (localhost, 127.0.0.1)
    cards/<name>.pem .key       professionals' card certificates, subject as on IGC-Santé cards
                                (CN "8" + RPPS with SN and GN, title the profession's name),
                                including one expired and one revoked
    establishments/<name>.pem   organisation certificates: the hospital (signs its staff's VIHFs) and
                                the patient portal (patients' VIHFs, once DMP_XDS_PATIENT_PORTALS
                                lists its structure id; identities.json marks it patient_portal)
    identities.json             who is who: national ids, names, professions, files

`signed_vihf` builds the signed VIHF an identity of this PKI (or a patient, through the patient
portal) sends with a request: `dmp-xds pki vihf` prints it, the conformance runner sends it.

Keys are RSA 2048 (the VIHF is signed RSA-SHA256) and are written unencrypted: this PKI is
for tests only and must never be trusted by a production server.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree

from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import dn, load_pem_certificates
from dmp_xds.security.vihf import SHA1, VihfClaims, build_assertion, dmp_claims, sign_assertion

PATIENT = "patient"  # not an identity of the PKI: the patient of the request, through its patient portal
DEFAULT_STRUCTURE = "1990000099"  # the VIHF structure of a professional whose card names none
KEY_SIZE = 2048
CA_YEARS = 10
LEAF_DAYS = 3 * 365
CRL_DAYS = 30


@dataclass(frozen=True)
class CardSpec:
    """A professional holding a card: RPPS number (11 digits, Luhn key) and profession code."""

    name: str
    rpps: str
    family_name: str
    given_name: str
    profession: str
    structure_id: str = ""
    organization: str = ""
    expired: bool = False
    revoked: bool = False
    specialty: str = ""  # TRE_R38, e.g. SM26
    card_type: int = 0  # TRE_G02: 0 CPS, 1 CPF, 2 CPE
    staff_id: str = ""  # a CPE's national id (structure id + "/" + internal id), instead of "8" + RPPS


@dataclass(frozen=True)
class EstablishmentSpec:
    name: str
    structure_id: str  # "1" + FINESS, as the VIHF Identifiant_Structure
    organization: str
    patient_portal: bool = False


@dataclass
class Identity:
    name: str
    kind: str  # "card" | "establishment" | "server"
    certificate: str
    key: str
    national_id: str = ""
    family_name: str = ""
    given_name: str = ""
    profession: str = ""
    structure_id: str = ""
    organization: str = ""
    expired: bool = False
    revoked: bool = False
    patient_portal: bool = False
    specialty: str = ""
    card_type: str = ""  # CPS, CPF, CPE for a card


@dataclass
class GeneratedPki:
    directory: Path
    anchors: Path
    intermediates: Path
    crls: list[Path]
    server_certificate: Path
    server_key: Path
    identities: dict[str, Identity] = field(default_factory=dict)

    def identity(self, name: str) -> Identity:
        return self.identities[name]

    def patient_portal(self) -> Identity:
        """The organisation certificate patients come through (the first one marked so)."""
        portal = next((i for i in self.identities.values() if i.patient_portal), None)
        if portal is None:
            raise ValueError(f"the PKI in {self.directory} has no patient portal (see identities.json)")
        return portal

    def signer(self, who: str, signer: str | None = None) -> Identity:
        """The identity whose certificate signs `who`'s VIHF, and so also makes the TLS connection
        (a VIHF is good only over its signer's connection): `signer`, else `who` itself, else
        (for `PATIENT`) the patient portal."""
        name = signer or who
        if name == PATIENT:
            return self.patient_portal()
        if name not in self.identities:
            raise ValueError(f"no identity {name!r} in {self.directory} (see identities.json)")
        return self.identities[name]


def luhn_key(digits: str) -> str:
    """The Luhn check digit of `digits` (RPPS numbers end with one)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def rpps(body10: str) -> str:
    return body10 + luhn_key(body10)


HOSPITAL = EstablishmentSpec("hospital", "1990000017", "CH DE TEST DMP-XDS")
PORTAL = EstablishmentSpec("patient-portal", "1990000025", "PORTAIL PATIENT DE TEST", patient_portal=True)
CARDS = (
    CardSpec(
        "doctor",
        rpps("1000123456"),
        "MARTIN",
        "MARIE",
        "10",
        HOSPITAL.structure_id,
        HOSPITAL.organization,
        specialty=sv.SPECIALTY_GENERAL_PRACTICE,
    ),
    CardSpec("doctor2", rpps("1000234567"), "DURAND", "JEAN", "10", "", "CABINET DURAND"),
    CardSpec("nurse", rpps("1000345678"), "BERNARD", "SOPHIE", "60", HOSPITAL.structure_id, HOSPITAL.organization),
    CardSpec("pharmacist", rpps("1000456789"), "PETIT", "PAUL", "21", "", "PHARMACIE PETIT"),
    # The author of most ANS CDA examples (ExemplesCDA: 801234567897, Dr Pierre LEGRIS): with his
    # card, those examples are submitted, and masked documents read, as their author.
    CardSpec("ans-author", rpps("0123456789"), "LEGRIS", "PIERRE", "10"),
    CardSpec("expired", rpps("1000567890"), "MOREAU", "LUC", "10", expired=True),
    CardSpec("revoked", rpps("1000678901"), "LEROY", "ANNE", "10", revoked=True),
    # The columns of the DMP's rights matrix a card alone tells apart: an occupational doctor
    # (specialty SM25), an intern (CPF) and a hospital secretary (CPE, a staff id of the hospital).
    CardSpec(
        "occupational",
        rpps("1000789012"),
        "FAURE",
        "HUGO",
        "10",
        "",
        "SERVICE DE SANTE AU TRAVAIL",
        specialty=sv.SPECIALTY_OCCUPATIONAL_MEDICINE,
    ),
    CardSpec(
        "intern", rpps("1000890123"), "ROUX", "LEA", "10", HOSPITAL.structure_id, HOSPITAL.organization, card_type=1
    ),
    CardSpec(
        "secretary",
        "",
        "GIRARD",
        "CLAIRE",
        "",
        HOSPITAL.structure_id,
        HOSPITAL.organization,
        card_type=2,
        staff_id=f"{HOSPITAL.structure_id}/SEC0001",
    ),
)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)


def _name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs if value])


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer_key: rsa.RSAPrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )


def _ca(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    now: dt.datetime,
    path_length: int | None,
) -> x509.Certificate:
    builder = _builder(
        subject,
        issuer,
        key.public_key(),
        issuer_key,
        now - dt.timedelta(days=1),
        now + dt.timedelta(days=365 * CA_YEARS),
    )
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=False,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    return builder.sign(issuer_key, hashes.SHA256())


def _leaf(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    usages: list[x509.ObjectIdentifier],
    san: list[x509.GeneralName] | None = None,
    extra: list[x509.UnrecognizedExtension] | None = None,
) -> x509.Certificate:
    builder = _builder(subject, issuer.subject, key.public_key(), issuer_key, not_before, not_after)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=True,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    for extension in extra or []:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _crl(
    issuer: x509.Certificate, key: rsa.RSAPrivateKey, revoked: list[x509.Certificate], now: dt.datetime
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=CRL_DAYS))
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(now - dt.timedelta(minutes=1))
            .build()
        )
    return builder.sign(key, hashes.SHA256())


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _write_certs(path: Path, *certs: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))


def national_id(card: CardSpec) -> str:
    return card.staff_id or sv.RPPS_PREFIX + card.rpps


def _der(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    size = (len(content).bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + len(content).to_bytes(size, "big") + content


def card_extensions(card: CardSpec) -> list[x509.UnrecognizedExtension]:
    """The GIP-CPS private extensions of a card certificate (vocabulary: EXT_*): its type, and for
    a health professional their profession and specialty, as the DMP's signed example card has them."""
    out = [x509.UnrecognizedExtension(x509.ObjectIdentifier(sv.EXT_CARD_TYPE), _der(0x02, bytes([card.card_type])))]
    if card.profession:
        code = int(card.profession).to_bytes(1, "big")
        out.append(x509.UnrecognizedExtension(x509.ObjectIdentifier(sv.EXT_PROFESSION), _der(0x02, code)))
    if card.specialty:
        specialty = _der(0x30, _der(0x0C, card.specialty.encode()))
        out.append(x509.UnrecognizedExtension(x509.ObjectIdentifier(sv.EXT_SPECIALTIES), specialty))
    return out


def card_subject(card: CardSpec) -> x509.Name:
    """A card's subject as IGC-Santé writes it (security/vocabulary.py names the ANS source):
    C=FR, title = the profession's name, then one multi-valued RDN of surname, national id (CN)
    and given name. No O or OU: a card is its holder's; where they work is the VIHF's
    Identifiant_Structure (identities.json keeps it for the tests)."""

    def rdn(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.RelativeDistinguishedName:
        return x509.RelativeDistinguishedName([x509.NameAttribute(oid, value) for oid, value in pairs])

    title = sv.PROFESSIONS.get(card.profession, "Personnel d'établissement")
    return x509.Name(
        [
            rdn((NameOID.COUNTRY_NAME, "FR")),
            rdn((sv.SUBJECT_PROFESSION, title)),
            rdn(
                (sv.SUBJECT_FAMILY_NAME, card.family_name),
                (sv.SUBJECT_NATIONAL_ID, national_id(card)),
                (sv.SUBJECT_GIVEN_NAME, card.given_name),
            ),
        ]
    )


def create_test_pki(directory: Path, now: dt.datetime | None = None) -> GeneratedPki:
    """Write the whole test PKI under `directory` (created; existing files are replaced)."""
    now = now or dt.datetime.now(dt.UTC)
    directory.mkdir(parents=True, exist_ok=True)
    root_key, cards_key, servers_key = _key(), _key(), _key()
    root_name = _name(
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.ORGANIZATION_NAME, "DMP-XDS TEST"),
        (NameOID.COMMON_NAME, "AC RACINE IGC-SANTE TEST"),
    )
    root = _ca(root_name, root_key, root_name, root_key, now, path_length=1)
    cards_ca = _ca(
        _name(
            (NameOID.COUNTRY_NAME, "FR"),
            (NameOID.ORGANIZATION_NAME, "DMP-XDS TEST"),
            (NameOID.COMMON_NAME, "AC IGC-SANTE TEST PERSONNES"),
        ),
        cards_key,
        root.subject,
        root_key,
        now,
        0,
    )
    servers_ca = _ca(
        _name(
            (NameOID.COUNTRY_NAME, "FR"),
            (NameOID.ORGANIZATION_NAME, "DMP-XDS TEST"),
            (NameOID.COMMON_NAME, "AC IGC-SANTE TEST ORGANISATIONS"),
        ),
        servers_key,
        root.subject,
        root_key,
        now,
        0,
    )
    _write_certs(directory / "ca" / "root.pem", root)
    _write_key(directory / "ca" / "root.key", root_key)
    _write_certs(directory / "ca" / "cards.pem", cards_ca)
    _write_key(directory / "ca" / "cards.key", cards_key)
    _write_certs(directory / "ca" / "servers.pem", servers_ca)
    _write_key(directory / "ca" / "servers.key", servers_key)
    _write_certs(directory / "trust" / "anchors.pem", root)
    _write_certs(directory / "trust" / "intermediates.pem", cards_ca, servers_ca)

    pki = GeneratedPki(
        directory,
        directory / "trust" / "anchors.pem",
        directory / "trust" / "intermediates.pem",
        [],
        directory / "server" / "server.pem",
        directory / "server" / "server.key",
    )

    server_key = _key()
    server = _leaf(
        _name(
            (NameOID.COUNTRY_NAME, "FR"),
            (NameOID.ORGANIZATION_NAME, "DMP-XDS TEST"),
            (NameOID.COMMON_NAME, "localhost"),
        ),
        server_key,
        servers_ca,
        servers_key,
        now - dt.timedelta(days=1),
        now + dt.timedelta(days=LEAF_DAYS),
        [ExtendedKeyUsageOID.SERVER_AUTH],
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    # The chain file a TLS server presents: its certificate, then the intermediate.
    _write_certs(pki.server_certificate, server, servers_ca)
    _write_key(pki.server_key, server_key)
    pki.identities["server"] = Identity("server", "server", str(pki.server_certificate), str(pki.server_key))

    revoked: list[x509.Certificate] = []
    for card in CARDS:
        key = _key()
        subject = card_subject(card)
        if card.expired:
            not_before, not_after = now - dt.timedelta(days=400), now - dt.timedelta(days=35)
        else:
            not_before, not_after = now - dt.timedelta(days=1), now + dt.timedelta(days=LEAF_DAYS)
        cert = _leaf(
            subject,
            key,
            cards_ca,
            cards_key,
            not_before,
            not_after,
            [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION],
            extra=card_extensions(card),
        )
        if card.revoked:
            revoked.append(cert)
        cert_path, key_path = directory / "cards" / f"{card.name}.pem", directory / "cards" / f"{card.name}.key"
        _write_certs(cert_path, cert, cards_ca)
        _write_key(key_path, key)
        pki.identities[card.name] = Identity(
            card.name,
            "card",
            str(cert_path),
            str(key_path),
            national_id(card),
            card.family_name,
            card.given_name,
            card.profession,
            card.structure_id,
            card.organization,
            card.expired,
            card.revoked,
            specialty=card.specialty,
            card_type=sv.CARD_TYPES[card.card_type],
        )

    for establishment in (HOSPITAL, PORTAL):
        key = _key()
        # As an IGC-Santé organisation certificate: the structure's national id in OU, no person.
        subject = _name(
            (NameOID.COUNTRY_NAME, "FR"),
            (NameOID.STATE_OR_PROVINCE_NAME, "Paris (75)"),
            (sv.SUBJECT_ORGANIZATION, establishment.organization),
            (sv.SUBJECT_STRUCTURE_ID, establishment.structure_id),
            (NameOID.COMMON_NAME, f"{establishment.name}.test"),
        )
        cert = _leaf(
            subject,
            key,
            servers_ca,
            servers_key,
            now - dt.timedelta(days=1),
            now + dt.timedelta(days=LEAF_DAYS),
            [ExtendedKeyUsageOID.CLIENT_AUTH],
        )
        cert_path = directory / "establishments" / f"{establishment.name}.pem"
        key_path = directory / "establishments" / f"{establishment.name}.key"
        _write_certs(cert_path, cert, servers_ca)
        _write_key(key_path, key)
        pki.identities[establishment.name] = Identity(
            establishment.name,
            "establishment",
            str(cert_path),
            str(key_path),
            structure_id=establishment.structure_id,
            organization=establishment.organization,
            patient_portal=establishment.patient_portal,
        )

    for name, ca, ca_key, listed in (
        ("root", root, root_key, []),
        ("cards", cards_ca, cards_key, revoked),
        ("servers", servers_ca, servers_key, []),
    ):
        path = directory / "crl" / f"{name}.crl.pem"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_crl(ca, ca_key, listed, now).public_bytes(serialization.Encoding.PEM))
        pki.crls.append(path)

    manifest = {
        "anchors": str(pki.anchors),
        "intermediates": str(pki.intermediates),
        "crls": [str(p) for p in pki.crls],
        "identities": {k: asdict(v) for k, v in pki.identities.items()},
    }
    (directory / "identities.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return pki


def load_test_pki(directory: Path) -> GeneratedPki:
    """A PKI written by `create_test_pki`, from its identities.json."""
    manifest = json.loads((directory / "identities.json").read_text())
    identities = {name: Identity(**data) for name, data in manifest["identities"].items()}
    server = identities["server"]
    return GeneratedPki(
        directory,
        Path(manifest["anchors"]),
        Path(manifest["intermediates"]),
        [Path(p) for p in manifest["crls"]],
        Path(server.certificate),
        Path(server.key),
        identities,
    )


def revoke_card(pki: GeneratedPki, name: str, now: dt.datetime | None = None) -> Path:
    """Revoke the card `name`: a new CRL of the cards CA (its previous entries kept), written
    under a temporary name then renamed, as a CRL distribution job would. Returns the CRL file."""
    now = now or dt.datetime.now(dt.UTC)
    directory = pki.directory
    cards_ca = x509.load_pem_x509_certificate((directory / "ca" / "cards.pem").read_bytes())
    key_file = directory / "ca" / "cards.key"
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{key_file} is not an RSA key, as the keys of this PKI are")
    path = directory / "crl" / "cards.crl.pem"
    previous = x509.load_pem_x509_crl(path.read_bytes())
    card = x509.load_pem_x509_certificates(Path(pki.identity(name).certificate).read_bytes())[0]
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(cards_ca.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=CRL_DAYS))
    )
    for entry in [
        *previous,
        x509.RevokedCertificateBuilder()
        .serial_number(card.serial_number)
        .revocation_date(now - dt.timedelta(minutes=1))
        .build(),
    ]:
        builder = builder.add_revoked_certificate(entry)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    temporary.replace(path)
    return path


def signed_vihf(
    pki: GeneratedPki,
    who: str,
    patient_id: str,
    signer: str | None = None,
    access_mode: str = sv.ACCESS_NORMAL,
    reason: str = "",
    audience: str = "",
    lifetime: float = 300.0,
) -> etree._Element:
    """The signed VIHF (a saml2:Assertion) of `who`, an identity of `pki` or `PATIENT`, about
    `patient_id`, signed by `pki.signer(who, signer)`: a card for its holder, an establishment for
    its staff (indirect mode), the patient portal for the patient. Good for one request."""
    signing = pki.signer(who, signer)
    if who == PATIENT:
        claims = VihfClaims(patient_id, "le patient", sv.PATIENT_ROLE, patient_id, audience=audience)
    elif who not in pki.identities:
        raise ValueError(f"no identity {who!r} in {pki.directory} (see identities.json)")
    else:
        identity = pki.identity(who)
        claims = VihfClaims(
            identity.national_id,
            f"{identity.given_name} {identity.family_name}".strip(),
            identity.profession or "10",
            patient_id,
            structure_id=identity.structure_id or DEFAULT_STRUCTURE,
            # The specialty is a second role: it makes an occupational doctor column C of the matrix.
            specialty=identity.specialty,
            access_mode=access_mode,
            access_reason=reason,
            audience=audience,
            authentication_mode=sv.AUTHENTICATION_DIRECT if signing.kind == "card" else sv.AUTHENTICATION_INDIRECT,
        )
    key = serialization.load_pem_private_key(Path(signing.key).read_bytes(), None)
    return sign_assertion(
        build_assertion(claims, lifetime_seconds=lifetime),
        key,
        load_pem_certificates(Path(signing.certificate).read_bytes()),
    )


def dmp_vihf(
    pki: GeneratedPki,
    who: str,
    patient_id: str,
    mode: str = sv.AUTHENTICATION_DIRECT,
    signed: bool = True,
    signer: str | None = None,
    digest: str = SHA1,
    access_mode: str = sv.ACCESS_NORMAL,
    reason: str = "",
    now: dt.datetime | None = None,
    signature_last: bool = False,
) -> etree._Element:
    """A VIHF shaped as the DMP's example tokens (dmpi.md section 5), of the card holder `who`
    about `patient_id`, in authentication `mode`:

    - DIRECTE: over `who`'s card connection, signed by that card (`signed`), or unsigned as every
      example request carries it;
    - INDIRECTE, INDIRECTE_RENFORCEE: signed by the establishment `signer` (default: the hospital),
      whose certificate also makes the TLS connection; its structure is Identifiant_Structure.

    The Issuer is the signer's DN (the card's when unsigned); no Conditions: the server reads the
    IssueInstant (`now`). RSA-SHA1 as the examples, or `digest` SHA256."""
    if who not in pki.identities or pki.identities[who].kind != "card":
        raise ValueError(f"no card {who!r} in {pki.directory} (see identities.json)")
    identity = pki.identity(who)
    direct = mode == sv.AUTHENTICATION_DIRECT
    signing = identity if direct else pki.signer(signer or HOSPITAL.name)
    structure = (identity.structure_id or DEFAULT_STRUCTURE) if direct else signing.structure_id
    claims = dmp_claims(
        identity.national_id,
        f"{identity.given_name} {identity.family_name}".strip(),
        identity.profession or sv.PROFESSION_DOCTOR,
        patient_id,
        structure,
        mode,
        specialty=identity.specialty,
        access_mode=access_mode,
        access_reason=reason,
    )
    chain = load_pem_certificates(Path(signing.certificate).read_bytes())
    assertion = build_assertion(claims, now=now, issuer=dn(chain[0].subject), signature_last=signature_last)
    if not signed:
        if not direct:
            raise ValueError(f"a {mode} VIHF is always signed by the establishment")
        placeholder = assertion.find(sv.TAG_SIGNATURE)
        if placeholder is not None:
            assertion.remove(placeholder)
        return assertion
    key = serialization.load_pem_private_key(Path(signing.key).read_bytes(), None)
    return sign_assertion(assertion, key, chain, digest)
