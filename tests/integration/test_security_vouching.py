"""Whose word an organisation certificate is taken at, over real TLS, on SQLite and PostgreSQL.

The attack: the hospital's certificate (an establishment, not the patient portal), used for the
TLS connection and to sign a VIHF with role PATIENT naming a patient, read all that patient's
documents (masked ones included) and changed the record (here: closing the DMP through
`patients`); the trace said
"the patient" and did not name the hospital. Only the structures of DMP_XDS_PATIENT_PORTALS may
speak for a patient or a legal representative, and every row made on a structure's word names it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

import hl7v3_messages as msg
import soap_messages as soap
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.xds import vocabulary as v
from secure_server import (
    MASKED,
    PATIENT,
    SecureServer,
    patient_portals,
    patient_vihf,
    start_secure_server,
    stop_secure_server,
    vihf,
)
from xds_server import BACKENDS, database_for, documents_for, free_port

MINOR = "1130599123456^^^&1.2.250.1.213.1.4.10&ISO"  # whose declared legal representative is PARENT
PARENT = "2700599123456^^^&1.2.250.1.213.1.4.10&ISO"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureServer]:
    running = start_secure_server(
        tmp_path_factory.mktemp(f"vouching-{request.param}"),
        pki,
        tls=True,
        database_url=database_for(request),
        extra=documents_for(request),
    )
    doctor = pki.identity("doctor").national_id
    running.cli("dmp", "create", PATIENT, "--collected-by", doctor)
    # The hospital's care team may read (establishment grant): the hospital is not a stranger to
    # the record, yet it may not speak for the patient.
    running.cli("dmp", "grant", PATIENT, pki.identity("hospital").structure_id, "--kind", "establishment")
    running.cli("dmp", "create", MINOR, "--collected-by", doctor)
    running.cli("dmp", "representative", "add", MINOR, PARENT, "--evidence", "livret de famille")
    yield running
    stop_secure_server(running)


@pytest.fixture(scope="module")
def documents(server: SecureServer) -> tuple[str, str]:
    """(plain, masked from professionals) uniqueIds of PATIENT, and one of MINOR."""
    plain = server.store_document(f"plain-{uuid.uuid4().hex[:8]}").documents[0].unique_id or ""
    masked = server.store_document(f"masked-{uuid.uuid4().hex[:8]}", codes=(MASKED,)).documents[0].unique_id or ""
    server.store_document(f"minor-{uuid.uuid4().hex[:8]}", MINOR)
    return plain, masked


def find_documents(patient: str = PATIENT) -> soap.HttpRequest:
    return soap.adhoc_query(
        v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{patient}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
    )


def subcode(response: soap.SoapResponse) -> str:
    return response.payload.findtext(f".//{{{v.NS_SOAP12}}}Subcode/{{{v.NS_SOAP12}}}Value") or ""


def assert_refused(response: soap.SoapResponse, code: str, *words: str) -> None:
    """HTTP 403, a SOAP 1.2 Sender fault with the WS-Security subcode `code`, the `words` in its reason."""
    assert response.status_code == 403, (response.status_code, response.fault_reason)
    assert (response.fault_code or "").endswith(":Sender"), response.fault_code
    assert subcode(response) == f"wsse:{code}", subcode(response)
    for word in words:
        assert word in (response.fault_reason or ""), response.fault_reason


def test_a_hospital_certificate_cannot_read_as_the_patient(
    server: SecureServer, pki: GeneratedPki, documents: tuple[str, str]
) -> None:
    hospital = pki.identity("hospital")
    response = server.call("registry", find_documents(), patient_vihf(pki, signer="hospital"), card="hospital")
    assert_refused(response, "InvalidSecurityToken", "not a patient portal", hospital.structure_id)
    answer = etree.tostring(response.payload).decode()
    assert documents[0] not in answer and documents[1] not in answer
    row = server.last_trace(PATIENT).event
    assert (row.action, row.outcome) == ("authenticate", "denied")
    assert row.structure_id == hospital.structure_id and hospital.structure_id in row.detail
    assert row.actor_id == hospital.structure_id and row.actor_name == hospital.organization


def test_a_hospital_certificate_cannot_close_the_dmp_as_the_patient(server: SecureServer, pki: GeneratedPki) -> None:
    hospital, patient = pki.identity("hospital"), msg.cx(msg.ins(301))
    server.cli("dmp", "create", patient, "--collected-by", "accueil")
    refused = server.dmpi(
        "patients",
        hv.ACTION_PATIENT_REVISE,
        msg.revise(msg.ins(301), hv.FERM),
        patient_vihf(pki, patient, signer="hospital"),
        card="hospital",
    )
    assert_refused(refused, "InvalidSecurityToken", "not a patient portal", hospital.structure_id)
    row = server.last_trace(patient).event
    assert (row.action, row.outcome, row.structure_id) == ("authenticate", "denied", hospital.structure_id)
    # Nothing changed: the DMP is still open.
    assert json.loads(server.cli("dmp", "show", patient))["status"] == "open"


def test_a_hospital_certificate_cannot_act_as_a_legal_representative(
    server: SecureServer, pki: GeneratedPki, documents: tuple[str, str]
) -> None:
    hospital = pki.identity("hospital")
    response = server.call(
        "registry",
        find_documents(MINOR),
        patient_vihf(pki, MINOR, representative=PARENT, signer="hospital"),
        card="hospital",
    )
    assert_refused(response, "InvalidSecurityToken", "not a patient portal", hospital.structure_id)
    row = server.last_trace(MINOR).event
    assert (row.action, row.outcome, row.structure_id) == ("authenticate", "denied", hospital.structure_id)


def test_a_portal_vihf_over_another_establishments_connection_is_refused(
    server: SecureServer, pki: GeneratedPki
) -> None:
    """The hospital holding a VIHF the portal signed may not present it: the structure's word is
    good over its own connection only."""
    response = server.call("registry", find_documents(), patient_vihf(pki), card="hospital")
    assert_refused(
        response, "FailedCheck", pki.identity("patient-portal").structure_id, pki.identity("hospital").structure_id
    )
    row = server.last_trace(PATIENT).event
    assert (row.action, row.outcome, row.structure_id) == (
        "authenticate",
        "denied",
        pki.identity("hospital").structure_id,
    )


def test_the_patient_portal_speaks_for_the_patient_and_is_named(
    server: SecureServer, pki: GeneratedPki, documents: tuple[str, str]
) -> None:
    portal = pki.identity("patient-portal")
    response = server.call("registry", find_documents(), patient_vihf(pki), card="patient-portal")
    assert response.status_code == 200, response.fault_reason
    answer = etree.tostring(response.payload).decode()
    assert documents[0] in answer and documents[1] in answer  # the patient sees what is masked from professionals
    row = server.last_trace(PATIENT).event
    assert (row.action, row.outcome) == ("search", "success")
    assert row.structure_id == portal.structure_id
    assert f"vouched for by structure {portal.structure_id} ({portal.organization})" in row.detail
    # A change of the record on the portal's word (TD1.4 by the patient) names the portal too.
    patient = msg.cx(msg.ins(302))
    server.cli("dmp", "create", patient, "--collected-by", "accueil")
    closed = server.dmpi(
        "patients", hv.ACTION_PATIENT_REVISE, msg.revise(msg.ins(302), hv.FERM), patient_vihf(pki, patient),
        card="patient-portal",
    )  # fmt: skip
    assert closed.status_code == 200 and 'typeCode="AA"' in etree.tostring(closed.payload).decode()
    row = server.last_trace(patient).event
    assert (row.action, row.outcome, row.structure_id) == ("dmp.close", "success", portal.structure_id)
    assert f"vouched for by structure {portal.structure_id}" in row.detail
    assert json.loads(server.cli("dmp", "show", patient))["status"] == "closed"
    parent = server.call(
        "registry", find_documents(MINOR), patient_vihf(pki, MINOR, representative=PARENT), card="patient-portal"
    )
    assert parent.status_code == 200, parent.fault_reason
    row = server.last_trace(MINOR).event
    assert (row.actor_id, row.outcome, row.structure_id) == (PARENT, "success", portal.structure_id)
    assert f"vouched for by structure {portal.structure_id}" in row.detail


def test_a_professional_vouched_for_by_an_establishment_is_traced_with_it(
    server: SecureServer, pki: GeneratedPki
) -> None:
    hospital, nurse = pki.identity("hospital"), pki.identity("nurse")
    # In indirect mode the rights matrix (profile F) lets an establishment find references only.
    references = soap.adhoc_query(
        v.SQ_FIND_DOCUMENTS,
        {v.P_DE_PATIENT_ID: [f"'{PATIENT}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]},
        return_type="ObjectRef",
    )
    response = server.call("registry", references, vihf(pki, "nurse", signer="hospital"), card="hospital")
    assert response.status_code == 200, response.fault_reason
    row = server.last_trace(PATIENT).event
    assert (row.action, row.outcome, row.actor_id) == ("search", "success", nurse.national_id)
    assert row.structure_id == hospital.structure_id
    assert f"vouched for by structure {hospital.structure_id} ({hospital.organization})" in row.detail
    # A card's holder speaks for themself: no structure vouched.
    direct = server.call(
        "registry",
        find_documents(),
        vihf(pki, "doctor2", access_mode="bris_de_glace", access_reason="coma"),
        card="doctor2",
    )
    assert direct.status_code == 200, direct.fault_reason
    assert "vouched for" not in server.last_trace(PATIENT).event.detail


def test_without_a_configured_portal_nobody_speaks_for_patients(pki: GeneratedPki, tmp_path: Path) -> None:
    """The defaults of a deployment that names no portal (DMP_XDS_PATIENT_PORTALS empty), here with
    establishment vouching turned off (DMP_XDS_ESTABLISHMENT_VOUCHING=none): the portal itself is
    refused, and so is a professional's VIHF signed by the hospital; a card still gets in."""
    running = start_secure_server(
        tmp_path, pki, tls=True, extra={"DMP_XDS_PATIENT_PORTALS": "", "DMP_XDS_ESTABLISHMENT_VOUCHING": "none"}
    )
    try:
        running.cli("dmp", "create", PATIENT, "--collected-by", "x")
        running.cli("dmp", "grant", PATIENT, pki.identity("hospital").structure_id, "--kind", "establishment")
        running.cli("dmp", "grant", PATIENT, pki.identity("doctor").national_id)
        portal = running.call("registry", find_documents(), patient_vihf(pki), card="patient-portal")
        assert_refused(
            portal, "InvalidSecurityToken", "not a patient portal", pki.identity("patient-portal").structure_id
        )
        nurse = running.call("registry", find_documents(), vihf(pki, "nurse", signer="hospital"), card="hospital")
        assert_refused(
            nurse, "InvalidSecurityToken", "may not vouch for a professional", "DMP_XDS_ESTABLISHMENT_VOUCHING"
        )
        row = running.last_trace(PATIENT).event
        assert (row.action, row.outcome, row.structure_id) == (
            "authenticate",
            "denied",
            pki.identity("hospital").structure_id,
        )
        assert running.call("registry", find_documents(), vihf(pki, "doctor")).status_code == 200
    finally:
        stop_secure_server(running)


