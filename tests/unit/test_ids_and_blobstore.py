from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dmp_xds.storage.blobstore import BlobStoreError, FilesystemBlobStore
from dmp_xds.xds.model.ids import assign_entry_uuids
from factories import make_submission


def test_symbolic_ids_and_references_become_uuids():
    submission = make_submission(1, with_folder=True)
    submission.submission_set.entry_uuid = "SubmissionSet01"
    submission.documents[0].entry_uuid = "Document01"
    submission.associations[0].source = "SubmissionSet01"
    submission.associations[0].target = "Document01"
    mapping = assign_entry_uuids(submission)
    assert set(mapping) == {"SubmissionSet01", "Document01"}
    assert submission.submission_set.entry_uuid == mapping["SubmissionSet01"]
    assert submission.associations[0].source == mapping["SubmissionSet01"]
    assert submission.associations[0].target == mapping["Document01"]
    assert all(i.startswith("urn:uuid:") for i in submission.all_ids())


def test_blob_lifecycle(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    blob = store.write_bytes(b"hello")
    assert blob.sha1 == hashlib.sha1(b"hello").hexdigest() and blob.size == 5
    target = store.allocate("1.2.3.4")
    assert target != store.allocate("1.2.3.4")  # two submissions never share a file
    final = store.publish(blob, target)
    assert Path(final).read_bytes() == b"hello" and not blob.path.exists()
    assert b"".join(store.read_chunks(final, 2)) == b"hello"
    store.unpublish(final)
    assert not Path(final).exists()


def test_unique_id_cannot_escape_the_root(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    assert Path(store.allocate("../../etc/passwd")).is_relative_to(tmp_path)


def test_leftover_temporary_files_are_cleaned(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    writer = store.new_writer()
    writer.write(b"partial")
    # Young, it may be another server process's request under way: kept.
    assert store.clean_temporary() == 0 and writer.path.exists()
    assert store.clean_temporary(older_than_seconds=0) == 1 and not writer.path.exists()


def test_the_readiness_probe_writes_and_leaves_nothing(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    store.check()
    assert list(store.tmp_dir.iterdir()) == []
    # A store that cannot take a file (its directory gone, a file in its place: root too).
    store.tmp_dir.rmdir()
    store.tmp_dir.write_bytes(b"")
    with pytest.raises(BlobStoreError):  # at start-up, a message; to the readiness check, "unavailable"
        store.check()


def test_a_missing_file_is_an_error_before_any_chunk(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    with pytest.raises(BlobStoreError, match="cannot be read"):
        store.read_chunks(store.allocate("1.2.3.4"))  # raised at the call, not at the first chunk
