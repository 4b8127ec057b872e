"""The access trace as the server and the operator's commands use it, built from the settings:
the chain's key, the ATNA export, the checkpoints (one definition for every process that
appends: a process appending without the key would break the chain)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from dmp_xds.config import ConfigError, Settings, default_database_url
from dmp_xds.storage.audit_checkpoints import Checkpoint, Checkpointer, CheckpointFile, Sink, read_checkpoints
from dmp_xds.storage.audit_keys import key_for
from dmp_xds.storage.trail import AuditTrail
from dmp_xds.transport.atna import SyslogExporter, tls_context


def syslog_exporter(settings: Settings) -> SyslogExporter | None:
    if not settings.audit_syslog:
        return None
    try:
        context = (
            tls_context(settings.audit_syslog_ca, settings.audit_syslog_certificate, settings.audit_syslog_key)
            if settings.audit_syslog.startswith("tls:")
            else None
        )
        return SyslogExporter(settings.audit_syslog, context=context)
    except (ValueError, OSError) as exc:  # ssl.SSLError is an OSError: a CA or key file that does not load
        raise ConfigError(f"DMP_XDS_AUDIT_SYSLOG: {exc}") from exc


def open_trail(settings: Settings, engine: Engine) -> AuditTrail:
    """A trail that appends: keyed (the key generated in the data directory the first time when
    none is configured), each row sent to the ATNA collector, checkpoints sent to the collector
    and to the checkpoint file. Close it (`AuditTrail.close`) to checkpoint the last rows."""
    key = key_for(settings, generate=True)
    assert key is not None  # generated when missing
    exporter = syslog_exporter(settings)
    sinks: list[Sink] = [] if exporter is None else [exporter.checkpoint]
    if settings.audit_checkpoint_path is not None:
        sinks.append(CheckpointFile(settings.audit_checkpoint_path))
    checkpointer = Checkpointer(key, sinks, settings.audit_checkpoint_rows, settings.audit_checkpoint_seconds)
    return AuditTrail(engine, key, [] if exporter is None else [exporter], checkpointer)


def reading_trail(settings: Settings, engine: Engine) -> AuditTrail:
    """A trail to read and verify: the key if there is one (never generated here)."""
    return AuditTrail(engine, key_for(settings, generate=False))


def local_checkpoints(settings: Settings) -> list[Checkpoint]:
    path = settings.audit_checkpoint_path
    return read_checkpoints(path) if path is not None and path.exists() else []


def placement_warnings(settings: Settings) -> list[str]:
    """What weakens the trace's protection where the key and checkpoints are kept (said at start-up)."""
    warnings = []
    database = _sqlite_file(settings.database_url or default_database_url(settings))
    key_path = settings.audit_key_path
    if database is not None and key_path.exists() and _same_filesystem(key_path, database):
        warnings.append(
            f"the access trace's key {key_path} is on the same filesystem as the database {database}: "
            "whoever can change the database there can read the key and re-chain the trace. In "
            "production keep the key on another mount (DMP_XDS_AUDIT_KEY_FILE)."
        )
    if not settings.audit_syslog:
        warnings.append(
            "the access trace's checkpoints are kept on this machine only (DMP_XDS_AUDIT_SYSLOG is "
            "not set): a cut-off trace is caught against them only while they are intact."
        )
    return warnings


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _same_filesystem(a: Path, b: Path) -> bool:
    existing = b if b.exists() else b.parent
    return os.stat(a).st_dev == os.stat(existing).st_dev
