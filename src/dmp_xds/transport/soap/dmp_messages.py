"""The DMP administration messages: requests read into the service's request dataclasses,
responses built from the record service's objects. Pure functions (the caller passes the time);
the operations doing the I/O are in services/dmp_admin.py, bound to SOAP by soap/dmp_admin.py.

Each request is first validated against schemas/dmp/DMP_Administration.xsd, so the readers
below can take the schema's guarantees (required elements, booleans, dates) for granted and check
only what a schema cannot say (a CX patient id, a consent not collected in the future).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cache

from lxml import etree

from dmp_xds.config import resource_dir
from dmp_xds.dmp import vocabulary as dv
from dmp_xds.dmp.ins import ins_problem
from dmp_xds.dmp.model import Consent, Destruction, DmpRecord, Representative
from dmp_xds.dmp.policy import KIND_ATTENDING, KIND_ESTABLISHMENT, KIND_PROFESSIONAL, Authorization
from dmp_xds.dmp.vocabulary import stamp
from dmp_xds.security.vihf import same_patient
from dmp_xds.services.dmp_admin import (
    AcknowledgeRequest,
    BlockRequest,
    CreateDmp,
    DestroyDmp,
    GrantRequest,
    HistoryRequest,
    NotificationsRequest,
    PatientRequest,
    RepresentativeRequest,
    RevokeRequest,
    StatusChange,
    UpdateDmp,
)
from dmp_xds.storage.notifications import Notification
from dmp_xds.storage.trail import AuditEntry
from dmp_xds.xds.validation.formats import cx_problem

SCHEMA_FILE = "dmp/DMP_Administration.xsd"  # in the schemas/ folder
# A consent collected "in the future" by less than this is clock drift between the client and us.
CLOCK_SKEW = dt.timedelta(minutes=5)


class MessageError(ValueError):
    """The request does not follow the schema or a rule of the message: the text says what."""


@cache
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(resource_dir("schemas") / SCHEMA_FILE)))


def _q(local: str) -> str:
    return dv.tag(local)


def _text(parent: etree._Element, *path: str) -> str:
    found = parent.find("/".join(_q(p) for p in path))
    return (found.text or "").strip() if found is not None else ""


def _boolean(parent: etree._Element, name: str) -> bool | None:
    value = _text(parent, name)
    return None if not value else value in ("true", "1")  # xs:boolean, checked by the schema


def _datetime(value: str) -> dt.datetime:
    """An xs:dateTime (the schema checked its form); without a zone it is taken as UTC."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _checked(payload: etree._Element, operation: str) -> etree._Element:
    expected = dv.request_tag(operation)
    if payload.tag != expected:
        raise MessageError(f"the body of a {operation} request must be {expected}, not {payload.tag}")
    validator = schema()
    if not validator.validate(payload):
        error = validator.error_log.last_error
        raise MessageError(
            f"the {operation} request does not follow DMP_Administration.xsd: line {error.line}: {error.message}"
        )
    return payload


def _patient_id(payload: etree._Element, require_ins: bool, element: str = "PatientId") -> str:
    patient_id = _text(payload, element)
    problem = cx_problem(patient_id) or (ins_problem(patient_id) if require_ins else None)
    if problem:
        raise MessageError(f"{element} {patient_id!r} is not a patient id: {problem}")
    return patient_id


def parse_create(payload: etree._Element, now: dt.datetime, require_ins: bool) -> CreateDmp:
    _checked(payload, dv.CREATE_DMP)
    collected_at = _datetime(_text(payload, "Consent", "CollectedAt"))
    if collected_at > now + CLOCK_SKEW:
        raise MessageError(
            f"Consent/CollectedAt {collected_at.isoformat()} is in the future: the consent is "
            "collected before the DMP is created"
        )
    consent = Consent(
        _text(payload, "Consent", "CollectedBy"),
        collected_at,
        bool(_boolean(payload, "EmergencyAccessAllowed")),
        bool(_boolean(payload, "RegulationAccessAllowed")),
    )
    return CreateDmp(_patient_id(payload, require_ins), consent)


