"""The professionals' site in a real Chromium presenting Dr MARIE MARTIN's card: the dashboard's
search by INS, the patient's page, the documents and a CDA rendered, the care pathway zoomed to a
year and a month, the access history, a break-glass form. The main pages are saved as pro-*.png
(1280x900) in the test's folder, or under DMP_XDS_SCREENSHOTS when set (`docs/screenshots`
refreshes the pictures docs/professional-site.md shows)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

import soap_messages as soap
from browsers import CardBrowser, navigating, screenshot, wait_for
from dmp_xds.dmp.model import Consent, Demographics
from dmp_xds.security.pki import GeneratedPki
from dmp_xds.services.establishment_stats import MONTHS_FR
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.records import DmpStore
from dmp_xds.xds.model import LocalizedString
from factories import ans_example, make_code, make_document_entry, make_submission, make_submission_set, new_unique_id
from secure_server import PATIENT, SecureServer, start_secure_server, stop_secure_server, vihf

INS = PATIENT.split("^", 1)[0]
CLASS_SCHEME = "1.2.250.1.213.1.1.4.1"
# (title, date, class, type code, type display, MIME type)
DOCUMENTS = (
    ("Bilan sanguin", "20220614083000", "10", "11502-2", "CR d'examens biologiques", "text/plain"),
    ("Radiographie du thorax", "20230117101500", "31", "18748-4", "CR d'imagerie médicale", "text/plain"),
    ("Consultation de cardiologie", "20240305093000", "10", "11488-4", "CR de consultation", "text/plain"),
    ("Bilan sanguin de contrôle", "20240312080000", "10", "11502-2", "CR d'examens biologiques", "text/plain"),
    ("Ordonnance", "20240312091500", "42", "57833-6", "Prescription de médicaments", "text/plain"),
    ("Compte rendu d'anesthésie", "20240320140000", "10", "34749-2", "CR d'anesthésie", "text/xml"),
    ("Synthèse médicale", "20241002110000", "11", "60591-5", "Synthèse", "text/plain"),
)


@pytest.fixture(scope="module")
def pro_server(browser_pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    """A secured server over TLS whose patient has documents over three years, published by ITI-41
    with Dr MARTIN's card and VIHF; she is authorized on the record."""
    server = start_secure_server(tmp_path_factory.mktemp("pro-browser"), browser_pki, tls=True)
    try:
        doctor = browser_pki.identity("doctor").national_id
        # The record with the patient's administrative data, as an LPS creates it (TD1.1): the
        # operator's `dmp create` has none to give.
        engine = create_engine_for(server.engine_url())
        try:
            DmpStore(engine).create(
                PATIENT,
                Consent(doctor, dt.datetime.now(dt.UTC)),
                Demographics(usage_name="DUPONT", given_names=("Marie",), gender="F", birth_date="19840512"),
            )
        finally:
            engine.dispose()
        server.cli("dmp", "grant", PATIENT, doctor)
        for title, date, klass, type_code, type_display, mime in DOCUMENTS:
            entry = make_document_entry(
                patient_id=PATIENT,
                unique_id=new_unique_id(),
                title=[LocalizedString(title, "fr-FR", "UTF-8")],
                service_start_time=date,
                service_stop_time=None,
                creation_time=date,
                class_code=make_code(klass, CLASS_SCHEME, klass),
                type_code=make_code(type_code, display=type_display),
                mime_type=mime,
                hash=None,
                size=None,
                repository_unique_id=None,
            )
            content = ans_example("ANEST-CR-ANEST_2022.01.xml") if mime == "text/xml" else title.encode()
            submission = make_submission(
                1, submission_set=make_submission_set(patient_id=PATIENT, unique_id=new_unique_id()), documents=[entry]
            )
            response = server.call(
                "repository",
                soap.provide_and_register(submission, {entry.entry_uuid: content}, mtom=False),
                vihf(browser_pki, "doctor", PATIENT),
            )
            assert response.status == "Success", response.fault_reason
        yield server
    finally:
        stop_secure_server(server)


def professional(open_card_browser: CardBrowser, card: str, server: SecureServer) -> WebDriver:
    driver = open_card_browser(card, server.url)
    # The page itself 1280x900 (the window's 900 include the headless browser's own bars).
    driver.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    )
    return driver


@pytest.fixture
def doctor(open_card_browser: CardBrowser, pro_server: SecureServer) -> WebDriver:
    return professional(open_card_browser, "doctor", pro_server)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("DMP_XDS_SCREENSHOTS") or tmp_path)


def click(driver: WebDriver, text: str) -> None:
    """Follow the link that says `text`, and wait for its page."""
    with navigating(driver):
        driver.find_element(By.LINK_TEXT, text).click()


def test_the_dashboard_finds_a_dmp_by_ins(doctor: WebDriver, pro_server: SecureServer, shots: Path) -> None:
    doctor.get(pro_server.url + "/AccesDirect/TableauDeBord")
    assert wait_for(doctor, "h1").text == "Tableau de bord"
    assert "DUPONT Marie" in doctor.find_element(By.TAG_NAME, "main").text
    screenshot(doctor, shots / "pro-tableau-de-bord.png")
    field = doctor.find_element(By.ID, "ins")
    field.send_keys(INS)
    field.submit()
    assert wait_for(doctor, "h1").text == "Test d'existence du DMP"
    assert doctor.current_url.endswith(f"/AccesDirect/TableauDeBord/{INS}")
    facts = doctor.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert "ouvert" in facts and "valide" in facts
    click(doctor, "Consulter le dossier")
    assert wait_for(doctor, "h1").text == "Dossier patient"
    assert "Compte rendu d'anesthésie" in doctor.find_element(By.TAG_NAME, "main").text
    screenshot(doctor, shots / "pro-dossier-patient.png")


