"""Who may do what on which DMP and document: pure functions returning a decision and its reason.

Nothing here reads a database or the clock: the caller passes the principal (from the VIHF),
the record's state (from dmp/), the document's facts (from its metadata) and the time. The
transactions then filter or refuse by the decisions and trace them.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from dmp_xds.dmp import rights_matrix as rm
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.vihf import Principal, same_patient, split_cx


class Action(enum.StrEnum):
    CREATE = "create"
    SEARCH = "search"
    RETRIEVE = "retrieve"
    SUBMIT = "submit"
    MASK = "mask"
    UNMASK = "unmask"
    SHOW_TO_PATIENT = "show-to-patient"  # ITI-57: a new version that drops INVISIBLE_PATIENT
    UPDATE = "update"  # ITI-57: a new version of a document's metadata, other than (un)masking
    CHANGE_STATUS = "change-status"  # ITI-57: availability status (Approved, Deprecated, Archived)
    DELETE = "delete"
    UPDATE_CONSENT = "update-consent"
    CLOSE = "close"
    REOPEN = "reopen"
    READ_STATUS = "read-status"  # the record itself: open or closed, consent, authorizations
    MANAGE_WEB_ACCESS = "manage-web-access"  # the patient's web account (TD1.5)


READS = frozenset({Action.SEARCH, Action.RETRIEVE})
# A closed DMP still tells who may see it that it is closed (READ_STATUS), so they know why reads
# fail.
ON_CLOSED_RECORD = frozenset({Action.REOPEN, Action.CLOSE, Action.READ_STATUS})

OPEN = "open"
CLOSED = "closed"
KIND_PROFESSIONAL = "professional"
KIND_ATTENDING = "attending"
KIND_ESTABLISHMENT = "establishment"
# A professional the patient (or their attending doctor) has blocked ("INTERDITE" in TD1.6): an
# authorization row too, so that the record keeps one list of who may and who may not come in.
# It lasts until lifted (BLOCK_UNTIL), whatever the grants: blocking revokes them, and a blocked
# professional cannot authorize themself again.
KIND_BLOCKED = "blocked"
BLOCK_UNTIL = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
BLOCKED_REASON = (
    "this professional is blocked on the DMP (INTERDITE) by the patient or their attending doctor: "
    "every access is refused"
)


@dataclass(frozen=True, slots=True)
class Authorization:
    kind: str  # professional | attending | establishment | blocked
    grantee: str  # national id, or structure id for an establishment
    expires_at: dt.datetime
    revoked_at: dt.datetime | None = None
    reference: str = ""
    # Who the grantee was when the grant was made (their VIHF and card), for TD1.6, and when
    # it started and last changed; empty for grants made before these were kept.
    first_name: str = ""
    last_name: str = ""
    specialties: tuple[str, ...] = ()  # codeSpeciality, "G15_10/SM26"
    granted_at: dt.datetime | None = None
    last_action_at: dt.datetime | None = None

    def active(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class RecordState:
    patient_id: str
    status: str
    emergency_access_allowed: bool
    regulation_access_allowed: bool
    authorizations: tuple[Authorization, ...] = ()
    representatives: tuple[str, ...] = ()  # legal representatives of a minor (their VIHF NameID)


@dataclass(frozen=True, slots=True)
class DocumentFacts:
    unique_id: str
    confidentiality: frozenset[tuple[str, str]]  # (scheme, code)
    authors: frozenset[str]  # national ids of the authors
    institutions: frozenset[str] = frozenset()  # structure ids of the authors' institutions

    @classmethod
    def of(
        cls,
        unique_id: str,
        codes: Iterable[tuple[str, str]],
        author_persons: Iterable[str],
        author_institutions: Iterable[str] = (),
    ) -> DocumentFacts:
        """From metadata: (scheme, code) pairs, author XCNs (the id is the first component) and
        author institution XONs (the id is the tenth component, or the third in the old form)."""
        return cls(
            unique_id,
            frozenset(codes),
            frozenset(p.split("^", 1)[0] for p in author_persons if p),
            frozenset(filter(None, map(_xon_id, author_institutions))),
        )


def _xon_id(xon: str) -> str:
    parts = xon.split("^")
    return parts[9] if len(parts) > 9 and parts[9] else (parts[2] if len(parts) > 2 else "")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    emergency: bool = False  # allowed only because of emergency access: flagged in the trace


def allow(reason: str, emergency: bool = False) -> Decision:
    return Decision(True, reason, emergency)


def deny(reason: str) -> Decision:
    return Decision(False, reason)


def represents(principal: Principal, record: RecordState) -> bool:
    """A legal representative declared for this (minor) patient (ids compared as CX, like patients)."""
    return principal.is_representative and any(same_patient(principal.user_id, r) for r in record.representatives)


def speaks_for_patient(principal: Principal, record: RecordState) -> bool:
    """The patient, or their declared legal representative: they run the record."""
    return principal.is_patient or represents(principal, record)


def blocked(grantee: str, record: RecordState, now: dt.datetime) -> Authorization | None:
    """The block on this professional, if the patient (or the attending doctor) has set one."""
    return next(
        (a for a in record.authorizations if a.kind == KIND_BLOCKED and a.grantee == grantee and a.active(now)), None
    )


def is_attending(principal: Principal, record: RecordState, now: dt.datetime) -> bool:
    return any(
        a.kind == KIND_ATTENDING and a.grantee == principal.user_id and a.active(now) for a in record.authorizations
    )


def authorization_of(principal: Principal, record: RecordState, now: dt.datetime) -> Authorization | None:
    """The patient's grant that lets this professional in, if any (personal grants first)."""
    for authorization in record.authorizations:
        if (
            authorization.kind in (KIND_PROFESSIONAL, KIND_ATTENDING)
            and authorization.grantee == principal.user_id
            and authorization.active(now)
        ):
            return authorization
    for authorization in record.authorizations:
        if (
            authorization.kind == KIND_ESTABLISHMENT
            and principal.structure_id
            and authorization.grantee == principal.structure_id
            and authorization.active(now)
        ):
            return authorization
    return None


