"""SOAP 1.2 envelope checks and WS-Addressing."""

from __future__ import annotations

import pytest
from lxml import etree

from dmp_xds.transport.soap.envelope import read_request, response_envelope
from dmp_xds.transport.soap.faults import WSA_ACTION_NOT_SUPPORTED, SoapFault, render_fault, sender
from dmp_xds.xds import vocabulary as v
from soap_messages import dmp_soap11_envelope, envelope


def _payload():
    return etree.Element(f"{{{v.NS_LCM}}}SubmitObjectsRequest")


def test_reads_action_message_id_and_payload():
    env, message_id = envelope(v.ACTION_ITI42, _payload(), to="http://x")
    request = read_request(etree.fromstring(env))
    assert request.action == v.ACTION_ITI42
    assert request.message_id == message_id
    assert request.to == "http://x"
    assert request.payload.tag == f"{{{v.NS_LCM}}}SubmitObjectsRequest"


def test_soap11_is_a_version_mismatch():
    env = etree.fromstring(f'<e:Envelope xmlns:e="{v.NS_SOAP11}"><e:Body><x/></e:Body></e:Envelope>')
    with pytest.raises(SoapFault) as info:
        read_request(env)
    assert info.value.code == "VersionMismatch"


def test_soap11_is_read_when_accepted():
    env, message_id = dmp_soap11_envelope(v.ACTION_ITI41, _payload())
    request = read_request(etree.fromstring(env), accept_soap11=True)
    assert request.action == v.ACTION_ITI41
    assert request.message_id == message_id
    assert request.to == ""  # the DMP's empty To is tolerated
    assert request.payload.tag == f"{{{v.NS_LCM}}}SubmitObjectsRequest"


def test_soap11_dmp_request_is_refused_unless_accepted():
    env, _ = dmp_soap11_envelope(v.ACTION_ITI41, _payload())
    with pytest.raises(SoapFault) as info:
        read_request(etree.fromstring(env))
    assert info.value.code == "VersionMismatch"


@pytest.mark.parametrize("flag", ["1", "true"])
def test_soap11_must_understand_on_an_unknown_header(flag):
    env, _ = dmp_soap11_envelope(v.ACTION_ITI41, _payload())
    root = etree.fromstring(env)
    header = root.find(f"{{{v.NS_SOAP11}}}Header")
    etree.SubElement(header, "{urn:other}Thing").set(f"{{{v.NS_SOAP11}}}mustUnderstand", flag)
    with pytest.raises(SoapFault) as info:
        read_request(root, accept_soap11=True)
    assert info.value.code == "MustUnderstand"


def test_unprefixed_must_understand_is_not_a_soap_attribute():
    for soap_ns, accept in ((v.NS_SOAP12, False), (v.NS_SOAP11, True)):
        root = etree.fromstring(
            f'<e:Envelope xmlns:e="{soap_ns}" xmlns:a="{v.NS_WSA}"><e:Header>'
            f'<a:Action mustUnderstand="true">{v.ACTION_ITI41}</a:Action>'
            f'<a:To mustUnderstand="true"/><o:Thing xmlns:o="urn:other" mustUnderstand="true"/>'
            f"</e:Header><e:Body><x/></e:Body></e:Envelope>"
        )
        assert read_request(root, accept_soap11=accept).action == v.ACTION_ITI41


def test_missing_action_is_a_sender_fault():
    env = etree.fromstring(f'<e:Envelope xmlns:e="{v.NS_SOAP12}"><e:Body><x/></e:Body></e:Envelope>')
    with pytest.raises(SoapFault) as info:
        read_request(env)
    assert info.value.code == "Sender"
    assert "Action" in info.value.reason


def test_missing_action_falls_back_to_the_http_action_where_allowed():
    # The DMP's kit calls its CXF services without WS-Addressing: the HTTP action, or the body's
    # root as the endpoint knows it.
    env = etree.fromstring(f'<e:Envelope xmlns:e="{v.NS_SOAP12}"><e:Body><x/></e:Body></e:Envelope>')
    hinted = read_request(env, without_addressing=True, action_hint="urn:hl7-org:v3:setAuthorization")
    assert hinted.action == "urn:hl7-org:v3:setAuthorization"
    assert read_request(env, without_addressing=True, roots={"x": "urn:an:action"}).action == "urn:an:action"
    with pytest.raises(SoapFault, match="no transaction this server knows"):
        read_request(env, without_addressing=True)
    with_header, _ = envelope(v.ACTION_ITI18, _payload())
    header_wins = read_request(etree.fromstring(with_header), without_addressing=True, action_hint="other")
    assert header_wins.action == v.ACTION_ITI18


