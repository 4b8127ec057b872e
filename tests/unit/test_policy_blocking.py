"""Blocked professionals and the DMP's CXF operations, as pure policy decisions: a block refuses
every access (emergency included) and TD0.3 re-authorization; who may list. (Who blocks is the
patient, through the operator's `dmp-xds dmp block` until their web space does it.)"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from test_policy import NOW, PATIENT, pro, the_patient

from dmp_xds.dmp.policy import (
    BLOCK_UNTIL,
    BLOCKED_REASON,
    CLOSED,
    KIND_ATTENDING,
    KIND_BLOCKED,
    KIND_PROFESSIONAL,
    Action,
    Authorization,
    RecordState,
    list_authorizations,
    list_patients,
    patient_web_access,
    record_access,
    self_authorization,
)
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import Holder

BLOCKED, ATTENDING, OTHER = "810001234565", "810002345675", "810004567896"
YEAR = NOW + dt.timedelta(days=365)


def record(*grants: Authorization, status: str = "open") -> RecordState:
    return RecordState(PATIENT, status, True, True, grants)


def blocked_record() -> RecordState:
    return record(
        Authorization(KIND_BLOCKED, BLOCKED, BLOCK_UNTIL),
        Authorization(KIND_ATTENDING, ATTENDING, YEAR),
        Authorization(KIND_PROFESSIONAL, OTHER, YEAR),
    )


def test_a_blocked_professional_is_refused_every_access_even_in_emergency() -> None:
    state = blocked_record()
    for action in (Action.SEARCH, Action.RETRIEVE, Action.SUBMIT, Action.READ_STATUS):
        decision = record_access(pro(BLOCKED), state, action, NOW)
        assert not decision.allowed and decision.reason == BLOCKED_REASON
    assert not record_access(pro(BLOCKED, sv.ACCESS_EMERGENCY), state, Action.RETRIEVE, NOW).allowed
    # Others are not concerned; a lifted block lets the authorized in again.
    assert record_access(pro(OTHER), state, Action.RETRIEVE, NOW).allowed
    lifted = record(
        Authorization(KIND_BLOCKED, BLOCKED, BLOCK_UNTIL, revoked_at=NOW),
        Authorization(KIND_PROFESSIONAL, BLOCKED, YEAR),
    )
    assert record_access(pro(BLOCKED), lifted, Action.RETRIEVE, NOW).allowed


def test_a_blocked_professional_cannot_authorize_themself_again() -> None:
    decision = self_authorization(pro(BLOCKED), blocked_record(), adding=True, attending=False, now=NOW)
    assert not decision.allowed and decision.reason == BLOCKED_REASON
    assert self_authorization(pro(OTHER), blocked_record(), adding=True, attending=False, now=NOW).allowed


def test_self_authorization_follows_the_rights_matrix() -> None:
    state = record()
    assert self_authorization(pro(OTHER), state, True, False, NOW).allowed
    assert self_authorization(pro(OTHER), state, False, False, NOW).allowed
    assert self_authorization(pro(OTHER), state, True, True, NOW).allowed  # a doctor may be the MT
    nurse = replace(pro(OTHER), roles=("60",))
    assert "only a doctor" in self_authorization(nurse, state, True, True, NOW).reason
    assert not self_authorization(pro(OTHER, sv.ACCESS_EMERGENCY), state, True, False, NOW).allowed
    assert not self_authorization(the_patient(), state, True, False, NOW).allowed
    establishment = Holder("establishment", "", "", "", "", "", "CH", "1990000017", "CN=x")
    vouched = replace(pro(OTHER), signer=establishment)
    # The establishment's word is the matrix's column F, N in TD0.3: the refusal names the cell.
    reason = self_authorization(vouched, state, True, False, NOW).reason
    assert "rights matrix: TD0.3 declare oneself authorized, profile F" in reason and reason.endswith(": N")
    urgent = self_authorization(pro(OTHER, sv.ACCESS_EMERGENCY), state, True, False, NOW).reason
    assert "rights matrix: TD0.3 declare oneself authorized, profile B (médecin non-MT), mode b: N" in urgent
    assert "no DMP" in self_authorization(pro(OTHER), None, True, False, NOW).reason
    assert "closed" in self_authorization(pro(OTHER), record(status=CLOSED), True, False, NOW).reason
    assert "another patient" in self_authorization(pro(OTHER, patient="x^^^&1.2&ISO"), state, True, False, NOW).reason


def test_listing_authorizations_needs_access_to_the_record() -> None:
    state = blocked_record()
    assert list_authorizations(pro(OTHER), state, NOW).allowed
    assert list_authorizations(the_patient(), state, NOW).allowed
    assert list_authorizations(pro(BLOCKED), state, NOW).reason == BLOCKED_REASON
    assert not list_authorizations(pro("899999999999"), state, NOW).allowed  # not authorized


def test_listing_patients_and_the_web_account() -> None:
    assert list_patients(pro(OTHER), NOW).allowed
    assert list_patients(pro(OTHER), NOW, by_new_authorizations=False).allowed  # a professional: any date
    establishment = Holder("establishment", "", "", "", "", "", "CH", "1990000017", "CN=x")
    vouched = replace(pro(OTHER), signer=establishment)
    assert list_patients(vouched, NOW).allowed
    by_last_document = list_patients(vouched, NOW, by_new_authorizations=False)
    assert not by_last_document.allowed
    assert "profile F (établissement, mode indirect), mode n: Y(3) refused, not a new authorization" in (
        by_last_document.reason
    )
    assert not list_patients(the_patient(), NOW).allowed
    state = blocked_record()
    assert patient_web_access(pro(OTHER), state, NOW).allowed
    assert patient_web_access(the_patient(), state, NOW).allowed
    assert not patient_web_access(pro(BLOCKED), state, NOW).allowed
    assert not patient_web_access(pro("899999999999"), state, NOW).allowed
