"""The real-browser harness proves itself: headless Chromium loads what dmp-xds serves over TLS,
and a card browser presents its card in the TLS handshake, to a recording TLS server that
demands one and to dmp-xds itself, whose security gate names the card's holder."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

import soap_messages as soap
from browsers import CardBrowser, screenshot, wait_for
from dmp_xds.security.pki import GeneratedPki
from dmp_xds.storage import trail as t
from dmp_xds.xds import vocabulary as v
from secure_server import PATIENT, SecureServer

HANDSHAKE_SECONDS = 10.0


@dataclass
class PeerRecorder:
    """A TLS server on 127.0.0.1 that requires a client certificate of the test PKI (OpenSSL's
    CERT_REQUIRED, nothing of dmp-xds) and records the subject of each one it is shown."""

    url: str
    subjects: list[dict[str, str]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)  # set at each handshake, good or not


def _context(pki: GeneratedPki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_certificate, pki.server_key)
    context.load_verify_locations(cafile=str(pki.anchors))
    context.load_verify_locations(cafile=str(pki.intermediates))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture
def peer_recorder(browser_pki: GeneratedPki) -> Iterator[PeerRecorder]:
    class Handler(BaseHTTPRequestHandler):
        def setup(self) -> None:
            self.request.settimeout(HANDSHAKE_SECONDS)
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                recorder.refusals.append(str(exc))
                recorder.done.set()
                raise
            super().setup()

        def do_GET(self) -> None:
            peer: Any = self.request.getpeercert()
            subject = {name: value for rdn in peer["subject"] for name, value in rdn}
            recorder.subjects.append(subject)
            recorder.done.set()
            body = f'<!doctype html><title>peer</title><p id="subject">{escape(subject["commonName"])}</p>'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a refused handshake is recorded by the handler

    server = Server(("127.0.0.1", 0), Handler)
    server.socket = _context(browser_pki).wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    recorder = PeerRecorder(f"https://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_chromium_loads_a_page_dmp_xds_serves_over_tls(
    patient_browser: WebDriver, browser_server: SecureServer, tmp_path: Path
) -> None:
    patient_browser.get(browser_server.url + "/health")
    health = json.loads(wait_for(patient_browser, "body").text)
    assert health["status"] == "ok"
    assert patient_browser.execute_script("return window.isSecureContext && location.protocol") == "https:"

    patient_browser.get(browser_server.url + "/xds/registry?wsdl")
    assert "DocumentRegistry" in patient_browser.page_source

    shot = screenshot(patient_browser, tmp_path / "shots" / "wsdl.png")
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_card_browser_presents_its_card_to_a_server_that_requires_one(
    open_card_browser: CardBrowser, browser_pki: GeneratedPki, peer_recorder: PeerRecorder
) -> None:
    doctor = browser_pki.identity("doctor")
    driver = open_card_browser("doctor", peer_recorder.url)
    driver.get(peer_recorder.url + "/")
    shown = wait_for(driver, "#subject").text
    assert peer_recorder.subjects, peer_recorder.refusals
    subject = peer_recorder.subjects[0]
    assert shown == subject["commonName"] == doctor.national_id
    assert (subject["surname"], subject["givenName"]) == (doctor.family_name, doctor.given_name)


def test_browser_without_card_fails_the_handshake_of_a_server_that_requires_one(
    patient_browser: WebDriver, peer_recorder: PeerRecorder
) -> None:
    # Chromium shows its error page, or fails the navigation itself when the server's refusal
    # comes before the page is committed (which, and with which error code, is a race of the
    # server's alert and its closing the connection): the server's record is what counts.
    try:
        patient_browser.get(peer_recorder.url + "/")
    except WebDriverException as exc:
        assert "ERR_" in str(exc)
    assert peer_recorder.done.wait(HANDSHAKE_SECONDS)
    assert peer_recorder.subjects == []
    assert any("CERTIFICATE" in refusal.upper() for refusal in peer_recorder.refusals), peer_recorder.refusals
    assert not patient_browser.find_elements(By.CSS_SELECTOR, "#subject")


# A SOAP call without VIHF, sent by the page itself: dmp-xds's gate answers why it refuses it,
# which says whether the TLS connection carried a client certificate and whose.
_POST_FROM_PAGE = """
const done = arguments[arguments.length - 1];
fetch(arguments[0], {method: "POST", headers: {"Content-Type": "application/soap+xml"}, body: arguments[1]})
  .then(r => r.text().then(text => done([r.status, text])))
  .catch(e => done([0, String(e)]));
"""


def _query_from_page(driver: WebDriver, server: SecureServer) -> tuple[int, str]:
    driver.get(server.url + "/health")
    wait_for(driver, "body")
    body = soap.adhoc_query(v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{PATIENT}'"]}).body.decode()
    status, text = driver.execute_async_script(_POST_FROM_PAGE, server.url + "/xds/registry", body)
    return int(status), str(text)


def test_dmp_xds_sees_the_card_the_browser_presents(card_browser: WebDriver, browser_server: SecureServer) -> None:
    doctor = browser_server.pki.identity("doctor")
    status, text = _query_from_page(card_browser, browser_server)
    assert status == 403, text
    assert "VIHF refused" in text and "no client certificate" not in text
    refusal = browser_server.trail().history("", limit=1)[0].event
    assert (refusal.action, refusal.outcome) == (t.AUTHENTICATE, t.DENIED)
    assert refusal.actor_id == doctor.national_id


def test_dmp_xds_sees_no_card_from_a_patient_browser(patient_browser: WebDriver, browser_server: SecureServer) -> None:
    status, text = _query_from_page(patient_browser, browser_server)
    assert status == 403, text
    assert "no client certificate" in text
    refusal = browser_server.trail().history("", limit=1)[0].event
    assert (refusal.action, refusal.outcome, refusal.actor_id) == (t.AUTHENTICATE, t.DENIED, "")
