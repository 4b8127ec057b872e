"""The registry (and repository) tables, SQLAlchemy 2 declarative.

Every object keeps its full model in `data` (JSON) so queries give back what was submitted; the
other columns exist only to be searched, and the indexes follow the ITI-18 stored queries:
every query but GetDocuments-by-uniqueId starts from a patient id and a status.

Versions (ITI-57): the versions of one DocumentEntry or Folder share `logical_id` (and the
uniqueId) and differ by `version`, so uniqueness is on (logical_id, version), never on
unique_id alone. A DocumentEntry uniqueId may also be registered again for the very same
document (same hash, NIST 12004), which rules out a unique index on it. What a uniqueId names
is held once in `registry_unique_id` instead, whose primary key refuses a second owner.

Times are stored as 14-digit padded DTM strings (`serialize.sortable_dtm`): string order is time
order on every database. Lengths are generous on purpose: PostgreSQL enforces them and an
over-long value must not turn a submission into a server error.

Alembic owns the schema: a change here needs a migration in migrations/versions/.
"""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, overload

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Sequence,
    String,
    Table,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

UUID_LENGTH = 64  # urn:uuid:... is 45 characters
ID_LENGTH = 256  # uniqueIds (≤ 128), OIDs, CX patient ids
CODE_LENGTH = 256
TEXT_LENGTH = 1024  # XCN author persons, reference ids, file paths
DTM_LENGTH = 14

# Deterministic constraint names, so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Table info key: the columns of a unique index on which an INSERT of the table ignores a
# conflict (ON CONFLICT (...) DO NOTHING), an existing identical row being the expected case.
INSERT_IGNORING_CONFLICTS_ON = "insert_ignoring_conflicts_on"

# An autoincrement key that is a true rowid alias on SQLite (INTEGER PRIMARY KEY) and 64 bits
# elsewhere.
RowId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON}

    if TYPE_CHECKING:
        # SQLAlchemy types `__table__` as any FROM clause (a class may be mapped to a join or a
        # select); every class here is mapped to one table, which the storage code writes to.
        __table__: ClassVar[Table]


