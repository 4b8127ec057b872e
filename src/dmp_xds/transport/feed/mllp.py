"""MLLP framing and a small threaded MLLP server / client for the ITI-8 Patient Identity Feed.

Frame: VT (0x0B) + message + FS (0x1C) + CR (0x0D). Every socket has a timeout, every read is
bounded, and every message that arrives gets an ACK: a malformed one gets AR or AE, never a
silently dropped connection.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

from dmp_xds.transport.feed.hl7 import (
    ERR_APPLICATION_INTERNAL,
    ERR_DATA_TYPE,
    ERR_UNSUPPORTED_EVENT,
    ERR_UNSUPPORTED_MESSAGE_TYPE,
    PATIENT_EVENTS,
    Ack,
    Hl7Error,
    build_ack,
    build_adt,
    parse_ack,
    parse_message,
    patient_ids,
)

log = logging.getLogger("dmp_xds.transport.feed")

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\r"
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
DEFAULT_IDLE_TIMEOUT = 30.0
DEFAULT_MAX_CONNECTIONS = 32


def frame(message: str) -> bytes:
    return START_BLOCK + message.encode("utf-8") + END_BLOCK


def _decode(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("latin-1")  # HL7 v2 default character sets are single-byte


def answer(payload: bytes, on_patient: Callable[[str], None]) -> str:
    """The ACK for one received message, after registering its patients through `on_patient`."""
    try:
        message = parse_message(_decode(payload))
    except Hl7Error as exc:
        return build_ack(None, exc.ack, str(exc), exc.code)
    kind, event = message.message_type
    if kind != "ADT":
        return build_ack(
            message, "AR", f"message type {kind or '(none)'} is not accepted, only ADT", ERR_UNSUPPORTED_MESSAGE_TYPE
        )
    if event not in PATIENT_EVENTS:
        return build_ack(
            message,
            "AR",
            f"ADT event {event or '(none)'} is not accepted, only " + "/".join(sorted(PATIENT_EVENTS)),
            ERR_UNSUPPORTED_EVENT,
        )
    try:
        ids = patient_ids(message)
    except Hl7Error as exc:
        return build_ack(message, exc.ack, str(exc), exc.code)
    for patient_id in ids:
        try:
            on_patient(patient_id)
        except ValueError as exc:  # the registry refuses this identifier (e.g. not an INS)
            return build_ack(message, "AE", f"{patient_id}: {exc}", ERR_DATA_TYPE)
        except Exception as exc:
            log.exception("patient feed: registering %s failed", patient_id)
            return build_ack(message, "AE", f"could not register {patient_id}: {exc}", ERR_APPLICATION_INTERNAL)
    return build_ack(message, "AA", f"registered {len(ids)} patient identifier(s)")


class MllpServer:
    """A threaded MLLP listener; `on_patient(cx)` is called for each patient of A01/A04/A05/A08."""

    def __init__(
        self,
        host: str,
        port: int,
        on_patient: Callable[[str], None],
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.on_patient = on_patient
        self.max_message_bytes = max_message_bytes
        self.idle_timeout = idle_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """The bound port (useful when started with port 0)."""
        if self._sock is None:
            return self.requested_port
        return int(self._sock.getsockname()[1])

    def start(self) -> None:
        sock = socket.create_server((self.host, self.requested_port), reuse_port=False)
        sock.settimeout(0.5)  # so that the accept loop notices stop()
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, name="mllp-accept", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        with self._lock:
            for conn in list(self._connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def __enter__(self) -> MllpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                # Too many peers at once: say so in HL7 rather than leave this one hanging.
                self._send_quietly(conn, frame(build_ack(None, "AR", "too many connections", ERR_APPLICATION_INTERNAL)))
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="mllp-conn", daemon=True).start()

    @staticmethod
    def _send_quietly(conn: socket.socket, data: bytes) -> None:
        try:
            conn.settimeout(5)
            conn.sendall(data)
        except OSError:
            pass

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)
        try:
            conn.settimeout(self.idle_timeout)
            buffer = b""
            while not self._stopping.is_set():
                end = buffer.find(END_BLOCK)
                if end >= 0:
                    payload, buffer = buffer[:end], buffer[end + len(END_BLOCK) :]
                    start = payload.find(START_BLOCK)
                    payload = payload[start + 1 :] if start >= 0 else payload
                    conn.sendall(frame(answer(payload, self.on_patient)))
                    continue
                if len(buffer) > self.max_message_bytes:
                    conn.sendall(
                        frame(
                            build_ack(
                                None,
                                "AR",
                                f"message larger than {self.max_message_bytes} bytes",
                                ERR_APPLICATION_INTERNAL,
                            )
                        )
                    )
                    return
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    if buffer.strip():
                        conn.sendall(
                            frame(build_ack(None, "AR", "incomplete MLLP frame (no FS CR end block)", ERR_DATA_TYPE))
                        )
                    return
                if not chunk:
                    return
                buffer += chunk
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()
            self._slots.release()


class FeedError(RuntimeError):
    """The patient feed could not be delivered or was not acknowledged with AA."""


def read_frame(conn: socket.socket, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> bytes:
    """One MLLP frame's payload; the socket's own timeout bounds each read."""
    buffer = b""
    while END_BLOCK not in buffer:
        if len(buffer) > max_bytes:
            raise FeedError(f"answer larger than {max_bytes} bytes")
        chunk = conn.recv(65536)
        if not chunk:
            raise FeedError("connection closed before a complete MLLP answer")
        buffer += chunk
    payload = buffer[: buffer.find(END_BLOCK)]
    start = payload.find(START_BLOCK)
    return payload[start + 1 :] if start >= 0 else payload


def send_message(host: str, port: int, message: str, timeout: float = 10.0) -> Ack:
    """Send one HL7 message over MLLP and return its parsed ACK."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(frame(message))
            payload = read_frame(conn)
    except TimeoutError as exc:
        raise FeedError(f"patient feed {host}:{port} did not answer within {timeout:g} s") from exc
    except OSError as exc:
        raise FeedError(f"patient feed {host}:{port} unreachable: {exc}") from exc
    try:
        return parse_ack(_decode(payload))
    except Hl7Error as exc:
        raise FeedError(f"patient feed {host}:{port} answered something that is not an ACK: {exc}") from exc


def send_patient_feed(host: str, port: int, patient_id: str, timeout: float = 10.0, event: str = "A01") -> Ack:
    """Register `patient_id` (CX) with an ITI-8 ADT message; raise FeedError unless AA comes back."""
    ack = send_message(host, port, build_adt(patient_id, event), timeout)
    if ack.code not in ("AA", "CA"):
        raise FeedError(f"patient feed refused {patient_id}: {ack.code} {ack.text}".rstrip())
    return ack
