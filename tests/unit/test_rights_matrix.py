"""The DMP's functional rights matrix (PDT-INF-526 v1.8) cell by cell, and its footnotes.

The table below is an independent copy, typed again from the matrix (dmpi.md section 6), not
read from the module: a wrong cell in either fails a test. Every row x every column is walked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from dmp_xds.dmp import rights_matrix as rm
from dmp_xds.dmp.policy import (
    Action,
    Authorization,
    DocumentFacts,
    RecordState,
    document_action,
    document_readable,
    document_visible,
    matrix_access,
    record_access,
)
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import Holder
from dmp_xds.security.vihf import Principal

COLUMNS = "An Ar Ab Bn Br Bb C Dn Db E Fn Fr".split()
EXPECTED = {
    "READ_ADMIN_DATA": "Y Y Y Y Y Y Y Y Y Y Y Y",
    "DECLARE_AUTHORIZED": "Y N N Y N N N Y N Y(1) N N",
    "REMOVE_OWN_AUTHORIZATION": "Y N N Y N N N Y N N N N",
    "REMOVE_ONESELF_AS_MT": "N N N N N N N Y N N N N",
    "LIST_AUTHORIZED_DMPS": "Y Y Y Y Y Y Y Y Y Y(2) Y(3) N",
    "SEARCH_WITHOUT_INS": "N Y N N Y N N N N N N Y",
    "WEB_ACCESS": "Y Y Y Y Y Y Y Y Y Y N N",
    "LIST_AUTHORIZATIONS": "Y N N Y N N Y Y N N N N",
    "PUBLISH": "Y Y Y Y Y Y Y Y Y N Y(4) Y(4)",
    "PUBLISH_BY_CPE": "N N N N N N N N N Y(4) N N",
    "SEARCH_METADATA": "Y Y Y Y Y Y Y Y Y N N N",
    "FIND_REFERENCE": "Y Y Y Y Y Y Y Y Y Y(5) Y(5) Y(5)",
    "READ_DOCUMENT": "Y Y Y Y Y Y N Y Y N N N",
    "READ_MASKED": "Y(6) Y(7) Y(7) Y(6) Y(7) Y(7) N Y Y(7) N N N",
    "MASK": "Y N N Y N N Y Y N N N N",
    "UNMASK": "Y(8) N N Y(8) N N Y(8) Y N N N N",
    "ARCHIVE": "Y(8) N N Y(8) Y Y Y(8) Y Y N N N",
    "DELETE": "Y(8) Y(8) Y(8) Y(8) Y(8) Y(8) Y(8) Y(8) Y(8) Y(9) Y(9) Y(9)",
}
# The facts under which each footnote holds (the cell is allowed), and one under which it does not.
HOLDS = {
    1: rm.Facts(),
    2: rm.Facts(same_structure=True),
    3: rm.Facts(new_authorization=True),
    4: rm.Facts(),
    5: rm.Facts(),
    6: rm.Facts(own_document=True),
    7: rm.Facts(patient_allowed_mode=True),
    8: rm.Facts(own_document=True),
    9: rm.Facts(structure_document=True),
}
FAILS = {
    2: rm.Facts(same_structure=False),
    3: rm.Facts(new_authorization=False),
    6: rm.Facts(own_document=False),
    7: rm.Facts(patient_allowed_mode=False),
    8: rm.Facts(own_document=False),
    9: rm.Facts(structure_document=False),
}
PROFILES = {"A": rm.Profile.PS_NON_MEDECIN, "B": rm.Profile.MEDECIN, "C": rm.Profile.MEDECIN_DU_TRAVAIL}
PROFILES |= {"D": rm.Profile.MEDECIN_TRAITANT, "E": rm.Profile.CPE, "F": rm.Profile.ETABLISSEMENT}
MODES = {"n": rm.Mode.NORMAL, "r": rm.Mode.REGULATION, "b": rm.Mode.EMERGENCY}


def column_of(name: str) -> tuple[rm.Profile, rm.Mode]:
    return PROFILES[name[0]], MODES[name[1]] if len(name) > 1 else rm.Mode.NORMAL


CELLS = [
    (row, name, value) for row, line in EXPECTED.items() for name, value in zip(COLUMNS, line.split(), strict=True)
]


def test_the_table_has_exactly_the_matrix_rows_and_columns() -> None:
    assert {row.name for row in rm.Row} == set(EXPECTED)
    assert [f"{p.value}{m.value}" for p, m in rm.COLUMNS] == [c if len(c) > 1 else f"{c}n" for c in COLUMNS]


@pytest.mark.parametrize("row, name, value", CELLS, ids=[f"{r}-{n}" for r, n, _ in CELLS])
def test_every_cell(row: str, name: str, value: str) -> None:
    profile, mode = column_of(name)
    matrix_row = rm.Row[row]
    assert rm.cell(matrix_row, profile, mode) == value
    note = rm.footnote_of(value)
    facts = HOLDS.get(note, rm.Facts()) if note else rm.Facts()
    decision = rm.decide(profile, mode, matrix_row, facts)
    assert decision.allowed is (value != "N"), decision.reason
    assert decision.cell == value
    # The reason names the cell: its row, profile and mode, and the cell's value.
    assert f"rights matrix: {matrix_row.value}, profile {profile.value}" in decision.reason
    assert f"mode {mode.value}: {value}" in decision.reason
    if note in FAILS:
        refused = rm.decide(profile, mode, matrix_row, FAILS[note])
        assert not refused.allowed and f"{value} refused" in refused.reason


def test_the_reason_reads_as_the_cell() -> None:
    decision = rm.decide(
        rm.Profile.MEDECIN, rm.Mode.EMERGENCY, rm.Row.READ_MASKED, rm.Facts(patient_allowed_mode=False)
    )
    assert decision.reason == (
        "rights matrix: TD3.2 masked document, profile B (médecin non-MT), mode b: "
        "Y(7) refused, the patient refused this access mode"
    )


@pytest.mark.parametrize(
    "profile, mode",
    [
        (rm.Profile.MEDECIN_DU_TRAVAIL, rm.Mode.EMERGENCY),
        (rm.Profile.MEDECIN_DU_TRAVAIL, rm.Mode.REGULATION),
        (rm.Profile.CPE, rm.Mode.EMERGENCY),
        (rm.Profile.ETABLISSEMENT, rm.Mode.EMERGENCY),
        (rm.Profile.MEDECIN_TRAITANT, rm.Mode.REGULATION),
    ],
)
def test_a_mode_without_a_column_is_refused(profile: rm.Profile, mode: rm.Mode) -> None:
    for row in rm.Row:
        decision = rm.decide(profile, mode, row)
        assert not decision.allowed and "no access in this mode" in decision.reason


@pytest.mark.parametrize("row", [rm.Row.ARCHIVE, rm.Row.DELETE])
def test_on_a_patient_authored_document_only_the_attending_doctor(row: rm.Row) -> None:
    """(*): even their author's own-document cell does not let another professional."""
    patient_wrote = rm.Facts(own_document=True, structure_document=True, patient_authored=True)
    for profile, mode in rm.COLUMNS:
        decision = rm.decide(profile, mode, row, patient_wrote)
        assert decision.allowed is (profile is rm.Profile.MEDECIN_TRAITANT), (profile, mode, decision.reason)
        assert "(*)" in decision.reason