class PatientRow(Base):
    """Patients with a DMP: the registry accepts metadata only for them (ITI-8 / `patient add`)."""

    __tablename__ = "patient"

    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DocumentEntryRow(Base):
    __tablename__ = "document_entry"

    entry_uuid: Mapped[str] = mapped_column(String(UUID_LENGTH))
    logical_id: Mapped[str] = mapped_column(String(UUID_LENGTH))
    version: Mapped[int] = mapped_column(Integer)
    unique_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    status: Mapped[str] = mapped_column(String(CODE_LENGTH))
    object_type: Mapped[str] = mapped_column(String(CODE_LENGTH))
    mime_type: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    class_code: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    class_code_scheme: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    type_code: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    type_code_scheme: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    format_code: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    format_code_scheme: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    healthcare_facility_type_code: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    healthcare_facility_type_code_scheme: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    practice_setting_code: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    practice_setting_code_scheme: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    creation_time: Mapped[str | None] = mapped_column(String(DTM_LENGTH))
    service_start_time: Mapped[str | None] = mapped_column(String(DTM_LENGTH))
    service_stop_time: Mapped[str | None] = mapped_column(String(DTM_LENGTH))
    hash: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    size: Mapped[int | None] = mapped_column(BigInteger)
    repository_unique_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    submission_set_uuid: Mapped[str | None] = mapped_column(String(UUID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The latest version of its logical id (ITI-57): what stored queries return by default.
    is_latest: Mapped[bool] = mapped_column(Boolean, server_default=true())

    __table_args__ = (
        # Keyed within the patient's DMP (docs/scaling.md: every key of a patient's table holds
        # the patient id, so that Citus keeps it on the patient's shard); an entryUUID is unique
        # across patients through registry_entry_uuid.
        PrimaryKeyConstraint("patient_id", "entry_uuid"),
        # ITI-57: one row per version; two concurrent updates of a document cannot both win.
        Index("uq_document_entry_logical_id_version", "patient_id", "logical_id", "version", unique=True),
        # An object named by its entryUUID alone (lifecycle, deletion, a multi-shard lookup).
        Index(None, "entry_uuid"),
        # FindDocuments / GetAll / FindDocumentsByReferenceId: patient + status + a code.
        Index(None, "patient_id", "status", "class_code"),
        Index(None, "patient_id", "status", "type_code"),
        Index(None, "patient_id", "status", "practice_setting_code"),
        Index(None, "patient_id", "status", "creation_time"),
    )


class DocumentEntryCodeRow(Base):
    """The multi-valued codes of a DocumentEntry (kind: confidentiality | event)."""

    __tablename__ = "document_entry_code"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    entry_uuid: Mapped[str] = mapped_column(String(UUID_LENGTH))
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(CODE_LENGTH))
    scheme: Mapped[str] = mapped_column(String(CODE_LENGTH))

    # Covers "entry_uuid IN (SELECT entry_uuid ... WHERE code = ? AND scheme = ? AND kind = ?)".
    __table_args__ = (
        ForeignKeyConstraint(
            ["patient_id", "entry_uuid"], ["document_entry.patient_id", "document_entry.entry_uuid"], ondelete="CASCADE"
        ),
        Index(None, "patient_id", "entry_uuid"),
        Index(None, "code", "scheme", "kind", "entry_uuid"),
    )


class DocumentEntryAuthorRow(Base):
    __tablename__ = "document_entry_author"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    entry_uuid: Mapped[str] = mapped_column(String(UUID_LENGTH))
    author_person: Mapped[str] = mapped_column(String(TEXT_LENGTH), index=True)

    __table_args__ = (
        ForeignKeyConstraint(
            ["patient_id", "entry_uuid"], ["document_entry.patient_id", "document_entry.entry_uuid"], ondelete="CASCADE"
        ),
        Index(None, "patient_id", "entry_uuid"),
    )


class DocumentEntryReferenceIdRow(Base):
    __tablename__ = "document_entry_reference_id"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    entry_uuid: Mapped[str] = mapped_column(String(UUID_LENGTH))
    reference_id: Mapped[str] = mapped_column(String(TEXT_LENGTH))

    __table_args__ = (
        ForeignKeyConstraint(
            ["patient_id", "entry_uuid"], ["document_entry.patient_id", "document_entry.entry_uuid"], ondelete="CASCADE"
        ),
        Index(None, "patient_id", "entry_uuid"),
        Index(None, "reference_id", "entry_uuid"),
    )


class SubmissionSetRow(Base):
    __tablename__ = "submission_set"

    entry_uuid: Mapped[str] = mapped_column(String(UUID_LENGTH))
    # Unique across patients through registry_unique_id (a unique index here could not hold on
    # Citus, where it would have to include the patient id).
    unique_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    source_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    submission_time: Mapped[str | None] = mapped_column(String(DTM_LENGTH))
    status: Mapped[str] = mapped_column(String(CODE_LENGTH))
    content_type_code: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    content_type_code_scheme: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    # FindSubmissionSets / GetAll: patient + status (+ submission time range).
    __table_args__ = (
        PrimaryKeyConstraint("patient_id", "entry_uuid"),
        Index(None, "entry_uuid"),
        Index(None, "patient_id", "status", "submission_time"),
    )


class SubmissionSetAuthorRow(Base):
    __tablename__ = "submission_set_author"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    entry_uuid: Mapped[str] = mapped_column(String(UUID_LENGTH))
    author_person: Mapped[str] = mapped_column(String(TEXT_LENGTH), index=True)

    __table_args__ = (
        ForeignKeyConstraint(
            ["patient_id", "entry_uuid"], ["submission_set.patient_id", "submission_set.entry_uuid"], ondelete="CASCADE"
        ),
        Index(None, "patient_id", "entry_uuid"),
    )


class FolderRow(Base):
    __tablename__ = "folder"

    entry_uuid: Mapped[str] = mapped_column(String(UUID_LENGTH))
    logical_id: Mapped[str] = mapped_column(String(UUID_LENGTH))
    version: Mapped[int] = mapped_column(Integer)
    unique_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    status: Mapped[str] = mapped_column(String(CODE_LENGTH))
    last_update_time: Mapped[str | None] = mapped_column(String(DTM_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    is_latest: Mapped[bool] = mapped_column(Boolean, server_default=true())

    __table_args__ = (
        PrimaryKeyConstraint("patient_id", "entry_uuid"),
        Index("uq_folder_logical_id_version", "patient_id", "logical_id", "version", unique=True),
        Index(None, "entry_uuid"),
        # FindFolders / GetAll: patient + status (+ last update time range).
        Index(None, "patient_id", "status", "last_update_time"),
    )


class FolderCodeRow(Base):
    __tablename__ = "folder_code"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    entry_uuid: Mapped[str] = mapped_column(String(UUID_LENGTH))
    code: Mapped[str] = mapped_column(String(CODE_LENGTH))
    scheme: Mapped[str] = mapped_column(String(CODE_LENGTH))

    __table_args__ = (
        ForeignKeyConstraint(
            ["patient_id", "entry_uuid"], ["folder.patient_id", "folder.entry_uuid"], ondelete="CASCADE"
        ),
        Index(None, "patient_id", "entry_uuid"),
        Index(None, "code", "scheme", "entry_uuid"),
    )


class AssociationRow(Base):
    """Associations. source/target are not foreign keys: they may name any kind of object.
    `patient_id` is the patient of the objects it links: XDS refuses an association across
    patients, which lets it live on its patient's shard."""

    __tablename__ = "association"

    entry_uuid: Mapped[str] = mapped_column(String(UUID_LENGTH))
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    association_type: Mapped[str] = mapped_column(String(CODE_LENGTH))
    source: Mapped[str] = mapped_column(String(ID_LENGTH))
    target: Mapped[str] = mapped_column(String(ID_LENGTH))
    status: Mapped[str] = mapped_column(String(CODE_LENGTH))
    submission_set_uuid: Mapped[str | None] = mapped_column(String(UUID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    # GetAssociations, GetSubmissionSets, "...AndContents", GetRelatedDocuments: by either end.
    __table_args__ = (
        PrimaryKeyConstraint("patient_id", "entry_uuid"),
        Index(None, "entry_uuid"),
        Index(None, "source", "association_type"),
        Index(None, "target", "association_type"),
    )


class RegistryUniqueIdRow(Base):
    """What each registered uniqueId names (migration 0006): the database's own guard, since the
    registry rules read what is registered before the submission is written.

    `holder` is what a second registration of the uniqueId must share to be the same object: a
    DocumentEntry's hash in lower case (the same document registered again, NIST 12004), a
    Folder's logical id, a SubmissionSet's entryUUID (nothing else). Every registration writes
    its claims, inserted with ON CONFLICT on the unique index (`info` below): the same claim
    again is a no-op, another one for the uniqueId breaks the primary key, under any
    concurrency, on SQLite and PostgreSQL alike. A new version (ITI-57) keeps the claim of its
    logical object, made by its first version.
    """

    __tablename__ = "registry_unique_id"

    unique_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # DocumentEntry | Folder | SubmissionSet
    holder: Mapped[str] = mapped_column(String(CODE_LENGTH))
    # The patient of the object that made the claim (migration 0015): where a query by uniqueId
    # finds it (on Citus, the shard to route to).
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH))

    __table_args__ = (
        Index("uq_registry_unique_id_unique_id_kind_holder", "unique_id", "kind", "holder", unique=True),
        {"info": {INSERT_IGNORING_CONFLICTS_ON: ("unique_id", "kind", "holder")}},
    )


class RegistryEntryUuidRow(Base):
    """Every registered object's entryUUID once, with its kind and patient (migration 0015).

    The patient's tables are keyed by (patient_id, entry_uuid), so that Citus keeps each
    patient's rows on one shard; this table keeps the entryUUID unique across patients (its
    primary key refuses a second object with the same id, whoever its patient) and tells a
    query by entryUUID which patient, hence which shard, to ask. Written with the objects, in
    their transaction; deleted with them (ITI-62)."""

    __tablename__ = "registry_entry_uuid"

    entry_uuid: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # DocumentEntry | Folder | SubmissionSet | Association
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH))


class RepositoryDocumentRow(Base):
    """The repository actor's own table: where a document's bytes are (ITI-41 / ITI-43)."""

    __tablename__ = "repository_document"

    unique_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    repository_unique_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    # Indexed for the sweep of unreferenced documents (storage/document_sweep.py), which asks
    # whether a location is named, a batch at a time.
    path: Mapped[str] = mapped_column(String(TEXT_LENGTH), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(CODE_LENGTH))
    mime_type: Mapped[str] = mapped_column(String(CODE_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LifecycleEventRow(Base):
    """One change the registry made to stored metadata (migration 0004).

    Written in the transaction of the change: deprecation by a replacement, a new version, an
    availability status change, a folder's update, a deletion. `actor` is who asked, when the
    security gate knows it; `detail` says what changed (statuses, versions, ids).
    """

    __tablename__ = "lifecycle_event"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    transaction: Mapped[str] = mapped_column(String(16))  # ITI-41 | ITI-42 | ITI-57 | ITI-62
    action: Mapped[str] = mapped_column(String(32))
    object_kind: Mapped[str] = mapped_column(String(32))
    object_uuid: Mapped[str] = mapped_column(String(UUID_LENGTH), index=True)
    logical_id: Mapped[str | None] = mapped_column(String(UUID_LENGTH))
    # The patient of the object changed; "" for a change tied to no patient (NOT NULL: the
    # table is distributed by it on Citus, which refuses a NULL there).
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    submission_set_uuid: Mapped[str | None] = mapped_column(String(UUID_LENGTH))
    actor: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)

    # A patient's history, in order.
    __table_args__ = (Index(None, "patient_id", "id"),)


# --- the DMP itself and its access trace (migration 0003) -----------------------------------

HASH_LENGTH = 64  # SHA-256 and HMAC-SHA-256, hex
KEY_ID_LENGTH = 32  # audit/keys.py: 16 hex digits today
STAMP_LENGTH = 32  # ISO 8601 UTC with microseconds, kept as the exact text that was hashed


class DmpRecordRow(Base):
    """A patient's DMP: consent, emergency-access choices, open or closed."""

    __tablename__ = "dmp_record"

    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # open | closed
    consent_collected_by: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    consent_collected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    emergency_access_allowed: Mapped[bool] = mapped_column(Boolean)
    regulation_access_allowed: Mapped[bool] = mapped_column(Boolean)  # SAMU "centre 15"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_reason: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    # Where the patient is told of emergency accesses besides the notification list (migration 0005).
    notification_email: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    # The patient's administrative data (migration 0008): the names and birth date searched by
    # PDQ (TD0.5) in columns, the rest (given names, civility, addresses, telecoms) in `person`.
    # No index: the search is case-insensitive and rare (regulation centres only).
    usage_name: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    birth_name: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    birth_date: Mapped[str | None] = mapped_column(String(DTM_LENGTH))
    gender: Mapped[str | None] = mapped_column(String(16))
    person: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DmpAuthorizationRow(Base):
    """Who the patient lets in: a professional (one year, renewable, revocable), the attending
    doctor, or an establishment's care team for a stay."""

    __tablename__ = "dmp_authorization"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("dmp_record.patient_id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # professional | attending | establishment
    grantee: Mapped[str] = mapped_column(String(ID_LENGTH))  # national id, or structure id
    granted_by: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reference: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))  # the stay, for an establishment
    # Who the grantee was at the grant (their VIHF and card: TD1.6 lists them so), and when the
    # grant last changed (migration 0009). A `blocked` row is the patient's "no" to a professional.
    first_name: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    last_name: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    specialties: Mapped[list[str] | None] = mapped_column(JSON)
    last_action_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Every request of a professional asks "may X see patient P": by patient, then grantee; TD0.4
    # (the professional's dashboard) asks which records let X in: by grantee (migration 0014).
    __table_args__ = (Index(None, "patient_id", "grantee"), Index(None, "grantee", "kind"))


class AuditEntryRow(Base):
    """The access trace: append-only, one hash chain per patient (migration 0016). A row's MAC
    (HMAC-SHA-256 under the key `key_id` names) covers its fields, its place in its patient's
    chain (`chain_seq`, 1, 2, ...) and the MAC of the chain's previous row. `seq` numbers every
    row of the trace in one order (`AUDIT_SEQUENCE`), for reading and for what refers to a row.

    Rows from before migration 0016 have no `chain_seq`: they form the single global chain of
    that time, chained by `seq` and closed by `audit_legacy_head`; those from before migration
    0007 carry a plain SHA-256 and an empty `key_id`."""

    __tablename__ = "audit_entry"

    seq: Mapped[int] = mapped_column(BigInteger, autoincrement=False)
    recorded_at: Mapped[str] = mapped_column(String(STAMP_LENGTH))
    actor_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    actor_name: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    actor_role: Mapped[str] = mapped_column(String(CODE_LENGTH))
    structure_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    access_mode: Mapped[str] = mapped_column(String(CODE_LENGTH))
    access_reason: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    action: Mapped[str] = mapped_column(String(CODE_LENGTH))
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    documents: Mapped[list[str]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(CODE_LENGTH))
    detail: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    prev_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH), server_default="")
    chain_seq: Mapped[int | None] = mapped_column(BigInteger)

    # The key and every unique index start with the patient: on a database distributed by patient
    # they must hold the distribution column, and a patient's history (`patient_id, seq`) and chain
    # (`patient_id, chain_seq`) are read from them. `seq` alone: the trace in its global order
    # (the global chain from before migration 0016 is verified in it). An establishment's
    # dashboard counts its structure's requests of a kind over a month (migration 0011); a
    # professional's dashboard (TD0.4) reads when they, or anyone, last acted on each of their
    # patients' records from the index alone (migration 0014).
    __table_args__ = (
        PrimaryKeyConstraint("patient_id", "seq"),
        Index(None, "patient_id", "chain_seq", unique=True),
        Index(None, "seq"),
        Index(None, "structure_id", "action", "recorded_at"),
        Index(None, "patient_id", "action", "actor_id", "outcome", "recorded_at"),
    )


