"""MTOM/XOP, the MIME half: the one codec of `multipart/related` SOAP messages, for the server
and for the tools (the reference client, the conformance harness).

Decoding is streaming: the body is fed chunk by chunk, the root part (the SOAP envelope) is kept
in memory up to a limit, every other part goes to a sink as it comes: the server's blob store
(a temporary file, hashed as it is written: a 50 MB document costs one pass and no copy of itself
in memory), or memory for a tool reading a response (`decode_mtom`). Encoding lays out the
envelope and its parts, each from a file (streamed) or from bytes. The XML half (xop:Include,
content ids) is xds/xop.py.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from python_multipart.multipart import MultipartParser, parse_options_header

from dmp_xds.transport.soap.faults import SoapFault, sender
from dmp_xds.xds.xop import Attachment, normalize_content_id

SOAP12_CONTENT_TYPE = "application/soap+xml"
XOP_CONTENT_TYPE = "application/xop+xml"


@dataclass(frozen=True, slots=True)
class ContentType:
    media_type: str
    params: dict[str, str]

    @classmethod
    def parse(cls, header: str | None) -> ContentType:
        if not header:
            return cls("", {})
        media, params = parse_options_header(header)
        return cls(
            media.decode("latin-1").lower(),
            {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in params.items()},
        )


B = TypeVar("B")
B_co = TypeVar("B_co", covariant=True)


class PartWriter(Protocol[B_co]):
    """Where the bytes of one part go as they come; `finish` gives the part's content."""

    def write(self, data: bytes | memoryview) -> Any: ...

    def finish(self) -> B_co: ...

    def abort(self) -> Any: ...


class PartSink(Protocol[B]):
    """Where a receiver puts the parts (the server's blob store: temporary files)."""

    def new_writer(self) -> PartWriter[B]: ...

    def discard(self, blob: B) -> Any: ...


class _BytesWriter:
    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes | memoryview) -> None:
        self._buffer += data

    def finish(self) -> bytes:
        return bytes(self._buffer)

    def abort(self) -> None:
        self._buffer.clear()


class InMemory:
    """Parts kept in memory, as bytes: for a tool reading a response it has whole already."""

    def new_writer(self) -> _BytesWriter:
        return _BytesWriter()

    def discard(self, blob: bytes) -> None:
        pass


@dataclass
class MtomMessage(Generic[B]):
    root: bytes
    root_content_type: ContentType
    attachments: dict[str, Attachment[B]] = field(default_factory=dict)


class MtomError(ValueError):
    """A `multipart/related` message that cannot be read (for a tool: the peer's answer is broken)."""


class MtomReceiver(Generic[B]):
    """Feed it the body of a `multipart/related` message; it files the parts as they come.

    `root_types`: the media types the root part may have (by default a SOAP 1.2 envelope,
    XOP-packaged or not); empty: any."""

    def __init__(
        self,
        content_type: ContentType,
        store: PartSink[B],
        max_root_bytes: int,
        root_types: tuple[str, ...] = (XOP_CONTENT_TYPE, SOAP12_CONTENT_TYPE),
    ) -> None:
        boundary = content_type.params.get("boundary")
        if not boundary:
            raise sender("multipart/related content type without a boundary parameter", http_status=415)
        start = content_type.params.get("start")
        self._start = normalize_content_id(start) if start else None
        self._store = store
        self._max_root_bytes = max_root_bytes
        self._root_types = root_types
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_end": self._on_end,
            },
        )
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._root: bytearray | None = None
        self._root_type: ContentType | None = None
        self._root_done = False
        self._writer: PartWriter[B] | None = None
        self._current_cid = ""
        self._current_type = ""
        self._in_root = False
        self._ended = False
        self.attachments: dict[str, Attachment[B]] = {}
        self.transfer_encodings: dict[str, str] = {}  # Content-ID -> Content-Transfer-Encoding, as declared
        self._parts = 0

    @property
    def part_count(self) -> int:
        """The parts begun so far, the root one included."""
        return self._parts

    # -- parser callbacks --------------------------------------------------------------------
    def _on_part_begin(self) -> None:
        self._headers = {}
        self._parts += 1

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._field.decode("latin-1").strip().lower()] = self._value.decode("latin-1").strip()
        self._field.clear()
        self._value.clear()

    def _on_headers_finished(self) -> None:
        cid = normalize_content_id(self._headers.get("content-id", ""))
        is_root = (cid == self._start) if self._start else (not self._root_done and self._root is None)
        if is_root:
            if self._root is not None:
                raise sender("the MTOM message has two root parts")
            self._in_root = True
            self._root = bytearray()
            self._root_type = ContentType.parse(self._headers.get("content-type"))
            return
        if not cid:
            raise sender(f"MIME part {self._parts} has no Content-ID header")
        if cid in self.attachments:
            raise sender(f"two MIME parts have the Content-ID {cid!r}")
        self._in_root = False
        self._current_cid = cid
        self._current_type = self._headers.get("content-type", "application/octet-stream")
        self.transfer_encodings[cid] = self._headers.get("content-transfer-encoding", "").strip().lower()
        self._writer = self._store.new_writer()

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_root:
            assert self._root is not None
            if len(self._root) + (end - start) > self._max_root_bytes:
                raise sender(
                    f"the SOAP envelope part is larger than the limit of {self._max_root_bytes} bytes",
                    http_status=413,
                )
            self._root += data[start:end]
        elif self._writer is not None:
            self._writer.write(memoryview(data)[start:end])

    def _on_part_end(self) -> None:
        if self._in_root:
            self._in_root = False
            self._root_done = True
            return
        if self._writer is not None:
            blob = self._writer.finish()
            self._writer = None
            self.attachments[self._current_cid] = Attachment(self._current_cid, self._current_type, blob)

    def _on_end(self) -> None:
        self._ended = True

    # -- public ------------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except SoapFault:
            raise
        except Exception as exc:  # python-multipart raises its own errors on broken framing
            raise sender(f"malformed multipart/related body: {exc}") from exc

    def finish(self) -> MtomMessage[B]:
        try:
            self._parser.finalize()
        except Exception as exc:
            raise sender(f"malformed multipart/related body: {exc}") from exc
        if not self._ended:
            raise sender("the multipart/related body is truncated (no closing boundary)")
        if self._root is None or self._root_type is None:
            if self._start:
                raise sender(f"no MIME part has the start Content-ID {self._start!r}")
            raise sender("the multipart/related body has no root part")
        if self._root_types and self._root_type.media_type not in self._root_types:
            raise sender(
                f"the root part must be {XOP_CONTENT_TYPE}, not {self._root_type.media_type or 'untyped'}",
                http_status=415,
            )
        return MtomMessage(bytes(self._root), self._root_type, self.attachments)

    def discard(self, store: PartSink[B]) -> None:
        """Remove every temporary file this request created (the request failed)."""
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        for attachment in self.attachments.values():
            store.discard(attachment.blob)


