"""A login of the patients' sign-in form claimed in a table of its own.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

- `web_login`: login -> the account holding it (a patient's or a legal representative's). Its
  primary key keeps a login unique across both account tables on every database; on Citus,
  where `dmp_patient_account` is spread by patient and its unique login index holds per patient
  only, it is distributed by login (`dmp-xds db upgrade` does it after this migration), so two
  patients on two workers cannot be given the same login.

Filled from the accounts there are. Two accounts sharing a login could only come from two
creations racing before this table: the patient's keeps it, and the representative's account is
named in a warning: it no longer signs in by that login and needs a new account.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    op.create_table(
        "web_login",
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("login", name="pk_web_login"),
    )
    op.execute(
        "INSERT INTO web_login (login, subject_kind, subject_id) "
        "SELECT login, 'patient', patient_id FROM dmp_patient_account"
    )
    shared = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT representative_id, login FROM web_representative_account "
                "WHERE login IN (SELECT login FROM web_login)"
            )
        )
        .all()
    )
    for representative_id, login in shared:
        log.warning("web_login: representative %s's login %s is a patient's already", representative_id, login)
    op.execute(
        "INSERT INTO web_login (login, subject_kind, subject_id) "
        "SELECT login, 'representative', representative_id FROM web_representative_account "
        "WHERE login NOT IN (SELECT login FROM web_login)"
    )


def downgrade() -> None:
    op.drop_table("web_login")
