"""Integration fixtures: a real server per test module, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from xds_server import BACKENDS, RunningServer, database_for, start_server, stop_server


@pytest.fixture(scope="module", params=BACKENDS)
def xds_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server per test module and backend: SQLite is the embedded default (migrated at start)."""
    data_dir = tmp_path_factory.mktemp(f"xds-{request.param}")
    server = start_server(data_dir, database_for(request), {"DMP_XDS_PROFILE": "ihe"})
    yield server
    stop_server(server)
