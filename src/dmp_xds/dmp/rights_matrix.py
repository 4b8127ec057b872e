"""The DMP's functional rights matrix (ANS PDT-INF-526 v1.8): which professional may do what, in
which access mode. One data table, `MATRIX`, that every transaction consults through `decide`.

The matrix speaks of professionals only, in six profiles (`Profile`) and their access modes
(`Mode`): a refusal names its cell, e.g. "rights matrix: TD3.2 masked document, profile B
(médecin non-MT), mode b: Y(7) the patient refused this access mode". The cells' footnotes are
conditions on `Facts` the caller reads from the record and the document. The matrix assumes the
professional is let into the record (authorized by the patient, or in break-glass / regulation
mode): policy.record_access decides that first. Patients and their legal representatives are
not in the matrix; policy.py keeps its own rules for them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from dmp_xds.security import vocabulary as sv
from dmp_xds.security.vihf import Principal


class Profile(enum.StrEnum):
    PS_NON_MEDECIN = "A"
    MEDECIN = "B"  # a doctor who is not the record's attending doctor
    MEDECIN_DU_TRAVAIL = "C"
    MEDECIN_TRAITANT = "D"  # the record's attending doctor (médecin traitant DMP)
    CPE = "E"  # an establishment staff card (Carte de Personnel d'Établissement), e.g. a secretary
    ETABLISSEMENT = "F"  # an establishment certificate: indirect authentication


PROFILE_NAMES = {
    Profile.PS_NON_MEDECIN: "PS non-médecin",
    Profile.MEDECIN: "médecin non-MT",
    Profile.MEDECIN_DU_TRAVAIL: "médecin du travail",
    Profile.MEDECIN_TRAITANT: "médecin traitant DMP",
    Profile.CPE: "carte CPE",
    Profile.ETABLISSEMENT: "établissement, mode indirect",
}


class Mode(enum.StrEnum):
    NORMAL = "n"
    REGULATION = "r"  # the emergency regulation centre (centre 15)
    EMERGENCY = "b"  # bris de glace


MODE_OF_ACCESS = {
    sv.ACCESS_NORMAL: Mode.NORMAL,
    sv.ACCESS_REGULATION: Mode.REGULATION,
    sv.ACCESS_EMERGENCY: Mode.EMERGENCY,
}


class Row(enum.StrEnum):
    """The matrix's rows, named as the DMP's transactions (TD) and what they do. The values are
    what a refusal says; the names are what other modules ask `decide` about."""

    READ_ADMIN_DATA = "TD0.2/1.3a existence test, administrative data"  # also TD0.0 identity, TD0.1 log-in
    DECLARE_AUTHORIZED = "TD0.3 declare oneself authorized"
    REMOVE_OWN_AUTHORIZATION = "TD0.3 remove own authorization"
    REMOVE_ONESELF_AS_MT = "TD0.3 remove oneself as attending doctor"
    LIST_AUTHORIZED_DMPS = "TD0.4 list authorized DMPs"
    SEARCH_WITHOUT_INS = "TD0.5 search a patient without INS"
    WEB_ACCESS = "TD0.9 contextual web access"
    LIST_AUTHORIZATIONS = "TD1.6 list authorized/blocked professionals"
    PUBLISH = "TD2.1 publish"
    PUBLISH_BY_CPE = "TD2.2 publish by CPE"
    SEARCH_METADATA = "TD3.1 search metadata"
    FIND_REFERENCE = "TD3.1 find a document's reference"
    READ_DOCUMENT = "TD3.2 document not masked"  # also invisible to the patient, archived, old, deleted
    READ_MASKED = "TD3.2 masked document"
    MASK = "TD3.3a mask / TD3.3b make visible to the patient"
    UNMASK = "TD3.3a unmask"
    ARCHIVE = "TD3.3d archive / unarchive"
    DELETE = "TD3.3c delete"


# The columns, in the matrix's order: profile and access mode. C and E have only a normal column,
# D no regulation one, F no break-glass one.
COLUMNS: tuple[tuple[Profile, Mode], ...] = (
    (Profile.PS_NON_MEDECIN, Mode.NORMAL),
    (Profile.PS_NON_MEDECIN, Mode.REGULATION),
    (Profile.PS_NON_MEDECIN, Mode.EMERGENCY),
    (Profile.MEDECIN, Mode.NORMAL),
    (Profile.MEDECIN, Mode.REGULATION),
    (Profile.MEDECIN, Mode.EMERGENCY),
    (Profile.MEDECIN_DU_TRAVAIL, Mode.NORMAL),
    (Profile.MEDECIN_TRAITANT, Mode.NORMAL),
    (Profile.MEDECIN_TRAITANT, Mode.EMERGENCY),
    (Profile.CPE, Mode.NORMAL),
    (Profile.ETABLISSEMENT, Mode.NORMAL),
    (Profile.ETABLISSEMENT, Mode.REGULATION),
)

# PDT-INF-526 v1.8, cell by cell ("Y", "N", or "Y(n)": allowed under footnote n). A "*" after a
# row's cells: on a document the patient wrote, only the attending doctor (or the patient) may.
#                           An    Ar    Ab    Bn    Br    Bb    C     Dn    Db    E     Fn    Fr
MATRIX: dict[Row, tuple[str, ...]] = {
    Row.READ_ADMIN_DATA: ("Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y"),
    Row.DECLARE_AUTHORIZED: ("Y", "N", "N", "Y", "N", "N", "N", "Y", "N", "Y(1)", "N", "N"),
    Row.REMOVE_OWN_AUTHORIZATION: ("Y", "N", "N", "Y", "N", "N", "N", "Y", "N", "N", "N", "N"),
    Row.REMOVE_ONESELF_AS_MT: ("N", "N", "N", "N", "N", "N", "N", "Y", "N", "N", "N", "N"),
    Row.LIST_AUTHORIZED_DMPS: ("Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y(2)", "Y(3)", "N"),
    Row.SEARCH_WITHOUT_INS: ("N", "Y", "N", "N", "Y", "N", "N", "N", "N", "N", "N", "Y"),
    Row.WEB_ACCESS: ("Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "N", "N"),
    Row.LIST_AUTHORIZATIONS: ("Y", "N", "N", "Y", "N", "N", "Y", "Y", "N", "N", "N", "N"),
    Row.PUBLISH: ("Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "N", "Y(4)", "Y(4)"),
    Row.PUBLISH_BY_CPE: ("N", "N", "N", "N", "N", "N", "N", "N", "N", "Y(4)", "N", "N"),
    Row.SEARCH_METADATA: ("Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "N", "N", "N"),
    Row.FIND_REFERENCE: ("Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y(5)", "Y(5)", "Y(5)"),
    Row.READ_DOCUMENT: ("Y", "Y", "Y", "Y", "Y", "Y", "N", "Y", "Y", "N", "N", "N"),
    Row.READ_MASKED: ("Y(6)", "Y(7)", "Y(7)", "Y(6)", "Y(7)", "Y(7)", "N", "Y", "Y(7)", "N", "N", "N"),
    Row.MASK: ("Y", "N", "N", "Y", "N", "N", "Y", "Y", "N", "N", "N", "N"),
    Row.UNMASK: ("Y(8)", "N", "N", "Y(8)", "N", "N", "Y(8)", "Y", "N", "N", "N", "N"),
    Row.ARCHIVE: ("Y(8)", "N", "N", "Y(8)", "Y", "Y", "Y(8)", "Y", "Y", "N", "N", "N"),
    Row.DELETE: ("Y(8)", "Y(8)", "Y(8)", "Y(8)", "Y(8)", "Y(8)", "Y(8)", "Y(8)", "Y(8)", "Y(9)", "Y(9)", "Y(9)"),
}
PATIENT_AUTHORED_RULE = frozenset({Row.ARCHIVE, Row.DELETE})  # the matrix's (*)

FOOTNOTES = {
    1: "footnote (1), whose text the DMP's published copy lacks",
    2: "limited to the DMPs of professionals of the same structure",
    3: "limited to new authorizations",
    4: "the document is attributed to the structure",
    5: "only to get a document's reference",
    6: "own (self-authored) documents only",
    7: "in break-glass or regulation mode only if the patient allowed it",
    8: "own (self-authored) documents only",
    9: "documents authored by the structure or one of its CPE cards only",
    10: "only for DMPs not attached to Mon espace santé",
}
PATIENT_AUTHORED_NOTE = "(*) on a document the patient wrote, only the attending doctor (or the patient)"
_CELL = re.compile(r"Y|N|Y\((\d+)\)")


@dataclass(frozen=True, slots=True)
class Facts:
    """What the footnotes depend on, as the caller knows it (each defaults to the permissive
    case a row without that footnote never reads)."""

    own_document: bool = False  # (6) (8): the caller is among the document's authors
    structure_document: bool = False  # (9): authored by the caller's structure or one of its CPEs
    patient_allowed_mode: bool = True  # (7): the patient allows break-glass / regulation access
    patient_authored: bool = False  # (*): the patient wrote the document
    same_structure: bool = True  # (2): the DMP's professional is of the caller's structure
    new_authorization: bool = True  # (3): the authorization is a new one (since the date asked)
    attached_to_mes: bool = False  # (10): the DMP is attached to Mon espace santé


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    cell: str  # "Y", "N", "Y(7)", or "" where the matrix has no column for the caller
    reason: str


def column(profile: Profile, mode: Mode) -> int | None:
    try:
        return COLUMNS.index((profile, mode))
    except ValueError:
        return None


def cell(row: Row, profile: Profile, mode: Mode) -> str:
    """The matrix's cell ("" where it has no column for this profile in this mode)."""
    index = column(profile, mode)
    return "" if index is None else MATRIX[row][index]