def may_create(principal: Principal, patient_id: str, existing: RecordState | None) -> Decision:
    if existing is not None:
        return deny(f"patient {patient_id} already has a DMP ({existing.status})")
    if not same_patient(principal.patient_id, patient_id):
        return deny("the VIHF is about another patient than the DMP to create")
    return allow("the patient's consent is recorded by its collector")


def administration_access(
    principal: Principal, patient_id: str, record: RecordState | None, action: Action, now: dt.datetime
) -> Decision:
    """May `principal` administer (create, close, grant, read the history of...) the DMP of
    `patient_id`? The VIHF must be about that patient before anything is said about the record,
    not even whether it exists."""
    if not same_patient(principal.patient_id, patient_id):
        return deny("the VIHF is about another patient than the request")
    if action is Action.CREATE:
        return may_create(principal, patient_id, record)
    return record_access(principal, record, action, now)


def record_access(principal: Principal, record: RecordState | None, action: Action, now: dt.datetime) -> Decision:
    """May `principal` do `action` on this DMP at all (document rules come on top)?"""
    if action is Action.CREATE:
        return may_create(principal, record.patient_id if record else principal.patient_id, record)
    if record is None:
        return deny("this patient has no DMP")
    if not same_patient(principal.patient_id, record.patient_id):
        return deny("the VIHF is about another patient than the request")
    if record.status == CLOSED and action not in ON_CLOSED_RECORD:
        return deny("the DMP is closed: it accepts no document and nobody reads it until it is reopened")
    if principal.is_patient:
        return allow("the patient acts on their own record")
    if principal.is_representative:
        if represents(principal, record):
            return allow("a legal representative acts on the minor's record")
        return deny("not a declared legal representative of this patient")
    if blocked(principal.user_id, record, now) is not None:
        # Before any grant, emergency mode included: the patient's "no" to this person stands.
        return deny(BLOCKED_REASON)
    entry = professional_entry(principal, record, action, now)
    if not entry.allowed:
        return entry
    rows = MATRIX_ROWS.get(action)
    if rows is None:
        return entry  # the matrix is silent on this action: our rules alone
    profile, mode = matrix_profile(principal, record, now), rm.mode_of(principal)
    if len(rows) == 1 or action is Action.SUBMIT:
        row = publish_row(profile) if action is Action.SUBMIT else rows[0]
        # Record level: the footnotes that depend on a document are judged per document.
        verdict = rm.decide(profile, mode, row, rm.Facts(own_document=True, structure_document=True))
        if not verdict.allowed:
            return deny(verdict.reason)
        return Decision(True, f"{entry.reason}; {verdict.reason}", entry.emergency)
    verdict = rm.decide_any(profile, mode, rows)
    return entry if verdict.allowed else deny(verdict.reason)


