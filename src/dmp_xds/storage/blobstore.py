"""Document bytes on the filesystem: written to a temporary file, then fsynced and renamed.

A document takes its final name, fsynced, only once its submission has passed every check
(`publish`); it is reachable only through the registry row committed after that, and a failed
submission removes what it wrote (`discard`, `unpublish`). Size and SHA-1 are computed while the bytes are written, so the document is read
once, whatever its size.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 1024 * 1024
# How old a temporary file must be before start-up removes it. Several server processes may share
# the document store: a file younger than this may be a request under way in another process
# (its body is read within DMP_XDS_REQUEST_TIMEOUT_SECONDS, then checked and published).
TEMPORARY_GRACE_SECONDS = 15 * 60.0


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


class FilesystemBlobStore:
    """The repository's document store: `<root>/<aa>/<bb>/<key>`, temporary files in `<root>/tmp`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

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

    def allocate_path(self, document_unique_id: str) -> Path:
        """A final name of its own for one submission of a document.

        The uniqueId is chosen by the source: it is hashed so that no value can escape the root.
        A random suffix keeps two concurrent submissions of one uniqueId from sharing a file, so
        the one that loses can remove its file without touching the winner's.
        """
        key = hashlib.sha256(document_unique_id.encode("utf-8")).hexdigest()
        return self.root / key[:2] / key[2:4] / f"{key}.{uuid.uuid4().hex[:12]}"

    def publish(self, blob: TempBlob, target: Path) -> Path:
        """Give a temporary blob its final name, durably: content and directory entry.

        Renamed first, then fsynced: on ext4 the file's fsync then commits the rename in the
        same journal transaction, and the directory's fsync (which POSIX requires) finds little
        left to do. Until the registry row is committed nothing refers to the file, so a crash
        in between leaves at most an unreferenced file, never a half-stored document.
        Durability is paid here only, for documents that passed every check.
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(blob.path, target)
        _fsync_path(target)
        _fsync_path(target.parent)
        return target

    def unpublish(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def discard(self, blob: TempBlob) -> None:
        blob.path.unlink(missing_ok=True)

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def read_chunks(self, path: Path, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        with open(path, "rb") as handle:
            while chunk := handle.read(chunk_size):
                yield chunk

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

    def check(self) -> None:
        """Raise OSError unless a document can be written here now (the readiness check)."""
        probe = self.tmp_dir / f"{uuid.uuid4().hex}.probe"
        try:
            with open(probe, "xb") as handle:
                handle.write(b"ready")
        finally:
            probe.unlink(missing_ok=True)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
