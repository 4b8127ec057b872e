"""What protects every web response and every unsafe request: the security headers, the
same-origin check of a form post and its CSRF token. Pure."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
HSTS = "max-age=31536000"
CSRF_FIELD = "csrf"


def security_headers(tls: bool, signed_in: bool) -> list[tuple[str, str]]:
    headers = [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        # same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` with
        # every form post (the Fetch standard), and the origin check refuses our own forms.
        # Another site still gets no Referer: an INS in a URL never leaves.
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ]
    if signed_in:
        # A signed-in page holds someone's health data: no cache keeps it, not even the browser's.
        headers.append(("cache-control", "no-store"))
    if tls:
        headers.append(("strict-transport-security", HSTS))
    return headers


def same_origin(headers: dict[str, str], scheme: str) -> bool:
    """Whether an unsafe request comes from our own pages: its Origin (or, without one, its
    Referer) names this host and scheme. Without either it is refused: every browser sends one
    with a form post, and a script that does not has no business posting forms."""
    host = headers.get("host", "")
    source = headers.get("origin") or headers.get("referer") or ""
    if not source or source == "null" or not host:
        return False
    parts = urlsplit(source)
    return parts.scheme == scheme and parts.netloc == host


def csrf_ok(expected: str, given: str) -> bool:
    """The form's token is the session's (constant time); an empty one never is."""
    return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())
