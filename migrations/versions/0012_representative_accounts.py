"""The web accounts of minors' legal representatives.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

- `web_representative_account`: a legal representative's sign-in on the web front (login, scrypt
  hash, temporary or chosen password, the channels of the one-time codes, lockout), keyed by the
  representative's id as the records declare it. The records they act on are the ones that
  declare them (dmp_representative), read at each sign-in and request, so no foreign key.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(256)
TEXT = sa.String(1024)
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "web_representative_account",
        sa.Column("representative_id", ID, nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("password_hash", TEXT, nullable=False),
        sa.Column("password_temporary", sa.Boolean(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("created_by", TEXT, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("representative_id", name="pk_web_representative_account"),
        sa.UniqueConstraint("login", name="uq_web_representative_account_login"),
    )


def downgrade() -> None:
    op.drop_table("web_representative_account")
