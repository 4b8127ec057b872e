"""Document lifecycle: latest-version flags and the lifecycle history.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

- `document_entry.is_latest`, `folder.is_latest`: ITI-57 keeps every version of a
  DocumentEntry or Folder as its own row; stored queries return the latest version by default,
  and a flag maintained in the update's transaction keeps that filter a plain column test.
  Rows existing before this revision are all version 1, hence latest.
- `lifecycle_event`: one row per change the registry makes to stored metadata (deprecation by
  a replacement, new version, availability status change, folder update, deletion), written in
  the same transaction as the change, so that an audit can tell what changed, when, by which
  transaction and submission set, and — once the security gate passes it — by whom.

Chained after 0003 (the DMP security tables, which were committed first on 0001) so that the
schema keeps a single head.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = sa.String(64)
ID = sa.String(256)
CODE = sa.String(256)
TEXT = sa.String(1024)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("document_entry") as batch:
        batch.add_column(sa.Column("is_latest", sa.Boolean(), server_default=sa.true(), nullable=False))
    with op.batch_alter_table("folder") as batch:
        batch.add_column(sa.Column("is_latest", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.create_table(
        "lifecycle_event",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("transaction", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("object_kind", sa.String(32), nullable=False),
        sa.Column("object_uuid", UUID, nullable=False),
        sa.Column("logical_id", UUID, nullable=True),
        sa.Column("patient_id", ID, nullable=True),
        sa.Column("submission_set_uuid", UUID, nullable=True),
        sa.Column("actor", TEXT, nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lifecycle_event"),
    )
    op.create_index("ix_lifecycle_event_object_uuid", "lifecycle_event", ["object_uuid"])
    op.create_index("ix_lifecycle_event_patient_id_id", "lifecycle_event", ["patient_id", "id"])


def downgrade() -> None:
    op.drop_table("lifecycle_event")
    with op.batch_alter_table("folder") as batch:
        batch.drop_column("is_latest")
    with op.batch_alter_table("document_entry") as batch:
        batch.drop_column("is_latest")
