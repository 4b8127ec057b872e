"""A minor's legal representative on the web, over real TLS: an account the operator makes
(`dmp-xds web representative add`), the same sign-in as a patient's (password, then the code by
SMS), and then the records that declare them — one, or a choice among several. Someone declared
nowhere is refused, and so is a choice of a record that does not declare them; every step is in
the trace of the record concerned."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from test_web_signin import NEW_PASSWORD, browser, csrf_of, get, post

from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.storage import trail as t
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.patient_accounts import RepresentativeAccountStore
from secure_server import SecureServer, start_secure_server, stop_secure_server

INS_ROOT = "^^^&1.2.250.1.213.1.4.10&ISO"
ELDER = "1150599123457" + INS_ROOT
YOUNGER = "2180599123468" + INS_ROOT
STRANGER = "2840599123464" + INS_ROOT  # a record that declares nobody
PARENT = "1750599123453" + INS_ROOT  # the parent's own id, as the records declare it
NOBODY = "1800599123450" + INS_ROOT  # has an account, represents no one


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    pki: GeneratedPki = create_test_pki(tmp_path_factory.mktemp("pki"))
    running = start_secure_server(tmp_path_factory.mktemp("web-representative"), pki, tls=True)
    for patient in (ELDER, YOUNGER, STRANGER):
        running.cli("dmp", "create", patient, "--collected-by", "accueil")
    running.cli("dmp", "representative", "add", ELDER, PARENT)
    yield running
    stop_secure_server(running)


def number(patient: str) -> str:
    """The INS itself, as a page shows it (the rest of the CX is escaped there)."""
    return patient.split("^", 1)[0]


def account(server: SecureServer, representative: str, phone: str) -> tuple[str, str]:
    output = server.cli("web", "representative", "add", representative, "--sms", phone)
    login = re.search(r"login:\s+(\S+)", output)
    password = re.search(r"password:\s+(\S+)", output)
    assert login and password, output
    return login.group(1), password.group(1)


def texted_code(server: SecureServer, phone: str) -> str:
    line = next(
        line
        for line in reversed((server.data_dir / "sms-outbox.txt").read_text().splitlines())
        if f"\t{phone}\t" in line
    )
    found = re.search(r"\b(\d{6})\b", line.split("\t", 2)[2])
    assert found, line
    return found.group(1)


def sign_in(server: SecureServer, login: str, password: str, phone: str) -> tuple[requests.Session, requests.Response]:
    session = browser(server)
    first = post(session, server, "/patient/connexion", login=login, password=password)
    assert first.status_code == 303, first.text
    return session, post(session, server, "/patient/connexion/code", code=texted_code(server, phone))


def rows(server: SecureServer, patient: str) -> list[t.AuditEntry]:
    return [e for e in server.trail().history(patient, limit=100) if e.event.action == t.WEB_SIGN_IN]


def test_a_representative_of_one_minor_signs_in_to_that_record(server: SecureServer) -> None:
    login, password = account(server, PARENT, "0611111111")
    session, answer = sign_in(server, login, password, "0611111111")
    # The operator's password is temporary, as a patient's.
    assert answer.status_code == 303 and answer.headers["Location"] == "/patient/compte"
    page = get(session, server, "/patient/compte")
    changed = post(
        session,
        server,
        "/patient/compte/mot-de-passe",
        csrf=csrf_of(page),
        current=password,
        new=NEW_PASSWORD,
        confirm=NEW_PASSWORD,
    )
    assert changed.status_code == 303
    home = get(session, server, "/patient/")
    assert home.status_code == 200, home.text
    assert number(ELDER) in home.text and "Représentant légal" in home.text
    signed = rows(server, ELDER)[0].event
    assert signed.outcome == t.SUCCESS and "legal representative signed in" in signed.detail
    assert signed.actor_id == PARENT
    # The record's list offers the one record; the stranger's is not in it.
    listed = get(session, server, "/patient/representation")
    assert number(ELDER) in listed.text and number(STRANGER) not in listed.text


def test_a_representative_of_two_minors_chooses_the_record(server: SecureServer) -> None:
    server.cli("dmp", "representative", "add", YOUNGER, PARENT)
    try:
        session, answer = sign_in(server, *_parent_login(server), "0611111111")
        assert answer.status_code == 303
        # Which record? The pages wait for the choice.
        assert get(session, server, "/patient/").headers["Location"] == "/patient/representation"
        choice = get(session, server, "/patient/representation")
        assert number(ELDER) in choice.text and number(YOUNGER) in choice.text
        chosen = post(session, server, "/patient/representation", csrf=csrf_of(choice), patient=YOUNGER)
        assert chosen.status_code == 303
        home = get(session, server, "/patient/")
        assert home.status_code == 200 and number(YOUNGER) in home.text
        # A record that does not declare them: refused, traced on that record, nothing changed.
        forged = post(session, server, "/patient/representation", csrf=csrf_of(choice), patient=STRANGER)
        assert forged.status_code == 403 and "représentant légal" in forged.text
        assert "Traceback" not in forged.text
        refused = rows(server, STRANGER)[0].event
        assert refused.outcome == t.DENIED and refused.actor_id == PARENT
        assert number(YOUNGER) in get(session, server, "/patient/").text
        # Without the CSRF token the choice changes nothing either.
        assert post(session, server, "/patient/representation", patient=ELDER).status_code == 403
        assert number(YOUNGER) in get(session, server, "/patient/").text
    finally:
        server.cli("dmp", "representative", "remove", YOUNGER, PARENT)


def test_someone_declared_on_no_record_is_refused(server: SecureServer) -> None:
    login, password = account(server, NOBODY, "0622222222")
    session, answer = sign_in(server, login, password, "0622222222")
    assert answer.status_code == 403 and "aucun dossier" in answer.text
    assert get(session, server, "/patient/").status_code == 401
    row = next(e for e in server.trail().history("", limit=50) if e.event.actor_id == NOBODY).event
    assert row.outcome == t.DENIED and "no DMP" in row.detail


def test_a_representative_has_one_account(server: SecureServer) -> None:
    with pytest.raises(AssertionError, match="already has a web account"):
        account(server, PARENT, "0633333333")


def _parent_login(server: SecureServer) -> tuple[str, str]:
    """The parent's login (from the account the first test made) and the password they chose."""
    engine = create_engine_for(server.engine_url())
    try:
        found = RepresentativeAccountStore(engine).get(PARENT)
    finally:
        engine.dispose()
    assert found is not None
    return found.login, NEW_PASSWORD


def test_the_policy_judges_the_representative_at_every_request(server: SecureServer) -> None:
    """The record's pages go through the same policy as SOAP: once the declaration is removed,
    the session still exists but the minor's record refuses them, traced."""
    session, answer = sign_in(server, *_parent_login(server), "0611111111")
    assert answer.status_code == 303
    documents = f"/patient/{number(ELDER)}/documents"
    assert get(session, server, documents).status_code == 200
    assert get(session, server, f"/patient/{number(STRANGER)}/documents").status_code == 403
    server.cli("dmp", "representative", "remove", ELDER, PARENT)
    try:
        refused = get(session, server, documents)
        assert refused.status_code == 403 and "Traceback" not in refused.text
        row = server.trail().history(ELDER, limit=5)[0].event
        assert row.outcome == t.DENIED and row.actor_id == PARENT
    finally:
        server.cli("dmp", "representative", "add", ELDER, PARENT)
