"""`dmp-xds`: the command line of the server and of its tools."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC
from typing import Any

import click

from dmp_xds.cli.common import cli_settings, open_store
from dmp_xds.config import ResourceMissing, Settings, default_database_url, resolve

WORKER_HEALTHCHECK_SECONDS = 120  # how long a worker process may not answer before uvicorn replaces it


class _Main(click.Group):
    """An incomplete installation (a folder the package ships with is missing) is a one-line
    error that says so, not a traceback, whichever command finds out."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ResourceMissing as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Main)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML configuration file (default: $DMP_XDS_CONFIG).",
)
@click.version_option(package_name="dmp-xds")
@click.pass_context
def main(ctx: click.Context, config_file: str | None) -> None:
    """Document registry and repository (IHE XDS.b) for the French DMP."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config_file


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="TCP port (default 8080).")
@click.option("--workers", type=int, default=None, help="Server processes (default 1).")
@click.option("--tls-certificate", default=None, help="PEM certificate chain: serve HTTPS (with --tls-key).")
@click.option("--tls-key", default=None, help="PEM private key of --tls-certificate.")
@click.pass_context
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    workers: int | None,
    tls_certificate: str | None,
    tls_key: str | None,
) -> None:
    """Start the registry and repository endpoints."""
    import os

    import uvicorn

    from dmp_xds.config import to_environment
    from dmp_xds.storage.database import DatabaseNotAtHead
    from dmp_xds.transport.serve import create_app, dmpi_urls, endpoint_urls, health_urls, web_urls

    settings = resolve(
        cli_settings(ctx, host=host, port=port, workers=workers, tls_certificate=tls_certificate, tls_key=tls_key)
    )
    # The embedded default database is created and migrated on first start; a configured
    # database (PostgreSQL in production) is migrated only by `dmp-xds db upgrade`, on purpose.
    embedded = settings.database_url == default_database_url(settings)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(settings, migrate=embedded)
    except DatabaseNotAtHead as exc:
        raise click.ClickException(str(exc)) from exc
    feed = _start_patient_feed(app.services.registry, settings)
    click.echo(f"dmp-xds serving with database {_redact(settings.database_url)}")
    click.echo(f"  documents:            {settings.documents_dir}")
    click.echo(f"  repositoryUniqueId:   {settings.repository_unique_id}")
    for name, url in endpoint_urls(settings).items():
        click.echo(f"  {name + ' endpoint:':<22}{url}   (WSDL: {url}?wsdl)")
    services = dmpi_urls(settings)
    if services:
        base = next(iter(services.values())).removesuffix(next(iter(services)))
        click.echo(f"  {'DMP base URL:':<22}{base}   ({', '.join(services)})")
    labels = {
        "home": "web home",
        "patient": "patient space",
        "professional": "professionals' site",
        "establishment": "dashboard",
    }
    for name, url in web_urls(settings).items():
        click.echo(f"  {labels.get(name, name) + ':':<22}{url}")
    urls = health_urls(settings)
    click.echo(f"  {'health:':<22}{urls['liveness']}   (ready: {urls['readiness']})")
    if feed is not None:
        click.echo(f"  patient feed (ITI-8): mllp://{settings.host}:{settings.mllp_port}")
    if settings.workers > 1:
        click.echo(f"  workers:              {settings.workers} processes")
    _announce_security(settings)
    sys.stdout.flush()
    from dmp_xds.transport.http_protocol import GuardedHttpToolsProtocol
    from dmp_xds.transport.tls import uvicorn_tls_options

    # proxy_headers off: uvicorn would otherwise replace the peer address with X-Forwarded-For
    # from 127.0.0.1, and the client-certificate header is trusted by the peer address
    # (DMP_XDS_TRUSTED_PROXIES, transport/security.py): the real peer must reach the application.
    # The httptools protocol bounds the request head and the connections, the loop the TLS
    # handshake (http_protocol.py); no WebSocket protocol, whose connections nothing would bound
    # (the service has no use for one).
    GuardedHttpToolsProtocol.configure(settings)
    common: dict[str, Any] = dict(
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        lifespan="on",
        timeout_keep_alive=settings.idle_timeout_seconds,
        http=GuardedHttpToolsProtocol,
        ws="none",
        loop="dmp_xds.transport.http_protocol:HandshakeBoundLoop",
        proxy_headers=False,
        access_log=settings.log_level.lower() in ("debug", "info", "trace"),
    )
    common.update(uvicorn_tls_options(settings))
    if settings.workers == 1:
        uvicorn.run(app, **common)
    else:
        # Worker processes build their own application from the environment: hand them the
        # settings resolved here (repositoryUniqueId, database URL), the database being migrated.
        os.environ.update(to_environment(settings))
        uvicorn.run(
            "dmp_xds.transport.serve:app_from_environment",
            factory=True,
            workers=settings.workers,
            # uvicorn kills a worker that does not answer its ping within this time (5 s by
            # default): compiling the ANS schematrons at start-up, or a volet on its first
            # document, holds the interpreter for seconds, and a busy machine made that longer
            # than 5 s, so workers were killed and restarted over and over.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            **common,
        )
    if feed is not None:
        feed.stop()


def _announce_security(settings: Settings) -> None:
    if settings.auth == "none":
        banner = "!" * 78
        click.echo(banner, err=True)
        click.echo("!! DMP_XDS_AUTH=none: NO AUTHENTICATION, NO ACCESS POLICY, NO ACCESS TRACE.", err=True)
        click.echo("!! Anyone who reaches this port reads and writes every record. Development only.", err=True)
        click.echo(banner, err=True)
        return
    how = (
        "TLS client certificate"
        if settings.tls_certificate
        else f"header {settings.client_cert_header} from {settings.trusted_proxies}"
    )
    click.echo(f"  security:             {how} + signed VIHF; DMP policy and access trace on")
    from dmp_xds.transport.audit import placement_warnings

    click.echo(f"  access trace key:     {settings.audit_key_path}")
    click.echo(
        f"  trace checkpoints:    {settings.audit_syslog or 'no collector'}, "
        f"{settings.audit_checkpoint_path or 'no file'}"
    )
    for warning in placement_warnings(settings):
        click.echo(f"WARNING: {warning}", err=True)


def _start_patient_feed(registry: Any, settings: Settings) -> Any:
    if settings.mllp_port is None:
        return None
    from dmp_xds.transport.feed.mllp import MllpServer

    server = MllpServer(settings.host, settings.mllp_port, on_patient=registry.add_patient)
    server.start()
    return server


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@main.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Migrate the registry database to the latest schema (on Citus: and distribute its tables)."""
    from dmp_xds.storage.database import upgrade
    from dmp_xds.storage.distribution import CitusNotReady

    settings = resolve(cli_settings(ctx))
    try:
        distributed = upgrade(settings.database_url)
    except CitusNotReady as exc:
        raise click.ClickException(str(exc)) from None
    if distributed:
        click.echo(f"citus: distributed {len(distributed)} tables ({', '.join(distributed)})")
    click.echo(f"database {_redact(settings.database_url)} is at the latest schema")


