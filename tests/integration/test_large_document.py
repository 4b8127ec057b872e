"""A 50 MB document in and out over MTOM, with the server's peak memory measured.

The server's high-water mark of resident memory (VmHWM, which includes the interpreter and its
libraries) must stay under 4 x 50 MB: the document is streamed to disk on the way in and from
disk on the way out, never held whole in memory.
"""

from __future__ import annotations

import hashlib
import os

import pytest

import soap_messages as soap
from factories import PATIENT_ID, make_submission
from xds_server import peak_rss

SIZE = 50 * 1024 * 1024
PEAK_LIMIT = 4 * SIZE


@pytest.fixture(scope="module")
def server(xds_server):
    xds_server.add_patient(PATIENT_ID)
    return xds_server


def test_50_mb_document_round_trip_with_bounded_memory(server, capsys):
    document = os.urandom(1024 * 1024) * 50
    submission = make_submission(1)
    de = submission.documents[0]
    de.hash = de.size = de.repository_unique_id = None
    de.mime_type = "application/octet-stream"
    request = soap.provide_and_register(submission, {de.entry_uuid: document})
    baseline = peak_rss(server.process.pid)
    response = server.post("repository", request, timeout=300)
    assert response.status == "Success", response.error_codes

    parsed = server.post("repository", soap.retrieve([(server.repository_unique_id, de.unique_id)]), timeout=300)
    retrieved = soap.document_bytes(parsed)[de.unique_id]
    assert hashlib.sha1(retrieved).digest() == hashlib.sha1(document).digest()

    peak = peak_rss(server.process.pid)
    with capsys.disabled():
        print(
            f"\n[50 MB round trip] server peak RSS {peak / 2**20:.1f} MiB "
            f"(before the request {baseline / 2**20:.1f} MiB, limit {PEAK_LIMIT / 2**20:.0f} MiB)"
        )
    assert peak < PEAK_LIMIT
