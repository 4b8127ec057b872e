"""The DMP's HL7 V3 patient services, free of any transport: GDP ("gestion du dossier patient
partagé": TD0.2 existence test, TD1.3a consultation, TD1.1 creation, TD1.2 reactivation, TD1.3b
modification, TD1.4 closure) and PDQ V3 (TD0.5, search of a patient without INS).

Each operation: the principal the gate proved (client certificate + VIHF), the message read
(dmp/hl7v3/parse.py), the VIHF's patient checked against the message's, the record's state, the
policy's decision (`decide`, `may_search`: the only places these services ask the policy), the
record changed (storage/records.py: the same close and reopen as `dmp-xds dmp`), exactly one
access-trace row whatever happens, and the HL7 answer: AA, or AE with an acknowledgementDetail
code and a text saying why. Refusals are answers here, not faults: the DMP's LPS read them so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from dmp_xds.dmp.hl7v3 import build
from dmp_xds.dmp.hl7v3 import vocabulary as hv
from dmp_xds.dmp.hl7v3.build import Ack
from dmp_xds.dmp.hl7v3.parse import (
    Header,
    Hl7Error,
    parse_find_candidates,
    parse_get_demographics,
    parse_patient_add,
    parse_revise,
    read_header,
)
from dmp_xds.dmp.model import Consent, DmpError, DmpRecord
from dmp_xds.dmp.policy import (
    CLOSED,
    Action,
    Decision,
    RecordState,
    administration_access,
    allow,
    deny,
    matrix_access,
)
from dmp_xds.dmp.rights_matrix import Row
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.vihf import Principal, same_patient
from dmp_xds.services.context import Services
from dmp_xds.services.gate import SecurityServices, trace_access
from dmp_xds.storage import trail as t
from dmp_xds.storage.patient_accounts import PatientAccountStore

# The policy's action for each reason code (TEST_EXST has none: see `decide`).
REASON_ACTIONS: dict[str, Action] = {
    hv.CNSLT_DATA: Action.READ_STATUS,
    hv.MODIF_DATA: Action.UPDATE_CONSENT,
    hv.FERM: Action.CLOSE,
    hv.REAC: Action.REOPEN,
    hv.CREA_RD: Action.CREATE,
}
# The trace action of each reason code.
REASON_TRACES: dict[str, str] = {
    hv.TEST_EXST: t.DMP_READ,
    hv.CNSLT_DATA: t.DMP_READ,
    hv.MODIF_DATA: t.DMP_UPDATE,
    hv.FERM: t.DMP_CLOSE,
    hv.REAC: t.DMP_REOPEN,
    hv.CREA_RD: t.DMP_CREATE,
}


def decide(
    principal: Principal, patient_id: str, record: RecordState | None, reason: str, now: dt.datetime
) -> Decision:
    """May `principal` do what `reason` asks on the DMP of `patient_id`? The existence test
    (TD0.2) is open to every user the VIHF names for that patient, authorized or not: its answer
    tells them whether they are (the rights matrix: every profile, every mode)."""
    if reason == hv.TEST_EXST:
        if not same_patient(principal.patient_id, patient_id):
            return deny("the VIHF is about another patient than the request")
        return allow("the existence test is open to every user of the patient's VIHF")
    return administration_access(principal, patient_id, record, REASON_ACTIONS[reason], now)


def may_search(principal: Principal, now: dt.datetime) -> Decision:
    """PDQ (TD0.5) serves the emergency regulation centres only: a professional whose VIHF says
    the regulation access mode (centre_15), as the rights matrix allows it (profiles A, B, F)."""
    if not principal.is_professional:
        return deny("the search of a patient without INS (TD0.5) is for health professionals only")
    verdict = matrix_access(principal, Row.SEARCH_WITHOUT_INS, None, now)
    if principal.access_mode != sv.ACCESS_REGULATION:
        return deny(
            f"{verdict.reason}: the search of a patient without INS is open in regulation mode only "
            f"(the VIHF's access mode must be {sv.ACCESS_REGULATION}, not {principal.access_mode})"
        )
    if not verdict.allowed:
        return verdict
    return allow(f"search by an emergency regulation centre ({sv.ACCESS_REGULATION}); {verdict.reason}")


class Refusal(Exception):
    """The operation stops here with an AE: `code` (acknowledgementDetail) and `text`; `outcome`
    goes into the trace."""

    def __init__(self, code: str, text: str, outcome: str = t.FAILURE) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.outcome = outcome


@dataclass
class _Seen:
    """What the answer to a refusal repeats of the request, as far as it was read."""

    reason: str = ""
    query_id: tuple[str, str] = ("", "")
    query: etree._Element | None = None


@dataclass
class PatientCall:
    """One authenticated HL7 V3 request, and what its trace row will say."""

    security: SecurityServices
    principal: Principal
    now: dt.datetime
    trace_action: str
    patient_id: str = ""  # the message's patient, once read; until then the VIHF's
    detail: str = ""

    def trace(self, outcome: str) -> None:
        trace_access(
            self.security, self.principal, self.trace_action, outcome, detail=self.detail, patient_id=self.patient_id
        )


def _answer(
    services: Services,
    principal: object | None,
    trace_action: str,
    work: Callable[[PatientCall], etree._Element],
    refuse: Callable[[Ack, dt.datetime], etree._Element],
) -> etree._Element:
    """Authenticated principal -> operation -> one trace row -> its answer, or the AE of a refusal."""
    now = dt.datetime.now(dt.UTC)
    security = services.security
    if security is None or not isinstance(principal, Principal):
        # Without authentication nobody can be told apart: no patient, no policy, nothing to trace.
        return refuse(
            Ack.error(
                hv.ACCESS_DENIED,
                "the DMP's patient services need authentication (DMP_XDS_AUTH=vihf: client certificate and VIHF)",
            ),
            now,
        )
    call = PatientCall(security, principal, now, trace_action)
    try:
        result = work(call)
    except Refusal as refused:
        call.detail = refused.text
        call.trace(refused.outcome)
        return refuse(Ack.error(refused.code, refused.text), now)
    except Hl7Error as bad:
        call.detail = bad.text
        call.trace(t.FAILURE)
        return refuse(Ack.error(bad.code, bad.text), now)
    except DmpError as exc:  # the record changed between the decision and the change
        call.detail = str(exc)
        call.trace(t.FAILURE)
        return refuse(Ack.error(hv.INVALID_REQUEST, str(exc)), now)
    except BaseException:
        call.detail = "internal error"
        call.trace(t.FAILURE)
        raise  # the transport logs it and answers with a reference, never a stack trace
    call.trace(t.SUCCESS)
    return result


def _admit(call: PatientCall, patient_id: str, reason: str) -> DmpRecord | None:
    """The message's patient against the VIHF's, the record's state, then the policy's decision:
    the record (None: there is none, which only a read or a creation accepts)."""
    call.patient_id = patient_id
    call.trace_action = REASON_TRACES[reason]
    if not same_patient(call.principal.patient_id, patient_id):
        # Whether the DMP exists is said only to a VIHF about its patient.
        raise Refusal(
            hv.ACCESS_DENIED,
            f"access refused: the VIHF is about patient {call.principal.patient_id}, the message about {patient_id}",
            t.DENIED,
        )
    record = call.security.records.get(patient_id)
    if record is None and reason not in (*hv.READ_REASONS, hv.CREA_RD):
        raise Refusal(hv.DMP_NOT_FOUND, f"patient {patient_id} has no DMP")
    if record is not None:
        closed = record.state.status == CLOSED
        if reason == hv.CREA_RD:
            raise Refusal(
                hv.DMP_FOUND if not closed else hv.DMP_CLOSED,
                f"patient {patient_id} already has a DMP ({'closed: reactivate it (REAC)' if closed else 'active'})",
            )
        if reason == hv.REAC and not closed:
            raise Refusal(hv.DMP_FOUND, f"the DMP of {patient_id} is already active")
        if reason in (hv.FERM, hv.MODIF_DATA) and closed:
            raise Refusal(
                hv.DMP_CLOSED,
                f"the DMP of {patient_id} is already closed"
                if reason == hv.FERM
                else f"the DMP of {patient_id} is closed: reactivate it (REAC) first",
            )
    if record is None and reason in hv.READ_REASONS:
        return None
    decision = decide(call.principal, patient_id, record.state if record else None, reason, call.now)
    call.detail = decision.reason
    if not decision.allowed:
        raise Refusal(hv.ACCESS_DENIED, f"access refused: {decision.reason}", t.DENIED)
    return record


# --- GDP-read: TD0.2, TD1.3a ---------------------------------------------------------------------


def get_demographics(services: Services, principal: object | None, payload: etree._Element) -> etree._Element:
    header = read_header(payload)
    seen = _Seen()

    def work(call: PatientCall) -> etree._Element:
        request = parse_get_demographics(payload)
        seen.reason, seen.query_id = request.reason, request.query_id
        record = _admit(call, request.patient_id, request.reason)
        if record is None:
            call.detail = "no DMP for this patient (NF)"
            return build.demographics_response(header, request.reason, request.query_id, call.now, Ack())
        attention = build.attention(call.principal, record.state, call.now) if request.reason == hv.TEST_EXST else None
        if request.reason == hv.TEST_EXST:
            # Read here, not with every record: the existence test alone tells it.
            account_open = PatientAccountStore(call.security.records.engine).is_open(record.patient_id)
            record = dataclasses.replace(record, web_account_open=account_open)
        if attention is not None:
            call.detail += f"; authorization {attention.authorization}"
        return build.demographics_response(header, request.reason, request.query_id, call.now, Ack(), record, attention)

    def refuse(ack: Ack, now: dt.datetime) -> etree._Element:
        return build.demographics_response(header, seen.reason, seen.query_id, now, ack)

    return _answer(services, principal, t.DMP_READ, work, refuse)


# --- GDP-rev: TD1.2, TD1.3b, TD1.4 ----------------------------------------------------------------


def revise(services: Services, principal: object | None, payload: etree._Element) -> etree._Element:
    header = read_header(payload)
    seen = _Seen()

    def work(call: PatientCall) -> etree._Element:
        request = parse_revise(payload)
        seen.reason = request.reason
        _admit(call, request.patient_id, request.reason)
        records = call.security.records
        author = request.author.national_id or call.principal.user_id
        if request.reason == hv.FERM:
            record = records.close(request.patient_id, request.closure_reason)
            call.detail = f"closed: {request.closure_reason}" + (
                f" ({request.closure_text})"
                if request.closure_text and request.closure_text != request.closure_reason
                else ""
            )
        elif request.reason == hv.REAC:
            if not request.observations.get(hv.CONSENT_REACTIVATION):
                raise Hl7Error(
                    hv.INVALID_REQUEST,
                    f"a DMP is reactivated with the patient's consent: administrativeObservation "
                    f"{hv.CONSENT_REACTIVATION} must be sent with the value true",
                )
            record = records.reopen(request.patient_id)
            call.detail = f"reactivated with the patient's consent, collected by {author}"
        else:
            record = records.update_consent(
                request.patient_id,
                _allowed(request.observations, hv.OPPOSES_BREAK_GLASS),
                _allowed(request.observations, hv.OPPOSES_REGULATION),
                demographics=request.demographics,
            )
            call.detail = (
                f"administrative data changed by {author}; break-glass access "
                f"{'refused' if record.opposes_emergency_access else 'allowed'}; centre 15 "
                f"{'refused' if record.opposes_regulation_access else 'allowed'}"
            )
        return build.revise_response(header, request.reason, call.now, Ack(), record)

    def refuse(ack: Ack, now: dt.datetime) -> etree._Element:
        return build.revise_response(header, seen.reason, now, ack)

    return _answer(services, principal, t.DMP_UPDATE, work, refuse)


def _allowed(observations: dict[str, bool], opposition: str) -> bool | None:
    """An opposition sent (True: the patient opposes) as the consent's choice (None: not sent)."""
    return None if opposition not in observations else not observations[opposition]


