"""The registry's tables on Citus: which are distributed, by what, and which are reference tables.

Alembic creates the same schema everywhere (migrations/versions/); on a database where the
`citus` extension is installed, `dmp-xds db upgrade` then calls `distribute`, which is
idempotent: a table already distributed is left alone, so a second run does nothing. See
docs/scaling.md ("The registry on Citus") for why each table is where it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)

# Every table of a patient, by patient id, co-located with `patient`: a patient's stored query,
# submission or update runs on one shard. Parents before the tables whose foreign keys name them.
PATIENT_TABLES: tuple[str, ...] = (
    "patient",
    "dmp_record",
    "document_entry",
    "document_entry_code",
    "document_entry_author",
    "document_entry_reference_id",
    "submission_set",
    "submission_set_author",
    "folder",
    "folder_code",
    "association",
    "lifecycle_event",
    "dmp_authorization",
    "dmp_notification",
    "dmp_representative",
    "dmp_patient_account",
)
# The access trace, per patient once its keys hold the patient id (chained per patient); while
# they do not, it stays a table of the coordinator (see `_keyed_by`).
TRACE_TABLES: tuple[str, ...] = ("audit_entry", "audit_head")

# What is not a patient's: each table by the id it is always asked by.
BY_ID_TABLES: tuple[tuple[str, str], ...] = (
    ("registry_unique_id", "unique_id"),  # the uniqueId guard, and uniqueId -> patient
    ("registry_entry_uuid", "entry_uuid"),  # the entryUUID guard, and entryUUID -> patient
    ("repository_document", "unique_id"),  # ITI-43 names a document by uniqueId only
    ("vihf_replay", "assertion_id"),
    ("web_session", "token_hash"),
    ("web_challenge", "token_hash"),
    ("web_attempt", "key"),
    ("web_login", "login"),  # a login's owner: the guard that keeps it unique across patients
)

# Small operator-made tables, read everywhere: a copy on every node (the closed global trace
# head too, once per-patient chains replaced it: one row, written once).
REFERENCE_TABLES: tuple[str, ...] = (
    "web_account",
    "web_totp",
    "web_representative_account",
    "stats_closed_month",
    "audit_legacy_head",
)

# Tables keyed by a generated id: Citus wants the distribution column in the primary key, so
# on Citus (only) the key becomes (distribution column, id). The id stays unique by itself
# (a sequence), so the code that reads or writes by id is the same on every database.
SURROGATE_KEYED: frozenset[str] = frozenset(
    {
        "document_entry_code",
        "document_entry_author",
        "document_entry_reference_id",
        "submission_set_author",
        "folder_code",
        "lifecycle_event",
        "dmp_authorization",
        "dmp_notification",
        "dmp_representative",
        "web_attempt",
    }
)

# Unique constraints that do not hold the distribution column: Citus refuses them. On Citus
# they become unique per patient; a claim table distributed by the value guards the rest
# (`web_login` for the logins); see docs/scaling.md.
CITUS_UNIQUE_PER_PATIENT: dict[str, tuple[str, tuple[str, ...]]] = {
    "dmp_patient_account": ("uq_dmp_patient_account_login", ("login",)),
}


class CitusNotReady(Exception):
    """The database has the citus extension but cannot hold the registry yet (no worker...)."""


def is_citus(connection: Connection) -> bool:
    """Whether the database is a Citus coordinator (the extension is installed in it)."""
    if connection.dialect.name != "postgresql":
        return False
    return connection.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'citus'")).first() is not None


def engine_is_citus(engine: Engine) -> bool:
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as connection:
        return is_citus(connection)


@dataclass(frozen=True)
class Placement:
    table: str
    column: str | None  # None: a reference table
    colocate_with: str | None


def planned_placements(connection: Connection) -> list[Placement]:
    """Where every table of the schema goes, in the order to distribute them."""
    existing = set(connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
    placements = [Placement(t, "patient_id", None if t == "patient" else "patient") for t in PATIENT_TABLES]
    placements += [
        Placement(t, "patient_id", "patient") for t in TRACE_TABLES if _keyed_by(connection, t, "patient_id")
    ]
    placements += [Placement(t, column, "none") for t, column in BY_ID_TABLES]
    placements += [Placement(t, None, None) for t in REFERENCE_TABLES]
    return [p for p in placements if p.table in existing]


def undistributed(connection: Connection) -> list[str]:
    """The tables of the schema Citus does not hold yet (empty once `distribute` has run)."""
    done = _distributed(connection)
    return [p.table for p in planned_placements(connection) if p.table not in done]


def distribute(engine: Engine) -> list[str]:
    """Distribute (or replicate) every table not yet done, each in its own transaction, and
    return their names. Refuses a coordinator with no worker: the registry would then be
    distributed on the coordinator alone, which is not what a deployment means."""
    with engine.connect() as connection:
        workers = connection.execute(text("SELECT count(*) FROM citus_get_active_worker_nodes()")).scalar_one()
        if not workers:
            raise CitusNotReady(
                "the database is a Citus coordinator with no active worker: add the workers "
                "(SELECT citus_add_node(host, port)) before `dmp-xds db upgrade`"
            )
    done: list[str] = []
    with engine.connect() as connection:
        placements = planned_placements(connection)
        already = _distributed(connection)
    for placement in placements:
        if placement.table in already:
            continue
        with engine.begin() as connection:
            _place(connection, placement)
        done.append(placement.table)
        log.info("citus: %s %s", placement.table, f"by {placement.column}" if placement.column else "replicated")
    return done


def _place(connection: Connection, placement: Placement) -> None:
    table = placement.table
    if placement.column is None:
        connection.execute(text("SELECT create_reference_table(:t)"), {"t": table})
        return
    if table in SURROGATE_KEYED:
        connection.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT pk_{table}'))
        connection.execute(
            text(f'ALTER TABLE "{table}" ADD CONSTRAINT pk_{table} PRIMARY KEY ("{placement.column}", id)')
        )
    if table in CITUS_UNIQUE_PER_PATIENT:
        name, columns = CITUS_UNIQUE_PER_PATIENT[table]
        connection.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT {name}'))
        listed = ", ".join(f'"{c}"' for c in (placement.column, *columns))
        connection.execute(text(f'ALTER TABLE "{table}" ADD CONSTRAINT {name} UNIQUE ({listed})'))
    connection.execute(
        text("SELECT create_distributed_table(:t, :c, colocate_with => :w)"),
        {"t": table, "c": placement.column, "w": placement.colocate_with or "default"},
    )


def _distributed(connection: Connection) -> set[str]:
    return set(connection.execute(text("SELECT logicalrelid::regclass::text FROM pg_dist_partition")).scalars())


def _keyed_by(connection: Connection, table: str, column: str) -> bool:
    """Whether `column` is part of the table's primary key."""
    return (
        connection.execute(
            text("""
                SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                WHERE i.indrelid = to_regclass(:t) AND i.indisprimary AND a.attname = :c
            """),
            {"t": table, "c": column},
        ).first()
        is not None
    )