def label(row: Row, profile: Profile, mode: Mode) -> str:
    return f"rights matrix: {row.value}, profile {profile.value} ({PROFILE_NAMES[profile]}), mode {mode.value}"


def footnote_of(value: str) -> int | None:
    match = _CELL.fullmatch(value)
    if match is None:
        raise ValueError(f"not a rights matrix cell: {value!r}")
    return int(match.group(1)) if match.group(1) else None


def _footnote_holds(note: int, facts: Facts) -> bool:
    conditions = {
        2: facts.same_structure,
        3: facts.new_authorization,
        6: facts.own_document,
        7: facts.patient_allowed_mode,
        8: facts.own_document,
        9: facts.structure_document,
    }
    return conditions.get(note, True)  # (1), (4), (5): no condition the server can check


def decide(profile: Profile, mode: Mode, row: Row, facts: Facts = Facts()) -> Decision:
    """The matrix's answer for `profile` in `mode` doing `row`, its footnotes judged on `facts`.
    The reason always names the cell, allowed or not."""
    where = label(row, profile, mode)
    value = cell(row, profile, mode)
    if not value:
        return Decision(False, "", f"{where}: the matrix gives this profile no access in this mode")
    if row in PATIENT_AUTHORED_RULE and facts.patient_authored:
        if profile is Profile.MEDECIN_TRAITANT:
            return Decision(True, value, f"{where}: {value}, {PATIENT_AUTHORED_NOTE}")
        return Decision(False, value, f"{where}: {value} refused, {PATIENT_AUTHORED_NOTE}")
    if value == "N":
        return Decision(False, value, f"{where}: N")
    note = footnote_of(value)
    if note is None:
        return Decision(True, value, f"{where}: Y")
    if _footnote_holds(note, facts):
        return Decision(True, value, f"{where}: {value} {FOOTNOTES[note]}")
    return Decision(False, value, f"{where}: {value} refused, {_refusal(note)}")


