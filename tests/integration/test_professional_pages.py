"""The professionals' site's pages (/AccesDirect/...) over real TLS, on SQLite and PostgreSQL,
signed in with a card's client certificate as a browser presents it: every page for an authorized
doctor, the Documents filters, a CPE card limited by the same matrix cell as SOAP, the
confirmation page of an unauthorized professional (consent, break-glass traced as emergency for
the visit), a blocked professional refused, the history's rules, a closed or absent DMP, a forged
form, no card."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from html import unescape

import pytest
import requests
from test_professional_site import published
from test_web_signin import browser, csrf_of

import soap_messages as soap
from dmp_xds.dmp.policy import BLOCKED_REASON
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.storage import trail as t
from dmp_xds.storage.trail import AuditEntry
from dmp_xds.xds import vocabulary as v
from factories import ans_example
from secure_server import MASKED, PATIENT, SecureServer, start_secure_server, stop_secure_server, vihf
from xds_server import BACKENDS, database_for, documents_for

OTHER = "1840599123456^^^&1.2.250.1.213.1.4.10&ISO"  # the nurse is not authorized there
CLOSING = "2750599123456^^^&1.2.250.1.213.1.4.10&ISO"
ABSENT = "1690599123456"  # no DMP
INS = PATIENT.split("^", 1)[0]
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SecureServer, dict[str, str]]]:
    """A secured server on SQLite and on PostgreSQL, a record with a report, a later one, a biology
    result, a document masked from professionals, a PDF and a CDA."""
    running = start_secure_server(
        tmp_path_factory.mktemp(f"pro-pages-{request.param}"),
        pki,
        tls=True,
        database_url=database_for(request),
        extra=documents_for(request),
    )
    try:
        doctor = pki.identity("doctor").national_id
        for patient in (PATIENT, OTHER, CLOSING):
            running.cli("dmp", "create", patient, "--collected-by", doctor)
            running.cli("dmp", "grant", patient, doctor)
        running.cli("dmp", "grant", PATIENT, pki.identity("doctor2").national_id, "--kind", "attending")
        for card in ("nurse", "secretary"):
            running.cli("dmp", "grant", PATIENT, pki.identity(card).national_id)
        documents: dict[str, str] = {}
        for name, start, klass, codes, author, mime, content in (
            ("report", "20240312093000", "11", (), "", "text/plain", b"compte rendu"),
            ("later", "20240320080000", "11", (), "", "text/plain", b"suite"),
            ("biology", "20230105100000", "10", (), "", "text/plain", b"biologie"),
            ("masked", "20240315100000", "11", (MASKED,), "899999999999", "text/plain", b"masque"),
            ("pdf", "20240402100000", "11", (), "", "application/pdf", PDF),
            ("cda", "20240405100000", "11", (), "", "text/xml", ans_example("ANEST-CR-ANEST_2022.01.xml")),
        ):
            submission = published(name, start, klass, codes, author)
            entry = submission.documents[0]
            entry.mime_type = mime
            response = running.call(
                "repository",
                soap.provide_and_register(submission, {entry.entry_uuid: content}, mtom=False),
                vihf(pki, "doctor", PATIENT),
            )
            assert response.status == "Success", response.fault_reason
            assert entry.unique_id
            documents[name] = entry.unique_id
        yield running, documents
    finally:
        stop_secure_server(running)


def card(server: tuple[SecureServer, dict[str, str]], name: str) -> requests.Session:
    return browser(server[0], name)


def get(session: requests.Session, server: tuple[SecureServer, dict[str, str]], path: str) -> requests.Response:
    return session.get(server[0].url + path, allow_redirects=False, timeout=30)


def post(
    session: requests.Session, server: tuple[SecureServer, dict[str, str]], path: str, **form: str
) -> requests.Response:
    return session.post(server[0].url + path, data=form, allow_redirects=False, timeout=30)


def links(page: requests.Response, unique_id: str) -> bool:
    """Whether the page links the document (a uniqueId may be the start of another's)."""
    return f'/{unique_id}"' in page.text


def last_trace(server: tuple[SecureServer, dict[str, str]], patient: str = PATIENT) -> AuditEntry:
    return server[0].trail().history(patient, limit=1)[0]


def test_a_professional_without_a_card_gets_the_401_page(server: tuple[SecureServer, dict[str, str]]) -> None:
    page = get(browser(server[0]), server, "/AccesDirect/DossierPatient/" + INS)
    assert page.status_code == 401
    assert "carte" in page.text and "Traceback" not in page.text


def test_every_page_renders_for_an_authorized_doctor(server: tuple[SecureServer, dict[str, str]]) -> None:
    doctor, documents = card(server, "doctor"), server[1]
    board = get(doctor, server, "/AccesDirect/TableauDeBord")
    assert board.status_code == 200 and "Mes patients autorisés" in board.text
    assert f"/AccesDirect/DossierPatient/{INS}" in board.text
    found = get(doctor, server, f"/AccesDirect/TableauDeBord?ins={INS}")
    assert (found.status_code, found.headers["location"]) == (303, f"/AccesDirect/TableauDeBord/{INS}")
    existence = get(doctor, server, found.headers["location"])
    assert existence.status_code == 200 and "Consulter le dossier" in existence.text
    assert "ouvert" in existence.text
    patient = get(doctor, server, "/AccesDirect/DossierPatient/" + INS)
    assert patient.status_code == 200 and "Derniers documents" in patient.text
    assert links(patient, documents["cda"]) and "Accès récents" in patient.text
    listing = get(doctor, server, "/AccesDirect/Documents/" + INS)
    assert listing.status_code == 200
    for name in ("report", "later", "biology", "pdf", "cda"):
        assert links(listing, documents[name]), name
    assert not links(listing, documents["masked"])  # masked from professionals: not its author
    cda = get(doctor, server, f"/AccesDirect/Documents/{INS}/{documents['cda']}")
    assert cda.status_code == 200 and '<article class="cda">' in cda.text
    assert "Compte rendu d'anesthésie" in cda.text or "Compte rendu d&#39;anesthésie" in cda.text
    for path, expected in (
        ("/AccesDirect/ParcoursDeSoins/" + INS, "Toute la période"),
        ("/AccesDirect/HistoriqueAcces/" + INS, "Historique des accès"),
        ("/AccesDirect/GestionDMPPatient/" + INS, "Professionnels autorisés"),
        ("/AccesDirect/Parametrages", server[0].pki.identity("doctor").national_id),
    ):
        page = get(doctor, server, path)
        assert page.status_code == 200, (path, page.text)
        assert expected in page.text, path
        assert page.headers["cache-control"] == "no-store"


def test_a_pdf_is_shown_inline_under_its_own_policy_or_downloaded(
    server: tuple[SecureServer, dict[str, str]],
) -> None:
    doctor, unique_id = card(server, "doctor"), server[1]["pdf"]
    page = get(doctor, server, f"/AccesDirect/Documents/{INS}/{unique_id}")
    assert page.status_code == 200 and "Ouvrir le document" in page.text
    shown = get(doctor, server, f"/AccesDirect/Documents/{INS}/{unique_id}/contenu")
    assert shown.status_code == 200 and shown.content == PDF
    assert shown.headers["content-type"] == "application/pdf"
    assert shown.headers["content-disposition"].startswith("inline;")
    # The document's own policy, in place of the pages' (one header, not two).
    assert shown.headers["content-security-policy"].startswith("sandbox; default-src 'none'")
    saved = get(doctor, server, f"/AccesDirect/Documents/{INS}/{unique_id}/contenu?telecharger=1")
    assert saved.headers["content-disposition"].startswith("attachment;") and saved.content == PDF
    # A CDA (XML) is never shown raw: only as a file to save.
    raw = get(doctor, server, f"/AccesDirect/Documents/{INS}/{server[1]['cda']}/contenu")
    assert raw.headers["content-disposition"].startswith("attachment;")
    assert raw.headers["content-type"] == "application/octet-stream"


def test_document_filters(server: tuple[SecureServer, dict[str, str]]) -> None:
    attending, documents = card(server, "doctor2"), server[1]

    def listed(query: str) -> set[str]:
        page = get(attending, server, f"/AccesDirect/Documents/{INS}?{query}")
        assert page.status_code == 200, page.text
        return {name for name, unique_id in documents.items() if links(page, unique_id)}

    assert "masked" in listed("")  # the attending doctor sees a document masked from professionals
    assert listed("masques=sans") == {"report", "later", "biology", "pdf", "cda"}
    assert listed("du=2024-03-15&au=2024-03-31") == {"later", "masked"}
    assert listed("classe=10") == {"biology"}
    assert listed("auteur=899999999999") == {"masked"}
    assert listed("auteur=personne") == set()
    bad = get(attending, server, f"/AccesDirect/Documents/{INS}?du=hier")
    assert bad.status_code == 400 and "date" in bad.text


def test_a_cpe_card_sees_what_its_matrix_cell_allows(server: tuple[SecureServer, dict[str, str]]) -> None:
    secretary = card(server, "secretary")
    page = get(secretary, server, "/AccesDirect/DossierPatient/" + INS)
    assert page.status_code == 200 and "données administratives" in page.text
    assert not links(page, server[1]["report"])
    refused = get(secretary, server, "/AccesDirect/Documents/" + INS)
    assert refused.status_code == 403
    request = soap.adhoc_query(
        v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{PATIENT}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
    )
    soap_answer = server[0].call("registry", request, vihf(server[0].pki, "secretary", PATIENT), card="secretary")
    error = soap_answer.payload.find(f".//{v.TAG_REGISTRY_ERROR}")
    assert error is not None
    cell = error.get("codeContext", "").removeprefix("access refused: ")
    assert "3.1" in cell
    assert reason_of(refused) == cell
    assert "/AccesDirect/TableauDeBord" in refused.text


def reason_of(page: requests.Response) -> str:
    found = re.search(r'<span class="reason">(.*?)</span>', page.text, re.S)
    assert found, page.text
    return unescape(found.group(1))


def test_an_unauthorized_professional_breaks_the_glass_for_the_visit(
    server: tuple[SecureServer, dict[str, str]],
) -> None:
    pharmacist = card(server, "pharmacist")
    confirm = get(pharmacist, server, "/AccesDirect/DossierPatient/" + INS)
    assert confirm.status_code == 403
    assert "Confirmer le consentement du patient" in confirm.text and "Accéder en urgence" in confirm.text
    empty = post(pharmacist, server, f"/AccesDirect/DossierPatient/{INS}/bris-de-glace", csrf=csrf_of(confirm))
    assert empty.status_code == 400  # a reason is required
    moved = post(
        pharmacist,
        server,
        f"/AccesDirect/DossierPatient/{INS}/bris-de-glace",
        csrf=csrf_of(confirm),
        motif="patient inconscient aux urgences",
    )
    assert moved.status_code == 303
    entry = last_trace(server)
    assert entry.emergency and entry.event.access_reason == "patient inconscient aux urgences"
    assert entry.event.actor_id == server[0].pki.identity("pharmacist").national_id
    page = get(pharmacist, server, "/AccesDirect/DossierPatient/" + INS)
    assert page.status_code == 200 and "bris de glace" in page.text
    listing = get(pharmacist, server, "/AccesDirect/Documents/" + INS)
    assert listing.status_code == 200
    entry = last_trace(server)
    assert (entry.event.action, entry.emergency) == (t.SEARCH, True)
    assert entry.event.detail.startswith("EMERGENCY ACCESS")
    # Another visit (a new session) starts without it.
    again = get(card(server, "pharmacist"), server, "/AccesDirect/DossierPatient/" + INS)
    assert again.status_code == 403 and "Accéder en urgence" in again.text


def test_an_unauthorized_professional_confirms_the_patients_consent(
    server: tuple[SecureServer, dict[str, str]],
) -> None:
    author = card(server, "ans-author")
    confirm = get(author, server, "/AccesDirect/DossierPatient/" + INS)
    assert confirm.status_code == 403 and "Confirmer le consentement" in confirm.text
    path = f"/AccesDirect/DossierPatient/{INS}/autorisation"
    forged = post(author, server, path, consentement="oui")  # no CSRF token
    assert forged.status_code == 403
    assert last_trace(server).event.action != t.AUTHORIZATION_SELF
    assert get(author, server, "/AccesDirect/DossierPatient/" + INS).status_code == 403  # nothing changed
    done = post(author, server, path, csrf=csrf_of(confirm), consentement="oui")
    assert done.status_code == 303
    entry = last_trace(server)
    assert (entry.event.action, entry.event.outcome) == (t.AUTHORIZATION_SELF, t.SUCCESS)
    page = get(author, server, "/AccesDirect/DossierPatient/" + INS)
    assert page.status_code == 200 and "Derniers documents" in page.text


def test_the_history_shows_the_attending_doctor_everything_and_others_their_own(
    server: tuple[SecureServer, dict[str, str]],
) -> None:
    get(card(server, "nurse"), server, "/AccesDirect/Documents/" + INS)
    nurse_id = server[0].pki.identity("nurse").national_id
    doctor_id = server[0].pki.identity("doctor").national_id
    attending = get(card(server, "doctor2"), server, "/AccesDirect/HistoriqueAcces/" + INS)
    assert attending.status_code == 200 and "tous les accès" in attending.text
    assert nurse_id in attending.text and doctor_id in attending.text
    own = get(card(server, "doctor"), server, "/AccesDirect/HistoriqueAcces/" + INS)
    assert own.status_code == 200 and "propres accès" in own.text
    assert doctor_id in own.text and nurse_id not in own.text


def test_the_attending_doctor_blocks_a_professional_who_is_then_refused(
    server: tuple[SecureServer, dict[str, str]],
) -> None:
    attending = card(server, "doctor2")
    page = get(attending, server, "/AccesDirect/GestionDMPPatient/" + INS)
    assert page.status_code == 200 and "Bloquer" in page.text
    nurse_id = server[0].pki.identity("nurse").national_id
    path = f"/AccesDirect/GestionDMPPatient/{INS}/blocage"
    assert post(attending, server, path, professionnel=nurse_id, csrf="forged").status_code == 403
    assert get(card(server, "nurse"), server, "/AccesDirect/Documents/" + INS).status_code == 200  # unchanged
    done = post(attending, server, path, professionnel=nurse_id, csrf=csrf_of(page))
    assert done.status_code == 303
    refused = get(card(server, "nurse"), server, "/AccesDirect/Documents/" + INS)
    assert refused.status_code == 403 and BLOCKED_REASON in reason_of(refused)
    assert "/AccesDirect/TableauDeBord" in refused.text
    entry = last_trace(server)
    assert (entry.event.action, entry.event.outcome, entry.event.actor_id) == (t.SEARCH, t.DENIED, nurse_id)


def test_another_patients_record_is_refused_and_traced(server: tuple[SecureServer, dict[str, str]]) -> None:
    nurse_id = server[0].pki.identity("nurse").national_id
    refused = get(card(server, "nurse"), server, "/AccesDirect/ParcoursDeSoins/" + OTHER.split("^")[0])
    assert refused.status_code == 403
    entry = last_trace(server, OTHER)
    assert (entry.event.outcome, entry.event.actor_id) == (t.DENIED, nurse_id)


def test_a_closed_or_absent_dmp_is_an_error_with_a_link_to_the_dashboard(
    server: tuple[SecureServer, dict[str, str]],
) -> None:
    doctor, closing = card(server, "doctor"), CLOSING.split("^")[0]
    management = get(doctor, server, "/AccesDirect/GestionDMPPatient/" + closing)
    assert management.status_code == 200 and "Fermer le DMP" in management.text
    path = f"/AccesDirect/GestionDMPPatient/{closing}/fermeture"
    assert post(doctor, server, path, csrf=csrf_of(management)).status_code == 400  # no reason
    assert post(doctor, server, path, csrf=csrf_of(management), motif="décès").status_code == 303
    entry = last_trace(server, CLOSING)
    assert (entry.event.action, entry.event.outcome) == (t.DMP_CLOSE, t.SUCCESS)
    closed = get(doctor, server, "/AccesDirect/Documents/" + closing)
    assert closed.status_code == 409
    assert f'href="/AccesDirect/TableauDeBord/{closing}"' in closed.text
    existence = get(doctor, server, "/AccesDirect/TableauDeBord/" + closing)
    assert existence.status_code == 200 and "fermé" in existence.text and "Réactiver le DMP" in existence.text
    reactivate = f"/AccesDirect/GestionDMPPatient/{closing}/reactivation"
    assert post(doctor, server, reactivate, csrf=csrf_of(existence)).status_code == 400  # no consent
    assert post(doctor, server, reactivate, csrf=csrf_of(existence), consentement="oui").status_code == 303
    entry = last_trace(server, CLOSING)
    assert (entry.event.action, entry.event.outcome) == (t.DMP_REOPEN, t.SUCCESS)
    assert get(doctor, server, "/AccesDirect/Documents/" + closing).status_code == 200
    assert post(doctor, server, path, csrf=csrf_of(existence), motif="décès").status_code == 303  # closed again
    absent = get(doctor, server, "/AccesDirect/DossierPatient/" + ABSENT)
    assert absent.status_code == 404 and 'href="/AccesDirect/TableauDeBord"' in absent.text
    none = get(doctor, server, "/AccesDirect/TableauDeBord/" + ABSENT)
    assert none.status_code == 200 and "n'a pas de DMP" in none.text.replace("&#39;", "'")
    malformed = get(doctor, server, "/AccesDirect/TableauDeBord?ins=12ab")
    assert malformed.status_code == 400


def test_the_care_pathway_zooms_from_years_to_a_day(server: tuple[SecureServer, dict[str, str]]) -> None:
    doctor, documents = card(server, "doctor"), server[1]
    base = "/AccesDirect/ParcoursDeSoins/" + INS
    years = get(doctor, server, base)
    assert years.status_code == 200 and "zoom=year&amp;periode=2024" in years.text
    chart = re.search(r'<img src="data:image/svg\+xml;base64,([^"]+)"', years.text)
    assert chart, years.text
    svg = base64.b64decode(chart.group(1))
    assert b"<svg" in svg and b"<script" not in svg
    months = get(doctor, server, base + "?zoom=year&periode=2024")
    assert months.status_code == 200 and "mars 2024" in months.text and "zoom=month&amp;periode=2024-03" in months.text
    days = get(doctor, server, base + "?zoom=month&periode=2024-03")
    assert days.status_code == 200 and "zoom=day&amp;periode=2024-03-12" in days.text
    day = get(doctor, server, base + "?zoom=day&periode=2024-03-12")
    assert day.status_code == 200 and links(day, documents["report"]) and not links(day, documents["later"])
    assert get(doctor, server, base + "?zoom=year&periode=deux").status_code == 400
    assert get(doctor, server, base + "?zoom=siecle").status_code == 400
