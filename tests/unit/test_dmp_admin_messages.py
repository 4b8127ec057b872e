"""DMP administration messages: requests read (and refused) by the schema and the rules, responses
that follow the schema, and a WSDL whose operations, actions and elements match the dispatcher."""

from __future__ import annotations

import datetime as dt

import pytest
import zeep
from lxml import etree
from zeep.wsdl.bindings.soap import Soap12Binding

from dmp_xds.config import resource_dir
from dmp_xds.dmp import vocabulary as dv
from dmp_xds.dmp.model import Consent, Destruction, DmpRecord, Representative, renewable_grant
from dmp_xds.dmp.policy import Authorization, RecordState
from dmp_xds.services.dmp_admin import BlockRequest
from dmp_xds.storage.trail import AuditEntry, AuditEvent
from dmp_xds.transport.soap import dmp_messages as m
from dmp_xds.transport.soap.dmp_admin import DMP_ADMIN_ACTIONS, DmpAdminService

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
INS_PATIENT = "184012A12345618^^^&1.2.250.1.213.1.4.8&ISO"  # Corsican NIR with its right key
WSDL = resource_dir("wsdl") / "DMP_Administration.wsdl"


def request(operation: str, body: str) -> etree._Element:
    """A request element inside an envelope, as the dispatcher hands it over."""
    envelope = etree.fromstring(
        f'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
        f'xmlns="{dv.NS_DMP_ADMIN}"><e:Body><{operation}Request>{body.replace("&", "&amp;")}'
        f"</{operation}Request></e:Body></e:Envelope>"
    )
    return envelope[0][0]


def create_body(patient: str = PATIENT, collected_at: str = "2026-06-01T09:30:00Z", emergency: str = "false") -> str:
    return (
        f"<PatientId>{patient}</PatientId><Consent><CollectedBy>Dr Martin</CollectedBy>"
        f"<CollectedAt>{collected_at}</CollectedAt></Consent><EmergencyAccessAllowed>{emergency}"
        "</EmergencyAccessAllowed><RegulationAccessAllowed>1</RegulationAccessAllowed>"
    )


# --- requests -------------------------------------------------------------------------------


def test_create_reads_consent_and_choices() -> None:
    parsed = m.parse_create(request(dv.CREATE_DMP, create_body()), NOW, require_ins=False)
    assert parsed.patient_id == PATIENT
    assert parsed.consent == Consent("Dr Martin", dt.datetime(2026, 6, 1, 9, 30, tzinfo=dt.UTC), False, True)


def test_create_without_zone_is_utc_and_future_consent_is_refused() -> None:
    parsed = m.parse_create(request(dv.CREATE_DMP, create_body(collected_at="2026-06-01T12:03:00")), NOW, False)
    assert parsed.consent.collected_at == dt.datetime(2026, 6, 1, 12, 3, tzinfo=dt.UTC)  # within the skew
    with pytest.raises(m.MessageError, match="in the future"):
        m.parse_create(request(dv.CREATE_DMP, create_body(collected_at="2026-06-02T09:00:00Z")), NOW, False)


@pytest.mark.parametrize(
    "body, expected",
    [
        (create_body().replace("<EmergencyAccessAllowed>false</EmergencyAccessAllowed>", ""), "EmergencyAccessAllowed"),
        (create_body(emergency="maybe"), "boolean"),
        (create_body(collected_at="yesterday"), "dateTime"),
        (create_body().replace("<CollectedBy>Dr Martin</CollectedBy>", "<CollectedBy></CollectedBy>"), "CollectedBy"),
        (create_body() + "<Extra/>", "Extra"),
    ],
)
def test_create_schema_violations(body: str, expected: str) -> None:
    with pytest.raises(m.MessageError, match=expected) as raised:
        m.parse_create(request(dv.CREATE_DMP, body), NOW, False)
    assert "DMP_Administration.xsd" in str(raised.value)


