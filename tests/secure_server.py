"""A secured dmp-xds server (client certificates, VIHF, policy, trace) on 127.0.0.1 with the
generated test PKI, the VIHF builder of its tests, a signed XDS call over TLS, and documents
stored straight into the server's registry (test_security_*, test_dmpi_*, test_dmp_*)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

import soap_messages as soap
from dmp_xds.config import Settings, default_database_url, load_settings
from dmp_xds.security.cps import load_pem_certificates
from dmp_xds.security.passwords import hash_password
from dmp_xds.security.pki import GeneratedPki
from dmp_xds.security.vihf import VihfClaims, build_assertion, security_header, sign_assertion
from dmp_xds.services.register import apply_registry_values, now_dtm
from dmp_xds.storage.database import create_engine_for
from dmp_xds.storage.document_store import open_blob_store
from dmp_xds.storage.patient_accounts import Channel, PatientAccountStore
from dmp_xds.storage.store import RegistryStore
from dmp_xds.storage.trail import AuditEntry, AuditTrail
from dmp_xds.xds import vocabulary as v
from dmp_xds.xds.model import Author, Code, StoredDocument, Submission
from dmp_xds.xds.model.ids import assign_entry_uuids
from factories import make_submission
from xds_server import free_port

AUDIENCE = "urn:dmp-xds:test-server"
MASKED = Code("MASQUE_PS", "1.2.250.1.213.1.1.4.13", "Masqué aux professionnels de santé")
PATIENT = "2840599123456^^^&1.2.250.1.213.1.4.10&ISO"
STARTUP_SECONDS = 90.0  # compiling the ANS schematrons takes 8 s alone, far more on a busy machine


@dataclass
class SecureServer:
    url: str
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    pki: GeneratedPki
    database_url: str = ""  # '' is the embedded SQLite default

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "dmp_xds.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def engine_url(self) -> str:
        return self.database_url or default_database_url(Settings(data_dir=self.data_dir))

    def trail(self) -> AuditTrail:
        return AuditTrail(create_engine_for(self.engine_url()))

    def last_trace(self, patient: str = PATIENT) -> AuditEntry:
        """The newest trace row about `patient`."""
        return self.trail().history(patient, limit=1)[0]

    @property
    def repository_id(self) -> str:
        return (self.data_dir / "repository-unique-id").read_text().strip()

    def call(
        self, endpoint: str, request: soap.HttpRequest, assertion: etree._Element, card: str = "doctor"
    ) -> soap.SoapResponse:
        """`request` to /xds/`endpoint` over TLS with `card`'s certificate and `assertion` as VIHF."""
        envelope = etree.fromstring(request.body)
        envelope.find(f"{{{v.NS_SOAP12}}}Header").append(security_header(assertion))
        identity = self.pki.identity(card)
        response = requests.post(
            f"{self.url}/xds/{endpoint}",
            data=etree.tostring(envelope),
            timeout=30,
            cert=(identity.certificate, identity.key),
            verify=str(self.pki.anchors),
            headers={"Content-Type": "application/soap+xml"},
        )
        return soap.parse_response(response.status_code, response.headers.get("Content-Type", ""), response.content)

    def dmpi(
        self, service: str, action: str, body: str, assertion: etree._Element, card: str = "doctor"
    ) -> soap.SoapResponse:
        """`body` (an HL7 V3 or CXF message) to the DMP's `service` at its own path, over TLS with
        `card`'s certificate and `assertion` as VIHF."""
        request, _ = soap.envelope(action, etree.fromstring(body.encode()))
        envelope = etree.fromstring(request)
        envelope.find(f"{{{v.NS_SOAP12}}}Header").append(security_header(assertion))
        identity = self.pki.identity(card)
        response = requests.post(
            f"{self.url}/si-dmp-server/v2/services/{service}",
            data=etree.tostring(envelope),
            timeout=30,
            cert=(identity.certificate, identity.key),
            verify=str(self.pki.anchors),
            headers={"Content-Type": "application/soap+xml"},
        )
        return soap.parse_response(response.status_code, response.headers.get("Content-Type", ""), response.content)

    def store_document(
        self,
        name: str,
        patient: str = PATIENT,
        codes: tuple[Code, ...] = (),
        author: str = "",
        institution: str = "",
        content: bytes = b"",
        mime_type: str = "text/plain",
    ) -> Submission:
        """A document of `patient` (with these extra confidentiality codes, written by the
        professional `author` of the structure `institution`) and its file, stored straight into
        the server's registry."""
        submission = make_submission(1)
        submission.submission_set.patient_id = patient
        de = submission.documents[0]
        de.patient_id = patient
        de.confidentiality_codes = [*de.confidentiality_codes, *codes]
        if author:
            de.authors = [Author(person=f"{author}^MARTIN^Marie^^^Dr^^^&1.2.250.1.71.4.2.1&ISO")]
        if institution:
            de.authors = de.authors or [Author()]
            de.authors[0].institutions = [f"STRUCTURE^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^{institution}"]
        content = content or f"document {name}\n".encode()
        de.mime_type = mime_type
        location = self._put(name, de.unique_id, content)
        de.hash, de.size = hashlib.sha1(content).hexdigest(), len(content)
        de.repository_unique_id = self.repository_id
        assign_entry_uuids(submission)
        apply_registry_values(submission, now_dtm())
        engine = create_engine_for(self.engine_url())
        try:
            RegistryStore(engine).store_submission(
                submission, [StoredDocument(de.unique_id, location, de.size, de.hash, mime_type)]
            )
        finally:
            engine.dispose()
        return submission

    def _put(self, name: str, unique_id: str, content: bytes) -> str:
        """The document's location: a file of the test's, or an object the server's S3 store
        (a server on Citus) publishes, where the server will read it."""
        settings = load_settings(environ=self.env)
        if settings.s3_location is None:
            path = self.data_dir / f"{name}.bin"
            path.write_bytes(content)
            return str(path)
        blobs = open_blob_store(settings)
        return blobs.publish(blobs.write_bytes(content), blobs.allocate(unique_id))