def test_a_professional_opens_the_timeline_and_zooms_to_a_year_and_a_month(
    doctor: WebDriver, pro_server: SecureServer, shots: Path
) -> None:
    doctor.get(f"{pro_server.url}/AccesDirect/DossierPatient/{INS}")
    wait_for(doctor, "nav.tabs")
    click(doctor, "Parcours de soins")
    assert wait_for(doctor, "h1").text == "Parcours de soins"
    headers = [th.text for th in doctor.find_elements(By.CSS_SELECTOR, "table.timeline thead th")]
    assert headers == ["Classe", "2022", "2023", "2024"]
    rows = [th.text for th in doctor.find_elements(By.CSS_SELECTOR, "table.timeline tbody th")]
    assert "Compte rendu" in rows and "Prescription" in rows
    chart = doctor.find_element(By.CSS_SELECTOR, "figure.chart img")
    assert chart.get_attribute("src").startswith("data:image/svg+xml;base64,")
    assert doctor.execute_script("return arguments[0].naturalWidth", chart) > 0  # the SVG was drawn
    screenshot(doctor, shots / "pro-parcours-de-soins.png")
    click(doctor, "2024")
    assert "2024, par mois" in wait_for(doctor, "nav.crumbs").text
    headers = [th.text for th in doctor.find_elements(By.CSS_SELECTOR, "table.timeline thead th")]
    assert headers[1:] == [f"{m} 2024" for m in MONTHS_FR]
    click(doctor, "mars 2024")
    assert "mars 2024, par jour" in wait_for(doctor, "nav.crumbs").text
    days = [th.text for th in doctor.find_elements(By.CSS_SELECTOR, "table.timeline thead th")][1:]
    assert days == ["5", "12", "20"]  # the days of March with documents
    screenshot(doctor, shots / "pro-parcours-de-soins-mois.png")
    click(doctor, "12")
    day = wait_for(doctor, "main").text
    assert "Bilan sanguin de contrôle" in day and "Ordonnance" in day and "Consultation de cardiologie" not in day
    click(doctor, "Toute la période")
    assert "Toute la période, par année" in wait_for(doctor, "nav.crumbs").text


def test_documents_a_rendered_cda_and_the_history(doctor: WebDriver, pro_server: SecureServer, shots: Path) -> None:
    doctor.get(f"{pro_server.url}/AccesDirect/Documents/{INS}")
    assert wait_for(doctor, "h1").text == "Documents"
    assert len(doctor.find_elements(By.CSS_SELECTOR, "main table tbody tr")) == len(DOCUMENTS)
    screenshot(doctor, shots / "pro-documents.png")
    click(doctor, "Compte rendu d'anesthésie")
    assert wait_for(doctor, "article.cda h2").text == "Compte rendu d'anesthésie"
    assert doctor.execute_script("return document.scripts.length") == 0
    screenshot(doctor, shots / "pro-document-cda.png")
    click(doctor, "Historique des accès")
    assert wait_for(doctor, "h1").text == "Historique des accès"
    assert "consultation d'un document" in doctor.find_element(By.TAG_NAME, "main").text
    screenshot(doctor, shots / "pro-historique-acces.png")


def test_the_pages_fit_a_phone(doctor: WebDriver, pro_server: SecureServer) -> None:
    """375 px wide: no page scrolls sideways (wide tables scroll inside their own box)."""
    doctor.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Emulation.setDeviceMetricsOverride", {"width": 375, "height": 800, "deviceScaleFactor": 1, "mobile": True}
    )
    for path in (
        "/AccesDirect/TableauDeBord",
        f"/AccesDirect/DossierPatient/{INS}",
        f"/AccesDirect/Documents/{INS}",
        f"/AccesDirect/ParcoursDeSoins/{INS}?zoom=year&periode=2024",
        f"/AccesDirect/HistoriqueAcces/{INS}",
        f"/AccesDirect/GestionDMPPatient/{INS}",
        "/AccesDirect/Parametrages",
    ):
        doctor.get(pro_server.url + path)
        wait_for(doctor, "h1")
        width = doctor.execute_script("return document.documentElement.scrollWidth")
        assert width <= 375, (path, width)


def test_an_unauthorized_pharmacist_breaks_the_glass_with_a_reason(
    open_card_browser: CardBrowser, pro_server: SecureServer, shots: Path
) -> None:
    """The confirmation page's POST form, as Chromium sends it (its Origin, the CSRF token): the
    patient's page opens in break-glass, and stays so for the visit."""
    pharmacist = professional(open_card_browser, "pharmacist", pro_server)
    pharmacist.get(f"{pro_server.url}/AccesDirect/DossierPatient/{INS}")
    assert wait_for(pharmacist, "h1").text == "Accès au DMP à confirmer"
    screenshot(pharmacist, shots / "pro-confirmation.png")
    reason = pharmacist.find_element(By.ID, "motif")
    reason.send_keys("patient inconscient aux urgences")
    with navigating(pharmacist):
        reason.submit()
    assert wait_for(pharmacist, "h1").text == "Dossier patient", pharmacist.find_element(By.TAG_NAME, "main").text
    assert "bris de glace" in pharmacist.find_element(By.CSS_SELECTOR, ".message.warning").text
    click(pharmacist, "Documents")
    assert wait_for(pharmacist, "h1").text == "Documents"
    assert pharmacist.find_elements(By.CSS_SELECTOR, ".message.warning")  # still in break-glass
