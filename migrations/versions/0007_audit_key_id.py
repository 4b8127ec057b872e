"""The access trace's keyed chain: each row names the key of its MAC.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

- `audit_entry.key_id`: the id of the key whose HMAC-SHA-256 is the row's `hash`
  (src/dmp_xds/storage/audit_keys.py). Rows already there keep their plain SHA-256 and an empty
  `key_id`: they verify as before, up to where the keyed chain starts. (A downgrade drops it;
  the code of before cannot verify the keyed rows then: their MAC is no plain SHA-256.)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entry") as batch:
        batch.add_column(sa.Column("key_id", sa.String(32), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("audit_entry") as batch:
        batch.drop_column("key_id")
