"""ITI-18 over HTTP against a real server (SQLite and PostgreSQL): round trip of what ITI-42
stored, ObjectRef, errors in the AdhocQueryResponse, WS-Addressing."""

from __future__ import annotations

import copy

import pytest
from lxml import etree

import soap_messages as soap
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.ebrim.encode import encode_submit_objects_request
from factories import OTHER_PATIENT_ID, PATIENT_ID, make_submission

QUERY_RESPONSE = f"{{{v.NS_QUERY}}}AdhocQueryResponse"


@pytest.fixture(scope="module")
def server(xds_server):
    xds_server.add_patient(PATIENT_ID)
    xds_server.add_patient(OTHER_PATIENT_ID)
    return xds_server


def _status(response: soap.SoapResponse) -> str:
    assert response.payload.tag == QUERY_RESPONSE, etree.tostring(response.payload)[:500]
    return response.payload.get("status", "").rsplit(":", 1)[-1]


def _errors(response: soap.SoapResponse) -> list[tuple[str, str]]:
    return [(e.get("errorCode", ""), e.get("codeContext", "")) for e in response.payload.iter(v.TAG_REGISTRY_ERROR)]


def _objects(response: soap.SoapResponse) -> list[etree._Element]:
    object_list = response.payload.find(v.TAG_REGISTRY_OBJECT_LIST)
    return [] if object_list is None else list(object_list)


def _comparable(element: etree._Element) -> bytes:
    """An object without what the registry sets itself (status, lid, version), canonicalized."""
    element = copy.deepcopy(element)
    for attribute in ("status", "lid"):
        element.attrib.pop(attribute, None)
    for version in element.findall(v.TAG_VERSION_INFO):
        element.remove(version)
    return etree.tostring(element, method="c14n", exclusive=True)


def test_leaf_class_gives_back_what_was_registered(server) -> None:
    submission = make_submission(2, with_folder=True)
    request = encode_submit_objects_request(submission)
    sent = {e.get("id"): e for e in request.iter(v.TAG_EXTRINSIC_OBJECT, v.TAG_ASSOCIATION)}
    envelope, _ = soap.envelope(v.ACTION_ITI42, request)
    assert server.post("registry", soap.HttpRequest(envelope, soap.SOAP12, "x")).status == "Success"

    response = server.post(
        "registry",
        soap.adhoc_query(
            v.SQ_GET_SUBMISSION_SET_AND_CONTENTS, {v.P_SS_ENTRY_UUID: [f"'{submission.submission_set.entry_uuid}'"]}
        ),
    )
    assert _status(response) == "Success", _errors(response)
    assert response.header("Action") == v.ACTION_ITI18 + "Response"
    objects = _objects(response)
    kinds = [etree.QName(o).localname for o in objects]
    assert kinds == ["RegistryPackage", "RegistryPackage", "ExtrinsicObject", "ExtrinsicObject"] + ["Association"] * 7
    for obj in objects[2:]:
        assert _comparable(obj) == _comparable(sent[obj.get("id")])
        assert obj.get("status") == v.STATUS_APPROVED


