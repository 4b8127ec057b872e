"""The patient's space pages over real TLS, as a browser uses them: signed in with the code the
test SMTP relay receives, every page renders, each form's effect shows on the next page (and,
for hiding, over SOAP), a form without the CSRF token changes nothing, another patient's INS in a
URL is refused and traced, uploads too large or of the wrong type get their error page, and the
archive holds the documents, their metadata and the history."""

from __future__ import annotations

import datetime as dt
import io
import re
import time
import zipfile
from collections.abc import Iterator

import pytest
import requests
from lxml import etree
from test_web_signin import browser, csrf_of, emailed_code, get, post

import soap_messages as soap
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.storage import trail as t
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.notifications import NotificationStore
from dmp_xds.xds import vocabulary as v
from factories import ans_example, new_uuid
from secure_server import PATIENT, SecureServer, patient_with_account, start_secure_server, stop_secure_server, vihf
from smtp_relay import SmtpRelay

INS = PATIENT.split("^", 1)[0]
OTHER = "2910599123456^^^&1.2.250.1.213.1.4.10&ISO"
OTHER_INS = OTHER.split("^", 1)[0]
EMAIL = "patient@example.org"
LOGIN, PASSWORD = "patient01", "un mot de passe du patient"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
UPLOAD_LIMIT = 200_000
CDA = "ANEST-CR-ANEST_2022.01.xml"  # an ANS example with a narrative


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(pki: GeneratedPki, relay: SmtpRelay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    running = start_secure_server(
        tmp_path_factory.mktemp("patient-pages"),
        pki,
        tls=True,
        extra={
            "DMP_XDS_NOTIFY_SMTP": f"smtp://127.0.0.1:{relay.port}",
            "DMP_XDS_NOTIFY_FROM": "dmp@test.example",
            "DMP_XDS_WEB_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        },
    )
    doctor = pki.identity("doctor").national_id
    for patient in (PATIENT, OTHER):
        running.cli("dmp", "create", patient, "--collected-by", doctor)
        running.cli("dmp", "grant", patient, doctor)
    patient_with_account(running.engine_url(), PATIENT, LOGIN, PASSWORD, EMAIL)
    yield running
    stop_secure_server(running)


@pytest.fixture(scope="module")
def patient(server: SecureServer, relay: SmtpRelay) -> requests.Session:
    """The patient's browser, signed in (password, then the e-mailed code)."""
    session = browser(server)
    before = len(relay.messages)
    assert post(session, server, "/patient/connexion", login=LOGIN, password=PASSWORD).status_code == 303
    answer = post(session, server, "/patient/connexion/code", code=emailed_code(relay, before))
    assert answer.status_code == 303 and answer.headers["Location"] == "/patient/", answer.text
    return session


def stored(server: SecureServer, name: str, content: bytes = b"", mime_type: str = "text/plain") -> str:
    submission = server.store_document(
        f"{name}-{new_uuid()[9:17]}", PATIENT, author="812345678901", content=content, mime_type=mime_type
    )
    return submission.documents[0].unique_id or ""


def found_by_doctor(server: SecureServer, pki: GeneratedPki, unique_id: str) -> bool:
    response = server.call(
        "registry",
        soap.adhoc_query(
            v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{PATIENT}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
        ),
        vihf(pki, "doctor", PATIENT),
        card="doctor",
    )
    assert response.status_code == 200, response.fault_reason
    return unique_id in etree.tostring(response.payload).decode()


def page(session: requests.Session, server: SecureServer, path: str, status: int = 200) -> requests.Response:
    answer = get(session, server, path)
    assert answer.status_code == status, (path, answer.status_code, answer.text[:2000])
    return answer


def flash(session: requests.Session, server: SecureServer, answer: requests.Response) -> str:
    """The page a 303 leads to (its flash message in it)."""
    assert answer.status_code == 303, answer.text[:2000]
    return page(session, server, answer.headers["Location"]).text


def test_every_page_renders_for_the_signed_in_patient(
    server: SecureServer, patient: requests.Session, pki: GeneratedPki
) -> None:
    cda = stored(server, "cda", ans_example(CDA), "text/xml")
    pdf = stored(server, "pdf", PDF, "application/pdf")
    home = page(patient, server, "/patient/")
    assert f'href="/patient/{INS}/documents"' in home.text and "Aucune notification" in home.text
    listed = page(patient, server, f"/patient/{INS}/documents")
    assert listed.headers["Cache-Control"] == "no-store"
    assert f"/patient/{INS}/documents/{cda}" in listed.text and '<th scope="col">Auteur</th>' in listed.text
    shown = page(patient, server, f"/patient/{INS}/documents/{cda}")
    assert '<article class="cda">' in shown.text and "<script" not in shown.text
    assert "Télécharger" in shown.text
    pdf_page = page(patient, server, f"/patient/{INS}/documents/{pdf}")
    assert f"/patient/{INS}/documents/{pdf}/contenu" in pdf_page.text
    inline = page(patient, server, f"/patient/{INS}/documents/{pdf}/contenu")
    assert inline.content == PDF and inline.headers["Content-Type"] == "application/pdf"
    assert inline.headers["Content-Disposition"].startswith("inline;")
    policy = inline.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox;") and "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert len(inline.headers.get("Content-Security-Policy", "").split(", ")) == 1  # the pages' one is not added
    download = page(patient, server, f"/patient/{INS}/documents/{cda}/telechargement")
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.content == ans_example(CDA)
    # A CDA is not served inline (the page renders it): only PDFs and images are.
    page(patient, server, f"/patient/{INS}/documents/{cda}/contenu", 404)
    for path in ("historique", "acces", "ajouts", "dossier", "dossier/fermeture", f"documents/{pdf}/suppression"):
        assert "<h1>" in page(patient, server, f"/patient/{INS}/{path}").text
    assert post(patient, server, f"/patient/{INS}/documents").status_code == 405
    # Filters: by author (none matches), by type.
    assert "Aucun document ne correspond" in page(patient, server, f"/patient/{INS}/documents?auteur=PERSONNE").text
    page(patient, server, f"/patient/{INS}/documents?du=pas-une-date", 400)


def test_hiding_and_showing_a_document(server: SecureServer, patient: requests.Session, pki: GeneratedPki) -> None:
    unique_id = stored(server, "to-hide")
    assert found_by_doctor(server, pki, unique_id)
    document = page(patient, server, f"/patient/{INS}/documents/{unique_id}")
    hidden = post(patient, server, f"/patient/{INS}/documents/{unique_id}/masquer", csrf=csrf_of(document))
    assert hidden.headers["Location"] == f"/patient/{INS}/documents/{unique_id}?fait=masque"
    text = flash(patient, server, hidden)
    assert "Le document est masqué aux professionnels" in text and "Rendre visible" in text
    assert not found_by_doctor(server, pki, unique_id)
    assert "Masqué aux professionnels" in page(patient, server, f"/patient/{INS}/documents").text
    # Hidden twice: the service's 409, as a page.
    again = post(patient, server, f"/patient/{INS}/documents/{unique_id}/masquer", csrf=csrf_of(document))
    assert again.status_code == 409 and "Action impossible" in again.text
    shown = post(patient, server, f"/patient/{INS}/documents/{unique_id}/afficher", csrf=csrf_of(document))
    assert "de nouveau visible" in flash(patient, server, shown)
    assert found_by_doctor(server, pki, unique_id)


def test_a_form_without_the_csrf_token_changes_nothing(
    server: SecureServer, patient: requests.Session, pki: GeneratedPki
) -> None:
    unique_id = stored(server, "kept")
    for form in ({}, {"csrf": "forged"}):
        refused = post(patient, server, f"/patient/{INS}/documents/{unique_id}/masquer", **form)
        assert refused.status_code == 403 and "été modifié" in refused.text
        assert server.last_trace(PATIENT).event.action == t.WEB_FORGED_REQUEST
    assert found_by_doctor(server, pki, unique_id)
    deleted = post(patient, server, f"/patient/{INS}/documents/{unique_id}/suppression")
    assert deleted.status_code == 403
    assert unique_id in page(patient, server, f"/patient/{INS}/documents").text


def test_another_patients_ins_is_refused_and_traced(server: SecureServer, patient: requests.Session) -> None:
    for path in ("documents", "historique", "acces", "dossier", "dossier/archive"):
        refused = page(patient, server, f"/patient/{OTHER_INS}/{path}", 403)
        assert "Accès refusé" in refused.text
        entry = server.last_trace(OTHER)
        assert (entry.event.outcome, entry.event.actor_id) == (t.DENIED, PATIENT)
    document = page(patient, server, f"/patient/{INS}/documents")
    changed = post(patient, server, f"/patient/{OTHER_INS}/acces/blocage", csrf=csrf_of(document), professionnel="1")
    assert changed.status_code == 403 and server.last_trace(OTHER).event.outcome == t.DENIED
    page(patient, server, "/patient/pas^un&INS/documents", 404)


def test_deleting_asks_first(server: SecureServer, patient: requests.Session) -> None:
    unique_id = stored(server, "to-delete")
    confirm = page(patient, server, f"/patient/{INS}/documents/{unique_id}/suppression")
    assert "Oui, supprimer ce document" in confirm.text
    deleted = post(patient, server, f"/patient/{INS}/documents/{unique_id}/suppression", csrf=csrf_of(confirm))
    assert deleted.headers["Location"] == f"/patient/{INS}/documents?fait=supprime"
    text = flash(patient, server, deleted)
    assert "Le document a été supprimé" in text and unique_id not in text
    page(patient, server, f"/patient/{INS}/documents/{unique_id}", 404)


def test_history_flags_emergency_accesses_and_notifications_are_acknowledged(
    server: SecureServer, patient: requests.Session
) -> None:
    engine = create_engine_for(server.engine_url())
    try:
        nid, _ = NotificationStore(engine).add(
            PATIENT, dt.datetime.now(dt.UTC), "break-glass", 1, "899999999999", "Dr URGENCE", "", "urgence vitale", "m"
        )
    finally:
        engine.dispose()
    home = page(patient, server, "/patient/")
    assert "1 accès en urgence" in home.text
    history = page(patient, server, f"/patient/{INS}/historique")
    assert "Dr URGENCE" in history.text and "urgence vitale" in history.text
    assert '<th scope="col">Mode d\'accès</th>' in history.text
    read = post(patient, server, f"/patient/{INS}/notifications/{nid}/lue", csrf=csrf_of(history))
    text = flash(patient, server, read)
    assert "marquée comme lue" in text and "Dr URGENCE" not in text.split('id="journal"')[0]
    assert "Aucune notification" in page(patient, server, "/patient/").text
    # Paged: `avant` goes to older rows.
    older = re.search(r'historique\?avant=(\d+)"', page(patient, server, f"/patient/{INS}/historique").text)
    if older:
        page(patient, server, f"/patient/{INS}/historique?avant={older.group(1)}")
    page(patient, server, f"/patient/{INS}/historique?avant=x", 400)


def test_blocking_revoking_and_oppositions(server: SecureServer, patient: requests.Session, pki: GeneratedPki) -> None:
    doctor = pki.identity("doctor").national_id
    rights = page(patient, server, f"/patient/{INS}/acces")
    assert doctor in rights.text and "Aucun professionnel n'est bloqué" in rights.text
    blocked = post(patient, server, f"/patient/{INS}/acces/blocage", csrf=csrf_of(rights), professionnel=doctor)
    text = flash(patient, server, blocked)
    assert "Ce professionnel est bloqué" in text and "Débloquer" in text
    unblocked = post(patient, server, f"/patient/{INS}/acces/deblocage", csrf=csrf_of(rights), professionnel=doctor)
    assert "plus bloqué" in flash(patient, server, unblocked)
    server.cli("dmp", "grant", PATIENT, doctor)
    revoked = post(patient, server, f"/patient/{INS}/acces/retrait", csrf=csrf_of(rights), professionnel=doctor)
    assert "autorisation a été retirée" in flash(patient, server, revoked)
    server.cli("dmp", "grant", PATIENT, doctor)
    opposed = post(patient, server, f"/patient/{INS}/acces/oppositions", csrf=csrf_of(rights), bris_de_glace="1")
    text = flash(patient, server, opposed)
    assert 'name="bris_de_glace" value="1" checked' in text and 'name="acces_urgence" value="1" checked' not in text
    lifted = post(patient, server, f"/patient/{INS}/acces/oppositions", csrf=csrf_of(rights))
    assert 'name="bris_de_glace" value="1" checked' not in flash(patient, server, lifted)


def upload(
    session: requests.Session, server: SecureServer, csrf: str, content: bytes, name: str = "scan.pdf"
) -> requests.Response:
    return session.post(
        f"{server.url}/patient/{INS}/ajouts/document",
        data={"csrf": csrf, "titre": "Mon ordonnance", "type": "DOCPAT02", "date": "2026-11-02"},
        files={"fichier": (name, content, "application/pdf")},
        allow_redirects=False,
        timeout=30,
    )


def test_uploads_and_short_information(server: SecureServer, patient: requests.Session, pki: GeneratedPki) -> None:
    additions = page(patient, server, f"/patient/{INS}/ajouts")
    csrf = csrf_of(additions)
    sent = upload(patient, server, csrf, PDF)
    assert sent.status_code == 303 and "fait=depose" in sent.headers["Location"]
    text = flash(patient, server, sent)
    assert "Mon ordonnance" in text and "Vous" in text
    unique_id = sent.headers["Location"].split("/documents/")[1].split("?")[0]
    assert found_by_doctor(server, pki, unique_id)
    too_large = upload(patient, server, csrf, b"%PDF-1.4\n" + b"0" * UPLOAD_LIMIT)
    assert too_large.status_code == 413 and "Envoi trop volumineux" in too_large.text
    wrong = upload(patient, server, csrf, b"#!/bin/sh\necho hello\n", "script.pdf")
    assert wrong.status_code == 415 and "PDF" in wrong.text
    assert page(patient, server, f"/patient/{INS}/documents").text.count("Mon ordonnance") == 1
    # Short information: given, shown back, changed, deleted.
    given = post(patient, server, f"/patient/{INS}/ajouts/info/allergies", csrf=csrf, texte="Pénicilline")
    text = flash(patient, server, given)
    assert "Votre information est enregistrée" in text and ">Pénicilline</textarea>" in text
    current = re.search(r'name="remplace" value="([^"]+)"', text)
    assert current
    changed = post(
        patient,
        server,
        f"/patient/{INS}/ajouts/info/allergies",
        csrf=csrf,
        texte="Pénicilline, arachide",
        remplace=current.group(1),
    )
    text = flash(patient, server, changed)
    assert ">Pénicilline, arachide</textarea>" in text
    newer = re.search(r'name="document" value="([^"]+)"', text)
    assert newer and newer.group(1) != current.group(1)
    deleted = post(
        patient, server, f"/patient/{INS}/ajouts/info/allergies/suppression", csrf=csrf, document=newer.group(1)
    )
    text = flash(patient, server, deleted)
    assert "Votre information a été supprimée" in text and "arachide" not in text
    empty = post(patient, server, f"/patient/{INS}/ajouts/info/allergies", csrf=csrf, texte=" ")
    assert empty.status_code == 400


def test_my_record_the_archive_then_closing(server: SecureServer, patient: requests.Session) -> None:
    record = page(patient, server, f"/patient/{INS}/dossier")
    csrf = csrf_of(record)
    changed = post(patient, server, f"/patient/{INS}/dossier/courriel", csrf=csrf, courriel="moi@example.org")
    assert 'value="moi@example.org"' in flash(patient, server, changed)
    assert (
        post(patient, server, f"/patient/{INS}/dossier/courriel", csrf=csrf, courriel="pas un courriel").status_code
        == 400
    )
    unique_id = stored(server, "archived", PDF, "application/pdf")
    archive = page(patient, server, f"/patient/{INS}/dossier/archive")
    assert archive.headers["Content-Type"] == "application/zip"
    assert archive.headers["Content-Disposition"].startswith('attachment; filename="dmp-')
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        names = zipped.namelist()
        assert {"documents.json", "dossier.json", "historique-des-acces.csv"} <= set(names)
        assert any(unique_id in n and n.endswith(".pdf") for n in names)
        assert unique_id in zipped.read("documents.json").decode()
        assert "web.sign-in" in zipped.read("historique-des-acces.csv").decode()
    # Removed once sent: just after the last byte left.
    deadline = time.monotonic() + 5
    while list(server.data_dir.rglob("export-*.zip")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(server.data_dir.rglob("export-*.zip")), "the temporary archive is removed"
    asked = post(patient, server, f"/patient/{INS}/dossier/destruction", csrf=csrf, motif="je déménage")
    assert "destruction de votre DMP est demandée" in flash(patient, server, asked)
    assert post(patient, server, f"/patient/{INS}/dossier/destruction", csrf=csrf).status_code == 409
    confirm = page(patient, server, f"/patient/{INS}/dossier/fermeture")
    closed = post(patient, server, f"/patient/{INS}/dossier/fermeture", csrf=csrf_of(confirm))
    text = flash(patient, server, closed)
    assert "Votre DMP est fermé" in text and "Fermé" in text
    assert server.last_trace(PATIENT).event.action in (t.DMP_READ, t.DMP_CLOSE)
