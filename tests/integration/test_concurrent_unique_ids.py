"""Submissions that share a uniqueId, released together over HTTP (SQLite and PostgreSQL).

The database, not the read-then-write of the registry rules, decides: of two logical documents
(different hashes) or two folders with one uniqueId, one is registered and the other gets the
error it would get one after the other. The same document (same uniqueId, same hash: NIST
12004) sent twice at once is registered twice, as it is one after the other, and its bytes are
stored once.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select

import soap_messages as soap
from dmp_xds.config import Settings, default_database_url
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.tables import DocumentEntryRow, FolderRow, RepositoryDocumentRow
from factories import PATIENT_ID, make_document_entry, make_submission, new_unique_id
from xds_server import RunningServer, stored_state

PAIRS = 20
BARRIER_SECONDS = 60
REQUEST_SECONDS = 120

Request = tuple[str, soap.HttpRequest]  # (endpoint, request)


@pytest.fixture(scope="module")
def server(xds_server: RunningServer) -> RunningServer:
    xds_server.add_patient(PATIENT_ID)
    return xds_server


def _race(server: RunningServer, requests_: Sequence[Request]) -> list[soap.SoapResponse]:
    """Send every request at once: one thread each, all released by one barrier."""
    barrier = threading.Barrier(len(requests_))
    results: list[soap.SoapResponse | BaseException | None] = [None] * len(requests_)

    def send(index: int) -> None:
        endpoint, request = requests_[index]
        try:
            barrier.wait(timeout=BARRIER_SECONDS)
            results[index] = server.post(endpoint, request, timeout=REQUEST_SECONDS)
        except BaseException as exc:  # reported below, with the test's own assertion
            results[index] = exc

    threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(len(requests_))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=BARRIER_SECONDS + REQUEST_SECONDS)
    assert not any(t.is_alive() for t in threads), "a request did not finish in time"
    failures = [r for r in results if not isinstance(r, soap.SoapResponse)]
    assert failures == []
    responses = [r for r in results if isinstance(r, soap.SoapResponse)]
    assert [r.status_code for r in responses] == [200] * len(responses)
    return responses


def _rows_per_unique_id(server: RunningServer, table: type, unique_ids: Sequence[str]) -> dict[str, int]:
    """How many rows of `table` hold each uniqueId (0 for none)."""
    url = server.database_url or default_database_url(Settings(data_dir=server.data_dir))
    engine = create_engine_for(url)
    column = table.__table__.c.unique_id  # type: ignore[attr-defined]
    try:
        with engine.connect() as connection:
            found = dict(
                connection.execute(
                    select(column, func.count()).where(column.in_(list(unique_ids))).group_by(column)
                ).all()
            )
    finally:
        engine.dispose()
    return {unique_id: found.get(unique_id, 0) for unique_id in unique_ids}


def _registered_hashes(server: RunningServer, unique_ids: Sequence[str]) -> dict[str, str]:
    url = server.database_url or default_database_url(Settings(data_dir=server.data_dir))
    engine = create_engine_for(url)
    table = DocumentEntryRow.__table__
    try:
        with engine.connect() as connection:
            return dict(
                connection.execute(
                    select(table.c.unique_id, table.c.hash).where(table.c.unique_id.in_(list(unique_ids)))
                ).all()
            )
    finally:
        engine.dispose()


def _files(server: RunningServer) -> int:
    return len(stored_state(server)[1])


def _one_winner(responses: list[soap.SoapResponse], pair: int, loser_code: str) -> int:
    """Index (0 or 1) of the pair's submission that was registered; the other got `loser_code`."""
    first, second = responses[2 * pair], responses[2 * pair + 1]
    statuses = [first.status, second.status]
    assert sorted(statuses) == ["Failure", "Success"], (pair, statuses, first.error_codes, second.error_codes)
    winner = statuses.index("Success")
    assert (first, second)[1 - winner].error_codes == [loser_code]
    return winner


def _content(unique_id: str, variant: int) -> bytes:
    return f"document {unique_id}, variant {variant}\n".encode() * 20


def _registration(unique_id: str, content: bytes, repository_unique_id: str) -> Request:
    """ITI-42 of one DocumentEntry describing `content`."""
    entry = make_document_entry(
        unique_id=unique_id,
        hash=hashlib.sha1(content).hexdigest(),
        size=len(content),
        repository_unique_id=repository_unique_id,
    )
    return "registry", soap.register(make_submission(documents=[entry]))


def _provide(unique_id: str, content: bytes, with_folder: bool = False, folder_unique_id: str = "") -> Request:
    """ITI-41 of one document (and a folder holding it), metadata as a source sends it."""
    submission = make_submission(documents=[make_document_entry(unique_id=unique_id)], with_folder=with_folder)
    for de in submission.documents:
        de.hash = de.size = de.repository_unique_id = None
    if folder_unique_id:
        submission.folders[0].unique_id = folder_unique_id
    return "repository", soap.provide_and_register(submission, {submission.documents[0].entry_uuid: content})


