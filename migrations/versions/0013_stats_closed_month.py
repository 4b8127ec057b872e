"""The establishment dashboard's figures of months that are over.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

- `stats_closed_month`: a structure's figures for a past month (counts as JSON, no patient or
  document id), computed once from the trace and the registry, then read by every worker and
  after every restart: the dashboard's first page no longer reads a year of trace rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stats_closed_month",
        sa.Column("structure_id", sa.String(256), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("structure_id", "month", name="pk_stats_closed_month"),
    )


def downgrade() -> None:
    op.drop_table("stats_closed_month")