# --- PatientAdd: TD1.1 ------------------------------------------------------------------------------


def patient_add(services: Services, principal: object | None, payload: etree._Element) -> etree._Element:
    header = read_header(payload)

    def work(call: PatientCall) -> etree._Element:
        request = parse_patient_add(payload)
        _admit(call, request.patient_id, request.reason)
        # When the LPS says the patient consented; never later than now.
        collected_at = min(request.consent_at or call.now, call.now)
        consent = Consent(
            request.author.national_id or call.principal.user_id,
            collected_at,
            emergency_access_allowed=_allowed(request.observations, hv.OPPOSES_BREAK_GLASS) is not False,
            regulation_access_allowed=_allowed(request.observations, hv.OPPOSES_REGULATION) is not False,
        )
        record = call.security.records.create(request.patient_id, consent, request.demographics)
        call.detail = (
            f"created with the patient's consent, collected by {consent.collected_by}; break-glass access "
            f"{'allowed' if consent.emergency_access_allowed else 'refused'}; centre 15 "
            f"{'allowed' if consent.regulation_access_allowed else 'refused'}"
        )
        return build.add_response(header, call.now, Ack(), record)

    def refuse(ack: Ack, now: dt.datetime) -> etree._Element:
        return build.add_response(header, now, ack)

    return _answer(services, principal, t.DMP_CREATE, work, refuse)


