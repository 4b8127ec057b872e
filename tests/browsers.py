"""A real browser for the tests: Debian's headless Chromium driven by Selenium 4, with nothing
downloaded at run time (explicit binary and driver paths) and nothing reaching out (background
networking off), each browser in a fresh throwaway HOME and profile.

A professional's browser presents a test-PKI card the way a real one does: the card and its
chain in the NSS database of that HOME (Chromium on Linux reads `$HOME/.pki/nssdb`), the test
root trusted there, and a managed policy (`AutoSelectCertificateForUrls`) that picks the
certificate without the dialog a headless browser could not answer. The policy directory is the
machine's (`/etc/chromium/policies/managed`), so several test sessions may share it: its file is
changed under a lock and each session adds and removes only its own origins.

The fixtures are in tests/browser/conftest.py; docs/testing.md says how to use them.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, load_pem_private_key, pkcs12
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from dmp_xds.security.cps import load_pem_certificates
from dmp_xds.security.pki import GeneratedPki

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CERTUTIL, PK12UTIL = "certutil", "pk12util"  # Debian's libnss3-tools
POLICY_DIR = Path("/etc/chromium/policies/managed")
POLICY_FILE = POLICY_DIR / "dmp-xds-tests.json"
POLICY_LOCK = Path(tempfile.gettempdir()) / "dmp-xds-chromium-policy.lock"
LOCK_SECONDS = 20.0
PAGE_LOAD_SECONDS = 30.0
WAIT_SECONDS = 10.0
TOOL_SECONDS = 30.0
P12_PASSWORD = "dmp-xds-tests"  # the PKCS#12 only travels from this process to pk12util

CardBrowser = Callable[[str, str], WebDriver]  # (card, origin) -> a browser presenting that card there

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root (CI) cannot use Chromium's sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--lang=fr-FR",
    # Nothing leaves the machine: no component or safe-browsing updates, metrics, sync,
    # translation, field trials, DNS prefetch or first-run calls.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--disable-field-trial-config",
    "--metrics-recording-only",
    "--safebrowsing-disable-auto-update",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-pings",
    "--password-store=basic",
    "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
)


class BrowserUnavailable(RuntimeError):
    """What this machine lacks to run a real browser, said in a sentence."""


def missing_tools() -> list[str]:
    """The programs a browser test needs and this machine lacks (`make test` installs them:
    .ci/install-chromium)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    return missing + [tool for tool in (CERTUTIL, PK12UTIL) if shutil.which(tool) is None]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def start_chromium(home: Path) -> WebDriver:
    """A headless Chromium whose HOME (and so NSS database) and profile are under `home`; the
    caller quits it (`driver.quit()` stops chromedriver and the browser)."""
    missing = missing_tools()
    if missing:
        raise BrowserUnavailable(f"missing {', '.join(missing)} (make test installs them: .ci/install-chromium)")
    home.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={home / 'profile'}")
    service = Service(
        str(CHROMEDRIVER),
        log_output=str(home / "chromedriver.log"),
        env={**os.environ, "HOME": str(home)},
    )
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(PAGE_LOAD_SECONDS)
        driver.set_script_timeout(PAGE_LOAD_SECONDS)
    except BaseException:
        driver.quit()
        raise
    return driver


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=TOOL_SECONDS, check=False)
    if result.returncode != 0:
        raise BrowserUnavailable(f"{' '.join(command)} failed: {result.stderr.strip() or result.stdout.strip()}")


def nss_database(home: Path, pki: GeneratedPki, card: str | None = None) -> Path:
    """The NSS database of `home`, where Chromium finds its trust and client certificates: the
    PKI's root trusted for servers, and the PKI identity `card` (its key, certificate and the
    intermediates) when given, as a card reader's middleware would put it."""
    database = home / ".pki" / "nssdb"
    database.mkdir(parents=True, exist_ok=True)
    nss = f"sql:{database}"
    _run(CERTUTIL, "-N", "-d", nss, "--empty-password")
    _run(CERTUTIL, "-A", "-d", nss, "-n", "dmp-xds test root", "-t", "C,,", "-i", str(pki.anchors))
    if card is not None:
        identity = pki.identity(card)
        key = load_pem_private_key(Path(identity.key).read_bytes(), None)
        certificate, *chain = load_pem_certificates(Path(identity.certificate).read_bytes())
        known = {c.fingerprint(SHA256()) for c in chain}
        chain += [
            c for c in load_pem_certificates(pki.intermediates.read_bytes()) if c.fingerprint(SHA256()) not in known
        ]
        p12 = home / f"{card}.p12"
        p12.write_bytes(
            pkcs12.serialize_key_and_certificates(
                card.encode(),
                key,  # type: ignore[arg-type]  # the PKI's keys are RSA, which PKCS#12 takes
                certificate,
                chain,
                BestAvailableEncryption(P12_PASSWORD.encode()),
            )
        )
        try:
            _run(PK12UTIL, "-d", nss, "-i", str(p12), "-W", P12_PASSWORD)
        finally:
            p12.unlink()
    return database


