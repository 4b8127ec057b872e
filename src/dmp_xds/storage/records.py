"""DMP records and authorizations in the registry database (their dataclasses: dmp/model.py).

Every method is one database transaction. Creating a DMP also registers the patient in the
registry's `patient` table, which the XDS rules consult (XDSUnknownPatientId); destroying it
erases every row that names the patient or one of their objects — metadata, documents, the
registry's history of their changes, authorizations, representatives, notifications — and
leaves the access trace (`audit_entry`, and the head of the patient's chain in `audit_head`): who
accessed the record, up to its destruction, stays answerable to the patient and to the law.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Row, Select, and_, bindparam, delete, func, insert, or_, select, update

from dmp_xds.dmp.model import (
    AUTHORIZATION_DAYS,
    KINDS,
    Address,
    Consent,
    Demographics,
    Destruction,
    DmpError,
    DmpRecord,
    Relationship,
    Representative,
    Telecom,
)
from dmp_xds.dmp.policy import (
    BLOCK_UNTIL,
    CLOSED,
    KIND_ATTENDING,
    KIND_BLOCKED,
    KIND_ESTABLISHMENT,
    KIND_PROFESSIONAL,
    OPEN,
    Authorization,
    RecordState,
)
from dmp_xds.security.vihf import same_patient, split_cx
from dmp_xds.storage.blobstore import BlobStore, BlobStoreError
from dmp_xds.storage.patient_accounts import release_patient_login
from dmp_xds.storage.store import release_unique_ids
from dmp_xds.storage.tables import (
    AssociationRow,
    DmpAuthorizationRow,
    DmpNotificationRow,
    DmpPatientAccountRow,
    DmpRecordRow,
    DmpRepresentativeRow,
    DocumentEntryRow,
    FolderRow,
    LifecycleEventRow,
    PatientRow,
    RegistryEntryUuidRow,
    RepositoryDocumentRow,
    SubmissionSetRow,
    utc_aware,
)
from dmp_xds.xds.model import KIND_ASSOCIATION, KIND_DOCUMENT_ENTRY, KIND_FOLDER, KIND_SUBMISSION_SET

_record = DmpRecordRow.__table__
_authorization = DmpAuthorizationRow.__table__
_representative = DmpRepresentativeRow.__table__
# `_get`'s statements (every request reads its patient's record), built once: built per call
# with the patient's id in them they cost more CPU than running them.
_RECORD_OF = select(_record).where(_record.c.patient_id == bindparam("patient_id"))
_GRANTS_OF = (
    select(_authorization).where(_authorization.c.patient_id == bindparam("patient_id")).order_by(_authorization.c.id)
)
_REPRESENTATIVES_OF = (
    select(_representative)
    .where((_representative.c.patient_id == bindparam("patient_id")) & _representative.c.revoked_at.is_(None))
    .order_by(_representative.c.id)
)
_patient = PatientRow.__table__
_lifecycle_event = LifecycleEventRow.__table__

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _address_value(a: Address) -> dict[str, Any]:
    return {
        "lines": list(a.lines),
        "postal_code": a.postal_code,
        "city": a.city,
        "country": a.country,
        "locators": list(a.locators),
    }


def _address(a: dict[str, Any]) -> Address:
    return Address(
        tuple(a.get("lines", ())),
        a.get("postal_code", ""),
        a.get("city", ""),
        a.get("country", ""),
        tuple(a.get("locators", ())),
    )


def _telecoms(values: list[dict[str, str]]) -> tuple[Telecom, ...]:
    return tuple(Telecom(t["value"], t.get("use", "")) for t in values if t.get("value"))


def _demographics_values(demographics: Demographics) -> dict[str, Any]:
    person = {
        "given_names": list(demographics.given_names),
        "prefix": demographics.prefix,
        "addresses": [_address_value(a) for a in demographics.addresses],
        "telecoms": [{"value": t.value, "use": t.use} for t in demographics.telecoms],
        "deceased": demographics.deceased,
        "birth_place": _address_value(demographics.birth_place),
        "relationships": [
            {
                "code": r.code,
                "code_system": r.code_system,
                "prefix": r.prefix,
                "given_names": list(r.given_names),
                "family": r.family,
                "addresses": [_address_value(a) for a in r.addresses],
                "telecoms": [{"value": t.value, "use": t.use} for t in r.telecoms],
            }
            for r in demographics.relationships
        ],
    }
    return {
        "usage_name": demographics.usage_name or None,
        "birth_name": demographics.birth_name or None,
        "birth_date": demographics.birth_date or None,
        "gender": demographics.gender or None,
        "person": None if demographics.empty else person,
    }


def _demographics(row: Row[Any]) -> Demographics:
    person: dict[str, Any] = row.person or {}
    return Demographics(
        usage_name=row.usage_name or "",
        birth_name=row.birth_name or "",
        given_names=tuple(person.get("given_names", ())),
        prefix=person.get("prefix", ""),
        gender=row.gender or "",
        birth_date=row.birth_date or "",
        addresses=tuple(_address(a) for a in person.get("addresses", ())),
        telecoms=_telecoms(person.get("telecoms", [])),
        deceased=person.get("deceased", ""),
        birth_place=_address(person.get("birth_place", {})),
        relationships=tuple(
            Relationship(
                r.get("code", ""),
                r.get("code_system", ""),
                r.get("prefix", ""),
                tuple(r.get("given_names", ())),
                r.get("family", ""),
                tuple(_address(a) for a in r.get("addresses", ())),
                _telecoms(r.get("telecoms", [])),
            )
            for r in person.get("relationships", ())
        ),
    )


class DmpStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- reading ------------------------------------------------------------------------------
    def get(self, patient_id: str) -> DmpRecord | None:
        with self.engine.connect() as connection:
            return self._get(connection, patient_id)

    def _get(self, connection: Connection, patient_id: str) -> DmpRecord | None:
        key = {"patient_id": patient_id}
        row = connection.execute(_RECORD_OF, key).first()
        if row is None:
            return None
        grants = tuple(_authorization_of(g) for g in connection.execute(_GRANTS_OF, key))
        representatives = tuple(r.representative_id for r in connection.execute(_REPRESENTATIVES_OF, key))
        return _record_of(row, grants, representatives)

    def _get_many(self, connection: Connection, patient_ids: list[str]) -> dict[str, DmpRecord]:
        """The records of these patients (those that exist), as `_get` reads each, in three
        statements per 500 patients rather than three per patient."""
        found: dict[str, DmpRecord] = {}
        for chunk in _chunks(patient_ids):
            rows = connection.execute(select(_record).where(_record.c.patient_id.in_(chunk))).all()
            grants: dict[str, list[Authorization]] = {row.patient_id: [] for row in rows}
            representatives: dict[str, list[str]] = {row.patient_id: [] for row in rows}
            for g in connection.execute(
                select(_authorization)
                .where(_authorization.c.patient_id.in_(list(grants)))
                .order_by(_authorization.c.id)
            ):
                grants[g.patient_id].append(_authorization_of(g))
            for r in connection.execute(
                select(_representative)
                .where(_representative.c.patient_id.in_(list(grants)) & _representative.c.revoked_at.is_(None))
                .order_by(_representative.c.id)
            ):
                representatives[r.patient_id].append(r.representative_id)
            for row in rows:
                found[row.patient_id] = _record_of(
                    row, tuple(grants[row.patient_id]), tuple(representatives[row.patient_id])
                )
        return found

    def _require(self, connection: Connection, patient_id: str) -> DmpRecord:
        found = self._get(connection, patient_id)
        if found is None:
            raise DmpError(f"patient {patient_id} has no DMP")
        return found

    def search(
        self, family: str, given: str = "", birth_date: str = "", gender: str = "", limit: int = 100
    ) -> list[DmpRecord]:
        """The records whose usage or birth name is `family` (case ignored), narrowed by the
        first given name, the birth date and the sex when given: PDQ (TD0.5), oldest first."""
        name = family.strip().upper()
        condition = or_(func.upper(_record.c.usage_name) == name, func.upper(_record.c.birth_name) == name)
        if birth_date:
            condition = condition & (_record.c.birth_date == birth_date)
        if gender:
            condition = condition & (_record.c.gender == gender)
        with self.engine.connect() as connection:
            ids = connection.execute(
                select(_record.c.patient_id).where(condition).order_by(_record.c.created_at).limit(limit * 4)
            ).scalars()
            found = [r for r in (self._get(connection, i) for i in ids) if r is not None]
        wanted = given.strip().upper()
        if wanted:
            found = [r for r in found if any(g.upper() == wanted for g in r.demographics.given_names)]
        return found[:limit]

    # --- lifecycle ----------------------------------------------------------------------------
    def create(self, patient_id: str, consent: Consent, demographics: Demographics | None = None) -> DmpRecord:
        now = _now()
        with self.engine.begin() as connection:
            existing = self._get(connection, patient_id)
            if existing is not None:
                raise DmpError(f"patient {patient_id} already has a DMP ({existing.state.status})")
            connection.execute(
                insert(_record).values(
                    patient_id=patient_id,
                    status=OPEN,
                    consent_collected_by=consent.collected_by,
                    consent_collected_at=consent.collected_at,
                    emergency_access_allowed=consent.emergency_access_allowed,
                    regulation_access_allowed=consent.regulation_access_allowed,
                    created_at=now,
                    updated_at=now,
                    **_demographics_values(demographics or Demographics()),
                )
            )
            if (
                connection.execute(select(_patient.c.patient_id).where(_patient.c.patient_id == patient_id)).first()
                is None
            ):
                connection.execute(insert(_patient).values(patient_id=patient_id, created_at=now))
            return self._require(connection, patient_id)

    def update_consent(
        self,
        patient_id: str,
        emergency_access_allowed: bool | None = None,
        regulation_access_allowed: bool | None = None,
        notification_email: str | None = None,
        demographics: Demographics | None = None,
    ) -> DmpRecord:
        """Change the given choices and administrative data (None: unchanged; an empty e-mail
        address removes it; demographics replace the former ones, but for what they do not say:
        see `Demographics.keeping`)."""
        values: dict[str, object] = {"updated_at": _now()}
        if emergency_access_allowed is not None:
            values["emergency_access_allowed"] = emergency_access_allowed
        if regulation_access_allowed is not None:
            values["regulation_access_allowed"] = regulation_access_allowed
        if notification_email is not None:
            values["notification_email"] = notification_email or None
        with self.engine.begin() as connection:
            former = self._require(connection, patient_id)
            if demographics is not None:
                values.update(_demographics_values(demographics.keeping(former.demographics)))
            connection.execute(update(_record).where(_record.c.patient_id == patient_id).values(**values))
            return self._require(connection, patient_id)

    def close(self, patient_id: str, reason: str = "") -> DmpRecord:
        return self._set_status(patient_id, CLOSED, reason)

    def reopen(self, patient_id: str, reason: str = "") -> DmpRecord:
        return self._set_status(patient_id, OPEN, reason)

    def _set_status(self, patient_id: str, status: str, reason: str) -> DmpRecord:
        now = _now()
        with self.engine.begin() as connection:
            record = self._require(connection, patient_id)
            if record.state.status == status:
                raise DmpError(f"the DMP of {patient_id} is already {status}")
            connection.execute(
                update(_record)
                .where(_record.c.patient_id == patient_id)
                .values(
                    status=status,
                    updated_at=now,
                    status_reason=reason or None,
                    closed_at=now if status == CLOSED else None,
                )
            )
            return self._require(connection, patient_id)

    def destroy(self, patient_id: str, blobs: BlobStore | None) -> Destruction:
        """Erase the record, its metadata, their history and its documents (the files once the
        rows are gone); the access trace stays."""
        with self.engine.begin() as connection:
            self._require(connection, patient_id)
            entries = DocumentEntryRow.__table__
            sets, folders, associations = SubmissionSetRow.__table__, FolderRow.__table__, AssociationRow.__table__
            documents = connection.execute(
                select(entries.c.entry_uuid, entries.c.unique_id).where(entries.c.patient_id == patient_id)
            ).all()
            ids = [d.entry_uuid for d in documents]
            packages = {
                KIND_SUBMISSION_SET: connection.execute(
                    select(sets.c.entry_uuid, sets.c.unique_id).where(sets.c.patient_id == patient_id)
                ).all(),
                KIND_FOLDER: connection.execute(
                    select(folders.c.entry_uuid, folders.c.unique_id).where(folders.c.patient_id == patient_id)
                ).all(),
            }
            ids += [p.entry_uuid for rows in packages.values() for p in rows]
            unique_ids = sorted({d.unique_id for d in documents})
            repository = RepositoryDocumentRow.__table__
            paths = (
                connection.execute(select(repository.c.path).where(repository.c.unique_id.in_(unique_ids)))
                .scalars()
                .all()
            )
            erased = 0
            for chunk in _chunks(ids):
                erased += connection.execute(
                    delete(associations).where(or_(associations.c.source.in_(chunk), associations.c.target.in_(chunk)))
                ).rowcount
            for table in (associations, entries, sets, folders):
                erased += connection.execute(delete(table).where(table.c.patient_id == patient_id)).rowcount
            claims = RegistryEntryUuidRow.__table__
            connection.execute(delete(claims).where(claims.c.patient_id == patient_id))
            for chunk in _chunks(unique_ids):
                connection.execute(delete(repository).where(repository.c.unique_id.in_(chunk)))
            _erase_history(connection, patient_id, ids)
            release_unique_ids(connection, KIND_DOCUMENT_ENTRY, unique_ids)
            for kind, rows in packages.items():
                release_unique_ids(connection, kind, [p.unique_id for p in rows])
            connection.execute(delete(_authorization).where(_authorization.c.patient_id == patient_id))
            connection.execute(delete(_representative).where(_representative.c.patient_id == patient_id))
            release_patient_login(connection, patient_id)
            accounts = DmpPatientAccountRow.__table__
            connection.execute(delete(accounts).where(accounts.c.patient_id == patient_id))
            connection.execute(
                delete(DmpNotificationRow.__table__).where(DmpNotificationRow.__table__.c.patient_id == patient_id)
            )
            connection.execute(delete(_record).where(_record.c.patient_id == patient_id))
            connection.execute(delete(_patient).where(_patient.c.patient_id == patient_id))
        if blobs is not None:
            for path in paths:
                try:
                    blobs.remove(path)
                except BlobStoreError as exc:  # the rows are gone: the document is unreachable
                    log.error("document of a destroyed record not erased, remove it by hand: %s", exc)
        return Destruction(unique_ids, erased)

    # --- authorizations -----------------------------------------------------------------------
    def grant(
        self,
        patient_id: str,
        kind: str,
        grantee: str,
        granted_by: str,
        reference: str = "",
        days: int = AUTHORIZATION_DAYS,
        identity: Grantee | None = None,
    ) -> Authorization:
        """Grant (or renew, for another year) access; an attending doctor replaces the previous one.
        `identity`: who the grantee is, as their VIHF said (kept for TD1.6). A blocked
        professional is granted nothing until unblocked."""
        if kind not in KINDS:
            raise DmpError(f"unknown authorization kind {kind!r} (expected one of {', '.join(KINDS)})")
        if not grantee:
            raise DmpError("an authorization needs a grantee (national id or structure id)")
        now = _now()
        expires = now + dt.timedelta(days=days)
        with self.engine.begin() as connection:
            record = self._require(connection, patient_id)
            if record.state.status == CLOSED:
                raise DmpError(f"the DMP of {patient_id} is closed")
            active = (_authorization.c.patient_id == patient_id) & _authorization.c.revoked_at.is_(None)
            if kind != KIND_ESTABLISHMENT and any(
                a.kind == KIND_BLOCKED and a.grantee == grantee and a.active(now) for a in record.state.authorizations
            ):
                raise DmpError(f"{grantee} is blocked on the DMP of {patient_id}: unblock them first")
            who = _identity_values(identity)
            if kind == KIND_ATTENDING:
                connection.execute(
                    update(_authorization)
                    .where(active & (_authorization.c.kind == KIND_ATTENDING) & (_authorization.c.grantee != grantee))
                    .values(revoked_at=now)
                )
            renewed = connection.execute(
                update(_authorization)
                .where(active & (_authorization.c.kind == kind) & (_authorization.c.grantee == grantee))
                .values(
                    expires_at=expires,
                    granted_at=now,
                    granted_by=granted_by,
                    reference=reference or None,
                    last_action_at=now,
                    **who,
                )
            )
            if renewed.rowcount == 0:
                connection.execute(
                    insert(_authorization).values(
                        patient_id=patient_id,
                        kind=kind,
                        grantee=grantee,
                        granted_by=granted_by,
                        granted_at=now,
                        expires_at=expires,
                        reference=reference or None,
                        last_action_at=now,
                        **who,
                    )
                )
            return next(
                a
                for a in self._require(connection, patient_id).state.authorizations
                if a.kind == kind and a.grantee == grantee and a.revoked_at is None
            )

    def revoke(self, patient_id: str, grantee: str, kind: str | None = None) -> int:
        """Revoke the active grants to `grantee` (of `kind`, or all but a block: `unblock` lifts
        that); how many were revoked."""
        with self.engine.begin() as connection:
            self._require(connection, patient_id)
            return _revoke(connection, patient_id, grantee, kind)

    def block(
        self, patient_id: str, grantee: str, blocked_by: str, identity: Grantee | None = None
    ) -> tuple[int, bool]:
        """Block a professional: their grants are revoked and none can be made until `unblock`.
        How many grants were revoked, and whether the block is new (False: already blocked)."""
        if not grantee:
            raise DmpError("a block needs the professional's national id")
        now = _now()
        with self.engine.begin() as connection:
            record = self._require(connection, patient_id)
            revoked = sum(_revoke(connection, patient_id, grantee, k) for k in (KIND_PROFESSIONAL, KIND_ATTENDING))
            if any(
                a.kind == KIND_BLOCKED and a.grantee == grantee and a.revoked_at is None
                for a in record.state.authorizations
            ):
                return revoked, False
            connection.execute(
                insert(_authorization).values(
                    patient_id=patient_id,
                    kind=KIND_BLOCKED,
                    grantee=grantee,
                    granted_by=blocked_by,
                    granted_at=now,
                    expires_at=BLOCK_UNTIL,
                    last_action_at=now,
                    **_identity_values(identity or _known_identity(record.state.authorizations, grantee)),
                )
            )
            return revoked, True

    def unblock(self, patient_id: str, grantee: str) -> int:
        """Lift the block on `grantee` (they may then be authorized again); 0 if there was none."""
        with self.engine.begin() as connection:
            self._require(connection, patient_id)
            return _revoke(connection, patient_id, grantee, KIND_BLOCKED)

    def authorized_on(self, grantee: str, structure_id: str = "") -> list[tuple[DmpRecord, Authorization]]:
        """The open DMPs that let `grantee` in by a grant of their own (or, given a structure,
        by the establishment's), with that grant: TD0.4's list."""
        alternatives = []
        if grantee:
            alternatives.append(
                _authorization.c.kind.in_((KIND_PROFESSIONAL, KIND_ATTENDING)) & (_authorization.c.grantee == grantee)
            )
        if structure_id:
            alternatives.append(
                (_authorization.c.kind == KIND_ESTABLISHMENT) & (_authorization.c.grantee == structure_id)
            )
        if not alternatives:
            return []
        condition = or_(*alternatives)
        now = _now()
        found: list[tuple[DmpRecord, Authorization]] = []
        with self.engine.connect() as connection:
            patients = connection.execute(
                select(_authorization.c.patient_id)
                .where(condition & _authorization.c.revoked_at.is_(None) & (_authorization.c.expires_at > now))
                .distinct()
                .order_by(_authorization.c.patient_id)
            ).scalars()
            ids = list(patients)
            records = self._get_many(connection, ids)
            for patient_id in ids:
                record = records.get(patient_id)
                if record is None or record.state.status != OPEN:
                    continue
                grants = [
                    a
                    for a in record.state.authorizations
                    if a.active(now)
                    and (
                        (a.kind in (KIND_PROFESSIONAL, KIND_ATTENDING) and a.grantee == grantee and grantee)
                        or (a.kind == KIND_ESTABLISHMENT and structure_id and a.grantee == structure_id)
                    )
                ]
                if grants and not any(
                    a.kind == KIND_BLOCKED and a.grantee == grantee and a.active(now)
                    for a in record.state.authorizations
                ):
                    found.append((record, min(grants, key=lambda a: a.granted_at or now)))
        return found

    def last_additions(self, patient_ids: list[str]) -> dict[str, dt.datetime]:
        """When a document was last added to each record (its latest submission set)."""
        sets = SubmissionSetRow.__table__
        found: dict[str, dt.datetime] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(patient_ids):
                for patient_id, latest in connection.execute(
                    select(sets.c.patient_id, func.max(sets.c.created_at))
                    .where(sets.c.patient_id.in_(chunk))
                    .group_by(sets.c.patient_id)
                ):
                    found[patient_id] = utc_aware(latest)
        return found

    # --- legal representatives ----------------------------------------------------------------
    # Who may declare or remove one is the operator's question (`dmp-xds dmp representative`, once
    # the proof is checked); here the record keeps who did it. Ids are compared as CX (the same person whatever the id's type).
    def representatives(self, patient_id: str) -> list[Representative]:
        """The legal representatives currently declared for the patient, oldest first."""
        with self.engine.connect() as connection:
            self._require(connection, patient_id)
            return [
                _declaration(row)
                for row in connection.execute(self._active_representatives(patient_id).order_by(_representative.c.id))
            ]

    def represented_by(self, representative_id: str) -> list[str]:
        """The records (patient ids) that declare this legal representative now, oldest
        declaration first: what a representative signed in on the web may act on."""
        person = split_cx(representative_id)[0]
        if not person:
            return []
        statement = (
            select(_representative.c.patient_id, _representative.c.representative_id)
            .where(_representative.c.revoked_at.is_(None))
            # The id's own part first (an index-friendly prefix), then compared as CX.
            .where(_representative.c.representative_id.startswith(person, autoescape=True))
            .order_by(_representative.c.id)
        )
        with self.engine.connect() as connection:
            found = [
                row.patient_id
                for row in connection.execute(statement)
                if same_patient(row.representative_id, representative_id)
            ]
        return list(dict.fromkeys(found))

    def add_representative(
        self, patient_id: str, representative_id: str, declared_by: str
    ) -> tuple[Representative, bool]:
        """Declare a legal representative of the (minor) patient: the declaration, and whether it
        is new (False: they were declared before, and that earlier declaration is returned)."""
        if not representative_id:
            raise DmpError("a legal representative needs an id (the NameID of their VIHF)")
        if same_patient(representative_id, patient_id):
            raise DmpError("a patient is not their own legal representative")
        with self.engine.begin() as connection:
            self._require(connection, patient_id)
            for row in connection.execute(self._active_representatives(patient_id)):
                if same_patient(row.representative_id, representative_id):
                    return _declaration(row), False
            now = _now()
            connection.execute(
                insert(_representative).values(
                    patient_id=patient_id, representative_id=representative_id, declared_by=declared_by, declared_at=now
                )
            )
            return Representative(representative_id, declared_by, now), True

    def remove_representative(self, patient_id: str, representative_id: str) -> int:
        """End the representation by `representative_id`; how many declarations ended (0 or 1)."""
        with self.engine.begin() as connection:
            self._require(connection, patient_id)
            ids = [
                r.id
                for r in connection.execute(self._active_representatives(patient_id))
                if same_patient(r.representative_id, representative_id)
            ]
            if not ids:
                return 0
            return connection.execute(
                update(_representative).where(_representative.c.id.in_(ids)).values(revoked_at=_now())
            ).rowcount

    @staticmethod
    def _active_representatives(patient_id: str) -> Select[tuple[object, ...]]:
        return select(_representative).where(
            (_representative.c.patient_id == patient_id) & _representative.c.revoked_at.is_(None)
        )


def _record_of(row: Row[Any], grants: tuple[Authorization, ...], representatives: tuple[str, ...]) -> DmpRecord:
    state = RecordState(
        row.patient_id,
        row.status,
        row.emergency_access_allowed,
        row.regulation_access_allowed,
        grants,
        representatives,
    )
    consent = Consent(
        row.consent_collected_by,
        utc_aware(row.consent_collected_at),
        row.emergency_access_allowed,
        row.regulation_access_allowed,
    )
    return DmpRecord(
        state,
        consent,
        utc_aware(row.created_at),
        utc_aware(row.closed_at),
        row.status_reason or "",
        row.notification_email or "",
        _demographics(row),
    )


@dataclass(frozen=True)
class Grantee:
    """Who a professional is, as their VIHF and card say (TD1.6 shows it)."""

    first_name: str = ""
    last_name: str = ""
    specialties: tuple[str, ...] = ()


def _identity_values(identity: Grantee | None) -> dict[str, object]:
    if identity is None:
        return {}
    return {
        "first_name": identity.first_name or None,
        "last_name": identity.last_name or None,
        "specialties": list(identity.specialties),
    }


def _known_identity(grants: tuple[Authorization, ...], grantee: str) -> Grantee | None:
    """The latest identity recorded for `grantee` on this record (a block names who it blocks)."""
    for grant in reversed(grants):
        if grant.grantee == grantee and (grant.first_name or grant.last_name):
            return Grantee(grant.first_name, grant.last_name, grant.specialties)
    return None


def _authorization_of(row: Row[tuple[object, ...]]) -> Authorization:
    return Authorization(
        row.kind,
        row.grantee,
        utc_aware(row.expires_at),
        utc_aware(row.revoked_at),
        row.reference or "",
        row.first_name or "",
        row.last_name or "",
        tuple(row.specialties or ()),
        utc_aware(row.granted_at),
        utc_aware(row.last_action_at) if row.last_action_at is not None else utc_aware(row.granted_at),
    )


def _revoke(connection: Connection, patient_id: str, grantee: str, kind: str | None) -> int:
    condition = (
        (_authorization.c.patient_id == patient_id)
        & (_authorization.c.grantee == grantee)
        & _authorization.c.revoked_at.is_(None)
    )
    condition = condition & (
        _authorization.c.kind == kind if kind is not None else _authorization.c.kind != KIND_BLOCKED
    )
    now = _now()
    return connection.execute(
        update(_authorization).where(condition).values(revoked_at=now, last_action_at=now)
    ).rowcount


def _declaration(row: Row[tuple[object, ...]]) -> Representative:
    return Representative(row.representative_id, row.declared_by, utc_aware(row.declared_at))


def _erase_history(connection: Connection, patient_id: str, ids: list[str]) -> None:
    """The registry's history (`lifecycle_event`) of the patient's objects: the events naming the
    patient, and those that name only an object of theirs — a replacement's deprecation (by the
    replacing submission set), an association's deletion (by its ends, in `detail`) — found by
    the ids of the objects stored now and of those deleted before (only the history knows them).
    A scan of the history per 500 ids: a destruction is rare, and must not miss a row."""
    events = _lifecycle_event
    known = set(ids) | set(
        connection.execute(select(events.c.object_uuid).where(events.c.patient_id == patient_id)).scalars()
    )
    for chunk in _chunks(sorted(known)):
        connection.execute(
            delete(events).where(
                or_(
                    events.c.object_uuid.in_(chunk),
                    events.c.submission_set_uuid.in_(chunk),
                    and_(
                        events.c.object_kind == KIND_ASSOCIATION,
                        or_(
                            events.c.detail["source"].as_string().in_(chunk),
                            events.c.detail["target"].as_string().in_(chunk),
                        ),
                    ),
                )
            )
        )
    connection.execute(delete(events).where(events.c.patient_id == patient_id))


def _chunks(values: list[str], size: int = 500) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]
