"""The INS (French national health identifier) as a DMP patient id.

Rules from `reference/dmp.md`: the patient id is a CX `NIR^^^&root&ISO` under one of the INS roots;
the NIR is 13 characters followed by a 2-digit key, key = 97 - (NIR mod 97), where the Corsican
departments 2A and 2B count as 19 and 18. A wrong key is a wrong identifier.
"""

from __future__ import annotations

import datetime as dt
import re

# The INS roots the DMP accepts: INS-NIR, INS-NIA, test NIR, test NIA. The 2011-era calculated
# INS-C (1.2.250.1.213.1.4.2) is not accepted: the qualified INS replaced it in 2021.
INS_NIR = "1.2.250.1.213.1.4.8"
INS_NIA = "1.2.250.1.213.1.4.9"
INS_TEST_NIR = "1.2.250.1.213.1.4.10"
INS_TEST_NIA = "1.2.250.1.213.1.4.11"
INS_ROOTS: frozenset[str] = frozenset({INS_NIR, INS_NIA, INS_TEST_NIR, INS_TEST_NIA})

# sex (1-4, 7, 8 for provisional numbers), year, month, department (2A/2B in Corsica), commune,
# order number, key.
_NIR = re.compile(r"^[1-478][0-9]{4}(?:[0-9]{2}|2A|2B)[0-9]{6}[0-9]{2}$")


def nir_key(nir13: str) -> int:
    """The key of a 13-character NIR (Corsica: 2A counts as 19, 2B as 18)."""
    digits = nir13[:5] + {"2A": "19", "2B": "18"}.get(nir13[5:7], nir13[5:7]) + nir13[7:]
    return 97 - int(digits) % 97


def nir_with_key(nir13: str) -> str:
    """The 15-character NIR: the 13 characters and their two-digit key."""
    return f"{nir13}{nir_key(nir13):02d}"


def nir_problem(value: str) -> str | None:
    """Why `value` is not a NIR with its key (15 characters), or None if it is one."""
    if not _NIR.match(value):
        return f"{value!r} is not a NIR (15 characters: 13 for the number, 2 for the key)"
    expected = nir_key(value[:13])
    if int(value[13:]) != expected:
        return f"the key of NIR {value} is wrong (expected {expected:02d})"
    return None


def ins_problem(cx: str) -> str | None:
    """Why a CX patient id is not an INS, or None if it is one (the CX form is checked elsewhere)."""
    ident, _, rest = cx.partition("^^^&")
    root = rest.partition("&")[0]
    if root not in INS_ROOTS:
        return f"assigning authority {root or '(none)'} is not an INS root ({', '.join(sorted(INS_ROOTS))})"
    return nir_problem(ident)


# The DMP's patient id may carry CX.5, the identifier type (NH: national health number), and
# CX.7, the date the identifier took effect: a date, or a 14-digit timestamp in TD3.3 requests.
_INS_ID_TYPE = "NH"
_CX7 = re.compile(r"^[0-9]{8}(?:[0-9]{6})?$")


def _cx7_problem(value: str) -> str | None:
    if not _CX7.match(value):
        return f"CX.7 (effective date) {value!r} is not a date YYYYMMDD or a timestamp YYYYMMDDHHMMSS"
    try:
        dt.datetime.strptime(value, "%Y%m%d%H%M%S" if len(value) == 14 else "%Y%m%d")
    except ValueError:
        return f"CX.7 (effective date) {value!r} is not a valid date"
    return None


def canonical_patient_id(cx: str) -> tuple[str, str | None]:
    """The patient id as the registry stores and compares it, `INS^^^&OID&ISO`, and why the DMP's
    longer form `INS^^^&OID&ISO^NH^^<date>` is malformed (None: it is not, or it is not that form).

    The DMP sends CX.5 `NH` and a CX.7 date in submissions and CX.5 alone in queries and VIHFs:
    the INS alone names the patient, so CX.5 and CX.7 are checked, then dropped. An id of four
    components or fewer is returned as it is, for the CX rules to judge.
    """
    parts = cx.split("^")
    if len(parts) <= 4:
        return cx, None
    if len(parts) > 7:
        return cx, "only CX.1, CX.4, CX.5 and CX.7 may be valued (more than 7 components)"
    id_type, rest = parts[4], parts[5:]
    if id_type != _INS_ID_TYPE:
        return cx, f"CX.5 (identifier type) must be {_INS_ID_TYPE}, not {id_type!r}"
    if rest and rest[0]:
        return cx, "CX.6 must be empty"
    if len(rest) == 2 and rest[1] and (problem := _cx7_problem(rest[1])):
        return cx, problem
    return "^".join(parts[:4]), None


# HL7 v2 table 0203 identifier types are a few capital letters (PI, MR, NH...).
_ID_TYPE = re.compile(r"^[A-Z]{1,5}$")


def canonical_source_patient_id(cx: str) -> tuple[str, str | None]:
    """A sourcePatientId as the registry stores it: the id the source system knows the patient
    by. The DMP's TD2.1 example sends the software's own local id with its type,
    `0456789999^^^&OID&ISO^PI`: an id whose CX.5 is another type than NH, with nothing after it,
    is kept without it (CX.1 and CX.4, as XDS has a source patient id); the INS forms are read as
    `canonical_patient_id` reads them."""
    parts = cx.split("^")
    if len(parts) > 4 and parts[4] != _INS_ID_TYPE and _ID_TYPE.match(parts[4]) and not any(parts[5:]):
        return "^".join(parts[:4]), None
    return canonical_patient_id(cx)
