"""Tampering with the access trace by someone who can write to the database but does not hold the
server's key, on SQLite and PostgreSQL: cutting the last rows of a patient's chain and moving its
`audit_head` row back, or changing a row and re-hashing the chain from there on with plain
SHA-256 (all an attacker without the key can compute). `dmp-xds audit verify` must name the row and what was done; an
untouched trace verifies; verifying with another key says so.

The rows are written by the operator's commands (`dmp-xds dmp ...`), each a process of its own
that exports a checkpoint to DMP_XDS_AUDIT_CHECKPOINT_FILE (standing here for the copy kept off
the machine: it is not in the data directory)."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, delete, select, text, update

from dmp_xds.cli.main import main
from dmp_xds.storage.audit_checkpoints import Checkpoint, Checkpointer
from dmp_xds.storage.audit_keys import AuditKey
from dmp_xds.storage.database import alembic_config, create_engine_for
from dmp_xds.storage.tables import AuditEntryRow, AuditHeadRow
from dmp_xds.storage.trail import AuditEvent, AuditTrail

PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
ROWS = 10
_entry = AuditEntryRow.__table__
_head = AuditHeadRow.__table__

Cli = Callable[..., Result]


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("DMP_XDS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DMP_XDS_DATABASE_URL", db_url)
    monkeypatch.setenv("DMP_XDS_AUDIT_CHECKPOINT_FILE", str(tmp_path / "exported" / "checkpoints.log"))
    (tmp_path / "exported").mkdir()
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args))

    assert run("db", "upgrade").exit_code == 0
    return run


@pytest.fixture
def engine(db_url: str, cli: Cli) -> Iterator[Engine]:
    """The database as the attacker reaches it; ROWS trace rows written by the operator."""
    assert cli("dmp", "create", PATIENT, "--collected-by", "accueil").exit_code == 0
    for n in range(1, ROWS):
        result = cli("dmp", "grant", PATIENT, f"81000000000{n}")
        assert result.exit_code == 0, result.output
    engine = create_engine_for(db_url)
    yield engine
    engine.dispose()


def plain_sha256(row: dict[str, object], prev_hash: str) -> str:
    """What an attacker without the key computes for a row: the published SHA-256 chain (a row of
    a patient's chain also covers its place in it)."""
    place = [] if row.get("chain_seq") is None else [row["chain_seq"]]
    fields = [
        row["seq"],
        *place,
        row["recorded_at"],
        row["actor_id"],
        row["actor_name"],
        row["actor_role"],
        row["structure_id"],
        row["access_mode"],
        row["access_reason"],
        row["action"],
        row["patient_id"],
        list(row["documents"] or ()),
        row["outcome"],
        row["detail"],
        prev_hash,
    ]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def verify(cli: Cli, *args: str) -> Result:
    return cli("audit", "verify", *args)


def test_an_untouched_trace_verifies(cli: Cli, engine: Engine) -> None:
    result = verify(cli)
    assert result.exit_code == 0, result.output
    assert f"{ROWS} entries checked" in result.output


def test_cut_tail_with_the_head_moved_back_is_seen_against_the_last_checkpoint(cli: Cli, engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(delete(_entry).where(_entry.c.seq > 7))
        connection.execute(update(_head).where(_head.c.patient_id == PATIENT).values(chain_seq=7))
    result = verify(cli)
    assert result.exit_code == 1, result.output
    assert f"links 8..{ROWS} missing since checkpoint" in result.output
    assert "head moved back" in result.output


def test_a_row_changed_and_rehashed_without_the_key_is_named(cli: Cli, engine: Engine) -> None:
    with engine.begin() as connection:
        rows = [dict(r._mapping) for r in connection.execute(select(_entry).order_by(_entry.c.seq))]
        rows[2]["detail"] = "nothing happened here"
        prev_hash = rows[1]["hash"]
        for row in rows[2:]:  # row 3 changed, then every row after it chained again
            row["prev_hash"], row["hash"] = prev_hash, plain_sha256(row, str(prev_hash))
            connection.execute(
                update(_entry)
                .where(_entry.c.seq == row["seq"])
                .values(detail=row["detail"], prev_hash=row["prev_hash"], hash=row["hash"])
            )
            prev_hash = row["hash"]
    result = verify(cli)
    assert result.exit_code == 1, result.output
    first = [line for line in result.output.splitlines() if line.startswith("row ")][0]
    assert first.startswith("row 3 (link 3 of the chain of patient") and "without the key" in first, result.output


def test_a_wrong_key_is_reported_as_such(
    cli: Cli, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-key"
    other.write_text(secrets.token_hex(32) + "\n")
    other.chmod(0o600)
    monkeypatch.setenv("DMP_XDS_AUDIT_KEY_FILE", str(other))
    result = verify(cli)
    assert result.exit_code == 1, result.output
    assert "wrong key" in result.output


def test_writers_of_several_processes_keep_one_chain(db_url: str, cli: Cli) -> None:
    """Two engines stand for two worker processes, four threads each, appending at once: one
    gapless chain, every row keyed, each writer's checkpoints matching the rows."""
    key = AuditKey(secrets.token_bytes(32), "shared key")
    sent: list[Checkpoint] = []
    engines = [create_engine_for(db_url) for _ in range(2)]
    trails = [AuditTrail(engine, key, checkpointer=Checkpointer(key, [sent.append], 5, 3600)) for engine in engines]
    errors: list[BaseException] = []

    def write(trail: AuditTrail, n: int) -> None:
        try:
            for i in range(10):
                trail.append(AuditEvent("search", "success", PATIENT, actor_id=f"{n}-{i}"))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(trails[n % 2], n)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for trail in trails:
        trail.close()
    assert not errors and not any(thread.is_alive() for thread in threads)
    report = trails[0].verify(sent)
    assert report.ok and report.checked == 80, report.problems
    assert max(c.seq for c in sent) == 80
    for engine in engines:
        engine.dispose()


def test_a_trace_from_before_the_key_upgrades_and_goes_on_keyed(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at revision 0005 with rows of the plain SHA-256 chain, migrated: its rows keep
    verifying, the next ones are keyed in their patient's chain, and the first is checkpointed at once."""
    from alembic import command

    config = alembic_config(db_url)
    engine = create_engine_for(db_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
    prev = "0" * 64
    with engine.begin() as connection:
        for seq in (1, 2):
            row = dict(
                seq=seq,
                recorded_at=f"2025-06-01T00:00:0{seq}.000000Z",
                actor_id="810001",
                actor_name="A",
                actor_role="10",
                structure_id="",
                access_mode="normal",
                access_reason="",
                action="search",
                patient_id=PATIENT,
                documents=[],
                outcome="success",
                detail="",
                prev_hash=prev,
            )
            row["hash"] = plain_sha256(row, prev)
            connection.execute(_entry.insert().values(**row))
            prev = str(row["hash"])
        connection.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 2, :prev)"), {"prev": prev})
    engine.dispose()
    monkeypatch.setenv("DMP_XDS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DMP_XDS_DATABASE_URL", db_url)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    before = runner.invoke(main, ["audit", "verify"])
    assert before.exit_code == 0 and "rows 1..2 have no key" in before.output, before.output
    assert runner.invoke(main, ["dmp", "create", PATIENT, "--collected-by", "accueil"]).exit_code == 0
    after = runner.invoke(main, ["audit", "verify"])
    assert after.exit_code == 0, after.output
    assert "rows 1..2 have no key" in after.output and "1 chain(s) per patient" in after.output
    assert f"the latest is of link 1 of the chain of patient {PATIENT}" in after.output
