"""The patient's notification e-mails queued in the database, not in a server process.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

- `dmp_notification.email_due_at`: when the e-mail may next be tried (NULL: none owed). Any
  server process claims a due e-mail by moving it past a lease (storage/notifications.py), so an
  e-mail survives the process that wrote its notification and two processes never both take it.
- `dmp_notification.email_attempts`: how many tries were made (bounded by the sender).
- `ix_dmp_notification_email_due_at`: the senders' poll reads the due rows from the index.

E-mails owed when the queue lived in memory are not recovered: their rows have neither a sending
time nor an error, and stay so.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dmp_notification") as batch:
        batch.add_column(sa.Column("email_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("email_attempts", sa.Integer(), server_default="0", nullable=False))
    op.create_index("ix_dmp_notification_email_due_at", "dmp_notification", ["email_due_at"])


def downgrade() -> None:
    op.drop_index("ix_dmp_notification_email_due_at", table_name="dmp_notification")
    with op.batch_alter_table("dmp_notification") as batch:
        batch.drop_column("email_attempts")
        batch.drop_column("email_due_at")
