"""Checkpoints of the access trace: a row's number and MAC, signed with the trace's key and sent
off the machine (the ATNA syslog export, a checkpoint file), so that a trace cut short and its
head moved back — which leaves nothing wrong inside the database — is caught against the last
checkpoint exported.

One checkpoint is one line of ASCII, found anywhere in a line when read back, so that a syslog
collector's own log file can be given to `dmp-xds audit verify --checkpoints` as it is:

    dmp-xds-checkpoint v1 seq=120 at=2026-05-01T10:00:00.000000Z key=<key id> mac=<row MAC> sig=<signature>

`sig` is an HMAC under the trace's key of everything before it: a checkpoint cannot be made up
without the key (which would only make the trace look cut), and its time is the sender's.

When: the first row each process appends (which pins where the keyed chain of an upgraded
database starts), every N-th row of the trace, T seconds at most after a row not yet
checkpointed, and when the process closes its trail. Each process checkpoints the rows it wrote
itself, from memory, never what it reads back from the database.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dmp_xds.storage.audit_keys import AuditKey

log = logging.getLogger(__name__)

MARK = "dmp-xds-checkpoint v1"
JOIN_SECONDS = 5.0
_LINE = re.compile(r"dmp-xds-checkpoint v1 seq=(\d+) at=(\S+) key=([0-9a-f]+) mac=([0-9a-f]{64}) sig=([0-9a-f]{64})")


def utc_stamp(now: dt.datetime | None = None) -> str:
    """ISO 8601 UTC with microseconds: the trace's timestamps, stored as the exact text MACed."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    at: str
    key_id: str
    mac: str
    signature: str
    origin: str = ""  # where it was read ("file:line"), for messages

    def signed_text(self) -> str:
        return f"{MARK} seq={self.seq} at={self.at} key={self.key_id} mac={self.mac}"

    def line(self) -> str:
        return f"{self.signed_text()} sig={self.signature}"

    def authentic(self, key: AuditKey) -> bool:
        return hmac.compare_digest(key.checkpoint_signature(self.signed_text()), self.signature)


def make_checkpoint(key: AuditKey, seq: int, mac: str, at: str) -> Checkpoint:
    unsigned = Checkpoint(seq, at, key.id, mac, "")
    return Checkpoint(seq, at, key.id, mac, key.checkpoint_signature(unsigned.signed_text()))


def parse_checkpoints(lines: Iterable[str], origin: str) -> list[Checkpoint]:
    found = []
    for number, line in enumerate(lines, 1):
        match = _LINE.search(line)
        if match:
            seq, at, key_id, mac, signature = match.groups()
            found.append(Checkpoint(int(seq), at, key_id, mac, signature, f"{origin}:{number}"))
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
        self._last: tuple[int, str] | None = None  # the newest row this process appended: seq, MAC
        self._exported = 0  # the newest seq checkpointed by this process
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    def appended(self, seq: int, mac: str) -> None:
        with self._lock:
            first = self._last is None
            if self._last is None or seq > self._last[0]:
                self._last = (seq, mac)
            if self._timer is None and not self._stop.is_set():
                self._timer = threading.Thread(target=self._tick, name="audit-checkpoints", daemon=True)
                self._timer.start()
            if first or seq % self.every_rows == 0:
                self._emit(seq, mac)

    def flush(self) -> None:
        """Checkpoint the newest row appended, if it is not yet."""
        with self._lock:
            if self._last is not None and self._last[0] > self._exported:
                self._emit(*self._last)

    def close(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join(JOIN_SECONDS)
        self.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.every_seconds):
            self.flush()

    def _emit(self, seq: int, mac: str) -> None:
        checkpoint = make_checkpoint(self.key, seq, mac, utc_stamp())
        self._exported = max(self._exported, seq)
        for sink in self.sinks:
            try:
                sink(checkpoint)
            except Exception:  # the rows are stored; a lost checkpoint only weakens the tail's proof
                log.exception("audit checkpoint of row %s not exported", seq)
