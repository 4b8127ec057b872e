"""A secured server over real TLS on 127.0.0.1, with the generated test PKI: who gets in, which
SOAP fault the others get, the record-level policy, and the access trace of each request."""

from __future__ import annotations

import copy
import datetime as dt
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from lxml import etree
from sqlalchemy import select

from dmp_xds.config import Settings, default_database_url
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.security.vihf import security_header
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.tables import AuditEntryRow
from dmp_xds.xds import vocabulary as v
from factories import make_submission, make_submission_set
from secure_server import PATIENT, SecureServer, patient_vihf, start_secure_server, stop_secure_server, vihf
from soap_messages import SoapResponse, adhoc_query, parse_response, register
from xds_server import free_port

CLOSED_PATIENT = "1750599123456^^^&1.2.250.1.213.1.4.10&ISO"
REFUSING_PATIENT = "2910599123456^^^&1.2.250.1.213.1.4.10&ISO"
OTHER_PATIENT = "1650599123456^^^&1.2.250.1.213.1.4.10&ISO"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    running = start_secure_server(tmp_path_factory.mktemp("secure"), pki, tls=True)
    running.cli("dmp", "create", PATIENT, "--collected-by", pki.identity("doctor").national_id)
    running.cli("dmp", "grant", PATIENT, pki.identity("doctor").national_id)
    running.cli("dmp", "grant", PATIENT, pki.identity("hospital").structure_id, "--kind", "establishment")
    running.cli("dmp", "create", CLOSED_PATIENT, "--collected-by", "x")
    running.cli("dmp", "grant", CLOSED_PATIENT, pki.identity("doctor").national_id)
    running.cli("dmp", "close", CLOSED_PATIENT)
    running.cli("dmp", "create", REFUSING_PATIENT, "--collected-by", "x", "--no-emergency-access")
    yield running
    stop_secure_server(running)


def find_documents(
    patient: str = PATIENT, assertion: etree._Element | None = None, return_type: str = "LeafClass"
) -> bytes:
    request = adhoc_query(
        v.SQ_FIND_DOCUMENTS,
        {
            "$XDSDocumentEntryPatientId": [f"'{patient}'"],
            "$XDSDocumentEntryStatus": ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"],
        },
        return_type,
    )
    envelope = etree.fromstring(request.body)
    if assertion is not None:
        envelope.find(f"{{{v.NS_SOAP12}}}Header").append(security_header(assertion))
    return etree.tostring(envelope)


def post(
    server: SecureServer, body: bytes, card: str | None = "doctor", pki: GeneratedPki | None = None
) -> SoapResponse:
    pki = pki or server.pki
    cert = None if card is None else (pki.identity(card).certificate, pki.identity(card).key)
    response = requests.post(
        server.url + "/xds/registry",
        data=body,
        timeout=30,
        cert=cert,
        verify=str(server.pki.anchors),
        headers={"Content-Type": "application/soap+xml"},
    )
    return parse_response(response.status_code, response.headers.get("Content-Type", ""), response.content)


def test_valid_card_and_vihf_get_in(server: SecureServer, pki: GeneratedPki) -> None:
    response = post(server, find_documents(assertion=vihf(pki, "doctor")))
    assert response.status_code == 200 and response.payload.get("status", "").endswith("Success"), response.fault_reason
    entry = server.trail().history(PATIENT)[0]
    assert (entry.event.action, entry.event.outcome) == ("search", "success")
    assert entry.event.actor_id == pki.identity("doctor").national_id
    assert entry.event.structure_id == pki.identity("doctor").structure_id
    assert entry.event.access_mode == "normal"


def test_missing_certificate(server: SecureServer, pki: GeneratedPki) -> None:
    response = post(server, find_documents(assertion=vihf(pki, "doctor")), card=None)
    assert response.status_code == 403 and "no client certificate" in (response.fault_reason or "")


