"""The documents a store holds that no registry row refers to, and their removal.

A document is published just before its registry commit (storage/blobstore.py): a process killed
in between, or a commit that failed and could not take its document back (the store gone at that
moment), leaves a document nothing refers to. It is invisible, and harmless but for its space;
the operator removes such documents with `dmp-xds documents sweep`.

A document younger than the grace period may be a request's under way (published, not yet
committed): it is never taken. The others are looked up by location in `repository_document`
(its `path` index), a batch at a time, so that memory stays bounded whatever the store's size.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

from sqlalchemy import Engine, func, select

from dmp_xds.storage.blobstore import BlobStore, BlobStoreError, StoredBlob
from dmp_xds.storage.tables import RepositoryDocumentRow

BATCH = 500
DEFAULT_GRACE = dt.timedelta(hours=1)
_repository = RepositoryDocumentRow.__table__


class SweepRefused(Exception):
    """Removing would be unsafe: the message says why."""


@dataclass
class Sweep:
    """What a sweep found (and removed, when asked)."""

    examined: int = 0
    referenced: int = 0
    young: int = 0  # within the grace period: left alone
    unreferenced: list[StoredBlob] = field(default_factory=list)
    removed: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def unreferenced_bytes(self) -> int:
        return sum(blob.size for blob in self.unreferenced)


def _batches(blobs: Iterator[StoredBlob], size: int) -> Iterator[list[StoredBlob]]:
    while batch := list(islice(blobs, size)):
        yield batch


def find_unreferenced(
    engine: Engine, store: BlobStore, grace: dt.timedelta = DEFAULT_GRACE, now: dt.datetime | None = None
) -> Sweep:
    """The store's documents older than `grace` that no `repository_document` row names."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - grace
    sweep = Sweep()
    with engine.connect() as connection:
        for batch in _batches(store.stored(), BATCH):
            sweep.examined += len(batch)
            old = [blob for blob in batch if blob.modified <= cutoff]
            sweep.young += len(batch) - len(old)
            if not old:
                continue
            named = set(
                connection.execute(
                    select(_repository.c.path).where(_repository.c.path.in_([b.location for b in old]))
                ).scalars()
            )
            sweep.referenced += len(named)
            sweep.unreferenced.extend(blob for blob in old if blob.location not in named)
    return sweep


def remove_unreferenced(engine: Engine, store: BlobStore, sweep: Sweep) -> Sweep:
    """Remove what `find_unreferenced` found, each document checked again just before (a row
    naming it may have been committed since: a resubmission cannot reuse a location, but the
    check costs little). Refused when nothing the store holds is referenced while the registry
    names documents: the store is then not the one the registry's rows point to (a documents
    directory moved, another bucket or prefix), and everything would look unreferenced."""
    with engine.connect() as connection:
        if sweep.unreferenced and not sweep.referenced:
            registered = connection.execute(select(func.count()).select_from(_repository)).scalar_one()
            if registered:
                raise SweepRefused(
                    f"none of the {sweep.examined} documents in {store.describe()} is named by the registry, "
                    f"which names {registered}: its rows point elsewhere (a moved documents directory, another "
                    "bucket or prefix?); nothing removed"
                )
        for blob in sweep.unreferenced:
            still = connection.execute(
                select(_repository.c.unique_id).where(_repository.c.path == blob.location).limit(1)
            ).first()
            if still is not None:
                continue
            try:
                store.remove(blob.location)
            except BlobStoreError as exc:
                sweep.failures.append(str(exc))
                continue
            sweep.removed += 1
    return sweep
