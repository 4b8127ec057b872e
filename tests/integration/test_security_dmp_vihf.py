"""VIHF 3.0 tokens shaped as the DMP's (pki.dmp_vihf) over a secured server on real TLS: an
unsigned direct token over the professional's card reads the record (ITI-18), an indirect one over
the establishment's connection too; a stale one, an unsigned one over an establishment's
connection and a card's token over an establishment's connection are refused, each with its
SOAP fault and a denied row on the patient's trace. The server runs with a short max age and
SHA-1 refused, so that both settings are seen to reach the verifier."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import Row, select

from dmp_xds.security import vocabulary as sv
from dmp_xds.security.pki import GeneratedPki, create_test_pki, dmp_vihf
from dmp_xds.security.vihf import SHA256
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.tables import AuditEntryRow
from dmp_xds.xds import vocabulary as v
from secure_server import PATIENT, SecureServer, start_secure_server, stop_secure_server
from soap_messages import SoapResponse, adhoc_query

# The patient as the DMP's VIHF names it: the INS with the NH identifier type.
VIHF_PATIENT = f"{PATIENT}^NH"
MAX_AGE_SECONDS = 120


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    running = start_secure_server(
        tmp_path_factory.mktemp("secure"),
        pki,
        tls=True,
        extra={"DMP_XDS_VIHF_MAX_AGE_SECONDS": str(MAX_AGE_SECONDS), "DMP_XDS_VIHF_SHA1": "refuse"},
    )
    running.cli("dmp", "create", PATIENT, "--collected-by", pki.identity("doctor").national_id)
    running.cli("dmp", "grant", PATIENT, pki.identity("doctor").national_id)
    running.cli("dmp", "grant", PATIENT, pki.identity("hospital").structure_id, "--kind", "establishment")
    yield running
    stop_secure_server(running)


def find_documents(
    server: SecureServer, assertion: etree._Element, card: str, return_type: str = "LeafClass"
) -> SoapResponse:
    query = adhoc_query(
        v.SQ_FIND_DOCUMENTS,
        {
            "$XDSDocumentEntryPatientId": [f"'{PATIENT}'"],
            "$XDSDocumentEntryStatus": ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"],
        },
        return_type,
    )
    return server.call("registry", query, assertion, card=card)


def assert_success(response: SoapResponse) -> None:
    assert response.status_code == 200, response.fault_reason
    assert response.payload.get("status", "").endswith("Success"), response.fault_reason


def last_row(server: SecureServer) -> Row[Any]:
    """The newest row of the whole trace."""
    engine = create_engine_for(server.engine_url())
    table = AuditEntryRow.__table__
    with engine.connect() as connection:
        row = connection.execute(select(table).order_by(table.c.seq.desc()).limit(1)).one()
    engine.dispose()
    return row


def assert_refused(
    server: SecureServer, response: SoapResponse, code: str, words: str, patient: str | None = PATIENT
) -> None:
    """HTTP 403, the WS-Security subcode, a reason naming the defect, and the denied
    `authenticate` row saying the same, on the patient's history (`patient`; None: the VIHF was
    refused before anything it says could be believed, and the row names no patient)."""
    assert response.status_code == 403, response.fault_reason
    subcode = response.payload.findtext(f".//{{{v.NS_SOAP12}}}Subcode/{{{v.NS_SOAP12}}}Value") or ""
    assert subcode == f"wsse:{code}", subcode
    assert words in (response.fault_reason or ""), response.fault_reason
    if patient is None:
        row = last_row(server)
        assert (row.action, row.outcome, row.patient_id) == ("authenticate", "denied", ""), row
        assert words in row.detail, row
        return
    event = server.last_trace(patient).event
    assert (event.action, event.outcome) == ("authenticate", "denied") and words in event.detail, event


def test_unsigned_direct_token_over_the_card_reads(server: SecureServer, pki: GeneratedPki) -> None:
    assert_success(find_documents(server, dmp_vihf(pki, "doctor", VIHF_PATIENT, signed=False), "doctor"))
    row = server.last_trace(PATIENT).event
    assert (row.action, row.outcome, row.actor_id) == ("search", "success", pki.identity("doctor").national_id)
    assert row.actor_role == "10,SM26"


def test_signed_direct_token_reads(server: SecureServer, pki: GeneratedPki) -> None:
    assert_success(find_documents(server, dmp_vihf(pki, "doctor", VIHF_PATIENT, digest=SHA256), "doctor"))


def test_sha1_is_refused_when_the_setting_says_so(server: SecureServer, pki: GeneratedPki) -> None:
    response = find_documents(server, dmp_vihf(pki, "doctor", VIHF_PATIENT), "doctor")
    assert_refused(server, response, "InvalidSecurityToken", "SHA-1 is refused here", patient=None)


@pytest.mark.parametrize("mode", [sv.AUTHENTICATION_INDIRECT, sv.AUTHENTICATION_INDIRECT_REINFORCED])
def test_indirect_token_over_the_establishment_reads(server: SecureServer, pki: GeneratedPki, mode: str) -> None:
    # An establishment finds references (ObjectRef), as the rights matrix lets it, not metadata.
    token = dmp_vihf(pki, "doctor", VIHF_PATIENT, mode, digest=SHA256)
    assert_success(find_documents(server, token, "hospital", "ObjectRef"))
    row = server.last_trace(PATIENT).event
    assert (row.action, row.outcome) == ("search", "success")
    assert f"vouched for by structure {pki.identity('hospital').structure_id}" in row.detail


def test_stale_token_is_refused_and_traced(server: SecureServer, pki: GeneratedPki) -> None:
    # Stale for this server (max age 120 s + 120 s of skew), not for the default 300 s.
    old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=MAX_AGE_SECONDS + 200)
    response = find_documents(server, dmp_vihf(pki, "doctor", VIHF_PATIENT, signed=False, now=old), "doctor")
    assert_refused(server, response, "InvalidSecurityToken", "the VIHF is stale")


def test_unsigned_token_over_an_establishment_is_refused(server: SecureServer, pki: GeneratedPki) -> None:
    response = find_documents(server, dmp_vihf(pki, "doctor", VIHF_PATIENT, signed=False), "hospital")
    assert response.status_code == 403 and "the VIHF is not signed" in (response.fault_reason or "")


def test_card_token_over_an_establishment_is_refused(server: SecureServer, pki: GeneratedPki) -> None:
    response = find_documents(server, dmp_vihf(pki, "doctor", VIHF_PATIENT, digest=SHA256), "hospital")
    assert_refused(server, response, "FailedCheck", "the VIHF's signer must be the TLS client")


def test_establishment_token_over_a_card_is_refused(server: SecureServer, pki: GeneratedPki) -> None:
    token = dmp_vihf(pki, "doctor", VIHF_PATIENT, sv.AUTHENTICATION_INDIRECT, digest=SHA256)
    response = find_documents(server, token, "doctor")
    assert_refused(server, response, "FailedCheck", "the VIHF's signer must be the TLS client")


def test_unsigned_token_of_another_card_is_refused(server: SecureServer, pki: GeneratedPki) -> None:
    response = find_documents(server, dmp_vihf(pki, "doctor", VIHF_PATIENT, signed=False), "doctor2")
    assert_refused(server, response, "InvalidSecurityToken", "speaks for the card's holder only")
