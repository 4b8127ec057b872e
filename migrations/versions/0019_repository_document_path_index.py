"""An index on the documents' locations, for the sweep of unreferenced documents.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

- `ix_repository_document_path`: `dmp-xds documents sweep` asks, a batch of locations at a time,
  which ones a registry row names (storage/document_sweep.py); without the index each batch would
  read the whole table. On Citus the index is made on every shard.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_repository_document_path", "repository_document", ["path"])


def downgrade() -> None:
    op.drop_index("ix_repository_document_path", table_name="repository_document")
