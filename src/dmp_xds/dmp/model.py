"""The patient's DMP record as the rest of the code sees it: plain dataclasses, no SQL.

The record service (storage/records.py) reads and writes them; the policy (policy.py) decides on
their `RecordState`; the administration operations and the command line hand them around.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

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
class Address:
    lines: tuple[str, ...] = ()  # street address lines
    postal_code: str = ""
    city: str = ""
    country: str = ""
    locators: tuple[str, ...] = ()  # additional locators (a residence, a building), after the lines


@dataclass(frozen=True)
class Telecom:
    value: str  # a URL: tel:..., mailto:...
    use: str = ""  # HL7 use code: HP (home), MC (mobile), WP (work)...


@dataclass(frozen=True)
class Relationship:
    """A person close to the patient (HL7 `personalRelationship`: a parent, a legal representative,
    someone to call): the relation's code as sent, their name, addresses and telecoms."""

    code: str
    code_system: str = ""
    prefix: str = ""
    given_names: tuple[str, ...] = ()
    family: str = ""
    addresses: tuple[Address, ...] = ()
    telecoms: tuple[Telecom, ...] = ()


@dataclass(frozen=True)
class Demographics:
    """The patient's administrative data the record keeps (the DMP's "données administratives"):
    what an LPS sends at creation or modification (TD1.1, TD1.3b) and reads back (TD0.2, TD1.3a)."""

    usage_name: str = ""  # nom d'usage (HL7 family qualifier SP)
    birth_name: str = ""  # nom de naissance (qualifier BR)
    given_names: tuple[str, ...] = ()
    prefix: str = ""  # civility, as sent (M, Mme...)
    gender: str = ""  # HL7 administrative gender: M, F, U
    birth_date: str = ""  # YYYYMMDD (or shorter, as sent)
    addresses: tuple[Address, ...] = ()
    telecoms: tuple[Telecom, ...] = ()
    deceased: str = ""  # HL7 deceasedInd as sent: "true", "false", or "" (not said)
    birth_place: Address = Address()
    relationships: tuple[Relationship, ...] = ()

    @property
    def empty(self) -> bool:
        return self == Demographics()

    def keeping(self, former: Demographics) -> Demographics:
        """These demographics, sent by a modification, with what it did not send kept from the
        `former` ones: the DMP's modification (TD1.3b) sends no deceasedInd, personalRelationship
        or birthPlace, and its consultation (TD1.3a) still gives them afterwards."""
        return replace(
            self,
            deceased=self.deceased or former.deceased,
            birth_place=self.birth_place if self.birth_place != Address() else former.birth_place,
            relationships=self.relationships or former.relationships,
        )


@dataclass(frozen=True)
class DmpRecord:
    state: RecordState
    consent: Consent
    created_at: dt.datetime
    closed_at: dt.datetime | None
    status_reason: str  # why it was closed or reopened (the DMP's code, e.g. FERMETURE_DEMANDE_PATIENT)
    notification_email: str = ""  # where emergency accesses are e-mailed ("" = not e-mailed)
    demographics: Demographics = field(default_factory=Demographics)
    # Whether the patient has an open (not locked) web account (TD1.5a; COMPTE_INTERNET_OUVERT):
    # asked only by the existence test that says it; None elsewhere (the observation left out).
    web_account_open: bool | None = None

    @property
    def patient_id(self) -> str:
        return self.state.patient_id

    # The oppositions the DMP speaks of are the consent's choices, negated: one fact, two names.
    @property
    def opposes_emergency_access(self) -> bool:
        """OPPOSITION_BRIS_DE_GLACE: the patient refuses break-glass access."""
        return not self.state.emergency_access_allowed

    @property
    def opposes_regulation_access(self) -> bool:
        """OPPOSITION_ACCES_URGENCE: the patient refuses access by the regulation centre (centre 15)."""
        return not self.state.regulation_access_allowed


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
