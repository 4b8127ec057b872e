"""The record service's blocks and the patient's web account on a real (in-memory SQLite)
database: a block revokes the professional's grants and refuses new ones until lifted, a plain
revoke leaves it, TD0.4's list skips what the caller may not open, destruction erases the
account, and the grantee's identity is kept for TD1.6."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, func, select

from dmp_xds.dmp.model import Consent, DmpError
from dmp_xds.dmp.policy import KIND_ATTENDING, KIND_BLOCKED, KIND_ESTABLISHMENT, KIND_PROFESSIONAL
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.patient_accounts import Channel, LoginTaken, PatientAccountStore, RepresentativeAccountStore
from dmp_xds.storage.records import DmpStore, Grantee
from dmp_xds.storage.tables import DmpPatientAccountRow, metadata

PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
OTHER = "2840599123457^^^&1.2.250.1.213.1.4.10&ISO"
DOCTOR, NURSE = "810001234565", "810003456786"


@pytest.fixture()
def engine() -> Engine:
    engine = create_engine_for("sqlite://")
    metadata.create_all(engine)
    return engine


@pytest.fixture()
def store(engine: Engine) -> DmpStore:
    store = DmpStore(engine)
    for patient in (PATIENT, OTHER):
        store.create(patient, Consent("accueil", dt.datetime.now(dt.UTC)))
    return store


def active_kinds(store: DmpStore, grantee: str) -> set[str]:
    now = dt.datetime.now(dt.UTC)
    record = store.get(PATIENT)
    assert record is not None
    return {a.kind for a in record.state.authorizations if a.grantee == grantee and a.active(now)}


def test_a_block_revokes_and_refuses_grants_until_lifted(store: DmpStore) -> None:
    store.grant(PATIENT, KIND_PROFESSIONAL, NURSE, "patient")
    store.grant(PATIENT, KIND_ATTENDING, NURSE, "patient")
    assert store.block(PATIENT, NURSE, "patient") == (2, True)
    assert active_kinds(store, NURSE) == {KIND_BLOCKED}
    assert store.block(PATIENT, NURSE, "patient") == (0, False)
    with pytest.raises(DmpError, match="blocked"):
        store.grant(PATIENT, KIND_PROFESSIONAL, NURSE, NURSE)
    assert store.revoke(PATIENT, NURSE) == 0  # a revoke is not an unblock
    assert active_kinds(store, NURSE) == {KIND_BLOCKED}
    assert store.unblock(PATIENT, NURSE) == 1 and store.unblock(PATIENT, NURSE) == 0
    assert active_kinds(store, NURSE) == set()
    store.grant(PATIENT, KIND_PROFESSIONAL, NURSE, NURSE)
    assert active_kinds(store, NURSE) == {KIND_PROFESSIONAL}


def test_the_grantee_identity_is_kept_and_named_by_the_block(store: DmpStore) -> None:
    grant = store.grant(
        PATIENT, KIND_PROFESSIONAL, DOCTOR, DOCTOR, identity=Grantee("MARIE", "MARTIN", ("G15_10/SM26",))
    )
    assert (grant.first_name, grant.last_name, grant.specialties) == ("MARIE", "MARTIN", ("G15_10/SM26",))
    assert grant.granted_at is not None and grant.last_action_at is not None
    store.block(PATIENT, DOCTOR, "patient")
    record = store.get(PATIENT)
    assert record is not None
    block = next(a for a in record.state.authorizations if a.kind == KIND_BLOCKED)
    assert (block.first_name, block.last_name) == ("MARIE", "MARTIN")


def test_the_dmps_a_professional_may_open(store: DmpStore) -> None:
    store.grant(PATIENT, KIND_PROFESSIONAL, DOCTOR, DOCTOR)
    store.grant(OTHER, KIND_ESTABLISHMENT, "1990000017", "patient", "séjour 1")
    assert [r.patient_id for r, _ in store.authorized_on(DOCTOR)] == [PATIENT]
    assert [r.patient_id for r, _ in store.authorized_on(DOCTOR, "1990000017")] == [PATIENT, OTHER]
    store.close(PATIENT)
    assert store.authorized_on(DOCTOR) == []  # closed: not listed
    assert store.authorized_on("") == []


def test_the_web_account_is_one_per_dmp_and_erased_with_it(store: DmpStore, engine: Engine) -> None:
    accounts = PatientAccountStore(engine)
    assert accounts.is_open(PATIENT) is False  # what TD0.2's COMPTE_INTERNET_OUVERT says
    created = accounts.create(PATIENT, "abcd1234", "scrypt$hash", Channel("SMS", "0606060606"), DOCTOR)
    assert created.password_temporary and not created.locked and created.failed_logins == 0
    assert accounts.is_open(PATIENT) is True
    with pytest.raises(DmpError, match="already has a web account"):
        accounts.create(PATIENT, "efgh5678", "scrypt$hash", Channel("SMS", "0606060606"), DOCTOR)
    with pytest.raises(LoginTaken):
        accounts.create(OTHER, "abcd1234", "scrypt$hash", Channel("SMS", "0606060606"), DOCTOR)
    with pytest.raises(DmpError, match="no DMP"):
        accounts.create("1^^^&1.2&ISO", "ijkl9012", "scrypt$hash", Channel("SMS", "0606060606"), DOCTOR)
    changed = accounts.set_channels(PATIENT, (Channel("EMAIL", "a@b.fr"),))
    assert changed.channels == (Channel("EMAIL", "a@b.fr"),)
    with pytest.raises(DmpError, match="no web account"):
        accounts.set_password(OTHER, "scrypt$other")
    assert accounts.by_login("abcd1234") == accounts.get(PATIENT)
    store.destroy(PATIENT, None)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(DmpPatientAccountRow.__table__)).scalar_one() == 0
    assert accounts.by_login("abcd1234") is None
    # The destroyed record's login is free again.
    accounts.create(OTHER, "abcd1234", "scrypt$hash", Channel("SMS", "0606060606"), DOCTOR)
    assert accounts.by_login("abcd1234") == accounts.get(OTHER)


def test_a_login_is_one_account_among_the_patients_and_the_representatives(store: DmpStore, engine: Engine) -> None:
    """One sign-in form serves both kinds of account: a login names one of them, whichever
    kind was made first, and each kind's sign-in finds only its own."""
    patients, representatives = PatientAccountStore(engine), RepresentativeAccountStore(engine)
    patients.create(PATIENT, "shared01", "scrypt$hash", Channel("SMS", "0606060606"), DOCTOR)
    with pytest.raises(LoginTaken):
        representatives.create("rep-1", "shared01", "scrypt$hash", Channel("EMAIL", "r@e.fr"), "operator")
    representatives.create("rep-1", "repr0001", "scrypt$hash", Channel("EMAIL", "r@e.fr"), "operator")
    with pytest.raises(LoginTaken):
        patients.create(OTHER, "repr0001", "scrypt$hash", Channel("SMS", "0606060606"), DOCTOR)
    assert representatives.by_login("shared01") is None and patients.by_login("repr0001") is None
    found = representatives.by_login("repr0001")
    assert found is not None and found.patient_id == "rep-1"
