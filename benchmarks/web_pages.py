"""Page times of the web front with 1 M documents in the registry, on SQLite and PostgreSQL.

The pages measured, each with a random patient of those prepared for it:
- the patient's documents list (services/patient_space.list_documents, /patient/{INS}/documents);
- the patient's access history (patient_space.access_history, /patient/{INS}/historique);
- the professional's timeline (services/professional_site care_pathway, /AccesDirect/ParcoursDeSoins/{INS});
- the establishment dashboard: the month's figures, the 12-month series and the day's refusals
  (services/establishment_stats.dashboard, /etablissement/);
- beside them the professional's first page, TableauDeBord (TD0.4's list of their patients).

The data: `dmp-xds bench-load`'s generator fills the registry (10 documents per patient: 100,000
patients for 1 M documents), then what these pages read and bench-load does not make, written
through the store's own APIs: DMP records and authorizations (storage/records.py), and an access
trace (storage/trail.py, `AuditTrail.append_many`, so that it verifies) of a year: hundreds of
accesses to each measured patient by several professionals of several structures, some of them
break-glass; the measured structure's submissions, refusals, consultations and DMP creations
month by month; and the activity of everyone else (`--trace` rows in all), so that the indexes
matter. The filled database is kept in `--data-dir` (filling 1 M documents takes minutes) and
used again while its parameters are the same.

Measured first in this process, through the service functions (what a page does but HTML and
HTTP), with the database's plan (EXPLAIN) of the main queries; then, with `--http`, over HTTPS
through the real server (a separate process on 127.0.0.1, the test PKI), signed in as each page
needs. Each page's call writes its trace row, as the page does.

The PostgreSQL server is the tests' throwaway one (tests/pgserver.py, fsync=off), kept in the
data directory between runs: read figures are unaffected, fill times are flattered.

Usage: python benchmarks/web_pages.py [--documents 1000000] [--backends sqlite,postgresql]
                                      [--data-dir DIR] [--calls 300] [--trace 300000] [--http]
Every loop is bounded by its count; the servers only listen on 127.0.0.1 and are stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src"), str(ROOT / "benchmarks")]

from sqlalchemy import Engine, Select, delete, func, select, text  # noqa: E402

from dmp_xds.config import load_settings  # noqa: E402
from dmp_xds.dmp.model import Consent  # noqa: E402
from dmp_xds.dmp.policy import KIND_ATTENDING, KIND_PROFESSIONAL  # noqa: E402
from dmp_xds.security import vocabulary as sv  # noqa: E402
from dmp_xds.security.pki import GeneratedPki, create_test_pki, load_test_pki  # noqa: E402
from dmp_xds.security.web_principal import patient_principal  # noqa: E402
from dmp_xds.services import establishment_stats as es  # noqa: E402
from dmp_xds.services import patient_space as ps  # noqa: E402
from dmp_xds.services.context import Services  # noqa: E402
from dmp_xds.services.patients_specific import ACCESSES  # noqa: E402
from dmp_xds.services.professional_site.parcours_de_soins import care_pathway  # noqa: E402
from dmp_xds.services.professional_site.tableau_de_bord import dashboard as tableau_de_bord  # noqa: E402
from dmp_xds.storage import trail as t  # noqa: E402
from dmp_xds.storage.database import create_engine_for, upgrade  # noqa: E402
from dmp_xds.storage.queries import build_plan, parse_stored_query  # noqa: E402
from dmp_xds.storage.stats import structure_requests  # noqa: E402
from dmp_xds.storage.store import RegistryStore  # noqa: E402
from dmp_xds.storage.tables import (  # noqa: E402
    AuditEntryRow,
    DmpAuthorizationRow,
    DmpRecordRow,
    DocumentEntryRow,
    StatsClosedMonthRow,
)
from dmp_xds.storage.trail import AuditEvent  # noqa: E402
from dmp_xds.tools.bench_load import CodePools, load, patient_id  # noqa: E402
from dmp_xds.transport.serve import open_services  # noqa: E402
from dmp_xds.xds import vocabulary as v  # noqa: E402
from pgserver import PostgresServer  # noqa: E402

DOCUMENTS_PER_PATIENT = 10
VALUE_SETS = ROOT / ".." / "shared" / "ans-testcontenucda" / "jeuxDeValeurs"
DEFAULT_DATA_DIR = Path("/var/tmp/dmp-xds-bench-web")
MEASURED_PATIENTS = 200
ACCESSES_PER_PATIENT = (200, 400)  # trace rows about each measured patient
PROFESSIONALS_PER_PATIENT = 8  # the measured doctor and 7 others, of 4 structures
EMERGENCY_SHARE = 0.03  # break-glass accesses among them
OTHER_STRUCTURES = 60
PROFESSIONALS_PER_STRUCTURE = 10
WARMUP = 20
AUDIENCE = "urn:dmp-xds:bench-web"
FILL_FORMAT = 1  # bump when what `fill` writes changes: a kept database of another format is refilled

# The measured structure's month (at --structure-scale 1): documents submitted, submissions
# refused (and on the reference day), consultations, DMPs created.
STRUCTURE_MONTH = {"submissions": 700, "refusals": 30, "refusals_today": 6, "reads": 3000, "creations": 50}
REFUSALS = (
    ("XDSRegistryMetadataError", "le typeCode n'appartient pas au jeu de valeurs JDV_J07"),
    ("XDSPatientIdDoesNotMatch", "l'INS du document ne correspond pas à celui du lot de soumission"),
    ("XDSRepositoryMetadataError", "le hash du document ne correspond pas à son contenu"),
    ("XDSDuplicateUniqueIdInRegistry", "l'identifiant unique du document est déjà enregistré"),
    ("XDSRegistryError", "le document CDA ne respecte pas le volet de contenu (schématron)"),
)


# --- where the data is kept ----------------------------------------------------------------


class KeptPostgres(PostgresServer):
    """The tests' PostgreSQL (fsync off), its cluster kept in a directory of ours between runs."""

    @classmethod
    def start_in(cls, base_dir: Path) -> KeptPostgres:
        from pgserver import SYSTEM_USER, find_bindir, free_port

        run_as = SYSTEM_USER if os.geteuid() == 0 else None
        base_dir.mkdir(parents=True, exist_ok=True)
        if run_as:
            shutil.chown(base_dir, run_as, run_as)
        server = cls(find_bindir(), base_dir, free_port(), run_as)
        if not (server.data_dir / "PG_VERSION").exists():
            server._initdb()
        server._write_settings()
        if not server._start_once():
            raise RuntimeError(server._failure("did not start"))
        server._wait_until_ready()
        return server

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        # A clean shutdown (a checkpoint): the cluster is used again by the next run.
        self._run(["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop"], check=False)

    def database_url(self, name: str) -> str:
        with self.admin_connection() as connection:
            if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                connection.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)