def professional_entry(principal: Principal, record: RecordState, action: Action, now: dt.datetime) -> Decision:
    """Whether a professional gets into the record at all: the patient's authorization, or the
    break-glass and regulation access modes when the patient allows them. Those modes open what
    the rights matrix gives their column (reads, and also publishing, archiving...); elsewhere
    (the record's administration) they open reads only."""
    grant = authorization_of(principal, record, now)
    if grant is not None:
        return allow(
            f"authorized by the patient ({grant.kind}"
            + (f" {grant.grantee}" if grant.kind == KIND_ESTABLISHMENT else "")
            + ")"
        )
    urgent = action in READS or action in MATRIX_ROWS
    if urgent and principal.access_mode == sv.ACCESS_EMERGENCY:
        if not record.emergency_access_allowed:
            return deny("the patient refused emergency access (bris de glace) to their DMP")
        return allow(f"emergency access (bris de glace): {principal.access_reason}", emergency=True)
    if urgent and principal.access_mode == sv.ACCESS_REGULATION:
        if not record.regulation_access_allowed:
            return deny("the patient refused access by the emergency regulation centre (centre 15)")
        return allow("access by the emergency regulation centre (centre 15)", emergency=True)
    return deny("the patient has not authorized this professional")


# The rows of the rights matrix behind each policy action a professional may take: one of them
# must allow the caller's column for the record to open; the document-level row is judged per
# document (DOCUMENT_ROWS). Actions not listed are ours alone (the record's administration).
# ITI-42 and ITI-62, which the DMP does not offer, share the actions of ITI-41 and ITI-57 and so
# their rows (publish, delete).
MATRIX_ROWS: dict[Action, tuple[rm.Row, ...]] = {
    Action.SEARCH: (rm.Row.SEARCH_METADATA, rm.Row.FIND_REFERENCE),
    Action.RETRIEVE: (rm.Row.READ_DOCUMENT, rm.Row.READ_MASKED),
    Action.SUBMIT: (rm.Row.PUBLISH, rm.Row.PUBLISH_BY_CPE),
    Action.UPDATE: (rm.Row.MASK, rm.Row.UNMASK, rm.Row.ARCHIVE, rm.Row.DELETE),  # ITI-57 (any of its changes)
    Action.MASK: (rm.Row.MASK,),
    Action.SHOW_TO_PATIENT: (rm.Row.MASK,),
    Action.UNMASK: (rm.Row.UNMASK,),
    Action.CHANGE_STATUS: (rm.Row.ARCHIVE,),
    Action.DELETE: (rm.Row.DELETE,),
}
# The row that judges each change of one document. Metadata changes other than (un)masking and
# showing to the patient are not a DMP transaction: they take the 3.3a/3.3b row (the DMP's
# metadata updates) and our rule that only the author changes their document's metadata.
DOCUMENT_ROWS: dict[Action, rm.Row] = {
    Action.MASK: rm.Row.MASK,
    Action.SHOW_TO_PATIENT: rm.Row.MASK,
    Action.UPDATE: rm.Row.MASK,
    Action.UNMASK: rm.Row.UNMASK,
    Action.CHANGE_STATUS: rm.Row.ARCHIVE,
    Action.DELETE: rm.Row.DELETE,
}