def parse_update(payload: etree._Element, require_ins: bool) -> UpdateDmp:
    _checked(payload, dv.UPDATE_DMP)
    emergency, regulation = _boolean(payload, "EmergencyAccessAllowed"), _boolean(payload, "RegulationAccessAllowed")
    email_element = payload.find(_q("NotificationEmail"))
    email = None if email_element is None else (email_element.text or "").strip()
    if emergency is None and regulation is None and email is None:
        raise MessageError(
            "UpdateDmp changes nothing: give EmergencyAccessAllowed, RegulationAccessAllowed, "
            "NotificationEmail or several"
        )
    return UpdateDmp(_patient_id(payload, require_ins), emergency, regulation, email)


def parse_status_change(payload: etree._Element, operation: str, require_ins: bool) -> StatusChange:
    _checked(payload, operation)
    return StatusChange(_patient_id(payload, require_ins), _text(payload, "Reason"))


def parse_destroy(payload: etree._Element, require_ins: bool) -> DestroyDmp:
    _checked(payload, dv.DESTROY_DMP)
    return DestroyDmp(_patient_id(payload, require_ins), _text(payload, "PatientRequest"))


def parse_grant(payload: etree._Element, operation: str, require_ins: bool) -> GrantRequest:
    _checked(payload, operation)
    patient_id = _patient_id(payload, require_ins)
    grantee = payload.find(_q("Grantee"))
    assert grantee is not None  # required by the schema
    professional = grantee.find(_q("Professional"))
    if professional is not None:
        kind = KIND_ATTENDING if _boolean(professional, "AttendingDoctor") else KIND_PROFESSIONAL
        return GrantRequest(patient_id, kind, _text(professional, "NationalId"), "")
    establishment = grantee.find(_q("Establishment"))
    assert establishment is not None  # the schema's choice
    return GrantRequest(
        patient_id, KIND_ESTABLISHMENT, _text(establishment, "StructureId"), _text(establishment, "StayReference")
    )


def parse_revoke(payload: etree._Element, require_ins: bool) -> RevokeRequest:
    _checked(payload, dv.REVOKE_AUTHORIZATION)
    patient_id = _patient_id(payload, require_ins)
    professional = _text(payload, "Grantee", "ProfessionalId")
    if professional:
        return RevokeRequest(patient_id, professional, (KIND_PROFESSIONAL, KIND_ATTENDING))
    return RevokeRequest(patient_id, _text(payload, "Grantee", "StructureId"), (KIND_ESTABLISHMENT,))


def parse_patient(payload: etree._Element, operation: str, require_ins: bool) -> PatientRequest:
    _checked(payload, operation)
    return PatientRequest(_patient_id(payload, require_ins))


def parse_history(payload: etree._Element, require_ins: bool) -> HistoryRequest:
    _checked(payload, dv.GET_ACCESS_HISTORY)
    limit = _text(payload, "Limit")
    return HistoryRequest(_patient_id(payload, require_ins), int(limit) if limit else dv.HISTORY_DEFAULT_LIMIT)


def parse_notifications(payload: etree._Element, require_ins: bool) -> NotificationsRequest:
    _checked(payload, dv.GET_NOTIFICATIONS)
    limit = _text(payload, "Limit")
    return NotificationsRequest(
        _patient_id(payload, require_ins),
        int(limit) if limit else dv.HISTORY_DEFAULT_LIMIT,
        bool(_boolean(payload, "UnreadOnly")),
    )


def parse_acknowledge(payload: etree._Element, require_ins: bool) -> AcknowledgeRequest:
    _checked(payload, dv.ACKNOWLEDGE_NOTIFICATIONS)
    ids = tuple(int((e.text or "").strip()) for e in payload.iterfind(_q("NotificationId")))  # xs:positiveInteger
    return AcknowledgeRequest(_patient_id(payload, require_ins), ids)


