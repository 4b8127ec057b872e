"""The WSDLs load in zeep over HTTP from the URL layout the server serves (/xds/wsdl/,
/xds/schemas/): their relative schema locations resolve there as they do on disk."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import zeep

from dmp_xds.config import resource_dir
from dmp_xds.tools.client.soap import REGISTRY_WSDL_FILE, REPOSITORY_WSDL_FILE

REPOSITORY_WSDL = resource_dir("wsdl") / REPOSITORY_WSDL_FILE
REGISTRY_WSDL = resource_dir("wsdl") / REGISTRY_WSDL_FILE


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def xds_url_layout(tmp_path: Path) -> Iterator[str]:
    """A static server with the layout the application serves: /xds/wsdl/ and /xds/schemas/."""
    root = tmp_path / "www"
    (root / "xds").mkdir(parents=True)
    (root / "xds" / "wsdl").symlink_to(resource_dir("wsdl"))
    (root / "xds" / "schemas").symlink_to(resource_dir("schemas"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _operations(client: zeep.Client) -> set[str]:
    (service,) = client.wsdl.services.values()
    (port,) = service.ports.values()
    return set(port.binding._operations)


@pytest.mark.parametrize("wsdl", [REPOSITORY_WSDL, REGISTRY_WSDL], ids=lambda p: p.name)
def test_zeep_loads_the_wsdl_over_http(xds_url_layout: str, wsdl: Path) -> None:
    over_http = _operations(zeep.Client(f"{xds_url_layout}/xds/wsdl/{wsdl.name}"))
    assert over_http and over_http == _operations(zeep.Client(str(wsdl)))
