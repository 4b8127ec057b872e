"""Emergency-access notifications, legal representatives, the shared VIHF replay cache.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

- `dmp_record.notification_email`: where the patient is told of an emergency access by e-mail
  (optional; the notification list is always kept).
- `dmp_notification`: what the patient is told (an emergency or centre 15 access), with the
  trace row it comes from, when they read it, and whether the e-mail went out.
- `dmp_representative`: the legal representatives of a minor, declared by the operator.
- `vihf_replay`: the VIHF assertion ids already used, shared by every worker process (the
  primary key makes a second use fail), purged once expired.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(256)
TEXT = sa.String(1024)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("dmp_record") as batch:
        batch.add_column(sa.Column("notification_email", TEXT, nullable=True))
    op.create_table(
        "dmp_notification",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("patient_id", ID, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("actor_id", ID, nullable=False),
        sa.Column("actor_name", TEXT, nullable=False),
        sa.Column("structure_id", ID, nullable=False),
        sa.Column("reason", TEXT, nullable=False),
        sa.Column("message", TEXT, nullable=False),
        sa.Column("read_at", TIME, nullable=True),
        sa.Column("emailed_at", TIME, nullable=True),
        sa.Column("email_error", TEXT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dmp_notification"),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["dmp_record.patient_id"],
            ondelete="CASCADE",
            name="fk_dmp_notification_patient_id_dmp_record",
        ),
    )
    op.create_index("ix_dmp_notification_patient_id_id", "dmp_notification", ["patient_id", "id"])
    op.create_table(
        "dmp_representative",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("patient_id", ID, nullable=False),
        sa.Column("representative_id", ID, nullable=False),
        sa.Column("declared_by", TEXT, nullable=False),
        sa.Column("declared_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dmp_representative"),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["dmp_record.patient_id"],
            ondelete="CASCADE",
            name="fk_dmp_representative_patient_id_dmp_record",
        ),
    )
    op.create_index(
        "ix_dmp_representative_patient_id_representative_id", "dmp_representative", ["patient_id", "representative_id"]
    )
    op.create_table(
        "vihf_replay",
        sa.Column("assertion_id", ID, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("assertion_id", name="pk_vihf_replay"),
    )
    op.create_index("ix_vihf_replay_expires_at", "vihf_replay", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_vihf_replay_expires_at", table_name="vihf_replay")
    op.drop_table("vihf_replay")
    op.drop_index("ix_dmp_representative_patient_id_representative_id", table_name="dmp_representative")
    op.drop_table("dmp_representative")
    op.drop_index("ix_dmp_notification_patient_id_id", table_name="dmp_notification")
    op.drop_table("dmp_notification")
    with op.batch_alter_table("dmp_record") as batch:
        batch.drop_column("notification_email")