def publish_row(profile: rm.Profile) -> rm.Row:
    """A CPE card publishes by TD2.2, every other profile by TD2.1."""
    return rm.Row.PUBLISH_BY_CPE if profile is rm.Profile.CPE else rm.Row.PUBLISH


def matrix_profile(principal: Principal, record: RecordState, now: dt.datetime) -> rm.Profile:
    """The professional's profile in the rights matrix for this record (rights_matrix.profile_of;
    the attending doctor is the record's authorization of that kind)."""
    return rm.profile_of(principal, is_attending(principal, record, now))


def matrix_access(
    principal: Principal,
    row: rm.Row,
    record: RecordState | None,
    now: dt.datetime,
    facts: rm.Facts | None = None,
) -> Decision:
    """The rights matrix's answer for a professional doing `row` (the DMP services of TD0.3,
    0.4, 0.5, 1.6 ask it by their row: `rights_matrix.Row.DECLARE_AUTHORIZED`...), on `record`
    when there is one (it tells the attending doctor; a list or a search without INS has none).
    Patients and representatives are not in the matrix: allowed here, their own rules apply."""
    if not principal.is_professional:
        return allow("the matrix is about professionals: the patient's side follows its own rules")
    attending = record is not None and is_attending(principal, record, now)
    verdict = rm.decide(rm.profile_of(principal, attending), rm.mode_of(principal), row, facts or rm.Facts())
    return allow(verdict.reason) if verdict.allowed else deny(verdict.reason)


def matrix_facts(principal: Principal, record: RecordState, document: DocumentFacts) -> rm.Facts:
    """The footnotes' facts about one document: authored by the caller (6, 8), by their
    structure (9: an author's institution is it), by the patient (*: the patient's INS among the
    authors); whether the patient allows the caller's access mode (7)."""
    mode = rm.mode_of(principal)
    return rm.Facts(
        own_document=principal.user_id in document.authors,
        structure_document=bool(principal.structure_id) and principal.structure_id in document.institutions,
        patient_allowed_mode=(
            record.emergency_access_allowed
            if mode is rm.Mode.EMERGENCY
            else record.regulation_access_allowed
            if mode is rm.Mode.REGULATION
            else True
        ),
        patient_authored=split_cx(record.patient_id)[0] in document.authors,
    )


def matrix_document(
    principal: Principal, record: RecordState, document: DocumentFacts, row: rm.Row, now: dt.datetime
) -> rm.Decision:
    return rm.decide(
        matrix_profile(principal, record, now), rm.mode_of(principal), row, matrix_facts(principal, record, document)
    )


def document_visible(principal: Principal, record: RecordState, document: DocumentFacts, now: dt.datetime) -> Decision:
    """May `principal` (already let into the record) see this document, in any answer?"""
    if speaks_for_patient(principal, record):
        if sv.INVISIBLE_TO_PATIENT in document.confidentiality:
            return deny("not shown to the patient until a professional has told them")
        if principal.is_representative and sv.INVISIBLE_TO_REPRESENTATIVES in document.confidentiality:
            return deny("hidden from the patient's legal representatives")
        return allow(
            "the patient sees their documents"
            if principal.is_patient
            else "a legal representative sees the minor's documents"
        )
    if sv.MASKED_FROM_PROFESSIONALS in document.confidentiality:
        verdict = matrix_document(principal, record, document, rm.Row.READ_MASKED, now)
        if verdict.allowed:
            return allow(f"masked, but {verdict.reason}")
        # Who may not read it still sees that their own document exists, to unmask or delete
        # it (rows 3.3a, 3.3c), and an establishment or CPE card its structure's (footnote 9).
        facts = matrix_facts(principal, record, document)
        if facts.own_document:
            return allow("masked, but this professional is its author")
        profile = matrix_profile(principal, record, now)
        if profile in (rm.Profile.CPE, rm.Profile.ETABLISSEMENT) and facts.structure_document:
            return allow("masked, but authored by the caller's structure (rights matrix footnote 9)")
        return deny(f"masked from professionals by the patient ({verdict.reason})")
    return allow("visible")


