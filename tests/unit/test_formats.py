from __future__ import annotations

import pytest

from dmp_xds.xds.validation import formats


@pytest.mark.parametrize(
    "value,ok",
    [
        ("1234567890123^^^&1.2.250.1.213.1.4.8&ISO", True),
        ("1234567890123^^^&1.2.250.1.213.1.4.8", False),
        ("1234567890123^^^1.2.250.1.213.1.4.8&ISO", False),
        ("^^^&1.2.250&ISO", False),
        ("123^x^^&1.2.250&ISO", False),
        ("123^^^&not-an-oid&ISO", False),
        ("123", False),
    ],
)
def test_cx(value, ok):
    assert (formats.cx_problem(value) is None) is ok


@pytest.mark.parametrize(
    "value,ok",
    [
        ("2024", True),
        ("202403", True),
        ("20240312", True),
        ("2024031214", True),
        ("202403121430", True),
        ("20240312143059", True),
        ("20241312", False),
        ("2024031", False),
        ("20240312143060", False),
        ("2024-03-12", False),
        ("20240312143059+0100", False),
    ],
)
def test_dtm(value, ok):
    assert formats.is_dtm(value) is ok


@pytest.mark.parametrize(
    "value,ok",
    [
        ("1.2.250.1.999.1.1.42", True),
        ("1.2.250.1.999^ABC123", True),
        ("1.2.03", False),
        ("1.2.3^", False),
        ("x.y", False),
        ("1." + "2" * 130, False),
    ],
)
def test_unique_id(value, ok):
    assert (formats.unique_id_problem(value) is None) is ok


def test_sha1_and_uuid():
    assert formats.is_sha1_hex("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    assert not formats.is_sha1_hex("da39a3")
    assert formats.is_uuid_urn("urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1")
    assert not formats.is_uuid_urn("7edca82f-054d-47f2-a032-9b2a5b5186c1")