def test_object_ref_and_find_documents(server) -> None:
    submission = make_submission(3)
    assert server.post("registry", soap.register(submission)).status == "Success"
    response = server.post(
        "registry",
        soap.adhoc_query(
            v.SQ_GET_DOCUMENTS,
            {v.P_DE_UNIQUE_ID: ["(" + ", ".join(f"'{d.unique_id}'" for d in submission.documents) + ")"]},
            "ObjectRef",
        ),
    )
    assert _status(response) == "Success"
    assert sorted((etree.QName(o).localname, o.get("id")) for o in _objects(response)) == sorted(
        ("ObjectRef", d.entry_uuid) for d in submission.documents
    )
    found = server.post(
        "registry",
        soap.adhoc_query(
            v.SQ_FIND_DOCUMENTS,
            {v.P_DE_PATIENT_ID: [f"'{PATIENT_ID}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]},
            "ObjectRef",
        ),
    )
    ids = {o.get("id") for o in _objects(found)}
    assert {d.entry_uuid for d in submission.documents} <= ids


def test_no_match_is_success_with_an_empty_list(server) -> None:
    response = server.post(
        "registry",
        soap.adhoc_query(
            v.SQ_FIND_DOCUMENTS,
            {v.P_DE_PATIENT_ID: ["'nobody^^^&1.2.3&ISO'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]},
        ),
    )
    assert _status(response) == "Success"
    assert _objects(response) == [] and _errors(response) == []


@pytest.mark.parametrize(
    "query_id, params, code, named",
    [
        (
            v.SQ_FIND_DOCUMENTS,
            {v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]},
            "XDSStoredQueryMissingParam",
            v.P_DE_PATIENT_ID,
        ),
        (
            v.SQ_FIND_DOCUMENTS,
            {
                v.P_DE_PATIENT_ID: [f"'{PATIENT_ID}'", f"'{OTHER_PATIENT_ID}'"],
                v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"],
            },
            "XDSStoredQueryParamNumber",
            v.P_DE_PATIENT_ID,
        ),
        (
            v.SQ_GET_DOCUMENTS,
            {v.P_DE_ENTRY_UUID: ["('urn:uuid:1')"], v.P_DE_UNIQUE_ID: ["('1.2')"]},
            "XDSStoredQueryParamNumber",
            v.P_DE_UNIQUE_ID,
        ),
        ("urn:uuid:00000000-0000-0000-0000-000000000000", {}, "XDSUnknownStoredQuery", "unknown stored query"),
        (
            v.SQ_FIND_DOCUMENTS,
            {v.P_DE_PATIENT_ID: [PATIENT_ID], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]},
            "XDSRegistryError",
            v.P_DE_PATIENT_ID,
        ),
        (
            v.SQ_FIND_DOCUMENTS,
            {
                v.P_DE_PATIENT_ID: [f"'{PATIENT_ID}'"],
                v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"],
                v.P_DE_CREATION_TIME_FROM: ["20241301"],
            },
            "XDSRegistryError",
            v.P_DE_CREATION_TIME_FROM,
        ),
        (
            v.SQ_FIND_DOCUMENTS,
            {
                v.P_DE_PATIENT_ID: [f"'{PATIENT_ID}'"],
                v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"],
                v.P_DE_CLASS_CODE: ["('11')"],
            },
            "XDSRegistryError",
            v.P_DE_CLASS_CODE,
        ),
    ],
)
def test_errors_come_back_in_a_failure_response(server, query_id, params, code, named) -> None:
    response = server.post("registry", soap.adhoc_query(query_id, params))
    assert response.status_code == 200
    assert _status(response) == "Failure"
    errors = _errors(response)
    assert [c for c, _ in errors] == [code]
    assert named in errors[0][1]
    assert _objects(response) == []


def test_result_not_single_patient_over_http(server) -> None:
    mine, theirs = make_submission(1), make_submission(1)
    for de in [*theirs.documents]:
        de.patient_id = OTHER_PATIENT_ID
    theirs.submission_set.patient_id = OTHER_PATIENT_ID
    for submission in (mine, theirs):
        assert server.post("registry", soap.register(submission)).status == "Success"
    ids = f"('{mine.documents[0].entry_uuid}', '{theirs.documents[0].entry_uuid}')"
    leaf = server.post("registry", soap.adhoc_query(v.SQ_GET_DOCUMENTS, {v.P_DE_ENTRY_UUID: [ids]}))
    assert [c for c, _ in _errors(leaf)] == ["XDSResultNotSinglePatient"]
    refs = server.post("registry", soap.adhoc_query(v.SQ_GET_DOCUMENTS, {v.P_DE_ENTRY_UUID: [ids]}, "ObjectRef"))
    assert _status(refs) == "Success" and len(_objects(refs)) == 2


def test_too_many_results_with_the_configured_limit(tmp_path_factory) -> None:
    from xds_server import start_server, stop_server

    server = start_server(
        tmp_path_factory.mktemp("xds-limit"), "", {"DMP_XDS_PROFILE": "ihe", "DMP_XDS_MAX_QUERY_RESULTS": "2"}
    )
    try:
        server.add_patient(PATIENT_ID)
        assert server.post("registry", soap.register(make_submission(3))).status == "Success"
        response = server.post(
            "registry",
            soap.adhoc_query(
                v.SQ_FIND_DOCUMENTS,
                {v.P_DE_PATIENT_ID: [f"'{PATIENT_ID}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]},
            ),
        )
        assert [c for c, _ in _errors(response)] == ["XDSTooManyResults"]
        assert _status(response) == "Failure"
    finally:
        stop_server(server)
