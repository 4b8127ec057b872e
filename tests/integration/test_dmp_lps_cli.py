"""`dmp-xds dmp exists|read|modify|open|reactivate|terminate|authorize|authorizations|patients|
search|web-account` as a user types them, against a secured server configured as the DMP runs
(CI-SIS profile, TLS with the card's certificate, a VIHF per call), at the DMP's paths: the
answers printed, refusals on one line with exit code 1, bad input a usage error (2), never a
stack trace."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dmp_xds.dmp.ins import INS_TEST_NIR, nir_with_key
from dmp_xds.security.pki import create_test_pki
from secure_server import AUDIENCE, SecureServer, start_secure_server, stop_secure_server

ANS = Path(__file__).resolve().parents[2] / ".." / "shared" / "ans-testcontenucda"
CISIS = {
    "DMP_XDS_PROFILE": "cisis",
    "DMP_XDS_VALUE_SETS": str(ANS / "jeuxDeValeurs"),
    "DMP_XDS_CDA_SCHEMA": str(ANS / "infrastructure" / "cda" / "CDA_extended.xsd"),
    "DMP_XDS_SCHEMATRONS": "",
}


def ins(number: int) -> str:
    return f"{nir_with_key(f'27903{number:08d}')}^^^&{INS_TEST_NIR}&ISO"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    pki = create_test_pki(tmp_path_factory.mktemp("lps-cli-pki"))
    running = start_secure_server(tmp_path_factory.mktemp("lps-cli-server"), pki, tls=True, extra=CISIS)
    yield running
    stop_secure_server(running)


def dmp(
    server: SecureServer, *arguments: str, identity: str = "doctor", **options: str
) -> subprocess.CompletedProcess[str]:
    """`dmp-xds dmp ARGUMENTS --pki ... --identity IDENTITY` against the server's DMP base URL."""
    extra = [item for name, value in options.items() for item in (f"--{name.replace('_', '-')}", value)]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "dmp_xds.cli",
            "dmp",
            *arguments,
            "--url",
            server.url + "/si-dmp-server/v2/services/",
            "--pki",
            str(server.pki.directory),
            "--identity",
            identity,
            "--audience",
            AUDIENCE,
            *extra,
        ],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in run.stderr, run.stderr
    return run


