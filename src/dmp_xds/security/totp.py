"""One-time codes: HOTP (RFC 4226) and TOTP (RFC 6238) for authenticator apps, and the 6-digit
codes sent by e-mail or SMS. Pure: the caller passes the time and keeps the last step used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

DIGITS = 6
STEP_SECONDS = 30
# A code of the step before or after is taken too: the phone's clock and ours drift a little.
WINDOW_STEPS = 1
SECRET_BYTES = 20  # 160 bits, RFC 4226's recommendation for SHA-1
ALGORITHMS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


def hotp(key: bytes, counter: int, digits: int = DIGITS, algorithm: str = "SHA1") -> str:
    """RFC 4226 section 5.3: HMAC of the counter, dynamically truncated to `digits` digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), ALGORITHMS[algorithm]).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def time_step(unix_time: float, step: int = STEP_SECONDS) -> int:
    return int(unix_time // step)


def totp(key: bytes, unix_time: float, digits: int = DIGITS, algorithm: str = "SHA1", step: int = STEP_SECONDS) -> str:
    """RFC 6238: HOTP over the number of `step`-second periods since the Unix epoch."""
    return hotp(key, time_step(unix_time, step), digits, algorithm)


def matching_step(key: bytes, code: str, unix_time: float, last_step: int, window: int = WINDOW_STEPS) -> int | None:
    """The time step whose code `code` is (within `window` steps of now), or None. A step at or
    before `last_step` (the last code accepted) is refused: a code is good once."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = time_step(unix_time)
    for candidate in range(now - window, now + window + 1):
        if candidate > last_step and hmac.compare_digest(hotp(key, candidate), code):
            return candidate
    return None


def new_secret() -> str:
    """A random TOTP secret, base32 without padding (as authenticator apps read it)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def secret_key(secret: str) -> bytes:
    """The key bytes of a base32 secret (padding optional, spaces and case ignored)."""
    text = secret.replace(" ", "").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def otpauth_uri(secret: str, account: str, issuer: str) -> str:
    """The `otpauth://totp/...` URI an authenticator app enrolls from (Key Uri Format)."""
    label = quote(f"{issuer}:{account}")
    query = urlencode(
        {"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS, "period": STEP_SECONDS}
    )
    return f"otpauth://totp/{label}?{query}"


def new_code() -> str:
    """A random 6-digit code to send by e-mail or SMS."""
    return str(secrets.randbelow(10**DIGITS)).zfill(DIGITS)


def code_hash(code: str) -> str:
    """What is kept of a code sent (or of a session token): its SHA-256, hex."""
    return hashlib.sha256(code.strip().encode("utf-8")).hexdigest()
