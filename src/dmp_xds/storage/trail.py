"""The chained access trace: one hash chain per patient.

Each row's MAC covers its fields, its place in its patient's chain (`chain_seq`) and the MAC of
the chain's previous row, so that an edited row no longer matches its MAC, a deleted row leaves a
gap in its chain or breaks it, and a cut-off tail no longer reaches the chain's head
(`audit_head`, one row per patient: the place of the chain's last row). Events of no patient (a
failed sign-in of an unknown login: `patient_id` empty) form one chain of their own. Rows are
only ever inserted; nothing in dmp-xds updates or deletes them.

Why per patient: an append locks its chain's head, the only way two writers can agree on the
previous MAC. With one global chain that lock was every request's, in every server process, and
on a database distributed by patient the head lived on one node: each request's trace row would
have become a transaction across two nodes. Per patient, an append touches only rows of its own
patient (`audit_entry` and `audit_head` are keyed by `patient_id`, on the patient's shard), and
only appends for the same patient wait for each other.

The global order (`seq`) is given by a database sequence (`tables.AUDIT_SEQUENCE`), drawn after
the chain's head is locked: unique across every process without a shared row, increasing along
each chain, so that a patient's history pages by `seq`, a notification names its row by it, and
the whole trace reads in the order it was written. Not `recorded_at`: two processes' clocks may
disagree, and two rows may share a microsecond. A sequence has holes (a rolled-back append),
which is why a chain's completeness rests on `chain_seq`, never on `seq`. SQLite has no
sequences: there every append holds the file's write lock already, and the last `seq` plus one is
taken under it.

The MAC is an HMAC-SHA-256 under a key kept outside the database (keys.py): someone who can
write to the database but does not hold the key can change rows, but cannot chain them again,
and each row names its key (`key_id`) so keys can be told apart. What stays invisible inside the
database — a chain's last rows deleted and its head moved back, or a patient's chain deleted
whole with its head — is caught against the checkpoints exported off the machine
(audit_checkpoints.py: the heads of the chains each process appended to), which `verify` is given.

Databases from before the per-patient chains (migration 0016) keep their single global chain as
it was: rows without `chain_seq`, chained by `seq`, closed by `audit_legacy_head`. They verify as
they did, with the checkpoints of that time; rows written before the key was introduced keep
their plain SHA-256 (`key_id` empty) up to where the keyed chain started, and after it a row
without the key is reported.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Row,
    String,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from dmp_xds.storage.audit_checkpoints import Checkpoint, Checkpointer, utc_stamp
from dmp_xds.storage.audit_keys import AuditKey
from dmp_xds.storage.distribution import engine_is_citus
from dmp_xds.storage.tables import AUDIT_SEQUENCE, AuditEntryRow, AuditHeadRow, AuditLegacyHeadRow

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
LEGACY_HEAD_ID = 1
VERIFY_BATCH = 5000

# Actions (what was done) and outcomes, as stored in the trace.
SEARCH = "search"
RETRIEVE = "retrieve"
SUBMIT = "submit"
UPDATE = "update"  # ITI-57: masking, unmasking, new versions, status (the detail says which)
DELETE = "delete"
# What a patient's documents' last read, change and addition are, for the DMP's dates.
DOCUMENT_READS = (SEARCH, RETRIEVE)
DOCUMENT_CHANGES = (UPDATE, DELETE)
DOCUMENT_ADDITIONS = (SUBMIT,)
AUTHENTICATE = "authenticate"
DMP_CREATE = "dmp.create"
DMP_UPDATE = "dmp.update"
DMP_CLOSE = "dmp.close"
DMP_REOPEN = "dmp.reopen"
DMP_DESTROY = "dmp.destroy"
# The patient asks for their DMP's destruction (their web space): the operator's `dmp destroy`
# carries it out; the request is this trace row, kept like every other.
DMP_DESTROY_REQUEST = "dmp.destroy-request"
DMP_READ = "dmp.read"
DMP_SEARCH = "dmp.search"  # PDQ (TD0.5): patients searched by their traits
AUTHORIZATION_GRANT = "authorization.grant"
AUTHORIZATION_RENEW = "authorization.renew"
AUTHORIZATION_REVOKE = "authorization.revoke"
HISTORY_READ = "history.read"
NOTIFICATIONS_READ = "notifications.read"
NOTIFICATIONS_ACKNOWLEDGE = "notifications.acknowledge"
REPRESENTATIVE_ADD = "representative.add"
REPRESENTATIVE_REMOVE = "representative.remove"
REPRESENTATIVES_READ = "representative.read"
# The DMP's CXF services and the block of a professional.
AUTHORIZATION_SELF = "authorization.self"  # TD0.3: a professional declares or drops their own
AUTHORIZATIONS_READ = "authorization.read"  # TD1.6
AUTHORIZATION_BLOCK = "authorization.block"
AUTHORIZATION_UNBLOCK = "authorization.unblock"
DMP_LIST = "dmp.list"  # TD0.4
PATIENT_ACCESS_CREATE = "patient-access.create"  # TD1.5a
PATIENT_ACCESS_OTP = "patient-access.otp"  # TD1.5b
PATIENT_ACCESS_UPDATE = "patient-access.update"  # TD1.5d
IDENTITY_CERTIFICATION = "identity.certification"  # TD0.0, closed
# The web front: sign-in (each step's outcome, the detail says which), sign-out (here or
# everywhere), the account's own changes, and a request refused for its CSRF token or origin.
WEB_SIGN_IN = "web.sign-in"
WEB_SIGN_OUT = "web.sign-out"
WEB_ACCOUNT = "web.account"  # password changed, TOTP enrolled or removed
WEB_FORGED_REQUEST = "web.forged-request"

SUCCESS = "success"
DENIED = "denied"
FAILURE = "failure"

_entry = AuditEntryRow.__table__
_head = AuditHeadRow.__table__
_legacy_head = AuditLegacyHeadRow.__table__

# A refused submission's row (ITI-41/42, outcome failure) keeps what its sender needs to fix and
# resend it: the documents it tried to add in `documents`, and in `detail` the error codes first
# (short, so that the clipping of a long detail never cuts them), then each error's code and rule.
REFUSAL_MARK = "submission refused: ["
_REFUSAL_CODES = re.compile(re.escape(REFUSAL_MARK) + r"([^\]]*)\]")


def refusal_notes(errors: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """The detail of a refused submission, from its (error code, rule's text) pairs."""
    codes = list(dict.fromkeys(code for code, _ in errors))
    return (f"{REFUSAL_MARK}{', '.join(codes)}]", *(f"{code}: {text}" for code, text in errors))


def refusal_of(detail: str) -> tuple[tuple[str, ...], str]:
    """The error codes and the rules' text of a refused submission's detail (`refusal_notes`);
    no codes for a row written otherwise (a refusal by the access policy, older rows)."""
    found = _REFUSAL_CODES.search(detail)
    if found is None:
        return (), detail
    codes = tuple(c for c in found.group(1).split(", ") if c)
    return codes, detail[found.end() :].removeprefix("; ")


@dataclass(frozen=True)
class AuditEvent:
    """What happened, before it is given its place in the chain."""

    action: str
    outcome: str
    patient_id: str = ""
    actor_id: str = ""
    actor_name: str = ""
    actor_role: str = ""
    structure_id: str = ""
    access_mode: str = ""
    access_reason: str = ""
    documents: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    recorded_at: str
    event: AuditEvent
    prev_hash: str
    hash: str  # the row's MAC (its plain SHA-256 for rows written before the key)
    key_id: str = ""
    chain_seq: int | None = None  # its place in its patient's chain (None: the global chain of before)

    @property
    def emergency(self) -> bool:
        return self.event.access_mode in ("bris_de_glace", "centre_15")


@dataclass
class VerifyReport:
    checked: int = 0
    chains: int = 0  # per-patient chains checked
    problems: list[tuple[int, str]] = field(default_factory=list)  # (first row concerned or 0, what is wrong)
    notes: list[str] = field(default_factory=list)  # what the verdict rests on, said even when it is good

    @property
    def ok(self) -> bool:
        return not self.problems


def canonical_fields(
    seq: int, recorded_at: str, event: AuditEvent, prev_hash: str, chain_seq: int | None = None
) -> bytes:
    """The row's fields, its place in its chain and the previous row's MAC as canonical JSON: what
    is hashed or MACed. A row of the global chain of before has no place (and two integers never
    start the list then, so no row of one kind reads as one of the other)."""
    place: list[int] = [] if chain_seq is None else [chain_seq]
    fields = [
        seq,
        *place,
        recorded_at,
        event.actor_id,
        event.actor_name,
        event.actor_role,
        event.structure_id,
        event.access_mode,
        event.access_reason,
        event.action,
        event.patient_id,
        list(event.documents),
        event.outcome,
        event.detail,
        prev_hash,
    ]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def entry_hash(seq: int, recorded_at: str, event: AuditEvent, prev_hash: str, chain_seq: int | None = None) -> str:
    """The plain SHA-256 of rows written before the key was introduced (and all someone without
    the key can compute)."""
    return hashlib.sha256(canonical_fields(seq, recorded_at, event, prev_hash, chain_seq)).hexdigest()


def entry_mac(
    key: AuditKey, seq: int, recorded_at: str, event: AuditEvent, prev_hash: str, chain_seq: int | None = None
) -> str:
    return key.row_mac(canonical_fields(seq, recorded_at, event, prev_hash, chain_seq))


def chain_name(patient_id: str) -> str:
    """A chain, as messages name it."""
    return f"the chain of patient {patient_id}" if patient_id else "the chain of events of no patient"


def _event_of(row: Row[Any]) -> AuditEvent:
    return _event_of_mapping(row._mapping)


def _event_of_mapping(r: Any) -> AuditEvent:
    return AuditEvent(
        r["action"],
        r["outcome"],
        r["patient_id"],
        r["actor_id"],
        r["actor_name"],
        r["actor_role"],
        r["structure_id"],
        r["access_mode"],
        r["access_reason"],
        tuple(r["documents"] or ()),
        r["detail"],
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clipped(event: AuditEvent) -> AuditEvent:
    return replace(event, detail=_clip(event.detail, 1000), access_reason=_clip(event.access_reason, 1000))


def _row_values(entry: AuditEntry) -> dict[str, Any]:
    event = entry.event
    return {
        "seq": entry.seq,
        "recorded_at": entry.recorded_at,
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "actor_role": event.actor_role,
        "structure_id": event.structure_id,
        "access_mode": event.access_mode,
        "access_reason": event.access_reason,
        "action": event.action,
        "patient_id": event.patient_id,
        "documents": list(event.documents),
        "outcome": event.outcome,
        "detail": event.detail,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
        "key_id": entry.key_id,
        "chain_seq": entry.chain_seq,
    }


def _entry_of(r: Row[Any]) -> AuditEntry:
    return AuditEntry(r.seq, r.recorded_at, _event_of(r), r.prev_hash, r.hash, r.key_id, r.chain_seq)


def _insert_head_unless_there(dialect: str) -> Insert:
    """A chain's first head, unless another writer just made it (it is then used as it is)."""
    if dialect == "postgresql":
        return postgresql.insert(_head).on_conflict_do_nothing(index_elements=["patient_id"])
    if dialect == "sqlite":
        return sqlite.insert(_head).on_conflict_do_nothing(index_elements=["patient_id"])
    raise NotImplementedError(f"database {dialect!r} is not supported (SQLite and PostgreSQL are)")


def _next_seqs(connection: Connection, count: int) -> list[int]:
    """`count` new numbers of the global order, increasing; to be drawn once the chains' heads
    are locked, so that each chain's rows are numbered in its order (see the module's docstring)."""
    if connection.dialect.name == "sqlite":  # the file's write lock is held: no other writer
        last = connection.execute(select(func.coalesce(func.max(_entry.c.seq), 0))).scalar_one()
        return list(range(last + 1, last + 1 + count))
    if count == 1:
        return [connection.execute(select(AUDIT_SEQUENCE.next_value())).scalar_one()]
    drawn = select(AUDIT_SEQUENCE.next_value()).select_from(func.generate_series(1, count))
    return sorted(connection.execute(drawn).scalars())


def _chain_has_rows(connection: Connection, patient_ids: Sequence[str]) -> str | None:
    """One of these chains that has rows, if any."""
    if not patient_ids:
        return None
    chained = select(_entry.c.patient_id).where(
        _entry.c.patient_id.in_(list(patient_ids)) & _entry.c.chain_seq.is_not(None)
    )
    return connection.execute(chained.limit(1)).scalar()


def _missing_head(patient_id: str) -> RuntimeError:
    return RuntimeError(
        f"the audit_head row of {chain_name(patient_id)} is missing although the chain has rows: "
        "run `dmp-xds audit verify`"
    )


def _last_mac(offset: int) -> Any:
    """The MAC of the chain's row `offset` places before its head, read with the head (the head
    keeps no MAC of its own: one statement fewer for each append). The head's columns are named
    whole: a RETURNING clause is rendered with bare column names, which the subquery would take
    for its own."""
    head_patient = literal_column(f"{_head.name}.patient_id", String)
    head_place = literal_column(f"{_head.name}.chain_seq", BigInteger)
    return (
        select(_entry.c.hash)
        .where((_entry.c.patient_id == head_patient) & (_entry.c.chain_seq == head_place - offset))
        .scalar_subquery()
        .label("last_mac")
    )


def _mac_at(connection: Connection, patient_id: str, place: int, read_with_head: str | None) -> str:
    """The MAC of the chain's row at `place`, as the head's statement read it, or read again: a
    statement that waited for the head's lock still sees the rows as they were when it began (on
    PostgreSQL), so the row the previous writer just committed is read by a statement of its own."""
    if place == 0:
        return GENESIS_HASH
    if read_with_head is not None:
        return read_with_head
    mac = connection.execute(
        select(_entry.c.hash).where((_entry.c.patient_id == patient_id) & (_entry.c.chain_seq == place))
    ).scalar()
    if mac is None:
        raise RuntimeError(
            f"link {place} of {chain_name(patient_id)}, which its head names as the last one, is missing: "
            "run `dmp-xds audit verify`"
        )
    return mac


def _lock_head(connection: Connection, patient_id: str, count: int) -> tuple[int, str]:
    """Lock this chain's head and move it on by `count` new rows (made at the chain's first row):
    the chain's last place before them, and that row's MAC. One statement when the head is there."""
    bump = (
        update(_head)
        .where(_head.c.patient_id == patient_id)
        .values(chain_seq=_head.c.chain_seq + count)
        .returning(_head.c.chain_seq, _last_mac(count))
    )
    bumped = connection.execute(bump).first()
    if bumped is None:
        # Two writers may both find no head: one inserts it, the other's insert waits for that
        # one's commit and does nothing, and its update then moves on the head the first left.
        made = connection.execute(
            _insert_head_unless_there(connection.dialect.name)
            .values(patient_id=patient_id, chain_seq=count)
            .returning(_head.c.patient_id)  # a row only when inserted (rowcount is not always told)
        ).first()
        if made is not None:
            # The chain's first head, unless rows are there already: then the head was deleted,
            # which is tampering, and `verify` says so; appending would hide it.
            if _chain_has_rows(connection, [patient_id]):
                raise _missing_head(patient_id)
            return 0, GENESIS_HASH
        bumped = connection.execute(bump).one()
    place = bumped.chain_seq - count
    return place, _mac_at(connection, patient_id, place, bumped.last_mac)


def _lock_heads(connection: Connection, chains: Sequence[str]) -> dict[str, tuple[int, str]]:
    """Lock the heads of several chains at once (a bulk load), making those missing: each
    chain's last place and that row's MAC. Three statements whatever the number of chains. (The
    caller moves the heads on once the rows are numbered.)"""
    chains = sorted(chains)
    # A write first: on SQLite it takes the file's write lock before the heads are read.
    connection.execute(
        _insert_head_unless_there(connection.dialect.name), [{"patient_id": c, "chain_seq": 0} for c in chains]
    )
    # An update that changes nothing locks the heads and reads them (a distributed database
    # refuses SELECT ... FOR UPDATE across shards; it runs this).
    locked = (
        update(_head)
        .where(_head.c.patient_id.in_(chains))
        .values(chain_seq=_head.c.chain_seq)
        .returning(_head.c.patient_id, _head.c.chain_seq, _last_mac(0))
    )
    heads: dict[str, tuple[int, str]] = {}
    made = []
    for patient_id, place, last_mac in connection.execute(locked).all():
        if place == 0:  # made just now: any other writer moves on what it makes before it commits
            made.append(patient_id)
        heads[patient_id] = (place, _mac_at(connection, patient_id, place, last_mac))
    tampered = _chain_has_rows(connection, made)  # a head made for a chain with rows: it was deleted
    if tampered:
        raise _missing_head(tampered)
    return heads


class AuditTrail:
    def __init__(
        self,
        engine: Engine,
        key: AuditKey | None = None,
        exporters: Sequence[Callable[[AuditEntry], None]] = (),
        checkpointer: Checkpointer | None = None,
    ) -> None:
        """`key`: the chain's key; without it the trail reads and verifies what it can, and
        refuses to append (a row without the key would break the chain)."""
        self.engine = engine
        self.key = key
        self.exporters = list(exporters)
        self.checkpointer = checkpointer
        self._distributed: bool | None = None  # found out at the first append to several chains

    def _heads_one_by_one(self) -> bool:
        """Whether several chains' heads are locked one statement each, in the chains' order.
        On Citus the heads of a batch sit on several shards, which one statement locks in
        parallel, in no set order: two such batches, or a batch and a request, can then wait for
        each other across workers (a distributed deadlock). One router statement per head, in
        sorted order, always takes the locks in the same order."""
        if self._distributed is None:
            self._distributed = engine_is_citus(self.engine)
        return self._distributed

    def append(self, event: AuditEvent, now: dt.datetime | None = None) -> AuditEntry:
        """One row at the end of its patient's chain, in one short transaction of three statements:
        this chain's head locked and moved on, the previous row's MAC read with it (the head made
        at the chain's first row), a number of the global order drawn, the row inserted."""
        return self.append_many([(event, now)])[0]

    def append_many(self, events: Sequence[tuple[AuditEvent, dt.datetime | None]]) -> list[AuditEntry]:
        """Rows, each stamped with its own time, each at the end of its patient's chain in their
        order, in one transaction and one multi-row insert: a request appends its one row so,
        and a trace is loaded in bulk so (the benchmarks). The chains are the same either way."""
        if self.key is None:
            raise RuntimeError("the access trace has no key: it cannot be appended to (DMP_XDS_AUDIT_KEY_FILE)")
        if not events:
            return []
        key = self.key
        stamped = [(_clipped(event), utc_stamp(now)) for event, now in events]
        counts: dict[str, int] = {}
        for event, _ in stamped:
            counts[event.patient_id] = counts.get(event.patient_id, 0) + 1
        with self.engine.begin() as connection:
            one_by_one = len(counts) == 1 or self._heads_one_by_one()
            if one_by_one:  # each head moved on by its count as it is locked
                heads = {chain: _lock_head(connection, chain, counts[chain]) for chain in sorted(counts)}
            else:
                heads = _lock_heads(connection, list(counts))
            entries: list[AuditEntry] = []
            for seq, (event, recorded_at) in zip(_next_seqs(connection, len(stamped)), stamped, strict=True):
                place, prev_hash = heads[event.patient_id]
                mac = entry_mac(key, seq, recorded_at, event, prev_hash, place + 1)
                entries.append(AuditEntry(seq, recorded_at, event, prev_hash, mac, key.id, place + 1))
                heads[event.patient_id] = (place + 1, mac)
            if len(entries) == 1:  # a request's row: no executemany machinery
                connection.execute(insert(_entry).values(_row_values(entries[0])))
            else:
                connection.execute(insert(_entry), [_row_values(e) for e in entries])
            if not one_by_one:  # `_lock_head` moved its heads on already
                moved = (
                    update(_head).where(_head.c.patient_id == bindparam("chain")).values(chain_seq=bindparam("place"))
                )
                connection.execute(moved, [{"chain": chain, "place": place} for chain, (place, _) in heads.items()])
        for entry in entries:
            for export in self.exporters:
                try:
                    export(entry)
                except Exception:  # an exporter never breaks the request: the row is stored
                    log.exception("audit export failed for entry %s", entry.seq)
            if self.checkpointer is not None:
                assert entry.chain_seq is not None
                self.checkpointer.appended(entry.event.patient_id, entry.chain_seq, entry.hash)
        return entries

    def close(self) -> None:
        """Checkpoint the last rows appended, then let the exporters send what they hold."""
        if self.checkpointer is not None:
            self.checkpointer.close()
        for export in self.exporters:
            close = getattr(export, "close", None)
            if close is not None:
                close()

    def history(
        self,
        patient_id: str,
        limit: int = 1000,
        before: int | None = None,
        actor_id: str | None = None,
        since: dt.datetime | None = None,
        actions: Sequence[str] = (),
    ) -> list[AuditEntry]:
        """The patient's history, newest first: older than the row `before` (for a next page that
        rows appended meanwhile do not shift), of one actor only (`actor_id`), recorded since
        `since`, of these `actions`, when asked."""
        condition = _entry.c.patient_id == patient_id
        if before is not None:
            condition = condition & (_entry.c.seq < before)
        if actor_id is not None:
            condition = condition & (_entry.c.actor_id == actor_id)
        if since is not None:
            # `recorded_at` is utc_stamp's fixed-width text: its order is time order.
            condition = condition & (_entry.c.recorded_at >= utc_stamp(since))
        if actions:
            condition = condition & _entry.c.action.in_(list(actions))
        statement = select(_entry).where(condition).order_by(_entry.c.seq.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_entry_of(r) for r in connection.execute(statement)]

    def last_accesses(
        self, actor_id: str | None, patient_ids: Sequence[str], actions: Sequence[str]
    ) -> dict[str, dt.datetime]:
        """When `actor_id` (None: anyone) last did one of `actions` on each patient's record with
        success: the DMP's TD0.4 "last access date" of the caller, or when the patient's
        documents were last read, changed or added (`DOCUMENT_READS`, ...). The trace has every
        such request already; the record keeps no copy of its dates."""
        found: dict[str, dt.datetime] = {}
        ids = list(patient_ids)
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):
                condition = (
                    _entry.c.patient_id.in_(ids[start : start + 500])
                    & (_entry.c.outcome == SUCCESS)
                    & _entry.c.action.in_(list(actions))
                )
                if actor_id is not None:
                    condition = condition & (_entry.c.actor_id == actor_id)
                statement = (
                    select(_entry.c.patient_id, func.max(_entry.c.recorded_at))
                    .where(condition)
                    .group_by(_entry.c.patient_id)
                )
                for patient, latest in connection.execute(statement):
                    # `recorded_at` is utc_stamp's fixed-width text: its order is time order.
                    found[patient] = dt.datetime.strptime(latest, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        return found

    def verify(self, checkpoints: Sequence[Checkpoint] = ()) -> VerifyReport:
        """Check every row of every chain, each chain's head, and that each chain reaches its
        checkpoints with the same MAC; the global chain of before per-patient chains too."""
        report = VerifyReport()
        usable = _usable_checkpoints(self.key, checkpoints, report)
        legacy = [c for c in usable if c.chain is None]
        by_chain: dict[str, list[Checkpoint]] = {}
        for checkpoint in usable:
            if checkpoint.chain is not None:
                by_chain.setdefault(checkpoint.chain, []).append(checkpoint)
        _LegacyVerification(self.key, legacy, report).run(self._legacy_rows(), self._legacy_head())
        _ChainVerification(self.key, by_chain, report).run(self._chain_rows(), self._heads, self._headless())
        _checkpoint_notes(report, usable)
        return report

    def _legacy_rows(self) -> Iterator[Row[Any]]:
        """The rows of the global chain of before, in its order."""
        last = 0
        while True:  # bounded by the table: each batch starts after the previous one's last seq
            with self.engine.connect() as connection:
                batch = list(
                    connection.execute(
                        select(_entry)
                        .where(_entry.c.chain_seq.is_(None) & (_entry.c.seq > last))
                        .order_by(_entry.c.seq)
                        .limit(VERIFY_BATCH)
                    )
                )
            if not batch:
                return
            yield from batch
            last = batch[-1].seq

    def _legacy_head(self) -> tuple[int, str] | None:
        with self.engine.connect() as connection:
            head = connection.execute(
                select(_legacy_head.c.seq, _legacy_head.c.hash).where(_legacy_head.c.id == LEGACY_HEAD_ID)
            ).first()
        return None if head is None else (head.seq, head.hash)

    def _chain_rows(self) -> Iterator[list[Row[Any]]]:
        """The rows of every chain, chain after chain, each in its order, in batches."""
        after: tuple[str, int] | None = None
        while True:  # bounded by the table: each batch starts after the previous one's last row
            statement = select(_entry).where(_entry.c.chain_seq.is_not(None))
            if after is not None:
                statement = statement.where(tuple_(_entry.c.patient_id, _entry.c.chain_seq) > tuple_(*after))
            statement = statement.order_by(_entry.c.patient_id, _entry.c.chain_seq).limit(VERIFY_BATCH)
            with self.engine.connect() as connection:
                batch = list(connection.execute(statement))
            if not batch:
                return
            yield batch
            after = (batch[-1].patient_id, batch[-1].chain_seq)

    def _heads(self, patient_ids: Sequence[str]) -> dict[str, int]:
        """The last place each of these chains' head names."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_head.c.patient_id, _head.c.chain_seq).where(_head.c.patient_id.in_(list(patient_ids)))
            )
            return {r.patient_id: r.chain_seq for r in rows}

    def _headless(self) -> list[tuple[str, int]]:
        """The heads whose chain has no row left: (patient id, the head's last place)."""
        has_rows = exists(
            select(_entry.c.seq).where((_entry.c.patient_id == _head.c.patient_id) & _entry.c.chain_seq.is_not(None))
        )
        with self.engine.connect() as connection:
            return [(r.patient_id, r.chain_seq) for r in connection.execute(select(_head).where(~has_rows))]


class _LegacyVerification:
    """The global chain of before per-patient chains: one pass over its rows in order; what is
    wrong is named with the first row concerned."""

    def __init__(self, key: AuditKey | None, checkpoints: Sequence[Checkpoint], report: VerifyReport) -> None:
        self.key = key
        self.report = report
        self.keyed_from: int | None = None  # the first row with a key
        self.unchecked: tuple[int, int, str] | None = None  # a run of rows whose key we lack: first, last, key id
        self.checkpoints = deque(sorted(checkpoints, key=lambda c: c.seq))

    def problem(self, seq: int, text: str) -> None:
        self.report.problems.append((seq, text))

    def run(self, rows: Iterator[Row[Any]], head: tuple[int, str] | None) -> None:
        expected_seq, prev_hash = 1, GENESIS_HASH
        for row in rows:
            r = row._mapping
            seq = r["seq"]
            self.report.checked += 1
            if seq != expected_seq:
                missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq} to {seq - 1}"
                self.problem(expected_seq, f"row(s) {missing} missing (deleted)")
            elif r["prev_hash"] != prev_hash:
                self.problem(
                    seq,
                    f"row {seq} does not follow row {seq - 1}: row {seq - 1} was altered and "
                    "re-chained, or rows were removed before it",
                )
            self._content(seq, r)
            self._against_checkpoints(seq, r["hash"])
            expected_seq, prev_hash = seq + 1, r["hash"]
        self._end_unchecked()
        last = expected_seq - 1
        if head is None:
            if last:  # a trace begun after the per-patient chains has no global chain
                self.problem(
                    0, "the head of the global chain of before per-patient chains (audit_legacy_head) is missing"
                )
        elif head[0] != last:
            self.problem(
                expected_seq, f"the trace ends at row {last} but the head says {head[0]}: the last row(s) were deleted"
            )
        elif head[1] != prev_hash:
            self.problem(head[0], f"row {head[0]} does not match the head's MAC (last row altered)")
        if self.checkpoints:  # checkpoints past the last row: the tail was cut
            beyond = self.checkpoints[-1]
            moved = " and the head moved back to it" if head is not None and head[0] == last else ""
            self.problem(
                last + 1,
                f"rows {last + 1}..{beyond.seq} missing since checkpoint {beyond.at} "
                f"({beyond.origin}): the trace was cut after row {last}{moved}",
            )
        self._notes(last)

    def _content(self, seq: int, r: Any) -> None:
        event = _event_of_mapping(r)
        key_id: str = r["key_id"]
        stored: str = r["hash"]
        plain = entry_hash(seq, r["recorded_at"], event, r["prev_hash"]) == stored
        if not key_id:
            self._end_unchecked()
            if self.keyed_from is not None:
                self.problem(
                    seq,
                    f"row {seq} has no key although the keyed chain began at row {self.keyed_from}: "
                    "it was written or re-hashed without the server's key",
                )
            elif not plain:
                self.problem(seq, f"row {seq} was altered: its content does not match its hash")
            return
        if self.keyed_from is None:
            self.keyed_from = seq
        if self.key is None or key_id != self.key.id:
            run = self.unchecked
            if run is not None and run[2] == key_id and run[1] == seq - 1:
                self.unchecked = (run[0], seq, key_id)
            else:
                self._end_unchecked()
                self.unchecked = (seq, seq, key_id)
            return
        self._end_unchecked()
        if hmac.compare_digest(entry_mac(self.key, seq, r["recorded_at"], event, r["prev_hash"]), stored):
            return
        if plain:
            self.problem(
                seq,
                f"row {seq} was re-hashed without the key (a plain SHA-256 where its HMAC should be): it was altered",
            )
        else:
            self.problem(seq, f"row {seq} was altered: its content does not match its MAC")

    def _end_unchecked(self) -> None:
        if self.unchecked is None:
            return
        first, last, key_id = self.unchecked
        rows = f"row {first}" if first == last else f"rows {first}..{last}"
        if self.key is None:
            self.problem(
                first,
                f"{rows} carry key id {key_id} but no key was given: they cannot be checked (DMP_XDS_AUDIT_KEY_FILE)",
            )
        else:
            self.problem(
                first,
                f"{rows} carry key id {key_id}, not the id of the key given ({self.key.id}, "
                f"{self.key.source}): wrong key file, or rows forged",
            )
        self.unchecked = None

    def _against_checkpoints(self, seq: int, mac: str) -> None:
        while self.checkpoints and self.checkpoints[0].seq <= seq:
            checkpoint = self.checkpoints.popleft()
            # A checkpoint of an earlier row is in a gap already reported as missing rows.
            if checkpoint.seq == seq and not hmac.compare_digest(checkpoint.mac, mac):
                self.problem(
                    seq,
                    f"row {seq} is not the row checkpointed at {checkpoint.at} ({checkpoint.origin}): it was rewritten",
                )

    def _notes(self, last: int) -> None:
        notes = self.report.notes
        if not last:
            return
        notes.append(f"rows 1..{last} form the single global chain written before the chains per patient")
        if self.keyed_from is None:
            notes.append(f"rows 1..{last} have no key (plain SHA-256, written before the key was introduced)")
        elif self.keyed_from > 1:
            notes.append(
                f"rows 1..{self.keyed_from - 1} have no key (plain SHA-256, written before the key was "
                f"introduced); the keyed chain starts at row {self.keyed_from}"
            )


def _usable_checkpoints(
    key: AuditKey | None, checkpoints: Sequence[Checkpoint], report: VerifyReport
) -> list[Checkpoint]:
    """The authentic checkpoints of this key; the others are reported."""
    if key is None:
        if checkpoints:
            report.notes.append(f"{len(checkpoints)} checkpoint(s) not checked: no key")
        return []
    usable, foreign = [], []
    for checkpoint in checkpoints:
        if checkpoint.key_id != key.id:
            foreign.append(checkpoint)
        elif checkpoint.authentic(key):
            usable.append(checkpoint)
        else:
            report.problems.append(
                (
                    0,
                    f"checkpoint {checkpoint.origin} ({_checkpointed(checkpoint)}) is not authentic: "
                    "its signature does not match (forged or altered)",
                )
            )
    if foreign:
        ids = ", ".join(sorted({c.key_id for c in foreign}))
        report.problems.append(
            (
                0,
                f"{len(foreign)} checkpoint(s), from {foreign[0].origin}, were made with key "
                f"id {ids}, not with the key given ({key.id}): wrong key file, or "
                "checkpoints of another trace",
            )
        )
    return usable


def _checkpointed(checkpoint: Checkpoint) -> str:
    """What a checkpoint is of, as messages say it."""
    if checkpoint.chain is None:
        return f"row {checkpoint.seq} of the global chain"
    return f"link {checkpoint.seq} of {chain_name(checkpoint.chain)}"


def _links(first: int, last: int) -> str:
    return f"link {first}" if first == last else f"links {first}..{last}"


def _checkpoint_notes(report: VerifyReport, usable: Sequence[Checkpoint]) -> None:
    if not usable:
        report.notes.append(
            "no checkpoint given: a chain's cut-off tail with its head moved back, or a chain deleted whole "
            "with its head, cannot be seen"
        )
        return
    latest = max(usable, key=lambda c: c.at)
    chains = {c.chain for c in usable if c.chain is not None}
    report.notes.append(
        f"{len(usable)} checkpoint(s) of {len(chains)} chain(s) checked; the latest is of "
        f"{_checkpointed(latest)}, exported at {latest.at}"
    )


class _ChainVerification:
    """One pass over the rows of every chain, chain after chain, each in its order; what is wrong
    is named with its chain, the row concerned (its `seq`) and its place in the chain."""

    def __init__(self, key: AuditKey | None, checkpoints: dict[str, list[Checkpoint]], report: VerifyReport) -> None:
        self.key = key
        self.report = report
        self.checkpoints = checkpoints  # by chain; each chain's are taken when it is checked
        self.chain: str | None = None
        self.head: int | None = None  # the last place the chain's head names
        self.pending: deque[Checkpoint] = deque()
        self.expected, self.prev_hash, self.last_seq = 1, GENESIS_HASH, 0
        # Rows whose key is not the one given, by key id: count, chains, first row, last chain seen.
        self.foreign: dict[str, tuple[int, int, int, str]] = {}

    def problem(self, seq: int, text: str) -> None:
        self.report.problems.append((seq, text))

    def run(
        self,
        batches: Iterator[list[Row[Any]]],
        heads_of: Callable[[Sequence[str]], dict[str, int]],
        headless: Sequence[tuple[str, int]],
    ) -> None:
        for batch in batches:
            heads = heads_of(list(dict.fromkeys(row.patient_id for row in batch)))  # the batch's chains, in one read
            for row in batch:
                r = row._mapping
                if r["patient_id"] != self.chain:
                    self._end_chain()
                    self._start_chain(r["patient_id"], heads.get(r["patient_id"]))
                self._row(r)
        self._end_chain()
        self._foreign_keys()
        for patient_id, place in headless:
            self.checkpoints.pop(patient_id, None)  # the head still tells: said below without them
            if place:
                self.problem(
                    0,
                    f"{chain_name(patient_id)}: its head says {place} row(s) but none is left: "
                    "every row of the chain was deleted",
                )
        for patient_id, checkpoints in sorted(self.checkpoints.items()):
            beyond = max(checkpoints, key=lambda c: c.seq)
            self.problem(
                0,
                f"{chain_name(patient_id)}: {_links(1, beyond.seq)} missing since checkpoint {beyond.at} "
                f"({beyond.origin}): the chain was deleted whole, its head with it",
            )

    def _start_chain(self, patient_id: str, head: int | None) -> None:
        self.chain, self.head = patient_id, head
        self.report.chains += 1
        self.pending = deque(sorted(self.checkpoints.pop(patient_id, []), key=lambda c: c.seq))
        self.expected, self.prev_hash, self.last_seq = 1, GENESIS_HASH, 0

    def _row(self, r: Any) -> None:
        assert self.chain is not None
        name = chain_name(self.chain)
        seq, place = r["seq"], r["chain_seq"]
        self.report.checked += 1
        if place != self.expected:
            missing = _links(self.expected, place - 1)
            self.problem(seq, f"{name}: {missing} missing (deleted), before row {seq} (link {place})")
        elif r["prev_hash"] != self.prev_hash:
            self.problem(
                seq,
                f"row {seq} (link {place} of {name}) does not follow link {place - 1}: that row was altered "
                "and re-chained, or rows were removed before it",
            )
        self._content(seq, place, name, r)
        while self.pending and self.pending[0].seq <= place:
            checkpoint = self.pending.popleft()
            # A checkpoint of an earlier link is in a gap already reported as missing rows.
            if checkpoint.seq == place and not hmac.compare_digest(checkpoint.mac, r["hash"]):
                self.problem(
                    seq,
                    f"row {seq} (link {place} of {name}) is not the row checkpointed at {checkpoint.at} "
                    f"({checkpoint.origin}): it was rewritten",
                )
        self.expected, self.prev_hash, self.last_seq = place + 1, r["hash"], seq

    def _content(self, seq: int, place: int, name: str, r: Any) -> None:
        key_id: str = r["key_id"]
        stored: str = r["hash"]
        where = f"row {seq} (link {place} of {name})"
        event = _event_of_mapping(r)
        if not key_id:  # every row of a chain per patient was written with the key
            plain = entry_hash(seq, r["recorded_at"], event, r["prev_hash"], place) == stored
            how = "re-hashed without the key (a plain SHA-256 where its HMAC should be)" if plain else "altered"
            self.problem(seq, f"{where} has no key id: it was {how}")
            return
        if self.key is None or key_id != self.key.id:
            # Said once per key id for the whole trace: a wrong key file is one mistake, not one per row.
            count, chains, first, chain = self.foreign.get(key_id, (0, 0, seq, self.chain or ""))
            self.foreign[key_id] = (count + 1, chains + (chain != self.chain or count == 0), first, self.chain or "")
            return
        if hmac.compare_digest(entry_mac(self.key, seq, r["recorded_at"], event, r["prev_hash"], place), stored):
            return
        if entry_hash(seq, r["recorded_at"], event, r["prev_hash"], place) == stored:
            self.problem(seq, f"{where} was re-hashed without the key (a plain SHA-256 where its HMAC should be)")
        else:
            self.problem(seq, f"{where} was altered: its content does not match its MAC")

    def _foreign_keys(self) -> None:
        for key_id, (count, chains, first, _) in self.foreign.items():
            rows = f"{count} row(s) of {chains} chain(s), from row {first},"
            if self.key is None:
                self.problem(
                    first,
                    f"{rows} carry key id {key_id} but no key was given: they cannot be checked "
                    "(DMP_XDS_AUDIT_KEY_FILE)",
                )
            else:
                self.problem(
                    first,
                    f"{rows} carry key id {key_id}, not the id of the key given ({self.key.id}, "
                    f"{self.key.source}): wrong key file, or rows forged",
                )

    def _end_chain(self) -> None:
        if self.chain is None:
            return
        name, last, head = chain_name(self.chain), self.expected - 1, self.head
        if head is None:
            self.problem(self.last_seq, f"{name}: its head (audit_head) is missing")
        elif head != last:
            self.problem(
                self.last_seq,
                f"{name} ends at link {last} (row {self.last_seq}) but its head says {head}: "
                "the last row(s) were deleted",
            )
        if self.pending:  # checkpoints past the last link: the tail was cut
            beyond = self.pending[-1]
            moved = " and its head moved back to it" if head == last else ""
            self.problem(
                self.last_seq,
                f"{name}: {_links(last + 1, beyond.seq)} missing since checkpoint {beyond.at} "
                f"({beyond.origin}): the chain was cut after link {last}{moved}",
            )
        self.chain = None
