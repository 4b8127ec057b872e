"""One call of the DMP's CXF-style services (habilitations, patientsSpecific, patientCertif),
free of any transport: the authenticated principal, the operation, exactly one trace row, and
the response the DMP gives, success or not.

These services answer a refusal in their response, not with a SOAP fault: `output{status,
context}` with the status naming why (dmp/cxf_vocabulary.py STATUS_*) and the context saying it in
words; the DMP's kit reads `status` and nothing else. Only what is wrong below the operation
(not SOAP, not authenticated) is a fault, from the transport and the gate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from dmp_xds.dmp import cxf_vocabulary as cv
from dmp_xds.dmp.cxf_messages import MessageError, status_response
from dmp_xds.dmp.model import DmpError, DmpRecord
from dmp_xds.dmp.policy import CLOSED, Decision, RecordState, blocked
from dmp_xds.security.vihf import Principal
from dmp_xds.services.context import Services
from dmp_xds.services.gate import SecurityServices, trace_access
from dmp_xds.storage import trail as t
from dmp_xds.storage.records import DmpStore


class CxfRefusal(Exception):
    """The operation stops here: `status` and `reason` (the context) go back, `outcome` into the trace."""

    def __init__(self, status: str, reason: str, outcome: str = t.FAILURE) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.outcome = outcome


def invalid(reason: str) -> CxfRefusal:
    return CxfRefusal(cv.STATUS_INVALID_REQUEST, reason)


@dataclass
class CxfCall:
    """One authenticated call, and what its trace row will say."""

    security: SecurityServices
    services: Services
    principal: Principal
    now: dt.datetime
    operation: str
    trace_action: str
    detail: str = ""

    @property
    def records(self) -> DmpStore:
        return self.security.records

    def record(self) -> DmpRecord | None:
        """The DMP of the VIHF's patient: the patient every operation but TD0.4 is about."""
        return self.records.get(self.principal.patient_id)

    def admit(self, decision: Decision, record: RecordState | None, about_a_record: bool = True) -> None:
        """Go on if the policy allows, else refuse with the status that says why.
        `about_a_record`: False for an operation on no one record (TD0.4's list), whose refusal
        is about the caller's rights, never a missing DMP."""
        self.detail = decision.reason
        if not decision.allowed:
            status = refusal_status(self.principal, record, self.now) if about_a_record else cv.STATUS_ACCESS_DENIED
            raise CxfRefusal(status, decision.reason, t.DENIED)


def refusal_status(principal: Principal, record: RecordState | None, now: dt.datetime) -> str:
    """The status of a policy refusal, from the facts behind it (the policy gives the words)."""
    if record is None:
        return cv.STATUS_NOT_FOUND
    if record.status == CLOSED:
        return cv.STATUS_CLOSED
    if principal.is_professional and blocked(principal.user_id, record, now) is not None:
        return cv.STATUS_BLOCKED
    return cv.STATUS_ACCESS_DENIED


def perform(
    services: Services,
    principal: object | None,
    operation: str,
    trace_action: str,
    work: Callable[[CxfCall], etree._Element],
) -> etree._Element:
    """Authenticated principal -> operation (`work`) -> one trace row -> the response (a refusal
    is a response too: its status and context)."""
    security = services.security
    if security is None or not isinstance(principal, Principal):
        # Without authentication nobody can be told apart: no record, no rights, no trace.
        return status_response(
            operation,
            cv.STATUS_AUTHENTICATION_REQUIRED,
            "the DMP's services need authentication (DMP_XDS_AUTH=vihf: client certificate and VIHF)",
        )
    call = CxfCall(security, services, principal, dt.datetime.now(dt.UTC), operation, trace_action)
    try:
        response = work(call)
    except MessageError as exc:
        return _refused(call, CxfRefusal(cv.STATUS_INVALID_REQUEST, str(exc)))
    except CxfRefusal as refused:
        return _refused(call, refused)
    except DmpError as exc:  # the record changed between the decision and the change
        return _refused(call, CxfRefusal(cv.STATUS_INVALID_REQUEST, str(exc)))
    except BaseException:
        call.detail = "internal error"
        _trace(call, t.FAILURE)
        raise  # the transport logs it and answers with a reference, never a stack trace
    _trace(call, t.SUCCESS)
    return response


def _refused(call: CxfCall, refused: CxfRefusal) -> etree._Element:
    call.detail = f"{refused.status}: {refused.reason}"
    _trace(call, refused.outcome)
    return status_response(call.operation, refused.status, refused.reason)


def _trace(call: CxfCall, outcome: str) -> None:
    trace_access(call.security, call.principal, call.trace_action, outcome, detail=call.detail)
