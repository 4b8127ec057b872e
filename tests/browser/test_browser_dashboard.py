"""The establishment dashboard in a real browser: after real activity (a hospital's doctor
publishes, has two submissions refused...), the hospital's DMP team signs in with the structure's
organisation certificate (in the browser's NSS database, as a smart card's middleware or an
installed certificate would be), sees the month's publications and the refused submission with
its rule, and the CSV behind the page's link gives the same figures.

Screenshots of the page (desktop 1280x900 and a phone's width) are written under the test's
folder, or under DMP_XDS_SCREENSHOTS when set (`docs/screenshots` refreshes the documentation's).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from browsers import WAIT_SECONDS, CardBrowser, screenshot, wait_for
from dashboard_activity import Activity, act
from dmp_xds.security.pki import GeneratedPki
from dmp_xds.services import establishment_stats as es
from secure_server import SecureServer, start_secure_server, stop_secure_server

DESKTOP = (1280, 900)
PHONE = (390, 844)


@pytest.fixture(scope="module")
def activity(browser_pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Activity]:
    """The IHE profile: the activity's documents are the test factories', not CI-SIS CDAs."""
    server = start_secure_server(tmp_path_factory.mktemp("dashboard-browser"), browser_pki, tls=True)
    try:
        yield act(server, browser_pki)
    finally:
        stop_secure_server(server)


def shots_dir(tmp_path: Path) -> Path:
    return Path(os.environ.get("DMP_XDS_SCREENSHOTS") or tmp_path)


def table_rows(driver: WebDriver, name: str) -> list[list[str]]:
    table = driver.find_element(By.ID, f"tableau-{name}")
    return [
        [cell.get_attribute("textContent").strip() for cell in row.find_elements(By.CSS_SELECTOR, "th, td")]
        for row in table.find_elements(By.TAG_NAME, "tr")
    ]


def shot(driver: WebDriver, path: Path) -> Path:
    """A screenshot once the page has painted what was just scrolled into view (two frames): a
    loaded machine may otherwise capture a half-drawn page."""
    driver.execute_async_script(
        "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done()))"
    )
    return screenshot(driver, path)


def session_of(driver: WebDriver, server: SecureServer) -> requests.Session:
    """A client with the browser's cookies: the link's CSV as the browser downloads it."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(server.pki.anchors)
    for cookie in driver.get_cookies():
        session.cookies.set(cookie["name"], cookie["value"])
    return session


def test_the_dashboard_shows_the_months_publications_and_a_refusal_with_its_rule(
    activity: Activity, open_card_browser: CardBrowser, tmp_path: Path
) -> None:
    server = activity.server
    driver = open_card_browser("hospital", server.url)
    driver.set_window_size(*DESKTOP)
    driver.get(server.url + "/etablissement/connexion")
    button = wait_for(driver, "form[action='/etablissement/connexion/certificat'] button")
    button.click()
    WebDriverWait(driver, WAIT_SECONDS).until(expected_conditions.staleness_of(button))
    assert "Tableau de bord de la structure 1990000017" in wait_for(driver, "h1").text, driver.find_element(
        By.TAG_NAME, "main"
    ).text
    figures = dict(table_rows(driver, "activite")[1:])
    assert figures["Documents publiés"] == "3" and figures["Envois refusés"] == "2"
    # The refused submissions of the day: who, which document, which rule.
    refusals = driver.find_element(By.CSS_SELECTOR, "ol.refusals").text
    assert activity.refused_document in refusals and activity.mismatched_document in refusals
    assert "differs from the document's SHA-1" in refusals
    assert server.pki.identity("doctor").national_id in refusals
    # The charts are drawn with their own style sheet (the CSP allows no inline style): the bars
    # are filled with the chart's colour, not the default black.
    bar = driver.find_element(By.CSS_SELECTOR, "#chart-publications .rect.reactive")
    assert driver.execute_script("return getComputedStyle(arguments[0]).fill", bar) == "rgb(0, 0, 145)"
    assert driver.execute_script("return document.querySelectorAll('svg[role=img] title').length") >= 2

    # Each CSV behind its link gives the page's figures back.
    client = session_of(driver, server)
    links = driver.find_elements(By.CSS_SELECTOR, "p.export a")
    assert len(links) == len(es.TABLE_NAMES)
    for link in links:
        name = link.get_attribute("href").split("/")[-1].split(".csv")[0]
        download = client.get(link.get_attribute("href"), timeout=30)
        assert download.status_code == 200 and download.headers["Content-Disposition"].startswith("attachment")
        assert es.read_csv(download.content.decode("utf-8")) == table_rows(driver, name), name

    no_sideways_scrolling = "return document.documentElement.scrollWidth <= window.innerWidth"
    assert driver.execute_script(no_sideways_scrolling)
    shots = shots_dir(tmp_path)
    assert shot(driver, shots / "dashboard-desktop.png").stat().st_size > 10_000
    driver.execute_script("document.getElementById('serie-titre').scrollIntoView()")
    assert shot(driver, shots / "dashboard-charts.png").stat().st_size > 10_000
    driver.execute_script("document.getElementById('jour-titre').scrollIntoView()")
    assert shot(driver, shots / "dashboard-refusals.png").stat().st_size > 10_000
    driver.set_window_size(*PHONE)
    driver.execute_script("window.scrollTo(0, 0)")
    # No sideways scrolling of the page on a phone: wide tables scroll inside their own region.
    assert driver.execute_script(no_sideways_scrolling)
    assert shot(driver, shots / "dashboard-phone.png").stat().st_size > 10_000