class AuditHeadRow(Base):
    """The head of one patient's chain (`patient_id` empty: the chain of the events of no
    patient, a failed sign-in of an unknown login for one): the place of its last row. Moving it
    on first serializes the appends of one patient only (a row lock on PostgreSQL; on SQLite every
    write takes the file's write lock anyway) and reads that row's MAC in the same statement; it
    lets `verify` see a chain's cut-off tail (one cut with the head moved back too is seen against
    the exported checkpoints). No MAC of its own: the last row has it, and an append would have
    to write it back."""

    __tablename__ = "audit_head"

    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    chain_seq: Mapped[int] = mapped_column(BigInteger)


class AuditLegacyHeadRow(Base):
    """The head of the single global chain written before per-patient chains (migration 0016
    moved the old `audit_head` row here): the last `seq` and MAC of that chain. Never written
    again; what it closes still verifies as it did."""

    __tablename__ = "audit_legacy_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(HASH_LENGTH))


# The trace's global order (`audit_entry.seq`) on PostgreSQL: no lock, no row shared by the
# appends of different patients. SQLite has no sequences; its appends take the file's write
# lock before they number their rows, the one writer at a time reads the last `seq`.
AUDIT_SEQUENCE = Sequence("audit_entry_seq", metadata=Base.metadata)


