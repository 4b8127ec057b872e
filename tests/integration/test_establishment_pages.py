"""The establishment dashboard's pages over TLS, after real activity (the hospital's doctor
creates a DMP, publishes, replaces, archives, deletes, has two submissions refused; another
structure's doctor publishes): the structure signed in with its organisation certificate, or with
a dashboard account and its TOTP code, sees its month, its twelve months, its refusals of the
day with their rules, and downloads each table as CSV; another structure sees none of it; a bad
month is a 400, a forged structure a 403 (traced), no session a 401."""

from __future__ import annotations

import datetime as dt
import html
import re
import time
from collections.abc import Iterator

import pytest
import requests

from dashboard_activity import HOSPITAL, OTHER, Activity, act
from dmp_xds.security import totp
from dmp_xds.security.pki import GeneratedPki, create_test_pki
from dmp_xds.services import establishment_stats as es
from dmp_xds.storage import trail as t
from secure_server import SecureServer, start_secure_server, stop_secure_server

BASE = "/etablissement/"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> GeneratedPki:
    return create_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def activity(pki: GeneratedPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Activity]:
    server = start_secure_server(tmp_path_factory.mktemp("dashboard-pages"), pki, tls=True)
    try:
        yield act(server, pki)
    finally:
        stop_secure_server(server)


def browser(server: SecureServer, card: str = "") -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(server.pki.anchors)
    session.headers["Origin"] = server.url
    if card:
        identity = server.pki.identity(card)
        session.cert = (identity.certificate, identity.key)
    return session


def with_certificate(server: SecureServer) -> requests.Session:
    session = browser(server, "hospital")
    signed = session.post(server.url + "/etablissement/connexion/certificat", allow_redirects=False, timeout=30)
    assert signed.status_code == 303 and signed.headers["Location"] == BASE
    return session


