"""A rejected submission stores nothing: no metadata row, no document file.

The failure is injected for real, after the documents were published to their final names:
the database refuses the commit. On PostgreSQL a deferred constraint trigger raises when the
submission's transaction commits (a new submission is one statement in autocommit, so the
commit is the end of that statement); on SQLite, where triggers cannot be deferred, an
SQLAlchemy `commit` event raises. The transaction must roll back and remove the files it had
published.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from dmp_xds.config import Settings
from dmp_xds.services.context import TransactionRequest
from dmp_xds.services.iti41 import provide_and_register
from dmp_xds.transport.serve import open_services
from factories import PATIENT_ID, make_submission
from soap_messages import pnr_payload
from xds_server import BACKENDS, database_for


@pytest.fixture(params=BACKENDS)
def services(request, tmp_path):
    services = open_services(
        Settings(data_dir=tmp_path, database_url=database_for(request), profile="ihe", auth="none"), migrate=True
    )
    services.registry.add_patient(PATIENT_ID)
    yield services
    services.registry.engine.dispose()


def _document_files(services) -> list[Path]:
    return [p for p in services.blobs.root.rglob("*") if p.is_file()]


def _submit(services, mtom: bool):
    submission = make_submission(2)
    for de in submission.documents:
        de.hash = de.size = de.repository_unique_id = None
    documents = {de.entry_uuid: b"body of " + de.unique_id.encode() for de in submission.documents}
    payload, _ = pnr_payload(submission, documents, mtom=False)
    return provide_and_register(services, TransactionRequest(payload))


_PG_FAIL_AT_COMMIT = [
    """CREATE FUNCTION injected_failure() RETURNS trigger LANGUAGE plpgsql AS
       $$ BEGIN RAISE EXCEPTION 'injected failure at commit'; END $$""",
    """CREATE CONSTRAINT TRIGGER injected_failure AFTER INSERT ON repository_document
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION injected_failure()""",
]
_PG_REMOVE_FAILURE = ["DROP TRIGGER injected_failure ON repository_document", "DROP FUNCTION injected_failure()"]


@contextlib.contextmanager
def failing_commit(services) -> Iterator[None]:
    """Make the database refuse to commit a submission that stores a document."""
    engine = services.registry.engine
    # A deferred constraint trigger fails the COMMIT itself on PostgreSQL; Citus has no
    # triggers on distributed tables, so there (as on SQLite) the commit is refused just before.
    if engine.dialect.name == "postgresql" and not services.registry.citus:
        with engine.begin() as connection:
            for statement in _PG_FAIL_AT_COMMIT:
                connection.execute(text(statement))
        try:
            yield
        finally:
            with engine.begin() as connection:
                for statement in _PG_REMOVE_FAILURE:
                    connection.execute(text(statement))
        return

    def refuse_commit(conn):
        raise RuntimeError("injected failure at commit")

    event.listen(engine, "commit", refuse_commit)
    try:
        yield
    finally:
        event.remove(engine, "commit", refuse_commit)


def test_failure_at_commit_after_documents_were_published(services):
    counts_before = services.registry.count_rows()
    published: list[Path] = []
    original_publish = services.blobs.publish

    def spy_publish(blob, target):
        location = original_publish(blob, target)
        published.append(Path(location))
        assert Path(location).exists()  # the file really reached its final name before the failure
        return location

    services.blobs.publish = spy_publish
    with failing_commit(services), pytest.raises((RuntimeError, DBAPIError), match="injected failure at commit"):
        _submit(services, mtom=False)
    assert len(published) == 2
    assert not any(p.exists() for p in published)
    assert services.registry.count_rows() == counts_before
    assert _document_files(services) == []

    # And the same store works again once the failure is gone.
    services.blobs.publish = original_publish
    response = _submit(services, mtom=False)
    assert response.payload.get("status", "").endswith("Success")
    assert len(_document_files(services)) == 2


def test_rejected_submission_leaves_no_temporary_file(services):
    submission = make_submission(1)
    submission.documents[0].class_code = None
    payload, _ = pnr_payload(submission, {submission.documents[0].entry_uuid: b"x"}, mtom=False)
    response = provide_and_register(services, TransactionRequest(payload))
    assert response.payload.get("status", "").endswith("Failure")
    assert _document_files(services) == []
