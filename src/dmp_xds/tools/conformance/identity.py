"""Who a plan step acts as against a secured server, as a DMP-compatible LPS: a TLS client
certificate and a signed VIHF in the wsse:Security header, built for each request.

The identities are those of a test PKI (`dmp-xds pki init DIR`, its identities.json), or
`patient`: the patient of the step, through the PKI's patient portal. A step names its identity
with `<Identity>` in its TestStep; a step that names none acts as the run's default identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from dmp_xds.security import vocabulary as sv
from dmp_xds.security.cps import load_pem_certificates
from dmp_xds.security.pki import PATIENT, GeneratedPki, load_test_pki, signed_vihf
from dmp_xds.security.vihf import security_header
from dmp_xds.tools.conformance.testkit import PlanError
from dmp_xds.tools.conformance.transport import ClientCertificate

DEFAULT_IDENTITY = "doctor"


@dataclass(frozen=True)
class StepIdentity:
    """`<Identity signer="hospital" accessMode="bris_de_glace" reason="...">nurse</Identity>`."""

    name: str
    signer: str = ""
    access_mode: str = sv.ACCESS_NORMAL
    reason: str = ""

    @classmethod
    def parse(cls, element: etree._Element) -> StepIdentity:
        name = (element.text or "").strip()
        if not name:
            raise PlanError("<Identity> names no identity (a name of the PKI's identities.json, or 'patient')")
        mode = element.get("accessMode", sv.ACCESS_NORMAL)
        if mode not in sv.ACCESS_MODES:
            raise PlanError(f"<Identity accessMode={mode!r}>: expected one of {', '.join(sv.ACCESS_MODES)}")
        return cls(name, element.get("signer", ""), mode, element.get("reason", ""))

    def __str__(self) -> str:
        extras = [f"signed by {self.signer}"] if self.signer else []
        if self.access_mode != sv.ACCESS_NORMAL:
            extras.append(self.access_mode + (f": {self.reason}" if self.reason else ""))
        return self.name + (f" ({', '.join(extras)})" if extras else "")


@dataclass(frozen=True)
class Credentials:
    security: etree._Element  # the wsse:Security header holding the signed VIHF
    certificate: ClientCertificate  # the TLS client's: the VIHF's signer


class Identities:
    """The test PKI a run acts from (`--pki`), its default identity (`--identity`) and the VIHF
    audience the server expects (`--audience`)."""

    def __init__(self, pki: GeneratedPki, default: str = DEFAULT_IDENTITY, audience: str = "") -> None:
        self.pki = pki
        self.default = StepIdentity(default)
        self.audience = audience
        self.check(self.default)

    @classmethod
    def load(cls, directory: Path, default: str = DEFAULT_IDENTITY, audience: str = "") -> Identities:
        """Raises ValueError, saying why, for a folder without a readable identities.json."""
        try:
            pki = load_test_pki(directory)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{directory} is not a test PKI (dmp-xds pki init DIR): {exc!r}") from exc
        return cls(pki, default, audience)

    def check(self, identity: StepIdentity) -> None:
        """Raises ValueError when the identity or its signer is not in the PKI."""
        for name in (identity.name, identity.signer):
            if name and name != PATIENT:
                self.pki.signer(name)

    def credentials(self, identity: StepIdentity | None, patient_id: str) -> Credentials:
        """A fresh VIHF of `identity` (default: the run's) about `patient_id`, and the certificate
        of its signer for the connection. Raises ValueError for an identity not in the PKI."""
        identity = identity or self.default
        self.check(identity)
        signer = self.pki.signer(identity.name, identity.signer or None)
        assertion = signed_vihf(
            self.pki,
            identity.name,
            patient_id,
            identity.signer or None,
            identity.access_mode,
            identity.reason,
            self.audience,
        )
        return Credentials(security_header(assertion), (signer.certificate, signer.key))

    def signing_key(self, identity: StepIdentity | None) -> tuple[PrivateKeyTypes, list[x509.Certificate]]:
        """The key and certificate chain that sign `identity`'s submissions: its own card, or its
        VIHF's signer (the establishment, in indirect mode)."""
        identity = identity or self.default
        self.check(identity)
        signer = self.pki.signer(identity.name, identity.signer or None)
        key = load_pem_private_key(Path(signer.key).read_bytes(), None)
        return key, load_pem_certificates(Path(signer.certificate).read_bytes())
