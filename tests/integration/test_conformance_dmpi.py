"""The DMPi plans (conformance/dmpi: one test per DMP transaction) through `dmp-xds conformance
run --base-url`, against a server configured as the DMP runs: CI-SIS profile, TLS with client
certificates, a VIHF per request, the DMP policy, reached at the DMP's paths
(`/si-dmp-server/v2/services/registry|repository`), with no patient feed: the plans' patient
gets its DMP and the authorizations they rely on from the operator's commands, as
docs/conformance.md says.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from dmp_xds.dmp.ins import nir_with_key
from dmp_xds.security.pki import create_test_pki
from secure_server import AUDIENCE, SecureServer, start_secure_server, stop_secure_server

REPO_ROOT = Path(__file__).resolve().parents[2]
PLANS = REPO_ROOT / "conformance" / "dmpi"
ANS = REPO_ROOT / ".." / "shared" / "ans-testcontenucda"
PLAN_PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO"  # the INS of ANEST-CR-ANEST_2022.01.xml
AUTHORIZED = ("ans-author", "doctor")  # the CDA's author, and a doctor who did not write it
TDS = (
    "rights-matrix",
    "td0.2-exists",
    "td0.3-authorize",
    "td0.4-patients",
    "td0.5-search",
    "td1.1-create",
    "td1.3a-read",
    "td1.3b-modify",
    "td1.4-close",
    "td1.5-web-account",
    "td1.6-authorizations",
    "td2.1-publish",
    "td3.1-search",
    "td3.2-retrieve",
    "td3.3a-mask",
    "td3.3c-delete",
    "td3.3d-archive",
)
RUN_SECONDS = 300


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    pki = create_test_pki(tmp_path_factory.mktemp("dmpi-pki"))
    running = start_secure_server(
        tmp_path_factory.mktemp("dmpi-server"),
        pki,
        tls=True,
        extra={
            "DMP_XDS_PROFILE": "cisis",
            "DMP_XDS_VALUE_SETS": str(ANS / "jeuxDeValeurs"),
            "DMP_XDS_CDA_SCHEMA": str(ANS / "infrastructure" / "cda" / "CDA_extended.xsd"),
            "DMP_XDS_SCHEMATRONS": "",
        },
    )
    try:
        running.cli("dmp", "create", PLAN_PATIENT, "--collected-by", "the conformance run")
        for name in AUTHORIZED:
            running.cli("dmp", "grant", PLAN_PATIENT, pki.identity(name).national_id)
        yield running
    finally:
        stop_secure_server(running)


def run_plans(server: SecureServer, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dmp_xds.cli",
            "conformance",
            "run",
            str(PLANS),
            "--base-url",
            server.url + "/si-dmp-server/v2/services/",
            "--pki",
            str(server.pki.directory),
            "--audience",
            AUDIENCE,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )


def test_every_dmpi_plan_passes_at_the_dmp_paths(server: SecureServer, tmp_path: Path) -> None:
    assert sorted(p.name for p in PLANS.iterdir() if p.is_dir()) == list(TDS)
    junit, html = tmp_path / "dmpi.xml", tmp_path / "dmpi.html"
    run = run_plans(server, "--junit", str(junit), "--html", str(html))
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    xfails = sorted(p.parent.name for p in PLANS.glob("*/xfail.txt"))
    passed = len(TDS) - len(xfails)
    summary = f"{passed} passed, 0 failed, 0 skipped" + (f", {len(xfails)} xfail" if xfails else "")
    assert run.stdout.strip().splitlines()[-1] == summary, run.stdout[-3000:]
    cases = etree.parse(str(junit)).getroot()[0].findall("testcase")
    assert sorted(c.get("name", "").split()[0] for c in cases) == list(TDS)
    assert all(len(c) == 0 for c in cases if c.get("name", "").split()[0] not in xfails)
    assert "td3.3a-mask" in html.read_text(encoding="utf-8")

    # The server, not the runner, decided: its trace holds the author's publications at the DMP paths.
    history = server.cli("audit", "history", PLAN_PATIENT)
    assert server.pki.identity("ans-author").national_id in history


def test_a_second_run_passes_too(server: SecureServer) -> None:
    """Each plan publishes its document under a fresh uniqueId: a second run on the same
    record (a DMP test platform's is never empty) passes as the first did."""
    run = run_plans(server, "--test", "td3.3c-delete", "--test", "td3.1-search")
    assert run.returncode == 0, run.stdout[-4000:]


def test_a_step_the_server_refuses_fails_the_run(server: SecureServer) -> None:
    """Not a run that cannot fail: for a patient without a DMP, the server refuses the
    publication and the run says so, with exit code 1."""
    run = run_plans(server, "--patient", "2840599123456^^^&1.2.250.1.213.1.4.10&ISO", "--test", "td2.1-publish")
    assert run.returncode == 1, run.stdout[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "0 passed, 1 failed, 0 skipped", run.stdout[-3000:]


SERVICE_TDS = tuple(td for td in TDS if td.startswith(("td0.", "td1.", "rights-")))


def test_each_patient_services_plan_fails_for_a_patient_without_a_dmp(server: SecureServer) -> None:
    """Not plans that cannot fail: for a patient who has no DMP (nor authorizations), each plan
    of the patient and habilitation services fails, at an assertion on the DMP's answer."""
    stranger = f"{nir_with_key('1840599123457')}^^^&1.2.250.1.213.1.4.10&ISO"
    tests = [item for td in SERVICE_TDS for item in ("--test", td)]
    run = run_plans(server, "--patient", stranger, *tests)
    assert run.returncode == 1, run.stdout[-3000:]
    summary = f"0 passed, {len(SERVICE_TDS)} failed, 0 skipped"
    assert run.stdout.strip().splitlines()[-1] == summary, run.stdout[-6000:]
    # Each failed on what the DMP answered, not on the runner's own trouble.
    assert "does not hold" in run.stdout and "Traceback" not in run.stdout + run.stderr
