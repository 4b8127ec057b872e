"""The DMP's `habilitations` service: TD0.3 (a professional declares or drops their own
authorization, or the attending-doctor role) and TD1.6 (who may, and who may not, access the
record: a professional the patient blocked, through the operator's `dmp-xds dmp block` until
the patient's web space does it, is listed INTERDITE).

The record's authorizations (storage/records.py, policy.Authorization) are the one list of who
may come in: TD0.3 adds or revokes the caller's own grant, a block is a grant of kind `blocked`.
One policy decision per operation (dmp/policy.py), one trace row per call (services/cxf_call.py).
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from dmp_xds.dmp import cxf_messages as m
from dmp_xds.dmp import cxf_vocabulary as cv
from dmp_xds.dmp.policy import (
    KIND_ATTENDING,
    KIND_BLOCKED,
    KIND_PROFESSIONAL,
    Authorization,
    RecordState,
    list_authorizations,
    self_authorization,
)
from dmp_xds.security.vihf import Principal
from dmp_xds.services.cxf_call import CxfCall
from dmp_xds.storage.records import DmpStore, Grantee


def grantee_of(principal: Principal) -> Grantee:
    """Who the professional is, as their card (or else their VIHF) names them."""
    signer = principal.signer
    if signer.kind == "professional" and signer.national_id == principal.user_id:
        first, last = signer.given_name, signer.family_name
    else:
        first, last = "", principal.name
    return Grantee(first, last, cv.specialties(principal.roles))


def _active(record_grants: tuple[Authorization, ...], kind: str, grantee: str, now: dt.datetime) -> bool:
    return any(a.kind == kind and a.grantee == grantee and a.active(now) for a in record_grants)


def declare(
    records: DmpStore, principal: Principal, state: RecordState, attending: bool, now: dt.datetime
) -> Authorization | None:
    """TD0.3 AJOUT, once the policy allowed it: the caller's own grant (or attending doctor's
    role), None when they already hold it (nothing done, as the DMP answers DMPOk)."""
    kind = KIND_ATTENDING if attending else KIND_PROFESSIONAL
    if _active(state.authorizations, kind, principal.user_id, now):
        return None
    return records.grant(state.patient_id, kind, principal.user_id, principal.user_id, identity=grantee_of(principal))


def set_authorization(call: CxfCall, payload: etree._Element) -> etree._Element:
    """TD0.3. AJOUT: the caller is authorized (role MEDECIN_TRAITANT: is the attending doctor);
    SUPPRESSION: they no longer are (with the role: they stay authorized, no longer attending).
    Asking for what is already so answers DMPOk and changes nothing, as the DMP does."""
    request = m.parse_set_authorization(payload)
    adding = request.action == cv.ACTION_ADD
    record = call.record()
    state = record.state if record else None
    call.admit(self_authorization(call.principal, state, adding, request.attending, call.now), state)
    assert state is not None
    user, patient = call.principal.user_id, state.patient_id
    role = "attending doctor" if request.attending else "authorization"
    if adding:
        grant = declare(call.records, call.principal, state, request.attending, call.now)
        if grant is None:
            call.detail = f"{role} of {user} already present: nothing done"
            return m.status_response(cv.SET_AUTHORIZATION, cv.STATUS_OK, cv.CONTEXT_ALREADY_AUTHORIZED)
        call.detail = f"{user} declared {'attending doctor' if request.attending else 'authorized'}" + (
            f" until {grant.expires_at:%Y-%m-%d}"
        )
        return m.status_response(cv.SET_AUTHORIZATION, cv.STATUS_OK, "")
    if request.attending:
        revoked = call.records.revoke(patient, user, KIND_ATTENDING)
        if revoked and not _active(state.authorizations, KIND_PROFESSIONAL, user, call.now):
            # Stepping down as attending doctor is not leaving the patient: they stay authorized.
            call.records.grant(patient, KIND_PROFESSIONAL, user, user, identity=grantee_of(call.principal))
        call.detail = (
            f"{user} is no longer the attending doctor"
            if revoked
            else f"{user} was not the attending doctor: nothing done"
        )
        return m.status_response(
            cv.SET_AUTHORIZATION, cv.STATUS_OK, "" if revoked else "no attending doctor role to remove: nothing done"
        )
    revoked = sum(call.records.revoke(patient, user, k) for k in (KIND_PROFESSIONAL, KIND_ATTENDING))
    call.detail = (
        f"{user}: {revoked} authorization(s) withdrawn" if revoked else f"{user} was not authorized: nothing done"
    )
    return m.status_response(
        cv.SET_AUTHORIZATION, cv.STATUS_OK, "" if revoked else "no authorization to remove: nothing done"
    )


def authorization_entries(grants: tuple[Authorization, ...], mode: str, now: dt.datetime) -> list[m.AuthorizationEntry]:
    """TD1.6's list: one entry per professional, ACTIVE (authorized, or attending doctor:
    specificRight MEDECIN_TRAITANT) or INTERDITE (blocked), as `mode` asks. Establishments'
    grants are not professionals: not listed."""
    by_grantee: dict[str, list[Authorization]] = {}
    for grant in grants:
        if grant.kind in (KIND_PROFESSIONAL, KIND_ATTENDING, KIND_BLOCKED) and grant.active(now):
            by_grantee.setdefault(grant.grantee, []).append(grant)
    entries = []
    for grantee, held in by_grantee.items():
        is_blocked = any(g.kind == KIND_BLOCKED for g in held)
        shown = cv.MODE_BLOCKED if is_blocked else cv.MODE_ACTIVE
        if mode not in (cv.MODE_ALL, shown):
            continue
        named = next((g for g in reversed(held) if g.first_name or g.last_name or g.specialties), held[-1])
        starts = [g.granted_at for g in held if g.granted_at is not None]
        actions = [g.last_action_at for g in held if g.last_action_at is not None]
        entries.append(
            m.AuthorizationEntry(
                grantee,
                named.first_name,
                named.last_name,
                named.specialties,
                tuple(cv.specialty_label(code) for code in named.specialties),
                min(starts) if starts else None,
                max(actions) if actions else None,
                shown,
                (cv.ROLE_ATTENDING,) if not is_blocked and any(g.kind == KIND_ATTENDING for g in held) else (),
            )
        )
    return entries


def list_authorization_by_patient(call: CxfCall, payload: etree._Element) -> etree._Element:
    """TD1.6."""
    request = m.parse_list_authorizations(payload)
    record = call.record()
    state = record.state if record else None
    call.admit(list_authorizations(call.principal, state, call.now), state)
    assert state is not None
    entries = authorization_entries(state.authorizations, request.mode, call.now)
    call.detail = f"{request.mode}: {len(entries)} professional(s) listed"
    return m.authorizations_response(entries)
