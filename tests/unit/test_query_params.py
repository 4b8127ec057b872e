"""ITI-18 parameter parsing and query building, without a database (registry/queries.py)."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from dmp_xds.storage.queries import (
    QUERIES,
    CodeValue,
    ReturnType,
    StoredQuery,
    associations_between,
    build_plan,
    like_patterns,
    parse_stored_query,
)
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.errors import ErrorCode

PATIENT = "1234567890123^^^&1.2.250.1.213.1.4.8&ISO"
APPROVED = f"('{v.STATUS_APPROVED}')"


def find_documents(**extra: list[str] | list[list[str]]) -> list[tuple[str, list[str]]]:
    slots: list[tuple[str, list[str]]] = [(v.P_DE_PATIENT_ID, [f"'{PATIENT}'"]), (v.P_DE_STATUS, [APPROVED])]
    for name, values in extra.items():
        param = getattr(v, name)
        for slot in values if values and isinstance(values[0], list) else [values]:
            slots.append((param, slot))  # type: ignore[arg-type]
    return slots


def parsed(slots: list[tuple[str, list[str]]], query_id: str = v.SQ_FIND_DOCUMENTS, **kw: str) -> StoredQuery:
    result = parse_stored_query(query_id, slots, **kw)
    assert isinstance(result, StoredQuery), result
    return result


def errors(slots: list[tuple[str, list[str]]], query_id: str = v.SQ_FIND_DOCUMENTS) -> list[tuple[str, str]]:
    result = parse_stored_query(query_id, slots)
    assert isinstance(result, list), "expected errors"
    return [(e.code.value, e.context) for e in result]


def test_every_stored_query_of_the_reference_is_known() -> None:
    assert {q.query_id for q in QUERIES} == {
        v.SQ_FIND_DOCUMENTS,
        v.SQ_FIND_SUBMISSION_SETS,
        v.SQ_FIND_FOLDERS,
        v.SQ_GET_ALL,
        v.SQ_GET_DOCUMENTS,
        v.SQ_GET_FOLDERS,
        v.SQ_GET_ASSOCIATIONS,
        v.SQ_GET_DOCUMENTS_AND_ASSOCIATIONS,
        v.SQ_GET_SUBMISSION_SETS,
        v.SQ_GET_SUBMISSION_SET_AND_CONTENTS,
        v.SQ_GET_FOLDER_AND_CONTENTS,
        v.SQ_GET_FOLDERS_FOR_DOCUMENT,
        v.SQ_GET_RELATED_DOCUMENTS,
        v.SQ_FIND_DOCUMENTS_BY_REFERENCE_ID,
    }


def test_values_quoted_lists_and_lists_spread_over_values() -> None:
    q = parsed(
        find_documents(P_DE_STATUS=[f"('{v.STATUS_APPROVED}', '{v.STATUS_DEPRECATED}')"])[:1]
        + [(v.P_DE_STATUS, [f"('{v.STATUS_APPROVED}')", f"'{v.STATUS_DEPRECATED}'"])]
    )
    assert q.text(v.P_DE_PATIENT_ID) == PATIENT
    assert q.texts(v.P_DE_STATUS) == (v.STATUS_APPROVED, v.STATUS_DEPRECATED)
    assert q.return_type is ReturnType.LEAF_CLASS


def test_a_doubled_quote_is_one_quote() -> None:
    q = parsed(find_documents(P_DE_AUTHOR_PERSON=["('%O''Brien%', '%Martin%')"]))
    assert q.texts(v.P_DE_AUTHOR_PERSON) == ("%O'Brien%", "%Martin%")


def test_codes_or_within_a_slot_and_across_slots() -> None:
    q = parsed(
        find_documents(
            P_DE_EVENT_CODE_LIST=[["('A^^1.2', 'B^^1.2')"], ["('C^^1.3')"]],
            P_DE_CLASS_CODE=["('11^^1.2.250.1.213.1.1.4.1')"],
        )
    )
    assert q.codes(v.P_DE_EVENT_CODE_LIST) == ((CodeValue("A", "1.2"), CodeValue("B", "1.2")), (CodeValue("C", "1.3"),))
    assert q.codes(v.P_DE_CLASS_CODE) == ((CodeValue("11", "1.2.250.1.213.1.1.4.1"),),)


def test_code_with_a_display_name_or_three_carets() -> None:
    q = parsed(find_documents(P_DE_TYPE_CODE=["('11488-4^Compte rendu^2.16.840.1.113883.6.1', 'X^^^1.2')"]))
    assert q.codes(v.P_DE_TYPE_CODE) == ((CodeValue("11488-4", "2.16.840.1.113883.6.1"), CodeValue("X", "1.2")),)


@pytest.mark.parametrize(
    "value, padded",
    [
        ("2024", "20240000000000"),
        ("202403", "20240300000000"),
        ("20240312", "20240312000000"),
        ("20240312093015", "20240312093015"),
        ("'2024031209'", "20240312090000"),
    ],
)
def test_times_are_padded_to_full_precision(value: str, padded: str) -> None:
    q = parsed(find_documents(P_DE_CREATION_TIME_FROM=[value]))
    assert q.text(v.P_DE_CREATION_TIME_FROM) == padded


def test_return_type_object_ref() -> None:
    assert parsed(find_documents(), return_type="ObjectRef").return_type is ReturnType.OBJECT_REF


@pytest.mark.parametrize(
    "slots, code, names",
    [
        ([(v.P_DE_STATUS, [APPROVED])], "XDSStoredQueryMissingParam", v.P_DE_PATIENT_ID),
        (find_documents()[:1], "XDSStoredQueryMissingParam", v.P_DE_STATUS),
        (find_documents(P_DE_PATIENT_ID=[f"'{PATIENT}'"]), "XDSStoredQueryParamNumber", v.P_DE_PATIENT_ID),
        (
            [(v.P_DE_PATIENT_ID, [f"('{PATIENT}', 'other^^^&1.2&ISO')"]), (v.P_DE_STATUS, [APPROVED])],
            "XDSStoredQueryParamNumber",
            v.P_DE_PATIENT_ID,
        ),
        (find_documents(P_DE_CLASS_CODE=[["('A^^1')"], ["('B^^1')"]]), "XDSStoredQueryParamNumber", v.P_DE_CLASS_CODE),
        (
            find_documents(P_DE_CREATION_TIME_FROM=["2024", "2025"]),
            "XDSStoredQueryParamNumber",
            v.P_DE_CREATION_TIME_FROM,
        ),
        ([(v.P_DE_PATIENT_ID, [PATIENT]), (v.P_DE_STATUS, [APPROVED])], "XDSRegistryError", v.P_DE_PATIENT_ID),
        (
            [(v.P_DE_PATIENT_ID, [f"'{PATIENT}'"]), (v.P_DE_STATUS, [f"({v.STATUS_APPROVED})"])],
            "XDSRegistryError",
            v.P_DE_STATUS,
        ),
        (find_documents(P_DE_CREATION_TIME_FROM=["20241345"]), "XDSRegistryError", v.P_DE_CREATION_TIME_FROM),
        (find_documents(P_DE_CREATION_TIME_TO=["2024031"]), "XDSRegistryError", v.P_DE_CREATION_TIME_TO),
        (find_documents(P_DE_CREATION_TIME_TO=["yesterday"]), "XDSRegistryError", v.P_DE_CREATION_TIME_TO),
        (find_documents(P_DE_CLASS_CODE=["('DEMO-Lab^^1.3.6', 'a^^')"]), "XDSRegistryError", v.P_DE_CLASS_CODE),
        (find_documents(P_DE_PRACTICE_SETTING_CODE=["('Dialysis')"]), "XDSRegistryError", v.P_DE_PRACTICE_SETTING_CODE),
        (
            [(v.P_DE_PATIENT_ID, [f"'{PATIENT}'"]), (v.P_DE_STATUS, ["('unterminated)"])],
            "XDSRegistryError",
            v.P_DE_STATUS,
        ),
        (find_documents(P_DE_TYPE=["()"]), "XDSRegistryError", v.P_DE_TYPE),
    ],
)
def test_parameter_errors_name_the_parameter(slots: list[tuple[str, list[str]]], code: str, names: str) -> None:
    found = errors(slots)
    assert [c for c, _ in found] == [code], found
    assert names in found[0][1]


def test_every_error_is_reported_at_once() -> None:
    found = errors([(v.P_DE_PATIENT_ID, [PATIENT]), (v.P_DE_CREATION_TIME_FROM, ["x"])])
    assert sorted(c for c, _ in found) == ["XDSRegistryError", "XDSRegistryError", "XDSStoredQueryMissingParam"]


def test_one_of_two_exclusive_parameters() -> None:
    both = errors([(v.P_DE_ENTRY_UUID, ["('urn:uuid:1')"]), (v.P_DE_UNIQUE_ID, ["('1.2.3')"])], v.SQ_GET_DOCUMENTS)
    assert [c for c, _ in both] == ["XDSStoredQueryParamNumber"]
    neither = errors([], v.SQ_GET_DOCUMENTS)
    assert [c for c, _ in neither] == ["XDSStoredQueryMissingParam"]
    single = errors([(v.P_SS_ENTRY_UUID, ["('urn:uuid:1', 'urn:uuid:2')"])], v.SQ_GET_SUBMISSION_SET_AND_CONTENTS)
    assert [c for c, _ in single] == ["XDSStoredQueryParamNumber"]


def test_unknown_query_and_return_type() -> None:
    result = parse_stored_query("urn:uuid:00000000-0000-0000-0000-000000000000", [])
    assert isinstance(result, list) and result[0].code is ErrorCode.UNKNOWN_STORED_QUERY
    result = parse_stored_query(v.SQ_FIND_DOCUMENTS, find_documents(), return_type="Everything")
    assert isinstance(result, list) and result[0].code is ErrorCode.REGISTRY_ERROR


def test_unknown_parameters_are_ignored() -> None:
    q = parsed(find_documents() + [("$SomethingElse", ["'x'"])])
    assert "$SomethingElse" not in q.values


def test_home_community_id_parameter_or_attribute() -> None:
    uid = [(v.P_DE_UNIQUE_ID, ["('1.2.3')"])]
    assert parsed(uid, v.SQ_GET_DOCUMENTS, home_community_id="urn:oid:1.1.1").home_community_id == "urn:oid:1.1.1"
    with_param = uid + [(v.P_HOME_COMMUNITY_ID, ["'urn:oid:2.2'"])]
    assert parsed(with_param, v.SQ_GET_DOCUMENTS).home_community_id == "urn:oid:2.2"


@pytest.mark.parametrize(
    "pattern, like, glob",
    [
        ("%MARTIN%", "%MARTIN%", "*MARTIN*"),
        ("_MARTIN", "_MARTIN", "?MARTIN"),
        ("a*b?c[d", "a*b?c[d", "a[*]b[?]c[[]d"),
        ("back\\slash%", "back\\\\slash%", "back\\slash*"),
    ],
)
def test_author_patterns_for_each_database(pattern: str, like: str, glob: str) -> None:
    assert like_patterns(pattern) == (like, glob)


def test_author_match_is_like_on_postgresql_and_glob_on_sqlite() -> None:
    plan = build_plan(parsed(find_documents(P_DE_AUTHOR_PERSON=["('%MARTIN%')"])))
    assert plan.documents is not None
    assert " GLOB " in str(plan.documents.compile(dialect=sqlite.dialect()))
    pg = str(plan.documents.compile(dialect=postgresql.dialect()))
    assert " LIKE " in pg and "GLOB" not in pg


def test_object_ref_selects_no_json() -> None:
    plan = build_plan(parsed(find_documents(), return_type="ObjectRef"))
    assert plan.documents is not None
    assert [c.name for c in plan.documents.selected_columns] == ["entry_uuid", "patient_id"]


def test_multi_valued_codes_are_correlated_exists() -> None:
    plan = build_plan(parsed(find_documents(P_DE_CONFIDENTIALITY_CODE=[["('N^^1')"], ["('R^^1')"]])))
    sql = str(plan.documents.compile(dialect=postgresql.dialect()))  # type: ignore[union-attr]
    assert sql.count("EXISTS (SELECT") == 2
    assert "document_entry_code.entry_uuid = document_entry.entry_uuid" in sql


def test_associations_between_found_objects() -> None:
    rows = [
        ("a1", "ss", "doc"),  # SS -> document: kept
        ("a2", "folder", "doc"),  # Folder -> document: kept
        ("a3", "ss", "a2"),  # SS -> (Folder -> document): kept through a2
        ("a4", "ss", "other-doc"),  # target not found
        ("a5", "ss", "a4"),  # through a dropped association
    ]
    assert associations_between(rows, {"ss", "folder", "doc"}) == ["a1", "a2", "a3"]


def test_a_query_about_another_patient_than_the_vihfs_is_refused() -> None:
    from dmp_xds.services.iti18 import vihf_patient_errors

    other = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
    assert vihf_patient_errors(parsed(find_documents()), PATIENT) == []
    [error] = vihf_patient_errors(parsed(find_documents()), other)
    assert error.code == ErrorCode.PATIENT_ID_DOES_NOT_MATCH and error.location == PATIENT
    assert other in error.context and PATIENT in error.context
    # Queries by id name no patient: nothing to compare (their answer is restricted instead).
    by_id = parsed([(v.P_DE_ENTRY_UUID, ["('urn:uuid:6c6fc6a2-4e6e-4f7b-9e8e-1c4c2b4e7a01')"])], v.SQ_GET_DOCUMENTS)
    assert vihf_patient_errors(by_id, other) == []
