"""Patient identifiers for a run: fresh ones per test, as the NIST toolkit allocates them.

Under an INS root (DMP profile) the identifier is a well-formed test NIR with its key, so that
a server that checks INS keys accepts it; under any other root it is a random hexadecimal id.
"""

from __future__ import annotations

import secrets

from dmp_xds.dmp.ins import INS_ROOTS, nir_with_key

DEFAULT_ASSIGNING_AUTHORITY = "1.3.6.1.4.1.21367.13.20.1000"  # the NIST toolkit's test domain


def new_nir() -> str:
    """A random 15-digit test NIR: born abroad (department 99), so no real commune is named."""
    sex = secrets.choice("12")
    year = f"{secrets.randbelow(100):02d}"
    month = f"{secrets.randbelow(12) + 1:02d}"
    body = f"{sex}{year}{month}99{secrets.randbelow(1000):03d}{secrets.randbelow(1000):03d}"
    return nir_with_key(body)


def new_patient_id(assigning_authority: str = DEFAULT_ASSIGNING_AUTHORITY) -> str:
    value = new_nir() if assigning_authority in INS_ROOTS else secrets.token_hex(8)
    return f"{value}^^^&{assigning_authority}&ISO"