def test_patient_id_must_be_a_cx_and_an_ins_under_the_dmp_profile() -> None:
    with pytest.raises(m.MessageError, match="not a patient id"):
        m.parse_patient(request(dv.GET_DMP_STATUS, "<PatientId>12345</PatientId>"), dv.GET_DMP_STATUS, False)
    test_id = request(dv.GET_DMP_STATUS, f"<PatientId>{PATIENT}</PatientId>")
    assert m.parse_patient(test_id, dv.GET_DMP_STATUS, False).patient_id == PATIENT
    with pytest.raises(m.MessageError, match="NIR"):  # 13 digits, no key: not an INS
        m.parse_patient(test_id, dv.GET_DMP_STATUS, True)
    ins = request(dv.GET_DMP_STATUS, f"<PatientId>{INS_PATIENT}</PatientId>")
    assert m.parse_patient(ins, dv.GET_DMP_STATUS, True).patient_id == INS_PATIENT


def test_wrong_body_element() -> None:
    with pytest.raises(m.MessageError, match="must be .*CloseDmpRequest"):
        m.parse_status_change(request(dv.REOPEN_DMP, f"<PatientId>{PATIENT}</PatientId>"), dv.CLOSE_DMP, False)


def test_update_needs_a_change() -> None:
    parsed = m.parse_update(
        request(
            dv.UPDATE_DMP, f"<PatientId>{PATIENT}</PatientId><RegulationAccessAllowed>false</RegulationAccessAllowed>"
        ),
        False,
    )
    assert (parsed.emergency_access_allowed, parsed.regulation_access_allowed) == (None, False)
    with pytest.raises(m.MessageError, match="changes nothing"):
        m.parse_update(request(dv.UPDATE_DMP, f"<PatientId>{PATIENT}</PatientId>"), False)


def test_close_reopen_destroy() -> None:
    close = m.parse_status_change(
        request(dv.CLOSE_DMP, f"<PatientId>{PATIENT}</PatientId><Reason>moving abroad</Reason>"), dv.CLOSE_DMP, False
    )
    assert (close.patient_id, close.reason) == (PATIENT, "moving abroad")
    assert (
        m.parse_status_change(request(dv.REOPEN_DMP, f"<PatientId>{PATIENT}</PatientId>"), dv.REOPEN_DMP, False).reason
        == ""
    )
    destroy = m.parse_destroy(
        request(dv.DESTROY_DMP, f"<PatientId>{PATIENT}</PatientId><PatientRequest>letter 2026-05-30</PatientRequest>"),
        False,
    )
    assert destroy.patient_request == "letter 2026-05-30"
    with pytest.raises(m.MessageError, match="PatientRequest"):
        m.parse_destroy(request(dv.DESTROY_DMP, f"<PatientId>{PATIENT}</PatientId>"), False)


@pytest.mark.parametrize(
    "grantee, expected",
    [
        ("<Professional><NationalId>810001234565</NationalId></Professional>", ("professional", "810001234565", "")),
        (
            "<Professional><NationalId>810001234565</NationalId><AttendingDoctor>true</AttendingDoctor></Professional>",
            ("attending", "810001234565", ""),
        ),
        (
            "<Establishment><StructureId>1990000017</StructureId><StayReference>stay 42</StayReference></Establishment>",
            ("establishment", "1990000017", "stay 42"),
        ),
    ],
)
def test_grant_and_renew(grantee: str, expected: tuple[str, str, str]) -> None:
    for operation in (dv.GRANT_AUTHORIZATION, dv.RENEW_AUTHORIZATION):
        parsed = m.parse_grant(
            request(operation, f"<PatientId>{PATIENT}</PatientId><Grantee>{grantee}</Grantee>"), operation, False
        )
        assert (parsed.kind, parsed.grantee, parsed.reference) == expected


def test_grant_needs_exactly_one_grantee() -> None:
    both = (
        "<Grantee><Professional><NationalId>8</NationalId></Professional>"
        "<Establishment><StructureId>1</StructureId></Establishment></Grantee>"
    )
    with pytest.raises(m.MessageError):
        m.parse_grant(
            request(dv.GRANT_AUTHORIZATION, f"<PatientId>{PATIENT}</PatientId>{both}"), dv.GRANT_AUTHORIZATION, False
        )


