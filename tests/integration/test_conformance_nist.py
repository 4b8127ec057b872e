"""Our server against the NIST testkit `rep`, `reg`, `reg_mu` and `reg_rm` collections, through the CLI,
on every database backend (SQLite, PostgreSQL, a 3-node Citus cluster).

The verdicts are compared with `nist_expected.txt`, which records which NIST tests pass today:
a test listed `pass` that fails is a regression; a test listed `fail` that passes asks for the
file to be updated (so the recorded pass counts stay true). Every failure must carry a reason.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from xds_server import BACKENDS, database_for, documents_for, free_port, start_server, stop_server, stored_objects

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTKIT = REPO_ROOT / ".." / "shared" / "nist-testkit"
EXPECTED = Path(__file__).with_name("nist_expected.txt")
RUN_SECONDS = 900


def _expected() -> dict[str, str]:
    verdicts = {}
    for line in EXPECTED.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            test_id, verdict = line.split()
            verdicts[test_id] = verdict
    return verdicts


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    mllp_port = free_port()
    # The NIST plans send no VIHF: the plain-IHE, development mode of the server (start_server's).
    # On Citus as a national deployment runs: documents on the test S3 server (elsewhere with
    # DMP_XDS_TEST_DOCUMENTS=s3).
    env = {"DMP_XDS_MLLP_PORT": str(mllp_port), "DMP_XDS_PROFILE": "ihe", **documents_for(request)}
    running = start_server(tmp_path_factory.mktemp(f"xds-conformance-{request.param}"), database_for(request), env)
    try:
        yield {
            "registry": running.registry_url,
            "repository": running.repository_url,
            "feed": f"127.0.0.1:{mllp_port}",
            "log": str(running.log_path),
        }
        if "DMP_XDS_BLOB_STORE" in running.env:
            # Where the run put its documents (checked once the module's tests are done): the
            # object store only, nothing on the server's disk.
            objects = stored_objects(running.env)
            assert objects and not [o for o in objects if o.startswith(("(local)", "(upload)"))], objects
    finally:
        stop_server(running)


def test_rep_reg_reg_mu_and_reg_rm_collections_match_the_recorded_verdicts(
    server: dict[str, str], tmp_path: Path
) -> None:
    assert TESTKIT.is_dir(), f"NIST testkit missing: {TESTKIT.resolve()} (tests need ../shared/nist-testkit)"
    junit, html = tmp_path / "nist.xml", tmp_path / "nist.html"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "dmp_xds.cli.conformance",
            "nist",
            "--testkit",
            str(TESTKIT),
            "--collection",
            "rep,reg,reg_mu,reg_rm",
            "--registry",
            server["registry"],
            "--repository",
            server["repository"],
            "--feed",
            server["feed"],
            "--timeout",
            "30",
            "--junit",
            str(junit),
            "--html",
            str(html),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    assert junit.is_file(), f"no JUnit report:\n{run.stdout}\n{run.stderr}"
    summary = run.stdout.strip().splitlines()[-1]
    assert summary.endswith("skipped") and " passed, " in summary, run.stdout[-2000:]

    suite = etree.parse(str(junit)).getroot()[0]
    actual: dict[str, str] = {}
    for case in suite.findall("testcase"):
        test_id = case.get("name", "").split()[0]
        failure = case.find("failure")
        if failure is not None:
            reason = failure.get("message", "")
            assert reason.strip() and "unknown" not in reason.lower(), f"{test_id} failed without a reason"
        actual[test_id] = "pass" if failure is None and case.find("skipped") is None else "fail"

    expected = _expected()
    assert set(actual) == set(expected), (
        f"tests run {sorted(set(actual) - set(expected))} not in nist_expected.txt; "
        f"listed but not run {sorted(set(expected) - set(actual))}"
    )
    regressions = sorted(t for t, verdict in expected.items() if verdict == "pass" and actual[t] != "pass")
    assert not regressions, f"NIST tests that passed and now fail: {regressions} (see {html})"
    improvements = sorted(t for t, verdict in expected.items() if verdict == "fail" and actual[t] == "pass")
    assert not improvements, f"NIST tests now passing — mark them 'pass' in nist_expected.txt: {improvements}"
    assert run.returncode == (1 if "fail" in actual.values() else 0)
    assert html.read_text().count("<tr>") == len(actual) + 1


def test_cisis_refusal_plans_fail_against_a_server_that_refuses_nothing(server: dict[str, str], tmp_path: Path) -> None:
    """The CI-SIS plans pass against a CI-SIS, secured server (test_conformance_cisis.py); this
    plain-IHE one without authentication accepts what they expect refused, and each such plan
    must then fail at the step that expected the refusal."""
    junit = tmp_path / "cisis.xml"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "dmp_xds.cli.conformance",
            "plans",
            str(REPO_ROOT / "conformance"),
            "--registry",
            server["registry"],
            "--repository",
            server["repository"],
            "--feed",
            server["feed"],
            "--timeout",
            "30",
            "--junit",
            str(junit),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    assert run.returncode == 1, run.stdout[-3000:]
    suite = etree.parse(str(junit)).getroot()[0]
    failures = {
        case.get("name", "").split()[0]: failure.get("message", "")
        for case in suite.findall("testcase")
        if (failure := case.find("failure")) is not None
    }
    expected = {
        # the ihe profile checks no CI-SIS value set
        "cisis-03-code-outside-value-set": "submit/submit: status Success, expected Failure",
        # no policy: the professional who is not the author sees the masked document
        "cisis-04-masking": "hidden/by_uid: ExpectedContents DocumentEntries: DocumentEntry urn:uuid:",
        # no authorization checked: the professional without one is not refused
        "cisis-05-search-without-authorization": "search/unauthorized: expected a SOAP Fault (a refusal), got",
        "cisis-06-emergency-access": "emergency/normal: expected a SOAP Fault (a refusal), got",
    }
    for plan, reason in expected.items():
        assert reason in failures.get(plan, ""), (plan, failures.get(plan), run.stdout[-3000:])
