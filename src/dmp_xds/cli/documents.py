"""`dmp-xds documents`: the document store as the operator sees it — the documents no registry
row refers to, left by a process killed between writing a document and committing its row, and
their removal (storage/document_sweep.py)."""

from __future__ import annotations

import datetime as dt

import click

from dmp_xds.cli.common import cli_settings, open_engine
from dmp_xds.config import ConfigError, resolve
from dmp_xds.storage import document_sweep as ds
from dmp_xds.storage.blobstore import BlobStoreError
from dmp_xds.storage.document_store import open_blob_store


@click.group("documents")
def documents() -> None:
    """The document store (files under the data directory, or the object store)."""


@documents.command("sweep")
@click.option(
    "--older-than",
    "hours",
    type=click.FloatRange(min=0),
    default=ds.DEFAULT_GRACE.total_seconds() / 3600,
    show_default=True,
    help="Only documents written this many hours ago or more (a younger one may be a submission under way).",
)
@click.option("--delete", is_flag=True, help="Remove them (without it, only list them).")
@click.pass_context
def sweep(ctx: click.Context, hours: float, delete: bool) -> None:
    """List the stored documents no registry row refers to; remove them with --delete."""
    settings = resolve(cli_settings(ctx))
    engine = open_engine(ctx, settings)
    try:
        store = open_blob_store(settings)
        found = ds.find_unreferenced(engine, store, dt.timedelta(hours=hours))
        now = dt.datetime.now(dt.UTC)
        for blob in found.unreferenced:
            age = (now - blob.modified).total_seconds() / 3600
            click.echo(f"{blob.location}\t{blob.size} B\t{age:.1f} h old")
        if delete:
            ds.remove_unreferenced(engine, store, found)
    except (ConfigError, BlobStoreError, ds.SweepRefused) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    click.echo(
        f"{store.describe()}: {found.examined} documents, {found.referenced} named by the registry, "
        f"{found.young} younger than {hours:g} h (left alone), {len(found.unreferenced)} unreferenced "
        f"({found.unreferenced_bytes} B)" + (f", {found.removed} removed" if delete else "; --delete removes them")
    )
    if found.failures:
        for failure in found.failures:
            click.echo(failure, err=True)
        raise click.ClickException(f"{len(found.failures)} could not be removed")
