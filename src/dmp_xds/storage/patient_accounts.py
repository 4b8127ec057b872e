"""The patient's web account (TD1.5a/b/d) in the database: one per DMP, keyed by the patient.

The password is never stored in clear: the caller hands a scrypt hash (security/passwords.py).
Each method is one transaction; a change of a missing (or already existing) account is a
DmpError saying so. Destroying the DMP erases the account (storage/records.py). A login is
claimed in `web_login` with the account, in the same transaction: its key keeps the login unique
among all the accounts of the sign-in form, on Citus too, and a sign-in finds the account by it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from dmp_xds.dmp.model import DmpError
from dmp_xds.storage.tables import (
    DmpPatientAccountRow,
    DmpRecordRow,
    WebLoginRow,
    WebRepresentativeAccountRow,
    utc_aware,
)

_record = DmpRecordRow.__table__
_login = WebLoginRow.__table__
PATIENT = "patient"
REPRESENTATIVE = "representative"


@dataclass(frozen=True)
class Channel:
    """Where a one-time password goes: `type` SMS or EMAIL, `canal` the number or address."""

    type: str
    canal: str


@dataclass(frozen=True)
class PatientAccount:
    """A web account: a patient's (`patient_id` their INS) or, in a RepresentativeAccountStore, a
    legal representative's (`patient_id` the representative's own id)."""

    patient_id: str
    login: str
    password_hash: str
    password_temporary: bool
    channels: tuple[Channel, ...]
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    locked: bool
    failed_logins: int


class LoginTaken(DmpError):
    """The generated login is someone else's already: the caller draws another."""


class PatientAccountStore:
    """The patients' accounts, one per DMP (a record's destruction erases its account)."""

    _table = DmpPatientAccountRow.__table__
    _key = "patient_id"
    _kind = PATIENT

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, patient_id: str) -> PatientAccount | None:
        with self.engine.connect() as connection:
            return self._get(connection, patient_id)

    def is_open(self, patient_id: str) -> bool:
        """Whether the patient has a web account that is not locked (COMPTE_INTERNET_OUVERT)."""
        account = self.get(patient_id)
        return account is not None and not account.locked

    def create(
        self, patient_id: str, login: str, password_hash: str, channel: Channel, created_by: str
    ) -> PatientAccount:
        now = dt.datetime.now(dt.UTC)
        try:
            with self.engine.begin() as connection:
                self._check_subject(connection, patient_id)
                if self._get(connection, patient_id) is not None:
                    raise DmpError(f"{patient_id} already has a web account")
                if self._login_taken(connection, login):
                    raise LoginTaken(f"login {login} is taken")
                connection.execute(insert(_login).values(login=login, subject_kind=self._kind, subject_id=patient_id))
                connection.execute(
                    insert(self._table).values(
                        **{self._key: patient_id},
                        login=login,
                        password_hash=password_hash,
                        password_temporary=True,
                        channels=[_channel_value(channel)],
                        created_by=created_by,
                        created_at=now,
                        updated_at=now,
                        locked=False,
                        failed_logins=0,
                    )
                )
                created = self._get(connection, patient_id)
        except IntegrityError:
            # Another request created it (or took the login) meanwhile.
            raise LoginTaken(f"login {login} is taken, or the account was created meanwhile") from None
        assert created is not None
        return created

    def set_password(self, patient_id: str, password_hash: str) -> PatientAccount:
        """A new temporary password (TD1.5d), which also unlocks the account."""
        return self._change(
            patient_id, password_hash=password_hash, password_temporary=True, locked=False, failed_logins=0
        )

    def by_login(self, login: str) -> PatientAccount | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(_login.c.subject_id).where(_login.c.login == login, _login.c.subject_kind == self._kind)
            ).first()
            return self._get(connection, row[0]) if row is not None else None

    def record_failed_login(self, patient_id: str, lock_at: int) -> PatientAccount:
        """One more wrong password; the account locks at the `lock_at`-th in a row."""
        with self.engine.begin() as connection:
            connection.execute(
                update(self._table)
                .where(self._column == patient_id)
                .values(failed_logins=self._table.c.failed_logins + 1)
            )
            connection.execute(
                update(self._table)
                .where(self._column == patient_id, self._table.c.failed_logins >= lock_at)
                .values(locked=True)
            )
            changed = self._get(connection, patient_id)
        assert changed is not None
        return changed

    def record_good_login(self, patient_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(self._table).where(self._column == patient_id).values(failed_logins=0))

    def choose_password(self, patient_id: str, password_hash: str) -> PatientAccount:
        """The patient's own password, in place of the temporary one."""
        return self._change(patient_id, password_hash=password_hash, password_temporary=False)

    def set_channels(self, patient_id: str, channels: tuple[Channel, ...]) -> PatientAccount:
        return self._change(patient_id, channels=[_channel_value(c) for c in channels])

    def _change(self, patient_id: str, **values: object) -> PatientAccount:
        with self.engine.begin() as connection:
            if self._get(connection, patient_id) is None:
                raise DmpError(f"{patient_id} has no web account")
            connection.execute(
                update(self._table)
                .where(self._column == patient_id)
                .values(updated_at=dt.datetime.now(dt.UTC), **values)
            )
            changed = self._get(connection, patient_id)
        assert changed is not None
        return changed

    # -- what differs between the patients' and the representatives' accounts ---------------------
    @property
    def _column(self) -> Any:
        return self._table.c[self._key]

    def _check_subject(self, connection: Connection, subject_id: str) -> None:
        if connection.execute(select(_record.c.patient_id).where(_record.c.patient_id == subject_id)).first() is None:
            raise DmpError(f"patient {subject_id} has no DMP")

    @staticmethod
    def _login_taken(connection: Connection, login: str) -> bool:
        """A login names one account among the patients' and the representatives' (one sign-in
        form serves both). Read first for a clear answer; the claim's key decides a race."""
        return connection.execute(select(_login.c.login).where(_login.c.login == login)).first() is not None

    def _get(self, connection: Connection, subject_id: str) -> PatientAccount | None:
        row = connection.execute(select(self._table).where(self._column == subject_id)).first()
        if row is None:
            return None
        return PatientAccount(
            getattr(row, self._key),
            row.login,
            row.password_hash,
            row.password_temporary,
            tuple(Channel(c["type"], c["canal"]) for c in row.channels),
            row.created_by,
            utc_aware(row.created_at),
            utc_aware(row.updated_at),
            row.locked,
            row.failed_logins,
        )


class RepresentativeAccountStore(PatientAccountStore):
    """Minors' legal representatives' accounts, keyed by the representative's id: made by the
    operator, for anyone (the records that declare them say what they may act on)."""

    _table = WebRepresentativeAccountRow.__table__
    _key = "representative_id"
    _kind = REPRESENTATIVE

    def _check_subject(self, connection: Connection, subject_id: str) -> None:
        if not subject_id:
            raise DmpError("a legal representative's account needs their id")


def release_patient_login(connection: Connection, patient_id: str) -> None:
    """Free the login of the patient's account, in the transaction that erases the account."""
    accounts = DmpPatientAccountRow.__table__
    login = connection.execute(select(accounts.c.login).where(accounts.c.patient_id == patient_id)).scalar()
    if login is not None:
        # By login (the claim's key: one shard on Citus), and only if it is still the patient's.
        connection.execute(
            delete(_login).where(
                _login.c.login == login, _login.c.subject_kind == PATIENT, _login.c.subject_id == patient_id
            )
        )


def _channel_value(channel: Channel) -> dict[str, str]:
    return {"type": channel.type, "canal": channel.canal}
