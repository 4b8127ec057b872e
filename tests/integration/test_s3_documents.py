"""Documents on a real S3 server (Ceph radosgw, tests/s3server.py), through a real dmp-xds server.

ITI-41 over HTTP to a server process started with DMP_XDS_BLOB_STORE=s3://..., then ITI-43,
byte for byte; a 50 MB document uploaded in parts and streamed back with bounded memory; a
rejected or failed submission leaves no object in the bucket; the object store stopped (before
and during a submission) gives XDSRepositoryError and registers nothing; a half-configured or
unreachable store stops the server at start-up with a message naming what is missing.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import event

import soap_messages as soap
from dmp_xds.config import load_settings
from dmp_xds.services.context import TransactionRequest
from dmp_xds.services.iti41 import provide_and_register
from dmp_xds.storage import s3_blobstore
from dmp_xds.storage.document_store import open_blob_store
from dmp_xds.storage.s3_blobstore import PART_SIZE
from dmp_xds.transport.serve import open_services
from dmp_xds.xds import vocabulary as v
from factories import PATIENT_ID, make_submission
from s3server import CephS3Server
from xds_server import (
    BACKENDS,
    RunningServer,
    database_for,
    free_port,
    peak_rss,
    start_server,
    stop_server,
    stored_state,
)

LARGE = 50 * 1024 * 1024
PEAK_LIMIT = 4 * LARGE  # as for the filesystem store (test_large_document.py)


@pytest.fixture(scope="module", params=BACKENDS)
def s3_xds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, s3_server: CephS3Server
) -> Iterator[tuple[RunningServer, str]]:
    """A dmp-xds server keeping its documents under a prefix of its own in the test bucket."""
    prefix = f"docs-{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path_factory.mktemp(f"s3-xds-{request.param}")
    env = {"DMP_XDS_PROFILE": "ihe", **s3_server.settings_env(s3_server.bucket, prefix)}
    server = start_server(data_dir, database_for(request), env)
    server.add_patient(PATIENT_ID)
    yield server, prefix + "/"
    stop_server(server)


def _submission(documents: int = 1, mime_type: str = "application/octet-stream"):
    submission = make_submission(documents)
    for de in submission.documents:
        de.hash = de.size = de.repository_unique_id = None
        de.mime_type = mime_type
    return submission


def _retrieve(server: RunningServer, unique_ids: list[str]) -> soap.SoapResponse:
    request = soap.retrieve([(server.repository_unique_id, unique_id) for unique_id in unique_ids])
    return server.post("repository", request, timeout=300)


def _found_documents(server: RunningServer) -> int:
    query = soap.adhoc_query(
        v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{PATIENT_ID}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
    )
    response = server.post("registry", query)
    assert response.status == "Success", response.error_codes
    return len(list(response.payload.iter(f"{{{v.NS_RIM}}}ExtrinsicObject")))


def _local_documents(server: RunningServer) -> list[Path]:
    return [p for p in (server.data_dir / "documents").rglob("*") if p.is_file()]


def test_submitted_documents_are_objects_and_come_back_byte_exact(s3_xds, s3_server):
    server, prefix = s3_xds
    before = s3_server.keys(s3_server.bucket, prefix)
    submission = _submission(2)
    documents = {de.entry_uuid: os.urandom(3000) + de.unique_id.encode() for de in submission.documents}
    response = server.post("repository", soap.provide_and_register(submission, documents))
    assert response.status == "Success", response.error_codes

    added = sorted(set(s3_server.keys(s3_server.bucket, prefix)) - set(before))
    assert len(added) == 2 and all(not key.startswith("(upload)") for key in added)
    assert _local_documents(server) == []  # nothing kept on the server's disk, temporary files included

    retrieved = soap.document_bytes(_retrieve(server, [de.unique_id for de in submission.documents]))
    for de in submission.documents:
        assert retrieved[de.unique_id] == documents[de.entry_uuid]


def test_a_50_mb_document_goes_up_in_parts_and_comes_back_streamed(s3_xds, s3_server, capsys):
    server, prefix = s3_xds
    document = os.urandom(1024 * 1024) * 50
    submission = _submission()
    de = submission.documents[0]
    request = soap.provide_and_register(submission, {de.entry_uuid: document})
    before = set(s3_server.keys(s3_server.bucket, prefix))
    baseline = peak_rss(server.process.pid)

    started = time.monotonic()
    response = server.post("repository", request, timeout=300)
    submitted = time.monotonic() - started
    assert response.status == "Success", response.error_codes

    (key,) = set(s3_server.keys(s3_server.bucket, prefix)) - before
    head = s3_server.client().head_object(Bucket=s3_server.bucket, Key=key)
    parts = -(-LARGE // PART_SIZE)
    assert head["ContentLength"] == LARGE
    assert head["ETag"].strip('"').endswith(f"-{parts}")  # S3's mark of a multipart upload of that many parts

    started = time.monotonic()
    retrieved = soap.document_bytes(_retrieve(server, [de.unique_id]))[de.unique_id]
    fetched = time.monotonic() - started
    assert hashlib.sha1(retrieved).digest() == hashlib.sha1(document).digest()

    peak = peak_rss(server.process.pid)
    with capsys.disabled():
        print(
            f"\n[50 MB on S3] submit {submitted:.2f} s, retrieve {fetched:.2f} s, {parts} parts; server peak RSS "
            f"{peak / 2**20:.1f} MiB (before {baseline / 2**20:.1f} MiB, limit {PEAK_LIMIT / 2**20:.0f} MiB)"
        )
    assert peak < PEAK_LIMIT


def test_a_rejected_submission_leaves_no_object(s3_xds, s3_server):
    server, prefix = s3_xds
    before = s3_server.keys(s3_server.bucket, prefix)
    counts_before, _ = stored_state(server)
    submission = _submission()
    de = submission.documents[0]
    de.hash = "0" * 40  # not the document's SHA-1: refused once its bytes are read
    response = server.post("repository", soap.provide_and_register(submission, {de.entry_uuid: b"some bytes"}))
    assert response.status == "Failure" and "XDSRepositoryMetadataError" in response.error_codes
    assert s3_server.keys(s3_server.bucket, prefix) == before
    assert stored_state(server)[0] == counts_before
    assert _local_documents(server) == []


def test_the_object_store_stopped_registers_nothing(s3_xds, s3_server):
    server, prefix = s3_xds
    kept = _submission()
    kept_bytes = b"retrieved while the store is up"
    ok = server.post("repository", soap.provide_and_register(kept, {kept.documents[0].entry_uuid: kept_bytes}))
    assert ok.status == "Success", ok.error_codes
    found_before, state_before = _found_documents(server), stored_state(server)

    s3_server.stop_gateway()
    try:
        submission = _submission()
        de = submission.documents[0]
        response = server.post("repository", soap.provide_and_register(submission, {de.entry_uuid: b"lost"}), 120)
        assert response.status == "Failure"
        assert response.error_codes == ["XDSRepositoryError"]
        assert _found_documents(server) == found_before  # nothing registered
        assert _local_documents(server) == []

        unavailable = _retrieve(server, [kept.documents[0].unique_id])
        assert unavailable.status == "Failure" and unavailable.error_codes == ["XDSRepositoryError"]
        assert server.process.poll() is None  # the server keeps serving
        ready = requests.get(server.base_url + "/health/ready", timeout=30)
        assert ready.status_code == 503 and ready.json()["checks"]["documents"] != "ok", ready.text
    finally:
        s3_server.start_gateway()

    assert stored_state(server) == state_before  # no row, no object, no upload, no file
    assert requests.get(server.base_url + "/health/ready", timeout=30).json()["checks"]["documents"] == "ok"
    assert soap.document_bytes(_retrieve(server, [kept.documents[0].unique_id])) == {
        kept.documents[0].unique_id: kept_bytes
    }
    again = server.post("repository", soap.provide_and_register(submission, {de.entry_uuid: b"now stored"}))
    assert again.status == "Success", again.error_codes
    assert any(not key.startswith("(upload)") for key in s3_server.keys(s3_server.bucket, prefix))


def test_the_object_store_stopped_in_the_middle_of_an_upload(s3_xds, s3_server, tmp_path, monkeypatch):
    """Stopped while the parts of a large document are going up: the submission fails with
    XDSRepositoryError, nothing is registered, no object is left; the unfinished upload (the
    store that would have aborted it was gone) is aborted by the start-up sweep."""
    server, prefix = s3_xds
    counts_before, _ = stored_state(server)
    objects_before = {k for k in s3_server.keys(s3_server.bucket, prefix) if not k.startswith("(upload)")}
    submission = _submission()
    de = submission.documents[0]
    request = soap.provide_and_register(submission, {de.entry_uuid: os.urandom(1024 * 1024) * 40})
    answer: list[soap.SoapResponse] = []
    sender = threading.Thread(target=lambda: answer.append(server.post("repository", request, timeout=300)))
    sender.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sender.is_alive():
            if any(k.startswith("(upload)") for k in s3_server.keys(s3_server.bucket, prefix)):
                break
            time.sleep(0.05)
        else:
            pytest.fail("no multipart upload was seen under way")
        s3_server.stop_gateway()
        sender.join(300)
    finally:
        s3_server.start_gateway()
    assert answer and answer[0].status == "Failure" and answer[0].error_codes == ["XDSRepositoryError"]
    assert stored_state(server)[0] == counts_before
    objects_after = {k for k in s3_server.keys(s3_server.bucket, prefix) if not k.startswith("(upload)")}
    assert objects_after == objects_before

    assert any(k.startswith("(upload)") for k in s3_server.keys(s3_server.bucket, prefix))
    monkeypatch.setattr(s3_blobstore, "STALE_UPLOAD_SECONDS", 0.0)  # as if an hour had passed
    env = {"DMP_XDS_DATA_DIR": str(tmp_path), **s3_server.settings_env(s3_server.bucket, prefix.rstrip("/"))}
    assert open_blob_store(load_settings(environ=env)).clean_temporary() >= 1
    assert not any(k.startswith("(upload)") for k in s3_server.keys(s3_server.bucket, prefix))


def _refuse_commit(_connection) -> None:
    raise RuntimeError("injected failure at commit")


def test_a_failed_commit_removes_the_published_objects(tmp_path, s3_server):
    """In process, on SQLite: the objects are written, then the commit fails; they are gone."""
    prefix = f"commit-{uuid.uuid4().hex[:8]}"
    env = {"DMP_XDS_DATA_DIR": str(tmp_path), **s3_server.settings_env(s3_server.bucket, prefix)}
    services = open_services(load_settings(environ=env, overrides={"profile": "ihe", "auth": "none"}), migrate=True)
    try:
        services.registry.add_patient(PATIENT_ID)
        published: list[str] = []
        original = services.blobs.publish

        def spy(blob, location):
            published.append(original(blob, location))
            assert s3_server.keys(s3_server.bucket, prefix)  # really in the bucket before the commit
            return published[-1]

        services.blobs.publish = spy  # type: ignore[method-assign]
        submission = _submission(2)
        payload, _ = soap.pnr_payload(submission, {de.entry_uuid: b"x" * 10 for de in submission.documents}, False)
        event.listen(services.registry.engine, "commit", _refuse_commit)
        with pytest.raises(RuntimeError, match="injected failure at commit"):
            provide_and_register(services, TransactionRequest(payload))
        event.remove(services.registry.engine, "commit", _refuse_commit)
        assert len(published) == 2
        assert s3_server.keys(s3_server.bucket, prefix) == []
    finally:
        services.registry.engine.dispose()


def _refused_start(data_dir: Path, env: dict[str, str]) -> str:
    data_dir.mkdir()
    with pytest.raises(RuntimeError, match="exited") as refused:
        start_server(data_dir, "", {"DMP_XDS_PROFILE": "ihe", **env})
    return str(refused.value)


def test_start_up_refuses_a_half_configured_or_unreachable_store(tmp_path, s3_server):
    good = s3_server.settings_env(s3_server.bucket, "refusals")
    half = {k: v for k, v in good.items() if k not in ("DMP_XDS_S3_ENDPOINT_URL", "DMP_XDS_S3_SECRET_ACCESS_KEY")}
    log = _refused_start(tmp_path / "half", half)
    assert "DMP_XDS_S3_ENDPOINT_URL" in log and "DMP_XDS_S3_SECRET_ACCESS_KEY" in log

    unreachable = {**good, "DMP_XDS_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    assert "cannot be reached" in _refused_start(tmp_path / "unreachable", unreachable)

    no_bucket = {**good, "DMP_XDS_BLOB_STORE": "s3://no-such-bucket-here/x"}
    assert "bucket no-such-bucket-here does not exist" in _refused_start(tmp_path / "bucket", no_bucket)

    wrong_secret = {**good, "DMP_XDS_S3_SECRET_ACCESS_KEY": "not-the-secret"}
    assert "refuses access" in _refused_start(tmp_path / "secret", wrong_secret)
