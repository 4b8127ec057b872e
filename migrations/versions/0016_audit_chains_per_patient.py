"""The access trace chained per patient, numbered by a database sequence.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

Until now every append of every request bumped the one `audit_head` row: a global lock, and on
a database distributed by patient a second node in every request's transaction. From here on
each patient has a chain of their own (storage/trail.py says why and how):

- `audit_head` is rebuilt keyed by `patient_id`: one head per chain, the place of its last row
  (`chain_seq`); that row holds the MAC the next one chains to.
- The old head row moves to `audit_legacy_head`, as it was: it closes the global chain written
  so far. Nothing is chained again (the migration does not hold the key): the old rows keep their
  `seq`, `prev_hash` and MAC and verify as before, up to that head; new rows chain per patient
  from genesis. The cut-over point is that head: the last `seq` of the global chain.
- `audit_entry.chain_seq`: a row's place in its patient's chain, empty on the old rows.
- `audit_entry`'s primary key becomes (`patient_id`, `seq`) and a unique index holds
  (`patient_id`, `chain_seq`): a distributed table's unique constraints must hold its
  distribution column. `ix_audit_entry_patient_id_seq` is the primary key now and goes;
  `ix_audit_entry_seq` keeps the global order readable.
- PostgreSQL: the sequence `audit_entry_seq` numbers the rows, started after the last `seq`.

On PostgreSQL the new primary key and indexes of `audit_entry` are built inside the migration's
transaction: on a large trace, plan for the time an index build over it takes.

A downgrade is refused once a per-patient row exists: the global chain cannot be rebuilt from
them without the key.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HASH = sa.String(64)
ID = sa.String(256)


def upgrade() -> None:
    op.create_table(
        "audit_legacy_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", HASH, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_legacy_head"),
    )
    op.execute("INSERT INTO audit_legacy_head (id, seq, hash) SELECT id, seq, hash FROM audit_head")
    op.drop_table("audit_head")
    op.create_table(
        "audit_head",
        sa.Column("patient_id", ID, nullable=False),
        sa.Column("chain_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("patient_id", name="pk_audit_head"),
    )
    op.drop_index("ix_audit_entry_patient_id_seq", table_name="audit_entry")
    with op.batch_alter_table("audit_entry") as batch:
        batch.add_column(sa.Column("chain_seq", sa.BigInteger(), nullable=True))
        batch.drop_constraint("pk_audit_entry", type_="primary")
        batch.create_primary_key("pk_audit_entry", ["patient_id", "seq"])
    op.create_index("ix_audit_entry_patient_id_chain_seq", "audit_entry", ["patient_id", "chain_seq"], unique=True)
    op.create_index("ix_audit_entry_seq", "audit_entry", ["seq"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE audit_entry_seq")
        op.execute("SELECT setval('audit_entry_seq', max(seq)) FROM audit_entry HAVING max(seq) IS NOT NULL")


def downgrade() -> None:
    bind = op.get_bind()
    chained = bind.execute(sa.text("SELECT count(*) FROM audit_entry WHERE chain_seq IS NOT NULL")).scalar_one()
    if chained:
        raise RuntimeError(
            f"the access trace holds {chained} row(s) chained per patient: the single global chain of "
            "revision 0014 cannot be rebuilt from them without the trace's key; restore a backup instead"
        )
    if bind.dialect.name == "postgresql":
        op.execute("DROP SEQUENCE audit_entry_seq")
    op.drop_index("ix_audit_entry_seq", table_name="audit_entry")
    op.drop_index("ix_audit_entry_patient_id_chain_seq", table_name="audit_entry")
    with op.batch_alter_table("audit_entry") as batch:
        batch.drop_constraint("pk_audit_entry", type_="primary")
        batch.create_primary_key("pk_audit_entry", ["seq"])
        batch.drop_column("chain_seq")
    op.create_index("ix_audit_entry_patient_id_seq", "audit_entry", ["patient_id", "seq"])
    op.drop_table("audit_head")
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", HASH, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.execute("INSERT INTO audit_head (id, seq, hash) SELECT id, seq, hash FROM audit_legacy_head")
    op.drop_table("audit_legacy_head")