def test_iti42_documents_with_one_unique_id_and_other_hashes(server: RunningServer) -> None:
    unique_ids = [new_unique_id() for _ in range(PAIRS)]
    contents = {(u, i): _content(u, i) for u in unique_ids for i in (0, 1)}
    responses = _race(
        server, [_registration(u, contents[u, i], server.repository_unique_id) for u in unique_ids for i in (0, 1)]
    )
    winners = [_one_winner(responses, pair, "XDSNonIdenticalHash") for pair in range(PAIRS)]
    assert _rows_per_unique_id(server, DocumentEntryRow, unique_ids) == {u: 1 for u in unique_ids}
    hashes = _registered_hashes(server, unique_ids)
    assert hashes == {u: hashlib.sha1(contents[u, w]).hexdigest() for u, w in zip(unique_ids, winners, strict=True)}


def test_iti41_documents_with_one_unique_id_and_other_contents(server: RunningServer) -> None:
    unique_ids = [new_unique_id() for _ in range(PAIRS)]
    files_before = _files(server)
    contents = {(u, i): _content(u, i) for u in unique_ids for i in (0, 1)}
    responses = _race(server, [_provide(u, contents[u, i]) for u in unique_ids for i in (0, 1)])
    winners = [_one_winner(responses, pair, "XDSNonIdenticalHash") for pair in range(PAIRS)]
    assert _rows_per_unique_id(server, DocumentEntryRow, unique_ids) == {u: 1 for u in unique_ids}
    assert _rows_per_unique_id(server, RepositoryDocumentRow, unique_ids) == {u: 1 for u in unique_ids}
    hashes = _registered_hashes(server, unique_ids)
    assert hashes == {u: hashlib.sha1(contents[u, w]).hexdigest() for u, w in zip(unique_ids, winners, strict=True)}
    assert _files(server) == files_before + PAIRS  # the losers' files are removed


def test_iti42_folders_with_one_unique_id(server: RunningServer) -> None:
    folder_ids = [new_unique_id() for _ in range(PAIRS)]
    requests_: list[Request] = []
    document_ids: list[str] = []
    for folder_id in folder_ids:
        for _ in (0, 1):
            submission = make_submission(1, with_folder=True)
            submission.folders[0].unique_id = folder_id
            document_ids.append(submission.documents[0].unique_id or "")
            requests_.append(("registry", soap.register(submission)))
    responses = _race(server, requests_)
    winners = [_one_winner(responses, pair, "XDSDuplicateUniqueIdInRegistry") for pair in range(PAIRS)]
    assert _rows_per_unique_id(server, FolderRow, folder_ids) == {f: 1 for f in folder_ids}
    # Nothing of a losing submission is stored: neither its folder nor its document.
    expected = {d: int(i % 2 == winners[i // 2]) for i, d in enumerate(document_ids)}
    assert _rows_per_unique_id(server, DocumentEntryRow, document_ids) == expected


def test_iti41_folders_with_one_unique_id(server: RunningServer) -> None:
    folder_ids = [new_unique_id() for _ in range(PAIRS)]
    files_before = _files(server)
    requests_: list[Request] = []
    document_ids: list[str] = []
    for folder_id in folder_ids:
        for variant in (0, 1):
            document_id = new_unique_id()
            document_ids.append(document_id)
            requests_.append(
                _provide(document_id, _content(document_id, variant), with_folder=True, folder_unique_id=folder_id)
            )
    responses = _race(server, requests_)
    winners = [_one_winner(responses, pair, "XDSDuplicateUniqueIdInRegistry") for pair in range(PAIRS)]
    assert _rows_per_unique_id(server, FolderRow, folder_ids) == {f: 1 for f in folder_ids}
    expected = {d: int(i % 2 == winners[i // 2]) for i, d in enumerate(document_ids)}
    assert _rows_per_unique_id(server, DocumentEntryRow, document_ids) == expected
    assert _rows_per_unique_id(server, RepositoryDocumentRow, document_ids) == expected
    assert _files(server) == files_before + PAIRS


def test_iti42_the_same_document_twice_at_once_is_registered_twice(server: RunningServer) -> None:
    unique_ids = [new_unique_id() for _ in range(PAIRS)]
    responses = _race(
        server, [_registration(u, _content(u, 0), server.repository_unique_id) for u in unique_ids for _ in (0, 1)]
    )
    assert [(r.status, r.error_codes) for r in responses] == [("Success", [])] * (2 * PAIRS)
    assert _rows_per_unique_id(server, DocumentEntryRow, unique_ids) == {u: 2 for u in unique_ids}


def test_iti41_the_same_document_twice_at_once_is_registered_twice_and_stored_once(server: RunningServer) -> None:
    unique_ids = [new_unique_id() for _ in range(PAIRS)]
    files_before = _files(server)
    responses = _race(server, [_provide(u, _content(u, 0)) for u in unique_ids for _ in (0, 1)])
    assert [(r.status, r.error_codes) for r in responses] == [("Success", [])] * (2 * PAIRS)
    assert _rows_per_unique_id(server, DocumentEntryRow, unique_ids) == {u: 2 for u in unique_ids}
    assert _rows_per_unique_id(server, RepositoryDocumentRow, unique_ids) == {u: 1 for u in unique_ids}
    assert _files(server) == files_before + PAIRS
