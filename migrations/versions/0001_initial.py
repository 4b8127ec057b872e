"""Initial registry and repository schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two); see that
module for why each index exists.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = sa.String(64)
ID = sa.String(256)
CODE = sa.String(256)
TEXT = sa.String(1024)
DTM = sa.String(14)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamp() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def _child_of(parent: str, table: str) -> list[sa.Column | sa.Constraint]:
    """The id / entry_uuid columns of a table of multi-valued attributes of `parent`."""
    return [
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("entry_uuid", UUID, nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(
            ["entry_uuid"],
            [f"{parent}.entry_uuid"],
            ondelete="CASCADE",
            name=f"fk_{table}_entry_uuid_{parent}",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "patient",
        sa.Column("patient_id", ID, nullable=False),
        _timestamp(),
        sa.PrimaryKeyConstraint("patient_id", name="pk_patient"),
    )

    op.create_table(
        "document_entry",
        sa.Column("entry_uuid", UUID, nullable=False),
        sa.Column("logical_id", UUID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("unique_id", ID, nullable=False),
        sa.Column("patient_id", ID, nullable=False),
        sa.Column("status", CODE, nullable=False),
        sa.Column("object_type", CODE, nullable=False),
        sa.Column("mime_type", CODE, nullable=True),
        sa.Column("class_code", CODE, nullable=True),
        sa.Column("class_code_scheme", CODE, nullable=True),
        sa.Column("type_code", CODE, nullable=True),
        sa.Column("type_code_scheme", CODE, nullable=True),
        sa.Column("format_code", CODE, nullable=True),
        sa.Column("format_code_scheme", CODE, nullable=True),
        sa.Column("healthcare_facility_type_code", CODE, nullable=True),
        sa.Column("healthcare_facility_type_code_scheme", CODE, nullable=True),
        sa.Column("practice_setting_code", CODE, nullable=True),
        sa.Column("practice_setting_code_scheme", CODE, nullable=True),
        sa.Column("creation_time", DTM, nullable=True),
        sa.Column("service_start_time", DTM, nullable=True),
        sa.Column("service_stop_time", DTM, nullable=True),
        sa.Column("hash", CODE, nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("repository_unique_id", ID, nullable=True),
        sa.Column("submission_set_uuid", UUID, nullable=True),
        _timestamp(),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("entry_uuid", name="pk_document_entry"),
    )
    op.create_index("uq_document_entry_logical_id_version", "document_entry", ["logical_id", "version"], unique=True)
    op.create_index("ix_document_entry_unique_id", "document_entry", ["unique_id"])
    op.create_index(
        "ix_document_entry_patient_id_status_class_code", "document_entry", ["patient_id", "status", "class_code"]
    )
    op.create_index(
        "ix_document_entry_patient_id_status_type_code", "document_entry", ["patient_id", "status", "type_code"]
    )
    op.create_index(
        "ix_document_entry_patient_id_status_practice_setting_code",
        "document_entry",
        ["patient_id", "status", "practice_setting_code"],
    )
    op.create_index(
        "ix_document_entry_patient_id_status_creation_time", "document_entry", ["patient_id", "status", "creation_time"]
    )

    op.create_table(
        "document_entry_code",
        *_child_of("document_entry", "document_entry_code"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("code", CODE, nullable=False),
        sa.Column("scheme", CODE, nullable=False),
    )
    op.create_index("ix_document_entry_code_entry_uuid", "document_entry_code", ["entry_uuid"])
    op.create_index(
        "ix_document_entry_code_code_scheme_kind_entry_uuid",
        "document_entry_code",
        ["code", "scheme", "kind", "entry_uuid"],
    )

    op.create_table(
        "document_entry_author",
        *_child_of("document_entry", "document_entry_author"),
        sa.Column("author_person", TEXT, nullable=False),
    )
    op.create_index("ix_document_entry_author_entry_uuid", "document_entry_author", ["entry_uuid"])
    op.create_index("ix_document_entry_author_author_person", "document_entry_author", ["author_person"])

    op.create_table(
        "document_entry_reference_id",
        *_child_of("document_entry", "document_entry_reference_id"),
        sa.Column("reference_id", TEXT, nullable=False),
    )
    op.create_index("ix_document_entry_reference_id_entry_uuid", "document_entry_reference_id", ["entry_uuid"])
    op.create_index(
        "ix_document_entry_reference_id_reference_id_entry_uuid",
        "document_entry_reference_id",
        ["reference_id", "entry_uuid"],
    )

    op.create_table(
        "submission_set",
        sa.Column("entry_uuid", UUID, nullable=False),
        sa.Column("unique_id", ID, nullable=False),
        sa.Column("source_id", ID, nullable=True),
        sa.Column("patient_id", ID, nullable=False),
        sa.Column("submission_time", DTM, nullable=True),
        sa.Column("status", CODE, nullable=False),
        sa.Column("content_type_code", CODE, nullable=True),
        sa.Column("content_type_code_scheme", CODE, nullable=True),
        _timestamp(),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("entry_uuid", name="pk_submission_set"),
        sa.UniqueConstraint("unique_id", name="uq_submission_set_unique_id"),
    )
    op.create_index(
        "ix_submission_set_patient_id_status_submission_time",
        "submission_set",
        ["patient_id", "status", "submission_time"],
    )

    op.create_table(
        "submission_set_author",
        *_child_of("submission_set", "submission_set_author"),
        sa.Column("author_person", TEXT, nullable=False),
    )
    op.create_index("ix_submission_set_author_entry_uuid", "submission_set_author", ["entry_uuid"])
    op.create_index("ix_submission_set_author_author_person", "submission_set_author", ["author_person"])

    op.create_table(
        "folder",
        sa.Column("entry_uuid", UUID, nullable=False),
        sa.Column("logical_id", UUID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("unique_id", ID, nullable=False),
        sa.Column("patient_id", ID, nullable=False),
        sa.Column("status", CODE, nullable=False),
        sa.Column("last_update_time", DTM, nullable=True),
        _timestamp(),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("entry_uuid", name="pk_folder"),
    )
    op.create_index("uq_folder_logical_id_version", "folder", ["logical_id", "version"], unique=True)
    op.create_index("ix_folder_unique_id", "folder", ["unique_id"])
    op.create_index(
        "ix_folder_patient_id_status_last_update_time", "folder", ["patient_id", "status", "last_update_time"]
    )

    op.create_table(
        "folder_code",
        *_child_of("folder", "folder_code"),
        sa.Column("code", CODE, nullable=False),
        sa.Column("scheme", CODE, nullable=False),
    )
    op.create_index("ix_folder_code_entry_uuid", "folder_code", ["entry_uuid"])
    op.create_index("ix_folder_code_code_scheme_entry_uuid", "folder_code", ["code", "scheme", "entry_uuid"])

    op.create_table(
        "association",
        sa.Column("entry_uuid", UUID, nullable=False),
        sa.Column("association_type", CODE, nullable=False),
        sa.Column("source", ID, nullable=False),
        sa.Column("target", ID, nullable=False),
        sa.Column("status", CODE, nullable=False),
        sa.Column("submission_set_uuid", UUID, nullable=True),
        _timestamp(),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("entry_uuid", name="pk_association"),
    )
    op.create_index("ix_association_source_association_type", "association", ["source", "association_type"])
    op.create_index("ix_association_target_association_type", "association", ["target", "association_type"])

    op.create_table(
        "repository_document",
        sa.Column("unique_id", ID, nullable=False),
        sa.Column("repository_unique_id", ID, nullable=True),
        sa.Column("path", TEXT, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("hash", CODE, nullable=False),
        sa.Column("mime_type", CODE, nullable=False),
        _timestamp(),
        sa.PrimaryKeyConstraint("unique_id", name="pk_repository_document"),
    )


def downgrade() -> None:
    for table in (
        "repository_document",
        "association",
        "folder_code",
        "folder",
        "submission_set_author",
        "submission_set",
        "document_entry_reference_id",
        "document_entry_author",
        "document_entry_code",
        "document_entry",
        "patient",
    ):
        op.drop_table(table)