def _patterns(text: str) -> list[str]:
    try:
        policy = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return []
    patterns = policy.get("AutoSelectCertificateForUrls", []) if isinstance(policy, dict) else []
    return [p for p in patterns if isinstance(p, str)]


def _write_policy(patterns: list[str]) -> None:
    if not patterns:
        POLICY_FILE.unlink(missing_ok=True)
        return
    # Written beside the directory Chromium reads, then renamed into it: never seen half-written.
    tmp = POLICY_DIR.parent / f".{POLICY_FILE.name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"AutoSelectCertificateForUrls": patterns}, indent=1) + "\n")
    tmp.chmod(0o644)
    tmp.replace(POLICY_FILE)


@contextmanager
def _policy_lock() -> Iterator[None]:
    """The machine-wide lock of the policy file, waited for at most LOCK_SECONDS."""
    with open(POLICY_LOCK, "a") as lock:
        deadline = time.monotonic() + LOCK_SECONDS
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BrowserUnavailable(f"{POLICY_LOCK} stayed locked for {LOCK_SECONDS:.0f} s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def policy_unwritable() -> str | None:
    """Why this process cannot write the managed policy (None: it can), creating its directory
    when it may."""
    try:
        POLICY_DIR.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create {POLICY_DIR} ({exc.strerror}): a card in the browser needs root"
    if not os.access(POLICY_DIR, os.W_OK):
        return f"{POLICY_DIR} is not writable: a card in the browser needs root"
    return None


@contextmanager
def auto_select_certificate(origin: str) -> Iterator[str]:
    """While inside, every Chromium started on this machine presents, without asking, the client
    certificate of its NSS database to `origin` (https://127.0.0.1:PORT). Yields the pattern."""
    reason = policy_unwritable()
    if reason is not None:
        raise BrowserUnavailable(reason)
    pattern = json.dumps({"pattern": origin, "filter": {}})
    with _policy_lock():
        current = _patterns(POLICY_FILE.read_text()) if POLICY_FILE.exists() else []
        _write_policy([*current, pattern])
    try:
        yield pattern
    finally:
        with _policy_lock():
            current = _patterns(POLICY_FILE.read_text()) if POLICY_FILE.exists() else []
            if pattern in current:
                current.remove(pattern)  # one occurrence: another holder of the same origin keeps its own
            _write_policy(current)


def wait_for(driver: WebDriver, css: str, timeout: float = WAIT_SECONDS) -> WebElement:
    """The element `css` selects, once it is in the page; TimeoutException after `timeout` s."""
    element: WebElement = WebDriverWait(driver, timeout).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )
    return element


SCREENSHOT_TRIES = 3


def page_loaded(driver: WebDriver, timeout: float = WAIT_SECONDS) -> None:
    """Wait until the current page has finished loading (bounded)."""
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return document.readyState") == "complete")


@contextmanager
def navigating(driver: WebDriver, timeout: float = WAIT_SECONDS) -> Iterator[None]:
    """Around an action that loads a new page (a click, a form's submit): after it, wait until
    the old page is gone and the new one loaded, so that nothing is read from the old one."""
    old = driver.find_element(By.TAG_NAME, "html")
    yield
    WebDriverWait(driver, timeout).until(expected_conditions.staleness_of(old))
    page_loaded(driver, timeout)


def screenshot(driver: WebDriver, path: Path) -> Path:
    """A PNG of the browser's window at `path` (its directory created), once the page is
    loaded. Chromium sometimes drops a capture on a busy machine ("not attached to an active
    page"): tried again, a bounded number of times."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(SCREENSHOT_TRIES):
        try:
            page_loaded(driver)
            if driver.save_screenshot(str(path)):
                return path
        except (TimeoutException, WebDriverException):
            if attempt == SCREENSHOT_TRIES - 1:
                raise
        time.sleep(0.5)
    raise RuntimeError(f"Chromium could not write the screenshot {path}")