def test_a_listed_establishment_vouches_and_others_do_not(pki: GeneratedPki, tmp_path: Path) -> None:
    """DMP_XDS_ESTABLISHMENT_VOUCHING as a list: only the structures it names vouch for professionals."""
    running = start_secure_server(
        tmp_path, pki, tls=True, extra={"DMP_XDS_ESTABLISHMENT_VOUCHING": pki.identity("patient-portal").structure_id}
    )
    try:
        running.cli("dmp", "create", PATIENT, "--collected-by", "x")
        running.cli("dmp", "grant", PATIENT, pki.identity("hospital").structure_id, "--kind", "establishment")
        nurse = running.call("registry", find_documents(), vihf(pki, "nurse", signer="hospital"), card="hospital")
        assert_refused(nurse, "InvalidSecurityToken", "may not vouch for a professional")
        # The portal, listed as a portal, still speaks for the patient.
        assert running.call("registry", find_documents(), patient_vihf(pki), card="patient-portal").status_code == 200
    finally:
        stop_secure_server(running)


def test_start_up_refuses_an_empty_vouching_rule(pki: GeneratedPki, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DMP_XDS_DATA_DIR": str(tmp_path),
        "DMP_XDS_PROFILE": "ihe",
        "DMP_XDS_AUTH": "vihf",
        "DMP_XDS_PORT": str(free_port()),
        "DMP_XDS_HOST": "127.0.0.1",
        "DMP_XDS_TRUST_ANCHORS": str(pki.anchors),
        "DMP_XDS_TRUST_INTERMEDIATES": str(pki.intermediates),
        "DMP_XDS_CRL_FILES": ",".join(str(p) for p in pki.crls),
        "DMP_XDS_TLS_CERTIFICATE": str(pki.server_certificate),
        "DMP_XDS_TLS_KEY": str(pki.server_key),
        "DMP_XDS_PATIENT_PORTALS": patient_portals(pki),
        "DMP_XDS_ESTABLISHMENT_VOUCHING": " , ",
    }
    env.pop("DMP_XDS_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "dmp_xds.cli", "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0 and "DMP_XDS_ESTABLISHMENT_VOUCHING" in result.stderr, result.stderr
