"""The messages of the DMP's CXF-style services, read and written as pure functions on lxml trees
(the server's side first; at the end, the LPS's: its requests, and the answers read back).

Requests are read into dataclasses (a value outside the WSDL's enumeration, an unknown child, a
malformed date: MessageError, which the service answers with status DMPInvalidRequest); responses
are `<operation>Response/output{..., status, context}` with every child qualified, as the DMP's
examples show. Names: dmp/cxf_vocabulary.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lxml import etree

from dmp_xds.dmp import cxf_vocabulary as cv


class MessageError(ValueError):
    """The request does not follow its operation's schema: the message says where."""


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetAuthorization:
    action: str  # AJOUT | SUPPRESSION
    attending: bool  # role MEDECIN_TRAITANT


@dataclass(frozen=True)
class ListAuthorizations:
    mode: str  # TOUTE | ACTIVE | INTERDITE


@dataclass(frozen=True)
class PatientList:
    start: dt.datetime | None
    date_type: str  # LASTAUTORIZATION | LASTDOC ("" = LASTAUTORIZATION)
    ps_owner: str


@dataclass(frozen=True)
class CreatePatientAccess:
    type: str  # SMS | EMAIL
    canal: str


@dataclass(frozen=True)
class PatientOtpUpdate:
    type: str
    canal: str
    action: str  # AJOUT | MODIFICATION | SUPPRESSION


def _children(payload: etree._Element, operation: str, allowed: Sequence[str]) -> dict[str, str]:
    """The operation's element and its simple children by local name (each at most once),
    qualified in the operation's namespace (or, leniently, in none)."""
    expected = cv.tag(operation, operation)
    if payload.tag != expected:
        raise MessageError(f"the body of a {operation} request must be {expected}, not {payload.tag}")
    ns = cv.namespace(operation)
    values: dict[str, str] = {}
    for child in payload:
        if not isinstance(child.tag, str):
            continue
        qname = etree.QName(child)
        if qname.namespace not in (ns, None) or qname.localname not in allowed:
            raise MessageError(
                f"{operation} has no element {child.tag} (its elements: {', '.join(allowed) or 'none'}, "
                f"in namespace {ns})"
            )
        if qname.localname in values:
            raise MessageError(f"{operation}: {qname.localname} is given twice")
        values[qname.localname] = (child.text or "").strip()
    return values


def _enumerated(values: dict[str, str], name: str, allowed: Sequence[str], operation: str, default: str = "") -> str:
    value = values.get(name, "") or default
    if value not in allowed:
        shown = repr(value) if value else "missing"
        raise MessageError(f"{operation}: {name} is {shown}; expected one of {', '.join(allowed)}")
    return value


def parse_set_authorization(payload: etree._Element) -> SetAuthorization:
    values = _children(payload, cv.SET_AUTHORIZATION, ("action", "role"))
    action = _enumerated(values, "action", cv.AUTHORIZATION_ACTIONS, cv.SET_AUTHORIZATION)
    role = values.get("role", "")
    if role and role not in cv.ROLES:
        raise MessageError(f"setAuthorization: role is {role!r}; expected {', '.join(cv.ROLES)} or none")
    return SetAuthorization(action, role == cv.ROLE_ATTENDING)


def parse_list_authorizations(payload: etree._Element) -> ListAuthorizations:
    values = _children(payload, cv.LIST_AUTHORIZATION_BY_PATIENT, ("mode",))
    # No mode: all of them, as TOUTE (the element is optional).
    return ListAuthorizations(
        _enumerated(values, "mode", cv.MODES, cv.LIST_AUTHORIZATION_BY_PATIENT, default=cv.MODE_ALL)
    )


def parse_date(value: str, what: str) -> dt.datetime:
    """A DMP timestamp YYYYMMDDhhmmss (UTC), or a day YYYYMMDD."""
    for pattern in (cv.DATE_FORMAT, "%Y%m%d"):
        if len(value) == len(dt.datetime(2000, 1, 1).strftime(pattern)):
            try:
                return dt.datetime.strptime(value, pattern).replace(tzinfo=dt.UTC)
            except ValueError:
                break
    raise MessageError(f"{what} {value!r} is not a date YYYYMMDDhhmmss")


def parse_patient_list(payload: etree._Element) -> PatientList:
    values = _children(payload, cv.PATIENT_LIST, ("startDate", "dateType", "psOwnerId"))
    start = values.get("startDate", "")
    date_type = values.get("dateType", "")
    if date_type and date_type not in cv.DATE_TYPES:
        raise MessageError(f"patientList: dateType is {date_type!r}; expected one of {', '.join(cv.DATE_TYPES)}")
    return PatientList(
        parse_date(start, "patientList: startDate") if start else None,
        date_type or cv.DATE_LAST_AUTHORIZATION,
        values.get("psOwnerId", ""),
    )