@dataclass
class Dataset:
    """What a kept database holds (its `filled.json`)."""

    format: int
    backend: str
    documents: int
    trace: int
    structure_scale: float
    reference: str  # ISO 8601: "now" of the filling; the trace's year ends there
    measured: list[str]  # the patients the pages are measured on (their DMPs exist)
    structure: str  # the measured establishment (the test PKI's hospital)
    professional: str  # the measured doctor's national id (the test PKI's "doctor")
    fill_seconds: dict[str, float]
    trace_rows: int

    @property
    def reference_time(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.reference)

    def same(self, other: Dataset) -> bool:
        keys = ("format", "backend", "documents", "trace", "structure_scale")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


def server_env(data_dir: Path, pki: GeneratedPki, database_url: str) -> dict[str, str]:
    """The server's settings, as tests/secure_server.py gives them: TLS and client certificates
    of the test PKI, the trace's key in the data directory."""
    env = {
        **os.environ,
        "DMP_XDS_DATA_DIR": str(data_dir),
        "DMP_XDS_HOST": "127.0.0.1",
        "DMP_XDS_LOG_LEVEL": "warning",
        "DMP_XDS_PROFILE": "ihe",
        "DMP_XDS_AUTH": "vihf",
        "DMP_XDS_TRUST_ANCHORS": str(pki.anchors),
        "DMP_XDS_TRUST_INTERMEDIATES": str(pki.intermediates),
        "DMP_XDS_CRL_FILES": ",".join(str(p) for p in pki.crls),
        "DMP_XDS_VIHF_AUDIENCE": AUDIENCE,
        "DMP_XDS_PATIENT_PORTALS": ",".join(i.structure_id for i in pki.identities.values() if i.patient_portal),
        "DMP_XDS_TLS_CERTIFICATE": str(pki.server_certificate),
        "DMP_XDS_TLS_KEY": str(pki.server_key),
    }
    env.pop("DMP_XDS_DATABASE_URL", None)
    # The server runs this checkout's code, whatever the virtualenv has installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT / "src"), os.environ.get("PYTHONPATH", ""))))
    if database_url:
        env["DMP_XDS_DATABASE_URL"] = database_url
    return env


