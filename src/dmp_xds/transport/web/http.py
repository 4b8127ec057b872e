"""Requests, responses, cookies and the router of the web front: small and explicit.

A route is a method and a path pattern whose `{name}` parts match one path segment each; the
handler gets the request (its `params` hold those parts) and returns a Response.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from dmp_xds.storage.web import WebSession

SAFE_METHODS = frozenset({"GET", "HEAD"})


class HttpError(Exception):
    """A refusal the error page shows: the status and the reason, in French."""

    def __init__(self, status: int, reason: str, allow: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.allow = allow


@dataclass(frozen=True)
class UploadedFile:
    """A file of a multipart form, streamed to a temporary file."""

    field_name: str
    file_name: str
    content_type: str
    path: Path
    size: int


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    cookies: dict[str, str]
    client: str  # the client's address
    tls: bool
    form: dict[str, str] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    chain: list[Any] | None = None  # the client certificate chain (x509), None when there is none
    session: WebSession | None = None
    # A session opened while serving this request (a card's first page): its cookie goes out
    # with the response.
    issued_token: str = ""

    @property
    def safe(self) -> bool:
        return self.method in SAFE_METHODS

    def field(self, name: str) -> str:
        return self.form.get(name, "")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    # A file sent as the body instead of `body`, streamed in chunks (a document, an archive);
    # `remove_file`: a temporary file, removed once sent (or once the sending failed).
    file: Path | None = None
    remove_file: bool = False
    # Or chunks streamed as they come (a document from the store), `stream_size` bytes in all.
    stream: Iterator[bytes] | None = None
    stream_size: int = 0

    def set_cookie(self, name: str, value: str, *, secure: bool, max_age: int | None = None) -> None:
        """A session cookie: HttpOnly, SameSite=Strict, Path=/, Secure over TLS (`__Host-`
        names require Secure and Path=/ and no Domain: browsers refuse them otherwise)."""
        parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
        if secure:
            parts.append("Secure")
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        self.headers.append(("set-cookie", "; ".join(parts)))

    def delete_cookie(self, name: str, *, secure: bool) -> None:
        self.set_cookie(name, "", secure=secure, max_age=0)


def redirect(location: str, status: int = 303) -> Response:
    """303 See Other after a POST: the browser GETs the page, and a reload posts nothing again."""
    return Response(status, b"", "text/plain; charset=utf-8", [("location", location)])


def url(path: str, **query: str) -> str:
    return path + ("?" + urlencode(query) if query else "")


def parse_cookies(header: str) -> dict[str, str]:
    """The cookies of a Cookie header; an unreadable header is no cookie."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def parse_query(text: str) -> dict[str, str]:
    return dict(parse_qsl(text, keep_blank_values=True))


Handler = Callable[[Request], Response]
_PART = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    regex: re.Pattern[str]
    handler: Handler


def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    last = 0
    for match in _PART.finditer(pattern):
        out.append(re.escape(pattern[last : match.start()]))
        out.append(f"(?P<{match.group(1)}>[^/]+)")
        last = match.end()
    out.append(re.escape(pattern[last:]))
    return re.compile("".join(out) + r"\Z")


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        if not pattern.startswith("/"):
            raise ValueError(f"route {pattern!r}: a path starts with /")
        self.routes.append(Route(method.upper(), pattern, _compile(pattern), handler))

    def get(self, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add("GET", pattern, handler)
            return handler

        return register

    def post(self, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add("POST", pattern, handler)
            return handler

        return register

    def owns(self, path: str) -> bool:
        return any(r.regex.match(path) for r in self.routes)

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler of `method` `path` and its named parts; HttpError 404 (no such path) or
        405 (the path exists, not with this method: Allow names those it has)."""
        allowed = []
        for route in self.routes:
            found = route.regex.match(path)
            if found is None:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route.handler, found.groupdict()
            allowed.append(route.method)
        if allowed:
            raise HttpError(405, "Cette page ne s'utilise pas ainsi.", ", ".join(sorted(set(allowed))))
        raise HttpError(404, "Cette page n'existe pas.")


def form_of(body: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body; undecodable bytes are a 400."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "Le formulaire envoyé n'est pas lisible.") from None
    return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=200))


def headers_of(raw: Mapping[str, str] | list[tuple[bytes, bytes]]) -> dict[str, str]:
    if isinstance(raw, Mapping):
        return {k.lower(): v for k, v in raw.items()}
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
