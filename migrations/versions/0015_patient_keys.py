"""Every key of a patient's table holds the patient id; entryUUIDs claimed once, across patients.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

Written by hand to match src/dmp_xds/storage/tables.py (a test compares the two). The same
schema on SQLite, PostgreSQL and Citus (docs/scaling.md, "The registry on Citus"): a table
distributed by the patient id can only hold keys and foreign keys that include it, so they do
here everywhere, and `dmp-xds db upgrade` then distributes the tables when the database is Citus.

- `document_entry`, `submission_set`, `folder`, `association`: primary key (patient_id,
  entry_uuid), a plain index on entry_uuid; the (logical_id, version) unique index gets the
  patient id first. `association` gains `patient_id` (XDS refuses associations across
  patients): its submission's patient, else that of the object at either end.
- `submission_set.unique_id` is no longer a unique constraint: `registry_unique_id` already
  holds each uniqueId once (its primary key), across patients.
- the child tables (`document_entry_code`, `_author`, `_reference_id`, `submission_set_author`,
  `folder_code`) gain `patient_id` and refer to their parent by (patient_id, entry_uuid).
- `registry_unique_id` gains the patient of the claiming object: a query by uniqueId asks that
  patient's rows.
- `registry_entry_uuid` (new): each registered object's entryUUID once, with its kind and
  patient: the guard of entryUUID uniqueness across patients and the way to a patient's rows for
  a query by entryUUID. Filled from the registered objects.
- `lifecycle_event.patient_id` is NOT NULL: a change tied to no patient carries "".

SQLite rebuilds tables to change keys (batch mode), and dropping a parent table that children
still refer to would empty them (ON DELETE CASCADE runs on DROP TABLE): the children drop their
foreign key first, the parents are rebuilt, then the children take the new foreign key.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = sa.String(64)
ID = sa.String(256)

PARENTS = ("document_entry", "submission_set", "folder")
CHILDREN = (
    ("document_entry_code", "document_entry"),
    ("document_entry_author", "document_entry"),
    ("document_entry_reference_id", "document_entry"),
    ("submission_set_author", "submission_set"),
    ("folder_code", "folder"),
)
VERSIONED = ("document_entry", "folder")
OBJECTS = (
    ("document_entry", "DocumentEntry"),
    ("submission_set", "SubmissionSet"),
    ("folder", "Folder"),
    ("association", "Association"),
)


def upgrade() -> None:
    # The children let go of their parents (old foreign key), and learn their patient.
    for child, parent in CHILDREN:
        with op.batch_alter_table(child) as batch:
            batch.drop_constraint(f"fk_{child}_entry_uuid_{parent}", type_="foreignkey")
            batch.drop_index(f"ix_{child}_entry_uuid")
            batch.add_column(sa.Column("patient_id", ID, nullable=True))
        op.execute(
            f"UPDATE {child} SET patient_id = "
            f"(SELECT p.patient_id FROM {parent} AS p WHERE p.entry_uuid = {child}.entry_uuid)"
        )
        op.execute(f"UPDATE {child} SET patient_id = '' WHERE patient_id IS NULL")

    op.add_column("association", sa.Column("patient_id", ID, nullable=True))
    op.execute("""
        UPDATE association SET patient_id = COALESCE(
            (SELECT s.patient_id FROM submission_set AS s WHERE s.entry_uuid = association.submission_set_uuid),
            (SELECT d.patient_id FROM document_entry AS d WHERE d.entry_uuid = association.source),
            (SELECT f.patient_id FROM folder AS f WHERE f.entry_uuid = association.source),
            (SELECT s.patient_id FROM submission_set AS s WHERE s.entry_uuid = association.source),
            (SELECT d.patient_id FROM document_entry AS d WHERE d.entry_uuid = association.target),
            (SELECT f.patient_id FROM folder AS f WHERE f.entry_uuid = association.target),
            '')
    """)

    # The objects: keyed by (patient_id, entry_uuid).
    for table in (*PARENTS, "association"):
        with op.batch_alter_table(table) as batch:
            if table == "association":
                batch.alter_column("patient_id", existing_type=ID, nullable=False)
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["patient_id", "entry_uuid"])
            if table == "submission_set":
                batch.drop_constraint("uq_submission_set_unique_id", type_="unique")
                batch.create_index("ix_submission_set_unique_id", ["unique_id"])
            if table in VERSIONED:
                batch.drop_index(f"uq_{table}_logical_id_version")
                batch.create_index(
                    f"uq_{table}_logical_id_version", ["patient_id", "logical_id", "version"], unique=True
                )
            batch.create_index(f"ix_{table}_entry_uuid", ["entry_uuid"])

    # The children hold on to their parents again, by (patient_id, entry_uuid).
    for child, parent in CHILDREN:
        with op.batch_alter_table(child) as batch:
            batch.alter_column("patient_id", existing_type=ID, nullable=False)
            batch.create_foreign_key(
                f"fk_{child}_patient_id_{parent}",
                parent,
                ["patient_id", "entry_uuid"],
                ["patient_id", "entry_uuid"],
                ondelete="CASCADE",
            )
            batch.create_index(f"ix_{child}_patient_id_entry_uuid", ["patient_id", "entry_uuid"])

    with op.batch_alter_table("registry_unique_id") as batch:
        batch.add_column(sa.Column("patient_id", ID, nullable=True))
    op.execute("""
        UPDATE registry_unique_id SET patient_id = COALESCE(CASE kind
            WHEN 'SubmissionSet' THEN
                (SELECT s.patient_id FROM submission_set AS s WHERE s.entry_uuid = registry_unique_id.holder)
            WHEN 'Folder' THEN
                (SELECT MIN(f.patient_id) FROM folder AS f WHERE f.logical_id = registry_unique_id.holder)
            ELSE
                (SELECT MIN(d.patient_id) FROM document_entry AS d WHERE d.unique_id = registry_unique_id.unique_id
                    AND lower(coalesce(d.hash, '')) = registry_unique_id.holder)
            END, '')
    """)
    with op.batch_alter_table("registry_unique_id") as batch:
        batch.alter_column("patient_id", existing_type=ID, nullable=False)

    op.create_table(
        "registry_entry_uuid",
        sa.Column("entry_uuid", UUID, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("patient_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("entry_uuid", name="pk_registry_entry_uuid"),
    )
    objects = " UNION ALL ".join(
        f"SELECT entry_uuid, '{kind}' AS kind, patient_id, {i} AS rank FROM {table}"
        for i, (table, kind) in enumerate(OBJECTS)
    )
    op.execute(f"""
        INSERT INTO registry_entry_uuid (entry_uuid, kind, patient_id)
        SELECT entry_uuid, kind, patient_id FROM (
            SELECT entry_uuid, kind, patient_id,
                   ROW_NUMBER() OVER (PARTITION BY entry_uuid ORDER BY rank, patient_id) AS n
            FROM ({objects}) AS registered
        ) AS ranked
        WHERE n = 1
    """)

    op.execute("UPDATE lifecycle_event SET patient_id = '' WHERE patient_id IS NULL")
    with op.batch_alter_table("lifecycle_event") as batch:
        batch.alter_column("patient_id", existing_type=ID, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("lifecycle_event") as batch:
        batch.alter_column("patient_id", existing_type=ID, nullable=True)
    op.drop_table("registry_entry_uuid")
    with op.batch_alter_table("registry_unique_id") as batch:
        batch.drop_column("patient_id")
    for child, parent in CHILDREN:
        with op.batch_alter_table(child) as batch:
            batch.drop_index(f"ix_{child}_patient_id_entry_uuid")
            batch.drop_constraint(f"fk_{child}_patient_id_{parent}", type_="foreignkey")
    for table in (*PARENTS, "association"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_entry_uuid")
            if table in VERSIONED:
                batch.drop_index(f"uq_{table}_logical_id_version")
                batch.create_index(f"uq_{table}_logical_id_version", ["logical_id", "version"], unique=True)
            if table == "submission_set":
                batch.drop_index("ix_submission_set_unique_id")
                batch.create_unique_constraint("uq_submission_set_unique_id", ["unique_id"])
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["entry_uuid"])
            if table == "association":
                batch.drop_column("patient_id")
    for child, parent in CHILDREN:
        with op.batch_alter_table(child) as batch:
            batch.drop_column("patient_id")
            batch.create_foreign_key(
                f"fk_{child}_entry_uuid_{parent}", parent, ["entry_uuid"], ["entry_uuid"], ondelete="CASCADE"
            )
            batch.create_index(f"ix_{child}_entry_uuid", ["entry_uuid"])
