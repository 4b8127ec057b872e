"""The MLLP listener and client: framing, ACKs for every kind of input, timeouts."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from dmp_xds.transport.feed.hl7 import build_adt
from dmp_xds.transport.feed.mllp import FeedError, MllpServer, frame, read_frame, send_message, send_patient_feed

INS = "1234567890123^^^&1.2.250.1.213.1.4.8&ISO"


class Registry:
    def __init__(self) -> None:
        self.patients: list[str] = []

    def add_patient(self, patient_id: str) -> None:
        if patient_id.startswith("bad"):
            raise ValueError("not an INS")
        if patient_id.startswith("boom"):
            raise RuntimeError("database down")
        self.patients.append(patient_id)


@pytest.fixture()
def registry() -> Registry:
    return Registry()


@pytest.fixture()
def server(registry: Registry) -> Iterator[MllpServer]:
    with MllpServer("127.0.0.1", 0, registry.add_patient, idle_timeout=1.0, max_message_bytes=4096) as srv:
        yield srv


def _raw_exchange(port: int, data: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.settimeout(5)
        conn.sendall(data)
        return read_frame(conn).decode()


def test_a01_registers_the_patient_and_answers_aa(server: MllpServer, registry: Registry) -> None:
    ack = send_patient_feed("127.0.0.1", server.port, INS, timeout=5)
    assert ack.code == "AA"
    assert registry.patients == [INS]


@pytest.mark.parametrize("event", ["A04", "A08"])
def test_other_patient_events_register_too(server: MllpServer, registry: Registry, event: str) -> None:
    assert send_patient_feed("127.0.0.1", server.port, INS, timeout=5, event=event).code == "AA"
    assert registry.patients == [INS]


def test_several_messages_on_one_connection(server: MllpServer, registry: Registry) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.settimeout(5)
        for index in range(3):
            conn.sendall(frame(build_adt(f"{index}^^^&1.2.3&ISO")))
            assert "MSA|AA|" in read_frame(conn).decode()
    assert registry.patients == [f"{i}^^^&1.2.3&ISO" for i in range(3)]


def test_garbage_gets_ar_not_a_dropped_connection(server: MllpServer, registry: Registry) -> None:
    assert send_message("127.0.0.1", server.port, "this is not HL7", timeout=5).code == "AR"
    assert registry.patients == []


def test_unsupported_message_type_gets_ar(server: MllpServer) -> None:
    message = build_adt(INS).replace("ADT^A01^ADT_A01", "ORU^R01^ORU_R01")
    ack = send_message("127.0.0.1", server.port, message, timeout=5)
    assert (ack.code, ack.error_code) == ("AR", "200")


def test_unsupported_adt_event_gets_ar(server: MllpServer) -> None:
    ack = send_message("127.0.0.1", server.port, build_adt(INS, "A40"), timeout=5)
    assert (ack.code, ack.error_code) == ("AR", "201")


def test_refused_identifier_gets_ae(server: MllpServer) -> None:
    ack = send_message("127.0.0.1", server.port, build_adt("bad^^^&1.2.3&ISO"), timeout=5)
    assert ack.code == "AE" and "not an INS" in ack.text


def test_registry_failure_gets_ae(server: MllpServer) -> None:
    ack = send_message("127.0.0.1", server.port, build_adt("boom^^^&1.2.3&ISO"), timeout=5)
    assert (ack.code, ack.error_code) == ("AE", "207")


def test_client_raises_unless_aa(server: MllpServer) -> None:
    with pytest.raises(FeedError, match="refused"):
        send_patient_feed("127.0.0.1", server.port, "bad^^^&1.2.3&ISO", timeout=5)


def test_incomplete_frame_gets_ar_after_idle_timeout(server: MllpServer) -> None:
    # No FS CR end block: the server waits its idle timeout (1 s here), then says why.
    answer = _raw_exchange(server.port, b"\x0bMSH|^~\\&|S|F|R|RF|2024||ADT^A01|1|P|2.5\r")
    assert "MSA|AR|" in answer and "incomplete" in answer


def test_oversized_message_gets_ar(server: MllpServer) -> None:
    answer = _raw_exchange(server.port, b"\x0b" + b"X" * 10000)
    assert "MSA|AR|" in answer and "larger than" in answer


def test_client_times_out_on_a_silent_server() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        with pytest.raises(FeedError, match="did not answer"):
            send_patient_feed("127.0.0.1", listener.getsockname()[1], INS, timeout=0.5)
    finally:
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_client_reports_unreachable_feed() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connection refused
        with pytest.raises(FeedError, match="unreachable"):
            send_patient_feed("127.0.0.1", port, INS, timeout=2)


def test_stop_ends_the_listener(registry: Registry) -> None:
    srv = MllpServer("127.0.0.1", 0, registry.add_patient)
    srv.start()
    port = srv.port
    srv.stop()
    with pytest.raises(FeedError):
        send_patient_feed("127.0.0.1", port, INS, timeout=1)
