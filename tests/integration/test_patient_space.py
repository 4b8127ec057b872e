"""The patient's space use cases (services/patient_space.py, patient_seeds.py, record_export.py)
against a real secured server and its store, on SQLite and PostgreSQL: the functions run in this
process on the server's database and document store, professionals come over SOAP with their
cards and VIHFs, and each side sees what the other did."""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator

import pytest
from lxml import etree

import soap_messages as soap
from dmp_xds.config import load_settings
from dmp_xds.dmp.policy import BLOCKED_REASON
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.security.web_principal import patient_principal
from dmp_xds.services import patient_seeds as seeds
from dmp_xds.services import patient_space as ps
from dmp_xds.services.context import Services
from dmp_xds.services.record_export import export_record
from dmp_xds.transport.serve import open_services
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Code
from factories import new_uuid
from secure_server import MASKED, PATIENT, SecureServer, start_secure_server, stop_secure_server, vihf
from xds_server import BACKENDS, database_for, documents_for

SOMEONE_ELSE = "899999999999"
INVISIBLE = Code("INVISIBLE_PATIENT", "1.2.250.1.213.1.1.4.13", "Non visible par le patient")
BLOCKING = "1750599123456^^^&1.2.250.1.213.1.4.10&ISO"  # blocks the doctor
OTHER = "2910599123456^^^&1.2.250.1.213.1.4.10&ISO"  # another patient
CLOSING = "1130599123456^^^&1.2.250.1.213.1.4.10&ISO"  # closes their record
MINOR = "1020599123456^^^&1.2.250.1.213.1.4.10&ISO"
PARENT = "2700599123456^^^&1.2.250.1.213.1.4.10&ISO"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureServer]:
    running = start_secure_server(
        tmp_path_factory.mktemp("patient-space"),
        pki,
        tls=True,
        database_url=database_for(request),
        extra=documents_for(request),
    )
    doctor = pki.identity("doctor").national_id
    for patient in (PATIENT, BLOCKING, OTHER, CLOSING, MINOR):
        running.cli("dmp", "create", patient, "--collected-by", doctor)
        running.cli("dmp", "grant", patient, doctor)
    running.cli("dmp", "grant", PATIENT, pki.identity("doctor2").national_id, "--kind", "attending")
    running.cli("dmp", "representative", "add", MINOR, PARENT, "--evidence", "livret de famille")
    yield running
    stop_secure_server(running)


@pytest.fixture(scope="module")
def services(server: SecureServer) -> Iterator[Services]:
    """The server's services, opened in this process as the server opens them."""
    opened = open_services(load_settings(environ=server.env), migrate=False)
    yield opened
    opened.registry.engine.dispose()


def found_by(server: SecureServer, pki: GeneratedPki, card: str, patient: str, unique_id: str, **claims: str) -> bool:
    """Whether the professional `card` finds the document over SOAP ITI-18 (FindDocuments)."""
    response = server.call(
        "registry",
        soap.adhoc_query(
            v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{patient}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
        ),
        vihf(pki, card, patient, **claims),
        card=card,
    )
    assert response.status_code == 200, response.fault_reason
    return unique_id in etree.tostring(response.payload).decode()


def test_the_list_keeps_invisible_documents_invisible(server: SecureServer, services: Services) -> None:
    shown = server.store_document(f"shown-{new_uuid()[9:17]}", PATIENT, author=SOMEONE_ELSE)
    invisible = server.store_document(f"invisible-{new_uuid()[9:17]}", PATIENT, (INVISIBLE,), SOMEONE_ELSE)
    listed = ps.list_documents(services, patient_principal(PATIENT, "le patient"), PATIENT)
    ids = [d.unique_id for d in listed.documents]
    assert shown.documents[0].unique_id in ids
    assert invisible.documents[0].unique_id not in ids
    entry = server.last_trace(PATIENT)
    assert (entry.event.action, entry.event.outcome, entry.event.actor_id) == ("search", "success", PATIENT)
    # Opening it by its id: as unknown, and the refusal traced.
    with pytest.raises(ps.Refused) as refused:
        ps.get_document(services, patient_principal(PATIENT), PATIENT, invisible.documents[0].unique_id or "")
    assert refused.value.status == 404
    assert server.last_trace(PATIENT).event.outcome == "denied"


