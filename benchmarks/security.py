"""What the security layer costs per request (its budget: at most 5 ms, a small part of a request).

Measured in process, on what a request runs: the client certificate check (cached verdict, and
a first sight of the certificate, with the look at the CRL files' modification times), the VIHF
verification (XML signature included, and the replay check: one committed row in the shared
replay table), the DMP record lookup and policy decision on SQLite, and the trace append (one
committed row on SQLite with synchronous=FULL). Run: .venv/bin/python benchmarks/security.py
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from dmp_xds.dmp.model import Consent
from dmp_xds.dmp.policy import Action, record_access
from dmp_xds.security.cps import TrustStore, load_pem_certificates
from dmp_xds.security.pki import create_test_pki
from dmp_xds.security.vihf import VihfClaims, VihfVerifier, build_assertion, security_header, sign_assertion
from dmp_xds.storage.database import create_engine_for, upgrade
from dmp_xds.storage.records import DmpStore
from dmp_xds.storage.replay import DatabaseReplayCache
from dmp_xds.storage.trail import AuditEvent, AuditTrail

ROUNDS = 500
PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"


def measure(label: str, rounds: int, prepare: Callable[[], object], run: Callable[[object], object]) -> list[float]:
    times = []
    for _ in range(rounds):
        data = prepare()
        start = time.perf_counter()
        run(data)
        times.append((time.perf_counter() - start) * 1000)
    print(f"{label:<52} {percentiles(times)}")
    return times


def percentiles(times: list[float]) -> str:
    ordered = sorted(times)
    return (
        f"p50 {statistics.median(ordered):6.3f} ms   p95 {ordered[int(len(ordered) * 0.95)]:6.3f} ms   "
        f"p99 {ordered[int(len(ordered) * 0.99)]:6.3f} ms"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pki = create_test_pki(Path(tmp) / "pki")
        trust = TrustStore.from_files([pki.anchors], [pki.intermediates], pki.crls)
        doctor = pki.identity("doctor")
        key = load_pem_private_key(Path(doctor.key).read_bytes(), None)
        chain = load_pem_certificates(Path(doctor.certificate).read_bytes())
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        engine = create_engine_for(url)
        records = DmpStore(engine)
        records.create(PATIENT, Consent("bench", dt.datetime.now(dt.UTC)))
        records.grant(PATIENT, "professional", doctor.national_id, "bench")
        trail = AuditTrail(engine)
        verifier = VihfVerifier(trust, audience="urn:bench", replay_cache=DatabaseReplayCache(engine))  # as served

        def fresh_header() -> etree._Element:
            claims = VihfClaims(
                doctor.national_id,
                "MARIE MARTIN",
                "10",
                PATIENT,
                structure_id=doctor.structure_id,
                audience="urn:bench",
            )
            signed = sign_assertion(build_assertion(claims), key, chain)
            return etree.fromstring(etree.tostring(security_header(signed)))

        print(f"{ROUNDS} rounds each")
        first = measure(
            "client certificate, first sight (chain + CRL)",
            50,
            lambda: TrustStore.from_files([pki.anchors], [pki.intermediates], pki.crls),
            lambda store: store.check(chain),
        )
        cert = measure("client certificate, cached verdict", ROUNDS, lambda: None, lambda _: trust.check(chain))
        vihf = measure(
            "VIHF verification (signature, attributes, replay row)",
            ROUNDS,
            fresh_header,
            lambda header: verifier.verify(header),
        )
        principal = verifier.verify(fresh_header()).principal
        assert principal is not None
        policy = measure(
            "DMP record lookup + policy decision (SQLite)",
            ROUNDS,
            lambda: None,
            lambda _: record_access(
                principal,
                records.get(PATIENT).state,
                Action.SEARCH,
                dt.datetime.now(dt.UTC),
            ),
        )
        trace = measure(
            "trace append (one committed row, SQLite FULL)",
            ROUNDS,
            lambda: None,
            lambda _: trail.append(AuditEvent("search", "success", PATIENT, doctor.national_id)),
        )
        # Each round's own sum: the cost of one request, in the order a request pays it.
        checks = [c + v + p for c, v, p in zip(cert, vihf, policy, strict=True)]
        print(f"{'security checks per request (cert+VIHF+policy)':<52} {percentiles(checks)}")
        print(
            f"{'  + trace append (all of it)':<52} {percentiles([c + t for c, t in zip(checks, trace, strict=True)])}"
        )
        print(
            f"(first sight of a certificate: p50 {statistics.median(first):.3f} ms, then cached "
            f"{trust.cache_seconds:.0f} s or until a CRL file changes)"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
