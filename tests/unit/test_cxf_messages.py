"""The DMP's CXF-style messages (habilitations, patientsSpecific, patientCertif): requests shaped
like the DMP's examples are read, bad ones refused with a message naming what is wrong, and
responses written as the DMP writes them (qualified children, output{..., status, context})."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
import zeep
from lxml import etree
from zeep.wsdl.bindings.soap import Soap12Binding

from dmp_xds.config import resource_dir
from dmp_xds.dmp import cxf_messages as m
from dmp_xds.dmp import cxf_vocabulary as cv
from dmp_xds.security.passwords import hash_password, new_login, new_password, verify_password
from dmp_xds.services.cxf_call import perform

H, P = cv.NS_HABILITATIONS, cv.NS_PATIENTS


def body(ns: str, operation: str, children: str = "") -> etree._Element:
    return etree.fromstring(f'<{operation} xmlns="{ns}">{children}</{operation}>')


def test_actions_are_the_cxf_names_of_the_dmp() -> None:
    assert cv.action(cv.SET_AUTHORIZATION) == "urn:si-dmp-habilitations:HabilitationsEndPoint:setAuthorization"
    assert cv.response_action(cv.PATIENT_LIST) == "urn:si-dmp-patients:PatientSpecificEndPoint:patientListResponse"
    assert cv.action(cv.IDENTITY_CERTIFICATION) == (
        "urn:si-dmp-patients:PatientCertificationEndPoint:identityCertification"
    )
    assert len(set(cv.STATUSES)) == len(cv.STATUSES) and cv.STATUS_OK == "DMPOk"


def test_set_authorization_requests() -> None:
    assert m.parse_set_authorization(body(H, "setAuthorization", "<action>AJOUT</action>")) == m.SetAuthorization(
        "AJOUT", False
    )
    read = m.parse_set_authorization(
        body(H, "setAuthorization", "<action>SUPPRESSION</action><role>MEDECIN_TRAITANT</role>")
    )
    assert read == m.SetAuthorization("SUPPRESSION", True)
    with pytest.raises(m.MessageError, match="action is 'AJOUTER'; expected one of AJOUT, SUPPRESSION"):
        m.parse_set_authorization(body(H, "setAuthorization", "<action>AJOUTER</action>"))
    with pytest.raises(m.MessageError, match="action is missing"):
        m.parse_set_authorization(body(H, "setAuthorization"))
    with pytest.raises(m.MessageError, match="role is 'PATIENT'"):
        m.parse_set_authorization(body(H, "setAuthorization", "<action>AJOUT</action><role>PATIENT</role>"))
    with pytest.raises(m.MessageError, match="has no element"):
        m.parse_set_authorization(body(H, "setAuthorization", "<action>AJOUT</action><extra/>"))
    with pytest.raises(m.MessageError, match="must be"):
        m.parse_set_authorization(body(P, "setAuthorization", "<action>AJOUT</action>"))  # wrong namespace


def test_list_authorizations_modes() -> None:
    assert m.parse_list_authorizations(body(H, "listAuthorizationByPatient")).mode == "TOUTE"
    for mode in cv.MODES:
        assert m.parse_list_authorizations(body(H, "listAuthorizationByPatient", f"<mode>{mode}</mode>")).mode == mode
    with pytest.raises(m.MessageError, match="mode is 'BLOQUEE'"):
        m.parse_list_authorizations(body(H, "listAuthorizationByPatient", "<mode>BLOQUEE</mode>"))


def test_patient_list_request_as_the_dmp_example() -> None:
    read = m.parse_patient_list(
        body(P, "patientList", "<startDate>20101010202010</startDate><dateType>LASTDOC</dateType>")
    )
    assert read == m.PatientList(dt.datetime(2010, 10, 10, 20, 20, 10, tzinfo=dt.UTC), "LASTDOC", "")
    assert m.parse_patient_list(body(P, "patientList")).date_type == cv.DATE_LAST_AUTHORIZATION
    with pytest.raises(m.MessageError, match="not a date"):
        m.parse_patient_list(body(P, "patientList", "<startDate>2010-10-10</startDate>"))
    with pytest.raises(m.MessageError, match="dateType"):
        m.parse_patient_list(body(P, "patientList", "<dateType>LASTACCESS</dateType>"))


def test_patient_access_requests() -> None:
    assert m.parse_create_patient_access(
        body(P, "createPatientAccess", "<type>SMS</type><canal>0606060606</canal>")
    ) == m.CreatePatientAccess("SMS", "0606060606")
    otp = m.parse_patient_otp_update(
        body(P, "patientOTPUpdate", "<type>EMAIL</type><canal>mon.email@mail.fr</canal><action>AJOUT</action>")
    )
    assert otp == m.PatientOtpUpdate("EMAIL", "mon.email@mail.fr", "AJOUT")
    with pytest.raises(m.MessageError, match="not an e-mail address"):
        m.parse_create_patient_access(body(P, "createPatientAccess", "<type>EMAIL</type><canal>0606</canal>"))
    with pytest.raises(m.MessageError, match="not a phone number"):
        m.parse_create_patient_access(body(P, "createPatientAccess", "<type>SMS</type><canal>a@b.fr</canal>"))
    with pytest.raises(m.MessageError, match="type is 'FAX'"):
        m.parse_create_patient_access(body(P, "createPatientAccess", "<type>FAX</type><canal>0101</canal>"))
    m.parse_update_patient_access(body(P, "updatePatientAccess"))
    with pytest.raises(m.MessageError):
        m.parse_update_patient_access(body(P, "updatePatientAccess", "<login>x</login>"))


def test_responses_are_written_as_the_dmp_writes_them() -> None:
    entry = m.AuthorizationEntry(
        "899900063480",
        "MAX",
        "LIBRE",
        cv.specialties(("10", "SM26")),
        (cv.specialty_label("G15_10/SM26"),),
        dt.datetime(2021, 6, 1, 13, 58, 4, tzinfo=dt.UTC),
        dt.datetime(2021, 6, 1, 14, 6, 6, tzinfo=dt.UTC),
        "ACTIVE",
    )
    response = m.authorizations_response([entry])
    ns = {"h": H}
    assert response.tag == f"{{{H}}}listAuthorizationByPatientResponse"
    item = response.find("h:output/h:listOfAuthorizationByPatient", ns)
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
    assert item.findtext("h:codeSpeciality", namespaces=ns) == "G15_10/SM26"
    assert item.findtext("h:libSpeciality", namespaces=ns) == "Médecin - Qualifié en Médecine générale (SM)"
    assert item.findtext("h:startOfAuthorization", namespaces=ns) == "20210601135804"
    assert m.read_status(response) == ("DMPOk", "")
    listed = m.patient_list_response(
        [m.PatientEntry((("153078987658513", cv.INS_ID_TYPE),), "", "", "", True, False, None, None, None)]
    )
    data = listed.find("p:output/p:patientlistData", {"p": P})
    assert [etree.QName(c).localname for c in data] == ["patientIdentifier", "MT", "message"]
    assert listed.find("p:output/p:context", {"p": P}) is None  # TD0.4's answer has none
    access = m.access_response(cv.CREATE_PATIENT_ACCESS, "mtef3603", "cbC!bqf3")
    assert [etree.QName(c).localname for c in access[0]] == ["login", "password", "status", "context"]
    refused = m.status_response(cv.SET_AUTHORIZATION, cv.STATUS_BLOCKED, "blocked")
    assert m.read_status(refused) == ("DMPAccessDeniedBlocked", "blocked")


def test_credentials_are_made_and_kept_as_a_scrypt_hash() -> None:
    login, password = new_login(), new_password()
    assert len(login) == 8 and login[:4].isalpha() and login[4:].isdigit()
    assert len(password) == 8 and any(c.isupper() for c in password) and any(c.isdigit() for c in password)
    stored = hash_password(password)
    assert stored.startswith("scrypt$") and password not in stored
    assert verify_password(password, stored)
    assert not verify_password(password + "x", stored)
    assert not verify_password(password, "bcrypt$whatever")


def test_without_authentication_the_answer_says_so_and_nothing_runs() -> None:
    ran: list[object] = []

    def work(call: object) -> etree._Element:
        ran.append(call)
        return m.status_response(cv.SET_AUTHORIZATION, cv.STATUS_OK)

    services = SimpleNamespace(security=None)
    response = perform(services, None, cv.SET_AUTHORIZATION, "authorization.self", work)  # type: ignore[arg-type]
    status, reason = m.read_status(response)
    assert status == cv.STATUS_AUTHENTICATION_REQUIRED and "DMP_XDS_AUTH=vihf" in reason
    assert ran == []


@pytest.mark.parametrize("endpoint", list(cv.ENDPOINT_OPERATIONS))
def test_our_wsdls_name_the_dmp_operations_elements_and_actions(endpoint: str) -> None:
    files = {
        cv.HABILITATIONS_ENDPOINT: "Habilitations.wsdl",
        cv.PATIENTS_SPECIFIC_ENDPOINT: "PatientsSpecific.wsdl",
        cv.PATIENT_CERTIF_ENDPOINT: "patientCertif.wsdl",
    }
    client = zeep.Client(str(resource_dir("wsdl") / files[endpoint]))
    (service,) = client.wsdl.services.values()
    (port,) = service.ports.values()
    binding = port.binding
    assert isinstance(binding, Soap12Binding)
    assert set(binding._operations) == set(cv.ENDPOINT_OPERATIONS[endpoint])
    for name in cv.ENDPOINT_OPERATIONS[endpoint]:
        operation = binding.get(name)
        assert operation.abstract.wsa_action == cv.action(name)
        assert operation.input.body.qname == etree.QName(cv.tag(name, name))
        assert operation.output.body.qname == etree.QName(cv.tag(name, name + "Response"))


def test_responses_follow_our_schemas() -> None:
    schemas = resource_dir("schemas") / "dmp"
    habilitations = etree.XMLSchema(etree.parse(str(schemas / "Habilitations.xsd")))
    patients = etree.XMLSchema(etree.parse(str(schemas / "PatientsSpecific.xsd")))
    entry = m.AuthorizationEntry("8", "A", "B", ("G15_10",), ("Médecin",), None, None, "INTERDITE")
    for response in (
        m.authorizations_response([entry]),
        m.status_response(cv.SET_AUTHORIZATION, cv.STATUS_OK, cv.CONTEXT_ALREADY_AUTHORIZED),
    ):
        assert habilitations.validate(response), habilitations.error_log.last_error
    patient = m.PatientEntry((("1", cv.INS_ID_TYPE),), "X", "Y", "19790328", False, False, None, None, None)
    for response in (
        m.patient_list_response([patient]),
        m.access_response(cv.UPDATE_PATIENT_ACCESS, "abcd1234", "aB3!aB3!"),
        m.status_response(cv.PATIENT_OTP_UPDATE, cv.STATUS_OK, cv.CONTEXT_OTP_UPDATED),
        m.status_response(cv.IDENTITY_CERTIFICATION, cv.STATUS_SERVICE_CLOSED, cv.IDENTITY_CERTIFICATION_CLOSED),
    ):
        assert patients.validate(response), patients.error_log.last_error