def test_filters_by_author(server: SecureServer, services: Services) -> None:
    stored = server.store_document(f"filtered-{new_uuid()[9:17]}", PATIENT, author="812345678901")
    me = patient_principal(PATIENT)
    by_martin = ps.list_documents(services, me, PATIENT, ps.DocumentFilter(author="MARTIN"))
    by_nobody = ps.list_documents(services, me, PATIENT, ps.DocumentFilter(author="NOBODY"))
    assert stored.documents[0].unique_id in [d.unique_id for d in by_martin.documents]
    assert by_nobody.documents == ()


def test_a_hidden_document_is_no_longer_seen_by_a_professional(
    server: SecureServer, pki: GeneratedPki, services: Services
) -> None:
    stored = server.store_document(f"to-hide-{new_uuid()[9:17]}", PATIENT, author=SOMEONE_ELSE)
    unique_id = stored.documents[0].unique_id or ""
    assert found_by(server, pki, "doctor", PATIENT, unique_id)
    me = patient_principal(PATIENT)
    changed = ps.hide_document(services, me, PATIENT, unique_id)
    assert changed.action == "mask"
    entry = server.last_trace(PATIENT)
    assert (entry.event.action, entry.event.outcome) == ("update", "success")
    assert f"mask {unique_id}: allowed" in entry.event.detail
    assert not found_by(server, pki, "doctor", PATIENT, unique_id)
    assert found_by(server, pki, "doctor2", PATIENT, unique_id)  # the attending doctor still sees it
    assert next(d for d in ps.list_documents(services, me, PATIENT).documents if d.unique_id == unique_id).masked
    with pytest.raises(ps.Refused) as again:
        ps.hide_document(services, me, PATIENT, unique_id)
    assert again.value.status == 409
    ps.show_document(services, me, PATIENT, unique_id)
    assert found_by(server, pki, "doctor", PATIENT, unique_id)


def test_the_patient_deletes_a_professionals_document(
    server: SecureServer, pki: GeneratedPki, services: Services
) -> None:
    stored = server.store_document(f"to-delete-{new_uuid()[9:17]}", PATIENT, author=SOMEONE_ELSE)
    unique_id = stored.documents[0].unique_id or ""
    me = patient_principal(PATIENT)
    ps.delete_document(services, me, PATIENT, unique_id)
    assert f"delete {unique_id}: allowed" in server.last_trace(PATIENT).event.detail
    assert unique_id not in [d.unique_id for d in ps.list_documents(services, me, PATIENT).documents]
    assert not found_by(server, pki, "doctor", PATIENT, unique_id)


def test_a_patient_authored_document_is_found_by_a_professional(
    server: SecureServer, pki: GeneratedPki, services: Services
) -> None:
    me = patient_principal(PATIENT)
    published = seeds.publish_upload(services, me, PATIENT, PDF, "Ordonnance scannée", "DOCPAT02", "2026-11-30")
    entry = server.last_trace(PATIENT)
    assert (entry.event.action, entry.event.outcome, entry.event.actor_id) == ("submit", "success", PATIENT)
    assert entry.event.documents == (published.unique_id,)
    response = server.call(
        "registry",
        soap.adhoc_query(v.SQ_GET_DOCUMENTS, {v.P_DE_UNIQUE_ID: [f"('{published.unique_id}')"]}),
        vihf(pki, "doctor"),
    )
    text = etree.tostring(response.payload).decode()
    assert published.unique_id in text
    assert f"{PATIENT.split('^')[0]}^" in text  # the patient as authorPerson
    assert "EXP_PATIENT" in text and "DOCPAT02" in text
    content = ps.get_document(services, me, PATIENT, published.unique_id)
    assert (content.read_bytes(), content.mime_type) == (PDF, "application/pdf")
    assert content.document.patient_authored


def test_short_information_is_replaced_by_a_new_version(
    server: SecureServer, pki: GeneratedPki, services: Services
) -> None:
    me = patient_principal(PATIENT)
    first = seeds.publish_note(services, me, PATIENT, "allergies", "Pénicilline")
    second = seeds.publish_note(services, me, PATIENT, "allergies", "Pénicilline, arachide", replaces=first.unique_id)
    listed = ps.list_documents(services, me, PATIENT).documents
    info = {i.kind: i for i in seeds.my_information(listed)}
    current = info["allergies"].current
    assert current is not None and current.unique_id == second.unique_id
    assert first.unique_id not in [d.unique_id for d in listed]  # deprecated by the RPLC
    assert found_by(server, pki, "doctor", PATIENT, second.unique_id)
    assert b"arachide" in ps.get_document(services, me, PATIENT, second.unique_id).read_bytes()


