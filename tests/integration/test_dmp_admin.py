"""The DMP administration endpoint (/dmp/admin) on a secured server over real TLS with the test
PKI, on SQLite and PostgreSQL: the patient runs their record, professionals get only what the
policy gives them, every request leaves one trace row, destruction erases everything but the
trace, and zeep talks to the published WSDL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree
from sqlalchemy import func, select
from zeep.transports import Transport
from zeep.wsa import WsAddressingPlugin

from dmp_xds.dmp import vocabulary as dv
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.security.vihf import security_header
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.tables import DocumentEntryRow, RepositoryDocumentRow, SubmissionSetRow
from dmp_xds.xds import vocabulary as v
from factories import make_document_entry, make_submission, make_submission_set
from secure_server import SecureServer, patient_vihf, start_secure_server, stop_secure_server, vihf
from soap_messages import SoapResponse, adhoc_query, envelope, mtom_body, pnr_payload
from xds_server import BACKENDS, database_for

SOAP12 = "application/soap+xml"


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
        tmp_path_factory.mktemp(f"dmp-admin-{request.param}"), pki, tls=True, database_url=database_for(request)
    )
    yield running
    stop_secure_server(running)


def admin(
    server: SecureServer, operation: str, body: str, assertion: etree._Element | None, card: str = "patient-portal"
) -> SoapResponse:
    return server.admin(operation, body, assertion, card)


def create_body(patient: str, emergency: bool = True) -> str:
    return (
        f"<PatientId>{patient}</PatientId><Consent><CollectedBy>accueil CH</CollectedBy>"
        f"<CollectedAt>2026-01-15T09:30:00Z</CollectedAt></Consent>"
        f"<EmergencyAccessAllowed>{str(emergency).lower()}</EmergencyAccessAllowed>"
        "<RegulationAccessAllowed>false</RegulationAccessAllowed>"
    )


def grant_body(patient: str, national_id: str, attending: bool = False) -> str:
    return (
        f"<PatientId>{patient}</PatientId><Grantee><Professional><NationalId>{national_id}</NationalId>"
        f"<AttendingDoctor>{str(attending).lower()}</AttendingDoctor></Professional></Grantee>"
    )


def texts(response: SoapResponse, path: str) -> list[str]:
    return [e.text or "" for e in response.payload.iterfind(path, {"d": dv.NS_DMP_ADMIN})]


def ok(response: SoapResponse, operation: str) -> SoapResponse:
    assert response.status_code == 200, response.fault_reason
    assert response.payload.tag == dv.response_tag(operation)
    assert response.header("Action") == dv.action(operation) + "Response"
    return response


def subcode(response: SoapResponse) -> str:
    return response.payload.findtext(f".//{{{v.NS_SOAP12}}}Subcode/{{{v.NS_SOAP12}}}Value") or ""


def test_patient_creates_closes_reopens_and_reads_history(server: SecureServer, pki: GeneratedPki) -> None:
    patient = patient_id(1)
    created = ok(
        admin(server, dv.CREATE_DMP, create_body(patient, emergency=False), patient_vihf(pki, patient)), dv.CREATE_DMP
    )
    assert texts(created, "d:Dmp/d:Status") == ["open"]
    assert texts(created, "d:Dmp/d:Consent/d:CollectedBy") == ["accueil CH"]
    assert texts(created, "d:Dmp/d:EmergencyAccessAllowed") == ["false"]
    updated = ok(
        admin(
            server,
            dv.UPDATE_DMP,
            f"<PatientId>{patient}</PatientId><EmergencyAccessAllowed>true</EmergencyAccessAllowed>",
            patient_vihf(pki, patient),
        ),
        dv.UPDATE_DMP,
    )
    assert texts(updated, "d:Dmp/d:EmergencyAccessAllowed") == ["true"]
    closed = ok(
        admin(
            server,
            dv.CLOSE_DMP,
            f"<PatientId>{patient}</PatientId><Reason>plus de suivi</Reason>",
            patient_vihf(pki, patient),
        ),
        dv.CLOSE_DMP,
    )
    assert texts(closed, "d:Dmp/d:Status") == ["closed"] and texts(closed, "d:Dmp/d:ClosedAt")
    status = ok(
        admin(server, dv.GET_DMP_STATUS, f"<PatientId>{patient}</PatientId>", patient_vihf(pki, patient)),
        dv.GET_DMP_STATUS,
    )
    assert texts(status, "d:Dmp/d:StatusReason") == ["plus de suivi"]
    again = admin(server, dv.CLOSE_DMP, f"<PatientId>{patient}</PatientId>", patient_vihf(pki, patient))
    assert again.status_code == 400 and subcode(again) == "dmp:InvalidState" and "already closed" in again.fault_reason
    reopened = ok(
        admin(server, dv.REOPEN_DMP, f"<PatientId>{patient}</PatientId>", patient_vihf(pki, patient)), dv.REOPEN_DMP
    )
    assert texts(reopened, "d:Dmp/d:Status") == ["open"] and not texts(reopened, "d:Dmp/d:ClosedAt")

    history = ok(
        admin(server, dv.GET_ACCESS_HISTORY, f"<PatientId>{patient}</PatientId>", patient_vihf(pki, patient)),
        dv.GET_ACCESS_HISTORY,
    )
    assert texts(history, "d:Entry/d:Action") == [
        "dmp.reopen",
        "dmp.close",
        "dmp.read",
        "dmp.close",
        "dmp.update",
        "dmp.create",
    ]
    assert texts(history, "d:Entry/d:Outcome") == ["success", "failure", "success", "success", "success", "success"]
    assert set(texts(history, "d:Entry/d:Actor/d:Id")) == {patient}
    assert set(texts(history, "d:Entry/d:Emergency")) == {"false"}
    # The same history on the command line, with the history read itself on top.
    lines = [json.loads(line) for line in server.cli("audit", "history", patient, "--json").splitlines()]
    assert [line["action"] for line in lines] == [
        "history.read",
        "dmp.reopen",
        "dmp.close",
        "dmp.read",
        "dmp.close",
        "dmp.update",
        "dmp.create",
    ]
    assert "consent collected by accueil CH" in lines[-1]["detail"]


def test_authorized_professional_may_not_grant_destroy_or_read_history(server: SecureServer, pki: GeneratedPki) -> None:
    patient = patient_id(2)
    doctor = pki.identity("doctor").national_id
    ok(admin(server, dv.CREATE_DMP, create_body(patient), patient_vihf(pki, patient)), dv.CREATE_DMP)
    ok(
        admin(server, dv.GRANT_AUTHORIZATION, grant_body(patient, doctor), patient_vihf(pki, patient)),
        dv.GRANT_AUTHORIZATION,
    )
    ok(
        admin(
            server,
            dv.GRANT_AUTHORIZATION,
            f"<PatientId>{patient}</PatientId><Grantee><Establishment><StructureId>"
            f"{pki.identity('hospital').structure_id}</StructureId><StayReference>"
            "sejour 7</StayReference></Establishment></Grantee>",
            patient_vihf(pki, patient),
        ),
        dv.GRANT_AUTHORIZATION,
    )
    for operation, body in [
        (dv.GRANT_AUTHORIZATION, grant_body(patient, pki.identity("doctor2").national_id)),
        (
            dv.REVOKE_AUTHORIZATION,
            f"<PatientId>{patient}</PatientId><Grantee><ProfessionalId>{doctor}</ProfessionalId></Grantee>",
        ),
        (dv.DESTROY_DMP, f"<PatientId>{patient}</PatientId><PatientRequest>x</PatientRequest>"),
        (dv.GET_ACCESS_HISTORY, f"<PatientId>{patient}</PatientId>"),
    ]:
        refused = admin(server, operation, body, vihf(pki, "doctor", patient), card="doctor")
        assert refused.status_code == 403, (operation, refused.fault_reason)
        assert subcode(refused) == "dmp:AccessDenied" and "only the patient" in (refused.fault_reason or "")
    # The doctor learns the record's state and the authorizations that let them in (their own, their
    # hospital's care team), not whom else the patient trusts.
    ok(
        admin(
            server,
            dv.GRANT_AUTHORIZATION,
            grant_body(patient, pki.identity("pharmacist").national_id),
            patient_vihf(pki, patient),
        ),
        dv.GRANT_AUTHORIZATION,
    )
    status = ok(
        admin(
            server, dv.GET_DMP_STATUS, f"<PatientId>{patient}</PatientId>", vihf(pki, "doctor", patient), card="doctor"
        ),
        dv.GET_DMP_STATUS,
    )
    assert texts(status, "d:Dmp/d:Authorization/d:Grantee") == [doctor, pki.identity("hospital").structure_id]
    # A professional without authorization learns nothing.
    stranger = admin(
        server, dv.GET_DMP_STATUS, f"<PatientId>{patient}</PatientId>", vihf(pki, "doctor2", patient), card="doctor2"
    )
    assert stranger.status_code == 403 and "has not authorized" in (stranger.fault_reason or "")
    # But may close it on the patient's behalf once authorized: the policy's choice, traced.
    closed = ok(
        admin(server, dv.CLOSE_DMP, f"<PatientId>{patient}</PatientId>", vihf(pki, "doctor", patient), card="doctor"),
        dv.CLOSE_DMP,
    )
    assert texts(closed, "d:Dmp/d:Status") == ["closed"]
    trail = server.trail().history(patient)
    denied = [e for e in trail if e.event.outcome == "denied"]
    assert [e.event.action for e in denied] == [
        "dmp.read",
        "history.read",
        "dmp.destroy",
        "authorization.revoke",
        "authorization.grant",
    ]
    assert {e.event.actor_id for e in denied[1:]} == {doctor} and denied[0].event.actor_id != doctor
    assert trail[0].event.action == "dmp.close" and trail[0].event.actor_id == doctor


def test_grant_renew_revoke_drive_the_xds_endpoints(server: SecureServer, pki: GeneratedPki) -> None:
    patient = patient_id(3)
    doctor2 = pki.identity("doctor2").national_id
    ok(admin(server, dv.CREATE_DMP, create_body(patient), patient_vihf(pki, patient)), dv.CREATE_DMP)

    def search() -> int:
        query = adhoc_query(
            v.SQ_FIND_DOCUMENTS,
            {"$XDSDocumentEntryPatientId": [f"'{patient}'"], "$XDSDocumentEntryStatus": [f"('{v.STATUS_APPROVED}')"]},
        )
        message = etree.fromstring(query.body)
        message.find(f"{{{v.NS_SOAP12}}}Header").append(security_header(vihf(pki, "doctor2", patient)))
        identity = pki.identity("doctor2")
        return requests.post(
            server.url + "/xds/registry",
            data=etree.tostring(message),
            timeout=30,
            cert=(identity.certificate, identity.key),
            verify=str(pki.anchors),
            headers={"Content-Type": SOAP12},
        ).status_code

    never = admin(server, dv.RENEW_AUTHORIZATION, grant_body(patient, doctor2), patient_vihf(pki, patient))
    assert never.status_code == 400 and subcode(never) == "dmp:InvalidRequest" and "to renew" in never.fault_reason
    assert search() == 403
    granted = ok(
        admin(server, dv.GRANT_AUTHORIZATION, grant_body(patient, doctor2, attending=True), patient_vihf(pki, patient)),
        dv.GRANT_AUTHORIZATION,
    )
    assert texts(granted, "d:Authorization/d:Kind") == ["attending"]
    assert texts(granted, "d:Authorization/d:Active") == ["true"]
    assert search() == 200
    renewed = ok(
        admin(server, dv.RENEW_AUTHORIZATION, grant_body(patient, doctor2, attending=True), patient_vihf(pki, patient)),
        dv.RENEW_AUTHORIZATION,
    )
    assert texts(renewed, "d:Authorization/d:ExpiresAt")[0] >= texts(granted, "d:Authorization/d:ExpiresAt")[0]
    revoked = ok(
        admin(
            server,
            dv.REVOKE_AUTHORIZATION,
            f"<PatientId>{patient}</PatientId><Grantee><ProfessionalId>{doctor2}</ProfessionalId></Grantee>",
            patient_vihf(pki, patient),
        ),
        dv.REVOKE_AUTHORIZATION,
    )
    assert texts(revoked, "d:Revoked") == ["1"]
    assert search() == 403
    shown = json.loads(server.cli("dmp", "show", patient))
    assert shown["authorizations"] == []


def test_operator_and_patient_share_one_record_and_one_history(server: SecureServer, pki: GeneratedPki) -> None:
    patient = patient_id(4)
    server.cli("dmp", "create", patient, "--collected-by", "guichet")
    server.cli("dmp", "grant", patient, pki.identity("nurse").national_id)
    created_twice = admin(server, dv.CREATE_DMP, create_body(patient), patient_vihf(pki, patient))
    assert created_twice.status_code == 400 and subcode(created_twice) == "dmp:InvalidState"
    status = ok(
        admin(server, dv.GET_DMP_STATUS, f"<PatientId>{patient}</PatientId>", patient_vihf(pki, patient)),
        dv.GET_DMP_STATUS,
    )
    assert texts(status, "d:Dmp/d:Consent/d:CollectedBy") == ["guichet"]
    assert texts(status, "d:Dmp/d:Authorization/d:Grantee") == [pki.identity("nurse").national_id]
    ok(
        admin(
            server,
            dv.UPDATE_DMP,
            f"<PatientId>{patient}</PatientId><RegulationAccessAllowed>true</RegulationAccessAllowed>",
            patient_vihf(pki, patient),
        ),
        dv.UPDATE_DMP,
    )
    assert json.loads(server.cli("dmp", "show", patient))["regulation_access_allowed"] is True
    history = ok(
        admin(
            server,
            dv.GET_ACCESS_HISTORY,
            f"<PatientId>{patient}</PatientId><Limit>10</Limit>",
            patient_vihf(pki, patient),
        ),
        dv.GET_ACCESS_HISTORY,
    )
    assert list(zip(texts(history, "d:Entry/d:Action"), texts(history, "d:Entry/d:Actor/d:Id"), strict=True)) == [
        ("dmp.read", "operator"),
        ("dmp.update", patient),
        ("dmp.read", patient),
        ("dmp.create", patient),
        ("authorization.grant", "operator"),
        ("dmp.create", "operator"),
    ]


def test_destroy_erases_documents_and_metadata_and_traces_the_request(server: SecureServer, pki: GeneratedPki) -> None:
    patient = patient_id(5)
    ok(admin(server, dv.CREATE_DMP, create_body(patient), patient_vihf(pki, patient)), dv.CREATE_DMP)
    submission = make_submission(
        2,
        submission_set=make_submission_set(patient_id=patient),
        documents=[make_document_entry(patient_id=patient) for _ in range(2)],
    )
    for entry in submission.documents:
        entry.hash = entry.size = entry.repository_unique_id = None
    payload, parts = pnr_payload(
        submission, {de.entry_uuid: b"compte rendu " + de.unique_id.encode() for de in submission.documents}, mtom=True
    )
    envelope_bytes, _ = envelope(v.ACTION_ITI41, payload)
    signed = etree.fromstring(envelope_bytes)
    signed.find(f"{{{v.NS_SOAP12}}}Header").append(security_header(patient_vihf(pki, patient)))
    body, content_type = mtom_body(etree.tostring(signed), parts)
    portal = pki.identity("patient-portal")
    submitted = requests.post(
        server.url + "/xds/repository",
        data=body,
        timeout=30,
        cert=(portal.certificate, portal.key),
        verify=str(pki.anchors),
        headers={"Content-Type": content_type},
    )
    assert submitted.status_code == 200 and b"ResponseStatusType:Success" in submitted.content, submitted.text
    engine = create_engine_for(server.engine_url())
    entries, repository = DocumentEntryRow.__table__, RepositoryDocumentRow.__table__
    with engine.connect() as connection:
        paths = (
            connection.execute(
                select(repository.c.path)
                .join(entries, entries.c.unique_id == repository.c.unique_id)
                .where(entries.c.patient_id == patient)
            )
            .scalars()
            .all()
        )
    assert len(paths) == 2 and all(Path(p).is_file() or (server.data_dir / "documents" / p).is_file() for p in paths)

    destroyed = ok(
        admin(
            server,
            dv.DESTROY_DMP,
            f"<PatientId>{patient}</PatientId><PatientRequest>courrier du 2026-05-30</PatientRequest>",
            patient_vihf(pki, patient),
        ),
        dv.DESTROY_DMP,
    )
    unique_ids = sorted(de.unique_id for de in submission.documents)
    assert texts(destroyed, "d:ErasedDocumentUniqueId") == unique_ids
    assert int(texts(destroyed, "d:RegistryObjectsErased")[0]) >= 3  # two entries and their submission set
    with engine.connect() as connection:
        for table in (entries, SubmissionSetRow.__table__):
            assert (
                connection.execute(
                    select(func.count()).select_from(table).where(table.c.patient_id == patient)
                ).scalar()
                == 0
            )
        assert (
            connection.execute(
                select(func.count()).select_from(repository).where(repository.c.unique_id.in_(unique_ids))
            ).scalar()
            == 0
        )
    engine.dispose()
    assert not any(Path(p).is_file() or (server.data_dir / "documents" / p).is_file() for p in paths)
    gone = admin(server, dv.GET_DMP_STATUS, f"<PatientId>{patient}</PatientId>", patient_vihf(pki, patient))
    assert gone.status_code == 400 and subcode(gone) == "dmp:UnknownDmp"
    trace = server.trail().history(patient)
    assert [e.event.action for e in trace[:2]] == ["dmp.read", "dmp.destroy"]
    destruction = trace[1].event
    assert sorted(destruction.documents) == unique_ids and "courrier du 2026-05-30" in destruction.detail
    assert destruction.actor_id == patient and destruction.outcome == "success"
    assert "intact" in server.cli("audit", "verify")


def test_faults_are_clear_and_traced_once(server: SecureServer, pki: GeneratedPki) -> None:
    patient, other = patient_id(6), patient_id(7)
    ok(admin(server, dv.CREATE_DMP, create_body(patient), patient_vihf(pki, patient)), dv.CREATE_DMP)
    before = len(server.trail().history(patient))
    # A patient's VIHF opens their own record only, and says nothing about whether another exists.
    elsewhere = admin(server, dv.GET_DMP_STATUS, f"<PatientId>{patient}</PatientId>", patient_vihf(pki, other))
    assert elsewhere.status_code == 403 and "another patient" in (elsewhere.fault_reason or "")
    invalid = admin(server, dv.CREATE_DMP, f"<PatientId>{patient}</PatientId>", patient_vihf(pki, patient))
    assert invalid.status_code == 400 and subcode(invalid) == "dmp:InvalidRequest"
    assert "DMP_Administration.xsd" in invalid.fault_reason and "Traceback" not in invalid.fault_reason
    history = server.trail().history(patient)
    assert len(history) == before + 2
    assert [(e.event.action, e.event.outcome) for e in history[:2]] == [
        ("dmp.create", "failure"),
        ("dmp.read", "denied"),
    ]
    unsigned = admin(server, dv.GET_DMP_STATUS, f"<PatientId>{patient}</PatientId>", None)
    assert unsigned.status_code == 403 and "wsse:Security" in (unsigned.fault_reason or "")
    bad_patient = admin(server, dv.GET_DMP_STATUS, "<PatientId>not-a-cx</PatientId>", patient_vihf(pki, patient))
    assert bad_patient.status_code == 400 and "not a patient id" in (bad_patient.fault_reason or "")


def test_zeep_loads_the_wsdl_and_calls_get_dmp_status(server: SecureServer, pki: GeneratedPki) -> None:
    patient = patient_id(8)
    ok(admin(server, dv.CREATE_DMP, create_body(patient), patient_vihf(pki, patient)), dv.CREATE_DMP)
    session = requests.Session()
    portal = pki.identity("patient-portal")
    session.cert, session.verify = (portal.certificate, portal.key), str(pki.anchors)
    session.trust_env = False  # else REQUESTS_CA_BUNDLE, when set, replaces session.verify
    client = zeep.Client(
        server.url + "/dmp/admin?wsdl", transport=Transport(session=session), plugins=[WsAddressingPlugin()]
    )
    (service,) = client.wsdl.services.values()
    (port,) = service.ports.values()
    assert port.binding_options["address"] == server.url + "/dmp/admin"
    assert {f"DmpAdministration_{op}" for op in dv.OPERATIONS} == set(port.binding._operations)
    result = client.service.DmpAdministration_GetDmpStatus(
        PatientId=patient, _soapheaders=[security_header(patient_vihf(pki, patient))]
    )
    assert result.PatientId == patient and result.Status == "open"
    assert result.Consent.CollectedBy == "accueil CH" and result.EmergencyAccessAllowed is True


def test_legal_representatives_are_declared_by_an_authorized_professional(
    server: SecureServer, pki: GeneratedPki
) -> None:
    """A professional the patient authorized declares a minor's legal representative on proof;
    the representative then acts on the record through the patient portal; the patient and the
    representative may list, not declare nor remove; the removal ends the representation at once."""
    minor, parent, other_parent = patient_id(9), patient_id(10), patient_id(11)
    doctor = pki.identity("doctor").national_id
    ok(admin(server, dv.CREATE_DMP, create_body(minor), patient_vihf(pki, minor)), dv.CREATE_DMP)
    ok(
        admin(server, dv.GRANT_AUTHORIZATION, grant_body(minor, doctor), patient_vihf(pki, minor)),
        dv.GRANT_AUTHORIZATION,
    )
    declare = (
        f"<PatientId>{minor}</PatientId><RepresentativeId>{parent}</RepresentativeId>"
        "<Evidence>livret de famille n° 42</Evidence>"
    )
    as_parent = patient_vihf(pki, minor, representative=parent)

    def status_for_parent() -> SoapResponse:
        return admin(
            server,
            dv.GET_DMP_STATUS,
            f"<PatientId>{minor}</PatientId>",
            patient_vihf(pki, minor, representative=parent),
        )

    assert status_for_parent().status_code == 403
    for assertion, card in ((patient_vihf(pki, minor), "patient-portal"), (vihf(pki, "doctor2", minor), "doctor2")):
        refused = admin(server, dv.DECLARE_REPRESENTATIVE, declare, assertion, card)
        assert refused.status_code == 403 and subcode(refused) == "dmp:AccessDenied", refused.fault_reason
    declared = ok(
        admin(server, dv.DECLARE_REPRESENTATIVE, declare, vihf(pki, "doctor", minor), card="doctor"),
        dv.DECLARE_REPRESENTATIVE,
    )
    assert texts(declared, "d:LegalRepresentative/d:RepresentativeId") == [parent]
    assert texts(declared, "d:LegalRepresentative/d:DeclaredBy") == [doctor]
    assert texts(declared, "d:AlreadyDeclared") == ["false"]
    trace = server.last_trace(minor).event
    assert (trace.action, trace.outcome, trace.actor_id) == ("representative.add", "success", doctor)
    assert "livret de famille n° 42" in trace.detail
    again = ok(
        admin(server, dv.DECLARE_REPRESENTATIVE, declare, vihf(pki, "doctor", minor), card="doctor"),
        dv.DECLARE_REPRESENTATIVE,
    )
    assert texts(again, "d:AlreadyDeclared") == ["true"]

    # The representative is in: the record, the list, the XDS endpoints; but declares nobody.
    assert status_for_parent().status_code == 200
    listed = ok(
        admin(server, dv.LIST_REPRESENTATIVES, f"<PatientId>{minor}</PatientId>", as_parent), dv.LIST_REPRESENTATIVES
    )
    assert texts(listed, "d:LegalRepresentative/d:RepresentativeId") == [parent]
    query = adhoc_query(
        v.SQ_FIND_DOCUMENTS,
        {"$XDSDocumentEntryPatientId": [f"'{minor}'"], "$XDSDocumentEntryStatus": [f"('{v.STATUS_APPROVED}')"]},
    )
    assert (
        server.call(
            "registry", query, patient_vihf(pki, minor, representative=parent), card="patient-portal"
        ).status_code
        == 200
    )
    self_made = admin(
        server,
        dv.DECLARE_REPRESENTATIVE,
        f"<PatientId>{minor}</PatientId><RepresentativeId>{other_parent}</RepresentativeId><Evidence>moi</Evidence>",
        patient_vihf(pki, minor, representative=parent),
    )
    assert self_made.status_code == 403 and "by a professional the patient authorized" in self_made.fault_reason
    assert json.loads(server.cli("dmp", "show", minor))["legal_representatives"] == [parent]

    removed = ok(
        admin(
            server,
            dv.REMOVE_REPRESENTATIVE,
            f"<PatientId>{minor}</PatientId><RepresentativeId>{parent}"
            "</RepresentativeId><Reason>jugement du 2026-05-02</Reason>",
            vihf(pki, "doctor", minor),
            card="doctor",
        ),
        dv.REMOVE_REPRESENTATIVE,
    )
    assert texts(removed, "d:Removed") == ["1"]
    gone = status_for_parent()
    assert gone.status_code == 403 and "not a declared legal representative" in (gone.fault_reason or "")
    listed = ok(
        admin(server, dv.LIST_REPRESENTATIVES, f"<PatientId>{minor}</PatientId>", patient_vihf(pki, minor)),
        dv.LIST_REPRESENTATIVES,
    )
    assert texts(listed, "d:LegalRepresentative") == []
    # The patient reads who did what in their history.
    history = ok(
        admin(server, dv.GET_ACCESS_HISTORY, f"<PatientId>{minor}</PatientId>", patient_vihf(pki, minor)),
        dv.GET_ACCESS_HISTORY,
    )
    changes = [
        (action, actor, outcome)
        for action, actor, outcome in zip(
            texts(history, "d:Entry/d:Action"),
            texts(history, "d:Entry/d:Actor/d:Id"),
            texts(history, "d:Entry/d:Outcome"),
            strict=True,
        )
        if action.startswith("representative.")
    ]
    assert changes == [
        ("representative.read", minor, "success"),
        ("representative.remove", doctor, "success"),
        ("representative.add", parent, "denied"),
        ("representative.read", parent, "success"),
        ("representative.add", doctor, "success"),
        ("representative.add", doctor, "success"),
        ("representative.add", pki.identity("doctor2").national_id, "denied"),
        ("representative.add", minor, "denied"),
    ]