def test_revoke_a_professional_takes_every_personal_grant() -> None:
    professional = m.parse_revoke(
        request(
            dv.REVOKE_AUTHORIZATION,
            f"<PatientId>{PATIENT}</PatientId><Grantee><ProfessionalId>810001234565</ProfessionalId></Grantee>",
        ),
        False,
    )
    assert (professional.grantee, professional.kinds) == ("810001234565", ("professional", "attending"))
    structure = m.parse_revoke(
        request(
            dv.REVOKE_AUTHORIZATION,
            f"<PatientId>{PATIENT}</PatientId><Grantee><StructureId>1990000017</StructureId></Grantee>",
        ),
        False,
    )
    assert (structure.grantee, structure.kinds) == ("1990000017", ("establishment",))


def test_history_limit() -> None:
    assert (
        m.parse_history(request(dv.GET_ACCESS_HISTORY, f"<PatientId>{PATIENT}</PatientId>"), False).limit
        == dv.HISTORY_DEFAULT_LIMIT
    )
    assert (
        m.parse_history(
            request(dv.GET_ACCESS_HISTORY, f"<PatientId>{PATIENT}</PatientId><Limit>5</Limit>"), False
        ).limit
        == 5
    )
    for limit in ("0", "1001"):
        with pytest.raises(m.MessageError, match="Limit"):
            m.parse_history(
                request(dv.GET_ACCESS_HISTORY, f"<PatientId>{PATIENT}</PatientId><Limit>{limit}</Limit>"), False
            )


# --- responses ------------------------------------------------------------------------------


def valid(response: etree._Element) -> etree._Element:
    schema = m.schema()
    assert schema.validate(response), schema.error_log.last_error
    return response


def text(element: etree._Element, path: str) -> list[str]:
    return [e.text or "" for e in element.iterfind(path, {"d": dv.NS_DMP_ADMIN})]


def a_record(status: str = "closed") -> DmpRecord:
    grants = (
        Authorization("professional", "810001234565", NOW + dt.timedelta(days=365)),
        Authorization("establishment", "1990000017", NOW - dt.timedelta(days=1), reference="stay 42"),
    )
    return DmpRecord(
        RecordState(PATIENT, status, False, True, grants),
        Consent("Dr Martin", NOW, False, True),
        NOW,
        NOW if status == "closed" else None,
        "patient's request" if status == "closed" else "",
    )


def test_dmp_response_follows_the_schema() -> None:
    record = a_record()
    response = valid(m.dmp_response(dv.GET_DMP_STATUS, record, record.state.authorizations, NOW))
    assert response.tag == dv.response_tag(dv.GET_DMP_STATUS)
    assert text(response, "d:Dmp/d:Status") == ["closed"]
    assert text(response, "d:Dmp/d:ClosedAt") == ["2026-06-01T12:00:00.000000Z"]
    assert text(response, "d:Dmp/d:EmergencyAccessAllowed") == ["false"]
    assert text(response, "d:Dmp/d:Authorization/d:Active") == ["true", "false"]
    assert text(response, "d:Dmp/d:Authorization/d:Reference") == ["stay 42"]
    open_record = a_record("open")
    shown_none = valid(m.dmp_response(dv.CREATE_DMP, open_record, (), NOW))
    assert not text(shown_none, "d:Dmp/d:ClosedAt") and not text(shown_none, "d:Dmp/d:Authorization")


def test_other_responses_follow_the_schema() -> None:
    grant = Authorization("attending", "810001234565", NOW + dt.timedelta(days=365))
    assert text(valid(m.authorization_response(dv.RENEW_AUTHORIZATION, grant, NOW)), "d:Authorization/d:Kind") == [
        "attending"
    ]
    destroyed = valid(m.destroy_response(PATIENT, Destruction(["1.2.3", "1.2.4"], 7)))
    assert text(destroyed, "d:ErasedDocumentUniqueId") == ["1.2.3", "1.2.4"]
    assert text(destroyed, "d:RegistryObjectsErased") == ["7"]
    assert text(valid(m.revoke_response(2)), "d:Revoked") == ["2"]


