"""ITI-18 $homeCommunityId: this registry's community only, and returned objects carry it."""

from __future__ import annotations

from dmp_xds.services.iti18 import check_community, with_home
from dmp_xds.storage.queries import parse_stored_query
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.errors import ErrorCode
from factories import make_document_entry

OURS = "urn:oid:1.2.250.1.999.3"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
BASE = [
    ("$XDSDocumentEntryPatientId", ["'1234567890123^^^&1.2.250.1.213.1.4.8&ISO'"]),
    ("$XDSDocumentEntryStatus", ["('" + v.STATUS_APPROVED + "')"]),
]


def _query(home_param: str | None = None, home_attribute: str | None = None):
    slots = BASE + ([("$homeCommunityId", [f"'{home_param}'"])] if home_param else [])
    query = parse_stored_query(FIND_DOCUMENTS, slots, home_community_id=home_attribute)
    assert not isinstance(query, list), query
    return query


def test_another_community_is_unknown():
    errors = check_community(_query("urn:oid:9.9.9"), OURS)
    assert [e.code for e in errors] == [ErrorCode.UNKNOWN_COMMUNITY]
    assert "urn:oid:9.9.9" in errors[0].context
    assert [e.code for e in check_community(_query(home_attribute="urn:oid:9.9.9"), OURS)] == [
        ErrorCode.UNKNOWN_COMMUNITY
    ]


def test_own_community_or_none_given_or_none_configured():
    assert check_community(_query(OURS), OURS) == []
    assert check_community(_query(), OURS) == []
    assert check_community(_query("urn:oid:9.9.9"), "") == []


def test_returned_objects_carry_the_configured_community():
    objects = with_home([make_document_entry()], OURS)
    assert objects[0].home_community_id == OURS
    assert with_home([make_document_entry()], "")[0].home_community_id is None
