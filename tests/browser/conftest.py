"""Fixtures of the real-browser tests (marker `browser`): a secured dmp-xds server over TLS with
the test PKI and the CI-SIS profile, and headless Chromium browsers, without a card (a patient)
or presenting a test-PKI card (a professional).

Every browser has its own throwaway HOME and profile and is quit by its fixture; the server is
stopped by its own. When Chromium, chromedriver or the NSS tools are missing, or the managed
policy a card needs cannot be written, the tests skip with the reason, except under CI (CI=true),
where they fail: CI must never pass by skipping them (`make test` installs the packages).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import NoReturn

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from browsers import (
    BrowserUnavailable,
    CardBrowser,
    auto_select_certificate,
    in_ci,
    missing_tools,
    nss_database,
    start_chromium,
)
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from factories import ANS_KIT
from secure_server import SecureServer, start_secure_server, stop_secure_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


def unavailable(reason: str) -> NoReturn:
    """Skip locally, fail under CI: a browser test is never silently not run there."""
    if in_ci():
        pytest.fail(f"real browser unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"real browser unavailable: {reason}")


@pytest.fixture(scope="session")
def chromium() -> None:
    """Chromium, chromedriver and the NSS tools are here (else skip, or fail under CI)."""
    missing = missing_tools()
    if missing:
        unavailable(f"missing {', '.join(missing)} (make test installs them: .ci/install-chromium)")


@pytest.fixture(scope="module")
def browser_pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("browser-pki"))


@pytest.fixture(scope="module")
def browser_server(browser_pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    """dmp-xds as `make serve` runs it: HTTPS with client certificates, VIHF, the CI-SIS profile
    (the kit's schematrons off: 8 s of start-up that no page needs), on SQLite."""
    assert (ANS_KIT / "jeuxDeValeurs").is_dir(), f"the ANS kit is missing at {ANS_KIT} (DMP_XDS_ANS_TESTCONTENUCDA)"
    server = start_secure_server(
        tmp_path_factory.mktemp("browser-server"),
        browser_pki,
        tls=True,
        extra={
            "DMP_XDS_PROFILE": "cisis",
            "DMP_XDS_VALUE_SETS": str(ANS_KIT / "jeuxDeValeurs"),
            "DMP_XDS_CDA_SCHEMA": str(ANS_KIT / "infrastructure" / "cda" / "CDA_extended.xsd"),
            "DMP_XDS_SCHEMATRONS": "",
        },
    )
    try:
        yield server
    finally:
        stop_secure_server(server)


def _start(home: Path) -> WebDriver:
    try:
        return start_chromium(home)
    except BrowserUnavailable as exc:
        unavailable(str(exc))


@pytest.fixture
def patient_browser(chromium: None, browser_pki: GeneratedPki, tmp_path: Path) -> Iterator[WebDriver]:
    """A browser without any card, as a patient's at home: it trusts the test PKI's root (the
    server's certificate), and has no client certificate to present."""
    home = tmp_path / "patient-home"
    try:
        nss_database(home, browser_pki)
    except BrowserUnavailable as exc:
        unavailable(str(exc))
    driver = _start(home)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def open_card_browser(chromium: None, browser_pki: GeneratedPki, tmp_path: Path) -> Iterator[CardBrowser]:
    """`open_card_browser(card, origin)`: a browser presenting the PKI identity `card` (a name of
    identities.json: "doctor", "pharmacist", an establishment...) to `origin`
    (https://127.0.0.1:PORT) without asking, and trusting the PKI's root. Each call is a new
    browser with a new HOME; all are quit, and the policy removed, after the test."""
    with ExitStack() as cleanup:
        count = 0

        def open_browser(card: str, origin: str) -> WebDriver:
            nonlocal count
            count += 1
            home = tmp_path / f"card-home-{count}-{card}"
            try:
                nss_database(home, browser_pki, card)
                cleanup.enter_context(auto_select_certificate(origin))
            except BrowserUnavailable as exc:
                unavailable(str(exc))
            driver = _start(home)
            cleanup.callback(driver.quit)  # before the policy goes: exits run last in, first out
            return driver

        yield open_browser


@pytest.fixture
def card_browser(open_card_browser: CardBrowser, browser_server: SecureServer) -> WebDriver:
    """A browser presenting Dr MARIE MARTIN's card ("doctor") to the module's dmp-xds server."""
    return open_card_browser("doctor", browser_server.url)
