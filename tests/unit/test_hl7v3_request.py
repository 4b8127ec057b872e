"""The LPS's HL7 V3 requests (dmp/hl7v3/request.py) read back by the server's parser, and the
answers the server builds read back by the LPS: one module per side, agreeing."""

from __future__ import annotations

import datetime as dt

import pytest

from dmp_xds.dmp import cxf_messages as cm
from dmp_xds.dmp import cxf_vocabulary as cv
from dmp_xds.dmp.hl7v3 import build, parse
from dmp_xds.dmp.hl7v3 import request as rq
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.dmp.ins import INS_TEST_NIR, nir_with_key
from dmp_xds.dmp.model import Address, Demographics, Telecom

INS = nir_with_key("1840599123457")
PATIENT = f"{INS}^^^&{INS_TEST_NIR}&ISO"
RUTH = Demographics(
    "NESSI",
    "LEGRAND",
    ("RUTH", "ANNE"),
    "MME",
    "F",
    "19790328",
    (Address(("3 rue de la Paix", "Bât. B"), "75002", "PARIS", "FRANCE"),),
    (Telecom("tel:0601020304", "MC"), Telecom("mailto:ruth@example.org")),
)


def test_the_patient_as_an_ii() -> None:
    assert rq.ii(PATIENT) == (INS_TEST_NIR, INS)
    assert rq.ii(PATIENT + "^NH") == (INS_TEST_NIR, INS)


@pytest.mark.parametrize("reason", [hv.TEST_EXST, hv.CNSLT_DATA])
def test_get_demographics(reason: str) -> None:
    read = parse.parse_get_demographics(rq.get_demographics(PATIENT, reason))
    assert (read.reason, read.patient_id) == (reason, PATIENT)
    assert read.header.sender_id == rq.LPS_ROOT


def test_a_modification_carries_the_whole_identity_and_the_oppositions() -> None:
    flags = rq.oppositions(True, None)
    author = rq.Author("810001234565", "MARTIN", "ALICE", "1990000017", "HOPITAL")
    read = parse.parse_revise(rq.revise(PATIENT, hv.MODIF_DATA, RUTH, flags, author))
    assert (read.reason, read.patient_id, read.status) == (hv.MODIF_DATA, PATIENT, hv.STATUS_ACTIVE)
    assert read.demographics == RUTH
    assert read.observations == {hv.OPPOSES_BREAK_GLASS: True}
    assert read.author == parse.Author("810001234565", "ALICE MARTIN", "1990000017", "HOPITAL")


def test_closure_and_reactivation() -> None:
    closed = parse.parse_revise(rq.revise(PATIENT, hv.FERM, closure_text="à sa demande"))
    assert (closed.status, closed.closure_reason, closed.closure_text) == (
        hv.STATUS_TERMINATED,
        hv.CLOSURE_PATIENT_REQUEST,
        "à sa demande",
    )
    reopened = parse.parse_revise(rq.revise(PATIENT, hv.REAC, flags={hv.CONSENT_REACTIVATION: True}))
    assert reopened.observations == {hv.CONSENT_REACTIVATION: True} and reopened.demographics is None


def test_creation_with_and_without_consent() -> None:
    at = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    created = parse.parse_patient_add(rq.patient_add(PATIENT, RUTH, at, rq.oppositions(False, False)))
    assert (created.patient_id, created.demographics, created.consent_at) == (PATIENT, RUTH, at)
    assert created.observations[hv.OPPOSES_REGULATION] is False
    with pytest.raises(parse.Hl7Error, match=hv.CONSENT_OPENING):
        parse.parse_patient_add(rq.patient_add(PATIENT, RUTH, None))


def test_find_candidates() -> None:
    read = parse.parse_find_candidates(rq.find_candidates("NESSI", "RUTH", "19790328", "F"))
    assert (read.family, read.given, read.birth_date, read.gender) == ("NESSI", "RUTH", "19790328", "F")


def test_the_answers_read_back() -> None:
    header = parse.read_header(rq.get_demographics(PATIENT))
    now = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    refused = rq.read_answer(
        build.demographics_response(header, hv.CNSLT_DATA, ("q", "1"), now, build.Ack.error(hv.ACCESS_DENIED, "no"))
    )
    assert (refused.ack, refused.detail, refused.text, refused.query_code) == ("AE", hv.ACCESS_DENIED, "no", "AE")
    assert not refused.accepted and refused.patients == ()
    none = rq.read_answer(build.demographics_response(header, hv.TEST_EXST, ("q", "1"), now, build.Ack()))
    assert none.accepted and none.query_code == hv.QUERY_NOT_FOUND
    with pytest.raises(ValueError, match="not an answer"):
        rq.read_answer(rq.get_demographics(PATIENT).find(hv.hl7("id")))


def test_cxf_requests_and_outputs() -> None:
    request = cm.request(cv.SET_AUTHORIZATION, [("action", cv.ACTION_ADD), ("role", cv.ROLE_ATTENDING)])
    assert cm.parse_set_authorization(request) == cm.SetAuthorization(cv.ACTION_ADD, True)
    entry = cm.AuthorizationEntry(
        "810001234565", "ALICE", "MARTIN", ("G15_10/SM26",), ("Médecin",), None, None, "ACTIVE"
    )
    output = cm.read_output(cm.authorizations_response([entry], "ctx"))
    assert (output.operation, output.status, output.context, output.ok) == (
        cv.LIST_AUTHORIZATION_BY_PATIENT,
        cv.STATUS_OK,
        "ctx",
        True,
    )
    assert output.items[0]["nationalId"] == ("810001234565",) and output.items[0]["mode"] == ("ACTIVE",)
    denied = cm.read_output(cm.status_response(cv.PATIENT_LIST, cv.STATUS_ACCESS_DENIED, "rights matrix: ..."))
    assert not denied.ok and denied.items == () and denied.context == "rights matrix: ..."
    with pytest.raises(ValueError):
        cm.read_output(request)
