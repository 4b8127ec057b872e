"""Fixtures shared by every test directory.

Databases: `db_url` gives each test a fresh empty database, once on SQLite, once on a real
PostgreSQL (marked `postgres`) that the session starts itself (tests/pgserver.py), and once on a
3-node Citus cluster (marked `citus`, tests/citusserver.py). When that
server cannot start, the PostgreSQL tests FAIL with the server log: CI must never pass by
skipping them.

Documents on an object store: `s3_server` starts one real S3 server for the session (Ceph's
radosgw, tests/s3server.py) with a bucket for the tests. Where Ceph is not installed the tests
that need it skip with the reason, except under CI (CI=true), where they fail: `make test`
installs it (.ci/install-s3).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from citusserver import CitusCluster
from loopback_server import serving
from pgserver import PostgresServer, PostgresStartError
from s3server import CephS3Server, S3StartError, missing_binaries
from smtp_relay import SmtpRelay

DATABASE_BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("citus", marks=pytest.mark.citus),
]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole session, stopped and removed at the end."""
    failure: str | None = None
    try:
        server = PostgresServer.start()
    except PostgresStartError as exc:
        failure = str(exc)
    if failure is not None:
        # Fail (never skip) with the server log; outside `except` so it is shown only once.
        pytest.fail(failure, pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """`postgresql+psycopg://` URL of a fresh database on the session's server."""
    return postgres_server.url_for(postgres_server.create_database("session"))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[CephS3Server]:
    """One real S3 server for the session, its bucket `s3_server.bucket` made; stopped and
    removed at the end. Without Ceph: skipped with the reason, failed under CI."""
    absent = missing_binaries()
    if absent:
        reason = f"no S3 server to test against: {', '.join(absent)} missing (bash .ci/install-s3 installs Ceph)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    failure: str | None = None
    try:
        server = CephS3Server.start()
    except S3StartError as exc:
        failure = str(exc)
    else:
        try:
            server.bucket = server.create_bucket("dmp-xds-tests")
        except Exception as exc:  # botocore's errors: the server is up but does not serve S3
            server.stop()
            failure = f"test S3 server (Ceph radosgw) up, but the bucket could not be made: {exc}"
    if failure is not None:
        pytest.fail(failure, pytrace=False)  # installed but not working: a failure, never a skip
    yield server
    server.stop()


@pytest.fixture(scope="session")
def citus_cluster() -> Iterator[CitusCluster]:
    """One throwaway Citus cluster (a coordinator and two workers) for the whole session; like
    the PostgreSQL server, a cluster that cannot start FAILS the tests that need it."""
    failure: str | None = None
    try:
        cluster = CitusCluster.start()
    except PostgresStartError as exc:
        failure = str(exc)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture
def citus_url(citus_cluster: CitusCluster) -> Iterator[str]:
    """A fresh, empty (unmigrated) distributed database on the session's Citus cluster."""
    name = citus_cluster.create_database("test")
    yield citus_cluster.url_for(name)
    citus_cluster.drop_database(name)


@pytest.fixture(params=DATABASE_BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty (unmigrated) database for one test: SQLite file or PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    if request.param == "citus":
        cluster: CitusCluster = request.getfixturevalue("citus_cluster")
        database = cluster.create_database("test")
        yield cluster.url_for(database)
        cluster.drop_database(database)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database("test")
    yield server.url_for(name)
    server.drop_database(name)


@pytest.fixture(scope="module")
def relay() -> Iterator[SmtpRelay]:
    """A test SMTP server on 127.0.0.1 that keeps what the server e-mails (codes, notices)."""
    running = SmtpRelay()
    with serving(running.handle) as port:
        running.port = port
        yield running
