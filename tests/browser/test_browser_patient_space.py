"""The patient's space in a real Chromium, against a server running the CI-SIS profile (which
requires the XAdES signature of every submission but the patient's own web ones): the patient
signs in with the code the test SMTP server receives, hides a document that a professional's
card then no longer finds over SOAP, blocks a professional who is then refused, and uploads a
document that an authorized professional finds over SOAP with the patient as its author. The
main pages are photographed (into docs/screenshots/ when DMP_XDS_SCREENSHOTS says so: docs/web.md
shows them)."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from lxml import etree
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

import soap_messages as soap
from browsers import screenshot, wait_for
from dmp_xds.dmp.ins import nir_with_key
from dmp_xds.security import vocabulary as sv
from dmp_xds.security.pki import GeneratedPki
from dmp_xds.xds import vocabulary as v
from factories import ANS_KIT, ans_example, new_uuid
from secure_server import SecureServer, patient_with_account, start_secure_server, stop_secure_server, vihf
from smtp_relay import SmtpRelay

# The CI-SIS profile checks an INS's form: a NIR of 13 digits and its key, under the test root.
INS = nir_with_key("2840599123456")
PATIENT = f"{INS}^^^&1.2.250.1.213.1.4.10&ISO"
EMAIL = "patient@example.org"
LOGIN, PASSWORD = "patient01", "un mot de passe du patient"
# The screenshots go in the test's own folder, or under DMP_XDS_SCREENSHOTS when set
# (`docs/screenshots` refreshes the documentation's): a test run leaves the checkout as it was.
SCREENSHOTS = Path(os.environ.get("DMP_XDS_SCREENSHOTS") or tempfile.mkdtemp(prefix="dmp-xds-shots-"))
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
WAIT_SECONDS = 15.0


@pytest.fixture(scope="module")
def server(
    browser_pki: GeneratedPki, relay: SmtpRelay, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureServer]:
    """As the harness's browser_server (the CI-SIS profile), with e-mail through the relay, the
    patient's web account, and Dr MARTIN ("doctor") and Dr DURAND ("doctor2") authorized."""
    running = start_secure_server(
        tmp_path_factory.mktemp("patient-space-browser"),
        browser_pki,
        tls=True,
        extra={
            "DMP_XDS_PROFILE": "cisis",
            "DMP_XDS_VALUE_SETS": str(ANS_KIT / "jeuxDeValeurs"),
            "DMP_XDS_CDA_SCHEMA": str(ANS_KIT / "infrastructure" / "cda" / "CDA_extended.xsd"),
            "DMP_XDS_SCHEMATRONS": "",
            "DMP_XDS_NOTIFY_SMTP": f"smtp://127.0.0.1:{relay.port}",
            "DMP_XDS_NOTIFY_FROM": "dmp@test.example",
        },
    )
    try:
        running.cli("dmp", "create", PATIENT, "--collected-by", "accueil")
        for card in ("doctor", "doctor2"):
            running.cli("dmp", "grant", PATIENT, browser_pki.identity(card).national_id)
        patient_with_account(running.engine_url(), PATIENT, LOGIN, PASSWORD, EMAIL)
        yield running
    finally:
        stop_secure_server(running)


def find_documents(server: SecureServer, pki: GeneratedPki, card: str, **claims: str) -> tuple[int, str]:
    """ITI-18 FindDocuments of the professional `card` (their VIHF): status and response."""
    response = server.call(
        "registry",
        soap.adhoc_query(
            v.SQ_FIND_DOCUMENTS, {v.P_DE_PATIENT_ID: [f"'{PATIENT}'"], v.P_DE_STATUS: [f"('{v.STATUS_APPROVED}')"]}
        ),
        vihf(pki, card, PATIENT, **claims),
        card=card,
    )
    return response.status_code, etree.tostring(response.payload).decode() if response.status_code == 200 else ""


def emailed_code(relay: SmtpRelay, count_before: int) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    while len(relay.messages) <= count_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(relay.messages) > count_before, "no code e-mailed"
    body = message_from_bytes(relay.messages[-1], policy=policy.default).get_content()
    found = re.search(r"\b(\d{6})\b", body)
    assert found, body
    return found.group(1)


def sign_in(driver: WebDriver, server: SecureServer, relay: SmtpRelay) -> None:
    driver.get(server.url + "/patient/connexion")
    wait_for(driver, "#login").send_keys(LOGIN)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    before = len(relay.messages)
    driver.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    code = emailed_code(relay, before)
    wait_for(driver, "#code").send_keys(code)
    driver.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    WebDriverWait(driver, WAIT_SECONDS).until(expected_conditions.url_to_be(server.url + "/patient/"))
    assert wait_for(driver, "main h1").text.startswith("Bonjour")


def click(driver: WebDriver, text: str) -> None:
    """Press the button (or follow the link) of the main content that says `text`."""
    for element in driver.find_elements(By.CSS_SELECTOR, "main button, main a"):
        if element.text.strip() == text:
            element.click()
            return
    raise AssertionError(f"nothing says {text!r} on {driver.current_url}")


def shot(driver: WebDriver, name: str) -> None:
    path = screenshot(driver, SCREENSHOTS / f"patient-{name}.png")
    assert 5_000 < path.stat().st_size < 1_500_000, path


def main_text(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "main").text)


