"""The web front's state in the database: sessions, sign-ins waiting for their second factor,
failed attempts (rate limiting), TOTP secrets and the establishment dashboard's accounts.

In the database rather than in memory because the server runs several worker processes: a
session opened by one is used by the next request, served by another. Tokens are kept as their
SHA-256 only (security/totp.code_hash): a copy of the tables opens nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from dmp_xds.storage.tables import (
    WebAccountRow,
    WebAttemptRow,
    WebChallengeRow,
    WebSessionRow,
    WebTotpRow,
    utc_aware,
)

_session = WebSessionRow.__table__
_challenge = WebChallengeRow.__table__
_attempt = WebAttemptRow.__table__
_totp = WebTotpRow.__table__
_account = WebAccountRow.__table__

PATIENT = "patient"
REPRESENTATIVE = "representative"
PROFESSIONAL = "professional"
ESTABLISHMENT = "establishment"
SUBJECT_KINDS = (PATIENT, REPRESENTATIVE, PROFESSIONAL, ESTABLISHMENT)


@dataclass(frozen=True)
class WebSession:
    token_hash: str
    subject_kind: str
    subject_id: str
    acting_for: str
    structure_id: str
    display_name: str
    fingerprint: str
    csrf_token: str
    must_change_password: bool
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    revoked: bool


@dataclass(frozen=True)
class Challenge:
    token_hash: str
    subject_kind: str
    subject_id: str
    method: str
    code_hash: str
    expires_at: dt.datetime
    attempts: int
    used: bool


@dataclass(frozen=True)
class DashboardAccount:
    structure_id: str
    login: str
    password_hash: str
    created_at: dt.datetime
    disabled: bool
    locked: bool
    failed_logins: int


class AccountExists(Exception):
    """The structure already has an account of that login."""


class WebStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- sessions ----------------------------------------------------------------------------
    def open_session(self, session: WebSession) -> None:
        """Store the new session; sessions past their lifetime go (a sign-in is rare enough)."""
        with self.engine.begin() as connection:
            connection.execute(delete(_session).where(_session.c.expires_at < session.created_at))
            connection.execute(insert(_session).values(**_values(session)))

    def session(self, token_hash: str, now: dt.datetime, idle: dt.timedelta) -> WebSession | None:
        """The live session of this token hash (not revoked, not expired, used within `idle`),
        its last use moved to `now`; None otherwise."""
        with self.engine.begin() as connection:
            row = connection.execute(select(_session).where(_session.c.token_hash == token_hash)).first()
            if row is None:
                return None
            found = _session_of(row)
            if found.revoked or now >= found.expires_at or now - found.last_seen_at > idle:
                return None
            connection.execute(update(_session).where(_session.c.token_hash == token_hash).values(last_seen_at=now))
        return found

    def revoke(self, token_hash: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(_session).where(_session.c.token_hash == token_hash).values(revoked=True))

    def revoke_subject(self, subject_kind: str, subject_id: str) -> int:
        """Every session of the subject ("sign out everywhere"); how many were live."""
        with self.engine.begin() as connection:
            result = connection.execute(
                update(_session)
                .where(
                    _session.c.subject_kind == subject_kind,
                    _session.c.subject_id == subject_id,
                    _session.c.revoked.is_(False),
                )
                .values(revoked=True)
            )
        return result.rowcount

    def set_acting_for(self, token_hash: str, patient_id: str) -> None:
        """The record a legal representative's session acts on, once they chose it."""
        with self.engine.begin() as connection:
            connection.execute(
                update(_session).where(_session.c.token_hash == token_hash).values(acting_for=patient_id)
            )

    def clear_password_change(self, token_hash: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(_session).where(_session.c.token_hash == token_hash).values(must_change_password=False)
            )

    # -- second factor -----------------------------------------------------------------------
    def open_challenge(self, challenge: Challenge, now: dt.datetime) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(_challenge).where(_challenge.c.expires_at < now))
            connection.execute(
                insert(_challenge).values(
                    token_hash=challenge.token_hash,
                    subject_kind=challenge.subject_kind,
                    subject_id=challenge.subject_id,
                    method=challenge.method,
                    code_hash=challenge.code_hash,
                    created_at=now,
                    expires_at=challenge.expires_at,
                    attempts=0,
                    used=False,
                )
            )

    def challenge(self, token_hash: str) -> Challenge | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(_challenge).where(_challenge.c.token_hash == token_hash)).first()
        if row is None:
            return None
        return Challenge(
            row.token_hash,
            row.subject_kind,
            row.subject_id,
            row.method,
            row.code_hash,
            utc_aware(row.expires_at),
            row.attempts,
            row.used,
        )

    def count_wrong_code(self, token_hash: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(_challenge)
                .where(_challenge.c.token_hash == token_hash)
                .values(attempts=_challenge.c.attempts + 1)
            )

    def use_challenge(self, token_hash: str) -> bool:
        """Mark the challenge used; False when it already was (a concurrent or replayed code)."""
        with self.engine.begin() as connection:
            result = connection.execute(
                update(_challenge)
                .where(_challenge.c.token_hash == token_hash, _challenge.c.used.is_(False))
                .values(used=True)
            )
        return result.rowcount == 1

    # -- rate limiting -----------------------------------------------------------------------
    def failures(self, keys: tuple[str, ...], since: dt.datetime) -> int:
        """The most failed attempts any of `keys` had since `since`."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_attempt.c.key, func.count())
                .where(_attempt.c.key.in_(keys), _attempt.c.at >= since)
                .group_by(_attempt.c.key)
            ).all()
        return max((count for _, count in rows), default=0)

    def record_failure(self, keys: tuple[str, ...], now: dt.datetime, window: dt.timedelta) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(_attempt).where(_attempt.c.at < now - window))
            connection.execute(insert(_attempt), [{"key": k, "at": now} for k in keys])

    # -- TOTP --------------------------------------------------------------------------------
    def totp(self, subject_kind: str, subject_id: str) -> tuple[str, int] | None:
        """(the base32 secret, the last step used) of an enrolled subject."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(_totp.c.secret, _totp.c.last_step).where(
                    _totp.c.subject_kind == subject_kind, _totp.c.subject_id == subject_id
                )
            ).first()
        return (row.secret, row.last_step) if row is not None else None

    def enroll_totp(self, subject_kind: str, subject_id: str, secret: str, now: dt.datetime) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                delete(_totp).where(_totp.c.subject_kind == subject_kind, _totp.c.subject_id == subject_id)
            )
            connection.execute(
                insert(_totp).values(
                    subject_kind=subject_kind, subject_id=subject_id, secret=secret, enrolled_at=now, last_step=0
                )
            )

    def remove_totp(self, subject_kind: str, subject_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                delete(_totp).where(_totp.c.subject_kind == subject_kind, _totp.c.subject_id == subject_id)
            )

    def use_totp_step(self, subject_kind: str, subject_id: str, step: int) -> bool:
        """Record `step` as used; False when it (or a later one) already was: a replayed code."""
        with self.engine.begin() as connection:
            result = connection.execute(
                update(_totp)
                .where(
                    _totp.c.subject_kind == subject_kind,
                    _totp.c.subject_id == subject_id,
                    _totp.c.last_step < step,
                )
                .values(last_step=step)
            )
        return result.rowcount == 1

    # -- establishment dashboard accounts ----------------------------------------------------
    def add_account(self, structure_id: str, login: str, password_hash: str, now: dt.datetime) -> None:
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(_account).values(
                        structure_id=structure_id,
                        login=login,
                        password_hash=password_hash,
                        created_at=now,
                        disabled=False,
                        locked=False,
                        failed_logins=0,
                    )
                )
        except IntegrityError:
            raise AccountExists(f"structure {structure_id} already has an account {login!r}") from None

    def account(self, structure_id: str, login: str) -> DashboardAccount | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(_account).where(_account.c.structure_id == structure_id, _account.c.login == login)
            ).first()
        return _account_of(row) if row is not None else None

    def accounts(self, structure_id: str = "") -> list[DashboardAccount]:
        query = select(_account).order_by(_account.c.structure_id, _account.c.login)
        if structure_id:
            query = query.where(_account.c.structure_id == structure_id)
        with self.engine.connect() as connection:
            return [_account_of(row) for row in connection.execute(query)]

    def set_account(self, structure_id: str, login: str, **values: object) -> bool:
        with self.engine.begin() as connection:
            result = connection.execute(
                update(_account)
                .where(_account.c.structure_id == structure_id, _account.c.login == login)
                .values(**values)
            )
        return result.rowcount == 1


def _values(session: WebSession) -> dict[str, object]:
    return {name: getattr(session, name) for name in WebSession.__dataclass_fields__}


def _session_of(row: object) -> WebSession:
    values = {name: getattr(row, name) for name in WebSession.__dataclass_fields__}
    for name in ("created_at", "last_seen_at", "expires_at"):
        values[name] = utc_aware(values[name])
    return WebSession(**values)


def _account_of(row: object) -> DashboardAccount:
    values = {name: getattr(row, name) for name in DashboardAccount.__dataclass_fields__}
    values["created_at"] = utc_aware(values["created_at"])
    return DashboardAccount(**values)
