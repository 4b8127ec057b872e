"""The professionals' site with its documents on a real S3 server (tests/s3server.py), over TLS
with a card: a PDF and a note read from the object store, then a clear 503 page, not a stack
trace nor a cut answer, while the store is stopped; back once it returns."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from test_professional_pages import INS, PDF, card, get
from test_professional_site import published

import soap_messages as soap
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from factories import ans_example
from s3server import CephS3Server
from secure_server import PATIENT, SecureServer, start_secure_server, stop_secure_server, vihf

CDA = "ANEST-CR-ANEST_2022.01.xml"  # its narrative is rendered from the bytes the store gives


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, s3_server: CephS3Server
) -> Iterator[tuple[SecureServer, dict[str, str]]]:
    pki: GeneratedPki = create_test_pki(tmp_path_factory.mktemp("pki"))
    prefix = f"web-{uuid.uuid4().hex[:8]}"
    running = start_secure_server(
        tmp_path_factory.mktemp("s3-web"), pki, tls=True, extra=s3_server.settings_env(s3_server.bucket, prefix)
    )
    try:
        doctor = pki.identity("doctor").national_id
        running.cli("dmp", "create", PATIENT, "--collected-by", doctor)
        running.cli("dmp", "grant", PATIENT, doctor)
        documents: dict[str, str] = {}
        for name, mime, content in (("pdf", "application/pdf", PDF), ("cda", "text/xml", ans_example(CDA))):
            submission = published(name, "20240402100000", "11", (), "")
            entry = submission.documents[0]
            entry.mime_type = mime
            response = running.call(
                "repository",
                soap.provide_and_register(submission, {entry.entry_uuid: content}, mtom=False),
                vihf(pki, "doctor", PATIENT),
            )
            assert response.status == "Success", response.fault_reason or response.error_codes
            assert entry.unique_id
            documents[name] = entry.unique_id
        yield running, documents
    finally:
        stop_secure_server(running)


def test_documents_are_read_from_the_object_store_or_a_clear_page_says_why_not(server, s3_server) -> None:
    doctor = card(server, "doctor")
    pdf, cda = server[1]["pdf"], server[1]["cda"]
    shown = get(doctor, server, f"/AccesDirect/Documents/{INS}/{pdf}/contenu")
    assert shown.status_code == 200 and shown.content == PDF
    assert shown.headers["content-length"] == str(len(PDF))
    rendered = get(doctor, server, f"/AccesDirect/Documents/{INS}/{cda}")
    assert rendered.status_code == 200 and "<table" in rendered.text  # the CDA's narrative, as HTML

    s3_server.stop_gateway()
    try:
        for path in (f"/AccesDirect/Documents/{INS}/{pdf}/contenu", f"/AccesDirect/Documents/{INS}/{cda}"):
            page = get(doctor, server, path)
            assert page.status_code == 503, path
            assert "le stockage des documents ne répond pas" in page.text
            assert "Traceback" not in page.text
    finally:
        s3_server.start_gateway()

    assert get(doctor, server, f"/AccesDirect/Documents/{INS}/{pdf}/contenu").content == PDF
