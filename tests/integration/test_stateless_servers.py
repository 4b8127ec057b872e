"""Two server processes on two ports, one PostgreSQL and one document directory, as behind a
load balancer: whatever a request needs is in the database, so either process serves it.

A document submitted through A is found and retrieved through B; a VIHF used on A is a replay on
B; a patient's web session opened on A works on B, and signing out on B ends it on A; failed
sign-ins on both count towards one rate limit; submissions alternating between A and B all land
and the trace's chain verifies; the health endpoints answer over TLS without a card and are not
traced. Last, A is killed (SIGKILL) in the middle of a stream of submissions while B keeps
serving: every submission A was given either landed whole (found, retrieved) or left nothing in
the registry, and B answered every one of its own.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from lxml import etree
from sqlalchemy import func, select
from test_web_signin import csrf_of, emailed_code

import soap_messages as soap
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.security.vihf import security_header
from dmp_xds.storage.blobstore import FilesystemBlobStore
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.tables import AuditEntryRow, DocumentEntryRow, RegistryUniqueIdRow, RepositoryDocumentRow
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Author
from factories import make_submission, make_submission_set
from pgserver import PostgresServer
from secure_server import PATIENT, SecureServer, patient_with_account, start_secure_server, stop_secure_server, vihf
from smtp_relay import SmtpRelay

pytestmark = pytest.mark.postgres

REPOSITORY_ID = "1.2.250.1.999.7.1"
EMAIL = "patient@example.org"
LOGIN, PASSWORD = "patient01", "un mot de passe du patient"
RATE_LIMIT = 6
DOCUMENT_BYTES = 256 * 1024  # large enough that a kill may land inside a request
CONCURRENT_SUBMISSIONS = 16
STREAM_LIMIT = 60  # submissions per stream, at most
KILL_AFTER = 3  # A's successful submissions before the kill
WAIT_SECONDS = 120.0


@dataclass
class Pair:
    a: SecureServer
    b: SecureServer
    documents: Path
    database_url: str


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def pair(
    pki: GeneratedPki, relay: SmtpRelay, postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """A and B: data directories of their own, but one database, one trace key, one
    repositoryUniqueId and one document directory (each data directory's `documents` is a link
    to it, as a shared mount would be)."""
    root = tmp_path_factory.mktemp("stateless")
    documents = root / "documents"
    documents.mkdir()
    key = root / "audit-key"
    key.write_text(secrets.token_hex(32) + "\n")
    key.chmod(0o600)
    database_url = postgres_server.url_for(postgres_server.create_database("stateless"))
    extra = {
        "DMP_XDS_REPOSITORY_UNIQUE_ID": REPOSITORY_ID,
        "DMP_XDS_AUDIT_KEY_FILE": str(key),
        "DMP_XDS_NOTIFY_SMTP": f"smtp://127.0.0.1:{relay.port}",
        "DMP_XDS_NOTIFY_FROM": "dmp@test.example",
        "DMP_XDS_WEB_RATE_LIMIT": str(RATE_LIMIT),
    }
    servers: list[SecureServer] = []
    try:
        for name in ("a", "b"):
            data = root / name
            data.mkdir()
            (data / "documents").symlink_to(documents)
            servers.append(start_secure_server(data, pki, tls=True, extra=extra, database_url=database_url))
        a = servers[0]
        a.cli("dmp", "create", PATIENT, "--collected-by", "accueil")
        a.cli("dmp", "grant", PATIENT, pki.identity("doctor").national_id)
        patient_with_account(database_url, PATIENT, LOGIN, PASSWORD, EMAIL)
        yield Pair(servers[0], servers[1], documents, database_url)
    finally:
        for server in servers:
            stop_secure_server(server)


# -- helpers ----------------------------------------------------------------------------------


def new_submission(pki: GeneratedPki) -> tuple[soap.HttpRequest, str, bytes]:
    """An ITI-41 request (MTOM) of one document of PATIENT by the doctor: request, uniqueId, bytes."""
    submission = make_submission(1, submission_set=make_submission_set(patient_id=PATIENT))
    entry = submission.documents[0]
    entry.patient_id = PATIENT
    entry.authors = [Author(person=f"{pki.identity('doctor').national_id}^MARTIN^Marie^^^Dr^^^&1.2.250.1.71.4.2.1&ISO")]
    entry.hash = entry.size = entry.repository_unique_id = None
    content = (f"compte rendu {entry.unique_id}\n".encode() * (DOCUMENT_BYTES // 40))[:DOCUMENT_BYTES]
    payload, parts = soap.pnr_payload(submission, {entry.entry_uuid: content}, mtom=True)
    envelope, _ = soap.envelope(v.ACTION_ITI41, payload)
    element = etree.fromstring(envelope)
    element.find(f"{{{v.NS_SOAP12}}}Header").append(security_header(vihf(pki, "doctor")))
    body, content_type = soap.mtom_body(etree.tostring(element), parts)
    return soap.HttpRequest(body, content_type, ""), entry.unique_id or "", content


def submit(server: SecureServer, pki: GeneratedPki, request: soap.HttpRequest) -> soap.SoapResponse:
    identity = pki.identity("doctor")
    answer = requests.post(
        server.url + "/xds/repository",
        data=request.body,
        headers={"Content-Type": request.content_type},
        cert=(identity.certificate, identity.key),
        verify=str(pki.anchors),
        timeout=60,
    )
    return soap.parse_response(answer.status_code, answer.headers.get("Content-Type", ""), answer.content)


def find_documents(server: SecureServer, pki: GeneratedPki) -> str:
    query = soap.adhoc_query(
        v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{PATIENT}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
    )
    response = server.call("registry", query, vihf(pki, "doctor"))
    assert response.status_code == 200 and response.status == "Success", response.fault_reason
    return etree.tostring(response.payload).decode()


def retrieved(server: SecureServer, pki: GeneratedPki, unique_id: str) -> bytes | None:
    response = server.call("repository", soap.retrieve([(REPOSITORY_ID, unique_id)]), vihf(pki, "doctor"))
    assert response.status_code == 200, response.fault_reason
    return soap.document_bytes(response).get(unique_id)


def browser(pki: GeneratedPki) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(pki.anchors)
    return session


def web_get(session: requests.Session, server: SecureServer, path: str) -> requests.Response:
    return session.get(server.url + path, allow_redirects=False, timeout=30)


def web_post(session: requests.Session, server: SecureServer, path: str, **form: str) -> requests.Response:
    # The Origin a browser sends: the server the form is posted to.
    return session.post(server.url + path, data=form, headers={"Origin": server.url}, allow_redirects=False, timeout=30)


def trace_rows(pair: Pair) -> int:
    engine = create_engine_for(pair.database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(AuditEntryRow.__table__)).scalar_one())
    finally:
        engine.dispose()


# -- tests ------------------------------------------------------------------------------------


def test_health_answers_over_tls_without_a_card_and_is_not_traced(pair: Pair, pki: GeneratedPki) -> None:
    before = trace_rows(pair)
    for server in (pair.a, pair.b):
        anonymous = browser(pki)  # no client certificate, as a load balancer
        live = anonymous.get(server.url + "/health", timeout=10)
        assert live.status_code == 200 and live.json()["status"] == "ok"
        ready = anonymous.get(server.url + "/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "documents": "ok"}
        assert ready.headers["Cache-Control"] == "no-store"
        head = anonymous.head(server.url + "/health/ready", timeout=10)
        assert head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) > 0
        assert anonymous.post(server.url + "/health", timeout=10).status_code == 405
    assert trace_rows(pair) == before
    # Everything else still wants the card (and traces the refusal).
    query = soap.adhoc_query(v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{PATIENT}'"]})
    envelope = etree.fromstring(query.body)
    envelope.find(f"{{{v.NS_SOAP12}}}Header").append(security_header(vihf(pki, "doctor")))
    refused = browser(pki).post(
        pair.b.url + "/xds/registry", data=etree.tostring(envelope), headers={"Content-Type": soap.SOAP12}, timeout=10
    )
    assert refused.status_code == 403 and "no client certificate" in refused.text, refused.text


def test_a_document_submitted_through_a_is_found_and_retrieved_through_b(pair: Pair, pki: GeneratedPki) -> None:
    request, unique_id, content = new_submission(pki)
    response = submit(pair.a, pki, request)
    assert response.status == "Success", response.error_codes
    assert unique_id in find_documents(pair.b, pki)
    assert retrieved(pair.b, pki, unique_id) == content


def test_a_vihf_used_on_a_is_refused_as_a_replay_on_b(pair: Pair, pki: GeneratedPki) -> None:
    query = soap.adhoc_query(
        v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{PATIENT}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
    )
    assertion = vihf(pki, "doctor")
    assert pair.a.call("registry", query, assertion).status_code == 200
    replay = pair.b.call("registry", query, assertion)
    assert replay.status_code == 403 and "replay" in (replay.fault_reason or ""), replay.fault_reason


def test_a_web_session_opened_on_a_works_on_b_and_ends_there(pair: Pair, pki: GeneratedPki, relay: SmtpRelay) -> None:
    session = browser(pki)
    before = len(relay.messages)
    assert web_post(session, pair.a, "/patient/connexion", login=LOGIN, password=PASSWORD).status_code == 303
    signed_in = web_post(session, pair.a, "/patient/connexion/code", code=emailed_code(relay, before))
    assert signed_in.status_code == 303, signed_in.text
    assert web_get(session, pair.a, "/patient/").status_code == 200
    on_b = web_get(session, pair.b, "/patient/compte")
    assert on_b.status_code == 200, on_b.text[:500]
    # Signing out on B, with the CSRF token of B's page (the session's, wherever it is read).
    assert web_post(session, pair.b, "/deconnexion", csrf=csrf_of(on_b)).status_code == 303
    assert web_get(session, pair.a, "/patient/").status_code == 401


def test_concurrent_submissions_through_both_land_and_the_trace_verifies(pair: Pair, pki: GeneratedPki) -> None:
    requests_ = [new_submission(pki) for _ in range(CONCURRENT_SUBMISSIONS)]

    def one(n: int) -> str:
        return submit((pair.a, pair.b)[n % 2], pki, requests_[n][0]).status

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(one, range(CONCURRENT_SUBMISSIONS)))
    assert statuses == ["Success"] * CONCURRENT_SUBMISSIONS
    listed = find_documents(pair.a, pki)
    assert all(unique_id in listed for _, unique_id, _ in requests_)
    # Both processes appended to one chain, with the one key: it verifies whole.
    assert "audit trace intact" in pair.b.cli("audit", "verify")


def test_failed_sign_ins_on_both_count_towards_one_rate_limit(pair: Pair, pki: GeneratedPki) -> None:
    """Last of the web tests: it leaves 127.0.0.1 rate limited on both."""
    statuses = [
        web_post(browser(pki), (pair.a, pair.b)[n % 2], "/patient/connexion", login=f"none{n:04}", password="x")
        for n in range(RATE_LIMIT + 1)
    ]
    codes = [answer.status_code for answer in statuses]
    # Per process, each would have allowed RATE_LIMIT failures: 2 × RATE_LIMIT in all.
    assert codes == [401] * RATE_LIMIT + [429], codes
    for server in (pair.a, pair.b):
        assert web_post(browser(pki), server, "/patient/connexion", login=LOGIN, password=PASSWORD).status_code == 429


@dataclass
class Stream:
    """Submissions sent one after another to one server: (uniqueId, bytes, outcome) each, the
    outcome "Success", "Failure", or "lost" (no answer: the connection broke)."""

    server: SecureServer
    sent: list[tuple[str, bytes, str]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # how long each took

    def successes(self) -> int:
        return sum(outcome == "Success" for _, _, outcome in self.sent)

    def run(self, pki: GeneratedPki, stop: threading.Event) -> None:
        for _ in range(STREAM_LIMIT):
            if stop.is_set():
                return
            request, unique_id, content = new_submission(pki)
            started = time.monotonic()
            try:
                outcome = submit(self.server, pki, request).status
            except requests.RequestException:
                outcome = "lost"
            self.seconds.append(time.monotonic() - started)
            self.sent.append((unique_id, content, outcome))
            if outcome == "lost":
                return  # the server is gone


def registry_rows(pair: Pair) -> tuple[set[str], dict[str, tuple[str, int]], set[str]]:
    """The documents' uniqueIds registered, the repository's rows (uniqueId -> path, size) and
    the uniqueIds claimed in the uniqueness table."""
    engine = create_engine_for(pair.database_url)
    entries, repository, claims = (
        DocumentEntryRow.__table__,
        RepositoryDocumentRow.__table__,
        RegistryUniqueIdRow.__table__,
    )
    try:
        with engine.connect() as connection:
            registered = set(connection.execute(select(entries.c.unique_id)).scalars())
            stored = {r.unique_id: (r.path, r.size) for r in connection.execute(select(repository))}
            claimed = set(connection.execute(select(claims.c.unique_id)).scalars())
    finally:
        engine.dispose()
    return registered, stored, claimed


def test_a_server_killed_mid_stream_leaves_every_submission_whole_or_absent(pair: Pair, pki: GeneratedPki) -> None:
    streams = {"a": Stream(pair.a), "b": Stream(pair.b)}
    stop = threading.Event()
    threads = {name: threading.Thread(target=stream.run, args=(pki, stop)) for name, stream in streams.items()}
    for thread in threads.values():
        thread.start()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while streams["a"].successes() < KILL_AFTER and time.monotonic() < deadline and threads["a"].is_alive():
            time.sleep(0.01)
        assert streams["a"].successes() >= KILL_AFTER, streams["a"].sent
        # Somewhere inside the next submission: reading it, checking it, writing its file or
        # its rows (a different moment at each run).
        time.sleep(random.uniform(0, sum(streams["a"].seconds) / len(streams["a"].seconds)))
        os.kill(pair.a.process.pid, signal.SIGKILL)
        pair.a.process.wait(timeout=30)
        threads["a"].join(WAIT_SECONDS)
        # B keeps serving after A is gone.
        after_kill = len(streams["b"].sent)
        deadline = time.monotonic() + WAIT_SECONDS
        while len(streams["b"].sent) < after_kill + 3 and time.monotonic() < deadline and threads["b"].is_alive():
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads.values():
            thread.join(WAIT_SECONDS)
    assert not any(thread.is_alive() for thread in threads.values())
    b_sent = streams["b"].sent
    assert len(b_sent) >= after_kill + 3 and all(outcome == "Success" for _, _, outcome in b_sent), b_sent

    registered, stored, claimed = registry_rows(pair)
    # No half: every registered document has its repository row and its file, whole; every
    # repository row and uniqueId claim has its document.
    assert registered == set(stored), registered ^ set(stored)
    assert registered <= claimed
    for unique_id, (path, size) in stored.items():
        assert Path(path).is_file() and Path(path).stat().st_size == size, unique_id

    listed = find_documents(pair.b, pki)
    for unique_id, content, outcome in streams["a"].sent + b_sent:
        if outcome == "Success" or unique_id in registered:
            assert unique_id in listed and retrieved(pair.b, pki, unique_id) == content, (unique_id, outcome)
        else:  # refused, or lost with A: nothing of it anywhere
            assert unique_id not in claimed and unique_id not in stored and unique_id not in listed

    # What A may leave on disk: the temporary file of the request it was reading, or the file of
    # a document published but not yet committed; never a file a registry row names wrongly.
    referenced = {Path(path).resolve() for path, _ in stored.values()}
    unreferenced = [p for p in pair.documents.rglob("*") if p.is_file() and p.resolve() not in referenced]
    assert len(unreferenced) <= 1, unreferenced
    store = FilesystemBlobStore(pair.documents)
    store.clean_temporary(older_than_seconds=0)  # what start-up does once the file is old enough
    assert not list(store.tmp_dir.glob("*.part"))


# -- readiness when the database goes away ----------------------------------------------------


def test_readiness_is_503_when_the_database_is_stopped(pki: GeneratedPki, tmp_path: Path) -> None:
    """On a PostgreSQL of its own, stopped under the running server: ready says 503 (naming the
    database), alive still says 200. A document store that cannot be written is named too."""
    own = PostgresServer.start()
    server: SecureServer | None = None
    try:
        server = start_secure_server(tmp_path, pki, tls=True, database_url=own.url_for(own.create_database("health")))
        anonymous = browser(pki)
        assert anonymous.get(server.url + "/health/ready", timeout=10).status_code == 200
        # A document store that cannot take a file (its temporary directory a file): 503, then
        # 200 again once it can.
        tmp = tmp_path / "documents" / "tmp"
        tmp.rename(tmp.with_name("tmp-away"))
        tmp.write_bytes(b"")
        try:
            broken = anonymous.get(server.url + "/health/ready", timeout=10)
            assert broken.status_code == 503 and broken.json()["checks"] == {
                "database": "ok",
                "documents": "unavailable",
            }, broken.text
        finally:
            tmp.unlink()
            tmp.with_name("tmp-away").rename(tmp)
        assert anonymous.get(server.url + "/health/ready", timeout=10).status_code == 200
        own.stop()
        deadline = time.monotonic() + WAIT_SECONDS
        ready = anonymous.get(server.url + "/health/ready", timeout=10)
        while ready.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
            ready = anonymous.get(server.url + "/health/ready", timeout=10)
        assert ready.status_code == 503, ready.text
        body = json.loads(ready.text)
        assert body["status"] == "unavailable" and body["checks"]["database"] != "ok"
        assert body["checks"]["documents"] == "ok"
        assert anonymous.get(server.url + "/health", timeout=10).status_code == 200
        assert anonymous.head(server.url + "/health/ready", timeout=10).status_code == 503
    finally:
        if server is not None:
            stop_secure_server(server)
        own.stop()
