"""The access trace chained per patient, on SQLite and PostgreSQL: two server-like OS processes
appending at once for the same and for different patients keep every chain whole and every row
numbered once; a database holding the single global chain of before is upgraded and its old
rows still verify (and their tampering is still seen) while new rows chain per patient; a
patient's chain tampered with is named, the cuts invisible inside the database seen against the
checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, delete, select, text, update

from dmp_xds.storage import trail as t
from dmp_xds.storage.audit_checkpoints import Checkpoint, Checkpointer, make_checkpoint, read_checkpoints
from dmp_xds.storage.audit_keys import AuditKey
from dmp_xds.storage.database import alembic_config, create_engine_for, upgrade
from dmp_xds.storage.tables import AuditEntryRow, AuditHeadRow, AuditLegacyHeadRow
from dmp_xds.storage.trail import AuditEvent, AuditTrail

P1 = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
P2 = "1750599123456^^^&1.2.250.1.213.1.4.10&ISO"
P3 = "1990599123456^^^&1.2.250.1.213.1.4.10&ISO"
KEY = AuditKey(bytes(range(32)), "test key")
SRC = Path(__file__).resolve().parents[2] / "src"
_entry = AuditEntryRow.__table__
_head = AuditHeadRow.__table__

# One writer process: waits for the start file, appends COUNT rows cycling over its patients, one
# by one (`append`, as requests do) or three at a time (`append_many`, several chains at once),
# checkpoints to a file shared with the other writer (as two servers do), prints what it wrote.
WRITER = """
import json, os, sys, time
from pathlib import Path
from dmp_xds.storage.audit_checkpoints import Checkpointer, CheckpointFile
from dmp_xds.storage.audit_keys import AuditKey
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.trail import AuditEvent, AuditTrail

mode, url, key_hex, go, checkpoints, count, *patients = sys.argv[1:]
key = AuditKey(bytes.fromhex(key_hex), "test key")
engine = create_engine_for(url)
trail = AuditTrail(engine, key, checkpointer=Checkpointer(key, [CheckpointFile(Path(checkpoints))], 7, 3600))
deadline = time.monotonic() + 60
while not Path(go).exists() and time.monotonic() < deadline:
    time.sleep(0.002)
events = [AuditEvent("search", "success", patients[i % len(patients)], actor_id=f"{os.getpid()}-{i}") for i in range(int(count))]
if mode == "one by one":
    entries = [trail.append(event) for event in events]
else:
    entries = [e for first in range(0, len(events), 3) for e in trail.append_many([(e, None) for e in events[first:first + 3]])]
