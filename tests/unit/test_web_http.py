"""The web front's router, requests, cookies, forms, security headers, CSRF and origin checks,
and session tokens: pure pieces, no server."""

from __future__ import annotations

import pytest

from dmp_xds.services import web_signin as signin
from dmp_xds.storage.patient_accounts import Channel
from dmp_xds.transport.web.http import HttpError, Request, Response, Router, form_of, parse_cookies, redirect
from dmp_xds.transport.web.protect import CSP, csrf_ok, same_origin, security_headers


def _ok(request: Request) -> Response:
    return Response(body=b"ok")


def _router() -> Router:
    router = Router()
    router.add("GET", "/", _ok)
    router.add("GET", "/AccesDirect/Documents/{ins}", _ok)
    router.add("POST", "/patient/documents/{unique_id}/masquer", _ok)
    return router


def test_named_parts_match_one_segment() -> None:
    handler, params = _router().match("GET", "/AccesDirect/Documents/2840599123456")
    assert handler is _ok and params == {"ins": "2840599123456"}
    with pytest.raises(HttpError) as refused:
        _router().match("GET", "/AccesDirect/Documents/284/autre")
    assert refused.value.status == 404


def test_a_known_path_with_another_method_is_405_with_allow() -> None:
    with pytest.raises(HttpError) as refused:
        _router().match("GET", "/patient/documents/1.2.3/masquer")
    assert refused.value.status == 405 and refused.value.allow == "POST"


def test_head_is_served_by_get_and_paths_are_exact() -> None:
    assert _router().match("HEAD", "/")[0] is _ok
    with pytest.raises(HttpError):
        _router().match("GET", "//")
    assert _router().owns("/") and not _router().owns("/x")


def test_patterns_are_literal_outside_their_parts() -> None:
    router = Router()
    router.add("GET", "/a.b/{x}", _ok)
    with pytest.raises(HttpError):
        router.match("GET", "/aXb/1")
    with pytest.raises(ValueError):
        router.add("GET", "relative", _ok)


def test_redirect_after_post_is_303() -> None:
    response = redirect("/patient/")
    assert response.status == 303 and ("location", "/patient/") in response.headers


def test_session_cookie_attributes() -> None:
    response = Response()
    response.set_cookie("__Host-dmpxds_session", "tok", secure=True)
    cookie = dict(response.headers)["set-cookie"]
    assert cookie == "__Host-dmpxds_session=tok; Path=/; HttpOnly; SameSite=Strict; Secure"
    plain = Response()
    plain.delete_cookie("dmpxds_session", secure=False)
    assert dict(plain.headers)["set-cookie"].endswith("SameSite=Strict; Max-Age=0")


def test_cookies_and_forms_are_read_defensively() -> None:
    assert parse_cookies("a=1; __Host-dmpxds_session=abc") == {"a": "1", "__Host-dmpxds_session": "abc"}
    assert parse_cookies('bad="') == {}
    assert form_of(b"login=ab%20cd&password=x%26y&empty=") == {"login": "ab cd", "password": "x&y", "empty": ""}
    with pytest.raises(HttpError) as refused:
        form_of(b"login=\xff")
    assert refused.value.status == 400


def test_security_headers() -> None:
    headers = dict(security_headers(tls=True, signed_in=True))
    assert headers["content-security-policy"] == CSP
    for part in (
        "default-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
        "img-src 'self' data:",
    ):
        assert part in CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert "strict-transport-security" in headers
    plain = dict(security_headers(tls=False, signed_in=False))
    assert "strict-transport-security" not in plain and "cache-control" not in plain


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"host": "dmp.example:8443", "origin": "https://dmp.example:8443"}, True),
        ({"host": "dmp.example:8443", "referer": "https://dmp.example:8443/patient/connexion"}, True),
        ({"host": "dmp.example:8443", "origin": "https://evil.example"}, False),
        ({"host": "dmp.example:8443", "origin": "http://dmp.example:8443"}, False),  # another scheme
        ({"host": "dmp.example:8443", "origin": "null"}, False),
        ({"host": "dmp.example:8443"}, False),  # neither Origin nor Referer
    ],
)
def test_same_origin(headers: dict[str, str], expected: bool) -> None:
    assert same_origin(headers, "https") is expected


def test_csrf_token_must_be_the_sessions() -> None:
    token = signin.new_token()
    assert csrf_ok(token, token)
    assert not csrf_ok(token, signin.new_token())
    assert not csrf_ok(token, "")
    assert not csrf_ok("", "")


def test_session_tokens_are_random_and_kept_hashed() -> None:
    first, second = signin.new_token(), signin.new_token()
    assert first != second and len(first) >= 43  # 32 random bytes
    assert signin.token_hash(first) != first and len(signin.token_hash(first)) == 64
    assert signin.token_hash(first) == signin.token_hash(first)


def test_channels_are_masked_on_the_page() -> None:
    assert signin.mask(Channel("EMAIL", "patient@example.org")) == "p…@example.org"
    assert signin.mask(Channel("SMS", "0612345678")) == "…78"