def test_a_patient_does_not_replace_a_professionals_document(server: SecureServer, services: Services) -> None:
    stored = server.store_document(f"not-mine-{new_uuid()[9:17]}", PATIENT, author=SOMEONE_ELSE)
    with pytest.raises(ps.Refused) as refused:
        seeds.publish_note(
            services,
            patient_principal(PATIENT),
            PATIENT,
            "allergies",
            "x",
            replaces=stored.documents[0].unique_id or "",
        )
    assert "not published by the patient" in refused.value.reason
    assert server.last_trace(PATIENT).event.outcome == "denied"


def test_an_upload_that_is_no_pdf_or_image_is_refused(server: SecureServer, services: Services) -> None:
    with pytest.raises(ps.Refused) as refused:
        seeds.publish_upload(
            services, patient_principal(PATIENT), PATIENT, b"MZ\x90\x00", "x", "DOCPAT02", "2026-01-01"
        )
    assert refused.value.status == 415
    assert list(services.blobs.tmp_dir.iterdir()) == []  # nothing half-stored


def test_a_blocked_professional_is_refused_over_soap(
    server: SecureServer, pki: GeneratedPki, services: Services
) -> None:
    doctor = pki.identity("doctor").national_id
    me = patient_principal(BLOCKING)
    stored = server.store_document(f"blocked-{new_uuid()[9:17]}", BLOCKING, author=SOMEONE_ELSE)
    assert found_by(server, pki, "doctor", BLOCKING, stored.documents[0].unique_id or "")
    assert ps.block_professional(services, me, BLOCKING, doctor)
    rights = ps.access_rights(services, me, BLOCKING)
    assert [p.national_id for p in rights.blocked] == [doctor] and rights.authorized == ()
    refused = server.call(
        "registry",
        soap.adhoc_query(
            v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{BLOCKING}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
        ),
        vihf(pki, "doctor", BLOCKING),
    )
    assert refused.status_code == 403 and BLOCKED_REASON in (refused.fault_reason or "")
    assert ps.unblock_professional(services, me, BLOCKING, doctor)
    # Unblocked is not authorized again: the block revoked the grant.
    assert (
        server.call(
            "registry",
            soap.adhoc_query(
                v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{BLOCKING}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
            ),
            vihf(pki, "doctor", BLOCKING),
        ).status_code
        == 403
    )


def test_revoking_an_authorization(server: SecureServer, pki: GeneratedPki, services: Services) -> None:
    doctor = pki.identity("doctor").national_id
    me = patient_principal(OTHER)
    assert [p.national_id for p in ps.access_rights(services, me, OTHER).authorized] == [doctor]
    assert ps.revoke_authorization(services, me, OTHER, doctor) == 1
    assert ps.access_rights(services, me, OTHER).authorized == ()
    with pytest.raises(ps.Refused) as refused:
        ps.revoke_authorization(services, me, OTHER, doctor)
    assert refused.value.status == 404
    server.cli("dmp", "grant", OTHER, doctor)


def test_another_patients_ins_is_refused_and_traced(server: SecureServer, services: Services) -> None:
    me = patient_principal(PATIENT)
    for use in (ps.list_documents, ps.access_history, ps.my_record, ps.access_rights):
        with pytest.raises(ps.Refused) as refused:
            use(services, me, OTHER)
        assert refused.value.status == 403
        entry = server.last_trace(OTHER)
        assert (entry.event.outcome, entry.event.actor_id) == ("denied", PATIENT)
        assert "another patient" in entry.event.detail