@pytest.mark.parametrize("card", ["expired"])
def test_expired_certificate_fails_the_handshake(server: SecureServer, pki: GeneratedPki, card: str) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        post(server, find_documents(assertion=vihf(pki, "doctor")), card=card)


def test_untrusted_certificate_fails_the_handshake(server: SecureServer, pki: GeneratedPki, tmp_path: Path) -> None:
    other = create_test_pki(tmp_path / "other")
    with pytest.raises(requests.exceptions.ConnectionError):
        post(server, find_documents(assertion=vihf(pki, "doctor")), card="doctor", pki=other)


def test_revoked_certificate_refused(server: SecureServer, pki: GeneratedPki) -> None:
    response = post(server, find_documents(assertion=vihf(pki, "revoked")), card="revoked")
    assert response.status_code == 403 and "revoked" in (response.fault_reason or "")
    assert response.fault_code and response.fault_code.endswith("Sender")


def last_row() -> object:
    """The newest row of the whole trace (refusals at the gate name no patient when the VIHF is bad)."""
    return select(AuditEntryRow.__table__).order_by(AuditEntryRow.__table__.c.seq.desc()).limit(1)


def wrapped(pki: GeneratedPki) -> etree._Element:
    """Signature wrapping: a forged assertion (another professional) with the genuine signed one
    hidden in its Advice under the same ID."""
    genuine = vihf(pki, "doctor")
    forged = copy.deepcopy(genuine)
    forged.find(f"{sv.TAG_SUBJECT}/{sv.TAG_NAME_ID}").text = pki.identity("doctor2").national_id
    etree.SubElement(forged, f"{{{sv.NS_SAML}}}Advice").append(genuine)
    return forged


def tampered(pki: GeneratedPki) -> etree._Element:
    assertion = vihf(pki, "doctor")
    for attribute in assertion.iter(sv.TAG_ATTRIBUTE):
        if attribute.get("Name") == sv.ATTR_LPS_NAME:
            attribute[0].text = "forged"
    return assertion


def unsigned(pki: GeneratedPki) -> etree._Element:
    assertion = vihf(pki, "doctor")
    assertion.remove(assertion.find(sv.TAG_SIGNATURE))
    return assertion