def the_pki(data_dir: Path) -> GeneratedPki:
    directory = data_dir / "pki"
    if (directory / "identities.json").exists():
        return load_test_pki(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return create_test_pki(directory)


def open_kept(env: dict[str, str]) -> Services:
    """The services as the server opens them, the database migrated to the code's head first
    (a database filled before a new migration gets its indexes)."""
    return open_services(load_settings(environ=env), migrate=True)


# --- filling --------------------------------------------------------------------------------


def uid(rng: random.Random) -> str:
    return f"2.25.{rng.getrandbits(126)}"


def national(rng: random.Random) -> str:
    return f"8{rng.randint(10**10, 10**11 - 1)}"


@dataclass(frozen=True)
class Actor:
    national_id: str
    name: str
    role: str
    structure_id: str


def documents_of(engine: Engine, patients: Sequence[str]) -> dict[str, list[str]]:
    """The uniqueIds of each patient's DocumentEntries."""
    found: dict[str, list[str]] = {p: [] for p in patients}
    table = DocumentEntryRow.__table__
    with engine.connect() as connection:
        for start in range(0, len(patients), 500):
            chunk = list(patients[start : start + 500])
            statement = select(table.c.patient_id, table.c.unique_id).where(table.c.patient_id.in_(chunk))
            for patient, unique_id in connection.execute(statement):
                found[patient].append(unique_id)
    return found


def refusal_detail(errors: Sequence[tuple[str, str]]) -> str:
    """A refused submission's trace detail, as ITI-41 writes it (the trail's `refusal_notes`)."""
    notes = getattr(t, "refusal_notes", None)
    if notes is not None:
        return "; ".join(notes(errors))
    codes = list(dict.fromkeys(code for code, _ in errors))
    return "; ".join([f"submission refused: [{', '.join(codes)}]", *(f"{c}: {r}" for c, r in errors)])


class TraceMaker:
    """A year of the access trace, ending at `reference`, as (event, time) pairs."""

    def __init__(self, rng: random.Random, reference: dt.datetime, doctor: Actor, hospital_staff: list[Actor]) -> None:
        self.rng = rng
        self.reference = reference
        self.start = reference - dt.timedelta(days=365)
        self.doctor = doctor
        self.hospital_staff = hospital_staff
        self.structures = [f"1{rng.randint(10**8, 10**9 - 1)}" for _ in range(OTHER_STRUCTURES)]
        self.others = [
            Actor(national(rng), f"DR {i} {s[-4:]}", rng.choice(("10", "10,SM26", "60", "21")), s)
            for s in self.structures
            for i in range(PROFESSIONALS_PER_STRUCTURE)
        ]
        self.events: list[tuple[AuditEvent, dt.datetime]] = []
        self.records: list[tuple[str, dt.datetime]] = []  # DMPs the structure created, with when

    def when(self, start: dt.datetime | None = None, end: dt.datetime | None = None) -> dt.datetime:
        low, high = start or self.start, end or self.reference
        return low + dt.timedelta(seconds=self.rng.uniform(0, (high - low).total_seconds()))

    def add(self, actor: Actor, action: str, patient: str, when: dt.datetime, **fields: Any) -> None:
        event = AuditEvent(
            action,
            fields.pop("outcome", t.SUCCESS),
            patient,
            actor.national_id,
            actor.name,
            actor.role,
            actor.structure_id,
            fields.pop("access_mode", sv.ACCESS_NORMAL),
            **fields,
        )
        self.events.append((event, when))

    def access(self, actor: Actor, patient: str, documents: list[str], when: dt.datetime) -> None:
        """One professional's request about the patient: mostly searches and reads, some
        submissions and updates, a few refusals; some break-glass."""
        r = self.rng
        emergency = r.random() < EMERGENCY_SHARE
        mode = {"access_mode": sv.ACCESS_EMERGENCY, "access_reason": "patient inconscient"} if emergency else {}
        prefix = "EMERGENCY ACCESS - " if emergency else ""
        roll = r.random()
        if roll < 0.05:
            self.add(actor, t.SEARCH, patient, when, outcome=t.DENIED, detail="not authorized on this DMP", **mode)
        elif roll < 0.50:
            shown = tuple(r.sample(documents, min(len(documents), r.randint(1, 10)))) if documents else ()
            self.add(actor, t.SEARCH, patient, when, documents=shown, detail=prefix + "FindDocuments", **mode)
        elif roll < 0.85:
            read = (r.choice(documents),) if documents else ()
            self.add(actor, t.RETRIEVE, patient, when, documents=read, detail=prefix, **mode)
        elif roll < 0.95:
            self.add(actor, t.SUBMIT, patient, when, documents=(uid(r),), detail=prefix, **mode)
        else:
            changed = (r.choice(documents),) if documents else ()
            self.add(actor, t.UPDATE, patient, when, documents=changed, detail=prefix + "archive: allowed", **mode)

    def measured_patient(self, patient: str, documents: list[str]) -> None:
        r = self.rng
        hospital = r.sample(self.hospital_staff, 3)
        outside = r.sample(self.others, PROFESSIONALS_PER_PATIENT - 4)
        actors = [self.doctor, *hospital, *outside]
        for _ in range(r.randint(*ACCESSES_PER_PATIENT)):
            self.access(r.choice(actors), patient, documents, self.when())
        me = Actor(patient, "le patient", sv.PATIENT_ROLE, "")
        for _ in range(r.randint(5, 20)):
            self.add(me, r.choice((t.SEARCH, t.HISTORY_READ, t.DMP_READ)), patient, self.when())

    def background(self, rows: int, patients: int) -> None:
        """Everyone else's activity: random professionals on random patients."""
        r = self.rng
        for _ in range(rows):
            patient = patient_id(r.randrange(patients))
            self.access(r.choice(self.others), patient, [uid(r) for _ in range(r.randint(1, 10))], self.when())

    def structure(self, scale: float, patients: int, measured: set[str], engine: Engine) -> None:
        """The measured structure's year, month by month: its submissions (real documents of the
        registry, so that their codes are counted), refusals, consultations and DMP creations."""
        r = self.rng
        months = []
        first = dt.datetime(self.start.year, self.start.month, 1, tzinfo=dt.UTC)
        while first < self.reference:
            following = dt.datetime(first.year + first.month // 12, first.month % 12 + 1, 1, tzinfo=dt.UTC)
            months.append((max(first, self.start), min(following, self.reference)))
            first = following
        submitted: list[tuple[str, dt.datetime]] = []
        for low, high in months:
            share = (high - low) / dt.timedelta(days=30.44) * scale
            submitted += [
                (patient_id(r.randrange(patients)), self.when(low, high))
                for _ in range(round(STRUCTURE_MONTH["submissions"] * share))
            ]
            for _ in range(round(STRUCTURE_MONTH["refusals"] * share)):
                self.refusal(self.when(low, high), patients)
            for _ in range(round(STRUCTURE_MONTH["reads"] * share)):
                patient = patient_id(r.randrange(patients))
                self.add(r.choice(self.hospital_staff), r.choice(t.DOCUMENT_READS), patient, self.when(low, high))
            for _ in range(round(STRUCTURE_MONTH["creations"] * share)):
                patient = patient_id(r.randrange(patients))
                if patient in measured or any(p == patient for p, _ in self.records):
                    continue
                when = self.when(low, high)
                self.add(r.choice(self.hospital_staff), t.DMP_CREATE, patient, when)
                self.records.append((patient, when))
        day = self.reference.replace(hour=0, minute=0, second=0, microsecond=0)
        for _ in range(round(STRUCTURE_MONTH["refusals_today"] * scale)):
            self.refusal(self.when(day, self.reference), patients)
        found = documents_of(engine, sorted({p for p, _ in submitted}))
        for patient, when in submitted:
            unique_ids = tuple(r.sample(found[patient], min(len(found[patient]), r.randint(1, 3))))
            self.add(r.choice(self.hospital_staff), t.SUBMIT, patient, when, documents=unique_ids)

    def refusal(self, when: dt.datetime, patients: int) -> None:
        r = self.rng
        errors = r.sample(REFUSALS, r.randint(1, 2))
        patient = patient_id(r.randrange(patients))
        documents = tuple(uid(r) for _ in range(r.randint(1, 2)))
        self.add(
            r.choice(self.hospital_staff),
            t.SUBMIT,
            patient,
            when,
            outcome=t.FAILURE,
            documents=documents,
            detail=refusal_detail(errors),
        )


def fill(url: str, env: dict[str, str], pki: GeneratedPki, wanted: Dataset, pools: CodePools) -> Dataset:
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    upgrade(url)
    engine = create_engine_for(url)
    patients = wanted.documents // DOCUMENTS_PER_PATIENT
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if done[0] % max(1, patients // 10) < n:
            print(f"    {done[0]:>7} / {patients} patients, {time.perf_counter() - start:.0f} s", flush=True)

    try:
        load(RegistryStore(engine), pools, patients, DOCUMENTS_PER_PATIENT, seed=7, batch_size=1000, progress=progress)
    finally:
        engine.dispose()
    seconds["documents"] = time.perf_counter() - start

    rng = random.Random(13)
    services = open_kept(env)
    security = services.security
    assert security is not None
    try:
        step = time.perf_counter()
        reference = dt.datetime.fromisoformat(wanted.reference)
        doctor_identity = pki.identity("doctor")
        doctor = Actor(
            doctor_identity.national_id,
            f"{doctor_identity.given_name} {doctor_identity.family_name}",
            "10,SM54",
            doctor_identity.structure_id,
        )
        hospital_staff = [doctor] + [
            Actor(national(rng), f"SOIGNANT {i}", rng.choice(("10", "60", "10,SM26")), wanted.structure)
            for i in range(20)
        ]
        maker = TraceMaker(rng, reference, doctor, hospital_staff)
        measured = wanted.measured
        documents = documents_of(services.registry.engine, measured)
        for patient in measured:
            maker.measured_patient(patient, documents[patient])
        maker.structure(wanted.structure_scale, patients, set(measured), services.registry.engine)
        maker.background(max(0, wanted.trace - len(maker.events)), patients)
        maker.events.sort(key=lambda pair: pair[1])
        seconds["trace generated"] = time.perf_counter() - step

        step = time.perf_counter()
        for index, patient in enumerate(measured):
            security.records.create(patient, Consent(doctor.national_id, reference - dt.timedelta(days=400)))
            security.records.grant(patient, KIND_PROFESSIONAL, doctor.national_id, patient)
            if index % 2:
                security.records.grant(patient, KIND_ATTENDING, rng.choice(maker.others).national_id, patient)
        for patient, when in maker.records:
            security.records.create(patient, Consent(doctor.national_id, when))
        seconds["records"] = time.perf_counter() - step

        step = time.perf_counter()
        for first in range(0, len(maker.events), 5000):
            security.audit.append_many(maker.events[first : first + 5000])
        seconds["trace"] = time.perf_counter() - step

        step = time.perf_counter()
        analyze(services.registry.engine)
        seconds["analyze"] = time.perf_counter() - step
    finally:
        security.audit.close()
        services.registry.engine.dispose()
    seconds["total"] = time.perf_counter() - start
    return Dataset(**{**asdict(wanted), "fill_seconds": seconds, "trace_rows": len(maker.events)})


def analyze(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))


def prepared(
    backend: str, data_dir: Path, args: argparse.Namespace, pki: GeneratedPki
) -> tuple[Dataset, dict[str, str], KeptPostgres | None]:
    """The kept database of these parameters (filled now if there is none), its server's
    settings and, for PostgreSQL, its running server (to stop)."""
    home = data_dir / f"{backend}-{args.documents}"
    patients = args.documents // DOCUMENTS_PER_PATIENT
    rng = random.Random(3)
    wanted = Dataset(
        FILL_FORMAT,
        backend,
        args.documents,
        args.trace,
        args.structure_scale,
        dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        [patient_id(i) for i in sorted(rng.sample(range(patients), min(MEASURED_PATIENTS, patients)))],
        pki.identity("hospital").structure_id,
        pki.identity("doctor").national_id,
        {},
        0,
    )
    marker = home / "filled.json"
    kept = Dataset(**json.loads(marker.read_text())) if marker.exists() else None
    if kept is None or not kept.same(wanted):
        if home.exists():
            print(f"  {home}: another filling, removed", flush=True)
        shutil.rmtree(home, ignore_errors=True)
    (home / "server").mkdir(parents=True, exist_ok=True)
    postgres = KeptPostgres.start_in(home / "postgres") if backend == "postgresql" else None
    try:
        url = postgres.database_url("webpages") if postgres else f"sqlite:///{home / 'server' / 'registry.db'}"
        env = server_env(home / "server", pki, url if postgres else "")
        if kept is None or not kept.same(wanted):
            print(f"  filling {backend} with {args.documents} documents and {args.trace} trace rows...", flush=True)
            kept = fill(url, env, pki, wanted, CodePools.load(args.value_sets))
            marker.write_text(json.dumps(asdict(kept), indent=1))
        return kept, env, postgres
    except BaseException:
        if postgres is not None:
            postgres.stop()
        raise


# --- measuring in process -------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Figures:
    p50_ms: float
    p95_ms: float
    max_ms: float
    first_ms: float
    calls: int


def timed(call: Callable[[int], object], calls: int, prepare: Callable[[], object] = lambda: None) -> Figures:
    """`call(i)` for i in 0..calls-1 after a warm-up, each after `prepare()` (not timed); the
    first call's time kept apart."""
    prepare()
    started = time.perf_counter()
    call(0)
    first = time.perf_counter() - started
    for i in range(WARMUP):
        prepare()
        call(i)
    times = []
    for i in range(calls):
        prepare()
        started = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - started)
    return Figures(
        statistics.median(times) * 1000, percentile(times, 0.95) * 1000, max(times) * 1000, first * 1000, calls
    )


def professional_principal(services: Services, pki: GeneratedPki, card: str) -> Any:
    """The card holder's principal as the professional site makes it from the client certificate."""
    from dmp_xds.security.cps import load_pem_certificates
    from dmp_xds.services.gate import card_principal

    security = services.security
    assert security is not None
    holder = security.trust.check(load_pem_certificates(Path(pki.identity(card).certificate).read_bytes())).holder
    assert holder is not None
    return card_principal(holder)


def in_process(services: Services, pki: GeneratedPki, data: Dataset, calls: int) -> dict[str, Figures]:
    rng = random.Random(17)
    picks = [rng.choice(data.measured) for _ in range(calls + WARMUP + 1)]
    results: dict[str, Figures] = {}

    def documents(i: int) -> None:
        listed = ps.list_documents(services, patient_principal(picks[i]), picks[i])
        assert listed.documents, picks[i]

    def history(i: int) -> None:
        page = ps.access_history(services, patient_principal(picks[i]), picks[i])
        assert len(page.entries) == ps.HISTORY_PAGE, picks[i]
        ps.notifications(services, patient_principal(picks[i]), picks[i])  # the page shows them too

    results["patient: documents"] = timed(documents, calls)
    results["patient: access history"] = timed(history, calls)

    doctor = professional_principal(services, pki, "doctor")

    def timeline(i: int) -> None:
        care_pathway(services, doctor, picks[i].split("^", 1)[0])

    results["professional: timeline"] = timed(timeline, calls)

    def authorized(i: int) -> None:
        found = tableau_de_bord(services, doctor)
        assert len(found.patients) == len(data.measured), len(found.patients)

    # Not one of the four pages, but the professional's first: TD0.4's list of the records
    # the doctor is authorized on (the measured patients), with their dates.
    results["professional: TableauDeBord"] = timed(authorized, max(10, calls // 5))

    reference = data.reference_time
    month = es.Month.of(reference.date())
    engine = services.registry.engine

    def dashboard(i: int) -> None:
        es.dashboard(engine, data.structure, month, reference.date(), now=reference)

    # The figures of a month that is over are computed once, then kept in the database
    # (stats_closed_month) and in the process: the page reads the month under way each time.
    results["establishment: dashboard"] = timed(dashboard, calls)
    # After a restart: the months over are read back from the database.
    results["establishment: dashboard, restarted"] = timed(dashboard, calls, es._closed_month.cache_clear)

    def never_seen() -> None:
        es._closed_month.cache_clear()
        with engine.begin() as connection:
            kept = StatsClosedMonthRow.__table__
            connection.execute(delete(kept).where(kept.c.structure_id == data.structure))

    # The structure's first view ever: its eleven months over are computed from the trace.
    results["establishment: dashboard, first view"] = timed(dashboard, max(10, calls // 10), never_seen)

    # The month under way is read on every view: at its end, a whole month of activity.
    last = month.shifted(-1)
    month_end = last.end - dt.timedelta(minutes=1)

    def dashboard_month_end(i: int) -> None:
        es.dashboard(engine, data.structure, last, month_end.date(), now=month_end)

    results["establishment: dashboard, month's end"] = timed(dashboard_month_end, calls)
    return results


# --- measuring over HTTP --------------------------------------------------------------------

PASSWORD = "Banc-d-essai-2026!"
SIGNED_IN_PATIENTS = 20  # patients with a web account (password + TOTP), signed in over HTTP
STARTUP_SECONDS = 120.0
# The pages, as the web front serves them ({ins}: the patient's INS).
PAGES = {
    "patient: documents": "/patient/{ins}/documents",
    "patient: access history": "/patient/{ins}/historique",
    "professional: TableauDeBord": "/AccesDirect/TableauDeBord",
    "professional: timeline": "/AccesDirect/ParcoursDeSoins/{ins}",
    "establishment: dashboard": "/etablissement/",
}


def patient_accounts(services: Services, patients: Sequence[str]) -> dict[str, str]:
    """A web account with a permanent password and an enrolled TOTP app for each patient (made
    once, kept with the data): their TOTP secrets."""
    from dmp_xds.security import totp
    from dmp_xds.security.passwords import hash_password
    from dmp_xds.storage import web as w
    from dmp_xds.storage.patient_accounts import Channel, PatientAccountStore

    engine = services.registry.engine
    accounts, store = PatientAccountStore(engine), w.WebStore(engine)
    secrets: dict[str, str] = {}
    password_hash = ""
    for index, patient in enumerate(patients):
        if accounts.get(patient) is None:
            password_hash = password_hash or hash_password(PASSWORD)
            accounts.create(patient, f"banc{index:04d}", password_hash, Channel("EMAIL", "banc@example.org"), "bench")
            accounts.choose_password(patient, password_hash)
        enrolled = store.totp(w.PATIENT, patient)
        if enrolled is None:
            store.enroll_totp(w.PATIENT, patient, totp.new_secret(), dt.datetime.now(dt.UTC))
            enrolled = store.totp(w.PATIENT, patient)
        assert enrolled is not None
        secrets[patient] = enrolled[0]
    return secrets


@dataclass
class Server:
    url: str
    process: Any
    log: Path


def start_server(env: dict[str, str], log: Path, anchors: Path) -> Server:
    import subprocess

    import requests

    from pgserver import free_port

    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dmp_xds.cli", "serve"],
            env={**env, "DMP_XDS_PORT": str(port), "DMP_XDS_WORKERS": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server stopped:\n" + log.read_text()[-3000:])
        try:
            if requests.get(url + "/health", timeout=1, verify=str(anchors)).status_code == 200:
                return Server(url, process, log)
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    stop_server(Server(url, process, log))
    raise RuntimeError("the server did not start:\n" + log.read_text()[-3000:])


def stop_server(server: Server) -> None:
    import subprocess

    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=15)


def browser(server: Server, pki: GeneratedPki, card: str = "") -> Any:
    """A browser: the server's CA trusted, Origin sent (as browsers do with a form), a card's
    or an establishment's certificate when named."""
    import requests

    session = requests.Session()
    session.trust_env = False
    session.verify = str(pki.anchors)
    session.headers["Origin"] = server.url
    if card:
        identity = pki.identity(card)
        session.cert = (identity.certificate, identity.key)
    return session


def signed_in_patient(server: Server, pki: GeneratedPki, login: str, secret: str) -> Any:
    from dmp_xds.security import totp

    session = browser(server, pki)
    first = session.post(
        server.url + "/patient/connexion", data={"login": login, "password": PASSWORD}, allow_redirects=False
    )
    if first.status_code != 303:
        raise RuntimeError(f"patient sign-in refused ({first.status_code}): {first.text[:300]}")
    code = totp.totp(totp.secret_key(secret), time.time())
    second = session.post(server.url + "/patient/connexion/code", data={"code": code}, allow_redirects=False)
    if second.status_code != 303:
        raise RuntimeError(f"patient code refused ({second.status_code}): {second.text[:300]}")
    return session


def over_http(
    services: Services, env: dict[str, str], home: Path, pki: GeneratedPki, data: Dataset, calls: int
) -> dict[str, Figures]:
    """The real server, signed in as each page needs; GETs of the pages, one client."""
    from dmp_xds.storage.patient_accounts import PatientAccountStore

    patients = data.measured[:SIGNED_IN_PATIENTS]
    secrets = patient_accounts(services, patients)
    logins = {p: a.login for p in patients if (a := PatientAccountStore(services.registry.engine).get(p)) is not None}
    server = start_server(env, home / "server.log", pki.anchors)
    results: dict[str, Figures] = {}
    try:
        sessions = [(signed_in_patient(server, pki, logins[p], secrets[p]), p.split("^", 1)[0]) for p in patients]
        doctor = browser(server, pki, "doctor")
        establishment = browser(server, pki, "hospital")
        signed = establishment.post(server.url + "/etablissement/connexion/certificat", allow_redirects=False)
        if signed.status_code != 303:
            raise RuntimeError(f"establishment sign-in refused ({signed.status_code}): {signed.text[:300]}")
        rng = random.Random(19)

        def as_patient(i: int) -> tuple[Any, str]:
            return sessions[i % len(sessions)]

        def as_doctor(i: int) -> tuple[Any, str]:
            return doctor, rng.choice(data.measured).split("^", 1)[0]

        def as_establishment(i: int) -> tuple[Any, str]:
            return establishment, ""

        who = {name: as_patient if name.startswith("patient") else as_doctor for name in PAGES}
        who["establishment: dashboard"] = as_establishment
        for name, path in PAGES.items():

            def get(i: int, name: str = name, path: str = path) -> None:
                session, ins = who[name](i)
                answer = session.get(server.url + path.format(ins=ins), allow_redirects=False, timeout=60)
                if answer.status_code != 200:
                    raise PageMissing(f"{path}: {answer.status_code}")

            try:
                results[name] = timed(get, calls)
            except PageMissing as missing:
                print(f"    {name}: not measured over HTTP ({missing})", flush=True)
    finally:
        stop_server(server)
    return results


class PageMissing(Exception):
    pass


# --- plans ----------------------------------------------------------------------------------


def explain(engine: Engine, statement: Select[Any]) -> str:
    compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        rows = connection.execute(text(prefix + str(compiled))).all()
    return "\n".join(
        "      " + " ".join(str(c) for c in (row[-1:] if engine.dialect.name == "sqlite" else row)) for row in rows
    )


def plans(engine: Engine, data: Dataset) -> dict[str, str]:
    patient = data.measured[0]
    query = parse_stored_query(
        v.SQ_FIND_DOCUMENTS, ps._query_slots(patient, ps.DocumentFilter()), v.RETURN_TYPE_LEAF_CLASS
    )
    assert not isinstance(query, list), query
    plan = build_plan(query)
    assert plan.documents is not None
    find = plan.documents.params(patient=patient)
    trace = AuditEntryRow.__table__
    record = DmpRecordRow.__table__
    statements: dict[str, Select[Any]] = {
        "the documents (FindDocuments)": find,
        "the access history": select(trace)
        .where(trace.c.patient_id == patient)
        .order_by(trace.c.seq.desc())
        .limit(ps.HISTORY_PAGE + 1),
        "the DMP record": select(record).where(record.c.patient_id == patient),
    }
    month = es.Month.of(data.reference_time.date())
    statements["a structure's submissions of a month"] = select(trace.c.action, trace.c.documents).where(
        structure_requests(data.structure, (t.SUBMIT,), month.start, month.end)
    )
    grants = DmpAuthorizationRow.__table__
    statements["TD0.4: the records a doctor is authorized on"] = select(grants.c.patient_id).where(
        (grants.c.grantee == data.professional) & grants.c.kind.in_((KIND_PROFESSIONAL, KIND_ATTENDING))
    )
    statements["TD0.4: the doctor's last access to each"] = (
        select(trace.c.patient_id, func.max(trace.c.recorded_at))
        .where(
            trace.c.patient_id.in_(data.measured[:3]),
            trace.c.outcome == t.SUCCESS,
            trace.c.action.in_(ACCESSES),
            trace.c.actor_id == data.professional,
        )
        .group_by(trace.c.patient_id)
    )
    return {name: explain(engine, statement) for name, statement in statements.items()}


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=1_000_000, help="DocumentEntries in the registry")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="where filled databases are kept")
    parser.add_argument("--calls", type=int, default=300, help="timed calls per page")
    parser.add_argument("--trace", type=int, default=300_000, help="trace rows in all (at least)")
    parser.add_argument("--structure-scale", type=float, default=1.0, help="the measured structure's activity")
    parser.add_argument("--fill-only", action="store_true", help="fill (or check) the kept databases, measure nothing")
    parser.add_argument("--http", action="store_true", help="also through the real server, over HTTPS")
    parser.add_argument("--value-sets", type=Path, default=VALUE_SETS, help="the ANS value sets (jeuxDeValeurs)")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    pki = the_pki(args.data_dir)
    table: list[tuple[str, str, Figures]] = []
    for backend in args.backends.split(","):
        data, env, postgres = prepared(backend, args.data_dir, args, pki)
        try:
            fill = ", ".join(f"{k} {s:.0f} s" for k, s in data.fill_seconds.items())
            print(f"  {backend}: {data.documents} documents, {data.trace_rows} trace rows filled ({fill})", flush=True)
            if args.fill_only:
                continue
            services = open_kept(env)
            try:
                for name, plan in plans(services.registry.engine, data).items():
                    print(f"    plan of {name}:\n{plan}")
                measured = {"in process": in_process(services, pki, data, args.calls)}
                if args.http:
                    home = args.data_dir / f"{backend}-{args.documents}"
                    measured["HTTP"] = over_http(services, env, home, pki, data, args.calls)
                for way, results in measured.items():
                    for name, figures in results.items():
                        table.append((backend, f"{name} ({way})", figures))
                        print(
                            f"    {name} ({way}): p50 {figures.p50_ms:.1f} ms, p95 {figures.p95_ms:.1f} ms "
                            f"(first {figures.first_ms:.0f} ms)",
                            flush=True,
                        )
            finally:
                assert services.security is not None
                services.security.audit.close()
                services.registry.engine.dispose()
        finally:
            if postgres is not None:
                postgres.stop()
    if table:
        print(f"\n{args.documents} documents, {args.calls} calls per page; load {os.getloadavg()[0]:.1f}")
        print(f"{'backend':<11}{'page':<44}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'first ms':>10}")
        for backend, name, f in table:
            print(f"{backend:<11}{name:<44}{f.p50_ms:>8.1f}{f.p95_ms:>8.1f}{f.max_ms:>8.1f}{f.first_ms:>10.0f}")


if __name__ == "__main__":
    main()