def test_access_history_and_emergency_notifications(
    server: SecureServer, pki: GeneratedPki, services: Services
) -> None:
    me = patient_principal(PATIENT)
    for _ in ps.notifications(services, me, PATIENT):
        pass
    found_by(server, pki, "pharmacist", PATIENT, "none", access_mode=sv.ACCESS_EMERGENCY, access_reason="inconscient")
    history = ps.access_history(services, me, PATIENT, page_size=5)
    newest = history.entries[0]
    assert (newest.who_id, newest.action, newest.emergency) == (pki.identity("pharmacist").national_id, "search", True)
    assert history.next_before == history.entries[-1].seq
    older = ps.access_history(services, me, PATIENT, before=history.next_before, page_size=5)
    assert older.entries[0].seq < history.entries[-1].seq  # the next page, unshifted by the reads between
    unread = ps.notifications(services, me, PATIENT)
    assert len(unread) >= 1 and not unread[0].read
    assert ps.acknowledge_notification(services, me, PATIENT, unread[0].id)
    assert unread[0].id not in [n.id for n in ps.notifications(services, me, PATIENT)]
    with pytest.raises(ps.Refused):
        ps.acknowledge_notification(services, patient_principal(OTHER), OTHER, unread[0].id)


def test_opposing_break_glass(server: SecureServer, pki: GeneratedPki, services: Services) -> None:
    me = patient_principal(PATIENT)
    rights = ps.set_oppositions(services, me, PATIENT, oppose_emergency=True)
    assert rights.opposes_emergency_access and not rights.opposes_regulation_access
    refused = server.call(
        "registry",
        soap.adhoc_query(
            v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{PATIENT}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
        ),
        vihf(pki, "pharmacist", PATIENT, access_mode=sv.ACCESS_EMERGENCY, access_reason="inconscient"),
        card="pharmacist",
    )
    assert refused.status_code == 403 and "refused emergency access" in (refused.fault_reason or "")
    assert not ps.set_oppositions(services, me, PATIENT, oppose_emergency=False).opposes_emergency_access


def test_a_legal_representative_acts_for_the_minor_only(server: SecureServer, services: Services) -> None:
    parent = patient_principal(MINOR, "le parent", representative_id=PARENT)
    assert ps.list_documents(services, parent, MINOR).patient_id == MINOR
    assert server.last_trace(MINOR).event.actor_id == PARENT
    stranger = patient_principal(MINOR, "un inconnu", representative_id="1990599123456^^^&1.2.250.1.213.1.4.10&ISO")
    with pytest.raises(ps.Refused):
        ps.list_documents(services, stranger, MINOR)


def test_my_record_email_destruction_and_closing(server: SecureServer, services: Services) -> None:
    me = patient_principal(CLOSING)
    assert ps.set_notification_email(services, me, CLOSING, "moi@example.org").notification_email == "moi@example.org"
    with pytest.raises(ps.Refused) as bad:
        ps.set_notification_email(services, me, CLOSING, "pas une adresse")
    assert bad.value.status == 400
    assert ps.request_destruction(services, me, CLOSING, "je ne veux plus de DMP").destruction_requested
    with pytest.raises(ps.Refused) as twice:
        ps.request_destruction(services, me, CLOSING)
    assert twice.value.status == 409
    closed = ps.close_record(services, me, CLOSING)
    assert (closed.status, closed.status_reason) == ("closed", "FERMETURE_DEMANDE_PATIENT")
    with pytest.raises(ps.Refused):
        ps.list_documents(services, me, CLOSING)  # a closed DMP is read by nobody
    assert ps.my_record(services, me, CLOSING).status == "closed"


def test_download_everything(server: SecureServer, services: Services) -> None:
    me = patient_principal(PATIENT)
    published = seeds.publish_note(services, me, PATIENT, "trusted-person", "Marie Dupont, 06 00 00 00 00")
    archive = export_record(services, me, PATIENT, dt.datetime.now(dt.UTC))
    try:
        with zipfile.ZipFile(archive.path) as zipped:
            names = zipped.namelist()
            assert {"documents.json", "dossier.json", "historique-des-acces.csv"} <= set(names)
            assert any(published.unique_id in n and n.endswith(".txt") for n in names)
            assert "Marie Dupont" in zipped.read(next(n for n in names if published.unique_id in n)).decode()
            assert zipped.read("historique-des-acces.csv").decode().startswith("seq,when,who")
        assert archive.documents >= 1 and archive.history_rows >= 1
    finally:
        archive.path.unlink()
    entry = server.last_trace(PATIENT)
    assert (entry.event.action, entry.event.outcome) == ("history.read", "success")
    assert MASKED.code  # the masking code the space writes is the one the server knows
