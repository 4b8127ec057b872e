"""`dmp-xds documents sweep`: the documents a store holds that no registry row names (a process
killed between publishing a document and committing its row leaves one), listed, then removed
with --delete; the registry's documents, the young ones and whatever is not a document's name are
never taken; a store the registry's rows do not point to is refused whole.

Through a real server on every backend (on Citus its documents are on the S3 server), then the
rules on SQLite and a documents directory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

import soap_messages as soap
from dmp_xds.config import load_settings
from dmp_xds.storage import document_sweep as ds
from dmp_xds.storage.blobstore import BlobStore, FilesystemBlobStore
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.document_store import open_blob_store
from dmp_xds.storage.tables import RepositoryDocumentRow, metadata
from factories import PATIENT_ID, make_submission, new_unique_id
from xds_server import RunningServer


def plant(store: BlobStore, content: bytes = b"orphan") -> str:
    """A document published as a submission does just before its commit, with no row: what a
    process killed at that moment leaves."""
    return store.publish(store.write_bytes(content), store.allocate(new_unique_id()))


def listed(output: str) -> list[str]:
    return [line.split("\t")[0] for line in output.splitlines() if "\t" in line]


def test_the_sweep_lists_then_removes_only_what_no_row_names(xds_server: RunningServer) -> None:
    xds_server.add_patient(PATIENT_ID)
    submission = make_submission(1)
    for de in submission.documents:
        de.hash = de.size = de.repository_unique_id = None
    content = b"a document the registry names"
    response = xds_server.post(
        "repository", soap.provide_and_register(submission, {submission.documents[0].entry_uuid: content})
    )
    assert response.status == "Success", response.error_codes
    store = open_blob_store(load_settings(environ=xds_server.env))
    orphan = plant(store)

    found = xds_server.cli("documents", "sweep", "--older-than", "0")
    assert found.returncode == 0, found.stderr
    assert listed(found.stdout) == [orphan]
    assert "1 named by the registry" in found.stdout and "--delete removes them" in found.stdout
    assert orphan in {blob.location for blob in store.stored()}  # listing removes nothing

    young = xds_server.cli("documents", "sweep")  # an hour of grace: a submission may be under way
    assert young.returncode == 0 and listed(young.stdout) == [] and "2 younger than 1 h" in young.stdout

    removed = xds_server.cli("documents", "sweep", "--older-than", "0", "--delete")
    assert removed.returncode == 0, removed.stderr
    assert listed(removed.stdout) == [orphan] and "1 removed" in removed.stdout
    assert orphan not in {blob.location for blob in store.stored()}
    retrieved = xds_server.post(
        "repository", soap.retrieve([(xds_server.repository_unique_id, submission.documents[0].unique_id)])
    )
    assert retrieved.status == "Success"
    assert soap.document_bytes(retrieved) == {submission.documents[0].unique_id: content}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'registry.db'}")
    metadata.create_all(engine)
    return engine


def register(engine: Engine, location: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(RepositoryDocumentRow.__table__).values(
                unique_id=new_unique_id(),
                repository_unique_id="1.2.3",
                path=location,
                size=1,
                hash="0" * 40,
                mime_type="text/plain",
                created_at=dt.datetime.now(dt.UTC),
            )
        )


def test_young_documents_and_foreign_files_are_left_alone(engine: Engine, tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "documents")
    named, orphan = plant(store), plant(store)
    register(engine, named)
    (store.root / "notes.txt").write_text("the operator's")
    (store.root / "ab" / "cd").mkdir(parents=True, exist_ok=True)
    (store.root / "ab" / "cd" / "not-a-document").write_text("x")
    (store.root / "tmp" / "request.part").write_text("a request under way")

    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    assert ds.find_unreferenced(engine, store).unreferenced == []  # both written just now
    found = ds.find_unreferenced(engine, store, now=later)
    assert (found.examined, found.referenced, found.young) == (2, 1, 0)
    assert [blob.location for blob in found.unreferenced] == [orphan]
    ds.remove_unreferenced(engine, store, found)
    assert found.removed == 1 and not Path(orphan).exists() and Path(named).exists()
    assert (store.root / "notes.txt").exists() and (store.root / "tmp" / "request.part").exists()
    assert (store.root / "ab" / "cd" / "not-a-document").exists()


def test_a_store_the_registry_does_not_point_to_is_refused_whole(engine: Engine, tmp_path: Path) -> None:
    """The registry's rows name documents elsewhere (the documents directory moved, another
    bucket): everything here looks unreferenced, and nothing is removed."""
    elsewhere = FilesystemBlobStore(tmp_path / "old-documents")
    register(engine, plant(elsewhere))
    store = FilesystemBlobStore(tmp_path / "documents")
    planted = [plant(store), plant(store)]
    found = ds.find_unreferenced(engine, store, now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
    assert sorted(blob.location for blob in found.unreferenced) == sorted(planted)
    with pytest.raises(ds.SweepRefused, match="none of the 2 documents"):
        ds.remove_unreferenced(engine, store, found)
    assert all(Path(p).exists() for p in planted)
