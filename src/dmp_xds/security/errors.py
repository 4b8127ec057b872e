"""The security layer's refusals, in its own terms: it knows no SOAP.

The codes are the WS-Security 1.1 fault codes (local names in the wsse namespace) that tell a
caller what to fix; the transport makes a SOAP fault of an AuthenticationError (HTTP 403).
"""

from __future__ import annotations

FAILED_AUTHENTICATION = "FailedAuthentication"  # the client certificate is refused
INVALID_SECURITY_TOKEN = "InvalidSecurityToken"  # the VIHF is refused
FAILED_CHECK = "FailedCheck"  # card and VIHF disagree, or the policy refuses the record
TOKEN_UNAVAILABLE = "SecurityTokenUnavailable"  # no client certificate, or no VIHF


class AuthenticationError(Exception):
    """The caller is refused: `code` (one of the names above) and a `reason` they can act on."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
