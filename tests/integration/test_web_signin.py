"""The web front's sign-ins over real TLS: a patient with the code the test SMTP relay receives
and with a TOTP app; a professional's card; an establishment's account and certificate; and
each way in that must fail (wrong password, lockout, rate limit, expired or replayed code,
forged cookie, missing or foreign CSRF token, no card, no TOTP code), refused with the right
status and page, nothing changed, the attempt traced."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import requests
from sqlalchemy import update

from dmp_xds.security import totp
from dmp_xds.security.passwords import hash_password, verify_password
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.storage import trail as t
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.patient_accounts import Channel, PatientAccountStore
from dmp_xds.storage.tables import WebChallengeRow
from dmp_xds.storage.trail import AuditEntry
from pgserver import PostgresServer
from secure_server import PATIENT, SecureServer, start_secure_server, stop_secure_server
from smtp_relay import SmtpRelay
from xds_server import database_url_for

EMAIL = "patient@example.org"
MINOR = "1150599123457^^^&1.2.250.1.213.1.4.10&ISO"  # a second record: the lockout's
TEXTED = "2840599123464^^^&1.2.250.1.213.1.4.10&ISO"  # a third: codes by SMS
PASSWORD = "Temp!pass1"
NEW_PASSWORD = "un mot de passe choisi"
WAIT_SECONDS = 15.0
MAX_FAILED = 3
RATE_LIMIT = 20  # above the failures the tests before the rate limit's make from 127.0.0.1


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


def _start(
    pki: GeneratedPki, relay: SmtpRelay, data_dir: Path, database_url: str = "", workers: int = 1
) -> SecureServer:
    server = start_secure_server(
        data_dir,
        pki,
        tls=True,
        extra={
            "DMP_XDS_NOTIFY_SMTP": f"smtp://127.0.0.1:{relay.port}",
            "DMP_XDS_NOTIFY_FROM": "dmp@test.example",
            "DMP_XDS_WEB_MAX_FAILED_LOGINS": str(MAX_FAILED),
            "DMP_XDS_WEB_RATE_LIMIT": str(RATE_LIMIT),
            "DMP_XDS_WORKERS": str(workers),
        },
        database_url=database_url,
    )
    for patient in (PATIENT, MINOR, TEXTED):
        server.cli("dmp", "create", patient, "--collected-by", "accueil")
    return server


@pytest.fixture(scope="module")
def server(pki: GeneratedPki, relay: SmtpRelay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    running = _start(pki, relay, tmp_path_factory.mktemp("web-signin"))
    yield running
    stop_secure_server(running)


def add_account(server: SecureServer, patient: str, login: str, password: str = PASSWORD) -> None:
    engine = create_engine_for(server.engine_url())
    try:
        PatientAccountStore(engine).create(patient, login, hash_password(password), Channel("EMAIL", EMAIL), "test")
    finally:
        engine.dispose()


def browser(server: SecureServer, card: str = "") -> requests.Session:
    """A browser: the server's CA trusted, Origin sent with each request (as browsers do with
    a form post), and a card's certificate when `card` is named."""
    session = requests.Session()
    session.trust_env = False  # a REQUESTS_CA_BUNDLE of the environment would override `verify`
    session.verify = str(server.pki.anchors)
    session.headers["Origin"] = server.url
    if card:
        identity = server.pki.identity(card)
        session.cert = (identity.certificate, identity.key)
    return session


def post(session: requests.Session, server: SecureServer, path: str, **form: str) -> requests.Response:
    return session.post(server.url + path, data=form, allow_redirects=False, timeout=30)


def get(session: requests.Session, server: SecureServer, path: str) -> requests.Response:
    return session.get(server.url + path, allow_redirects=False, timeout=30)