# --- notifications, legal representatives, shared VIHF replay cache (migration 0005) ----------


class DmpNotificationRow(Base):
    """What the patient is told (an emergency access to their record), and whether the optional
    e-mail went out. `audit_seq` is the trace row it comes from."""

    __tablename__ = "dmp_notification"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("dmp_record.patient_id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(32))  # emergency-access | regulation-access
    audit_seq: Mapped[int] = mapped_column(BigInteger)
    actor_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    actor_name: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    structure_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    reason: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    message: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    emailed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    email_error: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    # The e-mail queue (storage/notifications.py, migration 0017): when the next attempt may be
    # made (NULL: none owed), and how many were made.
    email_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    email_attempts: Mapped[int] = mapped_column(Integer, server_default="0")

    # The patient reads their notifications, newest first; the senders take the due e-mails.
    __table_args__ = (Index(None, "patient_id", "id"), Index(None, "email_due_at"))


class DmpRepresentativeRow(Base):
    """A legal representative of a minor patient, declared by the operator."""

    __tablename__ = "dmp_representative"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("dmp_record.patient_id", ondelete="CASCADE"))
    representative_id: Mapped[str] = mapped_column(String(ID_LENGTH))  # the NameID of their VIHF
    declared_by: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    declared_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index(None, "patient_id", "representative_id"),)


