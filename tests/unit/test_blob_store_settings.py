"""DMP_XDS_BLOB_STORE and the object store's settings: parsed and checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmp_xds.config import ConfigError, S3Location, load_settings, parse_blob_store
from dmp_xds.storage.blobstore import BlobStoreError, FilesystemBlobStore
from dmp_xds.storage.document_store import open_blob_store, s3_secret
from dmp_xds.storage.s3_blobstore import S3BlobStore

S3_ENV = {
    "DMP_XDS_BLOB_STORE": "s3://documents/region-idf",
    "DMP_XDS_S3_ENDPOINT_URL": "http://127.0.0.1:7480",
    "DMP_XDS_S3_ACCESS_KEY_ID": "KEY",
    "DMP_XDS_S3_SECRET_ACCESS_KEY": "SECRET",
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("s3://documents", S3Location("documents", "")),
        ("s3://documents/", S3Location("documents", "")),
        ("s3://documents/region-idf", S3Location("documents", "region-idf/")),
        ("s3://dmp.docs-1/a/b/", S3Location("dmp.docs-1", "a/b/")),
    ],
)
def test_the_setting_names_a_bucket_and_a_prefix(value: str, expected: S3Location | None) -> None:
    assert parse_blob_store(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("/srv/documents", "s3://bucket/prefix"),
        ("file", "s3://bucket/prefix"),
        ("https://documents/x", "s3://bucket/prefix"),
        ("s3://", "not a bucket name"),
        ("s3://Documents", "not a bucket name"),
        ("s3://ab", "not a bucket name"),
        ("s3://-documents", "not a bucket name"),
        ("s3://docs/a//b", "empty, . or .. part"),
        ("s3://docs/../b", "empty, . or .. part"),
    ],
)
def test_a_malformed_setting_says_what_is_wrong(value: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        parse_blob_store(value)
    with pytest.raises(ConfigError, match=reason):
        load_settings(environ={**S3_ENV, "DMP_XDS_BLOB_STORE": value})


def test_the_filesystem_stays_the_default(tmp_path: Path) -> None:
    settings = load_settings(environ={"DMP_XDS_DATA_DIR": str(tmp_path)})
    assert settings.s3_location is None
    store = open_blob_store(settings)
    assert isinstance(store, FilesystemBlobStore) and store.root == tmp_path / "documents"


def test_an_object_store_needs_its_endpoint_and_credentials() -> None:
    with pytest.raises(ConfigError) as missing:
        load_settings(environ={"DMP_XDS_BLOB_STORE": "s3://documents"})
    message = str(missing.value)
    assert "DMP_XDS_S3_ENDPOINT_URL" in message and "DMP_XDS_S3_ACCESS_KEY_ID" in message
    assert "DMP_XDS_S3_SECRET_ACCESS_KEY" in message
    without_secret = {k: v for k, v in S3_ENV.items() if k != "DMP_XDS_S3_SECRET_ACCESS_KEY"}
    with pytest.raises(ConfigError, match="needs DMP_XDS_S3_SECRET_ACCESS_KEY"):
        load_settings(environ=without_secret)
    with pytest.raises(ConfigError, match="http:// or https://"):
        load_settings(environ={**S3_ENV, "DMP_XDS_S3_ENDPOINT_URL": "127.0.0.1:7480"})


def test_the_secret_may_come_from_a_file_and_is_never_shown(tmp_path: Path) -> None:
    secret_file = tmp_path / "s3-secret"
    secret_file.write_text("FROM-FILE\n")
    env = {k: v for k, v in S3_ENV.items() if k != "DMP_XDS_S3_SECRET_ACCESS_KEY"}
    settings = load_settings(environ={**env, "DMP_XDS_S3_SECRET_ACCESS_KEY_FILE": str(secret_file)})
    assert s3_secret(settings) == "FROM-FILE"
    assert load_settings(environ=S3_ENV).public_dict()["s3_secret_access_key"] == "(set)"
    absent = load_settings(environ={**env, "DMP_XDS_S3_SECRET_ACCESS_KEY_FILE": str(tmp_path / "none")})
    with pytest.raises(ConfigError, match="cannot be read"):
        s3_secret(absent)


def test_object_store_locations_carry_bucket_and_key(tmp_path: Path) -> None:
    settings = load_settings(environ={**S3_ENV, "DMP_XDS_DATA_DIR": str(tmp_path)})
    store = open_blob_store(settings)
    assert isinstance(store, S3BlobStore)
    location = store.allocate("1.2.250.1.213.1.1.9.123")
    assert location.startswith("s3://documents/region-idf/") and location != store.allocate("1.2.250.1.213.1.1.9.123")
    escaped = store.allocate("../../x")
    assert escaped.startswith("s3://documents/region-idf/") and ".." not in escaped
    # A row written by the filesystem store is not read from the object store, nor the reverse.
    with pytest.raises(BlobStoreError, match="is a file"):
        store.read_chunks(str(tmp_path / "documents" / "ab" / "cd" / "x"))
    with pytest.raises(BlobStoreError, match="object store"):
        FilesystemBlobStore(tmp_path / "documents").read_chunks(location)