def csrf_of(page: requests.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def emailed_code(relay: SmtpRelay, count_before: int) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    while len(relay.messages) <= count_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(relay.messages) > count_before, "no code e-mailed"
    message = message_from_bytes(relay.messages[-1], policy=policy.default)
    assert message["To"] == EMAIL
    body = message.get_content()
    found = re.search(r"\b(\d{6})\b", body)
    assert found, body
    return found.group(1)


def traces(server: SecureServer, patient: str = PATIENT, action: str = t.WEB_SIGN_IN) -> list[AuditEntry]:
    return [e for e in server.trail().history(patient, limit=200) if e.event.action == action]


def signed_in_patient(server: SecureServer, relay: SmtpRelay, login: str, password: str) -> requests.Session:
    """A browser with the patient's session (password, then the e-mailed code)."""
    session = browser(server)
    before = len(relay.messages)
    assert post(session, server, "/patient/connexion", login=login, password=password).status_code == 303
    answer = post(session, server, "/patient/connexion/code", code=emailed_code(relay, before))
    assert answer.status_code == 303, answer.text
    return session


# -- the patient ------------------------------------------------------------------------------


def test_the_home_page_links_the_three_spaces(server: SecureServer) -> None:
    page = get(browser(server), server, "/")
    assert page.status_code == 200
    for href in ("/patient/connexion", "/AccesDirect/TableauDeBord", "/etablissement/connexion"):
        assert f'href="{href}"' in page.text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" in page.headers
    assert get(browser(server), server, "/static/dmp-xds.css").status_code == 200
    # `serve` said where the spaces are.
    printed = (server.data_dir / "server.log").read_text()
    assert f"patient space:        {server.url}/patient/connexion" in printed
    assert f"{server.url}/AccesDirect/TableauDeBord" in printed
    # The SOAP side is untouched.
    assert get(browser(server), server, "/health").json()["status"] == "ok"


def test_a_patient_signs_in_with_the_emailed_code_and_changes_the_temporary_password(
    server: SecureServer, relay: SmtpRelay
) -> None:
    add_account(server, PATIENT, "abcd1234")
    session = browser(server)
    # A cookie planted before the sign-in (session fixation) is not the session after it.
    session.cookies.set("__Host-dmpxds_session", "planted-token", domain="127.0.0.1", path="/")
    before = len(relay.messages)
    first = post(session, server, "/patient/connexion", login="abcd1234", password=PASSWORD)
    assert first.status_code == 303 and first.headers["Location"] == "/patient/connexion/code"
    code = emailed_code(relay, before)
    assert "courriel" in get(session, server, "/patient/connexion/code").text
    pending = session.cookies.get("__Host-dmpxds_pending")
    second = post(session, server, "/patient/connexion/code", code=code)
    assert second.status_code == 303 and second.headers["Location"] == "/patient/compte"
    cookie = second.headers["Set-Cookie"]
    assert "__Host-dmpxds_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" in cookie and "Path=/" in cookie
    assert session.cookies.get("__Host-dmpxds_session") not in ("planted-token", None)
    # The temporary password first: the patient's pages wait.
    assert get(session, server, "/patient/").headers["Location"] == "/patient/compte"
    account = get(session, server, "/patient/compte")
    assert account.status_code == 200 and account.headers["Cache-Control"] == "no-store"
    changed = post(
        session,
        server,
        "/patient/compte/mot-de-passe",
        csrf=csrf_of(account),
        current=PASSWORD,
        new=NEW_PASSWORD,
        confirm=NEW_PASSWORD,
    )
    assert changed.status_code == 303
    home = get(session, server, "/patient/")
    assert home.status_code == 200 and "ouvert" in home.text and "Se déconnecter" in home.text
    rows = traces(server)
    assert any(r.event.outcome == t.SUCCESS and "signed in" in r.event.detail for r in rows)
    assert traces(server, action=t.WEB_ACCOUNT)[0].event.detail == "password changed"

    # The same code again, on the same pending sign-in: refused, traced.
    replay = browser(server)
    replay.cookies.set("__Host-dmpxds_pending", pending, domain="127.0.0.1", path="/")
    again = post(replay, server, "/patient/connexion/code", code=code)
    assert again.status_code == 401 and "déjà servi" in again.text
    assert "replayed" in traces(server)[0].event.detail


def test_a_patient_enrolls_a_totp_app_then_signs_in_with_it(server: SecureServer, relay: SmtpRelay) -> None:
    session = signed_in_patient(server, relay, "abcd1234", NEW_PASSWORD)
    account = get(session, server, "/patient/compte")
    secret = re.search(r'name="secret" value="([A-Z2-7]+)"', account.text).group(1)
    assert "otpauth://totp/" in account.text
    key = totp.secret_key(secret)
    enrolled = post(
        session, server, "/patient/compte/totp", csrf=csrf_of(account), secret=secret, code=totp.totp(key, time.time())
    )
    assert enrolled.status_code == 303
    # Sign in again: no e-mail now, the app's code.
    other = browser(server)
    before = len(relay.messages)
    assert post(other, server, "/patient/connexion", login="abcd1234", password=NEW_PASSWORD).status_code == 303
    assert "application" in get(other, server, "/patient/connexion/code").text
    # The enrolment used this step's code: the next step's (the window takes it) signs in.
    code = totp.totp(key, time.time() + totp.STEP_SECONDS)
    assert post(other, server, "/patient/connexion/code", code=code).status_code == 303
    assert get(other, server, "/patient/").status_code == 200
    assert len(relay.messages) == before
    # That code once more, on a new sign-in: a replay, refused.
    third = browser(server)
    post(third, server, "/patient/connexion", login="abcd1234", password=NEW_PASSWORD)
    refused = post(third, server, "/patient/connexion/code", code=code)
    assert refused.status_code == 401 and get(third, server, "/patient/").status_code == 401
    assert "wrong or replayed TOTP code" in traces(server)[0].event.detail


def test_a_patient_signs_in_with_a_code_sent_by_sms(server: SecureServer) -> None:
    """In development the SMS goes to <data_dir>/sms-outbox.txt (DMP_XDS_WEB_SMS=file)."""
    output = server.cli("web", "patient", "add", TEXTED, "--sms", "0698765432")
    login = re.search(r"login:\s+(\S+)", output).group(1)
    password = re.search(r"password:\s+(\S+)", output).group(1)
    session = browser(server)
    assert post(session, server, "/patient/connexion", login=login, password=password).status_code == 303
    assert "par SMS" in get(session, server, "/patient/connexion/code").text
    line = (server.data_dir / "sms-outbox.txt").read_text().splitlines()[-1]
    assert "\t0698765432\t" in line
    code = re.search(r"\b(\d{6})\b", line.split("\t", 2)[2]).group(1)
    assert post(session, server, "/patient/connexion/code", code=code).headers["Location"] == "/patient/compte"
    assert "SMS" in traces(server, TEXTED)[0].event.detail


def test_a_wrong_password_is_refused_and_traced(server: SecureServer) -> None:
    refused = post(browser(server), server, "/patient/connexion", login="abcd1234", password="faux")
    assert refused.status_code == 401 and "Identifiant ou mot de passe incorrect" in refused.text
    assert "Traceback" not in refused.text
    row = traces(server)[0].event
    assert row.outcome == t.DENIED and "wrong password" in row.detail


def test_wrong_passwords_lock_the_account(server: SecureServer) -> None:
    output = server.cli("web", "patient", "add", MINOR, "--sms", "0612345678")
    login = re.search(r"login:\s+(\S+)", output).group(1)
    password = re.search(r"password:\s+(\S+)", output).group(1)
    statuses = [
        post(browser(server), server, "/patient/connexion", login=login, password="faux").status_code
        for _ in range(MAX_FAILED)
    ]
    assert statuses == [401] * (MAX_FAILED - 1) + [403]
    # Locked: even the right password is refused, and nothing is sent.
    refused = post(browser(server), server, "/patient/connexion", login=login, password=password)
    assert refused.status_code == 403 and "verrouillé" in refused.text
    engine = create_engine_for(server.engine_url())
    try:
        assert PatientAccountStore(engine).get(MINOR).locked
    finally:
        engine.dispose()
    assert "locked" in traces(server, MINOR)[0].event.detail


def test_an_expired_code_is_refused(server: SecureServer, relay: SmtpRelay) -> None:
    session = browser(server)
    before = len(relay.messages)
    engine = create_engine_for(server.engine_url())
    try:
        # The TOTP app is removed for this test's e-mailed code, then the code's time runs out.
        from dmp_xds.storage.web import WebStore

        WebStore(engine).remove_totp("patient", PATIENT)
        post(session, server, "/patient/connexion", login="abcd1234", password=NEW_PASSWORD)
        code = emailed_code(relay, before)
        with engine.begin() as connection:
            connection.execute(update(WebChallengeRow.__table__).values(expires_at=WebChallengeRow.created_at))
    finally:
        engine.dispose()
    refused = post(session, server, "/patient/connexion/code", code=code)
    assert refused.status_code == 401 and "expiré" in refused.text
    assert get(session, server, "/patient/").status_code == 401
    assert "code expired" in traces(server)[0].event.detail


def test_wrong_codes_end_the_pending_sign_in(server: SecureServer, relay: SmtpRelay) -> None:
    session = browser(server)
    before = len(relay.messages)
    post(session, server, "/patient/connexion", login="abcd1234", password=NEW_PASSWORD)
    code = emailed_code(relay, before)
    wrong = f"{(int(code) + 1) % 1_000_000:06}"
    for _ in range(3):  # DMP_XDS_WEB_CODE_ATTEMPTS
        assert post(session, server, "/patient/connexion/code", code=wrong).status_code == 401
    late = post(session, server, "/patient/connexion/code", code=code)
    assert late.status_code == 401 and "Trop de codes" in late.text
    assert get(session, server, "/patient/").status_code == 401
    assert "too many wrong codes" in traces(server)[0].event.detail


def test_a_forged_session_cookie_opens_nothing(server: SecureServer) -> None:
    session = browser(server)
    session.cookies.set("__Host-dmpxds_session", "forged-" + "x" * 40, domain="127.0.0.1", path="/")
    page = get(session, server, "/patient/")
    assert page.status_code == 401 and "Connectez-vous" in page.text
    assert page.headers["Cache-Control"] == "no-store"


def test_a_post_without_or_with_a_foreign_csrf_token_changes_nothing(server: SecureServer, relay: SmtpRelay) -> None:
    session = signed_in_patient(server, relay, "abcd1234", NEW_PASSWORD)
    form = {"current": NEW_PASSWORD, "new": "un autre mot de passe", "confirm": "un autre mot de passe"}
    missing = post(session, server, "/patient/compte/mot-de-passe", **form)
    foreign = post(session, server, "/patient/compte/mot-de-passe", csrf="x" * 43, **form)
    good_token = csrf_of(get(session, server, "/patient/compte"))
    session.headers["Origin"] = "https://evil.example"
    cross_site = post(session, server, "/patient/compte/mot-de-passe", csrf=good_token, **form)
    for refused in (missing, foreign, cross_site):
        assert refused.status_code == 403 and "depuis une page de ce site" in refused.text
    engine = create_engine_for(server.engine_url())
    try:
        assert verify_password(NEW_PASSWORD, PatientAccountStore(engine).get(PATIENT).password_hash)
    finally:
        engine.dispose()
    rows = traces(server, action=t.WEB_FORGED_REQUEST)
    assert len(rows) == 3 and "evil.example" in rows[0].event.detail and "CSRF" in rows[1].event.detail


def test_sign_out_everywhere_ends_every_session(server: SecureServer, relay: SmtpRelay) -> None:
    first = signed_in_patient(server, relay, "abcd1234", NEW_PASSWORD)
    second = signed_in_patient(server, relay, "abcd1234", NEW_PASSWORD)
    token = csrf_of(get(first, server, "/patient/"))
    assert post(first, server, "/deconnexion", csrf=token, partout="1").status_code == 303
    assert get(first, server, "/patient/").status_code == 401
    assert get(second, server, "/patient/").status_code == 401
    assert "everywhere" in traces(server, action=t.WEB_SIGN_OUT)[0].event.detail


# -- professionals ----------------------------------------------------------------------------


def test_a_professional_without_a_card_is_asked_for_it(server: SecureServer) -> None:
    page = get(browser(server), server, "/AccesDirect/TableauDeBord")
    assert page.status_code == 401 and "carte CPS" in page.text and "Set-Cookie" not in page.headers
    assert "no client certificate" in traces(server, "")[0].event.detail


def test_a_professional_signs_in_with_the_card_and_the_session_is_bound_to_it(server: SecureServer) -> None:
    session = browser(server, "doctor")
    page = get(session, server, "/AccesDirect/TableauDeBord")
    doctor = server.pki.identity("doctor")
    assert page.status_code == 200 and doctor.family_name in page.text and doctor.national_id in page.text
    assert "__Host-dmpxds_session" in session.cookies.keys()
    identity = server.pki.identity("doctor2")
    session.cert = (identity.certificate, identity.key)
    other = get(session, server, "/AccesDirect/TableauDeBord")
    assert other.status_code == 403 and "autre carte" in other.text
    revoked = get(browser(server, "revoked"), server, "/AccesDirect/TableauDeBord")
    assert revoked.status_code == 403


# -- establishments ---------------------------------------------------------------------------


def test_an_establishment_account_needs_its_totp_code(server: SecureServer) -> None:
    output = server.cli("web", "account", "add", "--structure", "1990000017", "--login", "dim")
    password = re.search(r"password:\s+(\S+)", output).group(1)
    key = totp.secret_key(re.search(r"TOTP key:\s+(\S+)", output).group(1))
    form = {"structure": "1990000017", "login": "dim", "password": password}
    refused = browser(server)
    without = post(refused, server, "/etablissement/connexion", code="", **form)
    assert without.status_code == 401 and "obligatoire" in without.text
    assert "Set-Cookie" not in without.headers and get(refused, server, "/etablissement/").status_code == 401
    session = browser(server)
    signed = post(session, server, "/etablissement/connexion", code=totp.totp(key, time.time()), **form)
    assert signed.status_code == 303 and signed.headers["Location"] == "/etablissement/"
    assert "1990000017" in get(session, server, "/etablissement/").text
    assert "dim\tactive" in server.cli("web", "account", "list", "--structure", "1990000017")
    rows = [e for e in server.trail().history("", limit=50) if e.event.action == t.WEB_SIGN_IN]
    assert any("no TOTP code" in r.event.detail for r in rows)


def test_an_establishment_signs_in_with_its_certificate(server: SecureServer) -> None:
    session = browser(server, "hospital")
    signed = post(session, server, "/etablissement/connexion/certificat")
    assert signed.status_code == 303
    assert "1990000017" in get(session, server, "/etablissement/").text
    card = post(browser(server, "doctor"), server, "/etablissement/connexion/certificat")
    assert card.status_code == 403


# -- last: it leaves this address rate limited ------------------------------------------------


def test_failed_sign_ins_are_rate_limited_per_address(server: SecureServer) -> None:
    statuses = [
        post(browser(server), server, "/patient/connexion", login=f"none{n:04}", password="x").status_code
        for n in range(RATE_LIMIT + 1)
    ]
    assert statuses[-1] == 429 and 401 in statuses
    # Even the right password, from this address, waits now.
    assert (
        post(browser(server), server, "/patient/connexion", login="abcd1234", password=NEW_PASSWORD).status_code == 429
    )
    assert any("rate limited" in r.event.detail for r in traces(server, ""))


@pytest.mark.postgres
def test_sign_in_on_postgresql(
    pki: GeneratedPki, relay: SmtpRelay, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """The same sessions, codes and counters on PostgreSQL, with two worker processes: each
    request may reach either, and the session opened by one is the other's too."""
    running = _start(pki, relay, tmp_path, database_url_for("postgresql", postgres_server), workers=2)
    try:
        add_account(running, PATIENT, "pgsq1234")
        session = signed_in_patient(running, relay, "pgsq1234", PASSWORD)
        for _ in range(6):  # new connections, spread over the workers by the kernel
            session.close()
            assert get(session, running, "/patient/compte").status_code == 200
        refused = post(browser(running), running, "/patient/connexion", login="pgsq1234", password="x")
        assert refused.status_code == 401
        assert traces(running)[0].event.outcome == t.DENIED
    finally:
        stop_secure_server(running)
