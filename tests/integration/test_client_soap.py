"""The zeep client against a local fake endpoint: what goes on the wire (SOAP 1.2, WS-Addressing,
MTOM for ITI-41) and what comes back (MTOM ITI-43 bytes exactly, faults, HTTP errors)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from lxml import etree
from requests_toolbelt.multipart.decoder import MultipartDecoder
from zeep.exceptions import Fault, TransportError

from dmp_xds.tools.client.soap import XdsClient, XdsClientError, encode_mtom, read_reply
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.xml import parse_bytes
from factories import ans_example

SOAP = f"{{{v.NS_SOAP12}}}"
WSA = f"{{{v.NS_WSA}}}"
RS_SUCCESS = f'<rs:RegistryResponse xmlns:rs="{v.NS_RS}" status="{v.RESPONSE_SUCCESS}"/>'
# Bytes that a careless multipart parser would damage: CR/LF at both ends, a fake boundary.
DOCUMENT = b"\r\n--MIMEBoundary_fake\r\n\x00\xff binary \r\n"


def envelope(body: str, action: str = "") -> bytes:
    return (
        f'<env:Envelope xmlns:env="{v.NS_SOAP12}" xmlns:wsa="{v.NS_WSA}"><env:Header>'
        f"<wsa:Action>{action}</wsa:Action></env:Header><env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def mtom(root: bytes, parts: dict[str, bytes]) -> tuple[str, bytes]:
    boundary = "b0undary"
    chunks = [
        f'--{boundary}\r\nContent-Type: application/xop+xml; type="application/soap+xml"\r\n'
        f"Content-ID: <root@x>\r\n\r\n".encode()
        + root
    ]
    for cid, data in parts.items():
        chunks.append(
            f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Transfer-Encoding: binary\r\nContent-ID: <{cid}>\r\n\r\n".encode()
            + data
        )
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
        f'start="<root@x>"; start-info="application/soap+xml"'
    )
    return content_type, b"".join(chunks)


@dataclass
class FakeEndpoint:
    url: str
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    reply: tuple[int, str, bytes] = (200, "application/soap+xml", envelope(RS_SUCCESS))


@pytest.fixture()
def endpoint() -> Iterator[FakeEndpoint]:
    fake = FakeEndpoint("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            fake.requests.append((self.path, dict(self.headers), body))
            status, content_type, content = fake.reply
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def client_for(endpoint: FakeEndpoint) -> XdsClient:
    return XdsClient(endpoint.url + "/xds/registry", endpoint.url + "/xds/repository", timeout=10)


def submit_objects_request() -> etree._Element:
    from dmp_xds.tools.client.metadata import build_submission_from_cda
    from dmp_xds.xds.ebrim.encode import encode_submit_objects_request

    return encode_submit_objects_request(build_submission_from_cda(ans_example("VAC_2023.01.xml")))


def test_provide_and_register_sends_mtom_with_ws_addressing(endpoint: FakeEndpoint) -> None:
    request = submit_objects_request()
    response = client_for(endpoint).provide_and_register(request, {"Document01": DOCUMENT})
    assert response.tag == v.TAG_REGISTRY_RESPONSE and response.get("status") == v.RESPONSE_SUCCESS

    ((path, headers, body),) = endpoint.requests
    assert path == "/xds/repository"
    content_type = headers["Content-Type"]
    assert content_type.startswith("multipart/related") and 'type="application/xop+xml"' in content_type
    assert f'action="{v.ACTION_ITI41}"' in content_type
    parts = MultipartDecoder(body, content_type).parts
    root = parse_bytes(parts[0].content)
    header = root.find(f"{SOAP}Header")
    assert header.findtext(f"{WSA}Action") == v.ACTION_ITI41
    assert header.findtext(f"{WSA}To") == endpoint.url + "/xds/repository"
    assert header.findtext(f"{WSA}MessageID").startswith("urn:uuid:")
    provide = root.find(f"{SOAP}Body/{{{v.NS_XDSB}}}ProvideAndRegisterDocumentSetRequest")
    sent = provide.find(v.TAG_SUBMIT_OBJECTS_REQUEST)
    assert etree.tostring(sent, method="c14n", exclusive=True) == etree.tostring(request, method="c14n", exclusive=True)
    document = provide.find(f"{{{v.NS_XDSB}}}Document")
    assert document.get("id") == "Document01"
    href = document.find(f"{{{v.NS_XOP}}}Include").get("href")
    (part,) = [p for p in parts[1:] if p.headers[b"Content-ID"].decode() == "<" + href[4:] + ">"]
    assert part.content == DOCUMENT


def test_register_and_stored_query_post_the_payload_to_the_registry(endpoint: FakeEndpoint) -> None:
    client = client_for(endpoint)
    client.register(submit_objects_request())
    endpoint.reply = (
        200,
        "application/soap+xml",
        envelope(
            f'<query:AdhocQueryResponse xmlns:query="{v.NS_QUERY}" xmlns:rim="{v.NS_RIM}" status="{v.RESPONSE_SUCCESS}">'
            "<rim:RegistryObjectList/></query:AdhocQueryResponse>"
        ),
    )
    query = etree.fromstring(
        f'<query:AdhocQueryRequest xmlns:query="{v.NS_QUERY}" xmlns:rim="{v.NS_RIM}">'
        '<query:ResponseOption returnType="LeafClass"/><rim:AdhocQuery id="urn:uuid:x"/></query:AdhocQueryRequest>'
    )
    response = client.stored_query(query)
    assert response.tag == f"{{{v.NS_QUERY}}}AdhocQueryResponse"
    (path1, headers1, body1), (path2, _, body2) = endpoint.requests
    assert path1 == path2 == "/xds/registry"
    assert headers1["Content-Type"].startswith("application/soap+xml")
    assert parse_bytes(body1).find(f"{SOAP}Header/{WSA}Action").text == v.ACTION_ITI42
    sent_query = parse_bytes(body2).find(f"{SOAP}Body")[0]
    assert sent_query.find(f"{{{v.NS_QUERY}}}ResponseOption").get("returnType") == "LeafClass"
    assert sent_query.find(f"{{{v.NS_RIM}}}AdhocQuery").get("id") == "urn:uuid:x"


def test_retrieve_returns_the_exact_bytes_of_each_part(endpoint: FakeEndpoint) -> None:
    body = (
        f'<xdsb:RetrieveDocumentSetResponse xmlns:xdsb="{v.NS_XDSB}" xmlns:xop="{v.NS_XOP}">{RS_SUCCESS}'
        "<xdsb:DocumentResponse><xdsb:RepositoryUniqueId>1.2</xdsb:RepositoryUniqueId>"
        "<xdsb:DocumentUniqueId>1.2.3</xdsb:DocumentUniqueId><xdsb:mimeType>text/plain</xdsb:mimeType>"
        '<xdsb:Document><xop:Include href="cid:doc%401"/></xdsb:Document></xdsb:DocumentResponse>'
        "<xdsb:DocumentResponse><xdsb:RepositoryUniqueId>1.2</xdsb:RepositoryUniqueId>"
        "<xdsb:DocumentUniqueId>1.2.4</xdsb:DocumentUniqueId><xdsb:mimeType>text/plain</xdsb:mimeType>"
        "<xdsb:Document>aGVs\nbG8=</xdsb:Document></xdsb:DocumentResponse>"
        "</xdsb:RetrieveDocumentSetResponse>"
    )
    content_type, content = mtom(envelope(body, v.response_action(v.ACTION_ITI43)), {"doc@1": DOCUMENT})
    endpoint.reply = (200, content_type, content)
    response, documents = client_for(endpoint).retrieve([("1.2", "1.2.3"), ("1.2", "1.2.4")])
    assert response.tag == f"{{{v.NS_XDSB}}}RetrieveDocumentSetResponse"
    assert documents == {"1.2.3": DOCUMENT, "1.2.4": b"hello"}
    sent = parse_bytes(endpoint.requests[0][2])
    assert sent.find(f"{SOAP}Header/{WSA}Action").text == v.ACTION_ITI43
    assert [e.text for e in sent.iter(f"{{{v.NS_XDSB}}}DocumentUniqueId")] == ["1.2.3", "1.2.4"]


def test_soap_fault_is_raised(endpoint: FakeEndpoint) -> None:
    fault = (
        "<env:Fault><env:Code><env:Value>env:Sender</env:Value></env:Code>"
        '<env:Reason><env:Text xml:lang="en">wrong action</env:Text></env:Reason></env:Fault>'
    )
    endpoint.reply = (400, "application/soap+xml", envelope(fault))
    with pytest.raises(Fault, match="wrong action"):
        client_for(endpoint).register(submit_objects_request())


def test_http_error_without_soap_is_a_transport_error(endpoint: FakeEndpoint) -> None:
    endpoint.reply = (503, "text/plain", b"busy")
    with pytest.raises(TransportError):
        client_for(endpoint).register(submit_objects_request())


def test_unexpected_response_element(endpoint: FakeEndpoint) -> None:
    endpoint.reply = (200, "application/soap+xml", envelope("<other/>"))
    with pytest.raises(XdsClientError):
        client_for(endpoint).register(submit_objects_request())


def test_wrong_payload_is_refused_before_sending() -> None:
    client = XdsClient("http://127.0.0.1:9/r", "http://127.0.0.1:9/p")
    with pytest.raises(ValueError):
        client.register(etree.Element("nope"))


def test_encode_mtom_then_read_reply_round_trip() -> None:
    env = parse_bytes(
        envelope(
            f'<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="{v.NS_XDSB}">'
            '<xdsb:Document id="D1"></xdsb:Document><xdsb:Document id="D2"></xdsb:Document>'
            "</xdsb:ProvideAndRegisterDocumentSetRequest>"
        )
    )
    message = encode_mtom(env, {"D1": DOCUMENT, "D2": b""}, v.ACTION_ITI41)
    reply = read_reply(200, message.content_type, message.body)
    includes = {
        d.get("id"): d.find(f"{{{v.NS_XOP}}}Include").get("href")
        for d in reply.payload.iter(f"{{{v.NS_XDSB}}}Document")
    }
    from dmp_xds.xds.xop import normalize_content_id as _content_id

    assert reply.attachments[_content_id(includes["D1"])] == DOCUMENT
    assert reply.attachments[_content_id(includes["D2"])] == b""
    with pytest.raises(ValueError):
        encode_mtom(env, {"D3": b"x"}, None)