HOUR = dt.timedelta(hours=1)
# defect -> (VIHF builder, card of the connection, WS-Security fault subcode, words of the reason)
DEFECTS = {
    "missing": (lambda pki: None, "doctor", "SecurityTokenUnavailable", "no wsse:Security header"),
    # Unsigned is the DMP's direct mode, over the card's own connection (test_security_dmp_vihf):
    # over an establishment's, it is refused.
    "unsigned": (unsigned, "hospital", "InvalidSecurityToken", "the VIHF is not signed"),
    "expired": (
        lambda pki: vihf(pki, "doctor", now=dt.datetime.now(dt.UTC) - HOUR),
        "doctor",
        "InvalidSecurityToken",
        "the VIHF has expired",
    ),
    "not yet valid": (
        lambda pki: vihf(pki, "doctor", now=dt.datetime.now(dt.UTC) + HOUR),
        "doctor",
        "InvalidSecurityToken",
        "the VIHF is not valid yet",
    ),
    "tampered": (tampered, "doctor", "InvalidSecurityToken", "does not verify"),
    "wrapped": (wrapped, "doctor", "InvalidSecurityToken", "signature wrapping"),
    "wrong audience": (
        lambda pki: vihf(pki, "doctor", audience="urn:elsewhere"),
        "doctor",
        "InvalidSecurityToken",
        "not meant for this server",
    ),
    "missing attributes": (
        lambda pki: vihf(pki, "doctor", lps_name="", sector=""),
        "doctor",
        "InvalidSecurityToken",
        f"lacks required attribute(s): {sv.ATTR_LPS_NAME}, {sv.ATTR_SECTOR}",
    ),
    "emergency without a reason": (
        lambda pki: vihf(pki, "doctor2", access_mode=sv.ACCESS_EMERGENCY),
        "doctor2",
        "InvalidSecurityToken",
        "requires a reason",
    ),
    "other professional's card": (
        lambda pki: vihf(pki, "doctor2", signer="doctor"),
        "doctor",
        "InvalidSecurityToken",
        "signs only for its holder",
    ),
    "card and VIHF disagree": (
        lambda pki: vihf(pki, "doctor2"),
        "doctor",
        "FailedCheck",
        "connection is made with the card of",
    ),
    "patient VIHF signed by a card": (
        lambda pki: patient_vihf(pki, signer="doctor"),
        "doctor",
        "InvalidSecurityToken",
        "must be signed by an organisation certificate",
    ),
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_vihf_defects_are_soap_faults(server: SecureServer, pki: GeneratedPki, defect: str) -> None:
    """Each defect: HTTP 403, a SOAP 1.2 Sender fault with the WS-Security subcode, a reason that
    names the defect, and a denied `authenticate` row in the trace saying the same."""
    build, card, code, expected = DEFECTS[defect]
    response = post(server, find_documents(assertion=build(pki)), card=card)
    assert response.status_code == 403, response.fault_reason
    assert (response.fault_code or "").endswith(":Sender"), response.fault_code
    subcode = response.payload.findtext(f".//{{{v.NS_SOAP12}}}Subcode/{{{v.NS_SOAP12}}}Value") or ""
    assert subcode == f"wsse:{code}", subcode
    assert expected in (response.fault_reason or ""), response.fault_reason
    engine = create_engine_for(server.engine_url())
    with engine.connect() as connection:
        row = connection.execute(last_row()).one()
    engine.dispose()
    assert (row.action, row.outcome) == ("authenticate", "denied") and expected in row.detail


def test_vihf_about_another_patient_than_the_request(server: SecureServer, pki: GeneratedPki) -> None:
    """The patient in the VIHF must be the patient of the request: a submission and a query naming
    a patient get XDSPatientIdDoesNotMatch, and nothing of the other record (the DMP's patient
    services answer an AE: test_dmpi_patients.py)."""
    doctor = pki.identity("doctor").national_id
    server.cli("dmp", "create", OTHER_PATIENT, "--collected-by", "x")
    server.cli("dmp", "grant", OTHER_PATIENT, doctor)
    document = server.store_document(f"mismatch-{uuid.uuid4().hex[:8]}", PATIENT).documents[0].unique_id
    submission = make_submission(1, submission_set=make_submission_set(patient_id=PATIENT))
    submission.documents[0].patient_id = PATIENT
    submitted = server.call("registry", register(submission), vihf(pki, "doctor", OTHER_PATIENT))
    assert submitted.error_codes == ["XDSPatientIdDoesNotMatch"]
    found = post(server, find_documents(PATIENT, vihf(pki, "doctor", OTHER_PATIENT)))
    assert found.status_code == 200 and found.error_codes == ["XDSPatientIdDoesNotMatch"]
    assert document not in etree.tostring(found.payload).decode()
    assert document in etree.tostring(post(server, find_documents(PATIENT, vihf(pki, "doctor"))).payload).decode()


def test_replayed_vihf(server: SecureServer, pki: GeneratedPki) -> None:
    body = find_documents(assertion=vihf(pki, "doctor"))
    assert post(server, body).status_code == 200
    replay = post(server, body)
    assert replay.status_code == 403 and "replay" in (replay.fault_reason or "")


def test_replay_to_another_worker_is_refused(pki: GeneratedPki, tmp_path: Path) -> None:
    """With two worker processes, the replay cache is the database's: a VIHF used once is refused
    by both workers. Each replay comes on a new connection, which the kernel gives to either
    worker; with a per-process cache, 12 replays would all be refused only by a 1-in-4096 chance."""
    two = start_secure_server(tmp_path, pki, tls=True, extra={"DMP_XDS_WORKERS": "2"})
    try:
        two.cli("dmp", "create", PATIENT, "--collected-by", "x")
        two.cli("dmp", "grant", PATIENT, pki.identity("doctor").national_id)
        body = find_documents(assertion=vihf(pki, "doctor"))
        first = post(two, body)
        assert first.status_code == 200, first.fault_reason
        for _ in range(12):
            replay = post(two, body)
            assert replay.status_code == 403 and "replay" in (replay.fault_reason or "")
        assert post(two, find_documents(assertion=vihf(pki, "doctor"))).status_code == 200
        # Both workers and the commands appended to one keyed chain, with the one key.
        assert "audit trace intact: 16 entries checked" in two.cli("audit", "verify")
    finally:
        stop_secure_server(two)


def test_a_card_revoked_while_the_server_runs_is_refused_at_once(tmp_path: Path) -> None:
    """The verdict cache (an hour here) gives way as soon as the CRL file changes."""
    from dmp_xds.security.pki import revoke_card

    own = create_test_pki(tmp_path / "pki")
    (tmp_path / "data").mkdir()
    running = start_secure_server(tmp_path / "data", own, tls=True, extra={"DMP_XDS_CERTIFICATE_CACHE_SECONDS": "3600"})
    try:
        running.cli("dmp", "create", PATIENT, "--collected-by", "x")
        running.cli("dmp", "grant", PATIENT, own.identity("doctor").national_id)
        assert post(running, find_documents(assertion=vihf(own, "doctor")), pki=own).status_code == 200
        revoke_card(own, "doctor")
        refused = post(running, find_documents(assertion=vihf(own, "doctor")), pki=own)
        assert refused.status_code == 403 and "revoked" in (refused.fault_reason or ""), refused.fault_reason
    finally:
        stop_secure_server(running)


def test_record_level_policy_and_trace(server: SecureServer, pki: GeneratedPki) -> None:
    stranger = post(server, find_documents(assertion=vihf(pki, "doctor2")), card="doctor2")
    assert stranger.status_code == 403 and "has not authorized" in (stranger.fault_reason or "")
    # The hospital's care team (establishment grant), signed by the hospital, over the hospital's
    # connection: in indirect mode the rights matrix (profile F) lets it find references only.
    metadata = post(server, find_documents(assertion=vihf(pki, "nurse", signer="hospital")), card="hospital")
    assert metadata.status_code == 200 and metadata.error_codes == ["XDSRegistryError"], metadata.fault_reason
    nurse = post(
        server,
        find_documents(assertion=vihf(pki, "nurse", signer="hospital"), return_type="ObjectRef"),
        card="hospital",
    )
    assert nurse.status_code == 200 and nurse.error_codes == [], nurse.fault_reason
    emergency = post(
        server,
        find_documents(
            assertion=vihf(pki, "doctor2", access_mode=sv.ACCESS_EMERGENCY, access_reason="patient inconscient")
        ),
        card="doctor2",
    )
    assert emergency.status_code == 200, emergency.fault_reason
    refused = post(
        server,
        find_documents(
            REFUSING_PATIENT,
            vihf(pki, "doctor2", REFUSING_PATIENT, access_mode=sv.ACCESS_EMERGENCY, access_reason="coma"),
        ),
        card="doctor2",
    )
    assert refused.status_code == 403 and "refused emergency access" in (refused.fault_reason or "")
    closed = post(server, find_documents(CLOSED_PATIENT, vihf(pki, "doctor", CLOSED_PATIENT)))
    assert closed.status_code == 403 and "closed" in (closed.fault_reason or "")
    history = server.trail().history(PATIENT)
    by_actor = {(e.event.actor_id, e.event.outcome, e.event.access_mode) for e in history}
    assert (pki.identity("doctor2").national_id, "denied", "normal") in by_actor
    assert (pki.identity("nurse").national_id, "success", "normal") in by_actor
    flagged = [e for e in history if e.emergency and e.event.outcome == "success"]
    assert flagged and flagged[0].event.access_reason == "patient inconscient"
    assert "EMERGENCY ACCESS" in flagged[0].event.detail
    assert server.trail().history(REFUSING_PATIENT)[0].event.outcome == "denied"
    assert server.trail().history(CLOSED_PATIENT)[0].event.outcome == "denied"


def test_trace_tampering_named_by_audit_verify(server: SecureServer) -> None:
    assert "intact" in server.cli("audit", "verify")
    engine = create_engine_for(default_database_url(Settings(data_dir=server.data_dir)))
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE audit_entry SET actor_id = 'someone' WHERE seq = 2")
    result = subprocess.run(
        [sys.executable, "-m", "dmp_xds.cli", "audit", "verify"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and "row 2" in result.stderr
    with engine.begin() as connection:  # put it back for the other tests of the module
        connection.exec_driver_sql("UPDATE audit_entry SET actor_id = 'operator' WHERE seq = 2")
    engine.dispose()


def test_reverse_proxy_header(pki: GeneratedPki, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    proxied = start_secure_server(
        tmp_path / "data",
        pki,
        tls=False,
        extra={"DMP_XDS_CLIENT_CERT_HEADER": "X-SSL-Client-Cert", "DMP_XDS_TRUSTED_PROXIES": "127.0.0.1"},
    )
    try:
        proxied.cli("dmp", "create", PATIENT, "--collected-by", "x")
        proxied.cli("dmp", "grant", PATIENT, pki.identity("doctor").national_id)
        pem = quote(Path(pki.identity("doctor").certificate).read_text())
        ok = requests.post(
            proxied.url + "/xds/registry",
            data=find_documents(assertion=vihf(pki, "doctor")),
            headers={"Content-Type": "application/soap+xml", "X-SSL-Client-Cert": pem},
            timeout=30,
        )
        assert ok.status_code == 200, ok.text
        # A proxy names its client in X-Forwarded-For: the peer that counts is still the proxy.
        forwarded = requests.post(
            proxied.url + "/xds/registry",
            data=find_documents(assertion=vihf(pki, "doctor")),
            headers={"Content-Type": "application/soap+xml", "X-SSL-Client-Cert": pem, "X-Forwarded-For": "192.0.2.7"},
            timeout=30,
        )
        assert forwarded.status_code == 200, forwarded.text
        bare = requests.post(
            proxied.url + "/xds/registry",
            data=find_documents(assertion=vihf(pki, "doctor")),
            headers={"Content-Type": "application/soap+xml"},
            timeout=30,
        )
        assert bare.status_code == 403 and b"no client certificate" in bare.content
        # Without a TLS handshake in front, the application's own checks say why a card is refused.
        other = create_test_pki(tmp_path / "other-pki")
        for certificate, reason in (
            (pki.identity("expired").certificate, b"expired on"),
            (other.identity("doctor").certificate, b"was not issued by a trusted"),
            (pki.identity("revoked").certificate, b"is revoked"),
        ):
            refused = requests.post(
                proxied.url + "/xds/registry",
                data=find_documents(assertion=vihf(pki, "doctor")),
                headers={
                    "Content-Type": "application/soap+xml",
                    "X-SSL-Client-Cert": quote(Path(certificate).read_text()),
                },
                timeout=30,
            )
            assert refused.status_code == 403 and reason in refused.content, refused.text
    finally:
        stop_secure_server(proxied)


def test_start_up_refuses_auth_without_trust(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DMP_XDS_DATA_DIR": str(tmp_path),
        "DMP_XDS_PROFILE": "ihe",
        "DMP_XDS_AUTH": "vihf",
        "DMP_XDS_PORT": str(free_port()),
    }
    for key in ("DMP_XDS_TRUST_ANCHORS", "DMP_XDS_DATABASE_URL"):
        env.pop(key, None)
    result = subprocess.run(
        [sys.executable, "-m", "dmp_xds.cli", "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0 and "DMP_XDS_TRUST_ANCHORS" in result.stderr
