"""Who a web session acts as: a card's professional (as an unsigned direct-mode VIHF over that
card would say), a patient or a legal representative signed in with a password."""

from __future__ import annotations

import datetime as dt

from dmp_xds.dmp import rights_matrix as rm
from dmp_xds.dmp.policy import Action, Authorization, RecordState, record_access
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import Holder
from dmp_xds.services.gate import card_principal, citizen_principal

CARD = Holder(
    "professional",
    "810001234567",
    "MARTIN",
    "Marie",
    "Médecin",
    "CABINET MARTIN",
    "1990000099",
    "CN=810001234567",
    "ab" * 32,
    card_type=sv.CARD_CPS,
    profession_code=sv.PROFESSION_DOCTOR,
    specialties=("SM26", "SM54"),
)
WEEK = dt.timedelta(days=7)
INS = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"


def test_a_card_makes_a_direct_mode_doctor() -> None:
    principal = card_principal(CARD, INS)
    assert principal.is_professional and principal.is_direct and principal.is_doctor
    assert (principal.user_id, principal.name, principal.structure_id) == ("810001234567", "Marie MARTIN", "1990000099")
    assert (principal.profession, principal.specialty, principal.roles) == ("10", "SM26", ("10", "SM26"))
    assert principal.access_mode == sv.ACCESS_NORMAL and not principal.signed and principal.vouched_by == ""
    assert principal.patient_id == INS
    assert rm.mode_of(principal) == rm.mode_of(card_principal(CARD))


def test_a_staff_card_acts_for_its_own_structure() -> None:
    staff = Holder(
        "professional", "3" + "1990000017/SEC01", "", "", "", "CH", "1990000017", "", "", card_type=sv.CARD_CPE
    )
    principal = card_principal(staff)
    assert principal.is_cpe and not principal.is_doctor


def test_a_patient_and_a_representative_on_the_web() -> None:
    patient = citizen_principal("patient", INS, INS, "Jeanne DUPONT")
    assert patient.is_patient and patient.roles == (sv.PATIENT_ROLE,) and patient.patient_id == INS
    assert patient.vouched_by == ""  # no portal's certificate: this server's own sign-in
    parent = citizen_principal("representative", "parent-42", INS, "Paul DUPONT")
    assert parent.is_representative and parent.user_id == "parent-42" and parent.patient_id == INS
    assert parent.roles == (sv.REPRESENTATIVE_ROLE,)


def test_the_policy_judges_a_card_principal_as_on_the_soap_side() -> None:
    now = dt.datetime.now(dt.UTC)
    principal = card_principal(CARD, INS)
    granted = RecordState(INS, "open", True, True, (Authorization("professional", CARD.national_id, now + WEEK),))
    assert record_access(principal, granted, Action.SEARCH, now).allowed
    blocked = RecordState(INS, "open", True, True, (Authorization("blocked", CARD.national_id, now + WEEK),))
    assert not record_access(principal, blocked, Action.SEARCH, now).allowed
