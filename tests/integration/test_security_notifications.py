"""Emergency access is reported to the patient: a notification kept for them (read and
acknowledged with the operator's CLI until the patient's web space shows them), and an e-mail
through the configured SMTP relay (a small SMTP server of the test on 127.0.0.1)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest

from dmp_xds.security import vocabulary as sv
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.xds import vocabulary as v
from secure_server import PATIENT, SecureServer, start_secure_server, stop_secure_server, vihf
from smtp_relay import SmtpRelay
from soap_messages import SoapResponse, adhoc_query

EMAIL = "patient@example.org"
WAIT_SECONDS = 15.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(pki: GeneratedPki, relay: SmtpRelay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    running = start_secure_server(
        tmp_path_factory.mktemp("secure-notify"),
        pki,
        tls=True,
        extra={"DMP_XDS_NOTIFY_SMTP": f"smtp://127.0.0.1:{relay.port}", "DMP_XDS_NOTIFY_FROM": "dmp@test.example"},
    )
    running.cli("dmp", "create", PATIENT, "--collected-by", "accueil")
    running.cli("dmp", "grant", PATIENT, pki.identity("doctor").national_id)
    yield running
    stop_secure_server(running)


def search(server: SecureServer, pki: GeneratedPki, card: str, **changes: str) -> SoapResponse:
    query = adhoc_query(
        v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{PATIENT}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
    )
    return server.call("registry", query, vihf(pki, card, **changes), card=card)


def notifications(server: SecureServer, *options: str) -> list[str]:
    """The patient's notifications as the CLI lists them, one line each, newest first."""
    return server.cli("dmp", "notifications", PATIENT, *options).splitlines()


def test_emergency_access_is_notified_and_emailed(server: SecureServer, pki: GeneratedPki, relay: SmtpRelay) -> None:
    updated = server.cli("dmp", "update", PATIENT, "--email", EMAIL)
    assert json.loads(updated)["notification_email"] == EMAIL

    assert search(server, pki, "doctor").status_code == 200  # a normal access: nothing to tell
    assert notifications(server) == []

    emergency = search(server, pki, "pharmacist", access_mode=sv.ACCESS_EMERGENCY, access_reason="patient inconscient")
    assert emergency.status_code == 200, emergency.fault_reason
    deadline = time.monotonic() + WAIT_SECONDS
    while not relay.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(relay.messages) == 1
    assert relay.envelopes[0] == ("dmp@test.example", [EMAIL])
    mail = message_from_bytes(relay.messages[0], policy=policy.default)
    assert mail["To"] == EMAIL and "urgence" in mail["Subject"]
    text = mail.get_content()
    assert "PAUL PETIT" in text and "bris de glace" in text and "patient inconscient" in text

    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:  # the relay answered; the row is updated right after
        listed = notifications(server)
        if len(listed) == 1 and "e-mailed" in listed[0]:
            break
        time.sleep(0.05)
    (line,) = listed
    assert "[UNREAD, e-mailed" in line and "bris de glace" in line and "patient inconscient" in line
    assert "PAUL PETIT" in line

    # Acknowledged, it is no longer unread; the reading is traced.
    assert notifications(server, "--unread", "--acknowledge") == [line]
    assert notifications(server, "--unread") == []
    (read,) = notifications(server)
    assert "[read, e-mailed" in read
    assert server.last_trace().event.action == "notifications.read"


def test_centre_15_is_notified_and_a_refused_emergency_access_is_not(server: SecureServer, pki: GeneratedPki) -> None:
    before = len(notifications(server))
    # `dmp create` records centre 15 access as allowed unless told otherwise.
    assert search(server, pki, "pharmacist", access_mode=sv.ACCESS_REGULATION).status_code == 200
    listed = notifications(server)
    assert len(listed) == before + 1
    assert "centre 15" in listed[0], listed[0]
    server.cli("dmp", "update", PATIENT, "--no-emergency-access")
    denied = search(server, pki, "pharmacist", access_mode=sv.ACCESS_EMERGENCY, access_reason="coma")
    assert denied.status_code == 403
    assert len(notifications(server)) == before + 1
