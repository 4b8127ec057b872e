"""The DMP's CXF-style services at the DMP's own paths (`habilitations`, `patientsSpecific`,
`patientCertif`) on a secured server over real TLS with the test PKI, on SQLite and PostgreSQL:
each request shaped like the DMP's official example is answered like the official response
(root, action, DMPOk, content); a blocked professional is refused everything; bad input gets a
status or fault naming what is wrong, changes nothing, and leaves its trace row."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import requests
from lxml import etree
from sqlalchemy import select

from dmp_xds.dmp import cxf_vocabulary as cv
from dmp_xds.security.passwords import verify_password
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.security.vihf import security_header
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.tables import DmpPatientAccountRow
from dmp_xds.transport.serve import DMPI_SERVICES
from dmp_xds.xds import vocabulary as v
from secure_server import SecureServer, start_secure_server, stop_secure_server, vihf
from soap_messages import SoapResponse, adhoc_query, parse_response, retrieve
from xds_server import BACKENDS, database_for, documents_for

SOAP12 = "application/soap+xml"
H, P = {"h": cv.NS_HABILITATIONS}, {"p": cv.NS_PATIENTS}


def patient_id(number: int) -> str:
    return f"28405{number:08d}^^^&1.2.250.1.213.1.4.10&ISO"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureServer]:
    running = start_secure_server(
        tmp_path_factory.mktemp(f"dmpi-cxf-{request.param}"),
        pki,
        tls=True,
        database_url=database_for(request),
        extra=documents_for(request),
    )
    yield running
    stop_secure_server(running)


def cxf(
    server: SecureServer,
    operation: str,
    children: str,
    assertion: etree._Element | None,
    card: str,
    action: str | None = None,
    http_action: str = "",
    raw: bytes | None = None,
) -> SoapResponse:
    """One request as the DMP's examples send it: MessageID, empty To, ReplyTo and Action with an
    un-prefixed mustUnderstand, the VIHF in wsse:Security, the operation's element in its
    namespace (`action=""`: no Action header at all; `http_action`: the Content-Type's)."""
    ns = cv.namespace(operation)
    wsa = v.NS_WSA
    action = cv.action(operation) if action is None else action
    message = etree.fromstring(
        f'<soap:Envelope xmlns:soap="{v.NS_SOAP12}"><soap:Header>'
        f'<MessageID xmlns="{wsa}">urn:uuid:{uuid.uuid4()}</MessageID><To xmlns="{wsa}"/>'
        f'<ReplyTo mustUnderstand="true" xmlns="{wsa}"><Address>{wsa}/anonymous</Address></ReplyTo>'
        + (f'<Action mustUnderstand="true" xmlns="{wsa}">{action}</Action>' if action else "")
        + f'</soap:Header><soap:Body><{operation} xmlns="{ns}">{children}</{operation}></soap:Body></soap:Envelope>'
    )
    if assertion is not None:
        message.find(f"{{{v.NS_SOAP12}}}Header").append(security_header(assertion))
    endpoint = next(e for e, ops in cv.ENDPOINT_OPERATIONS.items() if operation in ops)
    identity = server.pki.identity(card)
    response = requests.post(
        server.url + DMPI_SERVICES + endpoint,
        data=raw if raw is not None else etree.tostring(message),
        timeout=30,
        cert=(identity.certificate, identity.key),
        verify=str(server.pki.anchors),
        headers={"Content-Type": SOAP12 + (f'; action="{http_action}"' if http_action else "")},
    )
    return parse_response(response.status_code, response.headers.get("Content-Type", ""), response.content)


def answered(response: SoapResponse, operation: str, status: str = cv.STATUS_OK) -> etree._Element:
    """The response's `output`, once checked it is the DMP's answer to `operation` with `status`."""
    assert response.status_code == 200, response.fault_reason
    assert response.payload.tag == cv.tag(operation, operation + "Response")
    assert response.header("Action") == cv.response_action(operation)
    output = response.payload.find(cv.tag(operation, "output"))
    assert output is not None
    assert output.findtext(cv.tag(operation, "status")) == status, output.findtext(cv.tag(operation, "context"))
    return output


def context(output: etree._Element) -> str:
    return output.findtext(f"{{{etree.QName(output).namespace}}}context") or ""


def listed(server: SecureServer, pki: GeneratedPki, patient: str, mode: str, card: str = "doctor") -> dict[str, str]:
    """TD1.6 by `card`: national id -> mode of each professional listed."""
    output = answered(
        cxf(server, cv.LIST_AUTHORIZATION_BY_PATIENT, f"<mode>{mode}</mode>", vihf(pki, card, patient), card),
        cv.LIST_AUTHORIZATION_BY_PATIENT,
    )
    return {
        item.findtext("h:nationalId", namespaces=H) or "": item.findtext("h:mode", namespaces=H) or ""
        for item in output.iterfind("h:listOfAuthorizationByPatient", H)
    }


def search(server: SecureServer, pki: GeneratedPki, patient: str, card: str) -> SoapResponse:
    query = adhoc_query(
        v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{patient}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
    )
    return server.call("registry", query, vihf(pki, card, patient), card=card)


def test_td03_and_td16_as_the_dmp_examples(server: SecureServer, pki: GeneratedPki) -> None:
    patient = patient_id(1)
    server.cli("dmp", "create", patient, "--collected-by", "accueil")
    doctor2 = pki.identity("doctor2").national_id
    # TD0.3 request as the example: <action>AJOUT</action>, the professional is not yet authorized.
    first = answered(
        cxf(server, cv.SET_AUTHORIZATION, "<action>AJOUT</action>", vihf(pki, "doctor2", patient), "doctor2"),
        cv.SET_AUTHORIZATION,
    )
    assert context(first) == ""
    trace = server.last_trace(patient).event
    assert (trace.action, trace.outcome, trace.actor_id) == ("authorization.self", "success", doctor2)
    # Again: the example's answer, DMPOk and "already present, nothing done".
    again = answered(
        cxf(server, cv.SET_AUTHORIZATION, "<action>AJOUT</action>", vihf(pki, "doctor2", patient), "doctor2"),
        cv.SET_AUTHORIZATION,
    )
    assert context(again) == cv.CONTEXT_ALREADY_AUTHORIZED
    # Now authorized, they search the record.
    assert search(server, pki, patient, "doctor2").status == "Success"
    # TD1.6 as the example: mode TOUTE, one professional, ACTIVE, with their names and specialty.
    output = answered(
        cxf(server, cv.LIST_AUTHORIZATION_BY_PATIENT, "<mode>TOUTE</mode>", vihf(pki, "doctor2", patient), "doctor2"),
        cv.LIST_AUTHORIZATION_BY_PATIENT,
    )
    (item,) = output.iterfind("h:listOfAuthorizationByPatient", H)
    assert [etree.QName(c).localname for c in item] == [
        "nationalId",
        "nationalIdType",
        "firstName",
        "lastName",
        "codeSpeciality",
        "libSpeciality",
        "startOfAuthorization",
        "lastActionDate",
        "mode",
    ]
    assert item.findtext("h:nationalId", namespaces=H) == doctor2
    assert item.findtext("h:nationalIdType", namespaces=H) == "1.2.250.1.71.4.2.1"
    assert (item.findtext("h:firstName", namespaces=H), item.findtext("h:lastName", namespaces=H)) == (
        "JEAN",
        "DURAND",
    )
    assert item.findtext("h:codeSpeciality", namespaces=H) == "G15_10"
    assert item.findtext("h:libSpeciality", namespaces=H) == "Médecin"
    assert len(item.findtext("h:startOfAuthorization", namespaces=H) or "") == 14
    assert item.findtext("h:mode", namespaces=H) == "ACTIVE"
    assert context(output) == ""
    # The attending-doctor role, then stepping down from it: still authorized, no longer MT.
    answered(
        cxf(
            server,
            cv.SET_AUTHORIZATION,
            "<action>AJOUT</action><role>MEDECIN_TRAITANT</role>",
            vihf(pki, "doctor2", patient),
            "doctor2",
        ),
        cv.SET_AUTHORIZATION,
    )
    output = answered(
        cxf(server, cv.LIST_AUTHORIZATION_BY_PATIENT, "", vihf(pki, "doctor2", patient), "doctor2"),
        cv.LIST_AUTHORIZATION_BY_PATIENT,
    )
    assert [e.text for e in output.iterfind("h:listOfAuthorizationByPatient/h:specificRight", H)] == [
        "MEDECIN_TRAITANT"
    ]
    answered(
        cxf(
            server,
            cv.SET_AUTHORIZATION,
            "<action>SUPPRESSION</action><role>MEDECIN_TRAITANT</role>",
            vihf(pki, "doctor2", patient),
            "doctor2",
        ),
        cv.SET_AUTHORIZATION,
    )
    assert listed(server, pki, patient, "ACTIVE", "doctor2") == {doctor2: "ACTIVE"}
    # Withdrawing: no longer let in.
    answered(
        cxf(server, cv.SET_AUTHORIZATION, "<action>SUPPRESSION</action>", vihf(pki, "doctor2", patient), "doctor2"),
        cv.SET_AUTHORIZATION,
    )
    assert search(server, pki, patient, "doctor2").status_code == 403


def test_a_blocked_professional_is_refused_until_unblocked(server: SecureServer, pki: GeneratedPki) -> None:
    patient = patient_id(2)
    doctor, doctor2 = pki.identity("doctor").national_id, pki.identity("doctor2").national_id
    server.cli("dmp", "create", patient, "--collected-by", "accueil")
    server.cli("dmp", "grant", patient, doctor)
    server.cli("dmp", "grant", patient, doctor2)
    document = server.store_document("blocked-1", patient).documents[0].unique_id or ""
    assert search(server, pki, patient, "doctor2").status == "Success"

    assert "blocked" in server.cli("dmp", "block", patient, doctor2)
    assert server.last_trace(patient).event.action == "authorization.block"
    # ITI-18 and ITI-43: refused, the block named, traced.
    refused = search(server, pki, patient, "doctor2")
    assert refused.status_code == 403 and "is blocked on the DMP" in (refused.fault_reason or "")
    trace = server.last_trace(patient).event
    assert (trace.action, trace.outcome, trace.actor_id) == ("search", "denied", doctor2)
    fetched = server.call(
        "repository", retrieve([(server.repository_id, document)]), vihf(pki, "doctor2", patient), card="doctor2"
    )
    assert fetched.status_code == 403 and "blocked" in (fetched.fault_reason or "")
    # TD0.3: no way back in on their own.
    output = answered(
        cxf(server, cv.SET_AUTHORIZATION, "<action>AJOUT</action>", vihf(pki, "doctor2", patient), "doctor2"),
        cv.SET_AUTHORIZATION,
        cv.STATUS_BLOCKED,
    )
    assert "is blocked on the DMP" in context(output)
    trace = server.last_trace(patient).event
    assert (trace.action, trace.outcome) == ("authorization.self", "denied")
    # TD1.6: INTERDITE lists them, ACTIVE does not.
    assert listed(server, pki, patient, "INTERDITE") == {doctor2: "INTERDITE"}
    assert listed(server, pki, patient, "ACTIVE") == {doctor: "ACTIVE"}
    assert listed(server, pki, patient, "TOUTE") == {doctor: "ACTIVE", doctor2: "INTERDITE"}
    # The record keeps the block among its authorizations: one list of who may and may not come in.
    kinds = {a["grantee"]: a["kind"] for a in json.loads(server.cli("dmp", "show", patient))["authorizations"]}
    assert kinds == {doctor: "professional", doctor2: "blocked"}

    assert "unblocked" in server.cli("dmp", "unblock", patient, doctor2)
    assert listed(server, pki, patient, "INTERDITE") == {}
    # Unblocking gives no authorization back: TD0.3 does, then the search works again.
    assert search(server, pki, patient, "doctor2").status_code == 403
    answered(
        cxf(server, cv.SET_AUTHORIZATION, "<action>AJOUT</action>", vihf(pki, "doctor2", patient), "doctor2"),
        cv.SET_AUTHORIZATION,
    )
    assert search(server, pki, patient, "doctor2").status == "Success"


def test_td04_lists_the_dmps_the_caller_is_authorized_on(server: SecureServer, pki: GeneratedPki) -> None:
    mine, other = patient_id(3), patient_id(4)
    nurse = pki.identity("nurse").national_id
    server.cli("dmp", "create", mine, "--collected-by", "accueil")
    server.cli("dmp", "create", other, "--collected-by", "accueil")
    server.cli("dmp", "grant", mine, nurse)
    server.store_document("listed-1", mine)
    assert search(server, pki, mine, "nurse").status == "Success"  # the nurse's last access
    # The example's request: a startDate and dateType LASTDOC.
    output = answered(
        cxf(
            server,
            cv.PATIENT_LIST,
            "<startDate>20101010202010</startDate><dateType>LASTDOC</dateType>",
            vihf(pki, "nurse", mine),
            "nurse",
        ),
        cv.PATIENT_LIST,
    )
    (data,) = output.iterfind("p:patientlistData", P)
    assert data.findtext("p:patientIdentifier/p:nationalId", namespaces=P) == mine.split("^")[0]
    assert data.findtext("p:patientIdentifier/p:nationalIdType", namespaces=P) == "1.2.250.1.213.1.4.10"
    assert (data.findtext("p:MT", namespaces=P), data.findtext("p:message", namespaces=P)) == ("false", "false")
    assert len(data.findtext("p:lastAddDate", namespaces=P) or "") == 14
    assert len(data.findtext("p:lastAccessDate", namespaces=P) or "") == 14
    assert output.find("p:context", P) is None
    assert server.last_trace(mine).event.action == "dmp.list"
    # Nothing since a date to come; psOwnerId of someone else refused.
    none = answered(
        cxf(
            server,
            cv.PATIENT_LIST,
            "<startDate>29991231000000</startDate><dateType>LASTAUTORIZATION</dateType>",
            vihf(pki, "nurse", mine),
            "nurse",
        ),
        cv.PATIENT_LIST,
    )
    assert list(none.iterfind("p:patientlistData", P)) == []
    refused = answered(
        cxf(server, cv.PATIENT_LIST, "<psOwnerId>899999999999</psOwnerId>", vihf(pki, "nurse", mine), "nurse"),
        cv.PATIENT_LIST,
        cv.STATUS_ACCESS_DENIED,
    )
    assert "psOwnerId" in context(refused)


def test_td15_patient_web_account(server: SecureServer, pki: GeneratedPki) -> None:
    patient = patient_id(5)
    server.cli("dmp", "create", patient, "--collected-by", "accueil")
    server.cli("dmp", "grant", patient, pki.identity("doctor").national_id)
    created = answered(
        cxf(
            server,
            cv.CREATE_PATIENT_ACCESS,
            "<type>SMS</type><canal>0606060606</canal>",
            vihf(pki, "doctor", patient),
            "doctor",
        ),
        cv.CREATE_PATIENT_ACCESS,
    )
    assert [etree.QName(c).localname for c in created] == ["login", "password", "status", "context"]
    login, password = created.findtext("p:login", namespaces=P), created.findtext("p:password", namespaces=P)
    assert login and password and len(password) == 8
    engine = create_engine_for(server.engine_url())
    try:
        with engine.connect() as connection:
            row = connection.execute(select(DmpPatientAccountRow.__table__)).one()
    finally:
        engine.dispose()
    assert row.login == login and password not in row.password_hash and verify_password(password, row.password_hash)
    assert row.channels == [{"type": "SMS", "canal": "0606060606"}]
    assert server.last_trace(patient).event.action == "patient-access.create"
    # A second account: refused, nothing changed.
    answered(
        cxf(
            server,
            cv.CREATE_PATIENT_ACCESS,
            "<type>SMS</type><canal>0707070707</canal>",
            vihf(pki, "doctor", patient),
            "doctor",
        ),
        cv.CREATE_PATIENT_ACCESS,
        cv.STATUS_ACCESS_EXISTS,
    )
    # TD1.5b as the example: an EMAIL channel added.
    otp = answered(
        cxf(
            server,
            cv.PATIENT_OTP_UPDATE,
            "<type>EMAIL</type><canal>mon.email@mail.fr</canal><action>AJOUT</action>",
            vihf(pki, "doctor", patient),
            "doctor",
        ),
        cv.PATIENT_OTP_UPDATE,
    )
    assert context(otp) == cv.CONTEXT_OTP_UPDATED
    # TD1.5d: new credentials, the same login.
    updated = answered(
        cxf(server, cv.UPDATE_PATIENT_ACCESS, "", vihf(pki, "doctor", patient), "doctor"), cv.UPDATE_PATIENT_ACCESS
    )
    assert updated.findtext("p:login", namespaces=P) == login
    new_password = updated.findtext("p:password", namespaces=P) or ""
    engine = create_engine_for(server.engine_url())
    try:
        with engine.connect() as connection:
            row = connection.execute(select(DmpPatientAccountRow.__table__)).one()
    finally:
        engine.dispose()
    assert verify_password(new_password, row.password_hash) and not verify_password(password, row.password_hash)
    assert row.channels == [{"type": "SMS", "canal": "0606060606"}, {"type": "EMAIL", "canal": "mon.email@mail.fr"}]
    # An unauthorized professional may not touch it.
    answered(
        cxf(server, cv.UPDATE_PATIENT_ACCESS, "", vihf(pki, "doctor2", patient), "doctor2"),
        cv.UPDATE_PATIENT_ACCESS,
        cv.STATUS_ACCESS_DENIED,
    )
    assert server.last_trace(patient).event.outcome == "denied"


def test_td00_is_closed(server: SecureServer, pki: GeneratedPki) -> None:
    output = answered(
        cxf(
            server,
            cv.IDENTITY_CERTIFICATION,
            "<nirOD>1790328123456</nirOD><dateNaissance>19790328</dateNaissance><rangNaissance>1</rangNaissance>",
            vihf(pki, "doctor", patient_id(6)),
            "doctor",
        ),
        cv.IDENTITY_CERTIFICATION,
        cv.STATUS_SERVICE_CLOSED,
    )
    assert "30/09/2023" in context(output) and "INSi" in context(output)


def test_without_ws_addressing_or_with_the_wsdl_soap_action(server: SecureServer, pki: GeneratedPki) -> None:
    patient = patient_id(7)
    server.cli("dmp", "create", patient, "--collected-by", "accueil")
    # The DMP's kit: no WS-Addressing, the action in the Content-Type.
    answered(
        cxf(
            server,
            cv.SET_AUTHORIZATION,
            "<action>AJOUT</action>",
            vihf(pki, "doctor", patient),
            "doctor",
            action="",
            http_action=cv.action(cv.SET_AUTHORIZATION),
        ),
        cv.SET_AUTHORIZATION,
    )
    # No action anywhere: the body says which operation.
    answered(
        cxf(server, cv.LIST_AUTHORIZATION_BY_PATIENT, "", vihf(pki, "doctor", patient), "doctor", action=""),
        cv.LIST_AUTHORIZATION_BY_PATIENT,
    )
    # The Habilitations WSDL's soapAction as the action.
    answered(
        cxf(
            server,
            cv.SET_AUTHORIZATION,
            "<action>AJOUT</action>",
            vihf(pki, "doctor", patient),
            "doctor",
            action="urn:hl7-org:v3:setAuthorization",
        ),
        cv.SET_AUTHORIZATION,
    )


def test_bad_input_is_answered_and_changes_nothing(server: SecureServer, pki: GeneratedPki) -> None:
    patient, stranger = patient_id(8), patient_id(9)
    doctor2 = pki.identity("doctor2").national_id
    server.cli("dmp", "create", patient, "--collected-by", "accueil")
    server.cli("dmp", "create", stranger, "--collected-by", "accueil")
    server.cli("dmp", "grant", patient, doctor2)
    # An unknown action: a WS-Addressing fault naming the supported ones.
    unknown = cxf(
        server,
        cv.SET_AUTHORIZATION,
        "<action>AJOUT</action>",
        vihf(pki, "doctor2", patient),
        "doctor2",
        action=v.ACTION_ITI18,
    )
    assert unknown.status_code == 400 and "not supported by the habilitations endpoint" in (unknown.fault_reason or "")
    # An unknown mode or action value: DMPInvalidRequest naming the allowed values, traced.
    bad_mode = answered(
        cxf(server, cv.LIST_AUTHORIZATION_BY_PATIENT, "<mode>BLOQUEE</mode>", vihf(pki, "doctor2", patient), "doctor2"),
        cv.LIST_AUTHORIZATION_BY_PATIENT,
        cv.STATUS_INVALID_REQUEST,
    )
    assert "TOUTE, ACTIVE, INTERDITE" in context(bad_mode)
    trace = server.last_trace(patient).event
    assert (trace.action, trace.outcome) == ("authorization.read", "failure") and "BLOQUEE" in trace.detail
    answered(
        cxf(server, cv.SET_AUTHORIZATION, "<action>SUPPRIMER</action>", vihf(pki, "doctor2", patient), "doctor2"),
        cv.SET_AUTHORIZATION,
        cv.STATUS_INVALID_REQUEST,
    )
    assert listed(server, pki, patient, "TOUTE", "doctor2") == {doctor2: "ACTIVE"}  # nothing changed
    # Not XML at all: a SOAP fault.
    malformed = cxf(server, cv.SET_AUTHORIZATION, "", vihf(pki, "doctor2", patient), "doctor2", raw=b"<soap:Envelope")
    assert malformed.status_code == 400 and malformed.fault_reason
    # A token about another patient: that record does not let them in; refused, traced there.
    other = answered(
        cxf(server, cv.LIST_AUTHORIZATION_BY_PATIENT, "", vihf(pki, "doctor2", stranger), "doctor2"),
        cv.LIST_AUTHORIZATION_BY_PATIENT,
        cv.STATUS_ACCESS_DENIED,
    )
    assert "not authorized" in context(other)
    trace = server.last_trace(stranger).event
    assert (trace.action, trace.outcome, trace.actor_id) == ("authorization.read", "denied", doctor2)
    # A patient without DMP: DMPNotFound.
    answered(
        cxf(server, cv.SET_AUTHORIZATION, "<action>AJOUT</action>", vihf(pki, "doctor2", patient_id(10)), "doctor2"),
        cv.SET_AUTHORIZATION,
        cv.STATUS_NOT_FOUND,
    )


def test_the_wsdls_are_served_at_the_dmp_paths(server: SecureServer) -> None:
    for endpoint, operations in cv.ENDPOINT_OPERATIONS.items():
        response = requests.get(
            server.url + DMPI_SERVICES + endpoint + "?wsdl", timeout=30, verify=str(server.pki.anchors)
        )
        assert response.status_code == 200
        wsdl = etree.fromstring(response.content)
        names = {
            op.get("name")
            for op in wsdl.iterfind(
                "{http://schemas.xmlsoap.org/wsdl/}portType/{http://schemas.xmlsoap.org/wsdl/}operation"
            )
        }
        assert names == set(operations)
        location = wsdl.find(".//{http://www.w3.org/2001/XMLSchema}import")
        assert location is not None
        schema = requests.get(
            server.url + DMPI_SERVICES + location.get("schemaLocation", ""), timeout=30, verify=str(server.pki.anchors)
        )
        assert schema.status_code == 200 and b"targetNamespace" in schema.content


def test_the_operator_blocks_and_unblocks_on_the_patients_request(server: SecureServer, pki: GeneratedPki) -> None:
    """Blocking is the patient's (their web space; until then the operator's CLI on their request):
    it revokes the professional's authorizations, blocking twice changes nothing, and unblocking
    lifts that one block only."""
    patient = patient_id(11)
    doctor2, nurse = (pki.identity(n).national_id for n in ("doctor2", "nurse"))
    server.cli("dmp", "create", patient, "--collected-by", "accueil")
    for professional in ("doctor", "doctor2", "nurse"):  # the doctor lists them (TD1.6)
        server.cli("dmp", "grant", patient, pki.identity(professional).national_id)
    assert search(server, pki, patient, "nurse").status == "Success"

    assert "(1 authorization(s) revoked)" in server.cli("dmp", "block", patient, nurse)
    assert "was already blocked" in server.cli("dmp", "block", patient, nurse)
    trace = server.last_trace(patient).event
    assert (trace.action, trace.actor_id) == ("authorization.block", "operator") and "nothing done" in trace.detail
    assert listed(server, pki, patient, "INTERDITE") == {nurse: "INTERDITE"}
    assert search(server, pki, patient, "nurse").status_code == 403
    server.cli("dmp", "block", patient, doctor2)
    assert "unblocked" in server.cli("dmp", "unblock", patient, nurse)
    assert "was not blocked" in server.cli("dmp", "unblock", patient, nurse)
    assert listed(server, pki, patient, "INTERDITE") == {doctor2: "INTERDITE"}