def decode_mtom(body: bytes, content_type: str) -> MtomMessage[bytes]:
    """A whole `multipart/related` response, in memory (the tools' side): its root part, whatever
    its media type, and its other parts as bytes (a part sent base64-encoded is decoded).
    Raises MtomError with what is wrong."""
    receiver = None
    try:
        receiver = MtomReceiver(ContentType.parse(content_type), InMemory(), max(len(body), 1), root_types=())
        receiver.feed(body)
        message = receiver.finish()
    except SoapFault as fault:
        if receiver is not None and receiver.part_count == 0:
            raise MtomError("multipart response with no part") from None
        raise MtomError(fault.reason) from None
    for cid, encoding in receiver.transfer_encodings.items():
        if encoding == "base64":
            part = message.attachments[cid]
            try:
                decoded = base64.b64decode(part.blob)
            except (binascii.Error, ValueError) as exc:
                raise MtomError(f"MIME part <{cid}> is not base64: {exc}") from None
            message.attachments[cid] = Attachment(cid, part.content_type, decoded)
    return message


# -- encoding --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OutgoingPart:
    """A part streamed as its chunks come (the server's ITI-43 documents, opened in the store)."""

    content_id: str
    content_type: str
    size: int
    chunks: Iterator[bytes]


@dataclass(frozen=True)
class MtomResponse:
    content_type: str
    segments: list[bytes | OutgoingPart]  # literal bytes, or a part streamed
    content_length: int

    def in_memory(self) -> bytes | None:
        """The whole message, when no part is a file (an ITI-41 or ITI-18 answer, a tool's
        request): sent in one piece rather than streamed chunk by chunk through the thread pool."""
        if all(isinstance(segment, bytes) for segment in self.segments):
            return b"".join(segment for segment in self.segments if isinstance(segment, bytes))
        return None

    def chunks(self) -> Iterator[bytes]:
        for segment in self.segments:
            if isinstance(segment, bytes):
                yield segment
            else:
                yield from segment.chunks


def encode_mtom(
    envelope: bytes, parts: Sequence[OutgoingPart | Attachment[bytes]], action: str | None = None
) -> MtomResponse:
    """Lay out a multipart/related MTOM message: the envelope, then each part, from its store
    (streamed) or from its bytes. `action`: the SOAP 1.2 action, which MTOM carries as a
    parameter of the multipart media type (as Axis2 and CXF send it)."""
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    root_cid = f"root.message@{uuid.uuid4().hex}.dmp-xds"
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="{XOP_CONTENT_TYPE}"; '
        f'start="<{root_cid}>"; start-info="{SOAP12_CONTENT_TYPE}"'
    )
    if action:
        content_type += f'; action="{action}"'
    root_head = (
        f"--{boundary}\r\n"
        f'Content-Type: {XOP_CONTENT_TYPE}; charset=UTF-8; type="{SOAP12_CONTENT_TYPE}"\r\n'
        f"Content-Transfer-Encoding: binary\r\n"
        f"Content-ID: <{root_cid}>\r\n\r\n"
    ).encode("ascii")
    segments: list[bytes | OutgoingPart] = [root_head + envelope]
    for part in parts:
        segments.append(
            (
                f"\r\n--{boundary}\r\n"
                f"Content-Type: {part.content_type}\r\n"
                f"Content-Transfer-Encoding: binary\r\n"
                f"Content-ID: <{part.content_id}>\r\n\r\n"
            ).encode("ascii")
        )
        segments.append(part.blob if isinstance(part, Attachment) else part)
    segments.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    length = sum(len(s) if isinstance(s, bytes) else s.size for s in segments)
    return MtomResponse(content_type, segments, length)
