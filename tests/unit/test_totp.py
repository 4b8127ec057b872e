"""TOTP and HOTP against the RFCs' own test vectors."""

from __future__ import annotations

import pytest

from dmp_xds.security import totp

SEED_SHA1 = b"12345678901234567890"
SEED_SHA256 = b"12345678901234567890123456789012"
SEED_SHA512 = b"1234567890" * 6 + b"1234"

RFC4226 = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]


@pytest.mark.parametrize("counter", range(10))
def test_hotp_rfc4226_appendix_d(counter: int) -> None:
    assert totp.hotp(SEED_SHA1, counter) == RFC4226[counter]


# RFC 6238 appendix B: (time, 8-digit TOTP for SHA1, SHA256, SHA512).
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("when", "sha1", "sha256", "sha512"), RFC6238)
def test_totp_rfc6238_appendix_b(when: int, sha1: str, sha256: str, sha512: str) -> None:
    assert totp.totp(SEED_SHA1, when, digits=8, algorithm="SHA1") == sha1
    assert totp.totp(SEED_SHA256, when, digits=8, algorithm="SHA256") == sha256
    assert totp.totp(SEED_SHA512, when, digits=8, algorithm="SHA512") == sha512


def test_a_code_is_good_within_one_step_and_once() -> None:
    key = totp.secret_key(totp.new_secret())
    now = 1_700_000_000.0
    code = totp.totp(key, now)
    step = totp.matching_step(key, code, now + 30, last_step=0)
    assert step == totp.time_step(now)
    assert totp.matching_step(key, code, now, last_step=step) is None  # replayed
    assert totp.matching_step(key, code, now + 120, last_step=0) is None  # too late
    assert totp.matching_step(key, "12a456", now, last_step=0) is None


def test_secret_round_trip_and_uri() -> None:
    secret = totp.new_secret()
    assert len(totp.secret_key(secret)) == totp.SECRET_BYTES
    uri = totp.otpauth_uri(secret, "abcd1234", "dmp-xds")
    assert uri.startswith("otpauth://totp/dmp-xds%3Aabcd1234?secret=" + secret)


def test_sent_codes_are_six_digits_and_kept_hashed() -> None:
    code = totp.new_code()
    assert len(code) == 6 and code.isdigit()
    assert totp.code_hash(code) != code and len(totp.code_hash(code)) == 64
