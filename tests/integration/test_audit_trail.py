"""The keyed trace, one chain per patient: append, history, verify (edited / deleted / cut /
re-hashed rows named with their chain, a wrong key, the global chain of before, rows from before
the key), the key file, checkpoints (when, signed, checked), ATNA."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import Engine, delete, insert, select, text, update

from dmp_xds.config import ConfigError, Settings
from dmp_xds.storage import trail as t
from dmp_xds.storage.audit_checkpoints import (
    Checkpoint,
    Checkpointer,
    CheckpointFile,
    make_checkpoint,
    parse_checkpoints,
    utc_stamp,
)
from dmp_xds.storage.audit_keys import AuditKey, key_for, load_key, parse_key
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.tables import AuditEntryRow, AuditHeadRow, AuditLegacyHeadRow, metadata
from dmp_xds.storage.trail import AuditEvent, AuditTrail
from dmp_xds.transport.atna import CHECKPOINT_MSG_ID, SyslogExporter, audit_message, syslog_record

P1 = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
P2 = "1750599123456^^^&1.2.250.1.213.1.4.10&ISO"


@pytest.fixture()
def engine() -> Engine:
    engine = create_engine_for("sqlite://")
    metadata.create_all(engine)
    return engine


KEY = AuditKey(bytes(range(32)), "test key")
OTHER_KEY = AuditKey(bytes(range(1, 33)), "other key")


@pytest.fixture()
def trail(engine: Engine) -> AuditTrail:
    return AuditTrail(engine, KEY)


def event(n: int, patient: str = P1, **changes: object) -> AuditEvent:
    base = dict(
        action=t.SEARCH,
        outcome=t.SUCCESS,
        patient_id=patient,
        actor_id=f"81000{n}",
        actor_name="MARIE MARTIN",
        actor_role="10",
        structure_id="1990000017",
        access_mode="normal",
        documents=(f"1.2.3.{n}",),
    )
    base.update(changes)
    return AuditEvent(**base)  # type: ignore[arg-type]


def fill(trail: AuditTrail, count: int = 5) -> None:
    for n in range(1, count + 1):
        trail.append(event(n, P1 if n % 2 else P2))


def test_append_chains_rows(trail: AuditTrail) -> None:
    first = trail.append(event(1))
    second = trail.append(event(2))
    assert (first.seq, second.seq) == (1, 2)
    assert (first.chain_seq, second.chain_seq) == (1, 2)
    assert first.prev_hash == t.GENESIS_HASH
    assert second.prev_hash == first.hash
    assert trail.verify().ok and trail.verify().checked == 2


def test_each_patient_has_a_chain_of_its_own(trail: AuditTrail, engine: Engine) -> None:
    """Rows of different patients are numbered in one order, each chained to the previous row of
    its own patient; events of no patient form a chain of their own."""
    rows = [trail.append(event(n, patient)) for n, patient in enumerate((P1, P2, P1, "", P2, ""), 1)]
    assert [e.seq for e in rows] == [1, 2, 3, 4, 5, 6]
    assert [e.chain_seq for e in rows] == [1, 1, 2, 1, 2, 2]
    genesis = t.GENESIS_HASH
    assert [e.prev_hash for e in rows] == [genesis, genesis, rows[0].hash, genesis, rows[1].hash, rows[3].hash]
    with engine.connect() as connection:
        heads = {r.patient_id: r.chain_seq for r in connection.execute(select(AuditHeadRow.__table__))}
    assert heads == {P1: 2, P2: 2, "": 2}
    report = trail.verify()
    assert report.ok and (report.checked, report.chains) == (6, 3), report.problems


def test_rows_appended_in_bulk_chain_like_single_ones(trail: AuditTrail) -> None:
    first = trail.append(event(1))
    stamps = [dt.datetime(2026, 3, day, 9, tzinfo=dt.UTC) for day in (1, 2, 3)]
    bulk = trail.append_many([(event(n, detail="x" * 2000), when) for n, when in zip((2, 3, 4), stamps, strict=True)])
    last = trail.append(event(5))
    assert [e.seq for e in bulk] == [2, 3, 4] and last.seq == 5
    assert bulk[0].prev_hash == first.hash and last.prev_hash == bulk[-1].hash
    assert [e.recorded_at for e in bulk] == [utc_stamp(s) for s in stamps]
    assert len(trail.history(P1)[1].event.detail) == 1000  # clipped as `append` clips
    assert trail.append_many([]) == []
    report = trail.verify()
    assert report.ok and report.checked == 5, report.problems


def test_history_is_per_patient_newest_first(trail: AuditTrail) -> None:
    fill(trail)
    history = trail.history(P1)
    assert [e.seq for e in history] == [5, 3, 1]
    assert history[0].event.documents == ("1.2.3.5",)
    assert trail.history("nobody") == []


def test_emergency_flag(trail: AuditTrail) -> None:
    entry = trail.append(event(1, access_mode="bris_de_glace", access_reason="inconscient"))
    assert entry.emergency and trail.history(P1)[0].emergency


def test_edited_row_is_named(trail: AuditTrail, engine: Engine) -> None:
    fill(trail)
    with engine.begin() as connection:
        connection.execute(update(AuditEntryRow.__table__).where(AuditEntryRow.seq == 3).values(outcome=t.DENIED))
    report = trail.verify()
    assert not report.ok
    assert report.problems == [
        (3, f"row 3 (link 2 of the chain of patient {P1}) was altered: its content does not match its MAC")
    ]


def test_a_row_rehashed_without_the_key_is_named_and_breaks_the_next_link(trail: AuditTrail, engine: Engine) -> None:
    fill(trail)
    row = trail.history(P1)[1]  # seq 3, link 2 of P1's chain
    forged = AuditEvent(**{**row.event.__dict__, "actor_id": "someone else"})
    forged_hash = t.entry_hash(3, row.recorded_at, forged, row.prev_hash, 2)  # all one can do without the key
    with engine.begin() as connection:
        connection.execute(
            update(AuditEntryRow.__table__)
            .where(AuditEntryRow.seq == 3)
            .values(actor_id="someone else", hash=forged_hash)
        )
    problems = trail.verify().problems
    assert [seq for seq, _ in problems] == [3, 5]  # row 5 is the next of P1's chain
    assert "re-hashed without the key" in problems[0][1]
    assert "row 5 (link 3 of the chain of patient" in problems[1][1] and "does not follow link 2" in problems[1][1]


def test_deleted_row_is_named(trail: AuditTrail, engine: Engine) -> None:
    fill(trail)
    with engine.begin() as connection:
        connection.execute(delete(AuditEntryRow.__table__).where(AuditEntryRow.seq == 3))  # P1's link 2
    report = trail.verify()
    assert report.problems == [(5, f"the chain of patient {P1}: link 2 missing (deleted), before row 5 (link 3)")]


def test_cut_tail_is_seen(trail: AuditTrail, engine: Engine) -> None:
    fill(trail)
    with engine.begin() as connection:
        connection.execute(delete(AuditEntryRow.__table__).where(AuditEntryRow.seq >= 4))
    report = trail.verify()
    assert sorted(report.problems) == sorted(
        [
            (3, f"the chain of patient {P1} ends at link 2 (row 3) but its head says 3: the last row(s) were deleted"),
            (2, f"the chain of patient {P2} ends at link 1 (row 2) but its head says 2: the last row(s) were deleted"),
        ]
    )
    with engine.begin() as connection:  # a whole chain deleted: its head still tells
        connection.execute(delete(AuditEntryRow.__table__).where(AuditEntryRow.patient_id == P2))
    assert (
        0,
        f"the chain of patient {P2}: its head says 2 row(s) but none is left: every row of the chain was deleted",
    ) in trail.verify().problems


def test_head_is_created_by_the_first_append_and_its_loss_is_seen(engine: Engine) -> None:
    trail = AuditTrail(engine, KEY)
    assert trail.append(event(1)).seq == 1
    assert trail.append(event(2)).prev_hash == trail.history(P1)[1].hash
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_head"))
    with pytest.raises(RuntimeError, match="audit_head"):
        trail.append(event(3))
    assert trail.append(event(3, P2)).chain_seq == 1  # another patient's chain is not concerned
    assert trail.verify().problems == [(2, f"the chain of patient {P1}: its head (audit_head) is missing")]


def test_exporter_failure_does_not_lose_the_row(trail: AuditTrail) -> None:
    def broken(_: object) -> None:
        raise OSError("collector down")

    trail.exporters.append(broken)
    trail.append(event(1))
    assert trail.verify().checked == 1


def test_rfc3881_message() -> None:
    entry = t.AuditEntry(
        7,
        "2026-01-02T03:04:05.000000Z",
        event(1, action=t.RETRIEVE, access_mode="bris_de_glace", access_reason="urgence vitale"),
        "0" * 64,
        "1" * 64,
    )
    message = etree.fromstring(audit_message(entry, "dmp-xds-test"))
    assert message.tag == "AuditMessage"
    ident = message.find("EventIdentification")
    assert ident.get("EventActionCode") == "R" and ident.get("EventOutcomeIndicator") == "0"
    assert ident.find("EventID").get("code") == "110106"
    assert message.find("ActiveParticipant").get("UserID") == "810001"
    objects = message.findall("ParticipantObjectIdentification")
    assert [o.get("ParticipantObjectTypeCode") for o in objects] == ["1", "2", "4"]
    assert objects[0].get("ParticipantObjectID") == P1
    details = {d.get("type"): d.get("value") for d in objects[2].findall("ParticipantObjectDetail")}
    assert details["access_mode"] == "bris_de_glace" and details["access_reason"] == "urgence vitale"
    record = syslog_record(b"<x/>", entry.recorded_at, "host")
    assert record.startswith(b"<85>1 2026-01-02T03:04:05.000000Z host dmp-xds ")
    assert record.endswith(b"\xef\xbb\xbf<x/>")


def test_syslog_udp_export(trail: AuditTrail) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as collector:
        collector.bind(("127.0.0.1", 0))
        collector.settimeout(5)
        exporter = SyslogExporter(f"udp://127.0.0.1:{collector.getsockname()[1]}")
        trail.exporters.append(exporter)
        trail.append(event(1, action=t.SUBMIT))
        data, _ = collector.recvfrom(65536)
        exporter.close()
    assert data.startswith(b"<85>1 ")
    xml = data.split(b"\xef\xbb\xbf", 1)[1]
    assert etree.fromstring(xml).find("EventIdentification/EventID").get("code") == "110107"


def test_syslog_tcp_export(trail: AuditTrail) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(5)
        exporter = SyslogExporter(f"tcp://127.0.0.1:{listener.getsockname()[1]}")
        trail.exporters.append(exporter)
        trail.append(event(1))
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(5)
            received = b""
            while b" " not in received:
                received += connection.recv(65536)
            length, rest = received.split(b" ", 1)
            while len(rest) < int(length):
                rest += connection.recv(65536)
        exporter.close()
    assert rest.startswith(b"<85>1 ")


def test_bad_collector_url() -> None:
    with pytest.raises(ValueError, match="udp://host:port"):
        SyslogExporter("http://example.org")


def test_cli_verify_and_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from dmp_xds.cli.main import main
    from dmp_xds.config import Settings, default_database_url

    monkeypatch.setenv("DMP_XDS_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(main, ["audit", "verify"]).exit_code == 0  # creates and migrates
    assert not (tmp_path / "audit-key").exists()  # verifying never makes a key
    engine = create_engine_for(default_database_url(Settings(data_dir=tmp_path)))
    trail = AuditTrail(engine, key_for(Settings(data_dir=tmp_path), generate=True))
    fill(trail, 4)
    trail.append(event(9, access_mode="bris_de_glace", access_reason="coma"))
    ok = runner.invoke(main, ["audit", "verify"])
    assert ok.exit_code == 0 and "5 entries checked" in ok.output
    history = runner.invoke(main, ["audit", "history", P1])
    assert history.exit_code == 0 and "ACCES D'URGENCE" in history.output and "reason: coma" in history.output
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_entry SET detail = 'x' WHERE seq = 2"))
    broken = runner.invoke(main, ["audit", "verify"])
    assert broken.exit_code == 1 and "row 2" in broken.output
    engine.dispose()


# --- the key ------------------------------------------------------------------------------------


def test_appending_needs_the_key(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="no key"):
        AuditTrail(engine).append(event(1))


def test_rows_carry_the_key_id_and_an_hmac(trail: AuditTrail) -> None:
    entry = trail.append(event(1))
    assert entry.key_id == KEY.id and len(KEY.id) == 16
    assert entry.hash == t.entry_mac(KEY, 1, entry.recorded_at, entry.event, t.GENESIS_HASH, 1)
    assert entry.hash != t.entry_hash(1, entry.recorded_at, entry.event, t.GENESIS_HASH, 1)
    assert entry.hash != t.entry_mac(KEY, 1, entry.recorded_at, entry.event, t.GENESIS_HASH)  # not a global chain's
    assert trail.history(P1)[0].key_id == KEY.id


def test_a_wrong_key_is_named_once_for_the_whole_run(trail: AuditTrail, engine: Engine) -> None:
    fill(trail)
    report = AuditTrail(engine, OTHER_KEY).verify()
    assert len(report.problems) == 1
    first = report.problems[0]  # the first in the chains' order: P2's
    assert first[0] == 2 and "5 row(s) of 2 chain(s), from row 2, carry key id" in first[1]
    assert "wrong key file" in report.problems[0][1]
    no_key = AuditTrail(engine).verify()
    assert no_key.problems == [
        (
            2,
            f"5 row(s) of 2 chain(s), from row 2, carry key id {KEY.id} but no key was given: they cannot be "
            "checked (DMP_XDS_AUDIT_KEY_FILE)",
        )
    ]


def legacy_rows(engine: Engine, count: int, keyed_from: int | None = None) -> None:
    """Rows of the single global chain as written before the chains per patient: plain SHA-256
    and no key id before `keyed_from` (rows from before the key), the key's HMAC from it, the
    global head (moved to `audit_legacy_head` by the upgrade) at the last one."""
    prev = t.GENESIS_HASH
    with engine.begin() as connection:
        for seq in range(1, count + 1):
            e = event(seq, P1 if seq % 2 else P2)
            recorded_at = f"2025-01-01T00:00:0{seq}.000000Z"
            keyed = keyed_from is not None and seq >= keyed_from
            digest = t.entry_mac(KEY, seq, recorded_at, e, prev) if keyed else t.entry_hash(seq, recorded_at, e, prev)
            connection.execute(
                insert(AuditEntryRow.__table__).values(
                    seq=seq,
                    recorded_at=recorded_at,
                    actor_id=e.actor_id,
                    actor_name=e.actor_name,
                    actor_role=e.actor_role,
                    structure_id=e.structure_id,
                    access_mode=e.access_mode,
                    access_reason=e.access_reason,
                    action=e.action,
                    patient_id=e.patient_id,
                    documents=list(e.documents),
                    outcome=e.outcome,
                    detail=e.detail,
                    prev_hash=prev,
                    hash=digest,
                    key_id=KEY.id if keyed else "",
                )
            )
            prev = digest
        connection.execute(insert(AuditLegacyHeadRow.__table__).values(id=t.LEGACY_HEAD_ID, seq=count, hash=prev))


def test_rows_from_before_the_key_verify_up_to_where_the_keyed_chain_starts(engine: Engine) -> None:
    legacy_rows(engine, 5, keyed_from=4)
    trail = AuditTrail(engine, KEY)
    assert trail.verify().ok, trail.verify().problems
    appended = trail.append(event(6))
    assert (appended.seq, appended.chain_seq, appended.prev_hash) == (6, 1, t.GENESIS_HASH)  # P1's chain begins
    report = trail.verify()
    assert report.ok, report.problems
    assert "rows 1..5 form the single global chain" in report.notes[0]
    assert "rows 1..3 have no key" in report.notes[1] and "starts at row 4" in report.notes[1]
    # An old row edited is still seen; a row after the start without the key too.
    with engine.begin() as connection:
        connection.execute(update(AuditEntryRow.__table__).where(AuditEntryRow.seq == 2).values(detail="x"))
    assert trail.verify().problems == [(2, "row 2 was altered: its content does not match its hash")]
    with engine.begin() as connection:
        connection.execute(update(AuditEntryRow.__table__).where(AuditEntryRow.seq == 2).values(detail=""))
        connection.execute(update(AuditEntryRow.__table__).where(AuditEntryRow.seq == 5).values(key_id=""))
    problems = trail.verify().problems
    assert problems[0][0] == 5 and "no key although the keyed chain began at row 4" in problems[0][1]
    with engine.begin() as connection:  # the global chain's tail is still closed by its head
        connection.execute(update(AuditEntryRow.__table__).where(AuditEntryRow.seq == 5).values(key_id=KEY.id))
        connection.execute(delete(AuditEntryRow.__table__).where(AuditEntryRow.seq == 5))
    assert trail.verify().problems == [(5, "the trace ends at row 4 but the head says 5: the last row(s) were deleted")]


def test_key_file_is_generated_once_private_and_never_replaced(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert key_for(settings, generate=False) is None
    first = key_for(settings, generate=True)
    assert first is not None and (tmp_path / "audit-key").stat().st_mode & 0o777 == 0o600
    assert key_for(settings, generate=True) == first
    keys: list[AuditKey | None] = []
    other_dir = tmp_path / "race"
    threads = [
        threading.Thread(target=lambda: keys.append(load_key(other_dir / "audit-key", generate=True))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(keys) == 8 and len({k.id for k in keys if k}) == 1  # whoever came first, one key for all
    assert [p.name for p in other_dir.iterdir()] == ["audit-key"]


def test_a_configured_key_file_must_exist_and_hold_a_key(tmp_path: Path) -> None:
    missing = Settings(data_dir=tmp_path, audit_key_file=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="does not exist"):
        key_for(missing, generate=True)
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(ConfigError, match="64 hex digits"):
        parse_key("00ff", "short")
    (tmp_path / "given").write_text("ab" * 32 + "\n")
    assert key_for(Settings(data_dir=tmp_path, audit_key_file=str(tmp_path / "given")), generate=True) == AuditKey(
        bytes.fromhex("ab" * 32), str(tmp_path / "given")
    )


# --- checkpoints --------------------------------------------------------------------------------


def collect(trail: AuditTrail, every_rows: int = 3, every_seconds: float = 3600.0) -> list[Checkpoint]:
    sent: list[Checkpoint] = []
    trail.checkpointer = Checkpointer(KEY, [sent.append], every_rows, every_seconds)
    return sent


def test_checkpoints_first_row_every_n_rows_and_on_close(trail: AuditTrail) -> None:
    """A round of checkpoints holds the newest row of each chain appended to since the last one."""
    sent = collect(trail)
    fill(trail, 7)  # rows 1, 3, 5, 7 of P1 (links 1..4), rows 2, 4, 6 of P2 (links 1..3)
    assert [(c.chain, c.seq) for c in sent] == [(P1, 1), (P2, 1), (P1, 2), (P2, 3), (P1, 3)]
    trail.close()
    assert [(c.chain, c.seq) for c in sent][5:] == [(P1, 4)]
    trail.close()  # nothing new: nothing more
    assert len(sent) == 6 and all(c.authentic(KEY) and c.key_id == KEY.id for c in sent)
    assert trail.verify(sent).ok


def test_checkpoints_after_t_seconds_without_more_rows(trail: AuditTrail) -> None:
    sent = collect(trail, every_rows=1000, every_seconds=0.05)
    fill(trail, 2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(sent) < 2:
        time.sleep(0.02)
    assert [(c.chain, c.seq) for c in sent] == [(P1, 1), (P2, 1)]
    trail.close()


def test_a_cut_tail_with_the_head_moved_back_is_seen_only_against_a_checkpoint(
    trail: AuditTrail, engine: Engine
) -> None:
    sent = collect(trail)
    fill(trail, 7)
    trail.close()
    with engine.begin() as connection:  # P1 cut after its link 2 (row 3), P2 after its link 2 (row 4)
        connection.execute(delete(AuditEntryRow.__table__).where(AuditEntryRow.seq > 4))
        connection.execute(update(AuditHeadRow.__table__).values(chain_seq=2))
    assert trail.verify().ok  # nothing inside the database tells
    problems = trail.verify(sent).problems
    assert [seq for seq, _ in problems] == [4, 3]  # the chains in their order: P2's, then P1's
    assert problems[0][1].startswith(f"the chain of patient {P2}: link 3 missing since checkpoint")
    assert problems[1][1].startswith(f"the chain of patient {P1}: links 3..4 missing since checkpoint {sent[-1].at}")
    assert problems[1][1].endswith("the chain was cut after link 2 and its head moved back to it")


def test_a_chain_deleted_whole_with_its_head_is_seen_only_against_a_checkpoint(
    trail: AuditTrail, engine: Engine
) -> None:
    sent = collect(trail)
    fill(trail, 5)
    trail.close()
    with engine.begin() as connection:
        connection.execute(delete(AuditEntryRow.__table__).where(AuditEntryRow.patient_id == P2))
        connection.execute(delete(AuditHeadRow.__table__).where(AuditHeadRow.patient_id == P2))
    assert trail.verify().ok  # nothing inside the database tells
    problems = trail.verify(sent).problems
    assert len(problems) == 1 and problems[0][1].startswith(f"the chain of patient {P2}: links 1..2 missing")
    assert problems[0][1].endswith("the chain was deleted whole, its head with it")


def test_a_rewritten_checkpointed_row_and_forged_checkpoints_are_named(trail: AuditTrail) -> None:
    sent = collect(trail)
    fill(trail, 3)
    changed = Checkpoint(
        2,
        sent[1].at,
        KEY.id,
        "f" * 64,
        KEY.checkpoint_signature(Checkpoint(2, sent[1].at, KEY.id, "f" * 64, "", chain=P1).signed_text()),
        "collector:9",
        P1,
    )
    assert trail.verify([changed]).problems == [
        (
            3,
            f"row 3 (link 2 of the chain of patient {P1}) is not the row checkpointed at {sent[1].at} "
            "(collector:9): it was rewritten",
        )
    ]
    forged = Checkpoint(90, sent[1].at, KEY.id, "f" * 64, "0" * 64, "collector:10", P1)
    assert trail.verify([forged]).problems == [
        (
            0,
            f"checkpoint collector:10 (link 90 of the chain of patient {P1}) is not authentic: its signature "
            "does not match (forged or altered)",
        )
    ]
    foreign = make_checkpoint(OTHER_KEY, P1, 2, "e" * 64, sent[1].at)
    assert "made with key id" in trail.verify([foreign]).problems[0][1]


def test_checkpoint_lines_are_found_in_a_collectors_log(tmp_path: Path) -> None:
    checkpoint = make_checkpoint(KEY, P1, 12, "a" * 64, "2026-01-02T03:04:05.000000Z")
    sink = CheckpointFile(tmp_path / "checkpoints.log")
    sink(checkpoint)
    sink(make_checkpoint(KEY, "", 13, "b" * 64, "2026-01-02T03:04:06.000000Z"))
    lines = (tmp_path / "checkpoints.log").read_text().splitlines()
    assert lines[0] == checkpoint.line() and len(lines) == 2
    assert " chain=2840599123456%5E%5E%5E%261.2.250.1.213.1.4.10%26ISO seq=12 " in lines[0]
    record = syslog_record(checkpoint.line().encode(), checkpoint.at, "host", msg_id=CHECKPOINT_MSG_ID)
    legacy = make_checkpoint(KEY, None, 7, "c" * 64, checkpoint.at)  # of the global chain of before
    assert legacy.line().startswith("dmp-xds-checkpoint v1 seq=7 ")
    collector_log = ["Jan  2 03:04:05 host dmp-xds[42]: unrelated", record.decode("utf-8"), legacy.line(), lines[1]]
    found = parse_checkpoints(collector_log, "syslog")
    assert found == [
        Checkpoint(12, checkpoint.at, KEY.id, "a" * 64, checkpoint.signature, "syslog:2", P1),
        Checkpoint(7, legacy.at, KEY.id, "c" * 64, legacy.signature, "syslog:3", None),
        Checkpoint(13, "2026-01-02T03:04:06.000000Z", KEY.id, "b" * 64, found[2].signature, "syslog:4", ""),
    ]
    assert all(c.authentic(KEY) for c in found) and not found[0].authentic(OTHER_KEY)


def test_checkpoint_syslog_message_over_udp(trail: AuditTrail) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as collector:
        collector.bind(("127.0.0.1", 0))
        collector.settimeout(5)
        exporter = SyslogExporter(f"udp://127.0.0.1:{collector.getsockname()[1]}")
        trail.exporters.append(exporter)
        trail.checkpointer = Checkpointer(KEY, [exporter.checkpoint], 100, 3600)
        entry = trail.append(event(1))
        datagrams = [collector.recvfrom(65536)[0] for _ in range(2)]
        exporter.close()
    audit, checkpoint = datagrams
    assert b" IHE+RFC-3881 " in audit and f" {CHECKPOINT_MSG_ID} - ".encode() in checkpoint
    found = parse_checkpoints([checkpoint.decode("utf-8")], "udp")
    assert [(c.chain, c.seq, c.mac) for c in found] == [(P1, 1, entry.hash)] and found[0].authentic(KEY)


def test_a_trace_rewritten_whole_as_if_from_before_the_key_is_caught_by_its_checkpoints(
    trail: AuditTrail, engine: Engine
) -> None:
    """Every key id emptied, every row made a row of the global chain of before and re-hashed
    with SHA-256, that chain given its head and the patients' heads deleted: inside the database
    it looks like a trace from before the key; the checkpoints still know the chains."""
    sent = collect(trail)
    fill(trail, 4)
    trail.close()
    prev = t.GENESIS_HASH
    with engine.begin() as connection:
        for row in connection.execute(select(AuditEntryRow.__table__).order_by(AuditEntryRow.seq)).all():
            event_ = t._event_of(row)
            digest = t.entry_hash(row.seq, row.recorded_at, event_, prev)
            connection.execute(
                update(AuditEntryRow.__table__)
                .where(AuditEntryRow.seq == row.seq)
                .values(key_id="", prev_hash=prev, hash=digest, chain_seq=None)
            )
            prev = digest
        connection.execute(delete(AuditHeadRow.__table__))
        connection.execute(insert(AuditLegacyHeadRow.__table__).values(id=t.LEGACY_HEAD_ID, seq=4, hash=prev))
    assert trail.verify().ok and "rows 1..4 have no key" in trail.verify().notes[1]
    problems = trail.verify(sent).problems
    assert [text.split(":")[0] for _, text in problems] == [f"the chain of patient {p}" for p in sorted((P1, P2))]
    assert all("the chain was deleted whole" in text for _, text in problems)


def test_the_last_successful_action_by_anyone_or_by_one_actor(trail: AuditTrail) -> None:
    """The DMP's dates (TD0.4 lastAccessDate, a record's last read, change and addition) are
    read from the trace: its last successful row of those actions, per patient."""
    trail.append(event(1, action=t.SUBMIT))
    trail.append(event(2, action=t.SEARCH))
    trail.append(event(3, action=t.UPDATE, outcome=t.DENIED))  # a refusal changes nothing
    anyone = trail.last_accesses(None, [P1, P2], t.DOCUMENT_READS)
    assert list(anyone) == [P1]
    assert trail.last_accesses(None, [P1], t.DOCUMENT_CHANGES) == {}
    added = trail.last_accesses(None, [P1], t.DOCUMENT_ADDITIONS)[P1]
    assert added <= anyone[P1]
    assert trail.last_accesses("810001", [P1], t.DOCUMENT_READS) == {}  # actor 1 only submitted
    assert trail.last_accesses("810002", [P1], t.DOCUMENT_READS) == anyone
