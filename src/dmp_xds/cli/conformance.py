"""`dmp-xds conformance`: run NIST testkit collections or our CI-SIS plans against any endpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dmp_xds.config import checkout_root
from dmp_xds.dmp.ins import INS_TEST_NIR
from dmp_xds.tools.conformance.engine import Engine, Outcome, RunConfig, TestResult
from dmp_xds.tools.conformance.identity import DEFAULT_IDENTITY, Identities
from dmp_xds.tools.conformance.patients import DEFAULT_ASSIGNING_AUTHORITY
from dmp_xds.tools.conformance.report import result_line, summary_line, write_html, write_junit
from dmp_xds.tools.conformance.testkit import PlanError, TestCase, Testkit, load_testkit
from dmp_xds.tools.conformance.transport import SoapClient
from dmp_xds.transport.feed.mllp import send_patient_feed

# The ANS kit beside a source checkout; an installed package has no default (give --cda-dir).
_CHECKOUT = checkout_root()
DEFAULT_CDA_DIR = _CHECKOUT.parent / "shared" / "ans-testcontenucda" / "ExemplesCDA" if _CHECKOUT else None
DEFAULT_DMPI_PLANS = _CHECKOUT / "conformance" / "dmpi" if _CHECKOUT else None
# The patient of the DMPi plans: the INS in the recordTarget of the ANS example they publish
# (ANEST-CR-ANEST_2022.01.xml), whose DMP must exist, with the plans' identities authorized.
DMPI_PLAN_PATIENT = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO"
STYLES = {Outcome.PASSED: "green", Outcome.FAILED: "bold red", Outcome.SKIPPED: "yellow", Outcome.XFAIL: "magenta"}


def _feed(value: str | None, timeout: float):
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"{value!r} is not HOST:PORT", param_hint="--feed")

    def feed(patient_id: str) -> None:
        send_patient_feed(host, int(port), patient_id, timeout=timeout)

    return feed


def _run(
    kit: Testkit,
    tests: list[TestCase],
    config: RunConfig,
    feed_value: str | None,
    junit: Path | None,
    html_path: Path | None,
    suite: str,
    verify: str | bool = True,
) -> None:
    # Lines go to stdout (so the summary is the last line of the output); the bar to stderr.
    out = Console(highlight=False, soft_wrap=True)
    bar_console = Console(stderr=True)
    if not feed_value and not config.patient_id:
        out.print(
            "note: no --feed given; patient ids are not registered with the registry (ITI-8), "
            "so submissions may be refused as XDSUnknownPatientId",
            style="yellow",
        )
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=bar_console,
        transient=True,
    ) as progress:
        task = progress.add_task("conformance", total=len(tests))
        wanted = {t.id for t in tests}

        def started(test: TestCase) -> None:
            progress.update(task, description=f"test {test.id}")

        def ended(result: TestResult) -> None:
            out.print(result_line(result), style=STYLES[result.outcome], markup=False)
            if result.test_id in wanted:
                progress.advance(task)

        engine = Engine(
            kit,
            config,
            SoapClient(config.timeout, verify=verify),
            _feed(feed_value, config.timeout),
            on_test_start=started,
            on_test_end=ended,
        )
        results = engine.run(tests)
    target = f"registry {config.registry_url}, repository {config.repository_url}"
    if junit:
        write_junit(results, junit, suite)
    if html_path:
        write_html(results, html_path, f"dmp-xds conformance — {suite}", target)
    click.echo(summary_line(results))
    sys.stdout.flush()
    if any(r.outcome is Outcome.FAILED for r in results):
        sys.exit(1)


def _named(kit: Testkit, test_ids: tuple[str, ...]) -> list[TestCase]:
    """The tests `--test` names, in that order; every test of the kit, by id, when it names none."""
    missing = [t for t in test_ids if t not in kit.tests]
    if missing:
        raise click.BadParameter(f"not in {kit.root}: {', '.join(missing)}", param_hint="--test")
    if test_ids:
        return [kit.tests[t] for t in test_ids]
    return sorted(kit.tests.values(), key=lambda t: t.id)


def _select(kit: Testkit, collections: list[str], test_ids: tuple[str, ...]) -> list[TestCase]:
    if test_ids:
        return _named(kit, test_ids)
    selected = kit.in_collections(collections)
    if not selected:
        raise click.BadParameter(f"no test in collections {', '.join(collections)}", param_hint="--collection")
    return selected


_endpoints = [
    click.option("--registry", "registry_url", required=True, help="Registry endpoint URL (ITI-42/18/57/62)."),
    click.option("--repository", "repository_url", required=True, help="Repository endpoint URL (ITI-41/43)."),
    click.option("--feed", "feed_value", default=None, help="HOST:PORT of the registry's ITI-8 MLLP listener."),
]
_reporting = [
    click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds allowed per network call."),
    click.option(
        "--junit", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write JUnit XML here."
    ),
    click.option(
        "--html",
        "html_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Write a self-contained HTML report here.",
    ),
    click.option("--test", "test_ids", multiple=True, help="Run only this test (repeatable)."),
]


def reporting_options(function):
    """--timeout, --junit, --html, --test."""
    for option in reversed(_reporting):
        function = option(function)
    return function


def common_options(function):
    """The endpoints (--registry, --repository, --feed) and the reporting options."""
    for option in reversed(_endpoints):
        function = option(function)
    return reporting_options(function)


@click.group()
def conformance() -> None:
    """Run conformance test plans against a registry / repository (ours or anyone's)."""


@conformance.command()
@click.option(
    "--testkit",
    "testkit_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The NIST testkit folder (holding tests/).",
)
@click.option(
    "--collection",
    "collection",
    default="rep,reg",
    show_default=True,
    help="Comma-separated collections: rep, reg, reg_mu, reg_rm...",
)
@click.option(
    "--assigning-authority",
    default=DEFAULT_ASSIGNING_AUTHORITY,
    show_default=True,
    help="OID of the patient ids the run creates (an INS root makes valid test NIRs).",
)
@common_options
def nist(
    testkit_dir: Path,
    collection: str,
    assigning_authority: str,
    registry_url: str,
    repository_url: str,
    feed_value: str | None,
    timeout: float,
    junit: Path | None,
    html_path: Path | None,
    test_ids: tuple[str, ...],
) -> None:
    """Run NIST XDS testkit collections."""
    try:
        kit = load_testkit(testkit_dir)
    except PlanError as exc:
        raise click.ClickException(str(exc)) from exc
    collections = [c.strip() for c in collection.split(",") if c.strip()]
    tests = _select(kit, collections, test_ids)
    config = RunConfig(registry_url, repository_url, timeout, assigning_authority)
    _run(kit, tests, config, feed_value, junit, html_path, f"nist {','.join(collections)}")


@conformance.command()
@click.argument("plans_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--cda-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_CDA_DIR,
    show_default=True,
    help='Folder of the ANS CDA examples the plans send (<Document source="cda">).',
)
@click.option(
    "--assigning-authority",
    default=INS_TEST_NIR,
    show_default=True,
    help="OID of the patient ids the run creates (default: INS test NIR).",
)
@click.option(
    "--pki",
    "pki_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Test PKI (dmp-xds pki init DIR): each request carries its step's identity's VIHF over TLS "
    "with the signer's certificate.",
)
@click.option(
    "--identity",
    default=DEFAULT_IDENTITY,
    show_default=True,
    help="With --pki: who a step that names no <Identity> acts as (an identity of the PKI, or 'patient').",
)
@click.option(
    "--audience", default="", help="With --pki: the VIHF Audience the server expects (DMP_XDS_VIHF_AUDIENCE)."
)
@click.option(
    "--cacert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CA bundle the server's TLS certificate must chain to (default: the --pki trust anchors, else the system's).",
)
@common_options
def plans(
    plans_dir: Path,
    cda_dir: Path | None,
    assigning_authority: str,
    pki_dir: Path | None,
    identity: str,
    audience: str,
    cacert: Path | None,
    registry_url: str,
    repository_url: str,
    feed_value: str | None,
    timeout: float,
    junit: Path | None,
    html_path: Path | None,
    test_ids: tuple[str, ...],
) -> None:
    """Run our own test plans (same format), e.g. the CI-SIS plans in conformance/."""
    try:
        kit = load_testkit(plans_dir)
    except PlanError as exc:
        raise click.ClickException(str(exc)) from exc
    tests = _named(kit, test_ids)
    identities = None
    if pki_dir is not None:
        try:
            identities = Identities.load(pki_dir, identity, audience)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--pki / --identity") from exc
    verify: str | bool = str(cacert) if cacert else str(identities.pki.anchors) if identities else True
    document_dirs = {"cda": cda_dir} if cda_dir is not None else {}
    config = RunConfig(registry_url, repository_url, timeout, assigning_authority, document_dirs, identities=identities)
    _run(kit, tests, config, feed_value, junit, html_path, f"plans {plans_dir.name}", verify)


@conformance.command("run")
@click.argument(
    "plans_dir",
    required=DEFAULT_DMPI_PLANS is None,
    default=DEFAULT_DMPI_PLANS,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "--base-url",
    required=True,
    help="The DMP's base URL, https://HOST/si-dmp-server/v2/services/ (its registry and repository "
    "sub-paths), or a server's https://HOST:PORT (its /xds/ endpoints).",
)
@click.option(
    "--pki",
    "pki_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Test PKI (dmp-xds pki init DIR; make serve writes var/pki): each request carries its step's "
    "identity's VIHF over TLS with the signer's certificate.",
)
@click.option(
    "--patient",
    default=DMPI_PLAN_PATIENT,
    show_default=True,
    help="The plans' patient (INS as CX): their CDA's, with a DMP that exists and the plans' identities authorized.",
)
@click.option(
    "--identity",
    default=DEFAULT_IDENTITY,
    show_default=True,
    help="Who a step that names no <Identity> acts as (an identity of the PKI, or 'patient').",
)
@click.option("--audience", default="", help="The VIHF Audience the server expects, if any.")
@click.option(
    "--cacert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CA bundle the server's TLS certificate must chain to (default: the --pki trust anchors).",
)
@click.option(
    "--cda-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_CDA_DIR,
    show_default=True,
    help='Folder of the CDA documents the plans send (<Document source="cda">).',
)
@reporting_options
def run(
    plans_dir: Path,
    base_url: str,
    pki_dir: Path,
    patient: str,
    identity: str,
    audience: str,
    cacert: Path | None,
    cda_dir: Path | None,
    timeout: float,
    junit: Path | None,
    html_path: Path | None,
    test_ids: tuple[str, ...],
) -> None:
    """Run the DMPi plans (default conformance/dmpi: one test per DMP transaction, TD2.1 to TD3.3)
    against a DMP, or this server, at its base URL, as a DMP-compatible LPS: no patient feed, the
    plans act on one patient whose DMP exists."""
    from dmp_xds.dmp.ins import canonical_patient_id
    from dmp_xds.tools.client.lps import service_urls

    # The plans write the DMP's forms themselves (`$patientid$^NH`): they need the INS CX alone.
    patient, problem = canonical_patient_id(patient.strip())
    if problem:
        raise click.BadParameter(problem, param_hint="--patient")
    try:
        kit = load_testkit(plans_dir)
        identities = Identities.load(pki_dir, identity, audience)
    except PlanError as exc:
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--pki / --identity") from exc
    tests = _named(kit, test_ids)
    urls = service_urls(base_url)
    config = RunConfig(
        urls.registry,
        urls.repository,
        timeout,
        document_dirs={"cda": cda_dir} if cda_dir is not None else {},
        identities=identities,
        patient_id=patient,
        services_url=base_url,
    )
    verify = str(cacert) if cacert else str(identities.pki.anchors)
    _run(kit, tests, config, None, junit, html_path, f"run {plans_dir.name}", verify)


if __name__ == "__main__":  # `python -m dmp_xds.cli.conformance nist|plans ...`
    conformance()
