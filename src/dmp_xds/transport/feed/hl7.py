"""HL7 v2.5 messages of the ITI-8 Patient Identity Feed: parse, read PID-3, build ADT and ACK.

Pure functions over text. Only what ITI-8 needs is read: MSH (separators, message type, control
id, version) and PID-3 (patient identifier list). The patient ids come out in the CX form that
XDS metadata uses: `id^^^&OID&ISO`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

AckCode = Literal["AA", "AE", "AR"]

# ITI-8 admits, registers and updates patients with these ADT events (ITI TF-2a §3.8).
PATIENT_EVENTS = frozenset({"A01", "A04", "A05", "A08"})

# HL7 table 0357 (message error condition codes) used in ERR-3.
ERR_SEGMENT_SEQUENCE = "100"
ERR_REQUIRED_FIELD_MISSING = "101"
ERR_DATA_TYPE = "102"
ERR_UNSUPPORTED_MESSAGE_TYPE = "200"
ERR_UNSUPPORTED_EVENT = "201"
ERR_APPLICATION_INTERNAL = "207"

_ERROR_TEXTS = {
    ERR_SEGMENT_SEQUENCE: "Segment sequence error",
    ERR_REQUIRED_FIELD_MISSING: "Required field missing",
    ERR_DATA_TYPE: "Data type error",
    ERR_UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ERR_UNSUPPORTED_EVENT: "Unsupported event code",
    ERR_APPLICATION_INTERNAL: "Application internal error",
}

_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


class Hl7Error(ValueError):
    """The message cannot be used; `code` is the HL7 0357 error code, `ack` the answer to give."""

    def __init__(self, message: str, code: str, ack: AckCode) -> None:
        super().__init__(message)
        self.code = code
        self.ack = ack


@dataclass(frozen=True)
class Hl7Message:
    segments: tuple[tuple[str, ...], ...]
    field_sep: str
    component_sep: str
    repetition_sep: str
    escape_char: str
    subcomponent_sep: str

    def segment(self, name: str) -> tuple[str, ...] | None:
        for seg in self.segments:
            if seg and seg[0] == name:
                return seg
        return None

    def field(self, name: str, number: int) -> str:
        """SEG-number as raw text ('' when absent). MSH counts its field separator as MSH-1."""
        seg = self.segment(name)
        if seg is None:
            return ""
        index = number - 1 if name == "MSH" else number
        return seg[index] if 0 <= index < len(seg) else ""

    @property
    def control_id(self) -> str:
        return self.field("MSH", 10)

    @property
    def message_type(self) -> tuple[str, str]:
        """(MSH-9.1, MSH-9.2), e.g. ('ADT', 'A01')."""
        parts = self.field("MSH", 9).split(self.component_sep)
        return (parts[0] if parts else "", parts[1] if len(parts) > 1 else "")


def parse_message(text: str) -> Hl7Message:
    """Split a message into segments and fields; raise Hl7Error (AR) if it is not HL7 v2."""
    text = text.strip("\r\n\x0b\x1c ")
    segments_text = [s for s in re.split(r"\r\n|\r|\n", text) if s.strip()]
    if not segments_text or not segments_text[0].startswith("MSH") or len(segments_text[0]) < 8:
        raise Hl7Error("message does not start with an MSH segment", ERR_SEGMENT_SEQUENCE, "AR")
    msh = segments_text[0]
    field_sep = msh[3]
    encoding = msh[4:8]
    if field_sep.isalnum() or len(set(encoding)) != 4 or field_sep in encoding:
        raise Hl7Error("MSH-1 / MSH-2 do not declare usable separators", ERR_DATA_TYPE, "AR")
    component, repetition, escape, subcomponent = tuple(encoding)
    segments: list[tuple[str, ...]] = []
    for raw in segments_text:
        fields = raw.split(field_sep)
        if not re.fullmatch(r"[A-Z][A-Z0-9]{2}", fields[0]):
            raise Hl7Error(f"bad segment name {fields[0][:10]!r}", ERR_SEGMENT_SEQUENCE, "AR")
        segments.append(tuple(fields))
    return Hl7Message(tuple(segments), field_sep, component, repetition, escape, subcomponent)


def patient_ids(message: Hl7Message) -> list[str]:
    """PID-3 repetitions that carry an ISO assigning authority, as `id^^^&OID&ISO`.

    Raise Hl7Error (AE) when PID or a usable PID-3 is missing: the message is HL7 but its
    content cannot register anyone.
    """
    if message.segment("PID") is None:
        raise Hl7Error("no PID segment", ERR_SEGMENT_SEQUENCE, "AE")
    found: list[str] = []
    for repetition in message.field("PID", 3).split(message.repetition_sep):
        components = repetition.split(message.component_sep)
        value = components[0].strip() if components else ""
        authority = components[3] if len(components) > 3 else ""
        subs = authority.split(message.subcomponent_sep)
        oid = subs[1].strip() if len(subs) > 1 else ""
        kind = subs[2].strip() if len(subs) > 2 else ""
        if value and _OID.match(oid) and kind.upper() == "ISO":
            found.append(f"{value}^^^&{oid}&ISO")
    if not found:
        raise Hl7Error(
            "PID-3 holds no identifier with an ISO assigning authority (id^^^&OID&ISO)",
            ERR_REQUIRED_FIELD_MISSING,
            "AE",
        )
    return found


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


def _clean(text: str) -> str:
    """Text safe inside one HL7 component: separators and line breaks removed."""
    return re.sub(r"[|^~\\&\r\n]", " ", text)[:200]


def build_ack(request: Hl7Message | None, code: AckCode, text: str = "", error_code: str | None = None) -> str:
    """An ACK to `request` (or to an unreadable message when None), with MSA and, on error, ERR."""
    sending_app = request.field("MSH", 5) if request else ""
    sending_fac = request.field("MSH", 6) if request else ""
    receiving_app = request.field("MSH", 3) if request else ""
    receiving_fac = request.field("MSH", 4) if request else ""
    trigger = request.message_type[1] if request else ""
    version = (request.field("MSH", 12) if request else "") or "2.5"
    control_id = request.control_id if request else ""
    segments = [
        "|".join(
            [
                "MSH",
                "^~\\&",
                sending_app or "DMP-XDS",
                sending_fac,
                receiving_app,
                receiving_fac,
                _timestamp(),
                "",
                f"ACK^{trigger}^ACK" if trigger else "ACK",
                uuid.uuid4().hex[:20],
                "P",
                version,
            ]
        ),
        "|".join(["MSA", code, control_id, _clean(text)]),
    ]
    if code != "AA":
        err = error_code or ERR_APPLICATION_INTERNAL
        label = _ERROR_TEXTS.get(err, "Error")
        segments.append("|".join(["ERR", "", "", f"{err}^{label}^HL70357", "E", "", "", _clean(text)]))
    return "\r".join(segments) + "\r"


def build_adt(
    patient_id: str,
    event: str = "A01",
    sending_application: str = "DMP-XDS-CONFORMANCE",
    receiving_application: str = "DMP-XDS",
) -> str:
    """A minimal ADT^event^ADT_A01 message registering `patient_id` (CX `id^^^&OID&ISO`)."""
    now = _timestamp()
    msh = "|".join(
        [
            "MSH",
            "^~\\&",
            sending_application,
            "",
            receiving_application,
            "",
            now,
            "",
            f"ADT^{event}^ADT_A01",
            uuid.uuid4().hex[:20],
            "P",
            "2.5",
        ]
    )
    evn = "|".join(["EVN", "", now])
    pid = "|".join(["PID", "1", "", patient_id, "", "CONFORMANCE^PATIENT", "", "19700101", "U"])
    pv1 = "|".join(["PV1", "1", "O"])
    return "\r".join([msh, evn, pid, pv1]) + "\r"


@dataclass(frozen=True)
class Ack:
    code: str
    text: str
    error_code: str


def parse_ack(text: str) -> Ack:
    """Read MSA-1, MSA-3 and ERR-3.1 of an ACK; raise Hl7Error if it is not one."""
    message = parse_message(text)
    if message.segment("MSA") is None:
        raise Hl7Error("answer has no MSA segment", ERR_SEGMENT_SEQUENCE, "AR")
    error = message.field("ERR", 3).split(message.component_sep)[0]
    return Ack(message.field("MSA", 1), message.field("MSA", 3), error)
