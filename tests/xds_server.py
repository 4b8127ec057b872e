"""A real dmp-xds server on 127.0.0.1, started as a separate process (tests and benchmarks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from pgserver import PostgresServer
from soap_messages import HttpRequest, SoapResponse, parse_response

STARTUP_SECONDS = 90.0  # compiling the ANS schematrons takes 8 s alone, far more on a busy machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    base_url: str
    data_dir: Path
    database_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def repository_url(self) -> str:
        return self.base_url + "/xds/repository"

    @property
    def registry_url(self) -> str:
        return self.base_url + "/xds/registry"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dmp_xds.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def add_patient(self, patient_id: str) -> None:
        result = self.cli("patient", "add", patient_id)
        assert result.returncode == 0, result.stderr

    @property
    def repository_unique_id(self) -> str:
        return (self.data_dir / "repository-unique-id").read_text().strip()

    def post(self, endpoint: str, request: HttpRequest, timeout: float = 60) -> SoapResponse:
        url = self.repository_url if endpoint == "repository" else self.registry_url
        resp = requests.post(url, data=request.body, headers={"Content-Type": request.content_type}, timeout=timeout)
        return parse_response(resp.status_code, resp.headers.get("Content-Type", ""), resp.content)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(data_dir: Path, database_url: str, extra_env: dict[str, str] | None = None) -> RunningServer:
    port = free_port()
    env = {
        **os.environ,
        "DMP_XDS_DATA_DIR": str(data_dir),
        "DMP_XDS_PORT": str(port),
        "DMP_XDS_HOST": "127.0.0.1",
        "DMP_XDS_LOG_LEVEL": "warning",
        "DMP_XDS_AUTH": "none",
        **(extra_env or {}),
    }
    env.pop("DMP_XDS_DATABASE_URL", None)  # '' is the embedded default, not the caller's shell's
    if database_url:
        env["DMP_XDS_DATABASE_URL"] = database_url
        subprocess.run(
            [sys.executable, "-m", "dmp_xds.cli", "db", "upgrade"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    log_path = data_dir / "server.log"
    log_file = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dmp_xds.cli", "serve"], env=env, stdout=log_file, stderr=subprocess.STDOUT
    )
    base_url = f"http://127.0.0.1:{port}"
    server = RunningServer(base_url, data_dir, database_url, env, process, log_path)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dmp-xds serve exited with {process.returncode}:\n{server.log()}")
        try:
            if requests.get(base_url + "/health", timeout=1).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"dmp-xds serve did not answer within {STARTUP_SECONDS}s:\n{server.log()}")


def peak_rss(pid: int) -> int:
    """A process's high-water mark of resident memory (VmHWM), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=15)


def database_url_for(backend: str, postgres: PostgresServer | None) -> str:
    """The server's database: '' for the embedded SQLite default, else a fresh PostgreSQL one."""
    if backend == "sqlite":
        return ""
    assert postgres is not None
    return postgres.url_for(postgres.create_database("xds"))


def stored_state(server: RunningServer) -> tuple[dict[str, int], list[str]]:
    """Row counts of every registry table and the document files: what 'nothing stored' means."""
    from dmp_xds.config import Settings, default_database_url
    from dmp_xds.storage.database import create_engine_for
    from dmp_xds.storage.store import RegistryStore

    url = server.database_url or default_database_url(Settings(data_dir=server.data_dir))
    engine = create_engine_for(url)
    try:
        counts = RegistryStore(engine).count_rows()
    finally:
        engine.dispose()
    if server.env.get("DMP_XDS_BLOB_STORE", "").startswith("s3://"):
        return counts, stored_objects(server.env)
    documents = server.data_dir / "documents"
    files = sorted(str(p.relative_to(documents)) for p in documents.rglob("*") if p.is_file())
    return counts, files


def stored_objects(env: dict[str, str]) -> list[str]:
    """The objects (and unfinished uploads) under the prefix of a server's S3 store, and its
    local temporary files: a server on an object store keeps no document on its disk."""
    import boto3
    from botocore.config import Config

    from dmp_xds.config import parse_blob_store

    location = parse_blob_store(env["DMP_XDS_BLOB_STORE"])
    assert location is not None
    s3 = boto3.client(
        "s3",
        endpoint_url=env["DMP_XDS_S3_ENDPOINT_URL"],
        region_name=env["DMP_XDS_S3_REGION"],
        aws_access_key_id=env["DMP_XDS_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=env["DMP_XDS_S3_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.prefix)
    keys = [obj["Key"][len(location.prefix) :] for page in pages for obj in page.get("Contents", [])]
    uploads = s3.list_multipart_uploads(Bucket=location.bucket, Prefix=location.prefix).get("Uploads", [])
    local = Path(env["DMP_XDS_DATA_DIR"]) / "documents"
    leftovers = [f"(local) {p.relative_to(local)}" for p in local.rglob("*") if p.is_file()]
    return sorted(keys + [f"(upload) {u['Key']}" for u in uploads] + leftovers)


BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("citus", marks=pytest.mark.citus),
]


def documents_env(request: pytest.FixtureRequest, s3: bool = False) -> dict[str, str]:
    """The document store's settings for a test server: none (its data directory) unless `s3`
    or DMP_XDS_TEST_DOCUMENTS=s3, then a prefix of its own on the session's S3 server."""
    if not s3 and os.environ.get("DMP_XDS_TEST_DOCUMENTS") != "s3":
        return {}
    s3 = request.getfixturevalue("s3_server")
    return dict(s3.settings_env(s3.bucket, f"suite-{uuid.uuid4().hex[:8]}"))


def documents_for(request: pytest.FixtureRequest) -> dict[str, str]:
    """`documents_env` for a fixture parametrized over BACKENDS: on Citus the documents are on the
    session's S3 server, as a deployment at that scale keeps them (docs/scaling.md)."""
    return documents_env(request, s3=request.param == "citus")


def database_for(request: pytest.FixtureRequest) -> str:
    """For a fixture parametrized over BACKENDS: its database URL ('' is the SQLite default; a
    fresh distributed database on the session's cluster for Citus)."""
    if request.param == "citus":
        cluster = request.getfixturevalue("citus_cluster")
        return str(cluster.url_for(cluster.create_database("xds")))
    postgres = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    return database_url_for(request.param, postgres)
