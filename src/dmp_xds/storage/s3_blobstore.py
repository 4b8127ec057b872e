"""Documents on an S3-compatible object store (`DMP_XDS_BLOB_STORE=s3://bucket/prefix`).

A request's bytes go to a local temporary file first, hashed as they are written, as for the
filesystem store (storage/blobstore.py): the checks before anything is stored (hash and size
against the metadata, the CDA layer, the submission's signature) read them there, and a
rejected submission never costs the object store anything. That file is the request's scratch
space, gone when the request ends: the server process keeps no state of its own.

`publish` streams the checked file to the object store under its final key: one PUT for a
document up to PART_SIZE, a multipart upload beyond (parts of PART_SIZE read from the file one
at a time, so a document never sits whole in memory; aborted if any part fails). An object
store has no rename, so there is no temporary object: the object is written once, at its final
key, where nothing refers to it until the registry row commits; `unpublish` deletes it if the
commit fails. A crash between the two leaves an unreferenced object, as the filesystem store
leaves an unreferenced file; a crash during an upload leaves an unfinished multipart upload,
which `clean_temporary` aborts at the next start-up once it is STALE_UPLOAD_SECONDS old (an
upload that young may be another server's, under way).

Reading is one GET, streamed (`read_chunks`): ITI-43 and the web send the document as its
chunks arrive.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from dmp_xds.config import S3_SCHEME, S3Location
from dmp_xds.storage.blobstore import (
    CHUNK_SIZE,
    DOCUMENT_KEY,
    TEMPORARY_GRACE_SECONDS,
    BlobStore,
    BlobStoreError,
    StoredBlob,
    TempBlob,
)

log = logging.getLogger(__name__)

PART_SIZE = 8 * 1024 * 1024  # S3's parts are 5 MiB at least (but the last); 10,000 parts at most: 80 GB
STALE_UPLOAD_SECONDS = 3600.0  # an upload runs while one request publishes: an hour-old one is dead
# Bounded waits: a store that does not answer fails the request, it does not hang it.
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 60.0
ATTEMPTS = 3


class S3BlobStore(BlobStore):
    """Documents as objects `<prefix><aa>/<bb>/<sha256>.<random>` of one bucket."""

    def __init__(
        self,
        location: S3Location,
        endpoint_url: str,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        tmp_dir: Path,
        connections: int = 32,
    ) -> None:
        super().__init__(tmp_dir)
        self.bucket = location.bucket
        self.prefix = location.prefix
        self.endpoint_url = endpoint_url
        self._s3: Any = boto3.client(  # boto3 builds its clients at run time: no static type
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                # Path-style URLs (endpoint/bucket/key): S3-compatible servers need no DNS for them.
                s3={"addressing_style": "path"},
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                read_timeout=READ_TIMEOUT_SECONDS,
                retries={"max_attempts": ATTEMPTS, "mode": "standard"},
                max_pool_connections=connections,
                # Checksums only where the API requires them: the newer default (a CRC trailer on
                # every upload) is not understood by every S3-compatible server, and the SHA-1 of
                # every document is already computed and kept by the registry.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    # --- locations ------------------------------------------------------------------------

    def allocate(self, document_unique_id: str) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.prefix}{self.document_key(document_unique_id)}"

    def _bucket_key(self, location: str) -> tuple[str, str]:
        """A location's bucket and key: the bucket the row names, which is this store's unless
        the setting changed since (then the object is still read where it was written)."""
        if not location.startswith(S3_SCHEME):
            raise BlobStoreError(
                f"document {location} is a file, and this server keeps its documents {self.describe()}"
            )
        bucket, _, key = location[len(S3_SCHEME) :].partition("/")
        if not bucket or not key:
            raise BlobStoreError(f"document location {location!r} names no bucket and key")
        return bucket, key

    def describe(self) -> str:
        return f"on the object store {self.endpoint_url}, bucket {self.bucket}" + (
            f", prefix {self.prefix}" if self.prefix else ""
        )

    # --- writing --------------------------------------------------------------------------

    def publish(self, blob: TempBlob, location: str) -> str:
        bucket, key = self._bucket_key(location)
        try:
            with open(blob.path, "rb") as source:
                if blob.size <= PART_SIZE:
                    self._s3.put_object(Bucket=bucket, Key=key, Body=source, ContentLength=blob.size)
                else:
                    self._upload_parts(bucket, key, source)
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreError(f"the object store did not take document {location}: {_reason(exc)}") from exc
        blob.path.unlink(missing_ok=True)  # the request's copy: the store holds the document now
        return location

    def _upload_parts(self, bucket: str, key: str, source: Any) -> None:
        """One multipart upload, PART_SIZE at a time; aborted when a part fails, so that no
        unfinished upload is left behind while the store still answers."""
        upload_id = self._s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        try:
            parts = []
            number = 1
            while part := source.read(PART_SIZE):
                sent = self._s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=part)
                parts.append({"PartNumber": number, "ETag": sent["ETag"]})
                number += 1
            self._s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            try:
                self._s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except (BotoCoreError, ClientError) as exc:
                log.warning("unfinished upload %s of %s left for the start-up sweep: %s", upload_id, key, _reason(exc))
            raise

    def unpublish(self, location: str) -> None:
        self.remove(location)

    def remove(self, location: str) -> None:
        bucket, key = self._bucket_key(location)
        try:
            self._s3.delete_object(Bucket=bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreError(f"the object store did not remove document {location}: {_reason(exc)}") from exc

    # --- reading --------------------------------------------------------------------------

    def read_chunks(self, location: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        bucket, key = self._bucket_key(location)
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"]
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreError(f"the object store did not give document {location}: {_reason(exc)}") from exc
        return _body_chunks(body, location, chunk_size)

    # --- start-up ---------------------------------------------------------------------------

    def check(self) -> None:
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise BlobStoreError(
                    f"the bucket {self.bucket} does not exist on the object store {self.endpoint_url}: "
                    "create it (dmp-xds does not create buckets), or correct DMP_XDS_BLOB_STORE"
                ) from None
            if status in (401, 403):
                raise BlobStoreError(
                    f"the object store {self.endpoint_url} refuses access to bucket {self.bucket} with "
                    "DMP_XDS_S3_ACCESS_KEY_ID and its secret: check the credentials and the bucket's policy"
                ) from None
            raise BlobStoreError(f"the object store {self.endpoint_url} failed: {_reason(exc)}") from None
        except BotoCoreError as exc:
            raise BlobStoreError(
                f"the object store DMP_XDS_S3_ENDPOINT_URL={self.endpoint_url} cannot be reached: {_reason(exc)}"
            ) from None

    def stored(self) -> Iterator[StoredBlob]:
        try:
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", []):
                    if DOCUMENT_KEY.fullmatch(obj["Key"][len(self.prefix) :]):
                        yield StoredBlob(f"{S3_SCHEME}{self.bucket}/{obj['Key']}", obj["Size"], obj["LastModified"])
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreError(
                f"the object store {self.endpoint_url} cannot list its documents: {_reason(exc)}"
            ) from None

    def clean_temporary(self, older_than_seconds: float = TEMPORARY_GRACE_SECONDS) -> int:
        """The local temporary files, and the multipart uploads a crash left unfinished."""
        removed = super().clean_temporary(older_than_seconds)
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=STALE_UPLOAD_SECONDS)
        try:
            paginator = self._s3.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < cutoff:
                        self._s3.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        removed += 1
        except (BotoCoreError, ClientError) as exc:
            log.warning("unfinished uploads not swept: %s", _reason(exc))
        return removed


def _body_chunks(body: Any, location: str, chunk_size: int) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk_size)
    except (BotoCoreError, ClientError, OSError) as exc:
        raise BlobStoreError(f"the object store stopped sending document {location}: {_reason(exc)}") from exc
    finally:
        body.close()


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        detail = exc.response.get("Error", {})
        return f"{detail.get('Code', 'error')} {detail.get('Message', '')}".strip()
    return str(exc)
