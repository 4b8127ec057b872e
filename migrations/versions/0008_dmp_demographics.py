"""The DMP record's administrative data.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

- `dmp_record.usage_name`, `birth_name`, `birth_date`, `gender`: what the HL7 V3 patient
  services (TD0.2, TD1.1, TD1.3) read and write, and PDQ (TD0.5) searches; `person` (JSON) the
  rest of the patient's identity (given names, civility, addresses, telecoms).
Records created before stay without administrative data until an LPS sends them (TD1.3b).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("usage_name", lambda: sa.String(1024)),
    ("birth_name", lambda: sa.String(1024)),
    ("birth_date", lambda: sa.String(14)),
    ("gender", lambda: sa.String(16)),
    ("person", lambda: sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("dmp_record") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dmp_record") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
