"""The establishment dashboard's index on the access trace.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-06

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

- `ix_audit_entry_structure_id_action_recorded_at`: a structure's requests of some kinds over a
  period (its submissions, refusals, consultations, creations of a month: storage/stats.py), read
  without scanning the whole trace.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_audit_entry_structure_id_action_recorded_at", "audit_entry", ["structure_id", "action", "recorded_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_audit_entry_structure_id_action_recorded_at", table_name="audit_entry")
