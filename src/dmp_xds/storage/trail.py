"""The chained access trace.

Each row's MAC covers its fields and the previous row's MAC, so that an edited row no longer
matches its MAC, a deleted row leaves a gap in the sequence or breaks the chain, and a cut-off
tail no longer reaches the head row (`audit_head`), which holds the last sequence number and MAC.
Rows are only ever inserted; nothing in dmp-xds updates or deletes them.

The MAC is an HMAC-SHA-256 under a key kept outside the database (keys.py): someone who can
write to the database but does not hold the key can change rows, but cannot chain them again,
and each row names its key (`key_id`) so keys can be told apart. Rows written before the key
was introduced keep their plain SHA-256 hash (`key_id` empty) and still verify, up to where the
keyed chain starts; after it, a row without the key is reported. What stays invisible inside the
database — the last rows deleted and the head moved back to the new last row — is caught against
the checkpoints exported off the machine (checkpoints.py), which `verify` is given.
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

from sqlalchemy import Engine, Row, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from dmp_xds.storage.audit_checkpoints import Checkpoint, Checkpointer, utc_stamp
from dmp_xds.storage.audit_keys import AuditKey
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
# `append`'s statements, built once: a statement built per request with its values costs more
# CPU than running it (SQLAlchemy makes a bound parameter and a cache key of each value).
_BUMP_HEAD = update(_head).where(_head.c.id == HEAD_ID).values(seq=_head.c.seq + 1).returning(_head.c.seq, _head.c.hash)
_INSERT_ENTRY = insert(_entry)
_SET_HEAD_HASH = update(_head).where(_head.c.id == HEAD_ID).values(hash=bindparam("mac"))

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

    @property
    def emergency(self) -> bool:
        return self.event.access_mode in ("bris_de_glace", "centre_15")


@dataclass
class VerifyReport:
    checked: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (first row concerned, what is wrong)
    notes: list[str] = field(default_factory=list)  # what the verdict rests on, said even when it is good

    @property
    def ok(self) -> bool:
        return not self.problems


def canonical_fields(seq: int, recorded_at: str, event: AuditEvent, prev_hash: str) -> bytes:
    """The row's fields and the previous row's MAC as canonical JSON: what is hashed or MACed."""
    fields = [
        seq,
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


def entry_hash(seq: int, recorded_at: str, event: AuditEvent, prev_hash: str) -> str:
    """The plain SHA-256 of rows written before the key was introduced."""
    return hashlib.sha256(canonical_fields(seq, recorded_at, event, prev_hash)).hexdigest()


def entry_mac(key: AuditKey, seq: int, recorded_at: str, event: AuditEvent, prev_hash: str) -> str:
    return key.row_mac(canonical_fields(seq, recorded_at, event, prev_hash))


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
    }


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

    def ensure_head(self) -> None:
        """The head row (created by migration 0003; here for databases built from metadata)."""
        try:
            with self.engine.begin() as connection:
                if connection.execute(select(_head.c.id).where(_head.c.id == HEAD_ID)).first() is None:
                    connection.execute(insert(_head).values(id=HEAD_ID, seq=0, hash=GENESIS_HASH))
        except IntegrityError:
            pass  # created meanwhile by another process

    def append(self, event: AuditEvent, now: dt.datetime | None = None) -> AuditEntry:
        if self.key is None:
            raise RuntimeError("the access trace has no key: it cannot be appended to (DMP_XDS_AUDIT_KEY_FILE)")
        event = AuditEvent(
            **{**event.__dict__, "detail": _clip(event.detail, 1000), "access_reason": _clip(event.access_reason, 1000)}
        )
        recorded_at = utc_stamp(now)
        with self.engine.begin() as connection:
            # Take the head's lock first: appends of every thread and process are serialized,
            # each sees the previous MAC. One statement bumps the head and reads it (one round
            # trip to PostgreSQL, not two).
            bumped = connection.execute(_BUMP_HEAD).first()
            if bumped is None:
                # Only before the very first entry: with entries, a missing head is tampering
                # and `verify` says so; appending then would hide it.
                if connection.execute(select(_entry.c.seq).limit(1)).first() is not None:
                    raise RuntimeError(
                        "the audit_head row is missing although the trace has entries: run `dmp-xds audit verify`"
                    )
                connection.execute(insert(_head).values(id=HEAD_ID, seq=1, hash=GENESIS_HASH))
                seq, prev_hash = 1, GENESIS_HASH
            else:
                seq, prev_hash = bumped
            mac = entry_mac(self.key, seq, recorded_at, event, prev_hash)
            connection.execute(
                _INSERT_ENTRY,
                {
                    "seq": seq,
                    "recorded_at": recorded_at,
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
                    "prev_hash": prev_hash,
                    "hash": mac,
                    "key_id": self.key.id,
                },
            )
            connection.execute(_SET_HEAD_HASH, {"mac": mac})
        entry = AuditEntry(seq, recorded_at, event, prev_hash, mac, self.key.id)
        for export in self.exporters:
            try:
                export(entry)
            except Exception:  # an exporter never breaks the request: the row is stored
                log.exception("audit export failed for entry %s", seq)
        if self.checkpointer is not None:
            self.checkpointer.appended(seq, mac)
        return entry

    def append_many(self, events: Sequence[tuple[AuditEvent, dt.datetime | None]]) -> list[AuditEntry]:
        """Several rows, each stamped with its own time, chained in their order in one
        transaction and one multi-row insert: how a trace is loaded in bulk (the benchmarks).
        A request appends its one row with `append`; the chain is the same either way."""
        if self.key is None:
            raise RuntimeError("the access trace has no key: it cannot be appended to (DMP_XDS_AUDIT_KEY_FILE)")
        if not events:
            return []
        key = self.key
        with self.engine.begin() as connection:
            # The head's lock first, as `append` takes it: the rows' numbers are reserved at once.
            bumped = connection.execute(
                update(_head).where(_head.c.id == HEAD_ID).values(seq=_head.c.seq + len(events))
            )
            if bumped.rowcount != 1:
                raise RuntimeError("the audit_head row is missing (`ensure_head` makes it): run `dmp-xds audit verify`")
            last, prev_hash = connection.execute(select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID)).one()
            entries: list[AuditEntry] = []
            for seq, (event, now) in enumerate(events, start=last - len(events) + 1):
                event, recorded_at = _clipped(event), utc_stamp(now)
                mac = entry_mac(key, seq, recorded_at, event, prev_hash)
                entries.append(AuditEntry(seq, recorded_at, event, prev_hash, mac, key.id))
                prev_hash = mac
            connection.execute(insert(_entry), [_row_values(e) for e in entries])
            connection.execute(update(_head).where(_head.c.id == HEAD_ID).values(hash=prev_hash))
        for entry in entries:
            for export in self.exporters:
                try:
                    export(entry)
                except Exception:  # as in `append`: the rows are stored
                    log.exception("audit export failed for entry %s", entry.seq)
            if self.checkpointer is not None:
                self.checkpointer.appended(entry.seq, entry.hash)
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
            return [
                AuditEntry(r.seq, r.recorded_at, _event_of(r), r.prev_hash, r.hash, r.key_id)
                for r in connection.execute(statement)
            ]

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

    def _rows(self) -> Iterator[Row[Any]]:
        last = 0
        while True:  # bounded by the table: each batch starts after the previous one's last seq
            with self.engine.connect() as connection:
                batch = list(
                    connection.execute(
                        select(_entry).where(_entry.c.seq > last).order_by(_entry.c.seq).limit(VERIFY_BATCH)
                    )
                )
            if not batch:
                return
            yield from batch
            last = batch[-1].seq

    def verify(self, checkpoints: Sequence[Checkpoint] = ()) -> VerifyReport:
        """Check every row, the head, and that the trace reaches each checkpoint with the same MAC."""
        return _Verification(self.key, checkpoints).run(self._rows(), self._head())

    def _head(self) -> tuple[int, str] | None:
        with self.engine.connect() as connection:
            head = connection.execute(select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID)).first()
        return None if head is None else (head.seq, head.hash)


class _Verification:
    """One pass over the rows in order; what is wrong is named with the first row concerned."""

    def __init__(self, key: AuditKey | None, checkpoints: Sequence[Checkpoint]) -> None:
        self.key = key
        self.report = VerifyReport()
        self.keyed_from: int | None = None  # the first row with a key
        self.unchecked: tuple[int, int, str] | None = None  # a run of rows whose key we lack: first, last, key id
        self.checkpoints = deque(self._usable(checkpoints))
        self.latest = self.checkpoints[-1] if self.checkpoints else None

    def problem(self, seq: int, text: str) -> None:
        self.report.problems.append((seq, text))

    def _usable(self, checkpoints: Sequence[Checkpoint]) -> list[Checkpoint]:
        """The authentic checkpoints of this key, by row; the others are reported."""
        if self.key is None:
            if checkpoints:
                self.report.notes.append(f"{len(checkpoints)} checkpoint(s) not checked: no key")
            return []
        usable, foreign = [], []
        for checkpoint in checkpoints:
            if checkpoint.key_id != self.key.id:
                foreign.append(checkpoint)
            elif checkpoint.authentic(self.key):
                usable.append(checkpoint)
            else:
                self.problem(
                    checkpoint.seq,
                    f"checkpoint {checkpoint.origin} (row {checkpoint.seq}) is not authentic: "
                    "its signature does not match (forged or altered)",
                )
        if foreign:
            ids = ", ".join(sorted({c.key_id for c in foreign}))
            self.problem(
                foreign[0].seq,
                f"{len(foreign)} checkpoint(s), from {foreign[0].origin}, were made with key "
                f"id {ids}, not with the key given ({self.key.id}): wrong key file, or "
                "checkpoints of another trace",
            )
        return sorted(usable, key=lambda c: c.seq)

    def run(self, rows: Iterator[Row[Any]], head: tuple[int, str] | None) -> VerifyReport:
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
            if self.report.checked:  # an empty trace has no head yet
                self.problem(0, "the audit_head row is missing")
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
        return self.report

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
        if self.keyed_from is None and last:
            notes.append(f"rows 1..{last} have no key (plain SHA-256, written before the key was introduced)")
        elif self.keyed_from is not None and self.keyed_from > 1:
            notes.append(
                f"rows 1..{self.keyed_from - 1} have no key (plain SHA-256, written before the key was "
                f"introduced); the keyed chain starts at row {self.keyed_from}"
            )
        if self.latest is None:
            notes.append("no checkpoint given: a cut-off tail with its head moved back cannot be seen")
        else:
            notes.append(f"the latest checkpoint is of row {self.latest.seq}, exported at {self.latest.at}")
            if last > self.latest.seq:
                notes.append(f"rows {self.latest.seq + 1}..{last} are newer than the latest checkpoint")
