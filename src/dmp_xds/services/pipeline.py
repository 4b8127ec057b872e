"""One XDS request through the services: authenticate, record gate, transaction, trace.

The transport calls `admit` before the transaction (None when the deployment runs without
authentication, DMP_XDS_AUTH=none), then `Admission.finish` with the transaction's result, or
`Admission.trace(FAILURE)` when it failed: every request of an authenticated caller leaves
exactly one trace row. The DMP record is read once per request: the record-level decision and
the document-level view given to the transaction come from that one read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from lxml import etree

from dmp_xds.dmp.policy import Action, record_access
from dmp_xds.security.errors import FAILED_CHECK, AuthenticationError
from dmp_xds.security.vihf import Principal
from dmp_xds.services.context import TransactionResult
from dmp_xds.services.gate import (
    DocumentAccess,
    SecurityServices,
    authenticate,
    document_access,
    record_state,
    trace_access,
)
from dmp_xds.storage import trail as t
from dmp_xds.xds import vocabulary as v

# The policy action and the trace action of each XDS transaction.
TRANSACTION_POLICY: dict[str, tuple[Action, str]] = {
    v.ACTION_ITI18: (Action.SEARCH, t.SEARCH),
    v.ACTION_ITI43: (Action.RETRIEVE, t.RETRIEVE),
    v.ACTION_ITI41: (Action.SUBMIT, t.SUBMIT),
    v.ACTION_ITI42: (Action.SUBMIT, t.SUBMIT),
    # ITI-57 and ITI-62 need the right to change the record here, then the per-document rights
    # (policy.document_action: masking, status, deletion) inside the transaction.
    v.ACTION_ITI57: (Action.UPDATE, t.UPDATE),
    v.ACTION_ITI62: (Action.DELETE, t.DELETE),
}


@dataclass
class Admission:
    """An authenticated call, allowed at the record level; traced once its outcome is known."""

    security: SecurityServices
    principal: Principal
    action: str  # the trace action
    emergency: bool
    reason: str
    access: DocumentAccess  # what the transaction may show and change

    def trace(self, outcome: str, result: TransactionResult | None = None) -> None:
        """The request's trace row: with the documents it touched and the document-level
        decisions taken inside the transaction, when it got that far."""
        documents, decisions = (result.touched, result.decisions) if result is not None else ((), ())
        trace_access(
            self.security,
            self.principal,
            self.action,
            outcome,
            documents,
            "; ".join((self.reason, *decisions)),
            emergency=self.emergency,
        )

    def finish(self, result: TransactionResult) -> None:
        outcome = t.DENIED if result.denied else outcome_of(result.payload)
        self.trace(outcome, result)


def admit(
    security: SecurityServices | None,
    action: str,
    header: etree._Element | None,
    chain: list[x509.Certificate] | None,
    now: dt.datetime | None = None,
) -> Admission | None:
    """Authenticate (client certificate + VIHF) and apply the record-level policy to the WS-Addressing
    `action`; None when the deployment runs without authentication. Raises AuthenticationError."""
    if security is None:
        return None
    now = now or dt.datetime.now(dt.UTC)
    principal = authenticate(security, header, chain)
    # A transaction not listed needs at least an authorization to the record, like a
    # submission, until it gets its own line here.
    policy_action, trace_action = TRANSACTION_POLICY.get(action, (Action.SUBMIT, action))
    record = record_state(security, principal)
    decision = record_access(principal, record, policy_action, now)
    if not decision.allowed:
        trace_access(security, principal, trace_action, t.DENIED, detail=decision.reason)
        raise AuthenticationError(FAILED_CHECK, decision.reason)
    return Admission(
        security, principal, trace_action, decision.emergency, decision.reason, document_access(principal, record, now)
    )


def outcome_of(payload: etree._Element) -> str:
    """The trace outcome of a response: success when its status says (partial) success."""
    status = payload.get("status") or next((e.get("status", "") for e in payload if isinstance(e.tag, str)), "")
    return t.SUCCESS if status.endswith(("Success", "PartialSuccess")) else t.FAILURE
