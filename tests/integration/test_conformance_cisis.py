"""Our CI-SIS plans (conformance/cisis-*) through `dmp-xds conformance plans`, against a server
configured as the DMP runs: CI-SIS profile (ANS value sets, CDA schema; schematrons off for
speed), TLS with client certificates, a signed VIHF per request, the DMP policy.

The runner acts as a DMP-compatible LPS with the test PKI generated here (`--pki`); the plans'
patient (the INS of the ANS CDA example they publish) gets a DMP and the authorizations the
plans rely on from the operator's commands, before the run, as docs/conformance.md says.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from dmp_xds.security.pki import create_test_pki
from secure_server import AUDIENCE, SecureServer, start_secure_server, stop_secure_server
from xds_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
PLANS = REPO_ROOT / "conformance"
ANS = REPO_ROOT / ".." / "shared" / "ans-testcontenucda"
PLAN_PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO"  # the INS of ANEST-CR-ANEST_2022.01.xml
AUTHORIZED = ("ans-author", "doctor")  # the CDA's author, and a doctor who did not write it
RUN_SECONDS = 300


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SecureServer, str]]:
    pki = create_test_pki(tmp_path_factory.mktemp("cisis-pki"))
    mllp = free_port()
    running = start_secure_server(
        tmp_path_factory.mktemp("cisis-server"),
        pki,
        tls=True,
        extra={
            "DMP_XDS_PROFILE": "cisis",
            "DMP_XDS_VALUE_SETS": str(ANS / "jeuxDeValeurs"),
            "DMP_XDS_CDA_SCHEMA": str(ANS / "infrastructure" / "cda" / "CDA_extended.xsd"),
            "DMP_XDS_SCHEMATRONS": "",
            "DMP_XDS_MLLP_PORT": str(mllp),
        },
    )
    try:
        running.cli("dmp", "create", PLAN_PATIENT, "--collected-by", "the conformance run")
        for name in AUTHORIZED:
            running.cli("dmp", "grant", PLAN_PATIENT, pki.identity(name).national_id)
        yield running, f"127.0.0.1:{mllp}"
    finally:
        stop_secure_server(running)


def run_plans(server: SecureServer, feed: str, junit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dmp_xds.cli.conformance",
            "plans",
            str(PLANS),
            "--registry",
            server.url + "/xds/registry",
            "--repository",
            server.url + "/xds/repository",
            "--feed",
            feed,
            "--pki",
            str(server.pki.directory),
            "--audience",
            AUDIENCE,
            "--junit",
            str(junit),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )


def test_every_cisis_plan_passes_against_the_secure_cisis_server(
    server: tuple[SecureServer, str], tmp_path: Path
) -> None:
    running, feed = server
    plans = sorted(p.name for p in PLANS.glob("cisis-*") if p.is_dir())
    assert len(plans) == 6 and not list(PLANS.glob("*/xfail.txt"))
    run = run_plans(running, feed, tmp_path / "cisis.xml")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == f"{len(plans)} passed, 0 failed, 0 skipped"
    cases = etree.parse(str(tmp_path / "cisis.xml")).getroot()[0].findall("testcase")
    assert sorted(c.get("name", "").split()[0] for c in cases) == plans
    assert all(len(c) == 0 for c in cases)  # no failure, no skipped

    # The server, not the runner, decided: its trace holds the refusals and the emergency access.
    history = [json.loads(line) for line in running.cli("audit", "history", PLAN_PATIENT, "--json").splitlines()]
    pharmacist = running.pki.identity("pharmacist").national_id
    theirs = [e for e in history if e["actor_id"] == pharmacist and e["action"] == "search"]
    assert {(e["outcome"], e["emergency"]) for e in theirs} == {("denied", False), ("success", True)}


def test_a_second_run_passes_too(server: tuple[SecureServer, str], tmp_path: Path) -> None:
    """The plans share one patient (the CDA's): what a run leaves (documents, masked versions)
    does not change the next run's verdicts."""
    running, feed = server
    run = run_plans(running, feed, tmp_path / "again.xml")
    assert run.returncode == 0, run.stdout[-4000:]