def test_history_response_flags_emergency() -> None:
    emergency = AuditEntry(
        2,
        "2026-06-01T11:00:00.000000Z",
        AuditEvent(
            "search",
            "success",
            PATIENT,
            "810002345675",
            "Jean Durand",
            "10",
            "1990000099",
            "bris_de_glace",
            "patient inconscient",
            ("1.2.3",),
            "EMERGENCY ACCESS - emergency access",
        ),
        "a" * 64,
        "b" * 64,
    )
    operator = AuditEntry(
        1, "2026-06-01T10:00:00.000000Z", AuditEvent("dmp.create", "success", PATIENT, "operator"), "0" * 64, "a" * 64
    )
    response = valid(m.history_response([emergency, operator]))
    assert text(response, "d:Entry/d:Sequence") == ["2", "1"]
    assert text(response, "d:Entry/d:Emergency") == ["true", "false"]
    assert text(response, "d:Entry/d:DocumentUniqueId") == ["1.2.3"]
    assert text(response, "d:Entry/d:AccessReason") == ["patient inconscient"]
    assert text(response, "d:Entry/d:Actor/d:Name") == ["Jean Durand"]
    assert valid(m.history_response([])).tag == dv.response_tag(dv.GET_ACCESS_HISTORY)


def test_renewable_grant() -> None:
    state = RecordState(
        PATIENT,
        "open",
        True,
        True,
        (
            Authorization("professional", "81", NOW - dt.timedelta(days=1)),  # expired: renewable
            Authorization("professional", "82", NOW + dt.timedelta(days=9), revoked_at=NOW),  # revoked: not
        ),
    )
    assert renewable_grant(state, "professional", "81") is not None
    assert renewable_grant(state, "professional", "82") is None
    assert renewable_grant(state, "attending", "81") is None


# --- the WSDL and the dispatcher ------------------------------------------------------------


def test_wsdl_operations_match_the_dispatcher() -> None:
    client = zeep.Client(str(WSDL))
    (service,) = client.wsdl.services.values()
    (port,) = service.ports.values()
    binding = port.binding
    assert isinstance(binding, Soap12Binding)
    assert set(binding._operations) == {f"DmpAdministration_{op}" for op in dv.OPERATIONS}
    for operation in dv.OPERATIONS:
        found = binding.get(f"DmpAdministration_{operation}")
        assert found.soapaction == found.abstract.wsa_action == dv.action(operation)
        assert found.style == "document"
        assert found.input.body.qname == etree.QName(dv.request_tag(operation))
        assert found.output.body.qname == etree.QName(dv.response_tag(operation))
        assert DMP_ADMIN_ACTIONS[dv.action(operation)] == operation
        assert callable(getattr(DmpAdminService, operation))
    outputs = etree.parse(str(WSDL)).xpath(
        "//wsdl:portType/wsdl:operation/wsdl:output/@wsaw:Action",
        namespaces={"wsdl": "http://schemas.xmlsoap.org/wsdl/", "wsaw": "http://www.w3.org/2006/05/addressing/wsdl"},
    )
    assert sorted(outputs) == sorted(dv.action(op) + "Response" for op in dv.OPERATIONS)


def test_zeep_builds_a_request_the_parser_reads() -> None:
    client = zeep.Client(str(WSDL))
    service = client.create_service(f"{{{dv.NS_DMP_ADMIN}}}DmpAdministration_Binding_Soap12", "https://x/dmp/admin")
    assert service is not None
    envelope = client.create_message(
        service,
        "DmpAdministration_GrantAuthorization",
        PatientId=PATIENT,
        Grantee={"Establishment": {"StructureId": "1990000017", "StayReference": "s"}},
    )
    payload = envelope.find(".//{http://www.w3.org/2003/05/soap-envelope}Body")[0]
    parsed = m.parse_grant(payload, dv.GRANT_AUTHORIZATION, False)
    assert (parsed.patient_id, parsed.kind, parsed.grantee, parsed.reference) == (
        PATIENT,
        "establishment",
        "1990000017",
        "s",
    )


# --- legal representatives ------------------------------------------------------------------

