"""The DMP record service: consent, close/reopen, destroy (everything erased but the trace),
authorizations (one year, renew, revoke, one attending doctor), and its command line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, event, func, select

from dmp_xds.dmp.model import Address, Consent, Demographics, DmpError, Telecom
from dmp_xds.dmp.policy import Action, record_access
from dmp_xds.storage.blobstore import FilesystemBlobStore
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.records import DmpStore
from dmp_xds.storage.store import RegistryStore
from dmp_xds.storage.tables import metadata
from factories import make_document_entry, make_submission, make_submission_set

PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture()
def engine() -> Engine:
    engine = create_engine_for("sqlite://")
    metadata.create_all(engine)
    return engine


@pytest.fixture()
def store(engine: Engine) -> DmpStore:
    return DmpStore(engine)


def consent(emergency: bool = True) -> Consent:
    return Consent("810001234565", NOW, emergency, False)


def test_create_records_consent_and_registers_the_patient(store: DmpStore, engine: Engine) -> None:
    record = store.create(PATIENT, consent(emergency=False))
    assert record.state.status == "open"
    assert record.consent.collected_by == "810001234565"
    assert record.state.emergency_access_allowed is False and record.state.regulation_access_allowed is False
    assert RegistryStore(engine).patient_exists(PATIENT)
    with pytest.raises(DmpError, match="already has a DMP"):
        store.create(PATIENT, consent())


def test_demographics_are_kept_replaced_and_searched(store: DmpStore) -> None:
    identity = Demographics(
        usage_name="Madeleine",
        birth_name="VALJEAN",
        given_names=("Jean", "Paul"),
        prefix="M",
        gender="M",
        birth_date="19620419",
        addresses=(Address(("12 rue des Lilas", "bâtiment B"), "93100", "Montreuil", "France"),),
        telecoms=(Telecom("tel:0102030405", "MC"),),
    )
    other = PATIENT.replace("2840599123456", "2840599123457")
    assert store.create(PATIENT, consent(), identity).demographics == identity
    assert store.create(other, consent()).demographics == Demographics()
    assert [r.patient_id for r in store.search("valjean")] == [PATIENT]  # the birth name, case ignored
    assert [r.patient_id for r in store.search("MADELEINE", "paul", "19620419", "M")] == [PATIENT]
    assert store.search("MADELEINE", "Cosette") == [] and store.search("MADELEINE", birth_date="19620420") == []
    changed = store.update_consent(PATIENT, demographics=Demographics(usage_name="FAUCHELEVENT"))
    assert changed.demographics == Demographics(usage_name="FAUCHELEVENT")
    assert store.search("MADELEINE") == [] and changed.state.emergency_access_allowed is True


def test_update_close_reopen(store: DmpStore) -> None:
    store.create(PATIENT, consent())
    assert store.update_consent(PATIENT, emergency_access_allowed=False).state.emergency_access_allowed is False
    closed = store.close(PATIENT, "patient's request")
    assert (
        closed.state.status == "closed" and closed.closed_at is not None and closed.status_reason == "patient's request"
    )
    with pytest.raises(DmpError, match="already closed"):
        store.close(PATIENT)
    with pytest.raises(DmpError, match="closed"):
        store.grant(PATIENT, "professional", "810002345675", "patient")
    assert store.reopen(PATIENT).state.status == "open"
    with pytest.raises(DmpError, match="has no DMP"):
        store.close("nobody^^^&1.2.3&ISO")


def test_grants_renew_revoke_and_one_attending_doctor(store: DmpStore) -> None:
    store.create(PATIENT, consent())
    store.grant(PATIENT, "professional", "810002345675", "patient")
    again = store.grant(PATIENT, "professional", "810002345675", "patient")
    store.grant(PATIENT, "attending", "810001234565", "patient")
    store.grant(PATIENT, "attending", "810004567896", "patient")  # replaces the previous one
    store.grant(PATIENT, "establishment", "1990000017", "patient", reference="stay 42")
    state = store.get(PATIENT).state  # type: ignore[union-attr]
    active = [(a.kind, a.grantee) for a in state.authorizations if a.active(NOW + dt.timedelta(seconds=1))]
    assert active == [("professional", "810002345675"), ("attending", "810004567896"), ("establishment", "1990000017")]
    assert abs((again.expires_at - NOW).days - 365) <= 1
    assert store.revoke(PATIENT, "810002345675") == 1
    assert store.revoke(PATIENT, "810002345675") == 0
    with pytest.raises(DmpError, match="unknown authorization kind"):
        store.grant(PATIENT, "friend", "x", "patient")


def test_destroy_erases_metadata_documents_and_grants(store: DmpStore, engine: Engine, tmp_path: Path) -> None:
    store.create(PATIENT, consent())
    store.grant(PATIENT, "professional", "810002345675", "patient")
    registry = RegistryStore(engine)
    submission = make_submission(
        2,
        with_folder=True,
        submission_set=make_submission_set(patient_id=PATIENT),
        documents=[make_document_entry(patient_id=PATIENT) for _ in range(2)],
    )
    from dmp_xds.services.register import apply_registry_values
    from dmp_xds.xds.model.ids import assign_entry_uuids

    assign_entry_uuids(submission)
    apply_registry_values(submission, "20260101000000")
    blobs = FilesystemBlobStore(tmp_path / "documents")
    stored = []
    from dmp_xds.xds.model import StoredDocument

    for de in submission.documents:
        blob = blobs.write_bytes(b"document bytes")
        path = blobs.publish(blob, blobs.allocate(de.unique_id))  # type: ignore[arg-type]
        stored.append(StoredDocument(de.unique_id, str(path), blob.size, blob.sha1, de.mime_type or "text/plain"))
    registry.store_submission(submission, stored)
    assert registry.count_rows()["document_entry"] == len(submission.documents)
    destruction = store.destroy(PATIENT, blobs)
    assert sorted(destruction.documents) == sorted(de.unique_id for de in submission.documents)
    counts = registry.count_rows()
    assert all(count == 0 for count in counts.values()), counts
    assert store.get(PATIENT) is None
    assert not any(p.is_file() for p in (tmp_path / "documents").rglob("*") if not p.name.startswith("."))
    from dmp_xds.storage.tables import DmpAuthorizationRow

    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(DmpAuthorizationRow.__table__)).scalar() == 0


def test_record_state_feeds_the_policy(store: DmpStore) -> None:
    from dmp_xds.security import vocabulary as sv
    from dmp_xds.security.cps import Holder
    from dmp_xds.security.vihf import Principal

    store.create(PATIENT, consent(emergency=False))
    store.grant(PATIENT, "professional", "810002345675", "patient")
    state = store.get(PATIENT).state  # type: ignore[union-attr]
    holder = Holder("professional", "", "", "", "", "", "", "", "")
    doctor = Principal(
        "professional", "810002345675", "", ("10",), "", "", sv.ACCESS_NORMAL, "", PATIENT, "", "", "", holder
    )
    assert record_access(doctor, state, Action.SEARCH, NOW + dt.timedelta(seconds=1)).allowed
    stranger = Principal(
        "professional", "810009999999", "", ("10",), "", "", sv.ACCESS_EMERGENCY, "coma", PATIENT, "", "", "", holder
    )
    assert "refused emergency" in record_access(stranger, state, Action.SEARCH, NOW).reason


def test_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dmp_xds.cli.main import main

    monkeypatch.setenv("DMP_XDS_DATA_DIR", str(tmp_path))
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    created = json.loads(run("dmp", "create", PATIENT, "--collected-by", "Dr MARTIN", "--no-emergency-access"))
    assert created["status"] == "open" and created["emergency_access_allowed"] is False
    run("dmp", "grant", PATIENT, "810002345675")
    run("dmp", "grant", PATIENT, "1990000017", "--kind", "establishment", "--reference", "stay 42")
    shown = json.loads(run("dmp", "show", PATIENT))
    assert [a["grantee"] for a in shown["authorizations"]] == ["810002345675", "1990000017"]
    assert "1 authorization(s)" in run("dmp", "revoke", PATIENT, "810002345675")
    run("dmp", "update", PATIENT, "--emergency-access")
    run("dmp", "close", PATIENT, "--reason", "request")
    assert runner.invoke(main, ["dmp", "close", PATIENT]).exit_code != 0
    run("dmp", "reopen", PATIENT)
    assert runner.invoke(main, ["dmp", "destroy", PATIENT, "--request", "letter"]).exit_code != 0  # needs --yes
    assert "destroyed" in run("dmp", "destroy", PATIENT, "--request", "letter of 2026-05-01", "--yes")
    history = run("audit", "history", PATIENT)
    for action in (
        "dmp.create",
        "authorization.grant",
        "authorization.revoke",
        "dmp.update",
        "dmp.close",
        "dmp.reopen",
        "dmp.destroy",
        "dmp.read",
    ):
        assert action in history, action
    assert "letter of 2026-05-01" in run("audit", "history", PATIENT, "--json")
    assert "intact" in run("audit", "verify")
    other = "1750599123456^^^&1.2.250.1.213.1.4.10&ISO"
    assert "added" in run("patient", "add", other)
    assert json.loads(run("dmp", "show", other))["consent"]["collected_by"] == "operator"


def test_legal_representatives_declared_listed_removed(store: DmpStore) -> None:
    parent = "2700599123456^^^&1.2.250.1.213.1.4.10&ISO"
    store.create(PATIENT, consent())
    declared, added = store.add_representative(PATIENT, parent, "810001234565")
    assert added and (declared.representative_id, declared.declared_by) == (parent, "810001234565")
    again, added = store.add_representative(PATIENT, parent + "^NH", "810002345675")
    assert not added and again.declared_by == "810001234565"  # the earlier declaration stands
    assert [r.representative_id for r in store.representatives(PATIENT)] == [parent]
    assert store.get(PATIENT).state.representatives == (parent,)  # type: ignore[union-attr]
    with pytest.raises(DmpError, match="not their own legal representative"):
        store.add_representative(PATIENT, PATIENT, "810001234565")
    assert store.remove_representative(PATIENT, parent + "^NH") == 1
    assert store.remove_representative(PATIENT, parent) == 0
    assert store.representatives(PATIENT) == []
    with pytest.raises(DmpError, match="has no DMP"):
        store.representatives("1750599123456^^^&1.2.250.1.213.1.4.10&ISO")


def test_the_records_a_professional_is_authorized_on_read_in_bulk_as_one_by_one(store: DmpStore) -> None:
    patients = [f"2840599{n:06d}^^^&1.2.250.1.213.1.4.10&ISO" for n in range(3)]
    for patient in patients:
        store.create(patient, consent())
        store.grant(patient, "professional", "810001234567", "patient")
    store.grant(patients[0], "attending", "810009999999", "patient")
    store.add_representative(patients[1], "1700599123456^^^&1.2.250.1.213.1.4.10&ISO", "test")
    store.block(patients[2], "810001234567", "patient")  # blocked: no longer listed
    statements: list[str] = []

    def listen(connection: object, cursor: object, statement: str, *rest: object) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        found = store.authorized_on("810001234567")
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)
    # The grants, then the records, their grants and representatives: not three per patient.
    assert len(statements) == 4, statements
    assert [record.patient_id for record, _ in found] == patients[:2]
    assert [record for record, _ in found] == [store.get(p) for p in patients[:2]]
