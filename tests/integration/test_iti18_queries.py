"""Every stored query and its parameters against a real registry, on SQLite and PostgreSQL.

A small registry is stored once per backend (RegistryStore, as ITI-42 stores), then each test
runs parsed stored queries through the same code the server runs (transactions/iti18.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, select

from dmp_xds.services.iti18 import check_single_patient, render_objects
from dmp_xds.storage.database import create_engine_for, upgrade
from dmp_xds.storage.queries import QueryRows, StoredQuery, build_plan, parse_stored_query, run_plan
from dmp_xds.storage.store import RegistryStore
from dmp_xds.storage.tables import AssociationRow
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Submission
from factories import (
    OTHER_PATIENT_ID,
    PATIENT_ID,
    make_association,
    make_author,
    make_code,
    make_document_entry,
    make_folder,
    make_submission,
    make_submission_set,
)
from pgserver import PostgresServer

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
APPROVED, DEPRECATED = v.STATUS_APPROVED, v.STATUS_DEPRECATED
CLASS_SCHEME = "1.2.250.1.213.1.1.4.1"
CONF_SCHEME = "2.16.840.1.113883.5.25"
EVENT_SCHEME = "1.2.250.1.213.1.1.5.3"


@dataclass
class Registry:
    engine: Engine
    ids: dict[str, str]  # symbolic name -> entryUUID
    unique_ids: dict[str, str]


def _registered(submission: Submission) -> Submission:
    """The values the registry sets itself (transactions/register.py does the same)."""
    if submission.submission_set is not None:
        submission.submission_set.status = APPROVED
    for obj in [*submission.documents, *submission.folders]:
        obj.status = APPROVED
        obj.logical_id = obj.entry_uuid
        obj.version = "1"
    for folder in submission.folders:
        folder.last_update_time = "20240315100000"
    for association in submission.associations:
        association.status = APPROVED
    return submission


def _populate(store: RegistryStore) -> Registry:
    """Patient A: SS1 {D1 (in folder F1), D2}, SS2 {D3 replacing D1, so joining F1, D4 on-demand};
    patient B: SS3 {D5}."""
    martin = make_author()
    dupont = make_author(person="802^DUPONT^Paul^^^Dr^^^&1.2.250.1.71.4.2.1&ISO^D^^^RPPS")
    d1 = make_document_entry(
        creation_time="20240312093000", authors=[martin], service_start_time="20240301", service_stop_time="20240302"
    )
    d2 = make_document_entry(
        class_code=make_code("12", CLASS_SCHEME, "Imagerie"),
        creation_time="2023",
        confidentiality_codes=[make_code("N", CONF_SCHEME), make_code("R", CONF_SCHEME)],
        event_codes=[make_code("GLICE", EVENT_SCHEME), make_code("FOO", EVENT_SCHEME)],
        authors=[dupont],
        format_code=make_code("urn:ihe:pcc:xphr:2007", "1.3.6.1.4.1.19376.1.2.3"),
        practice_setting_code=make_code("OTHER", "1.2.250.1.213.1.1.4.9"),
        reference_ids=["ORD-9^^^&1.2&ISO"],
        service_start_time=None,
        service_stop_time=None,
    )
    ss1 = make_submission(
        documents=[d1, d2], submission_set=make_submission_set(submission_time="20240312094500", authors=[martin])
    )
    folder = make_folder(codes=[make_code("04", "1.2.250.1.213.1.1.4.12"), make_code("05", "1.2.250.1.213.1.1.4.12")])
    ss1.folders.append(folder)
    link = make_association(folder.entry_uuid, d1.entry_uuid, slots={})
    ss1.associations += [
        make_association(ss1.submission_set.entry_uuid, folder.entry_uuid, slots={}),
        link,
        make_association(ss1.submission_set.entry_uuid, link.entry_uuid, slots={}),
    ]
    d3 = make_document_entry(creation_time="20240401", authors=[martin, dupont])
    d4 = make_document_entry(object_type=v.DOCUMENT_ENTRY_ON_DEMAND, creation_time="20240402")
    ss2 = make_submission(
        documents=[d3, d4],
        submission_set=make_submission_set(
            submission_time="20240401120000",
            source_id="1.2.250.1.999.7",
            authors=[dupont],
            content_type_code=make_code("99", "1.2.250.1.213.1.1.4.12"),
        ),
    )
    replacement = make_association(d3.entry_uuid, d1.entry_uuid, association_type=v.RPLC, slots={})
    ss2.associations.append(replacement)
    ss2.associations.append(make_association(ss2.submission_set.entry_uuid, replacement.entry_uuid, slots={}))
    d5 = make_document_entry(patient_id=OTHER_PATIENT_ID)
    ss3 = make_submission(documents=[d5], submission_set=make_submission_set(patient_id=OTHER_PATIENT_ID))
    for submission in (ss1, ss2, ss3):
        store.store_submission(_registered(submission))
    ids = {
        "D1": d1.entry_uuid,
        "D2": d2.entry_uuid,
        "D3": d3.entry_uuid,
        "D4": d4.entry_uuid,
        "D5": d5.entry_uuid,
        "F1": folder.entry_uuid,
        "SS1": ss1.submission_set.entry_uuid,
        "SS2": ss2.submission_set.entry_uuid,
        "SS3": ss3.submission_set.entry_uuid,
        "RPLC": replacement.entry_uuid,
        "F1-D1": link.entry_uuid,
    }
    # The registry puts the replacement D3 in the folder of D1 (ITI TF-3 §4.2.2.2.3).
    with store.engine.connect() as connection:
        ids["F1-D3"] = connection.execute(
            select(AssociationRow.entry_uuid).where(
                AssociationRow.source == folder.entry_uuid, AssociationRow.target == d3.entry_uuid
            )
        ).scalar_one()
    for name, submission in (("SS1", ss1), ("SS2", ss2), ("SS3", ss3)):
        for association in submission.associations:
            if association.source == submission.submission_set.entry_uuid:  # type: ignore[union-attr]
                ids[f"{name}->{association.target}"] = association.entry_uuid
    unique_ids = {
        "D1": d1.unique_id,
        "D2": d2.unique_id,
        "D5": d5.unique_id,
        "F1": folder.unique_id,
        "SS1": ss1.submission_set.unique_id,
    }
    return Registry(store.engine, ids, unique_ids)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('iti18') / 'registry.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.url_for(server.create_database("iti18"))
    upgrade(url)
    engine = create_engine_for(url)
    yield _populate(RegistryStore(engine))
    engine.dispose()


def q(value: str) -> str:
    return f"'{value}'"


def ql(*values: str) -> str:
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


def run(
    registry: Registry,
    query_id: str,
    slots: dict[str, str | list[str]],
    return_type: str = "LeafClass",
    limit: int = 1000,
) -> QueryRows | list[str]:
    pairs = []
    for name, value in slots.items():
        for slot in value if isinstance(value, list) else [value]:
            pairs.append((name, [slot]))
    query = parse_stored_query(query_id, pairs, return_type)
    if isinstance(query, list):
        return [e.code.value for e in query]
    rows = run_plan(registry.engine, build_plan(query), limit)
    if isinstance(rows, list):
        return [e.code.value for e in rows]
    return rows


def names(registry: Registry, rows: QueryRows | list[str]) -> set[str]:
    assert isinstance(rows, QueryRows), rows
    by_id = {uuid: name for name, uuid in registry.ids.items()}
    return {by_id.get(row[0], row[0]) for row in rows.entries() + rows.associations}


def find(registry: Registry, **slots: str | list[str]) -> set[str]:
    base: dict[str, str | list[str]] = {v.P_DE_PATIENT_ID: q(PATIENT_ID), v.P_DE_STATUS: ql(APPROVED)}
    base.update({getattr(v, k): value for k, value in slots.items()})
    return names(registry, run(registry, v.SQ_FIND_DOCUMENTS, base))


# --- FindDocuments ---------------------------------------------------------------------------


def test_find_documents_status_and_type(registry: Registry) -> None:
    assert find(registry) == {"D2", "D3"}  # D1 replaced (Deprecated), D4 on-demand, D5 other patient
    assert find(registry, P_DE_STATUS=ql(APPROVED, DEPRECATED)) == {"D1", "D2", "D3"}
    assert find(registry, P_DE_STATUS=ql(DEPRECATED)) == {"D1"}
    assert find(registry, P_DE_TYPE=ql(v.DOCUMENT_ENTRY_ON_DEMAND)) == {"D4"}
    assert find(registry, P_DE_TYPE=ql(v.DOCUMENT_ENTRY_ON_DEMAND, v.DOCUMENT_ENTRY_STABLE)) == {"D2", "D3", "D4"}


def test_find_documents_single_valued_codes(registry: Registry) -> None:
    assert find(registry, P_DE_CLASS_CODE=ql(f"12^^{CLASS_SCHEME}")) == {"D2"}
    assert find(registry, P_DE_CLASS_CODE=ql(f"11^^{CLASS_SCHEME}", f"12^^{CLASS_SCHEME}")) == {"D2", "D3"}
    assert find(registry, P_DE_CLASS_CODE=ql("12^^another.scheme")) == set()  # code and scheme both match
    assert find(registry, P_DE_PRACTICE_SETTING_CODE=ql("OTHER^^1.2.250.1.213.1.1.4.9")) == {"D2"}
    assert find(registry, P_DE_TYPE_CODE=ql("11488-4^^2.16.840.1.113883.6.1")) == {"D2", "D3"}
    assert find(registry, P_DE_FORMAT_CODE=ql("urn:ihe:pcc:xphr:2007^^1.3.6.1.4.1.19376.1.2.3")) == {"D2"}
    assert find(registry, P_DE_HEALTHCARE_FACILITY_TYPE_CODE=ql("SA01^^1.2.250.1.71.4.2.4")) == {"D2", "D3"}
    both = find(
        registry,
        P_DE_CLASS_CODE=ql(f"11^^{CLASS_SCHEME}"),
        P_DE_PRACTICE_SETTING_CODE=ql("OTHER^^1.2.250.1.213.1.1.4.9"),
    )
    assert both == set()  # AND across parameters


def test_find_documents_multi_valued_codes_or_within_and_across_slots(registry: Registry) -> None:
    glice, foo = f"GLICE^^{EVENT_SCHEME}", f"FOO^^{EVENT_SCHEME}"
    assert find(registry, P_DE_EVENT_CODE_LIST=ql(foo)) == {"D2"}
    assert find(registry, P_DE_EVENT_CODE_LIST=ql(glice, foo)) == {"D2", "D3"}
    assert find(registry, P_DE_EVENT_CODE_LIST=[ql(glice), ql(foo)]) == {"D2"}
    assert find(registry, P_DE_EVENT_CODE_LIST=[ql(glice), ql("NONE^^1")]) == set()
    normal, restricted = f"N^^{CONF_SCHEME}", f"R^^{CONF_SCHEME}"
    assert find(registry, P_DE_CONFIDENTIALITY_CODE=ql(normal)) == {"D2", "D3"}
    assert find(registry, P_DE_CONFIDENTIALITY_CODE=[ql(normal), ql(restricted)]) == {"D2"}
    assert find(registry, P_DE_CONFIDENTIALITY_CODE=ql("N^^wrong.scheme")) == set()


def test_find_documents_time_ranges_from_inclusive_to_exclusive(registry: Registry) -> None:
    assert find(registry, P_DE_CREATION_TIME_FROM="20240401") == {"D3"}  # D3 is exactly 20240401
    assert find(registry, P_DE_CREATION_TIME_TO="20240401") == {"D2"}  # exclusive
    assert find(registry, P_DE_CREATION_TIME_FROM="2023", P_DE_CREATION_TIME_TO="2024") == {"D2"}
    assert find(registry, P_DE_CREATION_TIME_FROM="202304") == {"D3"}  # '2023' pads to 20230000000000
    statuses = ql(APPROVED, DEPRECATED)
    assert find(registry, P_DE_STATUS=statuses, P_DE_SERVICE_START_TIME_FROM="20240301") == {"D1", "D3"}
    assert find(
        registry, P_DE_STATUS=statuses, P_DE_SERVICE_START_TIME_FROM="20240301", P_DE_SERVICE_START_TIME_TO="20240302"
    ) == {"D1"}
    assert find(registry, P_DE_STATUS=statuses, P_DE_SERVICE_START_TIME_TO="20240301") == set()
    assert find(
        registry, P_DE_STATUS=statuses, P_DE_SERVICE_STOP_TIME_FROM="202403", P_DE_SERVICE_STOP_TIME_TO="20240303"
    ) == {"D1"}


def test_find_documents_author_patterns_are_case_sensitive_likes(registry: Registry) -> None:
    assert find(registry, P_DE_AUTHOR_PERSON=ql("%DUPONT%")) == {"D2", "D3"}
    assert find(registry, P_DE_AUTHOR_PERSON=ql("%dupont%")) == set()
    assert find(registry, P_DE_AUTHOR_PERSON=ql("80_^DUPONT%")) == {"D2", "D3"}
    assert find(registry, P_DE_AUTHOR_PERSON=ql("%MARTIN%", "%NOBODY%")) == {"D3"}
    assert find(registry, P_DE_AUTHOR_PERSON=ql("DUPONT")) == set()  # no wildcard: the whole value


def test_find_documents_by_reference_id(registry: Registry) -> None:
    base = {v.P_DE_PATIENT_ID: q(PATIENT_ID), v.P_DE_STATUS: ql(APPROVED)}
    rows = run(
        registry, v.SQ_FIND_DOCUMENTS_BY_REFERENCE_ID, {**base, v.P_DE_REFERENCE_ID_LIST: ql("ORD-9^^^&1.2&ISO")}
    )
    assert names(registry, rows) == {"D2"}
    assert run(registry, v.SQ_FIND_DOCUMENTS_BY_REFERENCE_ID, base) == ["XDSStoredQueryMissingParam"]


# --- other queries -----------------------------------------------------------------------------


def test_find_submission_sets(registry: Registry) -> None:
    base: dict[str, str | list[str]] = {v.P_SS_PATIENT_ID: q(PATIENT_ID), v.P_SS_STATUS: ql(APPROVED)}

    def found(**extra: str) -> set[str]:
        return names(registry, run(registry, v.SQ_FIND_SUBMISSION_SETS, {**base, **extra}))

    assert found() == {"SS1", "SS2"}
    assert found(**{v.P_SS_SOURCE_ID: ql("1.2.250.1.999.7")}) == {"SS2"}
    assert found(**{v.P_SS_SUBMISSION_TIME_FROM: "20240312094500", v.P_SS_SUBMISSION_TIME_TO: "202404"}) == {"SS1"}
    assert found(**{v.P_SS_AUTHOR_PERSON: ql("%MARTIN%")}) == {"SS1"}
    assert found(**{v.P_SS_CONTENT_TYPE: ql("99^^1.2.250.1.213.1.1.4.12")}) == {"SS2"}


def test_find_folders_codes_and_times(registry: Registry) -> None:
    base: dict[str, str | list[str]] = {v.P_FOLDER_PATIENT_ID: q(PATIENT_ID), v.P_FOLDER_STATUS: ql(APPROVED)}

    def found(**extra: str | list[str]) -> set[str]:
        return names(registry, run(registry, v.SQ_FIND_FOLDERS, {**base, **extra}))

    scheme = "1.2.250.1.213.1.1.4.12"
    assert found() == {"F1"}
    assert found(**{v.P_FOLDER_CODE_LIST: [ql(f"04^^{scheme}"), ql(f"05^^{scheme}")]}) == {"F1"}
    assert found(**{v.P_FOLDER_CODE_LIST: [ql(f"04^^{scheme}"), ql(f"06^^{scheme}")]}) == set()
    assert found(**{v.P_FOLDER_CODE_LIST: ql(f"06^^{scheme}", f"05^^{scheme}")}) == {"F1"}
    assert found(**{v.P_FOLDER_LAST_UPDATE_TIME_FROM: "20240315100000"}) == {"F1"}
    assert found(**{v.P_FOLDER_LAST_UPDATE_TIME_TO: "20240315100000"}) == set()


def test_get_all(registry: Registry) -> None:
    rows = run(
        registry,
        v.SQ_GET_ALL,
        {
            v.P_PATIENT_ID: q(PATIENT_ID),
            v.P_DE_STATUS: ql(APPROVED, DEPRECATED),
            v.P_SS_STATUS: ql(APPROVED),
            v.P_FOLDER_STATUS: ql(APPROVED),
        },
    )
    found = names(registry, rows)
    assert {"SS1", "SS2", "F1", "D1", "D2", "D3", "RPLC", "F1-D1", "F1-D3"} <= found
    assert not {"D4", "D5", "SS3"} & found
    # SS1: 5; SS2: 3 (not the one to D4); F1-D3 made by the registry.
    assert isinstance(rows, QueryRows) and len(rows.associations) == 9
    confidential = run(
        registry,
        v.SQ_GET_ALL,
        {
            v.P_PATIENT_ID: q(PATIENT_ID),
            v.P_DE_STATUS: ql(APPROVED),
            v.P_SS_STATUS: ql(APPROVED),
            v.P_FOLDER_STATUS: ql(APPROVED),
            v.P_DE_CONFIDENTIALITY_CODE: ql(f"R^^{CONF_SCHEME}"),
        },
    )
    assert {"D2"} == names(registry, confidential) & {"D1", "D2", "D3"}


def test_get_documents_by_uuid_or_unique_id_and_object_refs(registry: Registry) -> None:
    ids, uids = registry.ids, registry.unique_ids
    assert names(registry, run(registry, v.SQ_GET_DOCUMENTS, {v.P_DE_ENTRY_UUID: ql(ids["D1"], ids["D4"])})) == {
        "D1",
        "D4",
    }
    assert names(registry, run(registry, v.SQ_GET_DOCUMENTS, {v.P_DE_UNIQUE_ID: ql(uids["D2"])})) == {"D2"}
    refs = run(registry, v.SQ_GET_DOCUMENTS, {v.P_DE_UNIQUE_ID: ql(uids["D2"], uids["D5"])}, "ObjectRef")
    assert names(registry, refs) == {"D2", "D5"}
    assert isinstance(refs, QueryRows) and len(refs.documents[0]) == 2  # no JSON read for ObjectRef


def test_result_not_single_patient(registry: Registry) -> None:
    rows = run(
        registry, v.SQ_GET_DOCUMENTS, {v.P_DE_UNIQUE_ID: ql(registry.unique_ids["D2"], registry.unique_ids["D5"])}
    )
    assert isinstance(rows, QueryRows)
    assert [e.code.value for e in check_single_patient(rows)] == ["XDSResultNotSinglePatient"]


def test_too_many_results(registry: Registry) -> None:
    query = {v.P_DE_PATIENT_ID: q(PATIENT_ID), v.P_DE_STATUS: ql(APPROVED, DEPRECATED)}
    assert run(registry, v.SQ_FIND_DOCUMENTS, query, limit=2) == ["XDSTooManyResults"]
    assert isinstance(run(registry, v.SQ_FIND_DOCUMENTS, query, limit=3), QueryRows)


def test_get_folders_and_folders_for_document(registry: Registry) -> None:
    assert names(registry, run(registry, v.SQ_GET_FOLDERS, {v.P_FOLDER_ENTRY_UUID: ql(registry.ids["F1"])})) == {"F1"}
    assert names(registry, run(registry, v.SQ_GET_FOLDERS, {v.P_FOLDER_UNIQUE_ID: ql(registry.unique_ids["F1"])})) == {
        "F1"
    }
    assert names(
        registry, run(registry, v.SQ_GET_FOLDERS_FOR_DOCUMENT, {v.P_DE_UNIQUE_ID: q(registry.unique_ids["D1"])})
    ) == {"F1"}
    assert (
        names(registry, run(registry, v.SQ_GET_FOLDERS_FOR_DOCUMENT, {v.P_DE_ENTRY_UUID: q(registry.ids["D2"])}))
        == set()
    )


def test_get_associations_and_documents_and_associations(registry: Registry) -> None:
    ids = registry.ids
    found = names(registry, run(registry, v.SQ_GET_ASSOCIATIONS, {v.P_UUID: ql(ids["D1"])}))
    assert found == {f"SS1->{ids['D1']}", "F1-D1", "RPLC"}
    found = names(registry, run(registry, v.SQ_GET_DOCUMENTS_AND_ASSOCIATIONS, {v.P_DE_ENTRY_UUID: ql(ids["D3"])}))
    assert found == {"D3", f"SS2->{ids['D3']}", "RPLC", "F1-D3"}


def test_get_submission_sets(registry: Registry) -> None:
    ids = registry.ids
    found = names(registry, run(registry, v.SQ_GET_SUBMISSION_SETS, {v.P_UUID: ql(ids["D1"], ids["D3"])}))
    assert found == {"SS1", "SS2", f"SS1->{ids['D1']}", f"SS2->{ids['D3']}"}


def test_get_submission_set_and_contents(registry: Registry) -> None:
    ids = registry.ids
    found = names(
        registry,
        run(
            registry,
            v.SQ_GET_SUBMISSION_SET_AND_CONTENTS,
            {v.P_SS_UNIQUE_ID: q(registry.unique_ids["SS1"]), v.P_DE_STATUS: ql(APPROVED)},
        ),
    )
    assert found == {
        "SS1",
        "D1",
        "D2",
        "F1",
        f"SS1->{ids['D1']}",
        f"SS1->{ids['D2']}",
        f"SS1->{ids['F1']}",
        "F1-D1",
        f"SS1->{ids['F1-D1']}",
    }
    filtered = names(
        registry,
        run(
            registry,
            v.SQ_GET_SUBMISSION_SET_AND_CONTENTS,
            {v.P_SS_ENTRY_UUID: q(ids["SS1"]), v.P_DE_CONFIDENTIALITY_CODE: ql(f"R^^{CONF_SCHEME}")},
        ),
    )
    assert filtered == {"SS1", "D2", "F1", f"SS1->{ids['D2']}", f"SS1->{ids['F1']}"}


def test_get_folder_and_contents(registry: Registry) -> None:
    found = names(registry, run(registry, v.SQ_GET_FOLDER_AND_CONTENTS, {v.P_FOLDER_ENTRY_UUID: q(registry.ids["F1"])}))
    assert found == {"F1", "D1", "D3", "F1-D1", "F1-D3"}
    none = names(
        registry,
        run(
            registry,
            v.SQ_GET_FOLDER_AND_CONTENTS,
            {v.P_FOLDER_UNIQUE_ID: q(registry.unique_ids["F1"]), v.P_DE_FORMAT_CODE: ql("x^^y")},
        ),
    )
    assert none == {"F1"}


def test_get_related_documents(registry: Registry) -> None:
    types = ql(v.RPLC, v.HAS_MEMBER)
    found = names(
        registry,
        run(
            registry,
            v.SQ_GET_RELATED_DOCUMENTS,
            {v.P_DE_UNIQUE_ID: q(registry.unique_ids["D1"]), v.P_ASSOCIATION_TYPES: types},
        ),
    )
    assert found == {"D1", "D3", "RPLC"}  # the SubmissionSet's HasMember is no relation
    assert (
        names(
            registry,
            run(
                registry,
                v.SQ_GET_RELATED_DOCUMENTS,
                {v.P_DE_ENTRY_UUID: q(registry.ids["D2"]), v.P_ASSOCIATION_TYPES: types},
            ),
        )
        == set()
    )
    assert run(registry, v.SQ_GET_RELATED_DOCUMENTS, {v.P_DE_ENTRY_UUID: q(registry.ids["D2"])}) == [
        "XDSStoredQueryMissingParam"
    ]


def test_leaf_class_renders_what_was_stored_with_the_current_status(registry: Registry) -> None:
    query = parse_stored_query(v.SQ_GET_DOCUMENTS, [(v.P_DE_ENTRY_UUID, [ql(registry.ids["D1"])])])
    assert isinstance(query, StoredQuery)
    rows = run_plan(registry.engine, build_plan(query), 10)
    assert isinstance(rows, QueryRows)
    (entry,) = render_objects(query, rows)
    assert entry.status == DEPRECATED  # the stored JSON says Approved; the status column rules
    assert entry.creation_time == "20240312093000" and entry.service_start_time == "20240301"
    assert entry.authors[0].institutions and entry.source_patient_info
