"""Destroying a DMP leaves no row naming the patient but the access trace, on SQLite and
PostgreSQL. After a realistic history — submissions (ITI-41, ITI-42 with a folder), a replacement,
ITI-57 masking and archiving, an ITI-62 deletion, authorizations, a legal representative, a
notification address, an emergency access notified — every table of the schema is searched for
the patient, the columns to search found from the schema itself: those named *patient* for the
patient's id, and every text or JSON column for the id, the NIR, and the ids of the patient's
objects (the history of a deleted association names only those). Another patient's record stays."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import JSON, Engine, String, Text, cast, func, or_, select

import soap_messages as soap
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.tables import RepositoryDocumentRow, metadata
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Association, Submission
from factories import make_association, make_document_entry, make_submission, make_submission_set, new_uuid
from secure_server import MASKED, SecureServer, patient_vihf, start_secure_server, stop_secure_server, vihf
from xds_server import BACKENDS, database_for, documents_for

PATIENT = "2840500000317^^^&1.2.250.1.213.1.4.10&ISO"
NIR = PATIENT.split("^", 1)[0]
OTHER = "1840500000318^^^&1.2.250.1.213.1.4.10&ISO"
PARENT = "1650500000319^^^&1.2.250.1.213.1.4.10&ISO"
TRACE = "audit_entry"
TRACE_HEAD = "audit_head"  # the patient's chain's head: part of the trace, it stays with it


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureServer]:
    running = start_secure_server(
        tmp_path_factory.mktemp(f"destroy-{request.param}"),
        pki,
        tls=True,
        database_url=database_for(request),
        extra=documents_for(request),
    )
    yield running
    stop_secure_server(running)


def footprint(engine: Engine, patient: str, needles: Iterable[str]) -> dict[str, int]:
    """How many rows of each table name the patient: a column named *patient* equal to their id,
    or a text or JSON column containing one of `needles`."""
    wanted = sorted(set(needles))
    counts: dict[str, int] = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            conditions = []
            for column in table.columns:
                if "patient" in column.name:
                    conditions.append(column == patient)
                if isinstance(column.type, (String, JSON)):
                    as_text = cast(column, Text) if isinstance(column.type, JSON) else column
                    conditions += [as_text.contains(needle, autoescape=True) for needle in wanted]
            if conditions:
                counts[table.name] = connection.execute(
                    select(func.count()).select_from(table).where(or_(*conditions))
                ).scalar_one()
    return counts


def unique_id() -> str:
    """A uniqueId no other id contains (the factories' counter ids are prefixes of each other)."""
    return f"2.25.{uuid.uuid4().int}"


def submission_of(patient: str, count: int = 1, with_folder: bool = False) -> Submission:
    submission = make_submission(
        count,
        with_folder=with_folder,
        submission_set=make_submission_set(patient_id=patient, unique_id=unique_id()),
        documents=[make_document_entry(patient_id=patient, unique_id=unique_id()) for _ in range(count)],
    )
    for folder in submission.folders:
        folder.unique_id = unique_id()
    return submission


def ids_of(submission: Submission) -> set[str]:
    objects = [submission.submission_set, *submission.documents, *submission.folders, *submission.associations]
    return {o.entry_uuid for o in objects if o is not None} | {
        o.unique_id
        for o in [submission.submission_set, *submission.documents, *submission.folders]
        if o is not None and o.unique_id
    }


def succeeded(response: soap.SoapResponse) -> None:
    assert response.status_code == 200 and response.status == "Success", (
        response.fault_reason,
        etree.tostring(response.payload).decode() if response.status_code == 200 else "",
    )


def masking(original: Submission) -> Submission:
    """ITI-57: a new version of the document with MASQUE_PS."""
    entry = original.documents[0]
    ss = make_submission_set(patient_id=entry.patient_id, unique_id=unique_id())
    version = replace(
        entry,
        entry_uuid=new_uuid(),
        logical_id=entry.entry_uuid,
        status=None,
        version=None,
        confidentiality_codes=[*entry.confidentiality_codes, MASKED],
    )
    link = make_association(
        ss.entry_uuid,
        version.entry_uuid,
        slots={v.SLOT_SUBMISSION_SET_STATUS: ["Original"], v.SLOT_PREVIOUS_VERSION: ["1"]},
    )
    return Submission(ss, [version], [], [link], submission_set_count=1)


def history_of(server: SecureServer, pki: GeneratedPki, patient: str) -> set[str]:
    """Everything the record goes through; the ids of what it made."""
    doctor = pki.identity("doctor").national_id
    server.cli("dmp", "create", patient, "--collected-by", "accueil")
    server.cli("dmp", "grant", patient, doctor)
    server.cli("dmp", "grant", patient, pki.identity("doctor2").national_id, "--kind", "attending")
    server.cli("dmp", "representative", "add", patient, PARENT, "--evidence", "livret de famille")
    server.cli("dmp", "update", patient, "--email", "p@example.org")
    made: set[str] = set()

    # ITI-41: two documents with their bytes.
    provided = submission_of(patient, 2)
    contents = {de.entry_uuid: b"compte rendu " + de.unique_id.encode() for de in provided.documents}
    for entry in provided.documents:
        entry.hash = entry.size = entry.repository_unique_id = None
    succeeded(
        server.call(
            "repository", soap.provide_and_register(provided, contents, mtom=False), vihf(pki, "doctor", patient)
        )
    )
    made |= ids_of(provided)
    for entry in provided.documents:  # as the repository registered them, for the new version below
        content = contents[entry.entry_uuid]
        entry.hash, entry.size = hashlib.sha1(content).hexdigest(), len(content)
        entry.repository_unique_id = server.repository_id
    # ITI-42: a document in a folder, and one replacing the first document provided.
    foldered = submission_of(patient, with_folder=True)
    succeeded(server.call("registry", soap.register(foldered), vihf(pki, "doctor", patient)))
    made |= ids_of(foldered)
    replacing = submission_of(patient)
    replacing.associations.append(
        make_association(
            replacing.documents[0].entry_uuid, provided.documents[0].entry_uuid, association_type=v.RPLC, slots={}
        )
    )
    succeeded(server.call("registry", soap.register(replacing), vihf(pki, "doctor", patient)))
    made |= ids_of(replacing)
    # ITI-57 by the patient: the second document masked by its new version, the foldered one archived.
    second = Submission(provided.submission_set, [provided.documents[1]], [], [], submission_set_count=1)
    masked = masking(second)
    succeeded(server.call("registry", soap.update(masked), patient_vihf(pki, patient), card="patient-portal"))
    made |= ids_of(masked)
    ss = make_submission_set(patient_id=patient, unique_id=unique_id())
    archive = Submission(
        ss,
        [],
        [],
        [
            Association(
                new_uuid(),
                v.UPDATE_AVAILABILITY_STATUS,
                ss.entry_uuid,
                foldered.documents[0].entry_uuid,
                slots={v.SLOT_ORIGINAL_STATUS: [v.STATUS_APPROVED], v.SLOT_NEW_STATUS: [v.STATUS_ARCHIVED]},
            )
        ],
        submission_set_count=1,
    )
    succeeded(server.call("registry", soap.update(archive), patient_vihf(pki, patient), card="patient-portal"))
    made |= ids_of(archive)
    # ITI-62: a document deleted by the patient, with its submission set and their association.
    doomed = submission_of(patient)
    succeeded(server.call("registry", soap.register(doomed), vihf(pki, "doctor", patient)))
    made |= ids_of(doomed)
    succeeded(
        server.call(
            "registry",
            soap.delete_document_set(
                [doomed.submission_set.entry_uuid, doomed.associations[0].entry_uuid, doomed.documents[0].entry_uuid]
            ),
            patient_vihf(pki, patient),
            card="patient-portal",
        )
    )
    # An emergency access, notified to the patient.
    query = soap.adhoc_query(
        v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{patient}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
    )
    emergency = server.call(
        "registry",
        query,
        vihf(pki, "pharmacist", patient, access_mode=sv.ACCESS_EMERGENCY, access_reason="patient inconscient"),
        card="pharmacist",
    )
    assert emergency.status_code == 200, emergency.fault_reason
    return made


def still_stored(request: pytest.FixtureRequest, server: SecureServer, path: str) -> bool:
    """Whether a document's file, or its object on the S3 server (a server on Citus), is there."""
    if path.startswith("s3://"):
        bucket, _, key = path.removeprefix("s3://").partition("/")
        return key in request.getfixturevalue("s3_server").keys(bucket, key)
    return Path(path).is_file() or (server.data_dir / "documents" / path).is_file()


def test_destroy_leaves_no_row_naming_the_patient_but_the_trace(
    request: pytest.FixtureRequest, server: SecureServer, pki: GeneratedPki
) -> None:
    made = history_of(server, pki, PATIENT)
    server.cli("dmp", "create", OTHER, "--collected-by", "accueil")
    kept = server.store_document("other", OTHER)
    needles = {PATIENT, NIR, *made}
    engine = create_engine_for(server.engine_url())
    try:
        before = footprint(engine, PATIENT, needles)
        # The history reached every kind of row the patient can have.
        for table in (
            "patient",
            "dmp_record",
            "dmp_authorization",
            "dmp_representative",
            "dmp_notification",
            "document_entry",
            "submission_set",
            "folder",
            "association",
            "lifecycle_event",
            "repository_document",
            TRACE,
        ):
            assert before[table] > 0, (table, before)
        repository = RepositoryDocumentRow.__table__
        with engine.connect() as connection:
            paths = (
                connection.execute(select(repository.c.path).where(repository.c.unique_id.in_(sorted(made))))
                .scalars()
                .all()
            )
        assert paths and all(still_stored(request, server, p) for p in paths)

        destroyed = server.cli("dmp", "destroy", PATIENT, "--yes", "--request", "courrier du 2026-05-30")
        assert f"DMP of {PATIENT} destroyed" in destroyed
        # The request, who carried it out and what it erased stay in the trace.
        row = server.last_trace(PATIENT).event
        assert (row.action, row.outcome, row.actor_id) == ("dmp.destroy", "success", "operator")
        assert "courrier du 2026-05-30" in row.detail and row.documents and set(row.documents) <= made

        after = footprint(engine, PATIENT, needles)
        assert {table: count for table, count in after.items() if count and table not in (TRACE, TRACE_HEAD)} == {}
        assert after[TRACE] > before[TRACE]  # the trace stays, with the destruction in it
        assert after[TRACE_HEAD] == 1  # its chain goes on: the destruction is its last row
        assert not any(still_stored(request, server, p) for p in paths)
        other = footprint(engine, OTHER, {OTHER, kept.documents[0].entry_uuid})
        assert other["patient"] == other["dmp_record"] == other["document_entry"] == 1, other
    finally:
        engine.dispose()
    assert "intact" in server.cli("audit", "verify")
