"""The document store the settings name: files under the data directory, or an object store."""

from __future__ import annotations

from pathlib import Path

from dmp_xds.config import ConfigError, Settings
from dmp_xds.storage.blobstore import BlobStore, FilesystemBlobStore
from dmp_xds.storage.s3_blobstore import S3BlobStore


def open_blob_store(settings: Settings) -> BlobStore:
    """The store of `DMP_XDS_BLOB_STORE` (not yet checked: `BlobStore.check` does that)."""
    location = settings.s3_location
    if location is None:
        return FilesystemBlobStore(settings.documents_dir)
    return S3BlobStore(
        location,
        settings.s3_endpoint_url,
        settings.s3_region,
        settings.s3_access_key_id,
        s3_secret(settings),
        settings.documents_dir / "tmp",
    )


def s3_secret(settings: Settings) -> str:
    """DMP_XDS_S3_SECRET_ACCESS_KEY, or the first line of DMP_XDS_S3_SECRET_ACCESS_KEY_FILE."""
    if settings.s3_secret_access_key:
        return settings.s3_secret_access_key
    path = Path(settings.s3_secret_access_key_file)
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"DMP_XDS_S3_SECRET_ACCESS_KEY_FILE={path} cannot be read: {exc.strerror}") from None
    if not secret:
        raise ConfigError(f"DMP_XDS_S3_SECRET_ACCESS_KEY_FILE={path} is empty")
    return secret
