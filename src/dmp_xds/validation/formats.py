"""HL7 v2 / XDS data type checks (ITI TF-3 Table 4.2.3.1.7-2): pure predicates."""

from __future__ import annotations

import re

OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
UUID_URN = re.compile(r"^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SHA1_HEX = re.compile(r"^[0-9a-fA-F]{40}$")
DTM = re.compile(r"^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2})?)?)?)?)?$")
MAX_UNIQUE_ID_LENGTH = 128


def is_oid(value: str) -> bool:
    return len(value) <= 64 and bool(OID.match(value))


def is_uuid_urn(value: str) -> bool:
    return bool(UUID_URN.match(value))


def is_sha1_hex(value: str) -> bool:
    return bool(SHA1_HEX.match(value))


def is_dtm(value: str) -> bool:
    """DTM as XDS restricts it: UTC, no offset, precision from year to second."""
    if not DTM.match(value):
        return False
    month = value[4:6]
    day = value[6:8]
    hour = value[8:10]
    minute = value[10:12]
    second = value[12:14]
    return (
        (not month or 1 <= int(month) <= 12)
        and (not day or 1 <= int(day) <= 31)
        and (not hour or int(hour) <= 23)
        and (not minute or int(minute) <= 59)
        and (not second or int(second) <= 59)
    )


def cx_problem(value: str) -> str | None:
    """Why a patient id is not a CX `id^^^&OID&ISO`, or None if it is one.

    XDS allows only CX.1 and CX.4 (ITI TF-3 §4.2.3.1.7): no other component may be filled.
    """
    parts = value.split("^")
    if len(parts) != 4:
        return "must have the form id^^^&OID&ISO (4 components)"
    ident, c2, c3, authority = parts
    if not ident:
        return "CX.1 (the identifier) is empty"
    if c2 or c3:
        return "only CX.1 and CX.4 may be valued"
    sub = authority.split("&")
    if len(sub) != 3 or sub[0] != "" or sub[2] != "ISO":
        return "CX.4 (assigning authority) must be &OID&ISO"
    if not is_oid(sub[1]):
        return f"assigning authority {sub[1]!r} is not an OID"
    return None


def unique_id_problem(value: str) -> str | None:
    """Document uniqueId: an OID, optionally `OID^extension` (ITI TF-3 §4.2.3.2.26), ≤ 128 chars."""
    if len(value) > MAX_UNIQUE_ID_LENGTH:
        return f"longer than {MAX_UNIQUE_ID_LENGTH} characters"
    root, _, extension = value.partition("^")
    if not is_oid(root):
        return f"{root!r} is not an OID"
    if "^" in value and not extension:
        return "empty extension after '^'"
    if len(extension) > 16:
        return "extension longer than 16 characters"
    return None


def oid_problem(value: str) -> str | None:
    return None if is_oid(value) else f"{value!r} is not an OID"
