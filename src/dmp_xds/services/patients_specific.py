"""The DMP's `patientsSpecific` service (TD0.4 list of authorized DMPs; TD1.5a/b/d the patient's
web account) and `patientCertif` (TD0.0, closed).

One policy decision per operation (dmp/policy.py), one trace row per call (services/cxf_call.py).
The web account's password leaves the server once, in clear, in the answer (as the DMP gives it
to the professional who hands it over); only its scrypt hash is kept.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lxml import etree

from dmp_xds.dmp import cxf_messages as m
from dmp_xds.dmp import cxf_vocabulary as cv
from dmp_xds.dmp.model import DmpRecord
from dmp_xds.dmp.policy import is_attending, list_patients, patient_web_access
from dmp_xds.security.passwords import hash_password, new_login, new_password
from dmp_xds.security.vihf import Principal, split_cx
from dmp_xds.services.cxf_call import CxfCall, CxfRefusal, invalid
from dmp_xds.services.gate import SecurityServices
from dmp_xds.storage import trail as t
from dmp_xds.storage.patient_accounts import Channel, LoginTaken, PatientAccount, PatientAccountStore

LOGIN_ATTEMPTS = 8  # a new login is drawn again when it is taken
# What TD0.4's lastAccessDate counts: the caller's last opening of the record (its documents),
# read from the access trace.
ACCESSES = (t.SEARCH, t.RETRIEVE, t.SUBMIT, t.UPDATE, t.DELETE)


@dataclass(frozen=True)
class ListedIdentity:
    """The patient's names and birth date, as TD0.4 lists them ("" = not known: left out)."""

    last_name: str = ""
    first_name: str = ""
    birth_date: str = ""  # YYYYMMDD
    patronymical_name: str = ""
    civility: str = ""


def listed_identity(record: DmpRecord) -> ListedIdentity:
    """What TD0.4 says of a patient, from the record's administrative data: the usage name (the
    birth name when there is none), the first given name, the birth name as patronymical name."""
    known = record.demographics
    return ListedIdentity(
        last_name=known.usage_name or known.birth_name,
        first_name=known.given_names[0] if known.given_names else "",
        birth_date=known.birth_date,
        patronymical_name=known.birth_name,
        civility=known.prefix,
    )


def patient_list(call: CxfCall, payload: etree._Element) -> etree._Element:
    """TD0.4: the open DMPs the caller is authorized on (its own grants; for an establishment's
    professional, the establishment's too), since `startDate` by the date `dateType` names."""
    request = m.parse_patient_list(payload)
    principal = call.principal
    by_new_authorizations = request.date_type != cv.DATE_LAST_DOCUMENT
    call.admit(list_patients(principal, call.now, by_new_authorizations), None, about_a_record=False)
    if request.ps_owner and request.ps_owner != principal.user_id:
        raise CxfRefusal(
            cv.STATUS_ACCESS_DENIED,
            f"psOwnerId {request.ps_owner} is not the caller ({principal.user_id}): this server has no "
            "directory to check that they work in the caller's structure, so it lists the caller's own DMPs only",
            t.DENIED,
        )
    entries = authorized_patients(call.security, principal, call.now, request.start, request.date_type)
    call.detail = f"{len(entries)} DMP(s) listed ({request.date_type} since {m.stamp(request.start) or 'ever'})"
    return m.patient_list_response(entries)


def authorized_patients(
    security: SecurityServices,
    principal: Principal,
    now: dt.datetime,
    start: dt.datetime | None = None,
    date_type: str = cv.DATE_LAST_AUTHORIZATION,
) -> list[m.PatientEntry]:
    """TD0.4's entries, once the policy allowed the list (`list_patients`): the open DMPs the
    caller is authorized on, since `start` by the date `date_type` names (None: all); for SOAP and
    the professionals' dashboard alike."""
    # An establishment's professional, and a CPE card (the rights matrix's footnote 2: the DMPs of
    # its own structure), list what their establishment is authorized on too.
    structure = principal.structure_id if principal.vouched_by or principal.is_cpe else ""
    found = security.records.authorized_on(principal.user_id, structure)
    patient_ids = [record.patient_id for record, _ in found]
    added = security.records.last_additions(patient_ids)
    accessed = security.audit.last_accesses(principal.user_id, patient_ids, ACCESSES)
    changed = security.audit.last_accesses(None, patient_ids, t.DOCUMENT_CHANGES)
    entries = []
    for record, grant in found:
        last_add = added.get(record.patient_id)
        if start is not None:
            since = grant.granted_at if date_type == cv.DATE_LAST_AUTHORIZATION else last_add
            if since is None or since < start:
                continue
        known = listed_identity(record)
        national_id, root = split_cx(record.patient_id)
        entries.append(
            m.PatientEntry(
                ((national_id, root or cv.INS_ID_TYPE),),
                known.last_name,
                known.first_name,
                known.birth_date,
                attending=is_attending(principal, record.state, now),
                message=False,  # no messages between the DMP and professionals here
                last_access=accessed.get(record.patient_id),
                last_update=changed.get(record.patient_id),
                last_add=last_add,
                patronymical_name=known.patronymical_name,
                civility=known.civility,
            )
        )
    return entries


