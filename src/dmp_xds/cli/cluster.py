"""`dmp-xds cluster`: the Citus cluster of a distributed registry database — its status, adding a
worker, rebalancing the shards, draining a worker before it is removed (storage/cluster.py).

On a database that is not distributed (SQLite, plain PostgreSQL) every command says so and
exits with status 2."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from dmp_xds.cli.common import cli_settings
from dmp_xds.config import resolve
from dmp_xds.storage import cluster as c
from dmp_xds.storage.database import create_engine_for

DEFAULT_WAIT_SECONDS = 3600
T = TypeVar("T")


class NotDistributedError(click.ClickException):
    exit_code = 2


@contextmanager
def _coordinator(ctx: click.Context) -> Iterator[tuple[Engine, str]]:
    """The registry database's engine (never migrated here) and its URL; every failure a
    one-line message."""
    url = resolve(cli_settings(ctx)).database_url
    engine = create_engine_for(url)
    try:
        yield engine, url
    except c.NotDistributed as exc:
        raise NotDistributedError(str(exc)) from exc
    except c.ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    except DBAPIError as exc:
        first = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0]
        raise click.ClickException(f"the registry database failed: {first}") from exc
    finally:
        engine.dispose()


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@click.group("cluster")
def cluster() -> None:
    """The Citus cluster of a distributed registry: status, workers, shard rebalancing."""


@cluster.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """The coordinator, the workers (active or not, shards and bytes), the distributed and
    reference tables with their colocation, and what is unbalanced."""
    with _coordinator(ctx) as (engine, _):
        state = c.cluster_status(engine)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(state), indent=2))
        return
    click.echo(f"Citus {state.citus_version}")
    if state.coordinator is not None:
        click.echo(f"coordinator  {state.coordinator.address}")
    else:
        click.echo("coordinator  (not registered: run citus_set_coordinator_host on it)")
    click.echo(f"workers      {len(state.workers)}")
    for node in state.workers:
        flags = "active" if node.active else "INACTIVE"
        if node.active and not node.should_have_shards:
            flags += ", takes no shards"
        click.echo(f"  {node.address:<28}{flags:<26}{node.shards:>6} shards {_size(node.bytes):>10}")
    click.echo(f"tables       {len(state.tables)}")
    for table in state.tables:
        column = "" if table.kind == "reference" else f" by {table.distribution_column}"
        click.echo(
            f"  {table.name:<36}{table.kind + column:<32}colocation {table.colocation_id:<4}"
            f"{table.shard_count:>5} shards {_size(table.bytes):>10}"
        )
    if state.coordinator_tables:
        click.echo(f"on the coordinator only  {len(state.coordinator_tables)}")
        for name, size in state.coordinator_tables:
            click.echo(f"  {name:<36}{'plain table':<32}{'':<20}{_size(size):>10}")
    for warning in state.warnings:
        click.echo(f"warning: {warning}")


@cluster.command("add-worker")
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
@click.pass_context
def add_worker(ctx: click.Context, host: str, port: int) -> None:
    """Add the worker HOST PORT: PostgreSQL with the citus library preloaded and `CREATE
    EXTENSION citus` done in the registry's database. Its shards come with `cluster rebalance`."""
    with _coordinator(ctx) as (engine, url):
        added = c.add_worker(engine, url, host, port)
    if not added:
        click.echo(f"{host}:{port} is already an active worker")
        return
    click.echo(f"worker {host}:{port} added; it holds no shard yet: run `dmp-xds cluster rebalance`")


def _transfer_mode_option(function: Callable[..., T]) -> Callable[..., T]:
    return click.option(
        "--transfer-mode",
        type=click.Choice(c.TRANSFER_MODES),
        default="auto",
        show_default=True,
        help="How shards move: logical replication (writes go on) or block_writes. auto uses block_writes "
        "when a table has no primary key nor replica identity, or a node's wal_level is not logical.",
    )(function)


def _announce_mode(requested: str, used: str) -> None:
    if used != requested:
        click.echo(
            f"logical replication cannot move these shards (a table without primary key nor replica identity, "
            f"or wal_level not 'logical'): they move with {used} (their writes wait)"
        )


@cluster.command("rebalance")
@_transfer_mode_option
@click.option("--no-wait", is_flag=True, help="Start the rebalancer and return; `cluster status` shows the result.")
@click.option(
    "--wait-seconds",
    type=click.IntRange(1),
    default=DEFAULT_WAIT_SECONDS,
    show_default=True,
    help="How long to follow the job before returning (the job goes on in the background).",
)
@click.pass_context
def rebalance(ctx: click.Context, transfer_mode: str, no_wait: bool, wait_seconds: int) -> None:
    """Spread the shards over the active workers with Citus' rebalancer (citus_rebalance_start),
    following its progress until it is done."""
    with _coordinator(ctx) as (engine, _):
        job, used = c.start_rebalance(engine, transfer_mode)
        _announce_mode(transfer_mode, used)
        if job is None:
            click.echo("the shards are balanced: nothing to move")
            return
        click.echo(f"rebalance job {job} started ({used})")
        if no_wait:
            click.echo("not waiting: `dmp-xds cluster status` shows the placement, citus_rebalance_status() the job")
            return

        def show(progress: c.RebalanceProgress) -> None:
            counts = ", ".join(f"{n} {state}" for state, n in sorted(progress.tasks.items())) or "no task yet"
            click.echo(f"  job {progress.job_id}: {progress.state} ({counts})")

        last = c.wait_for_rebalance(engine, wait_seconds, show)
    if last is None or not last.done:
        click.echo(f"still running after {wait_seconds} s; it goes on in the background (`dmp-xds cluster status`)")
        return
    if last.state != "finished":
        raise click.ClickException(f"rebalance job {last.job_id} {last.state}: {last.message or 'see the Citus log'}")
    click.echo("rebalance finished")


@cluster.command("drain-worker")
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
@_transfer_mode_option
@click.pass_context
def drain_worker(ctx: click.Context, host: str, port: int, transfer_mode: str) -> None:
    """Move every shard off the worker HOST PORT (citus_drain_node) and disable it, so that it
    can be stopped and removed (SELECT citus_remove_node(HOST, PORT) on the coordinator)."""
    with _coordinator(ctx) as (engine, _):
        used = c.drain_worker(engine, host, port, transfer_mode)
    _announce_mode(transfer_mode, used)
    click.echo(f"worker {host}:{port} drained and disabled; to remove it: SELECT citus_remove_node('{host}', {port})")