def _refusal(note: int) -> str:
    return {
        2: "the DMP's professional is not of the caller's structure",
        3: "not a new authorization",
        6: "the caller is not the document's author",
        7: "the patient refused this access mode",
        8: "the caller is not the document's author",
        9: "the document was not authored by the caller's structure or one of its CPE cards",
    }[note]


def outside_mes(attached_to_mes: bool) -> bool:
    """(10): TD1.3b (update administrative data), TD1.4 (close) and TD1.5 (patient web account)
    are for DMPs not attached to Mon espace santé only (the matrix has no rows for them)."""
    return not attached_to_mes


def decide_any(profile: Profile, mode: Mode, rows: tuple[Row, ...]) -> Decision:
    """Whether one of `rows` has a cell other than N for this column: who may enter a
    transaction that serves several rows (ITI-18: search metadata or find a reference; ITI-43:
    read a document, masked or not), before each request or document is judged by its own row."""
    where = f"rights matrix: {' / '.join(row.value for row in rows)}, profile {profile.value} "
    where += f"({PROFILE_NAMES[profile]}), mode {mode.value}"
    if column(profile, mode) is None:
        return Decision(False, "", f"{where}: the matrix gives this profile no access in this mode")
    cells = " / ".join(cell(row, profile, mode) for row in rows)
    return Decision(any(cell(row, profile, mode) != "N" for row in rows), cells, f"{where}: {cells}")


# --- who is who ---------------------------------------------------------------------------


def mode_of(principal: Principal) -> Mode:
    return MODE_OF_ACCESS.get(principal.access_mode, Mode.NORMAL)


def profile_of(principal: Principal, attending: bool) -> Profile:
    """The matrix profile of a professional: an establishment's certificate (indirect mode: the
    VIHF says so, or an establishment signed it) is F whoever its staff member is; a CPE card
    is E; then doctors (profession 10) by what they are to this record: its attending doctor
    (`attending`, the record's authorization of that kind) is D, an occupational doctor C, any
    other B; every other professional A. The attending doctor in regulation mode, a column the
    matrix does not give D, is judged as any doctor there (B)."""
    if principal.vouched_by or principal.is_indirect:
        return Profile.ETABLISSEMENT
    if principal.is_cpe:
        return Profile.CPE
    if not principal.is_doctor:
        return Profile.PS_NON_MEDECIN
    if attending and mode_of(principal) is not Mode.REGULATION:
        return Profile.MEDECIN_TRAITANT
    if principal.is_occupational_doctor:
        return Profile.MEDECIN_DU_TRAVAIL
    return Profile.MEDECIN
