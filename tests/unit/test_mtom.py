"""Streaming MTOM decode and encode."""

from __future__ import annotations

import hashlib
from email.parser import BytesParser
from email.policy import HTTP

import pytest

from dmp_xds.storage.blobstore import FilesystemBlobStore
from dmp_xds.transport.soap.faults import SoapFault
from dmp_xds.transport.soap.mtom import ContentType, MtomReceiver, OutgoingPart, encode_mtom
from dmp_xds.xds.xop import normalize_content_id
from soap_messages import mtom_body


@pytest.fixture
def store(tmp_path):
    return FilesystemBlobStore(tmp_path / "docs")


def _receive(store, body: bytes, content_type: str, chunk: int = 7, max_root: int = 1 << 20):
    receiver = MtomReceiver(ContentType.parse(content_type), store, max_root)
    for i in range(0, len(body), chunk):
        receiver.feed(body[i : i + chunk])
    return receiver, receiver.finish()


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_parts_are_filed_and_hashed_whatever_the_chunking(store, chunk):
    data = bytes(range(256)) * 100 + b"\r\n--not-a-boundary\r\n"
    body, content_type = mtom_body(b"<root/>", {"doc1@x": data, "doc2@x": b""})
    _, message = _receive(store, body, content_type, chunk)
    assert message.root == b"<root/>"
    assert set(message.attachments) == {"doc1@x", "doc2@x"}
    blob = message.attachments["doc1@x"].blob
    assert blob.path.read_bytes() == data
    assert blob.sha1 == hashlib.sha1(data).hexdigest()
    assert blob.size == len(data)
    assert message.attachments["doc2@x"].blob.size == 0


def test_content_id_forms_are_equivalent():
    assert normalize_content_id("<a.b@c>") == "a.b@c"
    assert normalize_content_id("cid:a.b%40c") == "a.b@c"


def test_truncated_body_is_refused_and_cleaned(store):
    body, content_type = mtom_body(b"<root/>", {"doc@x": b"x" * 1000})
    receiver = MtomReceiver(ContentType.parse(content_type), store, 1 << 20)
    receiver.feed(body[:-200])
    with pytest.raises(SoapFault, match="truncated"):
        receiver.finish()
    receiver.discard(store)
    assert list(store.tmp_dir.iterdir()) == []


def test_missing_start_part_is_refused(store):
    body, content_type = mtom_body(b"<root/>", {})
    content_type = content_type.replace('start="<', 'start="<other')
    with pytest.raises(SoapFault, match="start"):
        _receive(store, body, content_type)


def test_oversized_root_part_is_refused(store):
    body, content_type = mtom_body(b"<root>" + b"x" * 5000 + b"</root>", {})
    with pytest.raises(SoapFault) as info:
        _receive(store, body, content_type, max_root=1000)
    assert info.value.http_status == 413


def test_boundary_is_required(store):
    with pytest.raises(SoapFault, match="boundary"):
        MtomReceiver(ContentType.parse('multipart/related; type="application/xop+xml"'), store, 1000)


def test_encode_streams_files_and_parses_back(tmp_path, store):
    doc = tmp_path / "doc.bin"
    doc.write_bytes(b"\x00\x01binary\r\n--" * 1000)
    part = OutgoingPart("part1@dmp", "application/pdf", doc.stat().st_size, store.read_chunks(str(doc), 4096))
    response = encode_mtom(b"<env/>", [part])
    body = b"".join(response.chunks())
    assert len(body) == response.content_length
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + response.content_type.encode() + b"\r\n\r\n" + body
    )
    parts = list(message.iter_parts())
    assert parts[0].get_payload(decode=True) == b"<env/>"
    assert parts[1]["Content-ID"] == "<part1@dmp>"
    assert parts[1].get_payload(decode=True) == doc.read_bytes()


def test_message_without_file_parts_is_whole_in_memory(tmp_path, store):
    response = encode_mtom(b"<env/>", [])
    whole = response.in_memory()
    assert whole is not None and whole == b"".join(response.chunks())
    assert len(whole) == response.content_length
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + response.content_type.encode() + b"\r\n\r\n" + whole
    )
    assert [p.get_payload(decode=True) for p in message.iter_parts()] == [b"<env/>"]
    doc = tmp_path / "doc.bin"
    doc.write_bytes(b"x")
    part = OutgoingPart("p@dmp", "text/plain", 1, store.read_chunks(str(doc)))
    assert encode_mtom(b"<env/>", [part]).in_memory() is None
