"""The web front: server-side sessions, pending sign-ins, failed attempts, TOTP secrets, and the
establishment dashboard's accounts.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

- `web_session`: a signed-in browser, keyed by the SHA-256 of its cookie's token (the token
  itself is never stored); who (kind, id, the record acted on, structure), the certificate it is
  bound to, its CSRF token, created, last seen, expiry, revoked.
- `web_challenge`: a sign-in waiting for its second factor (hash of the code sent, expiry,
  attempts, used).
- `web_attempt`: failed sign-ins, per client address and per login, for rate limiting.
- `web_totp`: TOTP secrets and the last time step used.
- `web_account`: the establishment dashboard's accounts (structure, login, scrypt hash).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(256)
TEXT = sa.String(1024)
HASH = sa.String(64)
KIND = sa.String(16)
TIME = sa.DateTime(timezone=True)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_session",
        sa.Column("token_hash", HASH, nullable=False),
        sa.Column("subject_kind", KIND, nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("acting_for", ID, nullable=False),
        sa.Column("structure_id", ID, nullable=False),
        sa.Column("display_name", TEXT, nullable=False),
        sa.Column("fingerprint", HASH, nullable=False),
        sa.Column("csrf_token", HASH, nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("last_seen_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_web_session"),
    )
    op.create_index("ix_web_session_subject_kind_subject_id", "web_session", ["subject_kind", "subject_id"])
    op.create_table(
        "web_challenge",
        sa.Column("token_hash", HASH, nullable=False),
        sa.Column("subject_kind", KIND, nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("method", KIND, nullable=False),
        sa.Column("code_hash", HASH, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_web_challenge"),
    )
    op.create_table(
        "web_attempt",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("key", ID, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_web_attempt"),
    )
    op.create_index("ix_web_attempt_key_at", "web_attempt", ["key", "at"])
    op.create_table(
        "web_totp",
        sa.Column("subject_kind", KIND, nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("enrolled_at", TIME, nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subject_kind", "subject_id", name="pk_web_totp"),
    )
    op.create_table(
        "web_account",
        sa.Column("structure_id", ID, nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("password_hash", TEXT, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("structure_id", "login", name="pk_web_account"),
    )


def downgrade() -> None:
    op.drop_table("web_account")
    op.drop_table("web_totp")
    op.drop_index("ix_web_attempt_key_at", table_name="web_attempt")
    op.drop_table("web_attempt")
    op.drop_table("web_challenge")
    op.drop_index("ix_web_session_subject_kind_subject_id", table_name="web_session")
    op.drop_table("web_session")
