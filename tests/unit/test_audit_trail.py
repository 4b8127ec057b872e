"""The hash-chained trace: append, history, verify (edited / deleted / cut rows named), ATNA."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import Engine, delete, text, update

from dmp_xds.storage import trail as t
from dmp_xds.transport.atna import SyslogExporter, audit_message, syslog_record
from dmp_xds.storage.trail import AuditEvent, AuditTrail
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.tables import AuditEntryRow, metadata

P1 = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
P2 = "1750599123456^^^&1.2.250.1.213.1.4.10&ISO"


@pytest.fixture()
def engine() -> Engine:
    engine = create_engine_for("sqlite://")
    metadata.create_all(engine)
    return engine


@pytest.fixture()
def trail(engine: Engine) -> AuditTrail:
    trail = AuditTrail(engine)
    trail.ensure_head()
    return trail


def event(n: int, patient: str = P1, **changes: object) -> AuditEvent:
    base = dict(action=t.SEARCH, outcome=t.SUCCESS, patient_id=patient, actor_id=f"81000{n}", actor_name="MARIE MARTIN",
                actor_role="10", structure_id="1990000017", access_mode="normal", documents=(f"1.2.3.{n}",))
    base.update(changes)
    return AuditEvent(**base)  # type: ignore[arg-type]


def fill(trail: AuditTrail, count: int = 5) -> None:
    for n in range(1, count + 1):
        trail.append(event(n, P1 if n % 2 else P2))


def test_append_chains_rows(trail: AuditTrail) -> None:
    first = trail.append(event(1))
    second = trail.append(event(2))
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == t.GENESIS_HASH
    assert second.prev_hash == first.hash
    assert trail.verify().ok and trail.verify().checked == 2


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
    assert report.problems == [(3, "row 3 was altered: its content does not match its hash")]


def test_edited_and_rehashed_row_breaks_the_next_link(trail: AuditTrail, engine: Engine) -> None:
    fill(trail)
    row = trail.history(P1)[1]  # seq 3
    forged = AuditEvent(**{**row.event.__dict__, "actor_id": "someone else"})
    forged_hash = t.entry_hash(3, row.recorded_at, forged, row.prev_hash)
    with engine.begin() as connection:
        connection.execute(update(AuditEntryRow.__table__).where(AuditEntryRow.seq == 3)
                           .values(actor_id="someone else", hash=forged_hash))
    assert [seq for seq, _ in trail.verify().problems] == [4]


def test_deleted_row_is_named(trail: AuditTrail, engine: Engine) -> None:
    fill(trail)
    with engine.begin() as connection:
        connection.execute(delete(AuditEntryRow.__table__).where(AuditEntryRow.seq == 2))
    report = trail.verify()
    assert report.problems[0] == (2, "row(s) 2 missing (deleted)")


def test_cut_tail_is_seen(trail: AuditTrail, engine: Engine) -> None:
    fill(trail)
    with engine.begin() as connection:
        connection.execute(delete(AuditEntryRow.__table__).where(AuditEntryRow.seq >= 4))
    report = trail.verify()
    assert not report.ok and "last row(s) were deleted" in report.problems[0][1]


def test_head_is_created_by_the_first_append_and_its_loss_is_seen(engine: Engine) -> None:
    trail = AuditTrail(engine)
    assert trail.append(event(1)).seq == 1
    assert trail.append(event(2)).prev_hash == trail.history(P1)[1].hash
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_head"))
    with pytest.raises(RuntimeError, match="audit_head"):
        trail.append(event(3))
    assert trail.verify().problems == [(0, "the audit_head row is missing")]


def test_exporter_failure_does_not_lose_the_row(trail: AuditTrail) -> None:
    def broken(_: object) -> None:
        raise OSError("collector down")

    trail.exporters.append(broken)
    trail.append(event(1))
    assert trail.verify().checked == 1


def test_rfc3881_message() -> None:
    entry = t.AuditEntry(7, "2026-01-02T03:04:05.000000Z", event(1, action=t.RETRIEVE, access_mode="bris_de_glace",
                                                               access_reason="urgence vitale"), "0" * 64, "1" * 64)
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
    engine = create_engine_for(default_database_url(Settings(data_dir=tmp_path)))
    trail = AuditTrail(engine)
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
