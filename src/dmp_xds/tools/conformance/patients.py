"""Patient identifiers for a run: fresh ones per test, as the NIST toolkit allocates them.

Under an INS root (DMP profile) the identifier is a well-formed test NIR with its key, so that
a server that checks INS keys accepts it; under any other root it is a random hexadecimal id.
"""

from __future__ import annotations

import secrets

DEFAULT_ASSIGNING_AUTHORITY = "1.3.6.1.4.1.21367.13.20.1000"  # the NIST toolkit's test domain
INS_ROOTS = frozenset({"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"})
INS_TEST_NIR_ROOT = "1.2.250.1.213.1.4.10"


def nir_key(nir13: str) -> str:
    """The two-digit key of a 13-character NIR (Corsica: 2A → 19, 2B → 18)."""
    digits = nir13.upper().replace("2A", "19").replace("2B", "18")
    return f"{97 - int(digits) % 97:02d}"


def new_nir() -> str:
    """A random 15-digit test NIR: born abroad (department 99), so no real commune is named."""
    sex = secrets.choice("12")
    year = f"{secrets.randbelow(100):02d}"
    month = f"{secrets.randbelow(12) + 1:02d}"
    body = f"{sex}{year}{month}99{secrets.randbelow(1000):03d}{secrets.randbelow(1000):03d}"
    return body + nir_key(body)


def new_patient_id(assigning_authority: str = DEFAULT_ASSIGNING_AUTHORITY) -> str:
    value = new_nir() if assigning_authority in INS_ROOTS else secrets.token_hex(8)
    return f"{value}^^^&{assigning_authority}&ISO"
