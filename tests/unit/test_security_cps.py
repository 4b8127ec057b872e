"""CPS certificates: the generated test PKI, chain validation, dates, key usage, CRL, identity."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import CertificateError, TrustStore, load_pem_certificates, professional_id
from dmp_xds.security.pki import GeneratedPki, create_test_pki, load_test_pki, luhn_key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


def chain(pki: GeneratedPki, name: str) -> list[x509.Certificate]:
    return load_pem_certificates(Path(pki.identity(name).certificate).read_bytes())


def store(pki: GeneratedPki, **kwargs: object) -> TrustStore:
    return TrustStore.from_files([pki.anchors], [pki.intermediates], pki.crls, **kwargs)  # type: ignore[arg-type]


def test_pki_files_and_manifest(pki: GeneratedPki) -> None:
    cards = {
        "doctor",
        "doctor2",
        "nurse",
        "pharmacist",
        "ans-author",
        "occupational",
        "secretary",
        "expired",
        "revoked",
    }
    assert set(pki.identities) == {"server", *cards, "hospital", "patient-portal"}
    for identity in pki.identities.values():
        assert Path(identity.certificate).is_file() and Path(identity.key).is_file()
        assert Path(identity.key).stat().st_mode & 0o077 == 0
    assert load_test_pki(pki.directory).identity("doctor").national_id == pki.identity("doctor").national_id
    manifest = json.loads((pki.directory / "identities.json").read_text())
    assert len(manifest["crls"]) == 3


def test_national_ids_are_rpps_based(pki: GeneratedPki) -> None:
    for name in ("doctor", "doctor2", "nurse", "pharmacist", "ans-author"):
        national_id = pki.identity(name).national_id
        assert len(national_id) == 12 and national_id.startswith("8")
        rpps = national_id[1:]
        assert luhn_key(rpps[:-1]) == rpps[-1]
    # The author of most ANS CDA examples, so that they are submitted as their author.
    assert pki.identity("ans-author").national_id == "801234567897"


def test_luhn_key_known_value() -> None:
    # 7992739871 -> 3 is the textbook Luhn example.
    assert luhn_key("7992739871") == "3"


def test_valid_card_gives_the_holder(pki: GeneratedPki) -> None:
    check = store(pki).check(chain(pki, "doctor"))
    assert check.ok, check.reason
    holder = check.holder
    assert holder is not None
    assert holder.kind == "professional"
    assert holder.national_id == pki.identity("doctor").national_id
    assert (holder.family_name, holder.given_name, holder.profession) == ("MARTIN", "MARIE", "Médecin")
    assert holder.structure_id == ""  # a card is personal: the structure is the VIHF's
    assert holder.display_name == "MARIE MARTIN"
    assert holder.subject == f"GN=MARIE+SN=MARTIN+CN={holder.national_id},title=Médecin,C=FR"


def test_test_cards_have_the_igc_sante_subject_layout(pki: GeneratedPki) -> None:
    """C=FR, title, then one RDN of SN + CN + GN, and no O or OU (see security/vocabulary.py)."""
    subject = chain(pki, "nurse")[0].subject
    rdns = [{attribute.oid: attribute.value for attribute in rdn} for rdn in subject.rdns]
    assert rdns == [
        {NameOID.COUNTRY_NAME: "FR"},
        {NameOID.TITLE: "Infirmier"},
        {
            NameOID.SURNAME: "BERNARD",
            NameOID.COMMON_NAME: pki.identity("nurse").national_id,
            NameOID.GIVEN_NAME: "SOPHIE",
        },
    ]
    hospital = chain(pki, "hospital")[0].subject
    assert hospital.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "1990000017"


@pytest.mark.parametrize(
    "common_name, national_id",
    [
        ("899700367917", "899700367917"),  # 8 + RPPS
        ("00B7010446", "00B7010446"),  # 0 + ADELI
        ("3760021832/000000018", "3760021832/000000018"),  # staff: 3 + FINESS / internal id, kept whole
        ("500000000029751/CPAT0001", "500000000029751/CPAT0001"),  # 5 + SIRET / internal id
        ("8997003679", ""),  # too short for an RPPS
        ("899700367917/CPS", ""),  # an RPPS id has no "/" part
        ("DRIMbox", ""),  # an organisation certificate's CN is a name
        ("3/x", ""),
    ],
)
def test_professional_id(common_name: str, national_id: str) -> None:
    assert professional_id(common_name) == national_id


def issued(pki: GeneratedPki, subject: x509.Name) -> list[x509.Certificate]:
    """A client certificate of `subject` from the test PKI's card CA (chain: leaf, CA)."""
    ca = load_pem_certificates((pki.directory / "ca" / "cards.pem").read_bytes())[0]
    ca_key = serialization.load_pem_private_key((pki.directory / "ca" / "cards.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), True)
        .sign(ca_key, hashes.SHA256())
    )
    return [certificate, ca]


def name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def test_staff_and_adeli_cards_are_professionals(pki: GeneratedPki) -> None:
    staff = store(pki).check(
        issued(
            pki,
            name(
                (NameOID.COUNTRY_NAME, "FR"),
                (NameOID.ORGANIZATION_NAME, "PHARMACIE TEST"),
                (NameOID.ORGANIZATIONAL_UNIT_NAME, "1760021832"),
                (NameOID.PSEUDONYM, "EMPLOYE000000018"),
                (NameOID.COMMON_NAME, "3760021832/000000018"),
            ),
        )
    )
    assert staff.holder is not None, staff.reason
    assert (staff.holder.kind, staff.holder.national_id) == ("professional", "3760021832/000000018")
    assert staff.holder.structure_id == "1760021832"
    adeli = store(pki).check(
        issued(
            pki,
            name(
                (NameOID.COUNTRY_NAME, "FR"),
                (NameOID.TITLE, "Infirmier"),
                (NameOID.SURNAME, "PETIT"),
                (NameOID.COMMON_NAME, "0751234567"),
            ),
        )
    )
    assert adeli.holder is not None and (adeli.holder.kind, adeli.holder.national_id) == ("professional", "0751234567")


def test_a_certificate_naming_neither_a_professional_nor_a_structure_is_refused(pki: GeneratedPki) -> None:
    """Before, any certificate without "8…" in CN was an establishment, and an establishment
    without OU could sign a VIHF for anyone (a patient's included)."""
    for subject in (
        name((NameOID.COUNTRY_NAME, "FR"), (NameOID.COMMON_NAME, "some-application")),
        name(
            (NameOID.SURNAME, "MARTIN"),
            (NameOID.COMMON_NAME, "not-an-id"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "1990000017"),
        ),
    ):
        check = store(pki).check(issued(pki, subject))
        assert not check.ok and "names neither a health professional" in check.reason


def test_leaf_alone_is_completed_from_configured_intermediates(pki: GeneratedPki) -> None:
    assert store(pki).check(chain(pki, "nurse")[:1]).ok


def test_establishment_certificate(pki: GeneratedPki) -> None:
    check = store(pki).check(chain(pki, "hospital"))
    assert check.holder is not None and check.holder.kind == "establishment"
    assert check.holder.structure_id == pki.identity("hospital").structure_id
    assert check.holder.national_id == ""


def test_expired_card_refused(pki: GeneratedPki) -> None:
    check = store(pki).check(chain(pki, "expired"))
    assert not check.ok and "expired" in check.reason


def test_not_yet_valid(pki: GeneratedPki) -> None:
    early = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    check = store(pki).check(chain(pki, "doctor"), now=early)
    assert not check.ok and "not valid before" in check.reason


def test_revoked_card_refused(pki: GeneratedPki) -> None:
    check = store(pki).check(chain(pki, "revoked"))
    assert not check.ok and "revoked" in check.reason


def test_missing_crl_refused_unless_allowed(pki: GeneratedPki) -> None:
    without = TrustStore.from_files([pki.anchors], [pki.intermediates], [])
    assert "no CRL" in without.check(chain(pki, "doctor")).reason
    lenient = TrustStore.from_files([pki.anchors], [pki.intermediates], [], require_crl=False)
    assert lenient.check(chain(pki, "revoked")).ok  # nothing says it is revoked


def test_stale_crl_refused(pki: GeneratedPki) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=60)
    check = store(pki).check(chain(pki, "doctor"), now=later)
    assert not check.ok and "out of date" in check.reason