def _accounts(call: CxfCall) -> PatientAccountStore:
    return PatientAccountStore(call.records.engine)


def _admit_web_access(call: CxfCall) -> DmpRecord:
    record = call.record()
    state = record.state if record else None
    call.admit(patient_web_access(call.principal, state, call.now), state)
    assert record is not None
    return record


def _account(call: CxfCall, patient_id: str) -> PatientAccount:
    account = _accounts(call).get(patient_id)
    if account is None:
        raise CxfRefusal(
            cv.STATUS_ACCESS_NOT_FOUND,
            f"patient {patient_id} has no web account: create it first (createPatientAccess)",
        )
    return account


def create_patient_access(call: CxfCall, payload: etree._Element) -> etree._Element:
    """TD1.5a: the patient's web account, with its first one-time-password channel."""
    request = m.parse_create_patient_access(payload)
    record = _admit_web_access(call)
    accounts = _accounts(call)
    if accounts.get(record.patient_id) is not None:
        raise CxfRefusal(
            cv.STATUS_ACCESS_EXISTS,
            f"patient {record.patient_id} already has a web account: give them new credentials (updatePatientAccess)",
        )
    password = new_password()
    hashed = hash_password(password)
    for _ in range(LOGIN_ATTEMPTS):
        try:
            account = accounts.create(
                record.patient_id, new_login(), hashed, Channel(request.type, request.canal), call.principal.user_id
            )
            break
        except LoginTaken:
            if accounts.get(record.patient_id) is not None:
                raise CxfRefusal(
                    cv.STATUS_ACCESS_EXISTS, f"patient {record.patient_id} already has a web account"
                ) from None
    else:
        raise CxfRefusal(cv.STATUS_INVALID_REQUEST, "no free login could be drawn: try again")
    call.detail = f"web account {account.login} created, one-time passwords by {request.type}"
    return m.access_response(cv.CREATE_PATIENT_ACCESS, account.login, password)


def patient_otp_update(call: CxfCall, payload: etree._Element) -> etree._Element:
    """TD1.5b: add, change (the channel of that type) or remove a one-time-password channel."""
    request = m.parse_patient_otp_update(payload)
    record = _admit_web_access(call)
    account = _account(call, record.patient_id)
    channel = Channel(request.type, request.canal)
    channels = list(account.channels)
    if request.action == cv.ACTION_ADD:
        if channel not in channels:
            channels.append(channel)
    elif request.action == cv.ACTION_CHANGE:
        if not any(c.type == request.type for c in channels):
            raise invalid(f"the account has no {request.type} channel to change: add one (AJOUT)")
        channels = [c for c in channels if c.type != request.type] + [channel]
    else:
        if channel not in channels:
            raise invalid(f"the account has no {request.type} channel {request.canal!r} to remove")
        if len(channels) == 1:
            raise invalid("the account's last one-time-password channel cannot be removed: add another first")
        channels.remove(channel)
    _accounts(call).set_channels(record.patient_id, tuple(channels))
    call.detail = f"{request.action} {request.type} channel; {len(channels)} channel(s) now"
    return m.status_response(cv.PATIENT_OTP_UPDATE, cv.STATUS_OK, cv.CONTEXT_OTP_UPDATED)


def update_patient_access(call: CxfCall, payload: etree._Element) -> etree._Element:
    """TD1.5d: a new temporary password for the account (its login stays), which unlocks it."""
    m.parse_update_patient_access(payload)
    record = _admit_web_access(call)
    account = _account(call, record.patient_id)
    password = new_password()
    _accounts(call).set_password(record.patient_id, hash_password(password))
    call.detail = f"web account {account.login}: new temporary password"
    return m.access_response(cv.UPDATE_PATIENT_ACCESS, account.login, password)


def identity_certification(call: CxfCall, payload: etree._Element) -> etree._Element:
    """TD0.0: withdrawn by the DMP on 30/09/2023; the request is read, then refused so."""
    m.parse_identity_certification(payload)
    raise CxfRefusal(cv.STATUS_SERVICE_CLOSED, cv.IDENTITY_CERTIFICATION_CLOSED)
