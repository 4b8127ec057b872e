"""The VIHF verifier: a valid assertion gives a Principal; every defect is refused, named."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import Holder, TrustStore, load_pem_certificates
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.security.vihf import (
    Principal,
    VihfClaims,
    VihfVerifier,
    VouchingRules,
    build_assertion,
    same_patient,
    security_header,
    sign_assertion,
    signer_problem,
    split_cx,
)

PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
AUDIENCE = "urn:dmp-xds:test"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture()
def verifier(pki: GeneratedPki) -> VihfVerifier:
    trust = TrustStore.from_files([pki.anchors], [pki.intermediates], pki.crls)
    portal = VouchingRules(frozenset({pki.identity("patient-portal").structure_id}))
    return VihfVerifier(trust, audience=AUDIENCE, clock_skew_seconds=60, vouching=portal)


def claims_for(pki: GeneratedPki, name: str = "doctor", **changes: str) -> VihfClaims:
    identity = pki.identity(name)
    base = VihfClaims(
        identity.national_id,
        f"{identity.given_name} {identity.family_name}",
        identity.profession or "10",
        PATIENT,
        structure_id=identity.structure_id or "1990000017",
        audience=AUDIENCE,
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def signed(pki: GeneratedPki, claims: VihfClaims, signer: str = "doctor", **build: object) -> etree._Element:
    identity = pki.identity(signer)
    key = load_pem_private_key(Path(identity.key).read_bytes(), None)
    chain = load_pem_certificates(Path(identity.certificate).read_bytes())
    return sign_assertion(build_assertion(claims, **build), key, chain)  # type: ignore[arg-type]


def header(assertion: etree._Element) -> etree._Element:
    """As the server sees it: parsed from the bytes of a whole header."""
    return etree.fromstring(etree.tostring(security_header(assertion)))


def test_valid_professional(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    result = verifier.verify(header(signed(pki, claims_for(pki))))
    assert result.ok, result.reason
    p = result.principal
    assert p is not None and p.is_professional
    assert p.user_id == pki.identity("doctor").national_id
    assert p.roles == ("10",)
    assert p.access_mode == sv.ACCESS_NORMAL
    assert same_patient(p.patient_id, PATIENT)
    assert p.structure_id == "1990000017"
    assert p.sector.startswith("SA07")
    assert p.software == "dmp-xds-client 1.0"
    assert p.signer.national_id == p.user_id


def test_no_header_no_assertion_two_assertions(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    assert "no wsse:Security" in verifier.verify(None).reason
    empty = security_header(etree.Element("x"))
    empty.remove(empty[0])
    assert "no SAML 2.0 Assertion" in verifier.verify(empty).reason
    two = header(signed(pki, claims_for(pki)))
    two.append(copy.deepcopy(signed(pki, claims_for(pki))))
    assert "more than one" in verifier.verify(two).reason


def test_unsigned(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    assertion = build_assertion(claims_for(pki))
    assertion.remove(assertion.find(sv.TAG_SIGNATURE))
    assert verifier.verify(header(assertion)).reason.startswith("the VIHF is not signed")


def test_expired_and_not_yet_valid(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    assert "has expired" in verifier.verify(header(signed(pki, claims_for(pki), now=past))).reason
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert "not valid yet" in verifier.verify(header(signed(pki, claims_for(pki), now=future))).reason


def test_clock_skew_is_tolerated(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    slightly_ahead = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    assert verifier.verify(header(signed(pki, claims_for(pki), now=slightly_ahead))).ok


def test_tampered_attribute(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    assertion = signed(pki, claims_for(pki))
    for attribute in assertion.iter(sv.TAG_ATTRIBUTE):
        if attribute.get("Name") == sv.ATTR_RESOURCE_ID:
            attribute[0].text = "1111111111111^^^&1.2.250.1.213.1.4.10&ISO"
    assert "does not verify" in verifier.verify(header(assertion)).reason


def test_tampered_name_id(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    assertion = signed(pki, claims_for(pki))
    assertion.find(f"{sv.TAG_SUBJECT}/{sv.TAG_NAME_ID}").text = pki.identity("doctor2").national_id
    assert "does not verify" in verifier.verify(header(assertion)).reason


def test_wrapping_with_duplicate_id(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    """The genuine signed assertion hidden in an extension, a forged one with its ID outside."""
    genuine = signed(pki, claims_for(pki))
    forged = copy.deepcopy(genuine)
    forged.find(f"{sv.TAG_SUBJECT}/{sv.TAG_NAME_ID}").text = pki.identity("doctor2").national_id
    extension = etree.SubElement(forged, f"{{{sv.NS_SAML}}}Advice")
    extension.append(genuine)
    assert "wrapping" in verifier.verify(header(forged)).reason


def test_wrapping_with_reference_elsewhere(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    """A forged assertion (new ID) carrying the genuine signature, which points to the genuine
    assertion tucked inside it."""
    genuine = signed(pki, claims_for(pki))
    forged = copy.deepcopy(genuine)
    forged.set("ID", "_forged")
    forged.find(f"{sv.TAG_SUBJECT}/{sv.TAG_NAME_ID}").text = pki.identity("doctor2").national_id
    genuine.remove(genuine.find(sv.TAG_SIGNATURE))
    etree.SubElement(forged, f"{{{sv.NS_SAML}}}Advice").append(genuine)
    assert "wrapping" in verifier.verify(header(forged)).reason


def test_replay(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    assertion = signed(pki, claims_for(pki))
    assert verifier.verify(header(assertion)).ok
    assert "replay" in verifier.verify(header(assertion)).reason


@pytest.mark.parametrize(
    "signer, expected",
    [
        ("expired", "expired"),
        ("revoked", "revoked"),
    ],
)
def test_refused_signing_certificates(pki: GeneratedPki, verifier: VihfVerifier, signer: str, expected: str) -> None:
    result = verifier.verify(header(signed(pki, claims_for(pki, signer), signer=signer)))
    assert "signing certificate is refused" in result.reason and expected in result.reason


def test_untrusted_signer(pki: GeneratedPki, verifier: VihfVerifier, tmp_path: Path) -> None:
    other = create_test_pki(tmp_path / "other")
    result = verifier.verify(header(signed(other, claims_for(pki))))
    assert "not issued by a trusted" in result.reason


def test_card_signs_only_for_its_holder(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    result = verifier.verify(header(signed(pki, claims_for(pki, "doctor2"), signer="doctor")))
    assert "signs only for its holder" in result.reason


def test_establishment_signs_for_its_staff(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    claims = claims_for(pki, "nurse", authentication_mode=sv.AUTHENTICATION_INDIRECT)
    result = verifier.verify(header(signed(pki, claims, signer="hospital")))
    assert result.ok, result.reason
    assert result.principal is not None and result.principal.authentication_mode == sv.AUTHENTICATION_INDIRECT
    other_structure = claims_for(pki, "nurse", structure_id="1990000999")
    assert (
        "not the signing establishment"
        in verifier.verify(header(signed(pki, other_structure, signer="hospital"))).reason
    )


def test_audience(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    assert (
        "not meant for this server"
        in verifier.verify(header(signed(pki, claims_for(pki, audience="urn:other")))).reason
    )
    assert "not meant for this server" in verifier.verify(header(signed(pki, claims_for(pki, audience="")))).reason


@pytest.mark.parametrize(
    "field, attribute",
    [
        ("patient_id", sv.ATTR_RESOURCE_ID),
        ("structure_id", sv.ATTR_STRUCTURE_ID),
        ("sector", sv.ATTR_SECTOR),
        ("lps_name", sv.ATTR_LPS_NAME),
        ("lps_version", sv.ATTR_LPS_VERSION),
    ],
)
def test_required_attributes(pki: GeneratedPki, verifier: VihfVerifier, field: str, attribute: str) -> None:
    claims = claims_for(pki, "doctor2", **{field: ""})
    result = verifier.verify(header(signed(pki, claims, signer="doctor2")))
    assert "lacks required attribute" in result.reason and attribute in result.reason


def test_emergency_needs_a_reason(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    no_reason = claims_for(pki, access_mode=sv.ACCESS_EMERGENCY)
    assert "requires a reason" in verifier.verify(header(signed(pki, no_reason))).reason
    with_reason = claims_for(pki, access_mode=sv.ACCESS_EMERGENCY, access_reason="patient inconscient")
    result = verifier.verify(header(signed(pki, with_reason)))
    assert result.principal is not None and result.principal.access_reason == "patient inconscient"


def test_unknown_access_mode(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    assert "unknown access mode" in verifier.verify(header(signed(pki, claims_for(pki, access_mode="vip")))).reason


def test_patient_principal(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    claims = VihfClaims(PATIENT, "le patient", sv.PATIENT_ROLE, PATIENT, audience=AUDIENCE)
    result = verifier.verify(header(signed(pki, claims, signer="patient-portal")))
    assert result.principal is not None and result.principal.is_patient, result.reason
    by_card = verifier.verify(
        header(signed(pki, VihfClaims(PATIENT, "x", sv.PATIENT_ROLE, PATIENT, audience=AUDIENCE)))
    )
    assert "organisation certificate" in by_card.reason
    other = VihfClaims(PATIENT, "x", sv.PATIENT_ROLE, "1111111111111^^^&1.2.250.1.213.1.4.10&ISO", audience=AUDIENCE)
    assert "about the patient it names" in verifier.verify(header(signed(pki, other, signer="patient-portal"))).reason


def test_legal_representative_principal(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    parent = "2700599123456^^^&1.2.250.1.213.1.4.10&ISO"
    claims = VihfClaims(parent, "le parent", sv.REPRESENTATIVE_ROLE, PATIENT, audience=AUDIENCE)
    result = verifier.verify(header(signed(pki, claims, signer="patient-portal")))
    principal = result.principal
    assert principal is not None and principal.is_representative and not principal.is_patient, result.reason
    assert (principal.user_id, principal.patient_id) == (parent, PATIENT)
    by_card = VihfClaims(parent, "x", sv.REPRESENTATIVE_ROLE, PATIENT, audience=AUDIENCE)
    assert "organisation certificate" in verifier.verify(header(signed(pki, by_card))).reason
    self_named = VihfClaims(PATIENT, "x", sv.REPRESENTATIVE_ROLE, PATIENT, audience=AUDIENCE)
    assert (
        "names the representative" in verifier.verify(header(signed(pki, self_named, signer="patient-portal"))).reason
    )


def test_only_a_patient_portal_speaks_for_a_patient(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    """The hospital's certificate is trusted, yet its patient VIHF is refused, naming the hospital;
    the refusal carries what the verified VIHF claimed, for the trace."""
    hospital = pki.identity("hospital")
    claims = VihfClaims(PATIENT, "le patient", sv.PATIENT_ROLE, PATIENT, audience=AUDIENCE)
    result = verifier.verify(header(signed(pki, claims, signer="hospital")))
    assert result.principal is None and "not a patient portal" in result.reason
    assert hospital.structure_id in result.reason and hospital.organization in result.reason
    assert (result.user_id, result.patient_id, result.vouched_by) == (PATIENT, PATIENT, hospital.structure_id)
    parent = VihfClaims(
        "2700599123456^^^&1.2.250.1.213.1.4.10&ISO", "le parent", sv.REPRESENTATIVE_ROLE, PATIENT, audience=AUDIENCE
    )
    assert "not a patient portal" in verifier.verify(header(signed(pki, parent, signer="hospital"))).reason
    # By default no structure is a portal: the portal's own VIHF is refused too.
    default = VihfVerifier(verifier.trust, audience=AUDIENCE)
    assert "not a patient portal" in default.verify(header(signed(pki, claims, signer="patient-portal"))).reason


def test_a_patient_principal_is_of_its_portal(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    portal = pki.identity("patient-portal")
    claims = VihfClaims(PATIENT, "le patient", sv.PATIENT_ROLE, PATIENT, audience=AUDIENCE)
    principal = verifier.verify(header(signed(pki, claims, signer="patient-portal"))).principal
    assert principal is not None
    assert principal.structure_id == principal.vouched_by == portal.structure_id
    elsewhere = VihfClaims(
        PATIENT, "le patient", sv.PATIENT_ROLE, PATIENT, structure_id="1990000017", audience=AUDIENCE
    )
    assert (
        "not the signing patient portal"
        in verifier.verify(header(signed(pki, elsewhere, signer="patient-portal"))).reason
    )
    card = verifier.verify(header(signed(pki, claims_for(pki)))).principal
    assert card is not None and card.vouched_by == ""


def test_a_professional_vouched_for_by_an_establishment(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    hospital = pki.identity("hospital")
    principal = verifier.verify(header(signed(pki, claims_for(pki, "nurse"), signer="hospital"))).principal
    assert principal is not None and principal.vouched_by == hospital.structure_id
    cards_only = VihfVerifier(verifier.trust, audience=AUDIENCE, vouching=VouchingRules.parse("", "none"))
    refused = cards_only.verify(header(signed(pki, claims_for(pki, "nurse"), signer="hospital")))
    assert "may not vouch for a professional" in refused.reason and hospital.structure_id in refused.reason


PORTAL_HOLDER = Holder("establishment", "", "", "", "", "PORTAIL", "1990000025", "OU=1990000025", "00")
HOSPITAL_HOLDER = Holder("establishment", "", "", "", "", "CH", "1990000017", "OU=1990000017", "00")
CARD_HOLDER = Holder("professional", "810001234568", "MARTIN", "MARIE", "Médecin", "", "", "CN=810001234568", "00")
NURSE = "810003456781"


@pytest.mark.parametrize(
    "citizen, signer, rules, expected",
    [
        (sv.PATIENT_ROLE, PORTAL_HOLDER, VouchingRules(frozenset({"1990000025"})), ""),
        (
            sv.PATIENT_ROLE,
            HOSPITAL_HOLDER,
            VouchingRules(frozenset({"1990000025"})),
            "CH (1990000017), which is not a patient portal",
        ),
        (sv.PATIENT_ROLE, PORTAL_HOLDER, VouchingRules(), "not a patient portal"),
        (sv.REPRESENTATIVE_ROLE, HOSPITAL_HOLDER, VouchingRules(frozenset({"1990000025"})), "not a patient portal"),
        (sv.PATIENT_ROLE, CARD_HOLDER, VouchingRules(frozenset({"1990000025"})), "organisation certificate"),
    ],
)
def test_signer_problem_for_citizens(citizen: str, signer: Holder, rules: VouchingRules, expected: str) -> None:
    name_id = "2700599123456^^^&1.2.250.1.213.1.4.10&ISO" if citizen == sv.REPRESENTATIVE_ROLE else PATIENT
    problem = signer_problem(name_id, citizen, PATIENT, "", signer, rules)
    assert (expected in problem) if expected else problem == "", problem


@pytest.mark.parametrize(
    "structure, signer, vouching, expected",
    [
        ("1990000017", HOSPITAL_HOLDER, "any", ""),
        ("1990000017", HOSPITAL_HOLDER, "1990000017, 1990000033", ""),
        ("1990000017", HOSPITAL_HOLDER, "1990000033", "CH (1990000017) may not vouch for a professional"),
        ("1990000017", HOSPITAL_HOLDER, "none", "may not vouch for a professional"),
        ("1990000099", HOSPITAL_HOLDER, "any", "not the signing establishment"),
        (
            "1990000099",
            CARD_HOLDER,
            "none",
            "signs only for its holder",
        ),  # a card is not vouching: the rule is not asked
    ],
)
def test_signer_problem_for_professionals(structure: str, signer: Holder, vouching: str, expected: str) -> None:
    problem = signer_problem(NURSE, "", PATIENT, structure, signer, VouchingRules.parse("", vouching))
    assert (expected in problem) if expected else problem == "", problem
    assert (
        signer_problem(CARD_HOLDER.national_id, "", PATIENT, structure, CARD_HOLDER, VouchingRules.parse("", vouching))
        == ""
    )


def test_vouching_rules_from_settings() -> None:
    assert VouchingRules.parse("", "any") == VouchingRules(frozenset(), None)
    assert VouchingRules.parse(" 1990000025 ,1990000041,", "none") == VouchingRules(
        frozenset({"1990000025", "1990000041"}), frozenset()
    )
    assert VouchingRules.parse("", "1990000017").establishments == frozenset({"1990000017"})
    for empty in ("", " , "):
        with pytest.raises(ValueError, match="DMP_XDS_ESTABLISHMENT_VOUCHING"):
            VouchingRules.parse("", empty)


def test_cx_helpers() -> None:
    assert split_cx("123^^^&1.2.3&ISO^NH") == ("123", "1.2.3")
    assert same_patient("123^^^&1.2.3&ISO^NH", "123^^^&1.2.3&ISO")
    assert not same_patient("123^^^&1.2.3&ISO", "123^^^&1.2.4&ISO")
    assert not same_patient("", "")


def test_pki_vihf_command_for_a_card_and_for_the_patient(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    from click.testing import CliRunner

    from dmp_xds.cli.pki import pki as pki_command

    def principal(*args: str) -> Principal:
        outcome = CliRunner().invoke(pki_command, ["vihf", str(pki.directory), *args, PATIENT, "--audience", AUDIENCE])
        assert outcome.exit_code == 0, outcome.output
        result = verifier.verify(etree.fromstring(outcome.output.strip()))
        assert result.principal is not None, result.reason
        return result.principal

    doctor = principal("doctor")
    assert (doctor.user_id, doctor.patient_id, doctor.vouched_by) == (pki.identity("doctor").national_id, PATIENT, "")
    patient = principal("patient")
    assert patient.is_patient and patient.vouched_by == pki.identity("patient-portal").structure_id
    refused = CliRunner().invoke(pki_command, ["vihf", str(pki.directory), "surgeon", PATIENT])
    assert refused.exit_code == 1 and "no identity 'surgeon'" in refused.output


def test_profession_specialty_and_card_type_of_a_principal(pki: GeneratedPki, verifier: VihfVerifier) -> None:
    """What the rights matrix reads: the profession (first role), the specialty (second role,
    ANS TRE_R38) and the type of the card that signed."""
    occupational = claims_for(pki, "occupational", specialty="SM25")
    result = verifier.verify(header(signed(pki, occupational, signer="occupational")))
    p = result.principal
    assert p is not None, result.reason
    assert (p.profession_code, p.specialty, p.card_type) == ("10", "SM25", sv.CARD_CPS)
    assert p.is_doctor and p.is_occupational_doctor
    # A secretary's software may state a doctor's role: the card says CPE, so not a doctor.
    secretary = claims_for(pki, "secretary", role="10")
    result = verifier.verify(header(signed(pki, secretary, signer="secretary")))
    p = result.principal
    assert p is not None, result.reason
    assert p.card_type == sv.CARD_CPE and p.is_cpe and not p.is_doctor
    assert p.user_id == pki.identity("secretary").national_id
    nurse = verifier.verify(header(signed(pki, claims_for(pki, "nurse"), signer="hospital"))).principal
    assert nurse is not None and (nurse.profession_code, nurse.card_type, nurse.is_doctor) == ("60", "", False)
