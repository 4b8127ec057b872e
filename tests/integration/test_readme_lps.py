"""The README's first calls, word for word: after `make serve`, from the checkout, a patient, an
ANS example CDA published, found and read back with the demo PKI's card. They run here against a
secured server configured as `make serve` configures it (CI-SIS profile, TLS, VIHF, no audience),
from a folder laid out as a fresh clone (`var/pki`, `../shared`); only the server's address
differs, given as DMP_XDS_URL since the test cannot own port 8080."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from dmp_xds.security.pki import create_test_pki
from secure_server import start_secure_server, stop_secure_server

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = (REPO_ROOT / ".." / "shared").resolve()
ANS = SHARED / "ans-testcontenucda"
COMMAND = ".venv/bin/dmp-xds "


def readme_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.startswith(COMMAND)]


def test_the_readme_shows_the_lps_calls() -> None:
    verbs = [
        " ".join(shlex.split(line)[1:3]) if "dmp-xds dmp " in line else shlex.split(line)[1]
        for line in readme_commands()
    ]
    assert verbs == ["patient", "dmp grant", "dmp exists", "submit", "query", "retrieve", "dmp authorizations"]


def test_the_readme_commands_work_word_for_word(tmp_path: Path) -> None:
    checkout = tmp_path / "dmp-xds"
    (checkout / "var").mkdir(parents=True)
    (tmp_path / "shared").symlink_to(SHARED)
    pki = create_test_pki(checkout / "var" / "pki")
    data = tmp_path / "data"
    data.mkdir()
    server = start_secure_server(
        data,
        pki,
        tls=True,
        extra={
            "DMP_XDS_PROFILE": "cisis",
            "DMP_XDS_VALUE_SETS": str(ANS / "jeuxDeValeurs"),
            "DMP_XDS_CDA_SCHEMA": str(ANS / "infrastructure" / "cda" / "CDA_extended.xsd"),
            "DMP_XDS_SCHEMATRONS": "",
            "DMP_XDS_VIHF_AUDIENCE": "",
        },
    )
    env = {
        **server.env,
        "DMP_XDS_URL": server.url + "/si-dmp-server/v2/services/",
        # The commands run from the clone's folder: this checkout's code, whatever the installed one.
        "PYTHONPATH": str(REPO_ROOT / "src"),
    }
    outputs: dict[str, str] = {}
    try:
        for line in readme_commands():
            arguments = shlex.split(line.removeprefix(COMMAND))
            run = subprocess.run(
                [sys.executable, "-m", "dmp_xds.cli", *arguments],
                cwd=checkout,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert run.returncode == 0, f"{line}\n{run.stdout}\n{run.stderr}"
            assert "Traceback" not in run.stderr
            outputs[arguments[0] + " " + arguments[1]] = run.stdout
    finally:
        stop_secure_server(server)
    # The LPS's DMP calls answered: the doctor the README authorized is VALIDE, and listed.
    assert "authorization: VALIDE" in outputs["dmp exists"], outputs["dmp exists"]
    doctor = pki.identity("doctor").national_id
    assert "1 professional(s)" in outputs["dmp authorizations"] and doctor in outputs["dmp authorizations"]
    retrieved = checkout / "cr.xml"
    original = ANS / "ExemplesCDA" / "ANEST-CR-ANEST_2022.01.xml"
    assert retrieved.read_bytes() == original.read_bytes()
