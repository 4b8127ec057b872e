"""One owner per uniqueId, held by the database: `registry_unique_id`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two).

- `registry_unique_id`: each registered uniqueId once (primary key), with what names it: the
  kind of object and its `holder` (a DocumentEntry's hash in lower case, a Folder's logical id,
  a SubmissionSet's entryUUID). The registry rules read before they write, so two submissions
  of one uniqueId at once both passed them; every submission now inserts its claims, and the
  primary key refuses the second owner while an identical claim (the same document again, a
  new version) is a no-op through the unique index on (unique_id, kind, holder).

Filled from the registered objects. A registry written before this revision may already hold
a uniqueId twice (different hashes, two folders: the race this closes). Nothing registered is
changed or removed: the first registration (by creation time) keeps the uniqueId, the others
stay as they are, and the migration names those uniqueIds in a warning so that an operator can
deprecate or delete the extra objects.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(256)
CODE = sa.String(256)
SHOWN_DUPLICATES = 20

log = logging.getLogger(__name__)

# The claims of the registered objects, as the store makes them: a DocumentEntry's by its
# first version (a later one may have changed the hash), with its creation time.
CLAIMS = """
    SELECT unique_id, 'SubmissionSet' AS kind, entry_uuid AS holder, created_at FROM submission_set
    UNION ALL SELECT unique_id, 'Folder', logical_id, created_at FROM folder
    UNION ALL SELECT unique_id, 'DocumentEntry', lower(coalesce(hash, '')), created_at FROM document_entry AS d
        WHERE version = (SELECT min(version) FROM document_entry AS v WHERE v.logical_id = d.logical_id)
"""


def upgrade() -> None:
    op.create_table(
        "registry_unique_id",
        sa.Column("unique_id", ID, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("holder", CODE, nullable=False),
        sa.PrimaryKeyConstraint("unique_id", name="pk_registry_unique_id"),
    )
    op.create_index(
        "uq_registry_unique_id_unique_id_kind_holder",
        "registry_unique_id",
        ["unique_id", "kind", "holder"],
        unique=True,
    )
    op.execute(f"""
        INSERT INTO registry_unique_id (unique_id, kind, holder)
        SELECT unique_id, kind, holder FROM (
            SELECT unique_id, kind, holder,
                   ROW_NUMBER() OVER (PARTITION BY unique_id ORDER BY created_at, kind, holder) AS n
            FROM ({CLAIMS}) AS claims
        ) AS ranked
        WHERE n = 1
    """)
    shared = (
        op.get_bind()
        .execute(
            sa.text(f"""
        SELECT unique_id FROM (SELECT DISTINCT unique_id, kind, holder FROM ({CLAIMS}) AS claims) AS distinct_claims
        GROUP BY unique_id HAVING COUNT(*) > 1 ORDER BY unique_id
    """)
        )
        .scalars()
        .all()
    )
    if shared:
        shown = ", ".join(shared[:SHOWN_DUPLICATES]) + (", ..." if len(shared) > SHOWN_DUPLICATES else "")
        log.warning(
            "%d uniqueIds were registered for more than one object (other hashes, folders or kinds): "
            "the first registration keeps each, the others are left as they are; deprecate or delete "
            "them (ITI-57, ITI-62): %s",
            len(shared),
            shown,
        )


def downgrade() -> None:
    op.drop_table("registry_unique_id")
