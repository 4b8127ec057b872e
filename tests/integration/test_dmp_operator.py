"""The operator's `dmp-xds dmp` and `dmp-xds audit` commands beside the DMP's services, on a
secured server over real TLS with the test PKI, on SQLite and PostgreSQL. What the DMP offers
the patient only (access history, authorizations given on their word, legal representatives...)
is the operator's until the patient's web space does it: the commands and the DMP's services
(`patients`, the XDS endpoints) act on one record and write one history."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from lxml import etree

import hl7v3_messages as msg
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.xds import vocabulary as v
from secure_server import SecureServer, patient_vihf, start_secure_server, stop_secure_server, vihf
from soap_messages import SoapResponse, adhoc_query
from xds_server import BACKENDS, database_for, documents_for

NS = {"h": hv.NS_HL7}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureServer]:
    running = start_secure_server(
        tmp_path_factory.mktemp(f"dmp-operator-{request.param}"),
        pki,
        tls=True,
        database_url=database_for(request),
        extra=documents_for(request),
    )
    yield running
    stop_secure_server(running)


def acknowledged(response: SoapResponse) -> str:
    """The acknowledgement type (AA, AE) of a `patients` answer, wrapped or not."""
    assert response.status_code == 200, response.fault_reason
    element = next(response.payload.iter(hv.hl7("acknowledgement")))
    return element.get("typeCode") or ""


def search(server: SecureServer, patient: str, assertion: etree._Element, card: str) -> SoapResponse:
    query = adhoc_query(
        v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{patient}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
    )
    return server.call("registry", query, assertion, card=card)


def test_the_operator_and_the_dmp_services_share_one_record_and_one_history(
    server: SecureServer, pki: GeneratedPki
) -> None:
    ins = msg.ins(401)
    patient, doctor = msg.cx(ins), pki.identity("doctor").national_id
    server.cli("dmp", "create", patient, "--collected-by", "guichet")
    server.cli("dmp", "grant", patient, doctor)
    # TD1.1: the DMP the operator created exists for the DMP's services too.
    again = server.dmpi("patients", hv.ACTION_PATIENT_ADD, msg.patient_add(ins), vihf(pki, "doctor", patient))
    assert acknowledged(again) == "AE"
    read = server.dmpi(
        "patients", hv.ACTION_GET_DEMOGRAPHICS, msg.get_demographics(ins, hv.CNSLT_DATA), vihf(pki, "doctor", patient)
    )
    assert acknowledged(read) == "AA"
    # TD1.4 by the patient through the portal; the operator sees it closed and reopens it.
    closed = server.dmpi(
        "patients", hv.ACTION_PATIENT_REVISE, msg.revise(ins, hv.FERM), patient_vihf(pki, patient),
        card="patient-portal",
    )  # fmt: skip
    assert acknowledged(closed) == "AA"
    assert json.loads(server.cli("dmp", "show", patient))["status"] == "closed"
    server.cli("dmp", "reopen", patient, "--reason", "à la demande du patient")

    lines = [json.loads(line) for line in server.cli("audit", "history", patient, "--json").splitlines()]
    assert [(line["action"], line["outcome"], line["actor_id"]) for line in lines] == [
        ("dmp.reopen", "success", "operator"),
        ("dmp.read", "success", "operator"),
        ("dmp.close", "success", patient),
        ("dmp.read", "success", doctor),
        ("dmp.create", "failure", doctor),
        ("authorization.grant", "success", "operator"),
        ("dmp.create", "success", "operator"),
    ]
    assert "à la demande du patient" in lines[0]["detail"]


def test_the_operators_grants_and_revocations_are_what_the_xds_endpoints_obey(
    server: SecureServer, pki: GeneratedPki
) -> None:
    patient, doctor2 = msg.cx(msg.ins(402)), pki.identity("doctor2").national_id
    server.cli("dmp", "create", patient, "--collected-by", "guichet")
    assert search(server, patient, vihf(pki, "doctor2", patient), "doctor2").status_code == 403
    server.cli("dmp", "grant", patient, doctor2, "--kind", "attending")
    assert search(server, patient, vihf(pki, "doctor2", patient), "doctor2").status_code == 200
    (first,) = json.loads(server.cli("dmp", "show", patient))["authorizations"]
    server.cli("dmp", "grant", patient, doctor2, "--kind", "attending")  # granting again renews
    (renewed,) = json.loads(server.cli("dmp", "show", patient))["authorizations"]
    assert renewed["kind"] == "attending" and renewed["expires_at"] >= first["expires_at"]
    assert "1 authorization(s)" in server.cli("dmp", "revoke", patient, doctor2)
    assert search(server, patient, vihf(pki, "doctor2", patient), "doctor2").status_code == 403
    assert json.loads(server.cli("dmp", "show", patient))["authorizations"] == []


def test_a_legal_representative_declared_by_the_operator_acts_until_removed(
    server: SecureServer, pki: GeneratedPki
) -> None:
    minor, parent = msg.cx(msg.ins(403)), msg.cx(msg.ins(404))
    server.cli("dmp", "create", minor, "--collected-by", "guichet")
    as_parent = patient_vihf(pki, minor, representative=parent)
    refused = search(server, minor, as_parent, "patient-portal")
    assert refused.status_code == 403 and "not a declared legal representative" in (refused.fault_reason or "")

    server.cli("dmp", "representative", "add", minor, parent, "--evidence", "livret de famille n° 42")
    row = server.last_trace(minor).event
    assert (row.action, row.actor_id) == ("representative.add", "operator")
    assert "livret de famille n° 42" in row.detail  # the proof the operator checked
    assert json.loads(server.cli("dmp", "show", minor))["legal_representatives"] == [parent]
    found = search(server, minor, patient_vihf(pki, minor, representative=parent), "patient-portal")
    assert found.status_code == 200, found.fault_reason
    row = server.last_trace(minor).event
    assert (row.action, row.outcome, row.actor_id) == ("search", "success", parent)

    server.cli("dmp", "representative", "remove", minor, parent)
    gone = search(server, minor, patient_vihf(pki, minor, representative=parent), "patient-portal")
    assert gone.status_code == 403 and "not a declared legal representative" in (gone.fault_reason or "")
    assert json.loads(server.cli("dmp", "show", minor))["legal_representatives"] == []