def document_readable(principal: Principal, record: RecordState, document: DocumentFacts, now: dt.datetime) -> Decision:
    """May `principal` read the document itself (ITI-43, TD3.2)? It must be visible to them, and
    for a professional the matrix's 3.2 row must allow it: seeing that a document exists (a
    search, its reference) is not reading it."""
    visible = document_visible(principal, record, document, now)
    if not visible.allowed or not principal.is_professional:
        return visible
    masked = sv.MASKED_FROM_PROFESSIONALS in document.confidentiality
    verdict = matrix_document(principal, record, document, rm.Row.READ_MASKED if masked else rm.Row.READ_DOCUMENT, now)
    return allow(verdict.reason) if verdict.allowed else deny(verdict.reason)


DOCUMENT_ACTIONS = frozenset(DOCUMENT_ROWS)


def document_action(
    principal: Principal, record: RecordState, document: DocumentFacts, action: Action, now: dt.datetime
) -> Decision:
    """Changing one document (on top of `record_access`): masking, unmasking, showing it to the
    patient, another new version of its metadata, its availability status (archiving), its
    deletion. The patient manages their documents; a professional changes what the rights
    matrix's row gives their column (DOCUMENT_ROWS). A document the caller cannot see is not
    theirs to change."""
    if action not in DOCUMENT_ACTIONS:
        raise ValueError(f"{action!r} is not an action on a document")
    entry = record_access(principal, record, action, now)
    if not entry.allowed:
        return entry
    if not document_visible(principal, record, document, now).allowed:
        return deny("the document is not visible to this user")
    if speaks_for_patient(principal, record):
        return allow("the patient (or their legal representative) manages their documents")
    verdict = matrix_document(principal, record, document, DOCUMENT_ROWS[action], now)
    if not verdict.allowed:
        return deny(verdict.reason)
    if action is Action.UPDATE and principal.user_id not in document.authors:
        return deny("only the patient or the document's author may change its metadata (other than masking)")
    return allow(verdict.reason)


# --- the DMP's CXF services (TD0.3, TD0.4, TD1.5, TD1.6) ---------------------------------------
# One decision per operation, after the rights matrix (dmpi reference section 6): the professional
# acts in their own name with their card (direct mode), in normal access; the establishment's
# word (indirect mode) and emergency modes do not let anyone change or read who is authorized.


def _direct_normal(principal: Principal) -> str:
    """Why this professional may not manage authorizations ("" if they may)."""
    if not principal.is_professional:
        return "only a health professional does this, in their own name"
    if principal.vouched_by:
        return "a professional manages authorizations with their own card (direct mode), not on an establishment's word"
    if principal.access_mode != sv.ACCESS_NORMAL:
        return f"not in {principal.access_mode} access mode: authorizations are managed in normal access only"
    return ""


def _open_record_of_vihf(principal: Principal, record: RecordState | None) -> str:
    if record is None:
        return "this patient has no DMP"
    if not same_patient(principal.patient_id, record.patient_id):
        return "the VIHF is about another patient than the request"
    if record.status == CLOSED:
        return "the DMP is closed"
    return ""


