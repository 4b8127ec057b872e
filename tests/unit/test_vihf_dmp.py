"""The VIHF 3.0 token as DMP-compatible software sends it (dmpi.md section 5): the four shapes of
the DMP's example tokens (built by our own builder, pki.dmp_vihf) are accepted over the right
connection, and what must be refused is, with a reason naming why."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import AUTHENTICATION, SIGNATURE, Holder, TrustStore, card_facts, load_pem_certificates
from dmp_xds.security.pki import GeneratedPki, create_test_pki, dmp_vihf
from dmp_xds.security.vihf import (
    SHA256,
    ReplayCache,
    VihfResult,
    VihfVerifier,
    dn_identity,
    issuer_problem,
    security_header,
    sign_assertion,
)

# The DMP's examples name the patient so: an INS with the NH identifier type.
PATIENT = "207058575627097^^^&1.2.250.1.213.1.4.10&ISO^NH"
MAX_AGE = 300.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def trust(pki: GeneratedPki) -> TrustStore:
    return TrustStore.from_files([pki.anchors], [pki.intermediates], pki.crls)


@pytest.fixture()
def verifier(trust: TrustStore) -> VihfVerifier:
    return VihfVerifier(trust, clock_skew_seconds=60, max_age_seconds=MAX_AGE)


def connection(pki: GeneratedPki, trust: TrustStore, name: str) -> Holder:
    """The checked TLS client certificate of `name` (as services/gate.py passes it)."""
    check = trust.check(load_pem_certificates(Path(pki.identity(name).certificate).read_bytes()))
    assert check.holder is not None, check.reason
    return check.holder


def header(assertion: etree._Element) -> etree._Element:
    """As the server sees it: parsed from the bytes of a whole header."""
    return etree.fromstring(etree.tostring(security_header(assertion)))


def verify(
    verifier: VihfVerifier, pki: GeneratedPki, trust: TrustStore, assertion: etree._Element, over: str
) -> VihfResult:
    return verifier.verify(header(assertion), connection=connection(pki, trust, over))


def attribute(assertion: etree._Element, name: str) -> etree._Element:
    return next(a for a in assertion.iter(sv.TAG_ATTRIBUTE) if a.get("Name") == name)


def resign(pki: GeneratedPki, assertion: etree._Element, signer: str, digest: str = SHA256) -> etree._Element:
    """`assertion` (changed) signed again by `signer`."""
    unsigned = copy.deepcopy(assertion)
    signature = unsigned.find(sv.TAG_SIGNATURE)
    if signature is not None:
        unsigned.remove(signature)
    unsigned.insert(1, etree.Element(sv.TAG_SIGNATURE, nsmap={"ds": sv.NS_DS}, Id="placeholder"))
    identity = pki.identity(signer)
    key = load_pem_private_key(Path(identity.key).read_bytes(), None)
    return sign_assertion(unsigned, key, load_pem_certificates(Path(identity.certificate).read_bytes()), digest)


# --- the four shapes of the DMP's example tokens -----------------------------------------------


def test_direct_unsigned_token_over_the_card(pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier) -> None:
    token = dmp_vihf(pki, "doctor", PATIENT, signed=False)
    assert token.find(sv.TAG_SIGNATURE) is None and token.find(sv.TAG_CONDITIONS) is None
    assert not [a for a in token.iter(sv.TAG_ATTRIBUTE) if a.get("Name") == sv.ATTR_SUBJECT_ID]
    result = verify(verifier, pki, trust, token, "doctor")
    assert result.ok, result.reason
    p = result.principal
    assert p is not None and not p.signed and p.is_direct and not p.is_indirect
    assert p.user_id == pki.identity("doctor").national_id and p.patient_id == PATIENT
    assert (p.profession, p.specialty, p.roles) == ("10", "SM26", ("10", "SM26"))
    assert p.card_type == sv.CARD_CPS and p.is_doctor and not p.is_occupational_doctor and not p.is_cpe
    assert p.name == "MARIE MARTIN"  # no subject-id in direct mode: the card's holder
    assert (p.lps_id, p.lps_approval) == ("dmp-xds.test", "dmp-xds-test")


def test_direct_signed_token(pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier) -> None:
    token = dmp_vihf(pki, "doctor", PATIENT)
    method = token.find(f"{sv.TAG_SIGNATURE}/{{{sv.NS_DS}}}SignedInfo/{{{sv.NS_DS}}}SignatureMethod")
    assert method is not None and method.get("Algorithm", "").endswith("rsa-sha1")  # as the DMP's examples
    result = verify(verifier, pki, trust, token, "doctor")
    assert result.ok, result.reason
    assert result.principal is not None and result.principal.signed and result.principal.is_direct


@pytest.mark.parametrize("mode", [sv.AUTHENTICATION_INDIRECT, sv.AUTHENTICATION_INDIRECT_REINFORCED])
def test_indirect_tokens_signed_by_the_establishment(
    pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier, mode: str
) -> None:
    token = dmp_vihf(pki, "doctor", PATIENT, mode)
    declaration = token.findtext(f".//{sv.TAG_AUTHN_CONTEXT_DECL}")
    assert declaration == (sv.AUTHN_DECL_AIR if mode == sv.AUTHENTICATION_INDIRECT_REINFORCED else None)
    result = verify(verifier, pki, trust, token, "hospital")
    assert result.ok, result.reason
    p = result.principal
    assert p is not None and p.authentication_mode == mode and p.is_indirect
    assert p.is_reinforced_indirect == (mode == sv.AUTHENTICATION_INDIRECT_REINFORCED)
    assert p.structure_id == pki.identity("hospital").structure_id == p.vouched_by
    assert p.card_type == "" and p.is_doctor and p.name == "MARIE MARTIN"


def test_sha256_and_signature_last_are_accepted(pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier) -> None:
    token = dmp_vihf(pki, "doctor", PATIENT, sv.AUTHENTICATION_INDIRECT, digest=SHA256, signature_last=True)
    assert token[-1].tag == sv.TAG_SIGNATURE
    result = verify(verifier, pki, trust, token, "hospital")
    assert result.ok, result.reason


def test_the_card_tells_occupational_doctor_intern_and_secretary(
    pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier
) -> None:
    occupational = verify(verifier, pki, trust, dmp_vihf(pki, "occupational", PATIENT, signed=False), "occupational")
    assert occupational.principal is not None and occupational.principal.is_occupational_doctor
    intern = verify(verifier, pki, trust, dmp_vihf(pki, "intern", PATIENT, signed=False), "intern")
    assert intern.principal is not None and intern.principal.is_cpf and intern.principal.card_type == sv.CARD_CPF
    secretary = verify(verifier, pki, trust, dmp_vihf(pki, "secretary", PATIENT, signed=False), "secretary")
    p = secretary.principal
    assert p is not None, secretary.reason
    assert p.is_cpe and not p.is_doctor and p.structure_id == pki.identity("hospital").structure_id


def test_authentication_mode_is_read_in_both_spellings_or_inferred(
    pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier
) -> None:
    token = dmp_vihf(pki, "doctor", PATIENT, sv.AUTHENTICATION_INDIRECT, signed=True)
    attribute(token, sv.ATTR_AUTHENTICATION_MODE_DMP).set("Name", sv.ATTR_AUTHENTICATION_MODE)  # the kit's spelling
    result = verify(verifier, pki, trust, resign(pki, token, "hospital"), "hospital")
    assert result.principal is not None and result.principal.is_indirect, result.reason
    # The kit states the mode only in AIR mode: without it, the signer tells.
    token = dmp_vihf(pki, "doctor", PATIENT, signed=False)
    mode = attribute(token, sv.ATTR_AUTHENTICATION_MODE_DMP)
    mode.getparent().remove(mode)
    result = verify(verifier, pki, trust, token, "doctor")
    assert result.principal is not None and result.principal.is_direct, result.reason


def test_access_modes_and_ignored_code_system_name(
    pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier
) -> None:
    token = dmp_vihf(pki, "doctor", PATIENT, signed=False, access_mode=sv.ACCESS_REGULATION)
    purpose = token.find(f".//{sv.TAG_HL7_PURPOSE_OF_USE}")
    assert purpose is not None
    purpose.set("codeSystemName", "mode acces VIHF 1.0")  # the kit's and DRIMbox's
    purpose.set("displayName", "AccÃ¨s rÃ©gulation")  # mis-encoded, as in the examples
    result = verify(verifier, pki, trust, token, "doctor")
    assert result.principal is not None and result.principal.is_regulation, result.reason


# --- refusals -----------------------------------------------------------------------------------


def test_unsigned_token_over_an_establishment_connection(
    pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier
) -> None:
    result = verify(verifier, pki, trust, dmp_vihf(pki, "doctor", PATIENT, signed=False), "hospital")
    assert not result.ok and "not signed" in result.reason and "organisation certificate" in result.reason
    assert not verifier.verify(header(dmp_vihf(pki, "doctor", PATIENT, signed=False))).ok  # no connection known


def test_unsigned_token_of_another_professional(pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier) -> None:
    result = verify(verifier, pki, trust, dmp_vihf(pki, "doctor", PATIENT, signed=False), "doctor2")
    assert not result.ok and "speaks for the card's holder only" in result.reason
    assert result.user_id == pki.identity("doctor").national_id and result.patient_id == PATIENT  # traced


def test_token_signed_by_another_card(pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier) -> None:
    token = resign(pki, dmp_vihf(pki, "doctor", PATIENT), "doctor2")
    result = verify(verifier, pki, trust, token, "doctor2")
    assert not result.ok and "signs only for its holder" in result.reason


def test_stale_token(pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=MAX_AGE + 120)
    result = verify(verifier, pki, trust, dmp_vihf(pki, "doctor", PATIENT, signed=False, now=old), "doctor")
    assert not result.ok and "stale" in result.reason and "DMP_XDS_VIHF_MAX_AGE_SECONDS" in result.reason
    recent = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=MAX_AGE - 30)
    assert verify(verifier, pki, trust, dmp_vihf(pki, "doctor", PATIENT, signed=False, now=recent), "doctor").ok
    future = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    result = verify(verifier, pki, trust, dmp_vihf(pki, "doctor", PATIENT, signed=False, now=future), "doctor")
    assert "issued in the future" in result.reason


def test_replay_without_conditions(pki: GeneratedPki, trust: TrustStore) -> None:
    replays = ReplayCache()
    verifier = VihfVerifier(trust, max_age_seconds=MAX_AGE, clock_skew_seconds=60, replay_cache=replays)
    token = dmp_vihf(pki, "doctor", PATIENT, signed=False)
    assert verify(verifier, pki, trust, token, "doctor").ok
    assert "replay" in verify(verifier, pki, trust, token, "doctor").reason
    # The id is kept for the token's whole life (IssueInstant + max age + skew), not dropped at once.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=MAX_AGE)
    assert not replays.first_use(token.get("ID", ""), later.timestamp() + 1, later.timestamp())


def test_unknown_access_mode(pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier) -> None:
    token = dmp_vihf(pki, "doctor", PATIENT, signed=False, access_mode="urgence")
    assert "unknown access mode 'urgence'" in verify(verifier, pki, trust, token, "doctor").reason


def test_unknown_authentication_mode(pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier) -> None:
    token = dmp_vihf(pki, "doctor", PATIENT, signed=False)
    attribute(token, sv.ATTR_AUTHENTICATION_MODE_DMP)[0].text = "MIXTE"
    assert "unknown authentication mode 'MIXTE'" in verify(verifier, pki, trust, token, "doctor").reason


def test_stated_mode_must_be_the_signers(pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier) -> None:
    direct_by_establishment = dmp_vihf(pki, "doctor", PATIENT, sv.AUTHENTICATION_INDIRECT)
    attribute(direct_by_establishment, sv.ATTR_AUTHENTICATION_MODE_DMP)[0].text = sv.AUTHENTICATION_DIRECT
    result = verify(verifier, pki, trust, resign(pki, direct_by_establishment, "hospital"), "hospital")
    assert "comes from the professional's card" in result.reason
    indirect_unsigned = dmp_vihf(pki, "doctor", PATIENT, signed=False)
    attribute(indirect_unsigned, sv.ATTR_AUTHENTICATION_MODE_DMP)[0].text = sv.AUTHENTICATION_INDIRECT
    result = verify(verifier, pki, trust, indirect_unsigned, "doctor")
    assert "comes from an establishment's certificate" in result.reason


def test_bad_signature(pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier) -> None:
    token = dmp_vihf(pki, "doctor", PATIENT, sv.AUTHENTICATION_INDIRECT)
    attribute(token, sv.ATTR_STRUCTURE_ID)[0].text = "1990000099"
    assert "does not verify" in verify(verifier, pki, trust, token, "hospital").reason


def test_sha1_refused_when_the_setting_forbids_it(pki: GeneratedPki, trust: TrustStore) -> None:
    strict = VihfVerifier(trust, max_age_seconds=MAX_AGE, allow_sha1=False)
    result = verify(strict, pki, trust, dmp_vihf(pki, "doctor", PATIENT, sv.AUTHENTICATION_INDIRECT), "hospital")
    assert not result.ok and "SHA-1 is refused" in result.reason
    sha256 = dmp_vihf(pki, "doctor", PATIENT, sv.AUTHENTICATION_INDIRECT, digest=SHA256)
    assert verify(strict, pki, trust, sha256, "hospital").ok


def test_roles_must_be_the_cards(pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier) -> None:
    nurse_role = dmp_vihf(pki, "doctor", PATIENT, signed=False)
    nurse_role.find(f".//{sv.TAG_HL7_ROLE}").set("code", "60")  # type: ignore[union-attr]
    assert "profession 60 is not the card's (10)" in verify(verifier, pki, trust, nurse_role, "doctor").reason
    occupational = dmp_vihf(pki, "doctor", PATIENT, signed=False)
    occupational.findall(f".//{sv.TAG_HL7_ROLE}")[1].set("code", sv.SPECIALTY_OCCUPATIONAL_MEDICINE)
    assert (
        "specialty SM25 is not one of the card's (SM26)" in verify(verifier, pki, trust, occupational, "doctor").reason
    )
    # The same roles in indirect mode are the establishment's word.
    token = dmp_vihf(pki, "doctor", PATIENT, sv.AUTHENTICATION_INDIRECT)
    token.find(f".//{sv.TAG_HL7_ROLE}").set("code", "60")  # type: ignore[union-attr]
    assert verify(verifier, pki, trust, resign(pki, token, "hospital"), "hospital").ok


def test_staff_card_names_its_structure(pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier) -> None:
    token = dmp_vihf(pki, "secretary", PATIENT, signed=False)
    attribute(token, sv.ATTR_STRUCTURE_ID)[0].text = "1990000099"
    assert "not the one of the staff card" in verify(verifier, pki, trust, token, "secretary").reason


def test_issuer_must_name_the_signer(pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier) -> None:
    token = dmp_vihf(pki, "doctor", PATIENT, sv.AUTHENTICATION_INDIRECT)
    token.find(sv.TAG_ISSUER).text = "CN=other.test,OU=1990000099,O=AUTRE,C=FR"  # type: ignore[union-attr]
    result = verify(verifier, pki, trust, resign(pki, token, "hospital"), "hospital")
    assert "Issuer" in result.reason and "is not its signing certificate" in result.reason


def test_vihf_version(pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier) -> None:
    token = dmp_vihf(pki, "doctor", PATIENT, signed=False)
    attribute(token, sv.ATTR_VIHF_VERSION)[0].text = "2.0"
    assert "VIHF_Version '2.0' is not supported" in verify(verifier, pki, trust, token, "doctor").reason


# --- the pieces ---------------------------------------------------------------------------------


def test_issuer_comparison_tolerates_the_kits_rewriting(pki: GeneratedPki) -> None:
    certificate = load_pem_certificates(Path(pki.identity("hospital").certificate).read_bytes())[0]
    kit = "CN=hospital.test, OU=1990000017, O=CH DE TEST DMP-XDS, S=Paris (75), C=FR"
    assert issuer_problem(kit, certificate) == ""
    assert issuer_problem("CN=hospital.test,OU=1990000018", certificate) != ""
    # Java's hex form of a multi-valued RDN, and "?" for an accented letter, as in the DMP's examples.
    java = "CN=899900038839+2.5.4.4=#14045452414c+2.5.4.42=#14064144454d4953,OU=M?decin,O=TEST,C=FR"
    assert dn_identity(java) == {"CN": {"899900038839"}, "OU": {"mdecin"}}
    assert dn_identity("2.5.4.3=#0c0678797a2e6672,G=Jean") == {"CN": {"xyzfr"}}


def test_card_facts_from_the_certificate(pki: GeneratedPki) -> None:
    def facts(name: str) -> tuple[str, str, tuple[str, ...]]:
        return card_facts(load_pem_certificates(Path(pki.identity(name).certificate).read_bytes())[0])

    assert facts("doctor") == (sv.CARD_CPS, "10", ("SM26",))
    assert facts("occupational") == (sv.CARD_CPS, "10", ("SM25",))
    assert facts("intern") == (sv.CARD_CPF, "10", ())
    assert facts("secretary") == (sv.CARD_CPE, "", ())
    assert facts("hospital") == ("", "", ())


def test_signature_certificates_need_not_allow_tls(pki: GeneratedPki, trust: TrustStore) -> None:
    """A card's signature certificate has the S/MIME usage only (as the DMP's signed example):
    good for a VIHF signature, not for a TLS connection."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID

    card = load_pem_certificates(Path(pki.identity("doctor").certificate).read_bytes())[0]
    ca = load_pem_certificates((pki.directory / "ca" / "cards.pem").read_bytes())[0]
    ca_key = load_pem_private_key((pki.directory / "ca" / "cards.key").read_bytes(), None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    builder = x509.CertificateBuilder().subject_name(card.subject).issuer_name(ca.subject).public_key(key.public_key())
    builder = builder.serial_number(x509.random_serial_number())
    builder = builder.not_valid_before(card.not_valid_before_utc).not_valid_after(card.not_valid_after_utc)
    usage = dict.fromkeys(
        [
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ],
        False,
    )
    builder = builder.add_extension(x509.KeyUsage(digital_signature=True, **usage), critical=True)
    builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
    signing = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    assert trust.check([signing, ca], purpose=SIGNATURE).ok
    refused = trust.check([signing, ca], purpose=AUTHENTICATION)
    assert "client authentication" in refused.reason


def test_roles_of_other_code_systems_and_version_4(
    pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier
) -> None:
    """The ANS mapping of VIHF 4.0 orders the roles (profession, then savoir-faire) and lets a CPF
    state a profession in training of another code system: the order tells them apart then."""
    token = dmp_vihf(pki, "occupational", PATIENT, sv.AUTHENTICATION_INDIRECT)
    profession, specialty = token.findall(f".//{sv.TAG_HL7_ROLE}")
    profession.set("codeSystem", "1.2.250.1.213.1.1.4.1")
    specialty.set("codeSystem", "1.2.250.1.213.1.1.4.2")
    attribute(token, sv.ATTR_VIHF_VERSION)[0].text = "4.0"
    result = verify(verifier, pki, trust, resign(pki, token, "hospital"), "hospital")
    p = result.principal
    assert p is not None, result.reason
    assert (p.profession, p.specialty) == ("10", "SM25") and p.is_occupational_doctor


def test_pki_vihf_command_prints_dmp_shaped_tokens(
    pki: GeneratedPki, trust: TrustStore, verifier: VihfVerifier
) -> None:
    from click.testing import CliRunner

    from dmp_xds.cli.pki import pki as pki_command

    def run(*args: str) -> tuple[int, str]:
        outcome = CliRunner().invoke(pki_command, ["vihf", str(pki.directory), "doctor", PATIENT, *args])
        return outcome.exit_code, outcome.output

    code, output = run("--dmp", "DIRECTE", "--unsigned")
    assert code == 0, output
    result = verifier.verify(etree.fromstring(output.strip()), connection=connection(pki, trust, "doctor"))
    assert result.principal is not None and not result.principal.signed, result.reason
    code, output = run("--dmp", "INDIRECTE_RENFORCEE", "--signer", "hospital")
    assert code == 0, output
    result = verifier.verify(etree.fromstring(output.strip()), connection=connection(pki, trust, "hospital"))
    assert result.principal is not None and result.principal.is_reinforced_indirect, result.reason
    code, output = run("--dmp", "INDIRECTE", "--unsigned")
    assert code == 1 and "only a direct-mode VIHF may be unsigned" in output
    refused = CliRunner().invoke(pki_command, ["vihf", str(pki.directory), "hospital", PATIENT, "--dmp", "DIRECTE"])
    assert refused.exit_code == 1 and "no card 'hospital'" in refused.output