written = [[entry.seq, entry.event.patient_id, entry.chain_seq] for entry in entries]
trail.close()
engine.dispose()
print(json.dumps(written))
"""


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    engine = create_engine_for(db_url)
    yield engine
    engine.dispose()


def test_two_processes_appending_at_once_keep_every_chain_whole(db_url: str, engine: Engine, tmp_path: Path) -> None:
    """Both write P1's chain, each also its own patients' (one by one, and three chains at a time):
    no row lost, none numbered twice, each chain gapless and verified, with the checkpoints both
    wrote."""
    go, checkpoints, count = tmp_path / "go", tmp_path / "checkpoints.log", 60
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, mode, db_url, KEY.secret.hex(), str(go), str(checkpoints), str(count)]
            + list(patients),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for mode, patients in (("one by one", (P1, P2)), ("three at a time", (P1, P3, "")))
    ]
    try:
        time.sleep(1.0)  # both started and connected before either writes
        go.touch()
        outputs = [writer.communicate(timeout=180) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait(10)
    assert [writer.returncode for writer in writers] == [0, 0], [err for _, err in outputs]
    written = [tuple(row) for out, _ in outputs for row in json.loads(out)]
    assert len(written) == 2 * count
    seqs = [seq for seq, _, _ in written]
    assert len(set(seqs)) == len(seqs)  # no row numbered twice
    with engine.connect() as connection:
        stored = {(r.seq, r.patient_id, r.chain_seq) for r in connection.execute(select(_entry))}
        heads = {r.patient_id: r.chain_seq for r in connection.execute(select(_head))}
    assert stored == set(written)  # none lost
    for patient in (P1, P2, P3, ""):
        places = sorted(place for _, chain, place in written if chain == patient)
        assert places == list(range(1, len(places) + 1)) and heads[patient] == len(places), patient
        in_seq_order = [place for _, place in sorted((seq, place) for seq, chain, place in written if chain == patient)]
        assert in_seq_order == places  # a chain's rows are numbered in its order
    both = {chain for _, chain, _ in written[:count]} & {chain for _, chain, _ in written[count:]}
    assert both == {P1}
    sent = read_checkpoints(checkpoints)
    assert {c.chain for c in sent} == {P1, P2, P3, ""}
    report = AuditTrail(engine, KEY).verify(sent)
    assert report.ok and (report.checked, report.chains) == (2 * count, 4), report.problems


def _appended(engine: Engine) -> tuple[AuditTrail, list[Checkpoint]]:
    sent: list[Checkpoint] = []
    trail = AuditTrail(engine, KEY, checkpointer=Checkpointer(KEY, [sent.append], 100, 3600))
    for n, patient in enumerate((P1, P2, P1, "", P1, P2, P1), 1):
        trail.append(AuditEvent("search", "success", patient, actor_id=f"81000{n}"))
    trail.close()
    return trail, sent


def test_rows_of_several_chains_appended_at_once_chain_like_single_ones(engine: Engine) -> None:
    trail = AuditTrail(engine, KEY)
    first = trail.append(AuditEvent("search", "success", P1))
    bulk = trail.append_many([(AuditEvent("search", "success", p), None) for p in (P2, P1, P2, "", P1)])
    assert [(e.seq, e.event.patient_id, e.chain_seq) for e in bulk] == [
        (2, P2, 1),
        (3, P1, 2),
        (4, P2, 2),
        (5, "", 1),
        (6, P1, 3),
    ]
    assert bulk[1].prev_hash == first.hash and bulk[2].prev_hash == bulk[0].hash and bulk[4].prev_hash == bulk[1].hash
    assert trail.append(AuditEvent("search", "success", P2)).prev_hash == bulk[2].hash
    report = trail.verify()
    assert report.ok and (report.checked, report.chains) == (7, 3), report.problems


def test_a_chain_whose_head_was_deleted_is_not_appended_to(engine: Engine) -> None:
    trail = AuditTrail(engine, KEY)
    trail.append_many([(AuditEvent("search", "success", p), None) for p in (P1, P2)])
    with engine.begin() as connection:
        connection.execute(delete(_head).where(_head.c.patient_id == P1))
    with pytest.raises(RuntimeError, match=r"audit_head row of the chain of patient 2840599123456\^"):
        trail.append(AuditEvent("search", "success", P1))
    with pytest.raises(RuntimeError, match="audit_head row of the chain of patient 2840599123456"):
        trail.append_many([(AuditEvent("search", "success", p), None) for p in (P2, P1)])
    assert trail.append(AuditEvent("search", "success", P2)).chain_seq == 2  # nothing of the refused kept
    assert trail.verify().problems == [(1, f"the chain of patient {P1}: its head (audit_head) is missing")]


def test_a_tampered_patient_chain_is_named(engine: Engine) -> None:
    trail, sent = _appended(engine)  # P1: rows 1, 3, 5, 7; P2: rows 2, 6; no patient: row 4
    assert trail.verify(sent).ok
    with engine.begin() as connection:
        connection.execute(update(_entry).where(_entry.c.seq == 3).values(actor_id="someone else"))
        connection.execute(delete(_entry).where(_entry.c.seq == 2))
    assert trail.verify(sent).problems == [  # the chains in their order: P2's, then P1's
        (6, f"the chain of patient {P2}: link 1 missing (deleted), before row 6 (link 2)"),
        (3, f"row 3 (link 2 of the chain of patient {P1}) was altered: its content does not match its MAC"),
    ]


def test_cuts_invisible_inside_the_database_are_seen_against_the_checkpoints(engine: Engine) -> None:
    trail, sent = _appended(engine)
    with engine.begin() as connection:  # P1 cut after its link 2 (row 3), its head moved back
        connection.execute(delete(_entry).where((_entry.c.patient_id == P1) & (_entry.c.seq > 3)))
        connection.execute(update(_head).where(_head.c.patient_id == P1).values(chain_seq=2))
        connection.execute(delete(_entry).where(_entry.c.patient_id == ""))  # the chain of no patient, whole
        connection.execute(delete(_head).where(_head.c.patient_id == ""))
    assert trail.verify().ok  # nothing inside the database tells
    problems = [text_ for _, text_ in trail.verify(sent).problems]
    assert problems == [
        f"the chain of patient {P1}: links 3..4 missing since checkpoint {sent[-1].at} (): the chain was cut "
        "after link 2 and its head moved back to it",
        f"the chain of events of no patient: link 1 missing since checkpoint {sent[-1].at} (): the chain was "
        "deleted whole, its head with it",
    ]
    with engine.begin() as connection:  # P2's rows deleted, its head kept: the head tells, once
        connection.execute(delete(_entry).where(_entry.c.patient_id == P2))
    about_p2 = [text_ for _, text_ in trail.verify(sent).problems if P2 in text_]
    assert about_p2 == [
        f"the chain of patient {P2}: its head says 2 row(s) but none is left: every row of the chain was deleted"
    ]


# --- the upgrade of a database holding the single global chain ------------------------------------


def _global_chain(engine: Engine, count: int, keyed_from: int) -> list[str]:
    """Rows as the global chain held them at revision 0014 (plain SHA-256 before `keyed_from`,
    the key's HMAC from it), the old one-row head at the last one: their MACs."""
    prev, macs = t.GENESIS_HASH, []
    with engine.begin() as connection:
        for seq in range(1, count + 1):
            event = AuditEvent("search", "success", P1 if seq % 2 else P2, actor_id=f"81000{seq}")
            at = f"2026-01-01T00:00:0{seq}.000000Z"
            keyed = seq >= keyed_from
            mac = t.entry_mac(KEY, seq, at, event, prev) if keyed else t.entry_hash(seq, at, event, prev)
            connection.execute(
                text(
                    "INSERT INTO audit_entry (seq, recorded_at, actor_id, actor_name, actor_role, structure_id, "
                    "access_mode, access_reason, action, patient_id, documents, outcome, detail, prev_hash, hash, "
                    "key_id) VALUES (:seq, :at, :actor, '', '', '', '', '', 'search', :patient, '[]', 'success', "
                    "'', :prev, :mac, :key_id)"
                ),
                {
                    "seq": seq,
                    "at": at,
                    "actor": event.actor_id,
                    "patient": event.patient_id,
                    "prev": prev,
                    "mac": mac,
                    "key_id": KEY.id if keyed else "",
                },
            )
            prev = mac
            macs.append(mac)
        connection.execute(
            text("INSERT INTO audit_head (id, seq, hash) VALUES (1, :seq, :mac)"), {"seq": count, "mac": prev}
        )
    return macs


def _migrate(db_url: str, revision: str, down: bool = False) -> None:
    config = alembic_config(db_url)
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def test_an_old_global_chain_still_verifies_after_the_upgrade_and_new_rows_chain_per_patient(db_url: str) -> None:
    _migrate(db_url, "0014")
    engine = create_engine_for(db_url)
    try:
        macs = _global_chain(engine, 6, keyed_from=3)
        old_checkpoint = make_checkpoint(KEY, None, 6, macs[-1], "2026-01-01T00:00:07.000000Z")  # a v1 line
        upgrade(db_url)
        trail = AuditTrail(engine, KEY)
        report = trail.verify([old_checkpoint])
        assert report.ok and report.checked == 6 and report.chains == 0, report.problems
        assert "rows 1..6 form the single global chain" in report.notes[0] and "starts at row 3" in report.notes[1]
        with engine.connect() as connection:
            assert tuple(connection.execute(select(AuditLegacyHeadRow.__table__)).one()) == (1, 6, macs[-1])

        first, second = (
            trail.append(AuditEvent("search", "success", P1)),
            trail.append(AuditEvent("search", "success", P2)),
        )
        assert (first.seq, first.chain_seq, first.prev_hash) == (7, 1, t.GENESIS_HASH)  # numbered on, chained anew
        assert (second.seq, second.chain_seq) == (8, 1)
        report = trail.verify([old_checkpoint])
        assert report.ok and (report.checked, report.chains) == (8, 2), report.problems

        with engine.begin() as connection:  # an old row edited: still named as it was
            connection.execute(update(_entry).where(_entry.c.seq == 4).values(detail="x"))
        assert trail.verify().problems == [(4, "row 4 was altered: its content does not match its MAC")]
        with engine.begin() as connection:  # the old chain's tail cut, its head moved back
            connection.execute(update(_entry).where(_entry.c.seq == 4).values(detail=""))
            connection.execute(delete(_entry).where(_entry.c.seq == 6))
            legacy_head = AuditLegacyHeadRow.__table__
            connection.execute(update(legacy_head).values(seq=5, hash=macs[4]))
        assert trail.verify().ok  # nothing inside the database tells
        problems = trail.verify([old_checkpoint]).problems
        assert len(problems) == 1 and problems[0][1].startswith("rows 6..6 missing since checkpoint")
        with engine.begin() as connection:  # a new row made a row of the old chain: it breaks it
            connection.execute(update(_entry).where(_entry.c.seq == 7).values(chain_seq=None))
        problems = trail.verify().problems
        assert any("row 7" in text_ for _, text_ in problems) and any(P1 in text_ for _, text_ in problems)

        with pytest.raises(RuntimeError, match="cannot be rebuilt"):  # per-patient rows: no way back
            _migrate(db_url, "0014", down=True)
    finally:
        engine.dispose()


# Not on Citus: a downgrade there would need a primary key without the distribution column,
# which Citus refuses (docs/scaling.md says downgrades are not supported on Citus).
@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_an_upgraded_database_without_new_rows_goes_back_to_the_global_head(db_url: str) -> None:
    _migrate(db_url, "0014")
    engine = create_engine_for(db_url)
    try:
        macs = _global_chain(engine, 3, keyed_from=1)
        upgrade(db_url)
        _migrate(db_url, "0014", down=True)
        with engine.connect() as connection:
            assert tuple(connection.execute(text("SELECT id, seq, hash FROM audit_head")).one()) == (1, 3, macs[-1])
    finally:
        engine.dispose()
