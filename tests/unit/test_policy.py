"""The authorization matrix, as pure decisions: who × what × record state × document."""

from __future__ import annotations

import datetime as dt

import pytest

from dmp_xds.dmp.policy import (
    Action,
    Authorization,
    DocumentFacts,
    RecordState,
    administration_access,
    document_action,
    document_visible,
    record_access,
)
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import Holder
from dmp_xds.security.vihf import Principal

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
AUTHORIZED, ATTENDING, STRANGER, HOSPITAL_NURSE = "810001234565", "810002345675", "810004567896", "810003456786"
HOSPITAL = "1990000017"
HOLDER = Holder("professional", "", "", "", "", "", "", "CN=x", "00")


def pro(user_id: str, mode: str = sv.ACCESS_NORMAL, structure: str = "1990000099", patient: str = PATIENT) -> Principal:
    return Principal(
        "professional",
        user_id,
        "Dr X",
        ("10",),
        structure,
        "SA07",
        mode,
        "patient inconscient" if mode == sv.ACCESS_EMERGENCY else "",
        patient,
        "lps 1",
        "",
        "_id",
        HOLDER,
    )


def the_patient(patient: str = PATIENT) -> Principal:
    return Principal(
        "patient",
        patient,
        "patient",
        (sv.PATIENT_ROLE,),
        "",
        "",
        sv.ACCESS_NORMAL,
        "",
        patient,
        "portal 1",
        "",
        "_id",
        HOLDER,
    )


PARENT = "2700599123456^^^&1.2.250.1.213.1.4.10&ISO"


def representative(user_id: str = PARENT) -> Principal:
    return Principal(
        "representative",
        user_id,
        "parent",
        (sv.REPRESENTATIVE_ROLE,),
        "",
        "",
        sv.ACCESS_NORMAL,
        "",
        PATIENT,
        "portal 1",
        "",
        "_id",
        HOLDER,
    )


def record(status: str = "open", emergency: bool = True, regulation: bool = False) -> RecordState:
    year = NOW + dt.timedelta(days=365)
    return RecordState(
        PATIENT,
        status,
        emergency,
        regulation,
        representatives=(PARENT,),
        authorizations=(
            Authorization("professional", AUTHORIZED, year),
            Authorization("attending", ATTENDING, year),
            Authorization("establishment", HOSPITAL, year, reference="stay 42"),
            Authorization("professional", STRANGER, NOW - dt.timedelta(days=1)),  # expired
        ),
    )


NORMAL = DocumentFacts.of("1.1", [("2.16.840.1.113883.5.25", "N")], [f"{AUTHORIZED}^MARTIN^MARIE"])
MASKED = DocumentFacts.of("1.2", [sv.MASKED_FROM_PROFESSIONALS], [f"{AUTHORIZED}^MARTIN^MARIE"])
MASKED_BY_OTHER = DocumentFacts.of("1.3", [sv.MASKED_FROM_PROFESSIONALS], ["899999999999^X^Y"])
INVISIBLE = DocumentFacts.of("1.4", [sv.INVISIBLE_TO_PATIENT], [f"{AUTHORIZED}^MARTIN^MARIE"])

# principal, record state -> expected for (search, retrieve, submit)
MATRIX = [
    ("patient", the_patient(), record(), (True, True, True)),
    ("authorized professional", pro(AUTHORIZED), record(), (True, True, True)),
    ("attending doctor", pro(ATTENDING), record(), (True, True, True)),
    ("care team of the stay", pro(HOSPITAL_NURSE, structure=HOSPITAL), record(), (True, True, True)),
    ("unauthorized professional", pro(STRANGER), record(), (False, False, False)),
    # The rights matrix gives the break-glass and regulation columns publishing too (TD2.1 Bb, Br).
    ("emergency, allowed", pro(STRANGER, sv.ACCESS_EMERGENCY), record(emergency=True), (True, True, True)),
    ("emergency, refused", pro(STRANGER, sv.ACCESS_EMERGENCY), record(emergency=False), (False, False, False)),
    ("centre 15, refused", pro(STRANGER, sv.ACCESS_REGULATION), record(regulation=False), (False, False, False)),
    ("centre 15, allowed", pro(STRANGER, sv.ACCESS_REGULATION), record(regulation=True), (True, True, True)),
    ("closed DMP, patient", the_patient(), record("closed"), (False, False, False)),
    ("closed DMP, authorized", pro(AUTHORIZED), record("closed"), (False, False, False)),
    (
        "VIHF about another patient",
        pro(AUTHORIZED, patient="1111111111111^^^&1.2.250.1.213.1.4.10&ISO"),
        record(),
        (False, False, False),
    ),
]