def parse_representative(payload: etree._Element, operation: str, require_ins: bool) -> RepresentativeRequest:
    """DeclareLegalRepresentative, RemoveLegalRepresentative: the representative is a person
    identified as patients are (their INS under the CI-SIS profile), never the patient."""
    _checked(payload, operation)
    patient_id = _patient_id(payload, require_ins)
    representative_id = _patient_id(payload, require_ins, "RepresentativeId")
    if same_patient(patient_id, representative_id):
        raise MessageError("RepresentativeId is the patient: a patient is not their own legal representative")
    note = _text(payload, "Evidence" if operation == dv.DECLARE_REPRESENTATIVE else "Reason")
    return RepresentativeRequest(patient_id, representative_id, note)


def parse_block(payload: etree._Element, operation: str, require_ins: bool) -> BlockRequest:
    """BlockProfessional, UnblockProfessional."""
    _checked(payload, operation)
    national_id = _text(payload, "NationalId")
    if not national_id:
        raise MessageError("NationalId is empty: name the professional by their national id")
    return BlockRequest(_patient_id(payload, require_ins), national_id)


# --- responses ------------------------------------------------------------------------------


def _sub(parent: etree._Element, local: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, _q(local))
    if text is not None:
        element.text = text
    return element


def _boolean_text(value: bool) -> str:
    return "true" if value else "false"


def _response(operation: str) -> etree._Element:
    return etree.Element(dv.response_tag(operation), nsmap={"dmp": dv.NS_DMP_ADMIN})


def _authorization(parent: etree._Element, local: str, authorization: Authorization, now: dt.datetime) -> None:
    element = _sub(parent, local)
    _sub(element, "Kind", authorization.kind)
    _sub(element, "Grantee", authorization.grantee)
    _sub(element, "ExpiresAt", stamp(authorization.expires_at))
    if authorization.reference:
        _sub(element, "Reference", authorization.reference)
    _sub(element, "Active", _boolean_text(authorization.active(now)))


def dmp_response(
    operation: str,
    record: DmpRecord,
    authorizations: Sequence[Authorization],
    now: dt.datetime,
    for_patient: bool = False,
) -> etree._Element:
    """The response of the operations answering with the record (Create, Update, Close, Reopen,
    GetDmpStatus); `authorizations` are those the caller may see (policy.authorizations_shown);
    the patient's own contact (their notification address) is shown to the patient only."""
    response = _response(operation)
    dmp = _sub(response, "Dmp")
    _sub(dmp, "PatientId", record.patient_id)
    _sub(dmp, "Status", record.state.status)
    if record.status_reason:
        _sub(dmp, "StatusReason", record.status_reason)
    _sub(dmp, "CreatedAt", stamp(record.created_at))
    if record.closed_at is not None:
        _sub(dmp, "ClosedAt", stamp(record.closed_at))
    consent = _sub(dmp, "Consent")
    _sub(consent, "CollectedBy", record.consent.collected_by)
    _sub(consent, "CollectedAt", stamp(record.consent.collected_at))
    _sub(dmp, "EmergencyAccessAllowed", _boolean_text(record.state.emergency_access_allowed))
    _sub(dmp, "RegulationAccessAllowed", _boolean_text(record.state.regulation_access_allowed))
    for authorization in authorizations:
        _authorization(dmp, "Authorization", authorization, now)
    if for_patient and record.notification_email:
        _sub(dmp, "NotificationEmail", record.notification_email)
    return response


def authorization_response(operation: str, authorization: Authorization, now: dt.datetime) -> etree._Element:
    response = _response(operation)
    _authorization(response, "Authorization", authorization, now)
    return response


def destroy_response(patient_id: str, destruction: Destruction) -> etree._Element:
    response = _response(dv.DESTROY_DMP)
    _sub(response, "PatientId", patient_id)
    _sub(response, "RegistryObjectsErased", str(destruction.objects))
    for unique_id in destruction.documents:
        _sub(response, "ErasedDocumentUniqueId", unique_id)
    return response