def _channel(values: dict[str, str], operation: str) -> tuple[str, str]:
    kind = _enumerated(values, "type", cv.CHANNEL_TYPES, operation)
    canal = values.get("canal", "")
    if not canal:
        raise MessageError(f"{operation}: canal (the phone number or e-mail address) is missing")
    if kind == cv.CHANNEL_EMAIL and ("@" not in canal or " " in canal):
        raise MessageError(f"{operation}: canal {canal!r} is not an e-mail address")
    if kind == cv.CHANNEL_SMS and not canal.lstrip("+").replace(" ", "").isdigit():
        raise MessageError(f"{operation}: canal {canal!r} is not a phone number")
    return kind, canal


def parse_create_patient_access(payload: etree._Element) -> CreatePatientAccess:
    values = _children(payload, cv.CREATE_PATIENT_ACCESS, ("type", "canal"))
    return CreatePatientAccess(*_channel(values, cv.CREATE_PATIENT_ACCESS))


def parse_patient_otp_update(payload: etree._Element) -> PatientOtpUpdate:
    values = _children(payload, cv.PATIENT_OTP_UPDATE, ("type", "canal", "action"))
    kind, canal = _channel(values, cv.PATIENT_OTP_UPDATE)
    return PatientOtpUpdate(kind, canal, _enumerated(values, "action", cv.OTP_ACTIONS, cv.PATIENT_OTP_UPDATE))


def parse_update_patient_access(payload: etree._Element) -> None:
    _children(payload, cv.UPDATE_PATIENT_ACCESS, ())


def parse_identity_certification(payload: etree._Element) -> None:
    _children(payload, cv.IDENTITY_CERTIFICATION, ("nirOD", "dateNaissance", "rangNaissance", "nirIndividu"))


# --- responses --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizationEntry:
    """One professional of TD1.6's list."""

    national_id: str
    first_name: str
    last_name: str
    specialties: tuple[str, ...]  # codeSpeciality
    labels: tuple[str, ...]  # libSpeciality
    start: dt.datetime | None
    last_action: dt.datetime | None
    mode: str  # ACTIVE | INTERDITE
    specific_rights: tuple[str, ...] = ()  # MEDECIN_TRAITANT


@dataclass(frozen=True)
class PatientEntry:
    """One DMP of TD0.4's list; an empty text is left out (the record does not know it)."""

    identifiers: tuple[tuple[str, str], ...]  # (nationalId, nationalIdType)
    last_name: str
    first_name: str
    birth_date: str  # YYYYMMDD
    attending: bool
    message: bool
    last_access: dt.datetime | None
    last_update: dt.datetime | None
    last_add: dt.datetime | None
    patronymical_name: str = ""
    civility: str = ""