def patient_with_account(database_url: str, patient: str, login: str, password: str, email: str) -> None:
    """The patient's web account as it is after the first sign-in: their own password chosen,
    one-time codes by e-mail."""
    engine = create_engine_for(database_url)
    try:
        accounts = PatientAccountStore(engine)
        accounts.create(patient, login, hash_password(password), Channel("EMAIL", email), "test")
        accounts.choose_password(patient, hash_password(password))
    finally:
        engine.dispose()


def patient_portals(pki: GeneratedPki) -> str:
    """DMP_XDS_PATIENT_PORTALS for the test PKI: its patient portal's structure id (not the hospital's)."""
    return ",".join(i.structure_id for i in pki.identities.values() if i.patient_portal)


def start_secure_server(
    data_dir: Path, pki: GeneratedPki, tls: bool, extra: dict[str, str] | None = None, database_url: str = ""
) -> SecureServer:
    port = free_port()
    env = {
        **os.environ,
        "DMP_XDS_DATA_DIR": str(data_dir),
        "DMP_XDS_PORT": str(port),
        "DMP_XDS_HOST": "127.0.0.1",
        "DMP_XDS_LOG_LEVEL": "warning",
        "DMP_XDS_PROFILE": "ihe",
        "DMP_XDS_AUTH": "vihf",
        "DMP_XDS_TRUST_ANCHORS": str(pki.anchors),
        "DMP_XDS_TRUST_INTERMEDIATES": str(pki.intermediates),
        "DMP_XDS_CRL_FILES": ",".join(str(p) for p in pki.crls),
        "DMP_XDS_VIHF_AUDIENCE": AUDIENCE,
        "DMP_XDS_PATIENT_PORTALS": patient_portals(pki),
    }
    env.pop("DMP_XDS_DATABASE_URL", None)
    if database_url:
        env["DMP_XDS_DATABASE_URL"] = database_url
        subprocess.run(
            [sys.executable, "-m", "dmp_xds.cli", "db", "upgrade"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    if tls:
        env.update(DMP_XDS_TLS_CERTIFICATE=str(pki.server_certificate), DMP_XDS_TLS_KEY=str(pki.server_key))
    env.update(extra or {})
    log = open(data_dir / "server.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dmp_xds.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((data_dir / "server.log").read_text())
        try:
            if requests.get(url + "/health", timeout=1, verify=str(pki.anchors)).status_code == 200:
                return SecureServer(url, data_dir, env, process, pki, database_url)
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("secured server did not start:\n" + (data_dir / "server.log").read_text())


def stop_secure_server(server: SecureServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=15)


def vihf(
    pki: GeneratedPki,
    who: str,
    patient: str = PATIENT,
    signer: str | None = None,
    now: dt.datetime | None = None,
    **changes: str,
) -> etree._Element:
    """A signed VIHF of the PKI identity `who` about `patient` (signed by `signer`, default `who`),
    issued at `now` (default: now) with these `changes` to its claims."""
    identity = pki.identity(who)
    claims = VihfClaims(
        identity.national_id,
        f"{identity.given_name} {identity.family_name}",
        identity.profession or "10",
        patient,
        structure_id=identity.structure_id or "1990000099",
        audience=AUDIENCE,
        specialty=identity.specialty,
    )
    for key, value in changes.items():
        setattr(claims, key, value)
    signing = pki.identity(signer or who)
    key = load_pem_private_key(Path(signing.key).read_bytes(), None)
    return sign_assertion(
        build_assertion(claims, now=now), key, load_pem_certificates(Path(signing.certificate).read_bytes())
    )


def patient_vihf(
    pki: GeneratedPki, patient: str = PATIENT, representative: str = "", signer: str = "patient-portal"
) -> etree._Element:
    """The VIHF of a patient acting on their own record (or of their legal `representative`,
    named by their own id), signed by the patient portal (the organisation certificate patients
    come through) unless `signer` says otherwise."""
    from dmp_xds.security import vocabulary as sv

    if representative:
        claims = VihfClaims(representative, "représentant légal", sv.REPRESENTATIVE_ROLE, patient, audience=AUDIENCE)
    else:
        claims = VihfClaims(patient, "le patient", sv.PATIENT_ROLE, patient, audience=AUDIENCE)
    signing = pki.identity(signer)
    key = load_pem_private_key(Path(signing.key).read_bytes(), None)
    return sign_assertion(build_assertion(claims), key, load_pem_certificates(Path(signing.certificate).read_bytes()))
