"""The patient's DMP record as the rest of the code sees it: plain dataclasses, no SQL.

The record service (storage/records.py) reads and writes them; the policy (policy.py) decides on
their `RecordState`; the administration operations and the command line hand them around.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dmp_xds.dmp.policy import KIND_ATTENDING, KIND_ESTABLISHMENT, KIND_PROFESSIONAL, Authorization, RecordState

AUTHORIZATION_DAYS = 365  # a patient's grant lasts one year, renewable
KINDS = (KIND_PROFESSIONAL, KIND_ATTENDING, KIND_ESTABLISHMENT)


class DmpError(Exception):
    """A request the record's state does not allow (no DMP, already closed...): the message
    says why; the administration service turns it into a refusal, the CLI into an error."""


@dataclass(frozen=True)
class Consent:
    collected_by: str
    collected_at: dt.datetime
    emergency_access_allowed: bool = True
    regulation_access_allowed: bool = True


@dataclass(frozen=True)
class DmpRecord:
    state: RecordState
    consent: Consent
    created_at: dt.datetime
    closed_at: dt.datetime | None
    status_reason: str
    notification_email: str = ""  # where emergency accesses are e-mailed ("" = not e-mailed)

    @property
    def patient_id(self) -> str:
        return self.state.patient_id


@dataclass(frozen=True)
class Representative:
    """A minor's legal representative: their id (the NameID of their VIHF), who declared them, when."""

    representative_id: str
    declared_by: str
    declared_at: dt.datetime


@dataclass(frozen=True)
class Destruction:
    documents: list[str]  # uniqueIds erased
    objects: int  # registry objects erased (entries, sets, folders, associations)


def renewable_grant(state: RecordState, kind: str, grantee: str) -> Authorization | None:
    """The grant `kind` to `grantee` that a renewal would extend: one not revoked, expired or
    not (the patient renews a lapsed authorization as well as a running one)."""
    return next(
        (a for a in state.authorizations if a.kind == kind and a.grantee == grantee and a.revoked_at is None), None
    )