def self_authorization(
    principal: Principal, record: RecordState | None, adding: bool, attending: bool, now: dt.datetime
) -> Decision:
    """TD0.3: may this professional declare themself authorized (or the attending doctor), or
    withdraw? The patient's consent is what they declare; a blocked professional may not."""
    problem = _open_record_of_vihf(principal, record)
    if problem:
        return deny(problem)
    assert record is not None
    row = (
        rm.Row.DECLARE_AUTHORIZED
        if adding
        else rm.Row.REMOVE_ONESELF_AS_MT
        if attending
        else rm.Row.REMOVE_OWN_AUTHORIZATION
    )
    # The matrix first, so that a refusal names its cell (its N columns are the emergency modes
    # and the establishment's word that _direct_normal also refuses).
    verdict = matrix_access(principal, row, record, now)
    if not verdict.allowed:
        return verdict
    problem = _direct_normal(principal)
    if problem:
        return deny(problem)
    if blocked(principal.user_id, record, now) is not None:
        return deny(BLOCKED_REASON)
    if attending and adding and not principal.is_doctor:
        return deny("only a doctor (profession 10) is an attending doctor (MEDECIN_TRAITANT)")
    if adding:
        return allow(
            "the professional declares the patient's consent to their access"
            if not attending
            else "the doctor declares themself the patient's attending doctor"
        )
    return allow(f"the professional withdraws their own authorization; {verdict.reason}")


def list_authorizations(principal: Principal, record: RecordState | None, now: dt.datetime) -> Decision:
    """TD1.6: the professionals authorized on, or blocked from, the record; for a professional
    the record already lets in (and the patient)."""
    if (
        record is not None
        and speaks_for_patient(principal, record)
        and same_patient(principal.patient_id, record.patient_id)
    ):
        return allow("the patient sees who may access their DMP")
    problem = _open_record_of_vihf(principal, record)
    if problem:
        return deny(problem)
    assert record is not None
    verdict = matrix_access(principal, rm.Row.LIST_AUTHORIZATIONS, record, now)  # first: a refusal names its cell
    if not verdict.allowed:
        return verdict
    problem = _direct_normal(principal)
    if problem:
        return deny(problem)
    return record_access(principal, record, Action.READ_STATUS, now)


def list_patients(principal: Principal, now: dt.datetime, by_new_authorizations: bool = True) -> Decision:
    """TD0.4: the DMPs the caller is authorized on (theirs, or their establishment's). An
    establishment (F) lists by the date of new authorizations only (footnote 3): a list by the
    date of the last document (`by_new_authorizations` false, dateType LASTDOC) is refused.
    A CPE card (E) is given the DMPs of its own structure only (footnote 2): the caller,
    services/patients_specific.py, lists what the CPE and its establishment are authorized on."""
    if not principal.is_professional:
        return deny("only a health professional or an establishment lists the DMPs it is authorized on")
    facts = rm.Facts(new_authorization=by_new_authorizations)
    verdict = matrix_access(principal, rm.Row.LIST_AUTHORIZED_DMPS, None, now, facts)
    if not verdict.allowed:
        return verdict
    return allow(f"the caller lists the DMPs it is authorized on; {verdict.reason}")


def patient_web_access(principal: Principal, record: RecordState | None, now: dt.datetime) -> Decision:
    """TD1.5a/b/d: create the patient's web account, change its OTP channels or its password:
    the patient, or a professional the record lets in, in normal access."""
    problem = _open_record_of_vihf(principal, record)
    if problem:
        return deny(problem)
    assert record is not None
    if not speaks_for_patient(principal, record) and principal.access_mode != sv.ACCESS_NORMAL:
        return deny(f"the patient's web account is not managed in {principal.access_mode} access mode")
    return record_access(principal, record, Action.MANAGE_WEB_ACCESS, now)


def may_block(principal: Principal, record: RecordState | None, grantee: str, now: dt.datetime) -> Decision:
    """May this professional block `grantee` from the record (TD1.6's INTERDITE)? The rights
    matrix has no row for it; the DMP's web site for professionals gives it to the attending
    doctor, with their card, in normal access (the patient does it from their own space)."""
    problem = _open_record_of_vihf(principal, record)
    if problem:
        return deny(problem)
    assert record is not None
    problem = _direct_normal(principal)
    if problem:
        return deny(problem)
    if not is_attending(principal, record, now):
        return deny("only the patient or their attending doctor blocks a professional on the DMP")
    if not grantee or grantee == principal.user_id:
        return deny("the attending doctor blocks another professional, named by their national id")
    return allow("the attending doctor blocks a professional on the DMP")
