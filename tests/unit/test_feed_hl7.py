"""HL7 v2 for ITI-8: parsing, PID-3 patient ids, ACKs."""

from __future__ import annotations

import pytest

from dmp_xds.transport.feed.hl7 import (
    ERR_REQUIRED_FIELD_MISSING,
    ERR_SEGMENT_SEQUENCE,
    Hl7Error,
    build_ack,
    build_adt,
    parse_ack,
    parse_message,
    patient_ids,
)

INS = "1234567890123^^^&1.2.250.1.213.1.4.8&ISO"


def _adt(pid3: str, event: str = "A01") -> str:
    return (
        "\r".join(
            [
                f"MSH|^~\\&|SENDER|FAC|DMP|DMPFAC|20240101120000||ADT^{event}^ADT_A01|MSG00042|P|2.5",
                "EVN||20240101120000",
                f"PID|1||{pid3}||DOE^JOHN||19700101|M",
            ]
        )
        + "\r"
    )


def test_reads_message_type_and_control_id() -> None:
    message = parse_message(_adt(INS, "A04"))
    assert message.message_type == ("ADT", "A04")
    assert message.control_id == "MSG00042"
    assert message.field("MSH", 3) == "SENDER"
    assert message.field("MSH", 2) == "^~\\&"


def test_pid3_repetitions_keep_only_iso_authorities() -> None:
    pid3 = "ABC^^^HOSP~1234567890123^^^&1.2.250.1.213.1.4.8&ISO~999^^^NS&1.2.3.4&ISO"
    assert patient_ids(parse_message(_adt(pid3))) == [INS, "999^^^&1.2.3.4&ISO"]


def test_pid3_without_usable_id_is_an_application_error() -> None:
    with pytest.raises(Hl7Error) as caught:
        patient_ids(parse_message(_adt("ABC^^^HOSP")))
    assert caught.value.ack == "AE" and caught.value.code == ERR_REQUIRED_FIELD_MISSING


def test_missing_pid_segment_is_an_application_error() -> None:
    text = "MSH|^~\\&|S|F|R|RF|20240101||ADT^A01|1|P|2.5\rEVN||20240101\r"
    with pytest.raises(Hl7Error) as caught:
        patient_ids(parse_message(text))
    assert caught.value.ack == "AE"


@pytest.mark.parametrize("text", ["", "hello world", "PID|1||x\r", "MSH|"])
def test_not_hl7_is_rejected(text: str) -> None:
    with pytest.raises(Hl7Error) as caught:
        parse_message(text)
    assert caught.value.ack == "AR"


def test_ack_aa_answers_the_control_id_and_swaps_applications() -> None:
    request = parse_message(_adt(INS))
    ack = parse_message(build_ack(request, "AA", "ok"))
    assert ack.field("MSH", 3) == "DMP" and ack.field("MSH", 5) == "SENDER"
    assert ack.message_type == ("ACK", "A01")
    assert ack.field("MSA", 1) == "AA" and ack.field("MSA", 2) == "MSG00042"
    assert ack.segment("ERR") is None


def test_ack_error_carries_err_segment_with_hl7_0357_code() -> None:
    request = parse_message(_adt(INS))
    ack = parse_message(build_ack(request, "AE", "bad | id ^ here", ERR_REQUIRED_FIELD_MISSING))
    assert ack.field("MSA", 1) == "AE"
    assert ack.field("ERR", 3).split("^")[0] == ERR_REQUIRED_FIELD_MISSING
    assert ack.field("ERR", 4) == "E"
    assert "|" not in ack.field("MSA", 3) and "^" not in ack.field("MSA", 3)


def test_ack_to_an_unreadable_message_still_parses() -> None:
    ack = parse_ack(build_ack(None, "AR", "not HL7", ERR_SEGMENT_SEQUENCE))
    assert (ack.code, ack.error_code) == ("AR", ERR_SEGMENT_SEQUENCE)


def test_built_adt_round_trips_its_patient() -> None:
    message = parse_message(build_adt(INS, "A08"))
    assert message.message_type == ("ADT", "A08")
    assert patient_ids(message) == [INS]