@main.group()
def patient() -> None:
    """Patients known to the registry."""


@patient.command("add")
@click.argument("patient_id")
@click.option(
    "--emergency-access/--no-emergency-access",
    default=True,
    help="Whether the patient allows emergency access (bris de glace); default allowed.",
)
@click.pass_context
def patient_add(ctx: click.Context, patient_id: str, emergency_access: bool) -> None:
    """Open a DMP for PATIENT_ID (an INS, as CX: NIR^^^&1.2.250.1.213.1.4.8&ISO), consent
    recorded as collected by the operator (the shortcut for `dmp-xds dmp create`)."""
    from datetime import datetime

    from dmp_xds.cli.dmp import OPERATOR
    from dmp_xds.dmp.model import Consent, DmpError
    from dmp_xds.storage import trail as t
    from dmp_xds.xds.validation.formats import cx_problem

    problem = cx_problem(patient_id)
    if problem:
        raise click.ClickException(f"{patient_id!r} is not a patient id: {problem}")
    store, trail = open_store(ctx)
    existing = store.get(patient_id)
    if existing is not None:
        click.echo(f"patient {patient_id} was already known (DMP {existing.state.status})")
        return
    try:
        store.create(patient_id, Consent(OPERATOR, datetime.now(UTC), emergency_access, True))
    except DmpError as exc:
        raise click.ClickException(str(exc)) from exc
    trail.append(
        t.AuditEvent(
            t.DMP_CREATE,
            t.SUCCESS,
            patient_id,
            actor_id=OPERATOR,
            actor_name=OPERATOR,
            detail="patient add: consent collected by the operator",
        )
    )
    click.echo(f"patient {patient_id} added (DMP opened, consent recorded as collected by the operator)")


@main.group()
def config() -> None:
    """Configuration."""


@config.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the effective configuration (JSON), including this repository's repositoryUniqueId."""
    settings = resolve(cli_settings(ctx))
    data = settings.public_dict()
    data["database_url"] = _redact(settings.database_url)
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def _register_tool_commands() -> None:
    from dmp_xds.cli.audit import audit
    from dmp_xds.cli.client import retrieve, submit
    from dmp_xds.cli.cluster import cluster
    from dmp_xds.cli.conformance import conformance
    from dmp_xds.cli.dmp import dmp
    from dmp_xds.cli.dmp_lps import register as register_dmp_lps
    from dmp_xds.cli.documents import documents
    from dmp_xds.cli.pki import pki
    from dmp_xds.cli.query import bench_load, query
    from dmp_xds.cli.stats import stats, stats_keep
    from dmp_xds.cli.validate import validate
    from dmp_xds.cli.web import web

    main.add_command(query)
    main.add_command(bench_load)
    main.add_command(documents)
    main.add_command(submit)
    main.add_command(retrieve)
    main.add_command(conformance)
    main.add_command(validate)
    main.add_command(pki)
    main.add_command(audit)
    main.add_command(web)
    main.add_command(stats)
    main.add_command(stats_keep)
    main.add_command(cluster)
    register_dmp_lps(dmp)  # the LPS's calls to a DMP, beside the operator's commands
    main.add_command(dmp)


_register_tool_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