def with_account(server: SecureServer, structure: str, login: str) -> requests.Session:
    output = server.cli("web", "account", "add", "--structure", structure, "--login", login)
    password = re.search(r"password:\s+(\S+)", output).group(1)  # type: ignore[union-attr]
    key = totp.secret_key(re.search(r"TOTP key:\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    session = browser(server)
    form = {"structure": structure, "login": login, "password": password, "code": totp.totp(key, time.time())}
    signed = session.post(server.url + "/etablissement/connexion", data=form, allow_redirects=False, timeout=30)
    assert signed.status_code == 303, signed.text
    return session


def page(session: requests.Session, server: SecureServer, path: str = BASE, **query: str) -> requests.Response:
    return session.get(server.url + path, params=query, allow_redirects=False, timeout=30)


def table_of(text: str, name: str) -> list[list[str]]:
    """The rows (header first) of the page's table `name`, as text."""
    found = re.search(rf'<table id="tableau-{re.escape(name)}">(.*?)</table>', text, re.S)
    assert found, name
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", found.group(1), re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        rows.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return rows


def export_links(text: str) -> list[str]:
    return [html.unescape(link) for link in re.findall(r'href="(/etablissement/export/[^"]+)"', text)]


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def test_the_page_shows_the_months_publications_and_the_refusal_with_its_rule(activity: Activity) -> None:
    server = activity.server
    shown = page(with_certificate(server), server)
    assert shown.status_code == 200, shown.text
    assert shown.headers["Cache-Control"] == "no-store"
    figures = dict(table_of(shown.text, "activite")[1:])
    assert figures["Documents publiés"] == "3" and figures["Envois refusés"] == "2"
    assert (figures["DMP créés"], figures["Documents remplacés"], figures["Documents archivés"]) == ("1", "1", "1")
    assert (figures["Documents supprimés"], figures["Patients alimentés"], figures["Recherches"]) == ("1", "1", "1")
    assert sum(int(row[-1]) for row in table_of(shown.text, "par-type")[1:]) == 3
    # The day's refusals: who, which document, which rule.
    text = html.unescape(shown.text)
    doctor = server.pki.identity("doctor").national_id
    for document in (activity.refused_document, activity.mismatched_document):
        assert document in text
    assert doctor in text and "differs from the document's SHA-1" in text
    assert all(code in text for code in activity.refused_codes)
    # The charts, inline and inert, beside their tables.
    assert shown.text.count('role="img"') == 2 and "<script" not in shown.text and "<style" not in shown.text
    month = es.Month.of(today())
    series = table_of(shown.text, "mensuel")
    assert len(series) == 13 and series[-1][0] == month.key and series[-1][3] == "3"
    assert f"{month.key} : 3" in text  # the chart's description
    styles = page(with_certificate(server), server, "/etablissement/graphiques.css")
    assert styles.status_code == 200 and "#chart-publications" in styles.text


def test_every_csv_matches_the_pages_figures(activity: Activity) -> None:
    server = activity.server
    session = with_account(server, HOSPITAL, "dim-csv")
    shown = page(session, server)
    links = export_links(shown.text)
    assert sorted(link.split("/")[-1].split(".csv")[0] for link in links) == sorted(es.TABLE_NAMES)
    for link in links:
        name = link.split("/")[-1].split(".csv")[0]
        download = session.get(server.url + link, timeout=30)
        assert download.status_code == 200, download.text
        assert download.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert download.headers["Content-Disposition"].startswith('attachment; filename="')
        assert download.content.startswith(es.CSV_BOM.encode("utf-8"))
        rows = es.read_csv(download.content.decode("utf-8"))
        on_page = table_of(shown.text, name)
        if name == es.DAY_TABLE:
            assert len(rows) == 3 and [r[4] for r in rows[1:]] == [
                activity.refused_document,
                activity.mismatched_document,
            ]
            assert rows[2][5] == "XDSRepositoryMetadataError"
        assert rows == on_page, name


def test_another_structure_sees_only_its_own_figures(activity: Activity) -> None:
    server = activity.server
    other = page(with_account(server, OTHER, "autre"), server)
    assert other.status_code == 200
    figures = dict(table_of(other.text, "activite")[1:])
    assert (figures["Documents publiés"], figures["Envois refusés"], figures["DMP créés"]) == ("1", "0", "0")
    text = html.unescape(other.text)
    assert activity.refused_document not in text and "differs from the document's SHA-1" not in text
    assert f"structure {OTHER}" in text and HOSPITAL not in text


def test_a_forged_structure_is_refused_shows_nothing_and_is_traced(activity: Activity) -> None:
    server = activity.server
    session = with_account(server, OTHER, "curieux")
    for path in (BASE, "/etablissement/export/activite.csv"):
        refused = page(session, server, path, structure=HOSPITAL)
        assert refused.status_code == 403, refused.text
        assert "votre structure" in refused.text and "Documents publiés" not in refused.text
    rows = [e.event for e in server.trail().history("", limit=200) if e.event.action == t.WEB_FORGED_REQUEST]
    assert any(r.structure_id == OTHER and HOSPITAL in r.detail and r.outcome == t.DENIED for r in rows)
    # Its own id in the parameter changes nothing.
    assert page(session, server, structure=OTHER).status_code == 200


@pytest.mark.parametrize(
    "query",
    [{"mois": "2026-13"}, {"mois": "décembre"}, {"mois": "0001-01"}, {"jour": "2026-02-30"}, {"jour": "9999-12-31"}],
)
def test_a_bad_month_or_day_is_a_400_in_french(activity: Activity, query: dict[str, str]) -> None:
    server = activity.server
    session = with_certificate(server)
    for path in (BASE, "/etablissement/export/mensuel.csv"):
        refused = page(session, server, path, **query)
        assert refused.status_code == 400, refused.text
        assert "invalide" in refused.text or "hors de la période" in refused.text
        assert "Traceback" not in refused.text


def test_an_unknown_table_is_a_404(activity: Activity) -> None:
    server = activity.server
    assert page(with_certificate(server), server, "/etablissement/export/patients.csv").status_code == 404


def test_a_past_month_shows_its_own_figures(activity: Activity) -> None:
    server = activity.server
    earlier = es.Month.of(today()).shifted(-1)
    shown = page(with_certificate(server), server, mois=earlier.key)
    assert shown.status_code == 200
    assert dict(table_of(shown.text, "activite")[1:])["Documents publiés"] == "0"
    assert table_of(shown.text, "mensuel")[-1][0] == earlier.key


def test_without_a_session_the_dashboard_asks_to_sign_in(activity: Activity) -> None:
    server = activity.server
    for path in (BASE, "/etablissement/export/activite.csv", "/etablissement/graphiques.css"):
        refused = page(browser(server), server, path)
        assert refused.status_code == 401 and "Connectez-vous" in refused.text
        assert "Documents publiés" not in refused.text
    # A professional's card is no structure's session.
    card = browser(server, "doctor")
    assert page(card, server).status_code == 401