def test_unknown_must_understand_header():
    env, _ = envelope(v.ACTION_ITI42, _payload())
    root = etree.fromstring(env)
    header = root.find(f"{{{v.NS_SOAP12}}}Header")
    etree.SubElement(header, "{urn:other}Thing").set(f"{{{v.NS_SOAP12}}}mustUnderstand", "true")
    with pytest.raises(SoapFault) as info:
        read_request(root)
    assert info.value.code == "MustUnderstand"


def test_body_must_hold_one_element():
    env = etree.fromstring(f'<e:Envelope xmlns:e="{v.NS_SOAP12}"><e:Body/></e:Envelope>')
    with pytest.raises(SoapFault, match="exactly one"):
        read_request(env)


def test_response_envelope_relates_to_request():
    env = response_envelope(_payload(), "urn:x:Response", "urn:uuid:1")
    ns = {"s": v.NS_SOAP12, "a": v.NS_WSA}
    assert env.xpath("s:Header/a:Action/text()", namespaces=ns) == ["urn:x:Response"]
    assert env.xpath("s:Header/a:RelatesTo/text()", namespaces=ns) == ["urn:uuid:1"]
    assert env.xpath("s:Header/a:MessageID/text()", namespaces=ns)[0].startswith("urn:uuid:")


def test_fault_rendering_has_code_subcode_and_reason():
    body = render_fault(sender("bad action", WSA_ACTION_NOT_SUPPORTED), relates_to="urn:uuid:9")
    root = etree.fromstring(body)
    ns = {"s": v.NS_SOAP12, "a": v.NS_WSA}
    assert root.xpath("//s:Code/s:Value/text()", namespaces=ns) == ["soapenv:Sender"]
    assert root.xpath("//s:Subcode/s:Value/text()", namespaces=ns) == ["wsa:ActionNotSupported"]
    assert root.xpath("//s:Reason/s:Text/text()", namespaces=ns) == ["bad action"]
    assert root.xpath("//a:RelatesTo/text()", namespaces=ns) == ["urn:uuid:9"]


def test_fault_subcode_keeps_the_conventional_prefix_of_its_namespace():
    failed = (v.NS_WSSE, "FailedAuthentication")
    root = etree.fromstring(render_fault(sender("bad card", failed)))
    value = root.find(f".//{{{v.NS_SOAP12}}}Subcode/{{{v.NS_SOAP12}}}Value")
    assert value.text == "wsse:FailedAuthentication"
    assert value.nsmap["wsse"] == v.NS_WSSE


def _without_addressing(root: str) -> etree._Element:
    return etree.fromstring(f'<e:Envelope xmlns:e="{v.NS_SOAP11}"><e:Body>{root}</e:Body></e:Envelope>')


PNR = f'<x:ProvideAndRegisterDocumentSetRequest xmlns:x="{v.NS_XDSB}"/>'
SOR = f'<l:SubmitObjectsRequest xmlns:l="{v.NS_LCM}"/>'


@pytest.mark.parametrize(
    "hint",
    ["DocumentRepository_ProvideAndRegisterDocumentSet-b", f'"{v.ACTION_ITI41}"', ""],
    ids=["wsdl-operation", "soapaction", "body-root"],
)
def test_without_ws_addressing_the_action_comes_from_the_transport_or_the_body(hint: str) -> None:
    request = read_request(_without_addressing(PNR), True, without_addressing=True, action_hint=hint)
    assert request.action == v.ACTION_ITI41


def test_without_ws_addressing_a_body_of_two_transactions_is_refused() -> None:
    with pytest.raises(SoapFault) as info:
        read_request(_without_addressing(SOR), True, without_addressing=True)
    assert v.ACTION_ITI42 in info.value.reason and v.ACTION_ITI57 in info.value.reason


def test_without_ws_addressing_the_hint_tells_iti57_from_iti42() -> None:
    hint = "DocumentRegistry_UpdateDocumentSet"
    assert read_request(_without_addressing(SOR), True, True, hint).action == v.ACTION_ITI57


def test_ihe_still_requires_ws_addressing() -> None:
    with pytest.raises(SoapFault) as info:
        read_request(_without_addressing(PNR), True, action_hint="DocumentRepository_ProvideAndRegisterDocumentSet-b")
    assert "Action header is missing" in info.value.reason