class VihfReplayRow(Base):
    """VIHF assertion ids already used, shared by every worker process: inserting an id twice
    fails on the primary key, which is the replay check. Rows past `expires_at` are purged."""

    __tablename__ = "vihf_replay"

    assertion_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


# --- the patient's web account (migration 0009) ----------------------------------------------


class DmpPatientAccountRow(Base):
    """The patient's account on the web front, created by a professional (TD1.5a): a login, the
    scrypt hash of its password (the clear one-time password is given once, in the answer), the
    one-time-password channels (SMS numbers, e-mail addresses), and whether it is locked."""

    __tablename__ = "dmp_patient_account"

    patient_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("dmp_record.patient_id", ondelete="CASCADE"), primary_key=True
    )
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    # The password was given by a professional: the web front makes the patient choose another.
    password_temporary: Mapped[bool] = mapped_column(Boolean)
    channels: Mapped[list[dict[str, str]]] = mapped_column(JSON)  # [{"type": "SMS", "canal": "06..."}]
    created_by: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked: Mapped[bool] = mapped_column(Boolean)
    failed_logins: Mapped[int] = mapped_column(Integer)


# --- the web front: sessions, pending sign-ins, attempts, TOTP, dashboard accounts (migration 0010)


class WebSessionRow(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's random token is kept, so that a
    copy of the database opens no session. Every worker process reads the same rows.

    subject_kind: patient | representative | professional | establishment; subject_id: the INS,
    the representative's id, the national id, or the structure id (with the account's login);
    acting_for: the INS of the record a patient or a representative acts on; fingerprint: the
    card or organisation certificate the session is bound to ("" for a password sign-in)."""

    __tablename__ = "web_session"

    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    acting_for: Mapped[str] = mapped_column(String(ID_LENGTH))
    structure_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    display_name: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    fingerprint: Mapped[str] = mapped_column(String(HASH_LENGTH))
    csrf_token: Mapped[str] = mapped_column(String(HASH_LENGTH))
    # Signed in, but the temporary password must be changed before anything else.
    must_change_password: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean)

    # "Sign out everywhere": every session of a subject.
    __table_args__ = (Index(None, "subject_kind", "subject_id"),)


class WebChallengeRow(Base):
    """A sign-in whose password was right, waiting for its second factor: the SHA-256 of the
    pending cookie's token, the SHA-256 of the code sent (none for TOTP), until when, the wrong
    codes so far, and whether it was used (a code is good once)."""

    __tablename__ = "web_challenge"

    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    method: Mapped[str] = mapped_column(String(16))  # EMAIL | SMS | TOTP
    code_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer)
    used: Mapped[bool] = mapped_column(Boolean)


class WebAttemptRow(Base):
    """A failed sign-in, counted per client address and per login (`key`) for rate limiting
    across worker processes. Rows past the window are purged."""

    __tablename__ = "web_attempt"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(ID_LENGTH))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index(None, "key", "at"),)


class WebTotpRow(Base):
    """A TOTP (RFC 6238) secret enrolled by a web account, and the last time step used (a code
    is good once)."""

    __tablename__ = "web_totp"

    subject_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    secret: Mapped[str] = mapped_column(String(128))  # base32
    enrolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_step: Mapped[int] = mapped_column(BigInteger)


class WebAccountRow(Base):
    """An establishment dashboard account the operator creates for a structure: a login, the
    scrypt hash of its password; its TOTP secret is in web_totp (mandatory)."""

    __tablename__ = "web_account"

    structure_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    login: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled: Mapped[bool] = mapped_column(Boolean)
    locked: Mapped[bool] = mapped_column(Boolean)
    failed_logins: Mapped[int] = mapped_column(Integer)


class WebRepresentativeAccountRow(Base):
    """A minor's legal representative's account on the web front, made by the operator: the same
    credentials as a patient's account (dmp_patient_account), keyed by the representative's id as
    the records declare it (dmp_representative.representative_id). Not tied to one record: the
    records they act on are those that declare them, read at each sign-in and each request."""

    __tablename__ = "web_representative_account"

    representative_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    password_temporary: Mapped[bool] = mapped_column(Boolean)
    channels: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked: Mapped[bool] = mapped_column(Boolean)
    failed_logins: Mapped[int] = mapped_column(Integer)


class WebLoginRow(Base):
    """A login of the patients' sign-in form, held by one account: a patient's or a legal
    representative's (one form serves both). Its primary key keeps a login unique across both
    tables on every database, a Citus cluster included, where the patients' accounts are spread
    by patient and a unique index on their login holds per patient only (docs/scaling.md). A
    sign-in finds the account through it."""

    __tablename__ = "web_login"

    login: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))  # patient | representative
    subject_id: Mapped[str] = mapped_column(String(ID_LENGTH))


class StatsClosedMonthRow(Base):
    """A structure's dashboard figures for a month that is over (storage/stats.py `Activity`, as
    JSON): the trace only gets rows stamped when they are written, so a past month's figures no
    longer change, and every worker process and every restart reads them here rather than from
    the trace again. Counts only: no patient, no document id."""

    __tablename__ = "stats_closed_month"

    structure_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


metadata = Base.metadata


@overload
def utc_aware(value: dt.datetime) -> dt.datetime: ...
@overload
def utc_aware(value: None) -> None: ...
def utc_aware(value: dt.datetime | None) -> dt.datetime | None:
    """A datetime read from a column, in UTC: SQLite gives back naive datetimes, stored in UTC."""
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value