def test_untrusted_pki_refused(pki: GeneratedPki, tmp_path: Path) -> None:
    other = create_test_pki(tmp_path / "other")
    check = store(pki).check(load_pem_certificates(Path(other.identity("doctor").certificate).read_bytes()))
    assert not check.ok and "not issued by a trusted" in check.reason


def test_server_certificate_cannot_authenticate_a_user(pki: GeneratedPki) -> None:
    check = store(pki).check(load_pem_certificates(pki.server_certificate.read_bytes()))
    assert not check.ok and "client authentication" in check.reason


def test_ca_certificate_is_not_a_user(pki: GeneratedPki) -> None:
    check = store(pki).check(load_pem_certificates((pki.directory / "ca" / "cards.pem").read_bytes()))
    assert not check.ok


def test_empty_chain(pki: GeneratedPki) -> None:
    assert store(pki).check([]).reason == "no certificate was presented"


def test_bad_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "anchors.pem"
    bad.write_text("not a certificate")
    with pytest.raises(CertificateError, match="anchors.pem"):
        TrustStore.from_files([bad])
    with pytest.raises(CertificateError, match="no trust anchor"):
        TrustStore([])


def test_pki_init_command(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dmp_xds.cli.main import main

    runner = CliRunner()
    result = runner.invoke(main, ["pki", "init", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert "doctor" in result.output and "(revoked)" in result.output
    generated = load_test_pki(tmp_path / "p")
    assert (
        TrustStore.from_files([generated.anchors], [generated.intermediates], generated.crls)
        .check(load_pem_certificates(Path(generated.identity("pharmacist").certificate).read_bytes()))
        .ok
    )
    again = runner.invoke(main, ["pki", "init", str(tmp_path / "p")])
    assert again.exit_code != 0 and "--force" in again.output


def test_verdict_cache_lasts_its_configured_time(pki: GeneratedPki) -> None:
    cards_crl = x509.load_pem_x509_crl(next(p for p in pki.crls if p.name.startswith("cards")).read_bytes())
    before_stale = cards_crl.next_update_utc - dt.timedelta(seconds=10)
    trust = TrustStore.from_files([pki.anchors], [pki.intermediates], pki.crls, cache_seconds=30)
    assert trust.check(chain(pki, "doctor"), before_stale).ok
    # 20 s later the CRL is out of date, but the verdict is still the cached one...
    assert trust.check(chain(pki, "doctor"), before_stale + dt.timedelta(seconds=20)).ok
    # ...until its 30 s are over.
    stale = trust.check(chain(pki, "doctor"), before_stale + dt.timedelta(seconds=31))
    assert not stale.ok and "out of date" in stale.reason
    uncached = TrustStore.from_files([pki.anchors], [pki.intermediates], pki.crls, cache_seconds=0)
    assert uncached.check(chain(pki, "doctor"), before_stale).ok
    assert not uncached.check(chain(pki, "doctor"), before_stale + dt.timedelta(seconds=20)).ok


def test_a_changed_crl_file_drops_the_cached_verdicts(tmp_path: Path) -> None:
    from dmp_xds.security.pki import revoke_card

    own = create_test_pki(tmp_path / "pki")
    trust = TrustStore.from_files([own.anchors], [own.intermediates], own.crls, cache_seconds=3600)
    assert trust.check(chain(own, "doctor")).ok
    revoke_card(own, "doctor")
    refused = trust.check(chain(own, "doctor"))  # no waiting for the hour: the file changed
    assert not refused.ok and "revoked" in refused.reason
    assert not trust.check(chain(own, "revoked")).ok  # the earlier entries are kept
    assert trust.check(chain(own, "doctor2")).ok


def test_an_unreadable_new_crl_keeps_the_previous_one(tmp_path: Path) -> None:
    own = create_test_pki(tmp_path / "pki")
    trust = TrustStore.from_files([own.anchors], [own.intermediates], own.crls, cache_seconds=0)
    cards_crl = next(p for p in own.crls if p.name.startswith("cards"))
    cards_crl.write_bytes(b"-----BEGIN X509 CRL-----\ntruncated\n")
    assert trust.check(chain(own, "doctor")).ok
    assert not trust.check(chain(own, "revoked")).ok


def test_the_card_type_is_read_from_the_card_certificate(pki: GeneratedPki) -> None:
    """IGC-Santé cards say their type in an extension: a CPE card (profile E of the DMP's rights
    matrix) is told from a professional's CPS; an establishment certificate is no card."""
    trust = store(pki)
    secretary = trust.check(chain(pki, "secretary")).holder
    doctor = trust.check(chain(pki, "doctor")).holder
    hospital = trust.check(chain(pki, "hospital")).holder
    assert secretary is not None and secretary.kind == "professional"
    assert secretary.card_type == sv.CARD_TYPE_CPE and secretary.national_id == pki.identity("secretary").national_id
    assert doctor is not None and doctor.card_type == sv.CARD_TYPE_CPS
    assert hospital is not None and hospital.card_type == ""
