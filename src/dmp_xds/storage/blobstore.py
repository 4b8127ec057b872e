"""Where the repository keeps document bytes: the interface, and the filesystem store.

Every store takes a request's bytes the same way: into a local temporary file, the request's
scratch space, with size and SHA-1 computed while they are written (`new_writer`), so that a
document is read once, whatever its size, and checked (hash, size, the CDA layer) before it is
stored anywhere. A document that passed every check is then published under a location of its
own (`allocate`, `publish`) just before the registry commit; it is reachable only through the
registry row committed after that, and a failed submission removes what it wrote (`discard`,
`unpublish`).

A location is a string kept in `repository_document.path`: a file path for the filesystem store
(as it always was), `s3://bucket/key` for the object store (storage/s3_blobstore.py). Reading
(`read_chunks`) finds the document at once (the file checked, the object's GET sent), so that a
store that cannot give it fails before an answer starts, then streams it chunk by chunk. A store that cannot do what is asked raises
`BlobStoreError`, which the services turn into XDSRepositoryError or an error page.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 1024 * 1024
# How old a temporary file must be before start-up removes it. Several server processes may share
# the document store: a file younger than this may be a request under way in another process
# (its body is read within DMP_XDS_REQUEST_TIMEOUT_SECONDS, then checked and published).
TEMPORARY_GRACE_SECONDS = 15 * 60.0


# The name `document_key` gives, relative to the store's root or prefix: only such names are
# the store's documents (`stored`); anything else there is left alone.
DOCUMENT_KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.[0-9a-f]{12}")


class BlobStoreError(Exception):
    """The document store cannot be reached, or refused or failed an operation."""


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A document the store holds, as its listing shows it."""

    location: str
    size: int
    modified: dt.datetime  # UTC


@dataclass(frozen=True, slots=True)
class TempBlob:
    """Bytes written under a temporary name, not yet part of the repository."""

    path: Path
    size: int
    sha1: str