def test_the_patients_space_in_chromium(
    patient_browser: WebDriver, server: SecureServer, relay: SmtpRelay, browser_pki: GeneratedPki
) -> None:
    driver = patient_browser
    driver.set_window_size(1280, 900)
    cda = (
        server.store_document(
            f"cda-{new_uuid()[9:17]}",
            PATIENT,
            author="812345678901",
            content=ans_example("ANEST-CR-ANEST_2022.01.xml"),
            mime_type="text/xml",
        )
        .documents[0]
        .unique_id
    )
    to_hide = server.store_document(f"hide-{new_uuid()[9:17]}", PATIENT, author="812345678901").documents[0].unique_id
    # A break-glass access the history flags and the home page announces.
    status, _ = find_documents(
        server, browser_pki, "pharmacist", access_mode=sv.ACCESS_EMERGENCY, access_reason="patient inconscient"
    )
    assert status == 200

    sign_in(driver, server, relay)
    assert "1 accès en urgence" in driver.find_element(By.TAG_NAME, "main").text
    shot(driver, "home")

    # Hide a document: Dr MARTIN's card no longer finds it over SOAP.
    status, found = find_documents(server, browser_pki, "doctor")
    assert status == 200 and to_hide in found
    driver.get(f"{server.url}/patient/{INS}/documents")
    shot(driver, "documents")
    driver.set_window_size(390, 844)
    # On a phone the rows are cards, and nothing is wider than the screen.
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    driver.execute_script("document.querySelector('table caption').scrollIntoView()")
    screenshot(driver, SCREENSHOTS / "patient-documents-phone.png")
    driver.set_window_size(1280, 900)
    driver.find_element(By.CSS_SELECTOR, f'a[href="/patient/{INS}/documents/{to_hide}"]').click()
    click(driver, "Masquer aux professionnels")
    assert "masqué aux professionnels" in wait_for(driver, "p.message.ok").text
    status, found = find_documents(server, browser_pki, "doctor")
    assert status == 200 and to_hide not in found

    # The CDA rendered in the page: its sections, no script.
    driver.get(f"{server.url}/patient/{INS}/documents/{cda}")
    assert wait_for(driver, "article.cda h2").text == "Compte rendu d'anesthésie"
    assert driver.execute_script("return document.scripts.length") == 0
    shot(driver, "cda")

    # The history: the emergency access flagged in words, the notification acknowledged.
    driver.get(f"{server.url}/patient/{INS}/historique")
    assert "Accès en urgence" in wait_for(driver, "tr.emergency").text
    shot(driver, "history")
    click(driver, "J'ai pris connaissance de cet accès")
    assert "marquée comme lue" in wait_for(driver, "p.message.ok").text

    # Block Dr DURAND: his card is refused over SOAP.
    assert find_documents(server, browser_pki, "doctor2")[0] == 200
    driver.get(f"{server.url}/patient/{INS}/acces")
    shot(driver, "access")
    doctor2 = browser_pki.identity("doctor2").national_id
    driver.find_element(By.ID, "bloquer-id").send_keys(doctor2)
    driver.find_element(By.CSS_SELECTOR, 'form[action$="/acces/blocage"].stack button').click()
    assert "est bloqué" in wait_for(driver, "p.message.ok").text
    status, _ = find_documents(server, browser_pki, "doctor2")
    assert status != 200

    # Upload a PDF (no XAdES signature: the patient's own web submission is exempt under the
    # CI-SIS profile): Dr MARTIN finds it over SOAP, with the patient as its author.
    driver.get(f"{server.url}/patient/{INS}/ajouts")
    shot(driver, "additions")
    upload = Path(driver.capabilities.get("chrome", {}).get("userDataDir", "/tmp")) / "ordonnance.pdf"
    upload.write_bytes(PDF)
    driver.find_element(By.ID, "fichier").send_keys(str(upload))
    driver.find_element(By.ID, "titre").send_keys("Mon ordonnance")
    driver.find_element(By.CSS_SELECTOR, "#type option[value=DOCPAT02]").click()
    click(driver, "Ajouter le document")
    try:
        WebDriverWait(driver, WAIT_SECONDS).until(expected_conditions.url_contains("/documents/"))
    except Exception:
        raise AssertionError(main_text(driver)) from None
    assert "ajouté à votre dossier" in wait_for(driver, "p.message.ok").text
    unique_id = driver.current_url.split("/documents/")[1].split("?")[0]
    status, found = find_documents(server, browser_pki, "doctor")
    assert status == 200 and unique_id in found
    entry = next(
        e
        for e in etree.fromstring(found.encode()).iter(v.TAG_EXTRINSIC_OBJECT)
        if unique_id in etree.tostring(e).decode()
    )
    authors = [
        value.text or ""
        for slot in entry.iter(v.TAG_SLOT)
        if slot.get("name") == v.SLOT_AUTHOR_PERSON
        for value in slot.iter(v.TAG_VALUE)
    ]
    assert authors and all(a.startswith(f"{INS}^") for a in authors), authors  # the patient is the author
    # The PDF opened on its own, under its sandboxing policy: Chromium's viewer shows it.
    driver.get(f"{server.url}/patient/{INS}/documents/{unique_id}/contenu")
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: "pdf_embedder" in d.page_source)  # the viewer's page
