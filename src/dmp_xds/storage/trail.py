"""The hash-chained access trace.

Each row's hash covers its fields and the previous row's hash, so that an edited row no longer
matches its hash, a deleted row leaves a gap in the sequence or breaks the chain, and a cut-off
tail no longer reaches the head row (`audit_head`), which holds the last sequence number and hash.
Rows are only ever inserted; nothing in dmp-xds updates or deletes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from dmp_xds.storage.tables import AuditEntryRow, AuditHeadRow

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
HEAD_ID = 1
VERIFY_BATCH = 5000

# Actions (what was done) and outcomes, as stored in the trace.
SEARCH = "search"
RETRIEVE = "retrieve"
SUBMIT = "submit"
UPDATE = "update"  # ITI-57: masking, unmasking, new versions, status (the detail says which)
DELETE = "delete"
AUTHENTICATE = "authenticate"
DMP_CREATE = "dmp.create"
DMP_UPDATE = "dmp.update"
DMP_CLOSE = "dmp.close"
DMP_REOPEN = "dmp.reopen"
DMP_DESTROY = "dmp.destroy"
DMP_READ = "dmp.read"
AUTHORIZATION_GRANT = "authorization.grant"
AUTHORIZATION_RENEW = "authorization.renew"
AUTHORIZATION_REVOKE = "authorization.revoke"
HISTORY_READ = "history.read"
NOTIFICATIONS_READ = "notifications.read"
NOTIFICATIONS_ACKNOWLEDGE = "notifications.acknowledge"
REPRESENTATIVE_ADD = "representative.add"
REPRESENTATIVE_REMOVE = "representative.remove"
REPRESENTATIVES_READ = "representative.read"

SUCCESS = "success"
DENIED = "denied"
FAILURE = "failure"

_entry = AuditEntryRow.__table__
_head = AuditHeadRow.__table__


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
    hash: str

    @property
    def emergency(self) -> bool:
        return self.event.access_mode in ("bris_de_glace", "centre_15")


@dataclass
class VerifyReport:
    checked: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def entry_hash(seq: int, recorded_at: str, event: AuditEvent, prev_hash: str) -> str:
    """SHA-256 of the row's fields and the previous hash, as canonical JSON."""
    fields = [seq, recorded_at, event.actor_id, event.actor_name, event.actor_role, event.structure_id,
              event.access_mode, event.access_reason, event.action, event.patient_id, list(event.documents),
              event.outcome, event.detail, prev_hash]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")).hexdigest()


