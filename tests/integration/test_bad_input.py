"""Bad input: each case gets a SOAP 1.2 fault or an XDS error, nothing is stored, and the
server keeps serving (a good submission right after succeeds)."""

from __future__ import annotations

import socket

import pytest
import requests
from lxml import etree

import soap_messages as soap
from dmp_xds.xds import vocabulary as v
from factories import PATIENT_ID, make_submission
from xds_server import BACKENDS, database_for, documents_for, start_server, stop_server, stored_state

LIMIT = 200_000
BODY_TIMEOUT_SECONDS = 2


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp(f"bad-{request.param}")
    running = start_server(
        data_dir,
        database_for(request),
        {
            "DMP_XDS_PROFILE": "ihe",
            "DMP_XDS_MAX_REQUEST_BYTES": str(LIMIT),
            "DMP_XDS_REQUEST_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS),
            **documents_for(request),
        },
    )
    running.add_patient(PATIENT_ID)
    yield running
    stop_server(running)


def _raw(server, body: bytes, content_type: str, endpoint: str = "repository"):
    url = server.repository_url if endpoint == "repository" else server.registry_url
    resp = requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=30)
    return resp.status_code, resp.headers.get("Content-Type", ""), resp.content


def _fault(status: int, content_type: str, body: bytes) -> soap.SoapResponse:
    assert content_type.startswith("application/soap+xml"), (status, content_type, body[:300])
    response = soap.parse_response(status, content_type, body)
    assert response.fault_code is not None, body[:500]
    assert b"Traceback" not in body and b'File "' not in body
    return response


def _submission_request(mtom: bool = True):
    submission = make_submission(1)
    for de in submission.documents:
        de.hash = de.size = de.repository_unique_id = None
    documents = {de.entry_uuid: b"document body\n" for de in submission.documents}
    return soap.provide_and_register(submission, documents, mtom=mtom)


