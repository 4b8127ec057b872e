"""Checkpoints of the access trace: where a chain stood (its number, the row's place in it, and
the row's MAC), signed with the trace's key and sent off the machine (the ATNA syslog export, a
checkpoint file), so that a chain cut short and its head moved back, or a patient's chain deleted
whole with its head — which leave nothing wrong inside the database — are caught against the
checkpoints exported.

One checkpoint is one line of ASCII, found anywhere in a line when read back, so that a syslog
collector's own log file can be given to `dmp-xds audit verify --checkpoints` as it is:

    dmp-xds-checkpoint v2 chain=<patient id, percent-encoded> seq=<place in the chain> at=... key=<key id> mac=<row MAC> sig=<signature>

A checkpoint holds the head of one chain (storage/trail.py: one per patient): a digest over all
the heads would need every head read at each checkpoint, and could not say which chain went
missing. Lines of version 1 (`seq=` a row of the single global chain, no `chain=`), written
before the trace was chained per patient, are read as checkpoints of that global chain.

`sig` is an HMAC under the trace's key of everything before it: a checkpoint cannot be made up
without the key (which would only make the trace look cut), and its time is the sender's.

When: the rows a process appends are checkpointed in rounds, one line per chain it appended to
since the last round (that chain's newest row): at the first row the process appends, every
N-th row it appends, T seconds at most after a row not yet checkpointed, and when the process
closes its trail. Each process checkpoints the rows it wrote itself, from memory, never what it
reads back from the database.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dmp_xds.storage.audit_keys import AuditKey

log = logging.getLogger(__name__)

MARK = "dmp-xds-checkpoint v2"
LEGACY_MARK = "dmp-xds-checkpoint v1"  # the single global chain, before chains per patient
JOIN_SECONDS = 5.0
_LINE = re.compile(
    r"dmp-xds-checkpoint (?:v1|v2 chain=(\S*)) seq=(\d+) at=(\S+) key=([0-9a-f]+) mac=([0-9a-f]{64}) sig=([0-9a-f]{64})"
)


def utc_stamp(now: dt.datetime | None = None) -> str:
    """ISO 8601 UTC with microseconds: the trace's timestamps, stored as the exact text MACed."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Checkpoint:
    seq: int  # the row's place in its chain (`chain_seq`; in the global chain: its `seq`)
    at: str
    key_id: str
    mac: str
    signature: str
    origin: str = ""  # where it was read ("file:line"), for messages
    chain: str | None = None  # the chain's patient id; None: the global chain of before

    def signed_text(self) -> str:
        if self.chain is None:
            return f"{LEGACY_MARK} seq={self.seq} at={self.at} key={self.key_id} mac={self.mac}"
        chain = urllib.parse.quote(self.chain, safe="")
        return f"{MARK} chain={chain} seq={self.seq} at={self.at} key={self.key_id} mac={self.mac}"

    def line(self) -> str:
        return f"{self.signed_text()} sig={self.signature}"

    def authentic(self, key: AuditKey) -> bool:
        return hmac.compare_digest(key.checkpoint_signature(self.signed_text()), self.signature)


def make_checkpoint(key: AuditKey, chain: str | None, seq: int, mac: str, at: str) -> Checkpoint:
    unsigned = Checkpoint(seq, at, key.id, mac, "", chain=chain)
    return Checkpoint(seq, at, key.id, mac, key.checkpoint_signature(unsigned.signed_text()), chain=chain)


def parse_checkpoints(lines: Iterable[str], origin: str) -> list[Checkpoint]:
    found = []
    for number, line in enumerate(lines, 1):
        match = _LINE.search(line)
        if match:
            chain, seq, at, key_id, mac, signature = match.groups()
            patient = None if chain is None else urllib.parse.unquote(chain)
            found.append(Checkpoint(int(seq), at, key_id, mac, signature, f"{origin}:{number}", patient))
    return found


def read_checkpoints(path: Path) -> list[Checkpoint]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        return parse_checkpoints(handle, str(path))


class CheckpointFile:
    """A checkpoint sink: one line appended per checkpoint, on disk before it returns. Several
    processes may append to the same file (each line is one write in append mode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, checkpoint: Checkpoint) -> None:
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(descriptor, (checkpoint.line() + "\n").encode("ascii"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


Sink = Callable[[Checkpoint], None]


class Checkpointer:
    """Decides when this process checkpoints the rows it appended (see the module's docstring)
    and hands each checkpoint to every sink; a sink's failure is logged, never raised."""

    def __init__(self, key: AuditKey, sinks: Sequence[Sink], every_rows: int, every_seconds: float) -> None:
        self.key = key
        self.sinks = list(sinks)
        self.every_rows = every_rows
        self.every_seconds = every_seconds
        self._lock = threading.Lock()
        self._appended = 0  # rows this process appended
        self._pending: dict[str, tuple[int, str]] = {}  # chain -> its newest row not checkpointed: place, MAC
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    def appended(self, chain: str, seq: int, mac: str) -> None:
        """Row `seq` of `chain` (a patient id) was appended with this MAC."""
        with self._lock:
            self._appended += 1
            newest = self._pending.get(chain)
            if newest is None or seq > newest[0]:
                self._pending[chain] = (seq, mac)
            if self._timer is None and not self._stop.is_set():
                self._timer = threading.Thread(target=self._tick, name="audit-checkpoints", daemon=True)
                self._timer.start()
            if self._appended == 1 or self._appended % self.every_rows == 0:
                self._emit()

    def flush(self) -> None:
        """Checkpoint the newest row of each chain appended to since the last round."""
        with self._lock:
            self._emit()

    def close(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join(JOIN_SECONDS)
        self.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.every_seconds):
            self.flush()

    def _emit(self) -> None:
        at = utc_stamp()
        for chain, (seq, mac) in self._pending.items():
            checkpoint = make_checkpoint(self.key, chain, seq, mac, at)
            for sink in self.sinks:
                try:
                    sink(checkpoint)
                except Exception:  # the rows are stored; a lost checkpoint only weakens the tail's proof
                    log.exception("audit checkpoint of row %s of chain %r not exported", seq, chain)
        self._pending.clear()