def test_footnote_10_mon_espace_sante() -> None:
    assert rm.outside_mes(attached_to_mes=False) and not rm.outside_mes(attached_to_mes=True)


# --- profile_of ----------------------------------------------------------------------------

CARD = Holder("professional", "810001234565", "X", "Y", "Médecin", "", "", "CN=x", "00", sv.CARD_CPS)
CPE_CARD = dataclasses.replace(CARD, national_id="3990000017/S1", card_type=sv.CARD_CPE)
ESTABLISHMENT = Holder("establishment", "", "", "", "", "CH", "1990000017", "OU=1990000017", "00")
PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
ME, OTHER = "810001234565", "810009999994"


def principal(
    roles: tuple[str, ...] = ("10",),
    signer: Holder = CARD,
    mode: str = sv.ACCESS_NORMAL,
    authentication: str = sv.AUTHENTICATION_DIRECT,
    user: str = ME,
) -> Principal:
    return Principal(
        "professional",
        user,
        "X",
        roles,
        "1990000017",
        "SA07",
        mode,
        "urgence" if mode == sv.ACCESS_EMERGENCY else "",
        PATIENT,
        "lps 1",
        authentication,
        "_id",
        signer,
        card_type=signer.card_type,
    )


@pytest.mark.parametrize(
    "who, attending, profile",
    [
        (principal(("60",)), False, rm.Profile.PS_NON_MEDECIN),
        (principal(("10", "SM26")), False, rm.Profile.MEDECIN),
        (principal(("10", "SM25")), False, rm.Profile.MEDECIN_DU_TRAVAIL),
        (principal(("10", "SM26")), True, rm.Profile.MEDECIN_TRAITANT),
        (principal(("10",), mode=sv.ACCESS_REGULATION), True, rm.Profile.MEDECIN),  # D has no r column
        (principal(("10",), mode=sv.ACCESS_EMERGENCY), True, rm.Profile.MEDECIN_TRAITANT),
        (principal(("CPE",), signer=CPE_CARD, user="3990000017/S1"), False, rm.Profile.CPE),
        (principal(("10",), signer=ESTABLISHMENT), True, rm.Profile.ETABLISSEMENT),  # vouched for
        (principal(("10",), authentication=sv.AUTHENTICATION_INDIRECT), False, rm.Profile.ETABLISSEMENT),
        (principal(("60",), authentication=sv.AUTHENTICATION_INDIRECT_REINFORCED), False, rm.Profile.ETABLISSEMENT),
    ],
)
def test_profile_of(who: Principal, attending: bool, profile: rm.Profile) -> None:
    assert rm.profile_of(who, attending) is profile