PARENT = "2700599123456^^^&1.2.250.1.213.1.4.10&ISO"


def test_representative_requests() -> None:
    declared = m.parse_representative(
        request(
            dv.DECLARE_REPRESENTATIVE,
            f"<PatientId>{PATIENT}</PatientId>"
            f"<RepresentativeId>{PARENT}</RepresentativeId>"
            "<Evidence>livret de famille</Evidence>",
        ),
        dv.DECLARE_REPRESENTATIVE,
        False,
    )
    assert (declared.patient_id, declared.representative_id, declared.note) == (PATIENT, PARENT, "livret de famille")
    removed = m.parse_representative(
        request(
            dv.REMOVE_REPRESENTATIVE, f"<PatientId>{PATIENT}</PatientId><RepresentativeId>{PARENT}</RepresentativeId>"
        ),
        dv.REMOVE_REPRESENTATIVE,
        False,
    )
    assert removed.note == ""
    with pytest.raises(m.MessageError, match="Evidence"):  # a declaration says what proves it
        m.parse_representative(
            request(
                dv.DECLARE_REPRESENTATIVE,
                f"<PatientId>{PATIENT}</PatientId><RepresentativeId>{PARENT}</RepresentativeId>",
            ),
            dv.DECLARE_REPRESENTATIVE,
            False,
        )
    with pytest.raises(m.MessageError, match="not their own legal representative"):
        m.parse_representative(
            request(
                dv.REMOVE_REPRESENTATIVE,
                f"<PatientId>{PATIENT}</PatientId><RepresentativeId>{PATIENT}</RepresentativeId>",
            ),
            dv.REMOVE_REPRESENTATIVE,
            False,
        )
    with pytest.raises(m.MessageError, match="RepresentativeId .* is not a patient id"):
        m.parse_representative(
            request(
                dv.REMOVE_REPRESENTATIVE,
                f"<PatientId>{INS_PATIENT}</PatientId><RepresentativeId>810001234565</RepresentativeId>",
            ),
            dv.REMOVE_REPRESENTATIVE,
            True,
        )


def test_representative_responses_follow_the_schema() -> None:
    representative = Representative(PARENT, "810001234565", NOW)
    declared = valid(m.declare_representative_response(representative, True))
    assert text(declared, "d:LegalRepresentative/d:RepresentativeId") == [PARENT]
    assert text(declared, "d:LegalRepresentative/d:DeclaredAt") == ["2026-06-01T12:00:00.000000Z"]
    assert text(declared, "d:AlreadyDeclared") == ["true"]
    assert text(valid(m.remove_representative_response(1)), "d:Removed") == ["1"]
    listed = valid(m.representatives_response([representative, Representative(PATIENT, "operator", NOW)]))
    assert text(listed, "d:LegalRepresentative/d:DeclaredBy") == ["810001234565", "operator"]
    assert valid(m.representatives_response([])).tag == dv.response_tag(dv.LIST_REPRESENTATIVES)


def test_block_requests_and_responses() -> None:
    read = m.parse_block(
        request(dv.BLOCK_PROFESSIONAL, f"<PatientId>{PATIENT}</PatientId><NationalId>810001234565</NationalId>"),
        dv.BLOCK_PROFESSIONAL,
        False,
    )
    assert read == BlockRequest(PATIENT, "810001234565")
    with pytest.raises(m.MessageError, match="NationalId"):
        m.parse_block(
            request(dv.UNBLOCK_PROFESSIONAL, f"<PatientId>{PATIENT}</PatientId><NationalId> </NationalId>"),
            dv.UNBLOCK_PROFESSIONAL,
            False,
        )
    with pytest.raises(m.MessageError, match="does not follow"):
        m.parse_block(request(dv.BLOCK_PROFESSIONAL, f"<PatientId>{PATIENT}</PatientId>"), dv.BLOCK_PROFESSIONAL, False)
    blocked = valid(m.block_response(2, False))
    assert (text(blocked, "d:Revoked"), text(blocked, "d:AlreadyBlocked")) == (["2"], ["false"])
    assert text(valid(m.unblock_response(1)), "d:Unblocked") == ["1"]
