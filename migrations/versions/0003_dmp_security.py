"""The DMP record (consent, closure), authorizations, and the hash-chained access trace.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-23

Written by hand to match the issue-7 tables of src/dmp_xds/storage/tables.py (a test compares
the two). Existing patients (added by `patient add` or the ITI-8 feed before this revision) get
a DMP opened by this migration, consent recorded as collected by the operator, so that they keep
accepting submissions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(256)
CODE = sa.String(256)
TEXT = sa.String(1024)
HASH = sa.String(64)
STAMP = sa.String(32)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)
MIGRATION_OPERATOR = "operator (migration 0003)"


def upgrade() -> None:
    op.create_table(
        "dmp_record",
        sa.Column("patient_id", ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("consent_collected_by", TEXT, nullable=False),
        sa.Column("consent_collected_at", TIME, nullable=False),
        sa.Column("emergency_access_allowed", sa.Boolean(), nullable=False),
        sa.Column("regulation_access_allowed", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("closed_at", TIME, nullable=True),
        sa.Column("status_reason", TEXT, nullable=True),
        sa.PrimaryKeyConstraint("patient_id", name="pk_dmp_record"),
    )
    op.create_table(
        "dmp_authorization",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("patient_id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("grantee", ID, nullable=False),
        sa.Column("granted_by", TEXT, nullable=False),
        sa.Column("granted_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.Column("reference", TEXT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dmp_authorization"),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["dmp_record.patient_id"],
            ondelete="CASCADE",
            name="fk_dmp_authorization_patient_id_dmp_record",
        ),
    )
    op.create_index("ix_dmp_authorization_patient_id_grantee", "dmp_authorization", ["patient_id", "grantee"])
    op.create_table(
        "audit_entry",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("recorded_at", STAMP, nullable=False),
        sa.Column("actor_id", ID, nullable=False),
        sa.Column("actor_name", TEXT, nullable=False),
        sa.Column("actor_role", CODE, nullable=False),
        sa.Column("structure_id", ID, nullable=False),
        sa.Column("access_mode", CODE, nullable=False),
        sa.Column("access_reason", TEXT, nullable=False),
        sa.Column("action", CODE, nullable=False),
        sa.Column("patient_id", ID, nullable=False),
        sa.Column("documents", sa.JSON(), nullable=False),
        sa.Column("outcome", CODE, nullable=False),
        sa.Column("detail", TEXT, nullable=False),
        sa.Column("prev_hash", HASH, nullable=False),
        sa.Column("hash", HASH, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_entry"),
    )
    op.create_index("ix_audit_entry_patient_id_seq", "audit_entry", ["patient_id", "seq"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", HASH, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    # The audit_head row is created by the first append (AuditTrail.ensure_head): an empty
    # database stays empty.
    now = datetime.now(UTC)
    op.execute(
        sa.text(
            "INSERT INTO dmp_record (patient_id, status, consent_collected_by, consent_collected_at, "
            "emergency_access_allowed, regulation_access_allowed, created_at, updated_at) "
            "SELECT patient_id, 'open', :who, created_at, :yes, :yes, :now, :now FROM patient"
        ).bindparams(
            sa.bindparam("who", MIGRATION_OPERATOR), sa.bindparam("yes", True), sa.bindparam("now", now, type_=TIME)
        )
    )


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index("ix_audit_entry_patient_id_seq", table_name="audit_entry")
    op.drop_table("audit_entry")
    op.drop_index("ix_dmp_authorization_patient_id_grantee", table_name="dmp_authorization")
    op.drop_table("dmp_authorization")
    op.drop_table("dmp_record")