def stamp(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime(cv.DATE_FORMAT) if value is not None else ""


def _output(operation: str) -> tuple[etree._Element, etree._Element]:
    ns = cv.namespace(operation)
    response = etree.Element(cv.tag(operation, operation + "Response"), nsmap={"ns1": ns})
    return response, etree.SubElement(response, f"{{{ns}}}output")


def _add(parent: etree._Element, operation: str, name: str, text: str | None) -> None:
    if text is None:
        return
    etree.SubElement(parent, cv.tag(operation, name)).text = text


def _close(output: etree._Element, operation: str, status: str, context: str | None) -> None:
    _add(output, operation, "status", status)
    _add(output, operation, "context", context)


def status_response(operation: str, status: str, context: str | None = "") -> etree._Element:
    """`output{status, context}` alone: every refusal, and the answers that carry nothing else."""
    response, output = _output(operation)
    _close(output, operation, status, context)
    return response


def authorizations_response(entries: Iterable[AuthorizationEntry], context: str = "") -> etree._Element:
    op = cv.LIST_AUTHORIZATION_BY_PATIENT
    response, output = _output(op)
    for entry in entries:
        item = etree.SubElement(output, cv.tag(op, "listOfAuthorizationByPatient"))
        _add(item, op, "nationalId", entry.national_id)
        _add(item, op, "nationalIdType", cv.PROFESSIONAL_ID_TYPE)
        _add(item, op, "firstName", entry.first_name or None)
        _add(item, op, "lastName", entry.last_name or None)
        for code in entry.specialties:
            _add(item, op, "codeSpeciality", code)
        for label in entry.labels:
            _add(item, op, "libSpeciality", label)
        _add(item, op, "startOfAuthorization", stamp(entry.start) or None)
        _add(item, op, "lastActionDate", stamp(entry.last_action) or None)
        _add(item, op, "mode", entry.mode)
        for right in entry.specific_rights:
            _add(item, op, "specificRight", right)
    _close(output, op, cv.STATUS_OK, context)
    return response


def patient_list_response(entries: Iterable[PatientEntry]) -> etree._Element:
    op = cv.PATIENT_LIST
    response, output = _output(op)
    for entry in entries:
        item = etree.SubElement(output, cv.tag(op, "patientlistData"))
        for national_id, id_type in entry.identifiers:
            identifier = etree.SubElement(item, cv.tag(op, "patientIdentifier"))
            _add(identifier, op, "nationalId", national_id)
            _add(identifier, op, "nationalIdType", id_type)
        _add(item, op, "lastName", entry.last_name or None)
        _add(item, op, "patronymicalName", entry.patronymical_name or None)
        _add(item, op, "firstName", entry.first_name or None)
        _add(item, op, "civility", entry.civility or None)
        _add(item, op, "dateOfBirth", entry.birth_date or None)
        _add(item, op, "MT", "true" if entry.attending else "false")
        _add(item, op, "message", "true" if entry.message else "false")
        _add(item, op, "lastAccessDate", stamp(entry.last_access) or None)
        _add(item, op, "lastUpdateDate", stamp(entry.last_update) or None)
        _add(item, op, "lastAddDate", stamp(entry.last_add) or None)
    # The DMP's TD0.4 answer carries a status and no context.
    _close(output, op, cv.STATUS_OK, None)
    return response


def access_response(operation: str, login: str, password: str) -> etree._Element:
    """TD1.5a, TD1.5d: the account's login and its new password, in clear, once."""
    response, output = _output(operation)
    _add(output, operation, "login", login)
    _add(output, operation, "password", password)
    _close(output, operation, cv.STATUS_OK, "")
    return response


def read_status(response: etree._Element) -> tuple[str, str]:
    """(status, context) of a response this module wrote (tests, the trace)."""
    output = response[0]
    ns = etree.QName(response).namespace
    return output.findtext(f"{{{ns}}}status") or "", output.findtext(f"{{{ns}}}context") or ""


# --- the LPS's side: requests, and the answers read back ------------------------------------


def request(operation: str, values: Iterable[tuple[str, str]] = ()) -> etree._Element:
    """`operation`'s request element, its children qualified in its namespace, in the order given
    (what the parse_* functions above read): e.g. setAuthorization{action, role}."""
    ns = cv.namespace(operation)
    element = etree.Element(cv.tag(operation, operation), nsmap={None: ns})
    for name, text in values:
        etree.SubElement(element, f"{{{ns}}}{name}").text = text
    return element


@dataclass(frozen=True)
class Output:
    """`<operation>Response/output` read: its status and context, its simple fields (login,
    password...) and its repeated items (listOfAuthorizationByPatient, patientlistData) as
    name -> values (a nested patientIdentifier's nationalId and nationalIdType included)."""

    operation: str
    status: str
    context: str
    fields: dict[str, str]
    items: tuple[dict[str, tuple[str, ...]], ...]

    @property
    def ok(self) -> bool:
        return self.status == cv.STATUS_OK


ITEMS = ("listOfAuthorizationByPatient", "patientlistData")


def read_output(response: etree._Element) -> Output:
    """An answer of the CXF services; ValueError for an element that is none."""
    qname = etree.QName(response)
    operation = qname.localname.removesuffix("Response")
    if operation not in cv.OPERATIONS or qname.localname == operation or len(response) == 0:
        raise ValueError(f"<{qname.localname}> is not an answer of the DMP's habilitations or patients services")
    output = response[0]
    fields: dict[str, str] = {}
    items: list[dict[str, tuple[str, ...]]] = []
    for child in output:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        if name in ITEMS:
            values: dict[str, tuple[str, ...]] = {}
            for part in child.iter():
                if part is child or not isinstance(part.tag, str) or len(part):
                    continue
                local = etree.QName(part).localname
                values[local] = values.get(local, ()) + ((part.text or "").strip(),)
            items.append(values)
        else:
            fields[name] = (child.text or "").strip()
    return Output(operation, fields.pop("status", ""), fields.pop("context", ""), fields, tuple(items))
