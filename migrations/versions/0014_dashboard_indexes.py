"""The professional's dashboard (TableauDeBord, TD0.4) without scanning the trace or the grants.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

- `ix_audit_entry_patient_id_action_actor_id_outcome_recorded_at`: the dates TD0.4 lists for each
  authorized patient (the caller's last access, the documents' last change: `AuditTrail.
  last_accesses`) read from the index alone, not from every trace row of every patient.
- `ix_dmp_authorization_grantee_kind`: the records a professional (or a structure) is authorized
  on (`DmpStore.authorized_on`), found by the grantee instead of a scan of every grant.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_audit_entry_patient_id_action_actor_id_outcome_recorded_at",
        "audit_entry",
        ["patient_id", "action", "actor_id", "outcome", "recorded_at"],
    )
    op.create_index("ix_dmp_authorization_grantee_kind", "dmp_authorization", ["grantee", "kind"])


def downgrade() -> None:
    op.drop_index("ix_dmp_authorization_grantee_kind", table_name="dmp_authorization")
    op.drop_index("ix_audit_entry_patient_id_action_actor_id_outcome_recorded_at", table_name="audit_entry")