# --- the policy consults the matrix ------------------------------------------------------------

YEAR = NOW + dt.timedelta(days=365)


def record(*grants: Authorization, emergency: bool = True, regulation: bool = True) -> RecordState:
    return RecordState(PATIENT, "open", emergency, regulation, grants)


GRANTED = record(Authorization("professional", ME, YEAR), Authorization("establishment", "1990000017", YEAR))
ATTENDING = record(Authorization("attending", ME, YEAR))
N = ("2.16.840.1.113883.5.25", "N")
MINE = DocumentFacts.of("1.1", [N], [f"{ME}^X^Y"], ["CH^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1990000017"])
THEIRS = DocumentFacts.of("1.2", [N], [f"{OTHER}^Z^W"], ["CAB^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1990000099"])
MASKED_THEIRS = dataclasses.replace(THEIRS, confidentiality=frozenset({N, sv.MASKED_FROM_PROFESSIONALS}))
PATIENTS = DocumentFacts.of("1.3", [N], ["2840599123456^PATIENT^P"])


def test_an_establishment_searches_references_publishes_but_reads_nothing() -> None:
    hospital = principal(signer=ESTABLISHMENT)
    assert record_access(hospital, GRANTED, Action.SEARCH, NOW).allowed  # to find references (5)
    assert record_access(hospital, GRANTED, Action.SUBMIT, NOW).allowed  # (4)
    refused = record_access(hospital, GRANTED, Action.RETRIEVE, NOW)
    assert not refused.allowed
    assert "TD3.2 document not masked / TD3.2 masked document, profile F" in refused.reason
    assert "N / N" in refused.reason
    assert document_action(hospital, GRANTED, MINE, Action.DELETE, NOW).allowed  # (9) its structure's
    refused = document_action(hospital, GRANTED, THEIRS, Action.DELETE, NOW)
    assert not refused.allowed and "TD3.3c delete, profile F" in refused.reason and "Y(9) refused" in refused.reason
    assert not document_action(hospital, GRANTED, MINE, Action.MASK, NOW).allowed


