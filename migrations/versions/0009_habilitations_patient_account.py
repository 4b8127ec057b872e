"""Who was authorized (for TD1.6), blocked professionals, the patient's web account.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

- `dmp_authorization.first_name`, `last_name`, `specialties`, `last_action_at`: the professional
  as their VIHF and card named them when the grant was made, and when it last changed (the DMP's
  TD1.6 lists them so). A row of kind `blocked` is a professional the patient blocked: no new
  column, the kind says it. Grants made before keep these empty.
- `dmp_patient_account`: the patient's web account (TD1.5a/b/d): login, scrypt hash of the
  password, whether that password is the temporary one a professional gave, the one-time-password
  channels, locked, failed log-ins.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(256)
TEXT = sa.String(1024)
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("dmp_authorization") as batch:
        batch.add_column(sa.Column("first_name", TEXT, nullable=True))
        batch.add_column(sa.Column("last_name", TEXT, nullable=True))
        batch.add_column(sa.Column("specialties", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("last_action_at", TIME, nullable=True))
    op.create_table(
        "dmp_patient_account",
        sa.Column("patient_id", ID, nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("password_hash", TEXT, nullable=False),
        sa.Column("password_temporary", sa.Boolean(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("created_by", TEXT, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("patient_id", name="pk_dmp_patient_account"),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["dmp_record.patient_id"],
            ondelete="CASCADE",
            name="fk_dmp_patient_account_patient_id_dmp_record",
        ),
        sa.UniqueConstraint("login", name="uq_dmp_patient_account_login"),
    )


def downgrade() -> None:
    op.drop_table("dmp_patient_account")
    with op.batch_alter_table("dmp_authorization") as batch:
        batch.drop_column("last_action_at")
        batch.drop_column("specialties")
        batch.drop_column("last_name")
        batch.drop_column("first_name")
