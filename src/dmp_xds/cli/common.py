"""What every command shares: its settings (`--config`, `DMP_XDS_*`), and the registry database
opened as the server opens it (the embedded default is created and migrated on first use; a
configured database only by `dmp-xds db upgrade`)."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import Engine

from dmp_xds.config import ConfigError, Settings, default_database_url, load_settings, resolve
from dmp_xds.storage.database import open_database
from dmp_xds.storage.records import DmpStore
from dmp_xds.storage.trail import AuditTrail
from dmp_xds.transport.audit import open_trail, reading_trail


def cli_settings(ctx: click.Context, **overrides: Any) -> Settings:
    """The settings of this command: the TOML file of `--config`, the environment, `overrides`."""
    try:
        return load_settings((ctx.obj or {}).get("config"), overrides=overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def open_engine(ctx: click.Context, settings: Settings | None = None) -> Engine:
    settings = settings or resolve(cli_settings(ctx))
    return open_database(settings.database_url, migrate=settings.database_url == default_database_url(settings))


def open_store(ctx: click.Context) -> tuple[DmpStore, AuditTrail]:
    """The DMP records and the access trace of the configured database, the trace with its key,
    exported and checkpointed as the server's (closed, so checkpointed, when the command ends)."""
    settings = resolve(cli_settings(ctx))
    engine = open_engine(ctx, settings)
    try:
        trail = open_trail(settings, engine)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    ctx.call_on_close(trail.close)
    return DmpStore(engine), trail


def open_reading_trail(ctx: click.Context) -> tuple[Settings, AuditTrail]:
    """The settings and a trail to read and verify (its key if there is one, never generated here)."""
    settings = resolve(cli_settings(ctx))
    engine = open_engine(ctx, settings)
    try:
        return settings, reading_trail(settings, engine)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