def test_an_occupational_doctor_searches_but_reads_nothing() -> None:
    occupational = principal(("10", "SM25"))
    assert record_access(occupational, GRANTED, Action.SEARCH, NOW).allowed
    refused = record_access(occupational, GRANTED, Action.RETRIEVE, NOW)
    assert not refused.allowed and "profile C (médecin du travail)" in refused.reason
    assert not document_readable(occupational, GRANTED, THEIRS, NOW).allowed


def test_a_cpe_card_publishes_by_td22_only() -> None:
    secretary = principal(("CPE",), signer=CPE_CARD, user="3990000017/S1")
    decision = record_access(secretary, GRANTED, Action.SUBMIT, NOW)
    assert decision.allowed and "TD2.2 publish by CPE, profile E" in decision.reason
    assert not record_access(secretary, GRANTED, Action.RETRIEVE, NOW).allowed


def test_masked_documents_by_column() -> None:
    doctor = principal(("10",))
    hidden = document_visible(doctor, GRANTED, MASKED_THEIRS, NOW)
    assert not hidden.allowed and "masked from professionals" in hidden.reason and "Y(6) refused" in hidden.reason
    # Break-glass: Y(7), as the patient allows it or not.
    emergency = principal(("10",), mode=sv.ACCESS_EMERGENCY)
    assert document_readable(emergency, record(emergency=True), MASKED_THEIRS, NOW).allowed
    assert not document_readable(
        emergency, GRANTED.__class__(PATIENT, "open", False, True, GRANTED.authorizations), MASKED_THEIRS, NOW
    ).allowed
    # The attending doctor reads them all (Dn: Y).
    assert document_readable(doctor, ATTENDING, MASKED_THEIRS, NOW).allowed


def test_archiving_a_patient_authored_document() -> None:
    doctor = principal(("10",))
    assert document_action(doctor, ATTENDING, PATIENTS, Action.CHANGE_STATUS, NOW).allowed
    refused = document_action(doctor, GRANTED, PATIENTS, Action.CHANGE_STATUS, NOW)
    assert not refused.allowed and "(*)" in refused.reason


def test_the_patient_is_not_in_the_matrix() -> None:
    """Patients keep our rules: the matrix names no patient profile."""
    patient = dataclasses.replace(principal(("PATIENT",)), kind="patient", user_id=PATIENT)
    assert record_access(patient, GRANTED, Action.RETRIEVE, NOW).allowed
    assert document_action(patient, GRANTED, THEIRS, Action.DELETE, NOW).allowed


def test_matrix_access_for_the_other_dmp_services() -> None:
    """TD0.3 / 0.4 / 0.5 / 1.6 ask by their row: a doctor declares themself authorized in normal
    mode, not in break-glass; only the attending doctor removes themself as such; a search
    without INS is for regulation mode; the establishment lists new authorizations only (3)."""
    doctor = principal(("10",))
    assert matrix_access(doctor, rm.Row.DECLARE_AUTHORIZED, GRANTED, NOW).allowed
    urgent = principal(("10",), mode=sv.ACCESS_EMERGENCY)
    assert not matrix_access(urgent, rm.Row.DECLARE_AUTHORIZED, GRANTED, NOW).allowed
    assert matrix_access(doctor, rm.Row.REMOVE_ONESELF_AS_MT, ATTENDING, NOW).allowed
    assert not matrix_access(doctor, rm.Row.REMOVE_ONESELF_AS_MT, GRANTED, NOW).allowed
    assert not matrix_access(doctor, rm.Row.SEARCH_WITHOUT_INS, None, NOW).allowed
    regulation = principal(("10",), mode=sv.ACCESS_REGULATION)
    assert matrix_access(regulation, rm.Row.SEARCH_WITHOUT_INS, None, NOW).allowed
    hospital = principal(signer=ESTABLISHMENT)
    old = rm.Facts(new_authorization=False)
    assert matrix_access(hospital, rm.Row.LIST_AUTHORIZED_DMPS, None, NOW).allowed
    refused = matrix_access(hospital, rm.Row.LIST_AUTHORIZED_DMPS, None, NOW, old)
    assert not refused.allowed and "TD0.4 list authorized DMPs, profile F" in refused.reason
