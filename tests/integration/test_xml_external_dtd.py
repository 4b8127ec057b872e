"""A request whose DOCTYPE names a file on the server gets one SOAP fault whatever the file, at
once, over HTTP and over TLS without a client certificate, as a plain SOAP body and as the
root part of an MTOM message: the server opens nothing (a FIFO would hold the request until
someone writes to it), and its answer says nothing of what exists."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import soap_messages as soap
from dmp_xds.security.pki import create_test_pki
from dmp_xds.xds.xml import DOCTYPE_REFUSED
from hostile_xml import Targets, hostile_document, make_targets, release_fifo
from secure_server import SecureServer, start_secure_server, stop_secure_server
from xds_server import RunningServer, start_server, stop_server

ANSWER_SECONDS = 5.0


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # No database work is involved: the embedded SQLite database is enough.
    running = start_server(tmp_path_factory.mktemp("xxe-http"), "", {"DMP_XDS_PROFILE": "ihe"})
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    pki = create_test_pki(tmp_path_factory.mktemp("xxe-pki"))
    running = start_secure_server(tmp_path_factory.mktemp("xxe-tls"), pki, tls=True)
    yield running
    stop_secure_server(running)


@pytest.fixture
def targets(tmp_path: Path) -> Targets:
    return make_targets(tmp_path)


def _answers(url: str, targets: Targets, encoding: str, mtom: bool, verify: str | bool = True) -> dict[str, object]:
    """For each file the DOCTYPE names: (HTTP status, fault reason), or why there was none."""
    answers: dict[str, object] = {}
    for name, path in targets.all().items():
        body = hostile_document(path.as_uri(), encoding)
        content_type = soap.SOAP12
        if mtom:
            body, content_type = soap.mtom_body(body, {})
        started = time.monotonic()
        try:
            response = requests.post(
                url, data=body, headers={"Content-Type": content_type}, timeout=ANSWER_SECONDS, verify=verify
            )
        except requests.Timeout:
            release_fifo(targets.fifo)  # the server's parse waits on the FIFO: let it go
            answers[name] = f"no answer within {ANSWER_SECONDS} s"
            continue
        reply = soap.parse_response(response.status_code, response.headers.get("Content-Type", ""), response.content)
        answers[name] = (reply.status_code, reply.fault_reason)
        assert time.monotonic() - started < ANSWER_SECONDS
    return answers


ENCODINGS = ["utf-8", "utf-16-le", "utf-16-be", "utf-32-le"]


@pytest.mark.parametrize("mtom", [False, True], ids=["plain", "mtom"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_over_http(http_server: RunningServer, targets: Targets, encoding: str, mtom: bool) -> None:
    answers = _answers(http_server.registry_url, targets, encoding, mtom)
    assert set(answers.values()) == {(400, f"the request is not acceptable XML: {DOCTYPE_REFUSED}")}, answers
    assert requests.get(http_server.base_url + "/health", timeout=5).status_code == 200


@pytest.mark.parametrize("mtom", [False, True], ids=["plain", "mtom"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_over_tls_without_a_client_certificate(
    tls_server: SecureServer, targets: Targets, encoding: str, mtom: bool
) -> None:
    answers = _answers(tls_server.url + "/xds/registry", targets, encoding, mtom, verify=str(tls_server.pki.anchors))
    assert set(answers.values()) == {(400, f"the request is not acceptable XML: {DOCTYPE_REFUSED}")}, answers
