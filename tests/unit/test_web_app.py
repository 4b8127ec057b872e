"""The web front's ASGI side, called directly (no socket, no database: a server without
authentication, so no sign-in): routing, error pages, headers, static files, bodies."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dmp_xds.config import Settings
from dmp_xds.transport.web.app import WebApplication


@pytest.fixture
def app(tmp_path: Path) -> Any:
    settings = Settings(data_dir=tmp_path, auth="none", web_max_form_bytes=100)
    services = SimpleNamespace(settings=settings, security=None)
    with ThreadPoolExecutor(2) as executor:
        yield WebApplication(services, executor, lambda scope, headers: None)  # type: ignore[arg-type]


def call(app: Any, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "scheme": "https",
        "client": ("192.0.2.1", 1234),
        "headers": [(k.encode(), v.encode()) for k, v in {"host": "dmp.test", **(headers or {})}.items()],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return SimpleNamespace(
        status=start["status"],
        headers={k.decode(): v.decode() for k, v in start["headers"]},
        text=b"".join(m.get("body", b"") for m in sent[1:]).decode(),
    )


def test_the_home_page_in_french_with_its_headers(app: Any) -> None:
    page = call(app, "GET", "/")
    assert page.status == 200 and '<html lang="fr">' in page.text and 'href="#contenu"' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["strict-transport-security"] and page.headers["x-frame-options"] == "DENY"
    assert "<script" not in page.text


def test_unknown_pages_and_methods(app: Any) -> None:
    missing = call(app, "GET", "/nulle-part")
    assert missing.status == 404 and "Page introuvable" in missing.text
    wrong = call(app, "DELETE", "/")
    assert wrong.status == 405 and wrong.headers["allow"] == "GET"


def test_personal_pages_are_never_cached_even_refused(app: Any) -> None:
    refused = call(app, "GET", "/patient/")
    assert refused.status == 401 and refused.headers["cache-control"] == "no-store"


def test_static_files_and_no_way_out_of_their_folder(app: Any) -> None:
    css = call(app, "GET", "/static/dmp-xds.css")
    assert css.status == 200 and css.headers["content-type"] == "text/css; charset=utf-8"
    head = call(app, "HEAD", "/static/dmp-xds.css")
    assert head.status == 200 and head.text == "" and int(head.headers["content-length"]) > 0
    assert call(app, "GET", "/static/../app.py").status == 404
    assert call(app, "GET", "/static/%2e%2e/app.py").status == 404


def test_a_post_from_another_site_is_refused_before_anything(app: Any) -> None:
    form = "login=a&password=b"
    foreign = call(app, "POST", "/patient/connexion", form.encode(), {"origin": "https://evil.example"})
    assert foreign.status == 403 and "ce site" in foreign.text
    unsigned = call(app, "POST", "/patient/connexion", form.encode())
    assert unsigned.status == 403


def test_bodies_over_the_limit_or_of_another_type(app: Any) -> None:
    origin = {"origin": "https://dmp.test"}
    big = call(app, "POST", "/patient/connexion", b"a=" + b"x" * 200, origin)
    assert big.status == 413 and "volumineux" in big.text
    soap = call(app, "POST", "/patient/connexion", b"<x/>", {**origin, "content-type": "application/soap+xml"})
    assert soap.status == 415
    # Without authentication the spaces say so rather than fail.
    alone = call(app, "POST", "/patient/connexion", b"login=a&password=b", origin)
    assert alone.status == 503 and "DMP_XDS_AUTH" in alone.text
