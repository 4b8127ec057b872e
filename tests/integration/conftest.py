"""Integration fixtures: a real server per test module, on SQLite, PostgreSQL and Citus.

On Citus, as a national deployment runs, an `xds_server` keeps its documents on the session's
S3 server (tests/s3server.py, a prefix per module) instead of its data directory; with
DMP_XDS_TEST_DOCUMENTS=s3 in the environment every backend does:
`DMP_XDS_TEST_DOCUMENTS=s3 pytest tests/integration` runs the suite over the object store.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from xds_server import BACKENDS, RunningServer, database_for, documents_for, start_server, stop_server


@pytest.fixture(scope="module", params=BACKENDS)
def xds_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server per test module and backend: SQLite is the embedded default (migrated at start)."""
    data_dir = tmp_path_factory.mktemp(f"xds-{request.param}")
    documents = documents_for(request)
    server = start_server(data_dir, database_for(request), {"DMP_XDS_PROFILE": "ihe", **documents})
    yield server
    stop_server(server)
