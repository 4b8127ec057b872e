"""HL7 v3 timestamps (TS) and XDS DTM: one conversion, used by the client and the validator."""

from __future__ import annotations

from datetime import datetime, timedelta


def hl7_ts_to_dtm(value: str | None) -> str | None:
    """An HL7 v3 TS (`YYYYMMDDhhmmss[.fff][+zzzz]`) as an XDS DTM in UTC, same precision.

    A time without an offset is kept as written: it cannot be moved to UTC without guessing.
    """
    if not value:
        return None
    text = value.strip()
    sign_at = max(text.find("+"), text.find("-"))
    digits, offset = (text[:sign_at], text[sign_at:]) if sign_at > 0 else (text, "")
    digits = digits.split(".")[0]
    if not offset or len(digits) < 10 or len(offset) != 5:
        return digits  # a date alone has no meaningful UTC shift
    padded = digits.ljust(14, "0")
    local = datetime.strptime(padded, "%Y%m%d%H%M%S")
    minutes = int(offset[1:3]) * 60 + int(offset[3:5])
    utc = local - timedelta(minutes=minutes if offset[0] == "+" else -minutes)
    return utc.strftime("%Y%m%d%H%M%S")[: len(digits)]