class BlobWriter:
    """Streams bytes to a temporary file, hashing as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = open(path, "xb")
        self._sha1 = hashlib.sha1()
        self._size = 0

    def write(self, data: bytes | memoryview) -> None:
        self._file.write(data)
        self._sha1.update(data)
        self._size += len(data)

    def finish(self) -> TempBlob:
        self._file.close()
        return TempBlob(self.path, self._size, self._sha1.hexdigest())

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class BlobStore(ABC):
    """The repository's document store; temporary files in `tmp_dir`, on the local disk."""

    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    # --- the request's temporary files, the same for every store ----------------------------

    def new_writer(self) -> BlobWriter:
        return BlobWriter(self.tmp_dir / f"{uuid.uuid4().hex}.part")

    def write_bytes(self, data: bytes) -> TempBlob:
        writer = self.new_writer()
        try:
            writer.write(data)
            return writer.finish()
        except BaseException:
            writer.abort()
            raise

    def discard(self, blob: TempBlob) -> None:
        blob.path.unlink(missing_ok=True)

    def clean_temporary(self, older_than_seconds: float = TEMPORARY_GRACE_SECONDS) -> int:
        """Remove temporary files left by a crash, those older than `older_than_seconds` (the
        younger ones may be another process's requests under way); called at start-up."""
        removed = 0
        limit = time.time() - older_than_seconds
        for leftover in self.tmp_dir.glob("*.part"):
            try:
                if leftover.stat().st_mtime > limit:
                    continue
                leftover.unlink()
            except FileNotFoundError:  # published or discarded meanwhile by its own process
                continue
            removed += 1
        return removed

    # --- the documents themselves -----------------------------------------------------------

    @staticmethod
    def document_key(document_unique_id: str) -> str:
        """A name of its own for one submission of a document, `<aa>/<bb>/<sha256>.<random>`.

        The uniqueId is chosen by the source: it is hashed so that no value can escape the store.
        A random suffix keeps two concurrent submissions of one uniqueId from sharing a name, so
        the one that loses can remove its copy without touching the winner's.
        """
        key = hashlib.sha256(document_unique_id.encode("utf-8")).hexdigest()
        return f"{key[:2]}/{key[2:4]}/{key}.{uuid.uuid4().hex[:12]}"

    @abstractmethod
    def allocate(self, document_unique_id: str) -> str:
        """The location a new document will be published at."""

    @abstractmethod
    def publish(self, blob: TempBlob, location: str) -> str:
        """Store a checked temporary blob at its location, durably; its location."""

    @abstractmethod
    def unpublish(self, location: str) -> None:
        """Remove a document published for a submission that did not commit."""

    @abstractmethod
    def remove(self, location: str) -> None:
        """Remove a document whose registry rows are gone (deleted, or its record destroyed)."""

    @abstractmethod
    def read_chunks(self, location: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The document, opened now (BlobStoreError if it cannot be), streamed as it is iterated."""

    def read_bytes(self, location: str) -> bytes:
        """The whole document, for a page that renders it (a CDA's narrative, a note)."""
        return b"".join(self.read_chunks(location))

    @abstractmethod
    def stored(self) -> Iterator[StoredBlob]:
        """Every document the store holds under its root or prefix, whether the registry refers
        to it or not (storage/document_sweep.py), temporary files aside."""

    @abstractmethod
    def check(self) -> None:
        """The store is there and usable now, else BlobStoreError saying what is wrong: at
        start-up (the server refuses to start) and for the readiness check (transport/health.py)."""

    @abstractmethod
    def describe(self) -> str:
        """Where the documents are, for an operator's messages."""


class FilesystemBlobStore(BlobStore):
    """The embedded store: `<root>/<aa>/<bb>/<key>`, temporary files in `<root>/tmp`.

    Its locations are file paths, as `repository_document.path` has always held them."""

    def __init__(self, root: Path) -> None:
        super().__init__(root / "tmp")
        self.root = root

    def allocate(self, document_unique_id: str) -> str:
        return str(self.root / self.document_key(document_unique_id))

    def publish(self, blob: TempBlob, location: str) -> str:
        """Give a temporary blob its final name, durably: content and directory entry.

        Renamed first, then fsynced: on ext4 the file's fsync then commits the rename in the
        same journal transaction, and the directory's fsync (which POSIX requires) finds little
        left to do. Until the registry row is committed nothing refers to the file, so a crash
        in between leaves at most an unreferenced file, never a half-stored document.
        Durability is paid here only, for documents that passed every check.
        """
        target = Path(location)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(blob.path, target)
            _fsync_path(target)
            _fsync_path(target.parent)
        except OSError as exc:
            raise BlobStoreError(f"document file {target} could not be written: {exc}") from exc
        return location

    def unpublish(self, location: str) -> None:
        self.remove(location)

    def remove(self, location: str) -> None:
        try:
            self._path(location).unlink(missing_ok=True)
        except OSError as exc:
            raise BlobStoreError(f"document file {location} could not be removed: {exc}") from exc

    def read_chunks(self, location: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Checked now, opened when the first chunk is wanted: an ITI-43 answer of many
        documents holds one file open at a time, not one per document."""
        path = self._path(location)
        if not path.is_file() or not os.access(path, os.R_OK):
            raise BlobStoreError(f"document file {location} cannot be read")
        return _file_chunks(path, chunk_size)

    def stored(self) -> Iterator[StoredBlob]:
        if not self.root.is_dir():
            return
        for first in sorted(self.root.iterdir()):
            if first == self.tmp_dir or not first.is_dir():
                continue
            for path in sorted(first.glob("*/*")):
                relative = path.relative_to(self.root).as_posix()
                if DOCUMENT_KEY.fullmatch(relative):
                    try:
                        info = path.stat()
                    except FileNotFoundError:  # removed meanwhile
                        continue
                    modified = dt.datetime.fromtimestamp(info.st_mtime, dt.UTC)
                    yield StoredBlob(str(path), info.st_size, modified)

    def check(self) -> None:
        """A document can be written here now: a probe file written and removed."""
        probe = self.tmp_dir / f"{uuid.uuid4().hex}.probe"
        try:
            with open(probe, "xb") as handle:
                handle.write(b"ready")
        except OSError as exc:
            raise BlobStoreError(f"no document can be written under {self.root}: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):  # nothing written, or no directory to remove it from
                probe.unlink(missing_ok=True)

    def describe(self) -> str:
        return f"files under {self.root}"

    def _path(self, location: str) -> Path:
        if "://" in location:
            raise BlobStoreError(
                f"document {location} is on an object store, and this server keeps its documents as {self.describe()}"
            )
        return Path(location)


def _file_chunks(path: Path, chunk_size: int) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
