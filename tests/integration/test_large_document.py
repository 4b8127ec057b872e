"""A 50 MB document in and out over MTOM, with the server's peak memory measured.

The server's high-water mark of resident memory (VmHWM, which includes the interpreter and its
libraries) must stay under 4 x 50 MB: the document is streamed to disk on the way in and from
disk on the way out, never held whole in memory.
"""

from __future__ import annotations

import hashlib
import os

import pytest
import requests

import soap_messages as soap
from factories import PATIENT_ID, make_submission

SIZE = 50 * 1024 * 1024
PEAK_LIMIT = 4 * SIZE


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


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
    baseline = _peak_rss(server.process.pid)
    response = server.post("repository", request, timeout=300)
    assert response.status == "Success", response.error_codes

    retrieve = soap.retrieve([(server.repository_unique_id, de.unique_id)])
    resp = requests.post(
        server.repository_url, data=retrieve.body, headers={"Content-Type": retrieve.content_type}, timeout=300
    )
    parsed = soap.parse_response(resp.status_code, resp.headers["Content-Type"], resp.content)
    retrieved = soap.document_bytes(parsed)[de.unique_id]
    assert hashlib.sha1(retrieved).digest() == hashlib.sha1(document).digest()

    peak = _peak_rss(server.process.pid)
    with capsys.disabled():
        print(
            f"\n[50 MB round trip] server peak RSS {peak / 2**20:.1f} MiB "
            f"(before the request {baseline / 2**20:.1f} MiB, limit {PEAK_LIMIT / 2**20:.0f} MiB)"
        )
    assert peak < PEAK_LIMIT