@pytest.mark.parametrize("label, principal, state, expected", MATRIX, ids=[m[0] for m in MATRIX])
def test_record_access_matrix(label: str, principal: Principal, state: RecordState, expected: tuple[bool, ...]) -> None:
    for action, allowed in zip((Action.SEARCH, Action.RETRIEVE, Action.SUBMIT), expected, strict=True):
        decision = record_access(principal, state, action, NOW)
        assert decision.allowed is allowed, (label, action, decision.reason)
        assert decision.reason


def test_emergency_is_flagged_and_reasoned() -> None:
    decision = record_access(pro(STRANGER, sv.ACCESS_EMERGENCY), record(), Action.SEARCH, NOW)
    assert decision.emergency and "patient inconscient" in decision.reason
    assert not record_access(pro(AUTHORIZED, sv.ACCESS_EMERGENCY), record(), Action.SEARCH, NOW).emergency
    refused = record_access(pro(STRANGER, sv.ACCESS_EMERGENCY), record(emergency=False), Action.SEARCH, NOW)
    assert "refused emergency access" in refused.reason


def test_expired_and_revoked_grants_do_not_count() -> None:
    assert "not authorized" in record_access(pro(STRANGER), record(), Action.SEARCH, NOW).reason
    revoked = RecordState(
        PATIENT,
        "open",
        True,
        False,
        (
            Authorization(
                "professional", AUTHORIZED, NOW + dt.timedelta(days=10), revoked_at=NOW - dt.timedelta(hours=1)
            ),
        ),
    )
    assert not record_access(pro(AUTHORIZED), revoked, Action.SEARCH, NOW).allowed


def test_no_record() -> None:
    assert record_access(pro(AUTHORIZED), None, Action.SEARCH, NOW).reason == "this patient has no DMP"
    assert record_access(pro(AUTHORIZED), None, Action.CREATE, NOW).allowed
    assert not record_access(pro(AUTHORIZED), record(), Action.CREATE, NOW).allowed


def test_closed_record_can_be_reopened_and_its_status_read() -> None:
    closed = record("closed")
    assert record_access(the_patient(), closed, Action.REOPEN, NOW).allowed
    assert record_access(the_patient(), closed, Action.READ_STATUS, NOW).allowed
    assert record_access(pro(AUTHORIZED), closed, Action.REOPEN, NOW).allowed
    assert not record_access(pro(STRANGER), closed, Action.REOPEN, NOW).allowed


@pytest.mark.parametrize(
    "who, document, visible",
    [
        ("authorized", NORMAL, True),
        ("authorized", MASKED, True),  # its author
        ("authorized", MASKED_BY_OTHER, False),
        ("attending", MASKED_BY_OTHER, True),
        ("emergency", MASKED_BY_OTHER, True),  # rights matrix TD3.2 masked, Bb: Y(7), the patient allows it
        ("nurse", MASKED_BY_OTHER, False),
        ("patient", MASKED_BY_OTHER, True),
        ("patient", INVISIBLE, False),
        ("authorized", INVISIBLE, True),
    ],
)
def test_document_visibility(who: str, document: DocumentFacts, visible: bool) -> None:
    principal = {
        "authorized": pro(AUTHORIZED),
        "attending": pro(ATTENDING),
        "patient": the_patient(),
        "emergency": pro(STRANGER, sv.ACCESS_EMERGENCY),
        "nurse": pro(HOSPITAL_NURSE, structure=HOSPITAL),
    }[who]
    decision = document_visible(principal, record(), document, NOW)
    assert decision.allowed is visible, decision.reason


@pytest.mark.parametrize(
    "who, action, document, allowed",
    [
        ("patient", Action.MASK, NORMAL, True),
        ("patient", Action.DELETE, NORMAL, True),
        ("patient", Action.DELETE, INVISIBLE, False),  # cannot act on what they cannot see
        ("author", Action.MASK, NORMAL, True),
        ("author", Action.DELETE, NORMAL, True),
        ("attending", Action.MASK, NORMAL, True),
        ("attending", Action.DELETE, NORMAL, False),
        ("nurse", Action.MASK, NORMAL, True),  # rights matrix TD3.3a, Bn: Y (any document it sees)
        ("stranger", Action.MASK, NORMAL, False),
        ("emergency", Action.DELETE, NORMAL, False),
        ("patient", Action.CHANGE_STATUS, NORMAL, True),
        ("author", Action.CHANGE_STATUS, NORMAL, True),
        ("attending", Action.CHANGE_STATUS, NORMAL, True),  # rights matrix TD3.3d, Dn: Y
        ("author", Action.UPDATE, NORMAL, True),
        ("attending", Action.UPDATE, NORMAL, False),
        ("attending", Action.UNMASK, MASKED_BY_OTHER, True),
        ("author", Action.UNMASK, MASKED, True),
        ("nurse", Action.UNMASK, MASKED_BY_OTHER, False),  # not even visible to them
    ],
)
def test_mask_and_delete(who: str, action: Action, document: DocumentFacts, allowed: bool) -> None:
    principal = {
        "patient": the_patient(),
        "author": pro(AUTHORIZED),
        "attending": pro(ATTENDING),
        "nurse": pro(HOSPITAL_NURSE, structure=HOSPITAL),
        "stranger": pro(STRANGER),
        "emergency": pro(STRANGER, sv.ACCESS_EMERGENCY),
    }[who]
    decision = document_action(principal, record(), document, action, NOW)
    assert decision.allowed is allowed, decision.reason


