"""Document bytes on the filesystem: written to a temporary file, then fsynced and renamed.

A document becomes visible under its final name, fsynced, only when the submission that carries
it is being committed (`publish`), and a failed submission removes what it wrote (`discard`,
`unpublish`). Size and SHA-1 are computed while the bytes are written, so the document is read
once, whatever its size.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class TempBlob:
    """Bytes written under a temporary name, not yet part of the repository."""

    path: Path
    size: int
    sha1: str
    synced: bool = False  # content already fsynced


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

    def sync(self, blob: TempBlob) -> TempBlob:
        """Make a blob's content durable. Done for documents about to be committed, before the
        database transaction begins, so no database lock is held while the disk works; temporary
        files of rejected requests are never fsynced."""
        if not blob.synced:
            _fsync_path(blob.path)
        return replace(blob, synced=True)

    def publish(self, blob: TempBlob, target: Path) -> Path:
        """Move a temporary blob to its final name, durably: content (if not yet), then the
        directory entry."""
        target.parent.mkdir(parents=True, exist_ok=True)
        if not blob.synced:
            _fsync_path(blob.path)
        os.replace(blob.path, target)
        _fsync_path(target.parent)  # the directory entry of the rename
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

    def clean_temporary(self) -> int:
        """Remove temporary files left by a crash; called at start-up before serving."""
        removed = 0
        for leftover in self.tmp_dir.glob("*.part"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)