def _stamp(now: dt.datetime) -> str:
    return now.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _event_of(row: object) -> AuditEvent:
    r = row._mapping  # type: ignore[attr-defined]
    return AuditEvent(r["action"], r["outcome"], r["patient_id"], r["actor_id"], r["actor_name"], r["actor_role"],
                      r["structure_id"], r["access_mode"], r["access_reason"], tuple(r["documents"] or ()), r["detail"])


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class AuditTrail:
    def __init__(self, engine: Engine, exporters: Sequence[Callable[[AuditEntry], None]] = ()) -> None:
        self.engine = engine
        self.exporters = list(exporters)

    def ensure_head(self) -> None:
        """The head row (created by migration 0003; here for databases built from metadata)."""
        try:
            with self.engine.begin() as connection:
                if connection.execute(select(_head.c.id).where(_head.c.id == HEAD_ID)).first() is None:
                    connection.execute(insert(_head).values(id=HEAD_ID, seq=0, hash=GENESIS_HASH))
        except IntegrityError:
            pass  # created meanwhile by another process

    def append(self, event: AuditEvent, now: dt.datetime | None = None) -> AuditEntry:
        event = AuditEvent(**{**event.__dict__, "detail": _clip(event.detail, 1000),
                              "access_reason": _clip(event.access_reason, 1000)})
        recorded_at = _stamp(now or dt.datetime.now(dt.timezone.utc))
        with self.engine.begin() as connection:
            # Take the head's lock first: appends are serialized, each sees the previous hash.
            bumped = connection.execute(update(_head).where(_head.c.id == HEAD_ID).values(seq=_head.c.seq + 1))
            if bumped.rowcount != 1:
                # Only before the very first entry: with entries, a missing head is tampering
                # and `verify` says so; appending then would hide it.
                if connection.execute(select(_entry.c.seq).limit(1)).first() is not None:
                    raise RuntimeError("the audit_head row is missing although the trace has entries: "
                                       "run `dmp-xds audit verify`")
                connection.execute(insert(_head).values(id=HEAD_ID, seq=1, hash=GENESIS_HASH))
            seq, prev_hash = connection.execute(select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID)).one()
            digest = entry_hash(seq, recorded_at, event, prev_hash)
            connection.execute(insert(_entry).values(
                seq=seq, recorded_at=recorded_at, actor_id=event.actor_id, actor_name=event.actor_name,
                actor_role=event.actor_role, structure_id=event.structure_id, access_mode=event.access_mode,
                access_reason=event.access_reason, action=event.action, patient_id=event.patient_id,
                documents=list(event.documents), outcome=event.outcome, detail=event.detail,
                prev_hash=prev_hash, hash=digest))
            connection.execute(update(_head).where(_head.c.id == HEAD_ID).values(hash=digest))
        entry = AuditEntry(seq, recorded_at, event, prev_hash, digest)
        for export in self.exporters:
            try:
                export(entry)
            except Exception:  # an exporter never breaks the request: the row is stored
                log.exception("audit export failed for entry %s", seq)
        return entry

    def history(self, patient_id: str, limit: int = 1000) -> list[AuditEntry]:
        """The patient's history, newest first."""
        statement = (select(_entry).where(_entry.c.patient_id == patient_id)
                     .order_by(_entry.c.seq.desc()).limit(limit))
        with self.engine.connect() as connection:
            return [AuditEntry(r.seq, r.recorded_at, _event_of(r), r.prev_hash, r.hash)
                    for r in connection.execute(statement)]

    def _rows(self) -> Iterator[object]:
        last = 0
        while True:  # bounded by the table: each batch starts after the previous one's last seq
            with self.engine.connect() as connection:
                batch = list(connection.execute(select(_entry).where(_entry.c.seq > last)
                                                .order_by(_entry.c.seq).limit(VERIFY_BATCH)))
            if not batch:
                return
            yield from batch
            last = batch[-1].seq  # type: ignore[attr-defined]

    def verify(self) -> VerifyReport:
        report = VerifyReport()
        expected_seq, prev_hash = 1, GENESIS_HASH
        for row in self._rows():
            r = row._mapping  # type: ignore[attr-defined]
            seq = r["seq"]
            report.checked += 1
            if seq != expected_seq:
                missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq} to {seq - 1}"
                report.problems.append((expected_seq, f"row(s) {missing} missing (deleted)"))
            elif r["prev_hash"] != prev_hash:
                report.problems.append((seq, f"row {seq} does not follow row {seq - 1}: row {seq - 1} was "
                                             "altered and re-hashed, or rows were removed before it"))
            if entry_hash(seq, r["recorded_at"], _event_of(row), r["prev_hash"]) != r["hash"]:
                report.problems.append((seq, f"row {seq} was altered: its content does not match its hash"))
            expected_seq, prev_hash = seq + 1, r["hash"]
        with self.engine.connect() as connection:
            head = connection.execute(select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID)).first()
        if head is None:
            if report.checked:  # an empty trace has no head yet
                report.problems.append((0, "the audit_head row is missing"))
        elif head.seq != expected_seq - 1:
            report.problems.append((expected_seq, f"the trace ends at row {expected_seq - 1} but the head says "
                                                  f"{head.seq}: the last row(s) were deleted"))
        elif head.hash != prev_hash:
            report.problems.append((head.seq, f"row {head.seq} does not match the head's hash (last row altered)"))
        return report