@pytest.fixture
def unchanged(server):
    """Asserts after the test that nothing was stored and that the server still works."""
    before = stored_state(server)
    yield
    assert stored_state(server) == before
    assert requests.get(server.base_url + "/health", timeout=5).status_code == 200
    assert server.post("repository", _submission_request()).status == "Success"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><x>&lol4;</x></s:Body></s:Envelope>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><x>&xxe;</x></s:Body></s:Envelope>"""


def test_not_xml(server, unchanged):
    response = _fault(*_raw(server, b"this is not XML", soap.SOAP12))
    assert response.fault_code == "soapenv:Sender"
    assert "not acceptable XML" in response.fault_reason


def test_billion_laughs(server, unchanged):
    response = _fault(*_raw(server, BILLION_LAUGHS, soap.SOAP12))
    assert "DOCTYPE" in response.fault_reason


def test_external_entity(server, unchanged):
    status, content_type, body = _raw(server, XXE, soap.SOAP12)
    assert b"root:" not in body
    assert "DOCTYPE" in _fault(status, content_type, body).fault_reason


def test_soap11_envelope(server, unchanged):
    env = (f'<e:Envelope xmlns:e="{v.NS_SOAP11}"><e:Body><x/></e:Body></e:Envelope>').encode()
    for content_type in ("text/xml; charset=utf-8", soap.SOAP12):
        response = _fault(*_raw(server, env, content_type))
        assert response.fault_code == "soapenv:VersionMismatch"


def test_soap11_dmp_submission_under_the_ihe_profile(server, unchanged):
    submission = make_submission(1)
    for de in submission.documents:
        de.hash = de.size = de.repository_unique_id = None
    payload, parts = soap.pnr_payload(submission, {de.entry_uuid: b"document\n" for de in submission.documents}, True)
    env, _ = soap.dmp_soap11_envelope(v.ACTION_ITI41, payload)
    response = _fault(*_raw(server, *soap.mtom_body(env, parts)))
    assert response.fault_code == "soapenv:VersionMismatch"


def test_missing_mtom_part(server, unchanged):
    request = _submission_request()
    # Drop the document part: the envelope still points to it.
    boundary = request.content_type.split('boundary="')[1].split('"')[0]
    body = request.body.split(b"\r\n--" + boundary.encode() + b"\r\n")[0] + f"\r\n--{boundary}--\r\n".encode()
    response = soap.parse_response(*_raw(server, body, request.content_type))
    assert response.status == "Failure"
    assert response.error_codes == ["XDSMissingDocument"]


def test_cid_pointing_nowhere(server, unchanged):
    request = _submission_request()
    body = request.body.replace(b'href="cid:', b'href="cid:nowhere-', 1)
    response = soap.parse_response(*_raw(server, body, request.content_type))
    assert response.error_codes == ["XDSMissingDocument"]
    assert "cid:nowhere-" in response.registry_response.find(f".//{{{v.NS_RS}}}RegistryError").get("codeContext")


def test_one_mime_part_for_two_documents(server, unchanged):
    """Two Document elements naming one xop:Include part: refused, naming the part."""
    submission = make_submission(2)
    for de in submission.documents:
        de.hash = de.size = de.repository_unique_id = None
    first, second = (de.entry_uuid for de in submission.documents)
    payload, parts = soap.pnr_payload(submission, {first: b"shared body\n", second: b"other body\n"}, mtom=True)
    includes = list(payload.iter(f"{{{v.NS_XOP}}}Include"))
    shared_cid = includes[0].get("href").removeprefix("cid:")
    del parts[includes[1].get("href").removeprefix("cid:")]
    includes[1].set("href", includes[0].get("href"))
    env, _ = soap.envelope(v.ACTION_ITI41, payload)
    body, content_type = soap.mtom_body(env, parts)
    status, response_type, answer = _raw(server, body, content_type)
    assert status == 200, answer[:500]
    response = soap.parse_response(status, response_type, answer)
    assert response.status == "Failure"
    assert response.error_codes == ["XDSRepositoryMetadataError"]
    context = response.registry_response.find(f".//{{{v.NS_RS}}}RegistryError").get("codeContext")
    assert f"cid:{shared_cid}" in context and first in context and second in context


def test_mtom_without_root_part(server, unchanged):
    request = _submission_request()
    content_type = request.content_type.replace('start="<', 'start="<missing-')
    response = _fault(*_raw(server, request.body, content_type))
    assert "start" in response.fault_reason


def test_wrong_content_type(server, unchanged):
    request = _submission_request(mtom=False)
    status, content_type, body = _raw(server, request.body, "application/json")
    assert status == 415
    assert "content type" in _fault(status, content_type, body).fault_reason


def test_body_over_the_limit(server, unchanged):
    submission = make_submission(1)
    for de in submission.documents:
        de.hash = de.size = de.repository_unique_id = None
    big = {submission.documents[0].entry_uuid: b"x" * (LIMIT + 1)}
    request = soap.provide_and_register(submission, big)
    status, content_type, body = _raw(server, request.body, request.content_type)
    assert status == 413
    assert "limit" in _fault(status, content_type, body).fault_reason


def test_unknown_action(server, unchanged):
    payload = soap.pnr_payload(make_submission(1), {}, mtom=False)[0]
    env, message_id = soap.envelope("urn:ihe:iti:2007:NoSuchTransaction", payload)
    response = _fault(*_raw(server, env, soap.SOAP12))
    assert response.fault_code == "soapenv:Sender"
    assert "not supported" in response.fault_reason
    assert response.header("RelatesTo") == message_id


def test_action_sent_to_the_wrong_endpoint(server, unchanged):
    env, _ = soap.envelope(v.ACTION_ITI42, soap.pnr_payload(make_submission(1), {}, mtom=False)[0])
    response = _fault(*_raw(server, env, soap.SOAP12, endpoint="repository"))
    assert "not supported by the repository endpoint" in response.fault_reason


def test_ihe_requires_ws_addressing_whatever_the_content_type_says(server, unchanged):
    """The CI-SIS profile dispatches a request without wsa:Action (the DMP's kit); IHE does not."""
    payload = soap.pnr_payload(make_submission(1), {}, mtom=False)[0]
    env, _ = soap.envelope(v.ACTION_ITI41, payload)
    root = etree.fromstring(env)
    header = root.find(f"{{{v.NS_SOAP12}}}Header")
    header.remove(header.find(f"{{{v.NS_WSA}}}Action"))
    content_type = f'{soap.SOAP12}; action="{v.ACTION_ITI41}"'
    response = _fault(*_raw(server, etree.tostring(root), content_type))
    assert "Action header is missing" in response.fault_reason


def test_truncated_mtom_body(server, unchanged):
    request = _submission_request()
    response = _fault(*_raw(server, request.body[:-40], request.content_type))
    assert "truncated" in response.fault_reason or "malformed" in response.fault_reason


def test_body_that_never_completes_gets_408(server, unchanged):
    """A client that announces a body and stops sending gets a fault once the request timeout
    has passed, and its connection does not hold the server."""
    request = _submission_request()
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=BODY_TIMEOUT_SECONDS + 10) as sock:
        sock.sendall(
            (
                f"POST /xds/repository HTTP/1.1\r\nHost: {host}\r\nContent-Type: {request.content_type}\r\n"
                f"Content-Length: {len(request.body)}\r\n\r\n"
            ).encode("latin-1")
            + request.body[:100]
        )
        answer = b""
        while not _complete(answer):  # bounded by the socket timeout
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert b"not received in time" in body


def _complete(answer: bytes) -> bool:
    """A whole HTTP response: its headers and as many body bytes as Content-Length says."""
    head, separator, body = answer.partition(b"\r\n\r\n")
    if not separator:
        return False
    lengths = [
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    ]
    return bool(lengths) and len(body) >= lengths[0]