def test_mask_on_closed_record_refused() -> None:
    assert not document_action(the_patient(), record("closed"), NORMAL, Action.MASK, NOW).allowed


# --- The record's administration (the DMP's `patients` service: TD1.1-1.4) ------------------

OTHER_PATIENT = "1111111111111^^^&1.2.250.1.213.1.4.10&ISO"


@pytest.mark.parametrize(
    "label, principal, action, state, allowed",
    [
        ("patient creates", the_patient(), Action.CREATE, None, True),
        ("collector creates", pro(STRANGER), Action.CREATE, None, True),
        ("created twice", the_patient(), Action.CREATE, record(), False),
        ("patient closes", the_patient(), Action.CLOSE, record(), True),
        ("authorized closes on the patient's behalf", pro(AUTHORIZED), Action.CLOSE, record(), True),
        ("stranger closes", pro(STRANGER), Action.CLOSE, record(), False),
        ("patient changes the consent of a closed DMP", the_patient(), Action.UPDATE_CONSENT, record("closed"), False),
        ("patient reopens a closed DMP", the_patient(), Action.REOPEN, record("closed"), True),
        ("patient reads the status of a closed DMP", the_patient(), Action.READ_STATUS, record("closed"), True),
        ("authorized reads the status of a closed DMP", pro(AUTHORIZED), Action.READ_STATUS, record("closed"), True),
        ("stranger reads the status", pro(STRANGER), Action.READ_STATUS, record(), False),
        (
            "emergency does not open administration",
            pro(STRANGER, sv.ACCESS_EMERGENCY),
            Action.READ_STATUS,
            record(),
            False,
        ),
    ],
)
def test_administration_access(
    label: str, principal: Principal, action: Action, state: RecordState | None, allowed: bool
) -> None:
    decision = administration_access(principal, PATIENT, state, action, NOW)
    assert decision.allowed is allowed, (label, decision.reason)
    assert decision.reason and not decision.emergency


@pytest.mark.parametrize("action", [Action.CREATE, Action.CLOSE, Action.READ_STATUS])
def test_administration_of_another_patients_record(action: Action) -> None:
    # Refused before the record is looked at: the answer is the same whether it exists or not.
    for state in (None, record()):
        decision = administration_access(the_patient(OTHER_PATIENT), PATIENT, state, action, NOW)
        assert not decision.allowed and "another patient" in decision.reason


def test_document_action_is_for_document_actions_only() -> None:
    with pytest.raises(ValueError):
        document_action(the_patient(), record(), NORMAL, Action.SEARCH, NOW)


HIDDEN_FROM_PARENTS = DocumentFacts.of("1.5", [sv.INVISIBLE_TO_REPRESENTATIVES], ["899999999999^X^Y"])


def test_legal_representative() -> None:
    parent, stranger = representative(), representative("1650599123456^^^&1.2.250.1.213.1.4.10&ISO")
    for action in (Action.SEARCH, Action.SUBMIT, Action.READ_STATUS, Action.CLOSE):
        assert record_access(parent, record(), action, NOW).allowed
        decision = record_access(stranger, record(), action, NOW)
        assert not decision.allowed and "not a declared legal representative" in decision.reason
    assert not record_access(parent, record("closed"), Action.SEARCH, NOW).allowed
    hidden = document_visible(parent, record(), HIDDEN_FROM_PARENTS, NOW)
    assert not hidden.allowed and "legal representatives" in hidden.reason
    assert not document_visible(parent, record(), INVISIBLE, NOW).allowed
    assert document_visible(the_patient(), record(), HIDDEN_FROM_PARENTS, NOW).allowed
    assert document_visible(pro(AUTHORIZED), record(), HIDDEN_FROM_PARENTS, NOW).allowed
    assert document_action(parent, record(), MASKED_BY_OTHER, Action.DELETE, NOW).allowed
    assert not document_action(parent, record(), HIDDEN_FROM_PARENTS, Action.DELETE, NOW).allowed


def test_a_representative_is_recognized_whatever_the_form_of_their_id() -> None:
    # The same INS with an identifier type component (^NH) is the same person.
    assert record_access(representative(PARENT + "^NH"), record(), Action.SEARCH, NOW).allowed