def ok(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def refused(run: subprocess.CompletedProcess[str], *words: str) -> str:
    assert run.returncode == 1, run.stdout + run.stderr
    (line,) = [line for line in run.stderr.splitlines() if line.strip()]
    for word in words:
        assert word in line, line
    return line


IDENTITY = ("--usage-name", "Valjean", "--given", "Jean", "--sex", "M", "--birth-date", "19620419")


def test_a_dmp_from_its_opening_to_its_closure(server: SecureServer) -> None:
    patient = ins(1)
    no = ok(dmp(server, "exists", patient))
    assert "queryResponseCode: NF" in no and f"no DMP for {patient}" in no
    # TD1.1 without the patient's consent: the DMP refuses, nothing created.
    refused(dmp(server, "open", patient, *IDENTITY), "AE", "CONSENTEMENT_OUVERTURE_DMP")
    assert "queryResponseCode: NF" in ok(dmp(server, "exists", patient))
    created = ok(dmp(server, "open", patient, *IDENTITY, "--consent", "--address", "12 rue des Lilas|93100|Montreuil"))
    assert "acknowledgement: AA" in created and "status: active" in created and "JEAN VALJEAN" in created
    # Creating is not being authorized: TD0.2 says so; once the patient authorizes the doctor
    # (TD0.3), it says VALIDE and TD1.3a gives everything.
    found = ok(dmp(server, "exists", patient))
    assert "queryResponseCode: OK" in found and "authorization: NON_EXISTANTE" in found
    ok(dmp(server, "authorize", patient))
    found = ok(dmp(server, "exists", patient))
    assert "authorization: VALIDE" in found and "sex: M" in found
    read = ok(dmp(server, "read", patient))
    assert "address: 12 rue des Lilas, 93100 Montreuil" in read and "birth date: 19620419" in read
    # TD1.3b: one change, the rest kept.
    ok(dmp(server, "modify", patient, "--birth-name", "Champmathieu", "--phone", "0102030405", "--oppose-break-glass"))
    read = ok(dmp(server, "read", patient))
    assert "(birth name CHAMPMATHIEU)" in read and "telecom: tel:0102030405" in read and "Montreuil" in read
    assert "opposition au mode bris de glace: yes" in read
    # Someone the patient did not authorize may not read them.
    refused(dmp(server, "read", patient, identity="doctor2"), "AE", "DMPAccessDeniedByRightsService")
    # TD1.4 then TD1.2.
    closed = ok(dmp(server, "terminate", patient, "--text", "à la demande du patient"))
    assert "status: terminated" in closed
    refused(dmp(server, "modify", patient, "--sex", "F"), "AE")
    refused(dmp(server, "reactivate", patient), "AE", "CONSENTEMENT_REACTIVATION_DMP")
    assert "status: active" in ok(dmp(server, "reactivate", patient, "--consent"))


def test_authorizations_and_the_lists(server: SecureServer) -> None:
    patient = ins(2)
    server.cli("dmp", "create", patient, "--collected-by", "accueil")
    refused(dmp(server, "authorizations", patient), "DMPAccessDeniedByRightsService")
    assert "status: DMPOk" in ok(dmp(server, "authorize", patient, "--attending"))
    listed = ok(dmp(server, "authorizations", patient, "--state", "ACTIVE"))
    doctor = server.pki.identity("doctor").national_id
    assert "1 professional(s)" in listed and doctor in listed and "MEDECIN_TRAITANT" in listed
    mine = ok(dmp(server, "patients", "--patient", patient))
    assert patient.split("^")[0] in mine and "ATTENDING" in mine
    assert "0 DMP(s)" in ok(dmp(server, "patients", "--patient", patient, identity="doctor2"))
    assert "status: DMPOk" in ok(dmp(server, "authorize", patient, "--remove"))
    refused(dmp(server, "authorizations", patient), "DMPAccessDeniedByRightsService")


def test_the_web_account(server: SecureServer) -> None:
    patient = ins(3)
    server.cli("dmp", "create", patient, "--collected-by", "accueil")
    server.cli("dmp", "grant", patient, server.pki.identity("doctor").national_id)
    refused(dmp(server, "web-account", "renew", patient), "DMPPatientAccessNotFound")
    created = ok(dmp(server, "web-account", "create", patient, "--sms", "0606060606"))
    assert "login: " in created and "password: " in created
    refused(dmp(server, "web-account", "create", patient, "--sms", "0606060606"), "DMPPatientAccessFound")
    assert "OTP mis à jour" in ok(dmp(server, "web-account", "otp", patient, "--email", "p@example.org"))
    assert "password: " in ok(dmp(server, "web-account", "renew", patient))


def test_search_in_regulation_mode_only(server: SecureServer) -> None:
    patient = ins(4)
    ok(
        dmp(
            server,
            "open",
            patient,
            "--usage-name",
            "Thenardier",
            "--given",
            "Eponine",
            "--sex",
            "F",
            "--birth-date",
            "19830301",
            "--consent",
        )
    )
    refused(dmp(server, "search", "THENARDIER", "--patient", patient), "AE", "centre_15")
    found = ok(dmp(server, "search", "thenardier", "--patient", patient, access_mode="centre_15"))
    assert "1 patient(s)" in found and "EPONINE THENARDIER" in found
    assert "0 patient(s)" in ok(dmp(server, "search", "PERSONNE", "--patient", patient, access_mode="centre_15"))


def test_bad_input_is_a_usage_error(server: SecureServer) -> None:
    for arguments in (
        ("exists", "not-an-ins"),
        ("open", ins(5), "--consent"),  # no identity
        ("modify", ins(5)),  # nothing to modify
        ("modify", ins(5), "--birth-date", "1962-04-19"),
        ("authorizations", ins(5), "--state", "SOME"),
        ("web-account", "create", ins(5)),  # no channel
        ("search", "X"),  # no --patient
    ):
        run = dmp(server, *arguments)
        assert run.returncode == 2, (arguments, run.stdout, run.stderr)
    run = subprocess.run(
        [sys.executable, "-m", "dmp_xds.cli", "dmp", "exists", ins(5), "--url", server.url],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2 and "--pki" in run.stderr
    # A server that is not there: one line, exit code 1.
    unreachable = dmp(server, "exists", ins(5), url="https://127.0.0.1:9")
    refused(unreachable, "unreachable")


def test_indirect_mode_and_tls(server: SecureServer, tmp_path: Path) -> None:
    """The hospital's certificate vouching for its nurse reads the DMP; it may not manage the
    nurse's authorizations (the rights matrix's column F: their own card only); a server whose
    certificate does not chain to --cacert is one line and exit code 1."""
    patient = ins(6)
    server.cli("dmp", "create", patient, "--collected-by", "accueil")
    server.cli("dmp", "grant", patient, server.pki.identity("nurse").national_id)
    found = ok(dmp(server, "exists", patient, identity="nurse", mode="indirect"))
    assert "authorization: VALIDE" in found
    refused(
        dmp(server, "authorize", patient, identity="nurse", mode="indirect"),
        "rights matrix: TD0.3 declare oneself authorized, profile F (établissement, mode indirect), mode n: N",
    )
    other = create_test_pki(tmp_path / "other-pki")
    refused(dmp(server, "exists", patient, cacert=str(other.anchors)), "TLS")
    # Break-glass needs its reason: a usage error before anything is sent.
    assert dmp(server, "read", patient, access_mode="bris_de_glace").returncode == 2
