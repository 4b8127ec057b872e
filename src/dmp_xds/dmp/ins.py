"""The INS (French national health identifier) as a DMP patient id.

Rules from `reference/dmp.md`: the patient id is a CX `NIR^^^&root&ISO` under one of the INS roots;
the NIR is 13 characters followed by a 2-digit key, key = 97 - (NIR mod 97), where the Corsican
departments 2A and 2B count as 19 and 18. A wrong key is a wrong identifier.
"""

from __future__ import annotations

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