def _count_response(operation: str, element: str, count: int) -> etree._Element:
    """The answer of an operation that says only how many things it changed."""
    response = _response(operation)
    _sub(response, element, str(count))
    return response


def revoke_response(revoked: int) -> etree._Element:
    return _count_response(dv.REVOKE_AUTHORIZATION, "Revoked", revoked)


def history_response(entries: Sequence[AuditEntry]) -> etree._Element:
    response = _response(dv.GET_ACCESS_HISTORY)
    for entry in entries:
        event = entry.event
        element = _sub(response, "Entry")
        _sub(element, "Sequence", str(entry.seq))
        _sub(element, "Time", entry.recorded_at)  # already an xs:dateTime in UTC (storage/trail.py)
        actor = _sub(element, "Actor")
        _sub(actor, "Id", event.actor_id)
        if event.actor_name:
            _sub(actor, "Name", event.actor_name)
        if event.actor_role:
            _sub(actor, "Role", event.actor_role)
        for local, value in (
            ("StructureId", event.structure_id),
            ("AccessMode", event.access_mode),
            ("AccessReason", event.access_reason),
        ):
            if value:
                _sub(element, local, value)
        _sub(element, "Action", event.action)
        for unique_id in event.documents:
            _sub(element, "DocumentUniqueId", unique_id)
        _sub(element, "Outcome", event.outcome)
        _sub(element, "Emergency", _boolean_text(entry.emergency))
        if event.detail:
            _sub(element, "Detail", event.detail)
    return response


def notifications_response(notifications: Sequence[Notification]) -> etree._Element:
    response = _response(dv.GET_NOTIFICATIONS)
    for notification in notifications:
        element = _sub(response, "Notification")
        _sub(element, "Id", str(notification.id))
        _sub(element, "Time", stamp(notification.created_at))
        _sub(element, "Kind", notification.kind)
        _sub(element, "TraceSequence", str(notification.audit_seq))
        actor = _sub(element, "Actor")
        _sub(actor, "Id", notification.actor_id)
        if notification.actor_name:
            _sub(actor, "Name", notification.actor_name)
        if notification.structure_id:
            _sub(element, "StructureId", notification.structure_id)
        if notification.reason:
            _sub(element, "AccessReason", notification.reason)
        _sub(element, "Message", notification.message)
        _sub(element, "Read", _boolean_text(notification.read_at is not None))
        _sub(element, "Emailed", _boolean_text(notification.emailed_at is not None))
    return response


def _representative(parent: etree._Element, representative: Representative) -> None:
    element = _sub(parent, "LegalRepresentative")
    _sub(element, "RepresentativeId", representative.representative_id)
    _sub(element, "DeclaredBy", representative.declared_by)
    _sub(element, "DeclaredAt", stamp(representative.declared_at))


def declare_representative_response(representative: Representative, already_declared: bool) -> etree._Element:
    response = _response(dv.DECLARE_REPRESENTATIVE)
    _representative(response, representative)
    _sub(response, "AlreadyDeclared", _boolean_text(already_declared))
    return response


def remove_representative_response(removed: int) -> etree._Element:
    return _count_response(dv.REMOVE_REPRESENTATIVE, "Removed", removed)


def representatives_response(representatives: Sequence[Representative]) -> etree._Element:
    response = _response(dv.LIST_REPRESENTATIVES)
    for representative in representatives:
        _representative(response, representative)
    return response


def block_response(revoked: int, already_blocked: bool) -> etree._Element:
    response = _count_response(dv.BLOCK_PROFESSIONAL, "Revoked", revoked)
    _sub(response, "AlreadyBlocked", _boolean_text(already_blocked))
    return response


def unblock_response(unblocked: int) -> etree._Element:
    return _count_response(dv.UNBLOCK_PROFESSIONAL, "Unblocked", unblocked)


def acknowledge_response(count: int) -> etree._Element:
    return _count_response(dv.ACKNOWLEDGE_NOTIFICATIONS, "Acknowledged", count)
