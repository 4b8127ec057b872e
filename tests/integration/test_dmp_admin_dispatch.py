"""The DMP administration endpoint behind the dispatcher: refused without authentication, one
trace row per request whatever its fate (success, refusal, bad message, internal error), on an
in-memory database with a principal built here (the TLS + VIHF path is in the integration tests)."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree
from sqlalchemy import Engine

from dmp_xds.config import Settings
from dmp_xds.dmp import vocabulary as dv
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import Holder
from dmp_xds.security.vihf import Principal
from dmp_xds.services.context import Services, TransactionRequest
from dmp_xds.services.gate import SecurityServices
from dmp_xds.services.notifications import Notifier
from dmp_xds.storage import trail as t
from dmp_xds.storage.audit_keys import AuditKey
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.records import DmpStore
from dmp_xds.storage.tables import metadata
from dmp_xds.storage.trail import AuditTrail
from dmp_xds.transport.soap import dmp_admin
from dmp_xds.transport.soap.envelope import read_request
from dmp_xds.transport.soap.faults import WSA_ACTION_NOT_SUPPORTED, SoapFault
from dmp_xds.transport.soap.service import build_dispatchers
from dmp_xds.xds import vocabulary as v

PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
HOLDER = Holder("establishment", "", "", "", "", "", "", "CN=portal", "00")


def patient_principal(patient: str = PATIENT) -> Principal:
    return Principal(
        "patient",
        patient,
        "le patient",
        (sv.PATIENT_ROLE,),
        "",
        "",
        sv.ACCESS_NORMAL,
        "",
        patient,
        "portal 1",
        "",
        "_id",
        HOLDER,
    )


def payload(operation: str, body: str) -> etree._Element:
    return etree.fromstring(
        f'<{operation}Request xmlns="{dv.NS_DMP_ADMIN}">{body.replace("&", "&amp;")}</{operation}Request>'
    )


CREATE = (
    f"<PatientId>{PATIENT}</PatientId><Consent><CollectedBy>Dr Martin</CollectedBy><CollectedAt>"
    "2026-01-01T10:00:00Z</CollectedAt></Consent><EmergencyAccessAllowed>true</EmergencyAccessAllowed>"
    "<RegulationAccessAllowed>false</RegulationAccessAllowed>"
)


@pytest.fixture()
def engine() -> Engine:
    engine = create_engine_for("sqlite://")
    metadata.create_all(engine)
    return engine


@pytest.fixture()
def services(engine: Engine) -> Services:
    trail = AuditTrail(engine, AuditKey(bytes(32), "test key"))
    security = SecurityServices(None, None, DmpStore(engine), trail, Notifier(engine))  # type: ignore[arg-type]
    return Services(Settings(profile="ihe"), None, None, security=security)  # type: ignore[arg-type]


def perform(
    services: Services,
    operation: dmp_admin.Operation,
    trace_action: str,
    body: etree._Element,
    principal: Principal | None = None,
) -> etree._Element:
    request = TransactionRequest(body, {}, principal or patient_principal())
    return dmp_admin.perform(services, request, operation, trace_action).payload


def history(services: Services) -> list[tuple[str, str]]:
    assert services.security is not None
    return [(e.event.action, e.event.outcome) for e in services.security.audit.history(PATIENT)]


def test_refused_without_authentication() -> None:
    dispatcher = build_dispatchers()[dmp_admin.DMP_ADMIN_ENDPOINT]
    envelope = etree.fromstring(
        f'<s:Envelope xmlns:s="{v.NS_SOAP12}" xmlns:a="{v.NS_WSA}"><s:Header><a:Action>'
        f"{dv.action(dv.GET_DMP_STATUS)}</a:Action></s:Header><s:Body>"
        f'<GetDmpStatusRequest xmlns="{dv.NS_DMP_ADMIN}"><PatientId>{PATIENT.replace("&", "&amp;")}</PatientId>'
        "</GetDmpStatusRequest></s:Body></s:Envelope>"
    )
    unauthenticated = Services(Settings(auth="none"), None, None)  # type: ignore[arg-type]
    with pytest.raises(SoapFault) as raised:
        dispatcher.dispatch(unauthenticated, read_request(envelope), {})
    assert raised.value.subcode == dv.FAULT_AUTHENTICATION_REQUIRED and raised.value.http_status == 403
    assert "DMP_XDS_AUTH=vihf" in raised.value.reason


def test_unknown_action() -> None:
    dispatcher = build_dispatchers()[dmp_admin.DMP_ADMIN_ENDPOINT]
    envelope = etree.fromstring(
        f'<s:Envelope xmlns:s="{v.NS_SOAP12}" xmlns:a="{v.NS_WSA}"><s:Header><a:Action>{v.ACTION_ITI18}'
        "</a:Action></s:Header><s:Body><x/></s:Body></s:Envelope>"
    )
    with pytest.raises(SoapFault) as raised:
        dispatcher.dispatch(Services(Settings(auth="none"), None, None), read_request(envelope), {})  # type: ignore[arg-type]
    assert raised.value.subcode == WSA_ACTION_NOT_SUPPORTED and dv.action(dv.CREATE_DMP) in raised.value.reason


def test_one_trace_row_per_request(services: Services) -> None:
    created = perform(services, dmp_admin.create_dmp, t.DMP_CREATE, payload(dv.CREATE_DMP, CREATE))
    assert created.findtext(f"{{{dv.NS_DMP_ADMIN}}}Dmp/{{{dv.NS_DMP_ADMIN}}}Status") == "open"
    with pytest.raises(SoapFault) as twice:
        perform(services, dmp_admin.create_dmp, t.DMP_CREATE, payload(dv.CREATE_DMP, CREATE))
    assert twice.value.subcode == dv.FAULT_INVALID_STATE
    with pytest.raises(SoapFault) as broken:
        perform(services, dmp_admin.close_dmp, t.DMP_CLOSE, payload(dv.CLOSE_DMP, "<Reason>x</Reason>"))
    assert broken.value.subcode == dv.FAULT_INVALID_REQUEST and broken.value.http_status == 400
    stranger = Principal(
        "professional",
        "810004567896",
        "Dr X",
        ("10",),
        "1990000099",
        "SA07",
        sv.ACCESS_NORMAL,
        "",
        PATIENT,
        "lps 1",
        "",
        "_id",
        HOLDER,
    )
    with pytest.raises(SoapFault) as denied:
        perform(
            services,
            dmp_admin.get_dmp_status,
            t.DMP_READ,
            payload(dv.GET_DMP_STATUS, f"<PatientId>{PATIENT}</PatientId>"),
            stranger,
        )
    assert denied.value.subcode == dv.FAULT_ACCESS_DENIED and denied.value.http_status == 403
    assert history(services) == [
        ("dmp.read", "denied"),
        ("dmp.close", "failure"),
        ("dmp.create", "failure"),
        ("dmp.create", "success"),
    ]


def test_internal_error_is_traced_and_raised(services: Services) -> None:
    def broken(call: dmp_admin.AdminCall, body: etree._Element) -> etree._Element:
        call.patient_id = PATIENT
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        perform(services, broken, t.DMP_READ, payload(dv.GET_DMP_STATUS, ""))
    assert history(services) == [("dmp.read", "failure")]
    assert services.security is not None
    assert services.security.audit.history(PATIENT)[0].event.detail == "internal error"


def test_renew_extends_and_revoke_counts(services: Services, engine: Engine) -> None:
    perform(services, dmp_admin.create_dmp, t.DMP_CREATE, payload(dv.CREATE_DMP, CREATE))
    grantee = (
        f"<PatientId>{PATIENT}</PatientId><Grantee><Establishment><StructureId>1990000017</StructureId>"
        "<StayReference>stay 1</StayReference></Establishment></Grantee>"
    )
    perform(services, dmp_admin.grant_authorization, t.AUTHORIZATION_GRANT, payload(dv.GRANT_AUTHORIZATION, grantee))
    store = DmpStore(engine)
    first = store.get(PATIENT).state.authorizations[0]  # type: ignore[union-attr]
    renewed = perform(
        services,
        dmp_admin.renew_authorization,
        t.AUTHORIZATION_RENEW,
        payload(dv.RENEW_AUTHORIZATION, grantee.replace("stay 1", "stay 2")),
    )
    assert renewed.findtext(f"{{{dv.NS_DMP_ADMIN}}}Authorization/{{{dv.NS_DMP_ADMIN}}}Reference") == "stay 2"
    (after,) = store.get(PATIENT).state.authorizations  # type: ignore[union-attr]
    assert after.expires_at >= first.expires_at and after.reference == "stay 2"
    revoked = perform(
        services,
        dmp_admin.revoke_authorization,
        t.AUTHORIZATION_REVOKE,
        payload(
            dv.REVOKE_AUTHORIZATION,
            f"<PatientId>{PATIENT}</PatientId><Grantee><StructureId>1990000017</StructureId></Grantee>",
        ),
    )
    assert revoked.findtext(f"{{{dv.NS_DMP_ADMIN}}}Revoked") == "1"
    assert not store.get(PATIENT).state.authorizations[0].active(dt.datetime.now(dt.UTC))  # type: ignore[union-attr]
    assert [a for a, _ in history(services)][:3] == [
        "authorization.revoke",
        "authorization.renew",
        "authorization.grant",
    ]
