"""The patient's web-account credentials: a login and a one-time password made here, kept only as
a memory-hard hash (scrypt), and checked against it in constant time.

The DMP gives both in clear in its TD1.5a/TD1.5d answers (a login of letters and digits, an
8-character password with a symbol, e.g. `mtef3603` / `cbC!bqf3`): the professional hands them
to the patient, who then chooses their own password on the web front.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string

# scrypt cost: 2^15 x 8 x 128 bytes = 32 MiB per hash, a few tens of milliseconds.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
SALT_BYTES = 16
KEY_BYTES = 32
SCHEME = "scrypt"

PASSWORD_LENGTH = 8
PASSWORD_SYMBOLS = "!#$%&*+-=?@"
LOGIN_LETTERS = 4
LOGIN_DIGITS = 4


def new_login() -> str:
    """Four lowercase letters then four digits, as the DMP's logins."""
    letters = "".join(secrets.choice(string.ascii_lowercase) for _ in range(LOGIN_LETTERS))
    return letters + "".join(secrets.choice(string.digits) for _ in range(LOGIN_DIGITS))


def new_password() -> str:
    """Eight characters with at least one lowercase, uppercase, digit and symbol."""
    alphabet = string.ascii_letters + string.digits + PASSWORD_SYMBOLS
    required = [
        secrets.choice(string.ascii_lowercase),
        secrets.choice(string.ascii_uppercase),
        secrets.choice(string.digits),
        secrets.choice(PASSWORD_SYMBOLS),
    ]
    chars = required + [secrets.choice(alphabet) for _ in range(PASSWORD_LENGTH - len(required))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$key` (base64): everything needed to check it, nothing to reverse it."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM, dklen=KEY_BYTES
    )
    return f"{SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` (a `hash_password` result) was made from."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(key)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=SCRYPT_MAXMEM,
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)