# --- PDQ: TD0.5 ---------------------------------------------------------------------------------------


def find_candidates(services: Services, principal: object | None, payload: etree._Element) -> etree._Element:
    header: Header = read_header(payload)
    seen = _Seen()

    def work(call: PatientCall) -> etree._Element:
        request = parse_find_candidates(payload)
        seen.query_id, seen.query = request.query_id, request.query
        decision = may_search(call.principal, call.now)
        call.detail = decision.reason
        if not decision.allowed:
            raise Refusal(hv.ACCESS_DENIED, f"access refused: {decision.reason}", t.DENIED)
        candidates = call.security.records.search(
            request.family, request.given, request.birth_date, request.gender, hv.PDQ_MAX_CANDIDATES
        )
        # One row for the search, on the VIHF's patient: it names the traits and every candidate.
        call.detail = (
            f"{decision.reason}; traits {request.family}"
            + "".join(f" {v}" for v in (request.given, request.birth_date, request.gender) if v)
            + f"; {len(candidates)} candidate(s)"
            + (": " + ", ".join(r.patient_id for r in candidates) if candidates else "")
        )
        return build.candidates_response(header, request.query_id, request.query, call.now, Ack(), candidates)

    def refuse(ack: Ack, now: dt.datetime) -> etree._Element:
        return build.candidates_response(header, seen.query_id, seen.query, now, ack)

    return _answer(services, principal, t.DMP_SEARCH, work, refuse)
