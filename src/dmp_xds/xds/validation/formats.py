"""HL7 v2 / XDS data type checks (ITI TF-3 Table 4.2.3.1.7-2): pure predicates."""

from __future__ import annotations

import re

OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
UUID_URN = re.compile(r"^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SHA1_HEX = re.compile(r"^[0-9a-fA-F]{40}$")
DTM = re.compile(r"^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2})?)?)?)?)?$")
MAX_UNIQUE_ID_LENGTH = 128
MAX_UNIQUE_ID_EXTENSION_LENGTH = 16
# ebRIM 3.0 rim:Value is a LongName: every slot value is at most 256 characters (ITI TF-3 §4.2.3.1.4).
MAX_SLOT_VALUE_LENGTH = 256
# RFC 2045 §5.1: type "/" subtype, both tokens, then optional parameters.
_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`{|}~-]+"
MIME_TYPE = re.compile(rf"^{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=(\"[^\"]*\"|{_TOKEN}))*$")
# RFC 5646 (BCP 47) language tag, its general shape: primary subtag of letters, then subtags.
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")


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
    if len(extension) > MAX_UNIQUE_ID_EXTENSION_LENGTH:
        return f"extension longer than {MAX_UNIQUE_ID_EXTENSION_LENGTH} characters"
    return None


def oid_problem(value: str) -> str | None:
    return None if is_oid(value) else f"{value!r} is not an OID"


def _iso_authority_problem(component: str, name: str) -> str | None:
    """An HD assigning authority as XDS writes it: `&OID&ISO`."""
    parts = component.split("&")
    if len(parts) != 3 or parts[0] or parts[2] != "ISO" or not is_oid(parts[1]):
        return f"{name} (assigning authority) must be &OID&ISO, not {component!r}"
    return None


def xcn_problem(value: str) -> str | None:
    """Why a person is not an XDS XCN (ITI TF-3 Table 4.2.3.1.7-2): the identifier (XCN.1) or the
    family name (XCN.2) must be given; an assigning authority (XCN.9) is `&OID&ISO`."""
    components = value.split("^")
    ident = components[0]
    family = components[1].split("&")[0] if len(components) > 1 else ""
    if not ident and not family:
        return "needs an identifier (XCN.1) or a family name (XCN.2)"
    if len(components) > 8 and components[8]:
        return _iso_authority_problem(components[8], "XCN.9")
    return None


def xon_problem(value: str) -> str | None:
    """Why an organization is not an XDS XON (ITI TF-3 Table 4.2.3.1.7-2): XON.1 the name is
    required; XON.10 the identifier; when XON.10 is not an OID, XON.6 is its assigning authority
    `&OID&ISO`. No other component is valued, except XON.7 (identifier type code), which the
    CI-SIS requires (IDNST) and IHE tolerates in practice."""
    components = value.split("^")
    if not components[0]:
        return "XON.1 (organization name) is required"
    extra = [str(i + 1) for i, c in enumerate(components) if c and i not in (0, 5, 6, 9)]
    if extra:
        return f"only XON.1, XON.6, XON.7 and XON.10 may be valued, not XON.{', XON.'.join(extra)}"
    identifier = components[9] if len(components) > 9 else ""
    authority = components[5] if len(components) > 5 else ""
    if authority:
        return _iso_authority_problem(authority, "XON.6")
    if identifier and not is_oid(identifier):
        return f"XON.10 {identifier!r} is not an OID: XON.6 must give its assigning authority (&OID&ISO)"
    return None


def mime_type_problem(value: str) -> str | None:
    return None if MIME_TYPE.match(value) else "not a MIME type (RFC 2045 type/subtype)"


def language_code_problem(value: str) -> str | None:
    return None if LANGUAGE_TAG.match(value) else "not a language tag (RFC 5646, e.g. fr-FR)"
